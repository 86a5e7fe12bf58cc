"""A cache shared by many instances: Redis, through aiocache, behind a small in-process front.

Values are pickled under a key prefix that carries a schema version, so an upgrade never
reads entries of an older format. Every read that reaches Redis also asks for the entry's
remaining TTL and gives the front copy exactly that, so the front never serves past Redis.

When Redis is down or slow the service must not fail: the first error logs once, switches to
the front alone (memory cache, local coalescing) and marks the cache `degraded`; after
`RETRY_AFTER` seconds the next operation tries Redis again, and a success logs the recovery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiocache import RedisCache
from aiocache.serializers import PickleSerializer
from redis.exceptions import RedisError
from yarl import URL

from .cache import BoundedMemoryCache

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
PREFIX = f"marsserver:v{SCHEMA_VERSION}"  # aiocache adds the ":" before each key
TIMEOUT = 0.5  # seconds any one Redis call may take before we treat Redis as down
RETRY_AFTER = 2.0
FAILURES = (RedisError, OSError, asyncio.TimeoutError)


class SharedCache:
    """The pipeline's cache API (`peek`, `get`, `set`, `delete`, `clear`) over Redis."""

    def __init__(self, url: str, front: BoundedMemoryCache, prefix: str = PREFIX) -> None:
        where = URL(url)
        self.front = front
        self.redis = RedisCache(
            serializer=PickleSerializer(), namespace=prefix, timeout=TIMEOUT,
            endpoint=where.host or "127.0.0.1", port=where.port or 6379,
            db=int(where.path.strip("/") or 0), password=where.password,
            create_connection_timeout=TIMEOUT,
            connection_pool_kwargs={"socket_timeout": TIMEOUT})
        self._down_until = 0.0

    @property
    def degraded(self) -> bool:
        return self._down_until > 0

    @property
    def client(self) -> Any:
        """The redis-py client, for leases; None while Redis is considered down."""
        return None if time.monotonic() < self._down_until else self.redis.client

    def key(self, key: str) -> str:
        return str(self.redis.build_key(key))

    def peek(self, key: str) -> Any:
        return self.front.peek(key)

    async def get(self, key: str) -> Any:
        value = self.front.peek(key)
        if value is not None:
            return value
        return await self._shared(key)

    async def reload(self, key: str) -> Any:
        """The shared value, even if this instance's front holds an older one; the front's
        own copy when Redis has none or cannot be reached (it may be all we have)."""
        shared = await self._shared(key)
        return shared if shared is not None else self.front.peek(key)

    async def _shared(self, key: str) -> Any:
        """The value in Redis, copied into the front with its remaining TTL; None if absent."""
        if self.client is None:
            return None
        try:
            async with self.redis.client.pipeline(transaction=False) as batch:
                batch.get(self.key(key))
                batch.pttl(self.key(key))
                raw, pttl = await asyncio.wait_for(batch.execute(), TIMEOUT)
        except FAILURES as error:
            self.failed(error)
            return None
        self.recovered()
        if raw is None or pttl <= 0:
            return None
        value = self.redis.serializer.loads(raw)
        await self.front.set(key, value, ttl=pttl / 1000)
        return value

    async def set(self, key: str, value: Any, ttl: float) -> None:
        await self.front.set(key, value, ttl=ttl)
        await self._redis("set", key, value, ttl=float(ttl))

    async def delete(self, key: str) -> None:
        await self.front.delete(key)
        await self._redis("delete", key)

    async def clear(self) -> None:
        """Forget this instance's front; Redis is shared and keeps its entries."""
        await self.front.clear()

    async def close(self) -> None:
        await self.redis.client.aclose()  # aiocache's close() calls redis-py's deprecated one

    async def _redis(self, operation: str, *args: Any, **kwargs: Any) -> None:
        if self.client is None:
            return
        try:
            await getattr(self.redis, operation)(*args, **kwargs)
        except FAILURES as error:
            self.failed(error)
        else:
            self.recovered()

    def failed(self, error: BaseException) -> None:
        """Redis failed: use the front alone for a while (logged once, not per request)."""
        if not self.degraded:
            log.warning("Redis unreachable (%s): serving from memory, local coalescing only",
                        type(error).__name__)
        self._down_until = time.monotonic() + RETRY_AFTER

    def recovered(self) -> None:
        if self.degraded:
            log.warning("Redis is back: sharing the cache again")
        self._down_until = 0.0
