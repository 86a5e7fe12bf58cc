"""A cache shared by many instances: Redis, through aiocache, behind a small in-process front.

What Redis holds is data (`entries.Codec`), under a prefix that names the schema and the
deployment, so two deployments sharing one Redis never read each other's entries. Every read
that reaches Redis also asks for the entry's remaining TTL and gives the front copy exactly
that, so the front never serves past Redis; an older list than the front's never replaces it.

Slow is not down. Every call has a timeout of seconds (`--redis-timeout`); a call that times
out fails alone. Redis counts as down only on a connection error or after `STRIKES` failed
calls in a row: then, for `RETRY_AFTER` seconds, each instance serves from its front and
coordinates within itself, logged once; the next call after that tries Redis again.

Full is not down either. At `maxmemory`, Redis refuses writes (`noeviction`: the front keeps
what it could not share, and leads locally) or drops keys early (the LRU policies: leases among
them, so some work is done twice). Either is an episode, logged once when it starts and once
when `QUIET` seconds pass without it, and shown in `state` (for /healthz).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import redis.asyncio as redis
from aiocache import RedisCache
from aiocache.serializers import NullSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..sources import Source
from .cache import BoundedMemoryCache
from .entries import CachedListing, Codec, Entry, Failure, Unreadable

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 2
RETRY_AFTER = 2.0  # seconds an instance works alone after Redis went down
STRIKES = 3  # failed calls in a row (timeouts, errors) that also count as down
MAX_UNREADABLE_LOGGED = 1000
WATCH_EVERY = 2.0  # seconds between looks at how many keys Redis has evicted
QUIET = 30.0  # seconds without a refused write (or an eviction) that end the episode
# A timeout (TimeoutError is an OSError, redis-py's is a RedisError) is slow, not down.
SLOW = (TimeoutError, RedisTimeoutError)


class Unreachable(Exception):
    """This call did not reach Redis (down, or it failed); the caller carries on without."""


class Episode:
    """A condition seen now and then (Redis refusing writes, Redis evicting): one log line when
    it starts and one when `QUIET` seconds pass without it, however often it is seen between."""

    def __init__(self, started: str, ended: str) -> None:
        self._started = started
        self._ended = ended
        self._last: float | None = None

    @property
    def on(self) -> bool:
        return self._last is not None

    def seen(self) -> None:
        if self._last is None:
            log.warning(self._started)
        self._last = time.monotonic()

    def settle(self) -> None:
        """End the episode if it has been quiet long enough."""
        if self._last is not None and time.monotonic() - self._last > QUIET:
            self._last = None
            log.warning(self._ended)


def prefix_for(source: Source, rover: str, api_url: str, mount: str) -> str:
    """The default key prefix: the schema, and who this deployment is.

    The source is the one serving, not the one the settings name (an embedder passes its own):
    its name and the rover readable, its class and the API URL and mount path hashed. So two
    sources, rovers, feeds or mounts of one app on one Redis never share entries.
    """
    kind = type(source)
    who = f"{kind.__module__}.{kind.__qualname__}\n{api_url}\n{mount}"
    identity = hashlib.blake2b(who.encode(), digest_size=4).hexdigest()
    return f"marsserver:v{SCHEMA_VERSION}:{source.name}:{rover}:{identity}"


def client_for(url: str, timeout: float, ca_file: str | None = None) -> redis.Redis:
    """A redis-py client from a URL as managed services hand them out: `redis://` or
    `rediss://` (TLS), user name and password, database, query options (`from_url`)."""
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                               "decode_responses": False}
    if url.startswith("rediss://") and ca_file:
        options["ssl_ca_certs"] = ca_file
    return redis.Redis.from_url(url, **options)


class SharedCache:
    """The pipeline's cache (`peek`, `lookup`, `set`, `publish`, `delete`) over Redis."""

    def __init__(self, client: redis.Redis, front: BoundedMemoryCache, codec: Codec, prefix: str,
                 timeout: float) -> None:
        self.front = front
        self.client = client
        # timeout=0: `call` bounds every call already (aiocache's own bound is a `wait_for`).
        self.redis = RedisCache(serializer=NullSerializer(), namespace=prefix, timeout=0)
        self.redis.client = client  # our client: from_url semantics, TLS
        self._codec = codec
        self._timeout = timeout
        self._down_until = 0.0
        self._strikes = 0
        self._unreadable: set[str] = set()
        self._full = Episode(
            "Redis is full and refuses writes (maxmemory reached with nothing it may evict: "
            "the noeviction policy, or a value too large): new entries stay in this "
            "instance's memory, unshared; see docs/scaling.md for the settings to use",
            "Redis has refused no write for a while: sharing new entries again")
        self._evicting = Episode(
            "Redis is evicting keys before their TTL (maxmemory reached): some work, leases "
            "included, may be done twice; give Redis more memory (docs/scaling.md)",
            "Redis has evicted no key for a while")
        self._watching: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        return self._down_until > 0

    @property
    def degraded(self) -> bool:
        """Missing something: Redis unreachable, or refusing to store what we share."""
        return self.down or self._full.on

    @property
    def state(self) -> str:
        """What /healthz says of Redis: ok, unreachable, full (refusing writes) or evicting."""
        if self.down:
            return "unreachable"
        if self._full.on:
            return "full"
        return "evicting" if self._evicting.on else "ok"

    @property
    def nbytes(self) -> int:
        return self.front.nbytes

    def key(self, key: str) -> str:
        return str(self.redis.build_key(key))

    def peek(self, key: str) -> Any:
        return self.front.peek(key)

    @property
    def touch(self) -> Callable[[str], None]:
        return self.front.touch

    def watch(self, on_change: Callable[[str], None]) -> None:
        self.front.watch(on_change)

    def view(self) -> Mapping[str, Any]:
        return self.front.view()

    def expires_in(self, key: str) -> float | None:
        return self.front.expires_in(key)

    async def lookup(self, *keys: str) -> tuple[Any, ...]:
        """What Redis holds under `keys` (a value and its failures), in one round trip, copied
        into the front; the front's own copies when Redis cannot be reached (they may be all
        we have)."""
        try:
            found = await self.call(lambda: self._get_with_ttl(*keys))
        except Unreachable:
            return tuple(map(self.front.peek, keys))
        return tuple([await self._loaded(key, *entry) for key, entry in zip(keys, found,
                                                                             strict=True)])

    async def _loaded(self, key: str, raw: bytes | None, pttl: int) -> Any:
        if raw is None or pttl <= 0:
            return None
        try:
            entry = self._codec.load(raw, key)
        except Unreadable as error:
            self._log_unreadable(key, error)
            return None
        held = self.front.peek(key)
        if _made_later(held, entry):
            return held
        if not isinstance(entry, Failure) or entry.remembered:
            await self.front.set(key, entry, ttl=pttl / 1000)
        return entry

    async def _get_with_ttl(self, *keys: str) -> list[tuple[bytes | None, int]]:
        """GET and PTTL of each key, in one round trip."""
        async with self.client.pipeline(transaction=False) as batch:
            for key in keys:
                batch.get(self.key(key))
                batch.pttl(self.key(key))
            answers = await batch.execute()
        return list(zip(answers[::2], answers[1::2], strict=True))

    def _log_unreadable(self, key: str, error: Unreadable) -> None:
        """Once per key (bounded): a planted or foreign value is a miss, not a flood of logs."""
        if key not in self._unreadable and len(self._unreadable) < MAX_UNREADABLE_LOGGED:
            self._unreadable.add(key)
            log.warning("ignoring an unreadable Redis entry %s: %s", self.key(key), error)

    async def set(self, key: str, value: Entry, ttl: float) -> None:
        await self.front.set(key, value, ttl=ttl)
        await self.publish(key, value, ttl)

    async def set_many(self, values: Mapping[str, Entry], ttl: float) -> None:
        """Several entries with one TTL, in one round trip to Redis."""
        await self.front.set_many(values, ttl)
        raw = {self.key(key): self._codec.dump(value) for key, value in values.items()}

        async def write() -> None:
            async with self.client.pipeline(transaction=False) as batch:
                for key, value in raw.items():
                    batch.set(key, value, px=max(1, int(ttl * 1000)))
                await batch.execute()

        with contextlib.suppress(Unreachable):
            await self.call(write)

    async def publish(self, key: str, value: Entry, ttl: float) -> None:
        """Store in Redis only; a failed write is logged by `call` and otherwise ignored."""
        raw = self._codec.dump(value)
        with contextlib.suppress(Unreachable):
            # At least 1 ms: Redis refuses PX 0 (a failure whose cause expires right now).
            await self.call(lambda: self.redis.set(key, raw, ttl=max(float(ttl), 0.001)))

    async def delete(self, key: str) -> None:
        await self.front.delete(key)
        with contextlib.suppress(Unreachable):
            await self.call(lambda: self.redis.delete(key))

    async def clear(self) -> None:
        """Forget this instance's front; Redis is shared and keeps its entries."""
        await self.front.clear()

    async def close(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
        await self.client.aclose()

    async def open(self) -> None:
        """One PING, so an unreachable Redis shows in health checks from the start; then a
        look at Redis's evictions every `WATCH_EVERY` seconds for as long as this runs."""
        with contextlib.suppress(Unreachable):
            await self.call(self.client.ping)
        self._watching = asyncio.create_task(self._watch_evictions())

    async def _watch_evictions(self) -> None:
        """Keys evicted between two looks make an episode: entries and leases vanishing early
        are invisible to the calls themselves, and the LRU policies do it silently."""
        evicted: int | None = None
        while True:
            await asyncio.sleep(WATCH_EVERY)
            now = await self._evicted_keys()
            if evicted is not None and now is not None and now > evicted:
                self._evicting.seen()
            evicted = evicted if now is None else now
            self._evicting.settle()
            self._full.settle()

    async def _evicted_keys(self) -> int | None:
        """Redis's count of evicted keys; None when it cannot be had (down, or INFO not
        allowed, as on some managed services), which is no reason to count Redis as down."""
        if self.down:
            return None
        try:
            async with asyncio.timeout(self._timeout):  # wait_for may lose a cancellation
                stats = await self.client.info("stats")
        except (*SLOW, RedisError, OSError):
            return None
        count = stats.get("evicted_keys")
        return count if isinstance(count, int) else None

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """`make()` against Redis within the timeout; `Unreachable` if it did not work."""
        if time.monotonic() < self._down_until:
            raise Unreachable
        try:
            # Not `wait_for`: on Python 3.11 it returns the result of a call that completes
            # as its caller is cancelled, and the cancellation is lost.
            async with asyncio.timeout(self._timeout):
                result = await make()
        except OutOfMemoryError:  # an answer, fast: Redis is up, but stores nothing new
            self._full.seen()
            raise Unreachable from None
        except (*SLOW, RedisError) as error:
            if isinstance(error, RedisConnectionError) and not isinstance(error, SLOW):
                self._went_down(error)
            else:
                self._strike(error)
            raise Unreachable from None
        except OSError as error:  # refused, reset, unreachable
            self._went_down(error)
            raise Unreachable from None
        self._recovered()
        return result

    def _strike(self, error: BaseException) -> None:
        self._strikes += 1
        log.info("a Redis call failed (%s); %d in a row", type(error).__name__, self._strikes)
        if self._strikes >= STRIKES:
            self._went_down(error)

    def _went_down(self, error: BaseException) -> None:
        """Redis is down: use the front alone for a while (logged once, not per request)."""
        if not self.down:
            log.warning("Redis unreachable (%s): serving from memory, local coalescing only",
                        type(error).__name__)
        self._down_until = time.monotonic() + RETRY_AFTER

    def _recovered(self) -> None:
        self._strikes = 0
        if self.down:
            log.warning("Redis is back: sharing the cache again")
        self._down_until = 0.0


def _made_later(held: object, loaded: Entry) -> bool:
    """Whether this process holds a newer list than Redis: Redis can fall behind (a write lost
    in an outage, a snapshot restored), and going back would serve photos already replaced."""
    return (isinstance(held, CachedListing) and isinstance(loaded, CachedListing)
            and held.fetched_at > loaded.fetched_at)
