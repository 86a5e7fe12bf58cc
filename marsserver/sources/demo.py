"""`demo`: generated, Mars-like photos of any sol, so the service runs with no network at all.

Everything derives from the sol number, so every machine lists the same photos and draws the
same bytes: sol `NEWEST_SOL` has one photo of each kind in `CAMERAS`, older sols 3 to 5. A
photo's link, `demo:SOL/N`, says what to draw: kind `(SOL + N) % len(CAMERAS)` (its camera
and size), from a random seed made of the link. Images are drawn in a worker thread, like
all image work.
"""

from __future__ import annotations

import asyncio
import io
import random
import re
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from PIL import Image, ImageDraw, ImageFilter

from ..errors import NotFound
from .base import Listing, Photo, Query, QuerySource

NEWEST_SOL = 4000
CAMERAS = ("DEMO_MAST", "DEMO_NAV_LEFT", "DEMO_MAST", "DEMO_FHAZ", "DEMO_NAV_RIGHT")
SIZES = ((1536, 1024), (1024, 1024), (1600, 900), (1024, 1024), (1200, 900))
GRAYSCALE = ("DEMO_NAV_LEFT", "DEMO_NAV_RIGHT", "DEMO_FHAZ")
CREDIT = "marsserver demo (generated)"
NEWEST_DAY = datetime(2024, 1, 1, 12, tzinfo=UTC)  # when the newest sol's first photo was taken
SOL_DAYS = 1.0275  # a sol in Earth days
_LINK = re.compile(r"demo:(0|[1-9]\d{0,4})/(\d)")


class DemoSource(QuerySource):
    """Deterministic photos of imaginary sols 0 to `NEWEST_SOL`."""

    name: ClassVar[str] = "demo"

    def __init__(self, rover: str = "curiosity") -> None:
        self._rover = rover

    async def photos(self, query: Query) -> Listing:
        sol = NEWEST_SOL if query.sol is None else query.sol
        if sol > NEWEST_SOL:
            raise NotFound(f"sol {sol} is beyond the newest sol, {NEWEST_SOL}")
        photos = tuple(photo for photo in sol_photos(sol)
                       if not query.cameras or photo.camera in query.cameras)
        if not photos:
            raise NotFound(f"the demo has no photos {query.describe()}")
        return Listing(self.name, self._rover, sol, photos, NEWEST_SOL)

    async def image(self, link: str) -> bytes:
        found = _LINK.fullmatch(link)
        sol, number = (int(found[1]), int(found[2])) if found else (-1, -1)
        if not (0 <= sol <= NEWEST_SOL and 0 <= number < photo_count(sol)):
            raise NotFound(f"no demo photo {link!r}")
        return await asyncio.to_thread(render, sol, number)


def photo_count(sol: int) -> int:
    """How many photos the demo has of `sol`: all kinds on the newest, fewer on some others."""
    return len(CAMERAS) - (NEWEST_SOL - sol) % 3


def _kind(sol: int, number: int) -> int:
    return (sol + number) % len(CAMERAS)


def sol_photos(sol: int) -> tuple[Photo, ...]:
    """The demo's photos of `sol`, in order."""
    day = NEWEST_DAY - timedelta(days=(NEWEST_SOL - sol) * SOL_DAYS)
    return tuple(
        Photo(id=f"demo-{sol}-{n}", camera=CAMERAS[_kind(sol, n)],
              taken=(day + timedelta(minutes=7 * n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              img_src=f"demo:{sol}/{n}", credit=CREDIT)
        for n in range(photo_count(sol))
    )


def render(sol: int, number: int) -> bytes:
    """Draw demo photo `number` of `sol`: a dusty sky over rock-strewn ground, as JPEG bytes."""
    kind = _kind(sol, number)
    rng = random.Random(f"demo:{sol}/{number}")  # a str seed: the same on every machine
    width, height = SIZES[kind]
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
    if CAMERAS[kind] in GRAYSCALE:
        image = image.convert("L")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
