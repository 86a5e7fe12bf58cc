"""The pipeline: list today's photos, fetch a source, resize it; each stage cached and coalesced.

Plain async methods with no HTTP in sight, so they can be tested and embedded directly. Every
stage goes through `_cached`: a cache hit returns at once; a miss joins (or starts) the one
flight for that key, which re-checks the cache, computes, and stores the result. Failures
propagate to every waiter and are never stored, so the next request tries again.

Wallpapers are keyed by the photo's identity (its image URL) and size, never by its position
in the list: when the list changes, `photo_number=0` means the new photo at once.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from . import imaging
from .coalesce import SingleFlight
from .errors import NotFound
from .settings import Settings
from .sources import Listing, Photo, Source

V = TypeVar("V")

TODAY_KEY = "today"


class Served(enum.Enum):
    """How a result was obtained; sent to clients as `X-Cache`."""

    HIT = "HIT"
    MISS = "MISS"
    COALESCED = "COALESCED"


@dataclass(frozen=True, slots=True)
class Today:
    """Today's listing together with its JSON, encoded once per fetch rather than per request."""

    listing: Listing
    json: bytes

    @property
    def nbytes(self) -> int:
        return 2 * len(self.json)  # the listing's objects take about as much as their JSON


class Pipeline:
    """The service without HTTP: `today()` and `wallpaper()`, cached and coalesced."""

    def __init__(self, source: Source, cache: Any, executor: Executor, settings: Settings,
                 wallpaper_path: str = "/wallpaper") -> None:
        self.source = source
        self._cache = cache
        self._executor = executor
        self._settings = settings
        self._wallpaper_path = wallpaper_path
        self._lists: SingleFlight[str, Today] = SingleFlight()
        self._images: SingleFlight[str, bytes] = SingleFlight()

    def in_flight(self) -> dict[str, int]:
        """Waiters per in-flight key, across stages; empty when idle."""
        return {**self._lists.waiters(), **self._images.waiters()}

    async def today(self) -> tuple[Today, Served]:
        return await self._cached(self._lists, TODAY_KEY, self._settings.info_ttl,
                                  self._fetch_today)

    async def wallpaper(self, number: int, height: int) -> tuple[bytes, Served]:
        """Photo `number` of today's list, exactly `height` pixels high, as JPEG."""
        today, _ = await self.today()
        photos = today.listing.photos
        if not 0 <= number < len(photos):
            raise NotFound(f"photo_number {number} is beyond today's {len(photos)} photos")
        photo = photos[number]
        return await self._cached(self._images, f"wallpaper:{height}:{photo.img_src}",
                                  self._settings.image_ttl, partial(self._render, photo, height))

    async def _fetch_today(self) -> Today:
        listing = await self.source.latest()
        return Today(listing, self._encode(listing))

    async def _render(self, photo: Photo, height: int) -> bytes:
        data, _ = await self._cached(self._images, f"source:{photo.img_src}",
                                     self._settings.image_ttl, partial(self.source.image, photo))
        resize = partial(imaging.wallpaper, data, height,
                         max_pixels=self._settings.max_source_pixels)
        return await asyncio.get_running_loop().run_in_executor(self._executor, resize)

    async def _cached(self, flights: SingleFlight[str, V], key: str, ttl: float,
                      compute: Callable[[], Awaitable[V]]) -> tuple[V, Served]:
        value: V | None = await self._cache.get(key)
        if value is not None:
            return value, Served.HIT

        async def fill() -> V:
            # A flight that finished just before this one started may have stored it already.
            stored: V | None = await self._cache.get(key)
            if stored is not None:
                return stored
            fresh = await compute()
            await self._cache.set(key, fresh, ttl=ttl)
            return fresh

        value, shared = await flights.do(key, fill)
        return value, Served.COALESCED if shared else Served.MISS

    def _encode(self, listing: Listing) -> bytes:
        photos = [
            {"number": n, "id": p.id, "camera": p.camera, "taken": p.taken, "img_src": p.img_src,
             "credit": p.credit, "wallpaper_url": f"{self._wallpaper_path}?photo_number={n}"}
            for n, p in enumerate(listing.photos)
        ]
        return json.dumps({"source": listing.source, "rover": listing.rover, "sol": listing.sol,
                           "count": len(photos), "photos": photos}).encode()
