"""`demo`: generated, Mars-like photos of any sol, so the service runs with no network at all.

Everything derives from the rover and the sol number, so every machine lists the same photos
and draws the same bytes. Each rover has its own sols and its own cameras (`DemoRover`):
Curiosity's demo cameras up to sol `NEWEST_SOL`, Perseverance's real instrument codes (Mastcam-Z,
Navcam, Hazcams) up to its own newest sol, so both can be tried offline. The newest sol has one
photo of each kind, older sols 3 to 5. A photo's link, `demo:SOL/N`, says what to draw: kind
`(SOL + N) % len(kinds)` (its camera and size), from a random seed made of the rover and the
link. Images are drawn in a worker thread, like all image work, and nothing is read from disk.
"""

from __future__ import annotations

import asyncio
import io
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from PIL import Image, ImageDraw, ImageFilter

from ..errors import NotFound
from .base import Listing, Photo, Query, QuerySource

CREDIT = "marsserver demo (generated)"
SOL_DAYS = 1.0275  # a sol in Earth days
_LINK = re.compile(r"demo:(0|[1-9]\d{0,4})/(\d)")


@dataclass(frozen=True, slots=True)
class Kind:
    """What one kind of demo photo is: its camera, its size, whether it is grayscale."""

    camera: str
    size: tuple[int, int]
    grayscale: bool = False


@dataclass(frozen=True, slots=True)
class DemoRover:
    """One rover's demo: its newest sol and when that sol's first photo was taken, its kinds
    of photo, and what its photo ids and random seeds start with (so two rovers' photos of
    the same sol differ)."""

    newest_sol: int
    newest_day: datetime
    kinds: tuple[Kind, ...]
    ids: str
    seeds: str

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(kind.camera for kind in self.kinds)


CURIOSITY = DemoRover(4000, datetime(2024, 1, 1, 12, tzinfo=UTC), (
    Kind("DEMO_MAST", (1536, 1024)), Kind("DEMO_NAV_LEFT", (1024, 1024), grayscale=True),
    Kind("DEMO_MAST", (1600, 900)), Kind("DEMO_FHAZ", (1024, 1024), grayscale=True),
    Kind("DEMO_NAV_RIGHT", (1200, 900), grayscale=True)), ids="demo", seeds="demo:")
# Perseverance's instruments, at the sizes its feed delivers whole frames in (docs/feeds.md):
# Mastcam-Z 1648 x 1200, Navcam and Hazcams 1280 x 960, all colour.
PERSEVERANCE = DemoRover(1000, datetime(2023, 12, 12, 12, tzinfo=UTC), (
    Kind("MCZ_LEFT", (1648, 1200)), Kind("NAVCAM_LEFT", (1280, 960)),
    Kind("MCZ_RIGHT", (1648, 1200)), Kind("FRONT_HAZCAM_LEFT_A", (1280, 960)),
    Kind("REAR_HAZCAM_RIGHT", (1280, 960))), ids="demo-perseverance", seeds="demo:perseverance:")
ROVERS = {"curiosity": CURIOSITY, "perseverance": PERSEVERANCE}

# Curiosity's, as before rovers had demos of their own.
NEWEST_SOL = CURIOSITY.newest_sol
CAMERAS = CURIOSITY.cameras


class DemoSource(QuerySource):
    """Deterministic photos of imaginary sols 0 to the rover's newest; a rover without a demo
    of its own gets Curiosity's sols and cameras under its name."""

    name: ClassVar[str] = "demo"

    def __init__(self, rover: str = "curiosity") -> None:
        self._rover = rover
        self._demo = ROVERS.get(rover, CURIOSITY)

    async def photos(self, query: Query) -> Listing:
        newest = self._demo.newest_sol
        sol = newest if query.sol is None else query.sol
        if sol > newest:
            raise NotFound(f"sol {sol} is beyond the newest sol, {newest}")
        photos = tuple(photo for photo in sol_photos(sol, self._demo)
                       if not query.cameras or photo.camera in query.cameras)
        if not photos:
            raise NotFound(f"the demo has no photos {query.describe()}")
        return Listing(self.name, self._rover, sol, photos, newest)

    async def image(self, link: str) -> bytes:
        found = _LINK.fullmatch(link)
        sol, number = (int(found[1]), int(found[2])) if found else (-1, -1)
        if not (0 <= sol <= self._demo.newest_sol and 0 <= number < photo_count(sol, self._demo)):
            raise NotFound(f"no demo photo {link!r}")
        return await asyncio.to_thread(render, sol, number, self._demo)


def photo_count(sol: int, demo: DemoRover = CURIOSITY) -> int:
    """How many photos the demo has of `sol`: all kinds on the newest, fewer on some others."""
    return len(demo.kinds) - (demo.newest_sol - sol) % 3


def _kind(sol: int, number: int, demo: DemoRover) -> Kind:
    return demo.kinds[(sol + number) % len(demo.kinds)]


def sol_photos(sol: int, demo: DemoRover = CURIOSITY) -> tuple[Photo, ...]:
    """The demo's photos of `sol`, in order."""
    day = demo.newest_day - timedelta(days=(demo.newest_sol - sol) * SOL_DAYS)
    return tuple(
        Photo(id=f"{demo.ids}-{sol}-{n}", camera=_kind(sol, n, demo).camera,
              taken=(day + timedelta(minutes=7 * n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              img_src=f"demo:{sol}/{n}", credit=CREDIT)
        for n in range(photo_count(sol, demo))
    )


def render(sol: int, number: int, demo: DemoRover = CURIOSITY) -> bytes:
    """Draw demo photo `number` of `sol`: a dusty sky over rock-strewn ground, as JPEG bytes."""
    kind = _kind(sol, number, demo)
    rng = random.Random(f"{demo.seeds}{sol}/{number}")  # a str seed: the same on every machine
    width, height = kind.size
    horizon = int(height * rng.uniform(0.3, 0.5))
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        sky = (int(200 - 60 * t), int(150 - 50 * t), int(110 - 40 * t))
        ground = (int(150 - 50 * t), int(80 - 30 * t), int(45 - 20 * t))
        draw.line([(0, y), (width, y)], fill=sky if y < horizon else ground)
    for _ in range(160):
        cx, cy = rng.uniform(0, width), rng.uniform(horizon, height)
        r = rng.uniform(2, 6 + 40 * (cy - horizon) / (height - horizon))
        shade = rng.randint(40, 110)
        draw.ellipse([cx - r, cy - r * 0.6, cx + r, cy + r * 0.6],
                     fill=(shade + 30, shade, shade // 2))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    if kind.grayscale:
        image = image.convert("L")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
