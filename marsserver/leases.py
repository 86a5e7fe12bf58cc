"""Single flight across processes: one leader per key, elected with a Redis lease.

In-process `SingleFlight` stays in front, so each process sends one contender per key. The
contender that wins `SET lease token NX PX` does the work, renewing the lease while it runs,
and releases it only if it still owns it (compare-and-delete). The others really wait: they
poll the shared cache for the leader's result (or its remembered failure) every `POLL`
seconds. If the leader dies, its lease expires and the next poll takes over; nobody waits
longer than `max_wait`. aiocache's `RedLock` is no substitute: it does not make other
processes wait for the result.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from .errors import Unavailable
from .redis_cache import FAILURES, SharedCache

log = logging.getLogger(__name__)
V = TypeVar("V")

POLL = 0.05
RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
           "return redis.call('del', KEYS[1]) end return 0")
RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
         "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0")


class Leases:
    """Leader election per key on the shared cache's Redis."""

    def __init__(self, cache: SharedCache, lease: float, max_wait: float) -> None:
        self._cache = cache
        self._lease_ms = int(lease * 1000)
        self._max_wait = max_wait

    async def run(self, key: str, work: Callable[[], Awaitable[V]],
                  result: Callable[[], Awaitable[V | None]]) -> V:
        """`work()` if this process wins the lease for `key`, else the winner's `result()`.

        `result` returns the value once the leader stored it, raises its remembered failure,
        or returns None while there is nothing yet. Without Redis, work runs locally.
        """
        deadline = time.monotonic() + self._max_wait
        while True:
            token = await self._acquire(key)
            if token is not None:
                return await self._lead(key, token, partial(self._unless_done, work, result))
            found = await result()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise Unavailable(f"another instance is still making {key.split(':')[0]}",
                                  retry_after=1)
            await asyncio.sleep(POLL)  # bounded polling of the shared cache

    async def try_run(self, key: str, work: Callable[[], Awaitable[object]]) -> bool:
        """Run `work()` only if no other process holds the lease (background refreshes)."""
        token = await self._acquire(key)
        if token is None:
            return False
        await self._lead(key, token, work)
        return True

    @staticmethod
    async def _unless_done(work: Callable[[], Awaitable[V]],
                           result: Callable[[], Awaitable[V | None]]) -> V:
        """A leader that finished just before this one won the lease may have stored it."""
        found = await result()
        return found if found is not None else await work()

    async def _acquire(self, key: str) -> str | None:
        """A token if this process now holds the lease (or Redis is down: lead locally)."""
        client = self._cache.client
        token = secrets.token_hex(16)
        if client is None:
            return token
        try:
            won = await client.set(self._name(key), token, nx=True, px=self._lease_ms)
        except FAILURES as error:
            self._cache.failed(error)
            return token
        return token if won else None

    async def _lead(self, key: str, token: str, work: Callable[[], Awaitable[V]]) -> V:
        renewal = asyncio.create_task(self._renew(key, token))
        try:
            return await work()
        finally:
            renewal.cancel()
            await self._script(RELEASE, key, token)

    async def _renew(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            await self._script(RENEW, key, token, str(self._lease_ms))

    async def _script(self, script: str, key: str, *args: str) -> None:
        client = self._cache.client
        if client is None:
            return
        try:
            await client.eval(script, 1, self._name(key), *args)
        except FAILURES as error:
            self._cache.failed(error)

    def _name(self, key: str) -> str:
        return self._cache.key("lease:" + key)
