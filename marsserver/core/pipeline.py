"""The pipeline: list today's photos, fetch a source, resize it; each stage cached and coalesced.

Plain async methods with no HTTP in sight, so they can be tested and embedded directly. Every
stage and the list's background refresh take the one path in `_get` and `_fill`:

    memory front ── hit ──► HIT
        │ miss
    in-process flight (one per key) ──► leader task only:
        shared cache: value ──► done; remembered failure ──► raise (a stale list still serves)
        │ nothing
        lease won? (Redis only) ── re-check shared once, compute, store value or failure, release
        │ lost: poll the shared cache for the value or the holder's failure

So the lock order is always flight, then lease, and the cache is re-checked in one function.
Work that has started (a download, a resize) finishes and is stored even when every waiter
left. A failure reaches every waiter, in every process, and is remembered for `error_ttl`
(capped, Retry-After included), so an outage costs NASA one call, not one per request; a failure
derived from another (a wallpaper whose source failed) expires with its cause.

The photo list is served stale-while-revalidate: past `info_ttl` the cached list is served at
once while one background refresh (the same path, asking for a fresh value) runs, and while
refreshes fail it stays served for up to `max_stale` more seconds (stale-if-error).

Wallpapers are keyed by the photo's identity (its image URL) and the output `Spec`, never by
its position in the list: when the list changes, `photo_number=0` means the new photo at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from .. import imaging
from ..errors import (
    MAX_HOLD,
    BadUpstream,
    BudgetSpent,
    InternalError,
    NotFound,
    Overloaded,
    ServiceError,
    Unavailable,
)
from ..imaging import Spec
from ..metrics import HitCount, Metrics
from ..settings import Settings
from ..sources import LATEST, Listing, Photo, Query, Source
from .budget import first_call
from .cache import Cache
from .coalesce import Background, SingleFlight
from .entries import (
    CachedListing,
    Failure,
    KnownPhoto,
    MakeListing,
    Rendition,
    filename,
    http_date,
)

if TYPE_CHECKING:  # Redis support and tracing are extras: imported only where they are used
    from ..tracing import Tracing
    from .leases import Leases

log = logging.getLogger(__name__)
V = TypeVar("V")
#: A flight's value, and whether it was read from the shared cache (no work done here).
Found: TypeAlias = tuple[V, bool]

LIST = "list:"
PHOTO = "photo:"
FAILED = "failed:"
# A failure that is not remembered, published for the followers of the leader that had it:
# a slot of its own, so that it never replaces a failure another leader had remembered.
PUBLISHED = FAILED + "published:"
LARGE_JPEG = 1200  # feeds' "large" JPEGs are this wide; bigger outputs use full_res if offered
MAX_FAILURE_TTL = float(MAX_HOLD)  # no failure is remembered longer, whatever Retry-After said
PUBLISHED_FAILURE_TTL = 30.0  # how long followers elsewhere can see a failure not remembered
REFRESH_AHEAD = 2.0  # seconds before the list goes stale that a request starts its refresh


class Served(enum.Enum):
    """How a result was obtained; sent to clients as `X-Cache`."""

    HIT = "HIT"
    MISS = "MISS"
    COALESCED = "COALESCED"
    STALE = "STALE"
    SHARED = "SHARED"  # read from the shared cache: another instance did the work


def _any(_: object) -> bool:
    return True


class Pipeline:
    """The service without HTTP: `today()` and `wallpaper()`, cached and coalesced."""

    def __init__(self, source: Source, cache: Cache, executor: Executor, settings: Settings,
                 make_listing: MakeListing, metrics: Metrics | None = None,
                 leases: Leases | None = None, background: Background | None = None,
                 tracing: Tracing | None = None) -> None:
        self.source = source
        self.metrics = metrics or Metrics()
        self.cache = cache
        self.background = background or Background()
        self._leases = leases
        self._tracing = tracing
        self._executor = executor
        self._settings = settings
        self._make_listing = make_listing  # the HTTP layer's views of a listing
        self._lists: SingleFlight[str, Found[CachedListing]] = SingleFlight()
        self._peeks: SingleFlight[str, CachedListing | None] = SingleFlight()
        self._sources: SingleFlight[str, Found[bytes]] = SingleFlight()
        self._wallpapers: SingleFlight[str, Found[Rendition]] = SingleFlight()
        self.resizes_pending = 0
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._feed_failing = False
        self.metrics.watch(self._in_flight_at, lambda: self.resizes_pending)

    def in_flight(self) -> dict[str, int]:
        """Waiters per in-flight key, across stages; empty when idle."""
        return {**self._lists.waiters(), **self._sources.waiters(),
                **self._wallpapers.waiters()}

    @property
    def degraded(self) -> bool:
        """Whether the shared cache is unreachable and this instance runs on memory alone."""
        return self.cache.degraded

    def _in_flight_at(self, stage: str) -> int:
        return sum(1 for key in self.in_flight() if _stage(key) == stage)

    async def close(self) -> None:
        """Stop background refreshes and unfinished work; called when the app shuts down."""
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        await self.background.close()

    async def today(self) -> tuple[CachedListing, Served]:
        """Today's photos: the newest sol with whole frames."""
        return await self.listing(LATEST)

    async def listing(self, query: Query) -> tuple[CachedListing, Served]:
        """The photos `query` asks for: fresh, or stale (and being refreshed), or fetched now.

        A sol's list held here answers on its own; only a miss needs the newest list (is the
        sol beyond it? is it old?), so a cached sol keeps answering while NASA is down."""
        key = list_key(query)
        newest = None
        if query.sol is not None and self.cache.peek(key) is None:
            newest = await self._newest_sol()
            if query.sol > newest:
                raise NotFound(f"sol {query.sol} is beyond the newest sol, {newest}")
        today, served = await self._get(self._lists, key, partial(self._fetch, query, newest),
                                        usable=self._not_stale)
        if not self._due(today):
            self._refresh_when_due(today)
            return today, served
        if self._stale(today) and not self._lists.running(key):
            # Another instance may have refreshed it: one look at the shared cache (coalesced)
            # before serving stale, so N instances behind one cache do not take turns.
            fresher, _ = await self._peeks.do(key, partial(self._shared_list, key))
            if fresher is not None:
                self.metrics.lookups.count("list", "shared")
                return fresher, Served.SHARED
        self._revalidate(today)
        if not self._stale(today):
            return today, served
        self.metrics.lookups.count("list", "stale")
        return today, Served.STALE

    async def _newest_known(self, today: CachedListing) -> int | None:
        """The newest sol known without asking NASA (for a refresh's freshness): what the list
        says, and the newest list here or, if it left this instance, in the shared cache."""
        latest: CachedListing | None = self.cache.peek(NEWEST_KEY)
        if latest is None and today.query != LATEST:
            latest = (await self.cache.lookup(NEWEST_KEY))[0]
        sols = [today.listing.newest_sol]
        if latest is not None:
            sols += [latest.listing.sol, latest.listing.newest_sol]
        return max((sol for sol in sols if sol is not None), default=None)

    async def _newest_sol(self) -> int:
        latest, _ = await self.listing(LATEST)
        return max(latest.listing.sol, latest.listing.newest_sol or 0)

    def _fresh_for(self, query: Query, newest: int | None) -> float:
        """How long a list stays fresh: a sol well behind the newest changes rarely."""
        old = (query.sol is not None and newest is not None
               and newest - query.sol > self._settings.old_sol_after)
        return self._settings.old_sol_ttl if old else self._settings.info_ttl

    def list_fresh_for(self, query: Query = LATEST) -> float:
        """Seconds until the list goes stale: positions in it mean nothing longer."""
        today: CachedListing | None = self.cache.peek(list_key(query))
        return 0.0 if today is None else today.fresh_for - (time.time() - today.fetched_at)

    def upstream_failing(self) -> bool:
        """Whether the last attempt to fetch the newest list failed (here, or in another
        instance, remembered) and no fresh list is held."""
        failure: Failure | None = self.cache.peek(FAILED + NEWEST_KEY)
        today: CachedListing | None = self.cache.peek(NEWEST_KEY)
        return ((self._feed_failing or (failure is not None and failure.remembered))
                and (today is None or self._stale(today)))

    async def wallpaper(self, number: int, spec: Spec,
                        query: Query = LATEST) -> tuple[Rendition, Served]:
        """Photo `number` of the list `query` names, made as `spec` says."""
        today, _ = await self.listing(query)
        return await self.wallpaper_in(today, number, spec)

    async def wallpaper_in(self, today: CachedListing, number: int,
                           spec: Spec) -> tuple[Rendition, Served]:
        """Photo `number` of the list `today` (the one the caller answers with), as `spec`."""
        photos = today.listing.photos
        if not 0 <= number < len(photos):
            raise NotFound(f"photo_number {number} is beyond the list's {len(photos)} photos")
        known = KnownPhoto(photos[number], today.listing.rover, today.listing.sol)
        return await self._wallpaper_of(known, spec)

    async def _wallpaper_of(self, known: KnownPhoto, spec: Spec) -> tuple[Rendition, Served]:
        """A free size is kept only `free_size_ttl`: there is no end to them, and a client
        asking for many must not fill the cache (or Redis) for a day."""
        link = _source_link(known.photo, spec)
        settings = self._settings
        ttl = (settings.image_ttl if imaging.standard_spec(spec)
               else min(settings.free_size_ttl, settings.image_ttl))
        return await self._get(self._wallpapers, f"wallpaper:{spec.key}:{link}",
                               partial(self._render, known, link, spec), ttl=ttl)

    def due_at(self, today: CachedListing) -> float:
        """When `today` falls due for a refresh (wall clock)."""
        return today.fetched_at + today.fresh_for - min(REFRESH_AHEAD, today.fresh_for / 4)

    def made_from(self, today: CachedListing, rendition: Rendition | None = None,
                  number: int = 0, spec: Spec | None = None) -> tuple[tuple[str, object], ...]:
        """The cache entries an answer was made from (the list, and photo `number`'s wallpaper
        as `spec`): it stays exact while the cache still holds these very objects."""
        made = ((list_key(today.query), today),)
        if rendition is None or spec is None:
            return made
        link = _source_link(today.listing.photos[number], spec)
        return (*made, (f"wallpaper:{spec.key}:{link}", rendition))

    def count_hits(self, *stages: str) -> HitCount:
        """Where to count an answer served again: a hit at each of `stages`, as serving it
        through the pipeline would."""
        return self.metrics.lookups.hits_at(*stages)

    def _stale(self, today: CachedListing) -> bool:
        return time.time() - today.fetched_at >= today.fresh_for

    def _due(self, today: CachedListing) -> bool:
        """Due for a refresh: stale, or about to be. Refreshing a little ahead means a cache
        in front that revalidates when the list expires gets the new one at once."""
        return time.time() >= self.due_at(today)

    def _not_stale(self, today: CachedListing) -> bool:
        return not self._stale(today)

    def _not_due(self, today: CachedListing) -> bool:
        return not self._due(today)

    def _refresh_when_due(self, today: CachedListing) -> None:
        """Someone wants the newest list: refresh it when it falls due, even if nobody asks
        then (a cache in front answers them), so the next revalidation finds the new list.
        Only the newest: a timer for every sol anyone asked for would call NASA for lists
        nobody may want again (a request in their last seconds refreshes them ahead)."""
        if today.query == LATEST and self._refresh_timer is None:
            due = self.due_at(today) - time.time()
            self._refresh_timer = asyncio.get_running_loop().call_later(
                due, self._fall_due, today)

    def _fall_due(self, today: CachedListing) -> None:
        self._refresh_timer = None
        self._revalidate(today)

    async def _shared_list(self, key: str) -> CachedListing | None:
        shared: CachedListing | None = (await self.cache.lookup(key))[0]
        return shared if shared is not None and not self._stale(shared) else None

    def _revalidate(self, today: CachedListing) -> None:
        """Start one background refresh of a list unless one runs: the same flight as a
        request's, asking for a value not due (decided before any await, so concurrent stale
        requests start exactly one)."""
        key = list_key(today.query)
        if not self._lists.running(key):
            fill = partial(self._fill, key, partial(self._refetch, today), self._not_due)
            refresh = self._lists.do(key, fill)
            if self._tracing is not None:
                refresh = self._tracing.detached(refresh)
            self.background.spawn(refresh, f"refreshing {key}")

    async def _refetch(self, today: CachedListing) -> CachedListing:
        """`today`'s list again, fresh for as long as its sol's age now says."""
        return await self._fetch(today.query, await self._newest_known(today))

    async def _fetch(self, query: Query, newest: int | None) -> CachedListing:
        # `latest()` for the newest: a source written before sols and cameras still serves it.
        try:
            listing = await (self._latest() if query == LATEST else self.source.photos(query))
        except NotFound as error:
            if not query.cameras:
                raise
            raise await self._naming_cameras(error, query) from None
        if query.cameras:
            whole = await self._unfiltered(listing.sol)
            listing = replace(listing, sol_cameras=() if whole is None else whole.cameras)
        for reason, count in listing.dropped.items():
            self.metrics.dropped(self.source.name, reason).inc(count)
        # Each photo's permalink keeps answering for as long as its wallpapers are kept.
        await self.cache.set_many({PHOTO + photo.id: KnownPhoto(photo, listing.rover, listing.sol)
                                   for photo in listing.photos}, ttl=self._settings.image_ttl)
        return self._make_listing(listing, query, self._fresh_for(query, newest), time.time())

    async def _naming_cameras(self, error: NotFound, query: Query) -> NotFound:
        """`error` (no photos from the cameras asked for) naming the cameras the sol does
        have; `error` as it was if they cannot be had."""
        whole = await self._unfiltered(query.sol)
        if whole is None:
            return error
        sol = "that sol" if query.sol is not None else f"the newest sol, {whole.sol},"
        return NotFound(f"{error.detail}; {sol} has photos from {', '.join(whole.cameras)}")

    async def _unfiltered(self, sol: int | None) -> Listing | None:
        """The list of `sol` (None: the newest) without a camera filter, which says what
        cameras took photos that sol: one more list at most, cached and coalesced like any
        (the newest list when it is that sol's). None if it cannot be had."""
        newest: CachedListing | None = self.cache.peek(NEWEST_KEY)
        same = newest is not None and newest.listing.sol == sol
        try:
            whole, _ = await self.listing(LATEST if sol is None or same else Query(sol))
        except ServiceError:
            return None
        return whole.listing

    async def _latest(self) -> Listing:
        """The newest list, with first call on the upstream budget (a crawler must not starve
        today's photos); one WARNING when the feed starts failing, one INFO when it is back
        (an outage is one episode in the log, not a line per request). A spent budget is
        not the feed failing: the budget logs its own episode."""
        try:
            with first_call():
                listing = await self.source.latest()
        except BudgetSpent:
            raise
        except ServiceError as error:
            if not self._feed_failing:
                self._feed_failing = True
                log.warning("the %s feed is failing (%s): serving what is cached; the demo "
                            "source (--source demo) runs offline", self.source.name,
                            error.cause)
            raise
        if self._feed_failing:
            self._feed_failing = False
            log.info("the %s feed answers again", self.source.name)
        return listing

    async def permalink(self, photo_id: str, spec: Spec,
                        sol: int | None = None) -> tuple[Rendition, Served]:
        """The photo `photo_id` as `spec` says: one a listing here or in the shared cache named
        within `image_ttl`, else found again in the list of its `sol` (the newest list when the
        link carries no sol), read once, cached and coalesced like any list. So a permalink
        answers on any instance, cold or restarted, for as long as the source has the photo."""
        known: KnownPhoto | None = self.cache.peek(PHOTO + photo_id)
        if known is None:
            known = (await self.cache.lookup(PHOTO + photo_id))[0]
        if known is None:
            known = await self._listed(photo_id, LATEST if sol is None else Query(sol))
        return await self._wallpaper_of(known, spec)

    async def _listed(self, photo_id: str, query: Query) -> KnownPhoto:
        """`photo_id` among the photos of the list `query` names, or a NotFound saying where
        it was looked for."""
        today, _ = await self.listing(query)
        listing = today.listing
        for photo in listing.photos:
            if photo.id == photo_id:
                return KnownPhoto(photo, listing.rover, listing.sol)
        if query.sol is not None:
            raise NotFound(f"no photo {photo_id!r} among the photos of sol {query.sol}")
        raise NotFound(f"no photo {photo_id!r} is known here: a permalink without its sol is "
                       f"found among the newest photos, or for {self._settings.image_ttl:.0f} "
                       "s after a listing named it")

    async def _render(self, known: KnownPhoto, link: str, spec: Spec) -> Rendition:
        source_key = f"source:{link}"
        data, _ = await self._get(self._sources, source_key, partial(self.source.image, link))
        if self.resizes_pending >= self._settings.resize_queue:
            raise Overloaded("too many wallpapers being made; try again shortly", retry_after=1)
        self.resizes_pending += 1
        try:
            resize = partial(self._timed_resize, data, spec)
            body = await asyncio.get_running_loop().run_in_executor(self._executor, resize)
            return Rendition.of(body, spec.media_type,
                                last_modified=http_date(known.photo.taken),
                                filename=filename(known.rover, known.sol, known.photo,
                                                        spec))
        except BadUpstream:
            await self.cache.delete(source_key)  # a source we cannot decode is not worth keeping
            raise
        finally:
            self.resizes_pending -= 1

    def _timed_resize(self, data: bytes, spec: Spec) -> bytes:
        """Runs in a resize thread; times only the work, not the wait for a thread."""
        with self.metrics.resize_seconds.time():
            wallpaper = imaging.wallpaper(data, spec, max_pixels=self._settings.max_source_pixels)
        self.metrics.resizes.inc()
        return wallpaper

    async def _get(self, flights: SingleFlight[str, Found[V]], key: str,
                   compute: Callable[[], Awaitable[V]], usable: Callable[[V], bool] = _any,
                   ttl: float | None = None) -> tuple[V, Served]:
        """From this process's memory, or through the one flight for `key`. A value in memory
        that is not `usable` (a stale list) is returned as it is, for the caller to judge.
        What is made is kept `ttl` seconds, or as long as the value itself says (`_kept_for`).

        What the flight read from the shared cache is SHARED for every request that waited on
        it, in `X-Cache` and the metrics: MISS means work was done here, and none was."""
        stage = _stage(key)
        value: V | None = self.cache.peek(key)
        if value is not None:
            if not usable(value):
                return value, Served.STALE
            self.metrics.lookups.count(stage, "hit")
            return value, Served.HIT
        found: Found[V] | None = None
        fill = partial(self._fill, key, compute, _any, ttl)
        flight = (flights.do(key, fill) if self._tracing is None
                  else self._tracing.waited(flights, key, fill))
        try:
            found, joined = await flight
        finally:  # a failed lookup is a miss too
            self.metrics.lookups.count(stage, "shared" if found and found[1] else "miss")
        if joined:
            self.metrics.coalesced[stage].inc()
        if found[1]:
            return found[0], Served.SHARED
        return found[0], Served.COALESCED if joined else Served.MISS

    async def _fill(self, key: str, compute: Callable[[], Awaitable[V]],
                    fresh: Callable[[V], bool], ttl: float | None = None) -> Found[V]:
        """A flight's own work: the shared value if `fresh` accepts it, else lead or follow."""
        stale: list[V] = []  # a value `fresh` refused: served if the upstream fails

        async def check(holders: frozenset[str]) -> Found[V] | None:
            value, *failures = await self.cache.lookup(key, FAILED + key, PUBLISHED + key)
            if value is not None and fresh(value):
                return value, self._leases is not None  # shared only where a cache is
            if value is not None:
                stale[:] = [value]
            failure = next((failure for failure in failures if failure is not None
                            and (failure.remembered or failure.token in holders)), None)
            if failure is not None:
                if stale:
                    return stale[0], True
                raise failure.error()
            return None

        async def lead(token: str) -> Found[V]:
            try:
                return await self._compute_and_store(key, compute, token, ttl), False
            except ServiceError:
                if stale:
                    return stale[0], True
                raise

        found = await check(frozenset())
        if found is not None:
            return found
        if self._leases is None:
            return await self.background.finish(key, lead(""))
        if self._tracing is None:
            return await self._leases.run(key, lead, check)
        return await self._tracing.lease(key, partial(self._leases.run, key, lead), check,
                                         self._leases.notes)

    async def _compute_and_store(self, key: str, compute: Callable[[], Awaitable[V]],
                                 token: str, ttl: float | None = None) -> V:
        try:
            if self._tracing is None:
                value = await compute()
            else:
                announce = partial(self._leases.note, token) if self._leases else None
                value = await self._tracing.work(key, compute, announce)
        except Exception as error:
            raise await self._remember(key, error, token) from None
        await self.cache.set(key, value, ttl=self._kept_for(value) if ttl is None else ttl)
        return value

    def _kept_for(self, value: object) -> float:
        """How long the cache keeps `value`, as the value itself says: a list for as long as
        it is fresh and then `max_stale`, images for `image_ttl`."""
        if isinstance(value, CachedListing):
            return self._settings.max_stale + value.fresh_for
        return self._settings.image_ttl

    async def _remember(self, key: str, error: Exception, token: str) -> ServiceError:
        """Record a failure for every waiter (in every process) and for `error_ttl`.

        Anything that is not a `ServiceError` is a bug: logged here with its traceback, then
        remembered like any failure, so it cannot turn every request into an upstream call.
        """
        if not isinstance(error, ServiceError):
            log.error("unexpected error making %s", key, exc_info=error)
            error = InternalError("unexpected error; it has been logged")
        until = self._remembered_until(error)
        retry_after = error.retry_after if isinstance(error, Unavailable) else None
        error.until = until
        failure = Failure(error.code, error.detail, until, token, retry_after)
        if until > time.time():
            await self.cache.set(FAILED + key, failure, ttl=until - time.time())
        else:
            await self.cache.publish(PUBLISHED + key, failure, ttl=PUBLISHED_FAILURE_TTL)
        return error

    def _remembered_until(self, error: ServiceError) -> float:
        """When to forget `error`: a derived failure with its cause, others after `error_ttl`
        or as long as the upstream asked us to wait (capped); now if not remembered.

        A `NotFound` is the feed's answer (no photos from that camera that sol), not a
        failure: it is kept as long as a list would be, `info_ttl`, so asking again for what
        is not there costs NASA nothing until a list of it would be asked for again."""
        if error.until is not None:
            return error.until
        now = time.time()
        kept = self._settings.info_ttl if isinstance(error, NotFound) else self._settings.error_ttl
        if not error.remembered or kept <= 0:
            return now
        retry_after = error.retry_after if isinstance(error, Unavailable) else None
        return now + min(MAX_FAILURE_TTL, max(kept, retry_after or 0))


def list_key(query: Query) -> str:
    return LIST + query.key


NEWEST_KEY = list_key(LATEST)


def _source_link(photo: Photo, spec: Spec) -> str:
    """The image to start from: full resolution only when the output is larger than `large`."""
    large = spec.height > LARGE_JPEG or (spec.width or 0) > LARGE_JPEG
    return photo.full_res if large and photo.full_res else photo.img_src


def _stage(key: str) -> str:
    """The pipeline stage a cache or flight key belongs to: list, source or wallpaper."""
    return key.split(":", 1)[0]
