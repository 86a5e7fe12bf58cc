"""In-memory TTL cache on aiocache, bounded by entries and bytes, least recently used out first.

aiocache's memory backend keeps entries in a plain dict with no size bound, and every call
goes through `asyncio.wait_for` unless `timeout=0`. This module keeps aiocache's API and TTL
timers (so a Redis backend can take its place) and swaps that dict for one that counts bytes
and evicts the least recently used entries when a bound is exceeded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from aiocache import SimpleMemoryCache

log = logging.getLogger(__name__)


@runtime_checkable
class Sized(Protocol):
    """A cached value that knows its own size in bytes."""

    @property
    def nbytes(self) -> int: ...


def size_of(value: object) -> int:
    """Bytes a cached value holds: `len` for bytes, `nbytes` for our own value types."""
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, Sized):
        return value.nbytes
    raise TypeError(f"cannot size a {type(value).__name__} for the cache")


class Cache(Protocol):
    """What the pipeline needs of a cache: memory alone, or Redis behind a memory front.

    `peek` is this process's memory only (the hot path); `lookup` is the shared truth, read
    once per flight; `publish` makes a value visible to other processes only (a failure their
    followers must see, but that this process has already delivered to its own waiters).
    """

    @property
    def degraded(self) -> bool: ...

    @property
    def state(self) -> str | None: ...

    @property
    def nbytes(self) -> int: ...

    def peek(self, key: str) -> Any: ...

    @property
    def touch(self) -> Callable[[str], None]: ...

    def watch(self, on_change: Callable[[str], None]) -> None: ...

    def view(self) -> Mapping[str, Any]: ...

    def expires_in(self, key: str) -> float | None: ...

    async def lookup(self, key: str, failure_key: str) -> tuple[Any, Any]: ...

    async def set(self, key: str, value: Any, ttl: float) -> Any: ...

    async def set_many(self, values: Mapping[str, Any], ttl: float) -> Any: ...

    async def publish(self, key: str, value: Any, ttl: float) -> Any: ...

    async def delete(self, key: str) -> Any: ...

    async def clear(self) -> Any: ...

    async def close(self) -> Any: ...


class _LRUStore(OrderedDict[str, Any]):
    """The dict aiocache's memory backend stores entries in, with LRU order and byte counts.

    aiocache touches its store only through `[]=`, `get`, `pop` and `in`, so counting here
    sees every insertion, TTL expiry and deletion without reaching into aiocache's internals,
    and `on_change` hears of every entry replaced or dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0
        self.on_change: Callable[[str], None] | None = None

    def __setitem__(self, key: str, value: Any) -> None:
        replaced = key in self
        if replaced:
            self.nbytes -= size_of(super().__getitem__(key))
        super().__setitem__(key, value)
        self.move_to_end(key)
        self.nbytes += size_of(value)
        if replaced:
            self._changed(key)

    def __delitem__(self, key: str) -> None:
        self.nbytes -= size_of(super().__getitem__(key))
        super().__delitem__(key)
        self._changed(key)

    def _changed(self, key: str) -> None:
        """Tell the watcher; a failing one is logged, never let into aiocache's own
        operation (which would then leave an entry without its expiry timer)."""
        if self.on_change is None:
            return
        try:
            self.on_change(key)
        except Exception:
            log.exception("the cache's watcher failed for %s", key)

    def pop(self, key: str, default: Any = None) -> Any:
        if key not in self:
            return default
        value = super().__getitem__(key)
        del self[key]
        return value


class BoundedMemoryCache(SimpleMemoryCache):  # type: ignore[misc]  # aiocache is untyped
    """`SimpleMemoryCache` that never holds more than `max_bytes` nor `max_entries`.

    Built with `timeout=0`: the per-call `asyncio.wait_for` costs more than the lookup itself.
    """

    def __init__(self, max_bytes: int, max_entries: int, **kwargs: Any) -> None:
        super().__init__(timeout=0, **kwargs)
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._cache: _LRUStore = _LRUStore()

    @property
    def nbytes(self) -> int:
        return self._cache.nbytes

    @property
    def degraded(self) -> bool:
        return False  # nothing to lose touch with

    @property
    def state(self) -> str | None:
        return None  # no shared cache to report on

    async def lookup(self, key: str, failure_key: str) -> tuple[Any, Any]:
        """In one process, memory is the shared truth."""
        return self.peek(key), self.peek(failure_key)

    async def publish(self, key: str, value: Any, ttl: float) -> None:
        """No other process to tell: this process's flights already delivered it."""

    async def set_many(self, values: Mapping[str, Any], ttl: float) -> None:
        for key, value in values.items():
            await self.set(key, value, ttl=ttl)

    def peek(self, key: str) -> Any:
        """`get` without aiocache's per-call machinery (plugins, env checks, wait_for).

        This is the cached-hit path of every request, where those layers cost more than the
        lookup itself. TTL expiry still applies: aiocache's timers remove expired entries.
        """
        value = self._cache.get(key)
        if value is not None:
            self._cache.move_to_end(key)
        return value

    @property
    def touch(self) -> Callable[[str], None]:
        """Mark a held key as just used, as `peek` does (the store's own C method: answering
        a ready hit must stay cheap). A key not held raises KeyError."""
        return self._cache.move_to_end

    def watch(self, on_change: Callable[[str], None]) -> None:
        """Call `on_change(key)` whenever an entry is replaced or dropped (one watcher)."""
        self._cache.on_change = on_change

    def __len__(self) -> int:
        return len(self._cache)

    def view(self) -> Mapping[str, Any]:
        """A read-only, live view of what this process holds: for health checks and tests."""
        return MappingProxyType(self._cache)

    def expires_in(self, key: str) -> float | None:
        """Seconds until `key` expires here; None if it is not held or never expires."""
        timer = self._handlers.get(key)
        return None if timer is None else timer.when() - asyncio.get_running_loop().time()

    async def _get(self, key: str, encoding: str = "utf-8", _conn: Any = None) -> Any:
        return self.peek(key)

    async def _set(self, key: str, value: Any, ttl: Any = None, _cas_token: Any = None,
                   _conn: Any = None) -> Any:
        if size_of(value) > self.max_bytes:
            await self._delete(key)  # would evict everything and still not fit; drop the old one
            return False
        stored = await super()._set(key, value, ttl=ttl, _cas_token=_cas_token, _conn=_conn)
        while len(self._cache) > self.max_entries or self._cache.nbytes > self.max_bytes:
            await self._delete(next(iter(self._cache)))
        return stored

    async def _increment(self, key: str, delta: int, _conn: Any = None) -> Any:
        raise NotImplementedError("counters cannot be sized; this cache holds bytes and objects")

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("raw access would bypass the size accounting")

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> bool:
        for key in [k for k in self._cache if namespace is None or k.startswith(namespace)]:
            await self._delete(key)
        return True
