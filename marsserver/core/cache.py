"""In-memory TTL cache on aiocache, bounded by entries and bytes, least recently used out first.

aiocache's memory backend keeps entries in a plain dict with no size bound, and every call
goes through `asyncio.wait_for` unless `timeout=0`. This module keeps aiocache's API and TTL
timers (so a Redis backend can take its place) and swaps that dict for one that counts bytes
and evicts the least recently used entries when a bound is exceeded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import ChainMap, OrderedDict
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

    `peek` is this process's memory only (the hot path); `lookup` is the shared truth (of one
    or several keys, in one round trip), read once per flight; `publish` makes a value
    visible to other processes only (a failure their followers must see, but that this
    process has already delivered to its own waiters).
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

    async def lookup(self, *keys: str) -> tuple[Any, ...]: ...

    async def set(self, key: str, value: Any, ttl: float) -> Any: ...

    async def set_many(self, values: Mapping[str, Any], ttl: float) -> Any: ...

    async def publish(self, key: str, value: Any, ttl: float) -> Any: ...

    async def delete(self, key: str) -> Any: ...

    async def clear(self) -> Any: ...

    async def close(self) -> Any: ...


class _Space(OrderedDict[str, Any]):
    """Entries in LRU order, with their byte count and the bounds that hold for them.

    Counting in `[]=`, `del` and `pop` sees every insertion, TTL expiry and deletion without
    reaching into aiocache's internals, and `on_change` hears of every entry replaced or
    dropped.
    """

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.nbytes = 0
        self.on_change: Callable[[str], None] | None = None

    @property
    def overfull(self) -> bool:
        return len(self) > self.max_entries or self.nbytes > self.max_bytes

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


class _Store(_Space):
    """The dict aiocache's memory backend stores entries in: keys that start with `index`
    (when given) in a space of their own, a quarter of the entries and a sixteenth of the
    bytes, the rest in itself.

    aiocache touches its store only through `[]=`, `get`, `pop` and `in`, so routing those
    keeps its TTL timers working for both spaces.
    """

    def __init__(self, max_bytes: int, max_entries: int, index: str) -> None:
        share = (max_bytes // 16, max_entries // 4) if index else (0, 0)
        super().__init__(max_bytes - share[0], max_entries - share[1])
        self.index = _Space(*share)
        self._prefix = index

    def space(self, key: str) -> _Space:
        return self.index if self._prefix and key.startswith(self._prefix) else self

    def __setitem__(self, key: str, value: Any) -> None:
        space = self.space(key)
        if space is self:
            super().__setitem__(key, value)
        else:
            space[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        space = self.space(key)
        return super().get(key, default) if space is self else space.get(key, default)

    def pop(self, key: str, default: Any = None) -> Any:
        space = self.space(key)
        return super().pop(key, default) if space is self else space.pop(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and self.space(key) is self.index:
            return key in self.index
        return super().__contains__(key)


class BoundedMemoryCache(SimpleMemoryCache):  # type: ignore[misc]  # aiocache is untyped
    """`SimpleMemoryCache` that never holds more than `max_bytes` nor `max_entries`.

    Keys that start with `index` (the photo index, which every listed photo adds to) have a
    space of their own and evict only each other: however many lists are asked for, they
    cannot push a wallpaper out.

    Built with `timeout=0`: the per-call `asyncio.wait_for` costs more than the lookup itself.
    """

    def __init__(self, max_bytes: int, max_entries: int, index: str = "", **kwargs: Any) -> None:
        super().__init__(timeout=0, **kwargs)
        self._cache: _Store = _Store(max_bytes, max_entries, index)

    @property
    def nbytes(self) -> int:
        return self._cache.nbytes + self._cache.index.nbytes

    @property
    def degraded(self) -> bool:
        return False  # nothing to lose touch with

    @property
    def state(self) -> str | None:
        return None  # no shared cache to report on

    async def lookup(self, *keys: str) -> tuple[Any, ...]:
        """In one process, memory is the shared truth."""
        return tuple(map(self.peek, keys))

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
        space = self._cache.space(key)
        value = space.get(key)
        if value is not None:
            space.move_to_end(key)
        return value

    @property
    def touch(self) -> Callable[[str], None]:
        """Mark a held key (not the index's) as just used, as `peek` does (the store's own C
        method: answering a ready hit must stay cheap). A key not held raises KeyError."""
        return self._cache.move_to_end

    def watch(self, on_change: Callable[[str], None]) -> None:
        """Call `on_change(key)` whenever an entry is replaced or dropped (one watcher)."""
        self._cache.on_change = self._cache.index.on_change = on_change

    def __len__(self) -> int:
        return len(self._cache) + len(self._cache.index)

    def view(self) -> Mapping[str, Any]:
        """A read-only, live view of what this process holds: for health checks and tests."""
        return MappingProxyType(ChainMap(self._cache, self._cache.index))

    def expires_in(self, key: str) -> float | None:
        """Seconds until `key` expires here; None if it is not held or never expires."""
        timer = self._handlers.get(key)
        return None if timer is None else timer.when() - asyncio.get_running_loop().time()

    async def _get(self, key: str, encoding: str = "utf-8", _conn: Any = None) -> Any:
        return self.peek(key)

    async def _set(self, key: str, value: Any, ttl: Any = None, _cas_token: Any = None,
                   _conn: Any = None) -> Any:
        space = self._cache.space(key)
        if size_of(value) > space.max_bytes:
            await self._delete(key)  # would evict everything and still not fit; drop the old one
            return False
        stored = await super()._set(key, value, ttl=ttl, _cas_token=_cas_token, _conn=_conn)
        while space.overfull:
            await self._delete(next(iter(space)))
        return stored

    async def _increment(self, key: str, delta: int, _conn: Any = None) -> Any:
        raise NotImplementedError("counters cannot be sized; this cache holds bytes and objects")

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("raw access would bypass the size accounting")

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> bool:
        for key in [k for k in self.view() if namespace is None or k.startswith(namespace)]:
            await self._delete(key)
        return True
