"""The pipeline: list today's photos, fetch a source, resize it; each stage cached and coalesced.

Plain async methods with no HTTP in sight, so they can be tested and embedded directly. Every
stage goes through `_cached`: a cache hit returns at once; a miss joins (or starts) the one
flight for that key, which re-checks the cache, computes, and stores the result. A failure
propagates to every waiter and is never stored as a result; upstream failures are remembered
for `error_ttl` seconds instead (negative caching), so an outage costs NASA one call, not one
per request.

The photo list is served stale-while-revalidate: past `info_ttl` the cached list is served at
once while one background refresh runs, and while refreshes fail it stays served for up to
`max_stale` more seconds (stale-if-error).

Wallpapers are keyed by the photo's identity (its image URL) and size, never by its position
in the list: when the list changes, `photo_number=0` means the new photo at once.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from . import imaging
from .cache import BoundedMemoryCache
from .coalesce import SingleFlight
from .errors import NotFound, Overloaded, ServiceError, Unavailable
from .metrics import Metrics
from .settings import Settings
from .sources import Listing, Photo, Source

log = logging.getLogger(__name__)
V = TypeVar("V")

TODAY_KEY = "today"
FAILED = "failed:"


class Served(enum.Enum):
    """How a result was obtained; sent to clients as `X-Cache`."""

    HIT = "HIT"
    MISS = "MISS"
    COALESCED = "COALESCED"
    STALE = "STALE"


@dataclass(frozen=True, slots=True)
class Today:
    """Today's listing with its JSON (encoded once per fetch, not per request) and its age."""

    listing: Listing
    json: bytes
    fetched_at: float

    @property
    def nbytes(self) -> int:
        return 2 * len(self.json)  # the listing's objects take about as much as their JSON


@dataclass(frozen=True, slots=True)
class Failure:
    """A remembered upstream failure, replayed to requests until it expires."""

    error: ServiceError

    @property
    def nbytes(self) -> int:
        return 256 + len(self.error.detail)


class Pipeline:
    """The service without HTTP: `today()` and `wallpaper()`, cached and coalesced."""

    def __init__(self, source: Source, cache: BoundedMemoryCache, executor: Executor,
                 settings: Settings,
                 wallpaper_path: str = "/wallpaper", metrics: Metrics | None = None) -> None:
        self.source = source
        self.metrics = metrics or Metrics()
        self._cache = cache
        self._executor = executor
        self._settings = settings
        self._wallpaper_path = wallpaper_path
        self._lists: SingleFlight[str, Today] = SingleFlight()
        self._images: SingleFlight[str, bytes] = SingleFlight()
        self._refresh: asyncio.Task[None] | None = None
        self.resizes_pending = 0
        self.metrics.watch(self._in_flight_at, lambda: self.resizes_pending)

    def in_flight(self) -> dict[str, int]:
        """Waiters per in-flight key, across stages; empty when idle."""
        return {**self._lists.waiters(), **self._images.waiters()}

    def _in_flight_at(self, stage: str) -> int:
        return sum(1 for key in self.in_flight() if _stage(key) == stage)

    async def close(self) -> None:
        """Stop a background refresh; called when the app shuts down."""
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)

    async def today(self) -> tuple[Today, Served]:
        """Today's photos: fresh, or stale (and being refreshed), or fetched now."""
        today: Today | None = self._cache.peek(TODAY_KEY)
        if today is None:
            return await self._cached(self._lists, TODAY_KEY, self._list_ttl, self._fetch_today)
        if time.time() - today.fetched_at < self._settings.info_ttl:
            self.metrics.cache_results["list", "hit"].inc()
            return today, Served.HIT
        self.metrics.cache_results["list", "stale"].inc()
        await self._revalidate()
        return today, Served.STALE

    async def upstream_failing(self) -> bool:
        """Whether the last attempt to refresh the list failed (and is still remembered)."""
        return await self._cache.get(FAILED + TODAY_KEY) is not None

    async def wallpaper(self, number: int, height: int) -> tuple[bytes, Served]:
        """Photo `number` of today's list, exactly `height` pixels high, as JPEG."""
        today, _ = await self.today()
        photos = today.listing.photos
        if not 0 <= number < len(photos):
            raise NotFound(f"photo_number {number} is beyond today's {len(photos)} photos")
        photo = photos[number]
        return await self._cached(self._images, f"wallpaper:{height}:{photo.img_src}",
                                  self._settings.image_ttl, partial(self._render, photo, height))

    @property
    def _list_ttl(self) -> float:
        return self._settings.info_ttl + self._settings.max_stale

    async def _revalidate(self) -> None:
        """Start one background refresh of the list, unless one runs or NASA just failed."""
        running = self._refresh is not None and not self._refresh.done()
        if running or await self.upstream_failing():
            return

        async def refresh() -> None:
            try:
                await self._lists.do(TODAY_KEY, partial(
                    self._compute_and_store, TODAY_KEY, self._list_ttl, self._fetch_today))
            except ServiceError as error:
                log.warning("refreshing today's photos failed, serving stale: %s", error.detail)

        self._refresh = asyncio.create_task(refresh())

    async def _fetch_today(self) -> Today:
        listing = await self.source.latest()
        return Today(listing, self._encode(listing), time.time())

    async def _render(self, photo: Photo, height: int) -> bytes:
        source_key = f"source:{photo.img_src}"
        data, _ = await self._cached(self._images, source_key, self._settings.image_ttl,
                                     partial(self.source.image, photo))
        if self.resizes_pending >= self._settings.resize_queue:
            raise Overloaded("too many wallpapers being made; try again shortly", retry_after=1)
        self.resizes_pending += 1
        try:
            resize = partial(self._timed_resize, data, height)
            return await asyncio.get_running_loop().run_in_executor(self._executor, resize)
        except ServiceError:
            await self._cache.delete(source_key)  # a source we cannot decode is not worth keeping
            raise
        finally:
            self.resizes_pending -= 1

    def _timed_resize(self, data: bytes, height: int) -> bytes:
        """Runs in a resize thread; times only the work, not the wait for a thread."""
        with self.metrics.resize_seconds.time():
            wallpaper = imaging.wallpaper(data, height, max_pixels=self._settings.max_source_pixels)
        self.metrics.resizes.inc()
        return wallpaper

    async def _cached(self, flights: SingleFlight[str, V], key: str, ttl: float,
                      compute: Callable[[], Awaitable[V]]) -> tuple[V, Served]:
        stage = _stage(key)
        value: V | None = self._cache.peek(key)
        if value is not None:
            self.metrics.cache_results[stage, "hit"].inc()
            return value, Served.HIT
        self.metrics.cache_results[stage, "miss"].inc()
        await self._raise_remembered(key)

        async def fill() -> V:
            # A flight that finished just before this one started may have stored it already.
            stored: V | None = await self._cache.get(key)
            if stored is not None:
                return stored
            return await self._compute_and_store(key, ttl, compute)

        value, shared = await flights.do(key, fill)
        if shared:
            self.metrics.coalesced[stage].inc()
        return value, Served.COALESCED if shared else Served.MISS

    async def _compute_and_store(self, key: str, ttl: float,
                                 compute: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await compute()
        except ServiceError as error:
            if error.remembered and self._settings.error_ttl > 0:
                retry_after = error.retry_after if isinstance(error, Unavailable) else None
                # A copy without the traceback: the stored one is replayed many times.
                await self._cache.set(FAILED + key, Failure(copy.copy(error)),
                                      ttl=max(self._settings.error_ttl, retry_after or 0))
            raise
        await self._cache.set(key, value, ttl=ttl)
        return value

    async def _raise_remembered(self, key: str) -> None:
        failure: Failure | None = await self._cache.get(FAILED + key)
        if failure is not None:
            raise copy.copy(failure.error)

    def _encode(self, listing: Listing) -> bytes:
        photos = [
            {"number": n, "id": p.id, "camera": p.camera, "taken": p.taken, "img_src": p.img_src,
             "credit": p.credit, "wallpaper_url": f"{self._wallpaper_path}?photo_number={n}"}
            for n, p in enumerate(listing.photos)
        ]
        return json.dumps({"source": listing.source, "rover": listing.rover, "sol": listing.sol,
                           "count": len(photos), "photos": photos}).encode()


def _stage(key: str) -> str:
    """The pipeline stage a cache or flight key belongs to: list, source or wallpaper."""
    return "list" if key == TODAY_KEY else key.split(":", 1)[0]
