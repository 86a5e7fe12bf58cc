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

Wallpapers are keyed by the photo's identity (its image URL) and the output `Spec`, never by
its position in the list: when the list changes, `photo_number=0` means the new photo at once.
Everything served is a `Rendition`: bytes with a strong ETag computed once, when made.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from . import imaging, views
from .cache import Cache
from .coalesce import SingleFlight
from .errors import BadUpstream, NotFound, Overloaded, ServiceError, Unavailable
from .imaging import Spec
from .metrics import Metrics
from .settings import Settings
from .sources import Listing, Photo, Source

if TYPE_CHECKING:  # Redis support is an extra: import it only where it is used
    from .leases import Leases

log = logging.getLogger(__name__)
V = TypeVar("V")

TODAY_KEY = "today"
FAILED = "failed:"
LARGE_JPEG = 1200  # feeds' "large" JPEGs are this wide; bigger outputs use full_res if offered


class Served(enum.Enum):
    """How a result was obtained; sent to clients as `X-Cache`."""

    HIT = "HIT"
    MISS = "MISS"
    COALESCED = "COALESCED"
    STALE = "STALE"


@dataclass(frozen=True, slots=True)
class Rendition:
    """Bytes as served, with what HTTP caching needs, computed once when they were made."""

    body: bytes
    media_type: str
    etag: str
    made_at: float
    last_modified: str | None = None  # an HTTP date
    filename: str | None = None

    @classmethod
    def of(cls, body: bytes, media_type: str, last_modified: str | None = None,
           filename: str | None = None) -> Rendition:
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        return cls(body, media_type, f'"{digest}"', time.time(), last_modified, filename)

    @property
    def nbytes(self) -> int:
        return len(self.body) + 256


@dataclass(frozen=True, slots=True)
class Today:
    """Today's listing, its JSON and its HTML gallery, rendered once per fetch."""

    listing: Listing
    json: Rendition
    html: Rendition

    @property
    def fetched_at(self) -> float:
        return self.json.made_at

    @property
    def nbytes(self) -> int:
        # The listing's objects take about as much as their JSON.
        return 2 * self.json.nbytes + self.html.nbytes


@dataclass(frozen=True, slots=True)
class Failure:
    """A remembered upstream failure, replayed to requests until it expires."""

    error: ServiceError

    @property
    def nbytes(self) -> int:
        return 256 + len(self.error.detail)


class Pipeline:
    """The service without HTTP: `today()` and `wallpaper()`, cached and coalesced."""

    def __init__(self, source: Source, cache: Cache, executor: Executor, settings: Settings,
                 wallpaper_path: str = "/wallpaper", metrics: Metrics | None = None,
                 leases: Leases | None = None) -> None:
        self.source = source
        self.metrics = metrics or Metrics()
        self._cache = cache
        self._leases = leases
        self._executor = executor
        self._settings = settings
        self._wallpaper_path = wallpaper_path
        self._lists: SingleFlight[str, Today] = SingleFlight()
        self._sources: SingleFlight[str, bytes] = SingleFlight()
        self._wallpapers: SingleFlight[str, Rendition] = SingleFlight()
        self._refresh: asyncio.Task[None] | None = None
        self.resizes_pending = 0
        self.metrics.watch(self._in_flight_at, lambda: self.resizes_pending)

    def in_flight(self) -> dict[str, int]:
        """Waiters per in-flight key, across stages; empty when idle."""
        return {**self._lists.waiters(), **self._sources.waiters(),
                **self._wallpapers.waiters()}

    @property
    def degraded(self) -> bool:
        """Whether the shared cache is unreachable and this instance runs on memory alone."""
        return self._cache.degraded

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
        if not self._stale(today):
            self.metrics.cache_results["list", "hit"].inc()
            return today, Served.HIT
        self.metrics.cache_results["list", "stale"].inc()
        self._revalidate()
        return today, Served.STALE

    def list_fresh_for(self) -> float:
        """Seconds until today's list goes stale: positions in it mean nothing longer."""
        today: Today | None = self._cache.peek(TODAY_KEY)
        return 0.0 if today is None else self._settings.info_ttl - (time.time() - today.fetched_at)

    async def upstream_failing(self) -> bool:
        """Whether the last attempt to refresh the list failed (and is still remembered)."""
        return await self._cache.get(FAILED + TODAY_KEY) is not None

    async def wallpaper(self, number: int, spec: Spec) -> tuple[Rendition, Served]:
        """Photo `number` of today's list, made as `spec` says."""
        today, _ = await self.today()
        photos = today.listing.photos
        if not 0 <= number < len(photos):
            raise NotFound(f"photo_number {number} is beyond today's {len(photos)} photos")
        photo = photos[number]
        link = _source_link(photo, spec)
        return await self._cached(self._wallpapers, f"wallpaper:{spec.key}:{link}",
                                  self._settings.image_ttl,
                                  partial(self._render, today.listing, photo, link, spec))

    def _stale(self, today: Today) -> bool:
        return time.time() - today.fetched_at >= self._settings.info_ttl

    @property
    def _list_ttl(self) -> float:
        return self._settings.info_ttl + self._settings.max_stale

    def _revalidate(self) -> None:
        """Start one background refresh of the list unless one runs (decided before any await,
        so concurrent stale requests start exactly one)."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._refresh_today())

    async def _refresh_today(self) -> None:
        if await self.upstream_failing():
            return  # NASA just failed: keep serving stale until the failure expires
        store = partial(self._lists.do, TODAY_KEY, partial(
            self._compute_and_store, TODAY_KEY, self._list_ttl, self._fetch_today))
        try:
            shared: Today | None = await self._cache.reload(TODAY_KEY)
            if shared is not None and not self._stale(shared):
                return  # another instance refreshed it
            if self._leases is None or self._cache.degraded:
                await store()
            else:
                await self._leases.try_run(TODAY_KEY, store)
        except ServiceError as error:
            log.warning("refreshing today's photos failed, serving stale: %s", error.detail)

    async def _fetch_today(self) -> Today:
        listing = await self.source.latest()
        return Today(
            listing,
            Rendition.of(views.listing_json(listing, self._wallpaper_path), "application/json"),
            Rendition.of(views.gallery_html(listing, self._wallpaper_path),
                         "text/html; charset=utf-8"),
        )

    async def _render(self, listing: Listing, photo: Photo, link: str, spec: Spec) -> Rendition:
        source_key = f"source:{link}"
        data, _ = await self._cached(self._sources, source_key, self._settings.image_ttl,
                                     partial(self.source.image, link))
        if self.resizes_pending >= self._settings.resize_queue:
            raise Overloaded("too many wallpapers being made; try again shortly", retry_after=1)
        self.resizes_pending += 1
        try:
            resize = partial(self._timed_resize, data, spec)
            body = await asyncio.get_running_loop().run_in_executor(self._executor, resize)
            return Rendition.of(body, spec.media_type, last_modified=views.http_date(photo.taken),
                                filename=views.filename(listing, photo, spec))
        except BadUpstream:
            await self._cache.delete(source_key)  # a source we cannot decode is not worth keeping
            raise
        finally:
            self.resizes_pending -= 1

    def _timed_resize(self, data: bytes, spec: Spec) -> bytes:
        """Runs in a resize thread; times only the work, not the wait for a thread."""
        with self.metrics.resize_seconds.time():
            wallpaper = imaging.wallpaper(data, spec, max_pixels=self._settings.max_source_pixels)
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
            store = partial(self._compute_and_store, key, ttl, compute)
            if self._leases is None:
                return await store()
            return await self._leases.run(key, store, partial(self._stored, key))

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

    async def _stored(self, key: str) -> Any:
        """Another instance's result for `key`: its value, its failure (raised), or None."""
        await self._raise_remembered(key)
        return await self._cache.get(key)

    async def _raise_remembered(self, key: str) -> None:
        failure: Failure | None = await self._cache.get(FAILED + key)
        if failure is not None:
            raise copy.copy(failure.error)


def _source_link(photo: Photo, spec: Spec) -> str:
    """The image to start from: full resolution only when the output is larger than `large`."""
    large = spec.height > LARGE_JPEG or (spec.width or 0) > LARGE_JPEG
    return photo.full_res if large and photo.full_res else photo.img_src


def _stage(key: str) -> str:
    """The pipeline stage a cache or flight key belongs to: list, source or wallpaper."""
    return "list" if key == TODAY_KEY else key.split(":", 1)[0]
