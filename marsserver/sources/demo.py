"""`demo`: a handful of generated, Mars-like photos, so the service runs with no network at all.

Images are drawn deterministically from a seed (same photo, same bytes, on every machine),
in a worker thread, like all image work.
"""

from __future__ import annotations

import asyncio
import io
import random
from typing import ClassVar

from PIL import Image, ImageDraw, ImageFilter

from ..errors import NotFound
from .base import Listing, Photo

SOL = 4000
CAMERAS = ("DEMO_MAST", "DEMO_NAV_LEFT", "DEMO_MAST", "DEMO_FHAZ", "DEMO_NAV_RIGHT")
SIZES = ((1536, 1024), (1024, 1024), (1600, 900), (1024, 1024), (1200, 900))
GRAYSCALE = ("DEMO_NAV_LEFT", "DEMO_NAV_RIGHT", "DEMO_FHAZ")
_SCHEME = "demo:photo-"


class DemoSource:
    """Five deterministic photos of an imaginary sol."""

    name: ClassVar[str] = "demo"

    def __init__(self, rover: str = "curiosity") -> None:
        self._rover = rover

    async def latest(self) -> Listing:
        photos = tuple(
            Photo(id=f"demo-{n}", camera=camera, taken=f"2024-01-0{n + 1}T12:00:00Z",
                  img_src=f"{_SCHEME}{n}", credit="marsserver demo (generated)")
            for n, camera in enumerate(CAMERAS)
        )
        return Listing(self.name, self._rover, SOL, photos)

    async def image(self, link: str) -> bytes:
        number = link.removeprefix(_SCHEME)
        if not number.isdigit() or int(number) >= len(CAMERAS):
            raise NotFound(f"no demo photo {link!r}")
        return await asyncio.to_thread(render, int(number))


def render(number: int) -> bytes:
    """Draw demo photo `number`: a dusty sky over rock-strewn ground, as JPEG bytes."""
    rng = random.Random(number)
    width, height = SIZES[number]
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
    if CAMERAS[number] in GRAYSCALE:
        image = image.convert("L")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
