"""Single flight across processes: one leader per key, elected with a Redis lease.

Lock order is always flight, then lease: only a flight's own task asks for a lease, so each
process sends one contender per key, and nothing holding a lease ever waits on a flight.

The contender whose `SET lease token NX` wins leads: it checks the shared cache once more (the
previous leader may have just stored the value), does the work, renews the lease while the work
runs, and releases it only if it still owns it (compare-and-delete). The work, once started,
finishes even if every waiter leaves, and the lease is held until it has been stored. The others
learn the leader's token from the same `SET ... GET` and poll the shared cache every `POLL`
seconds for the value, a remembered failure, or the failure that leader published. If the
leader dies, its lease expires and the next poll takes over; nobody waits longer than `max_wait`.
aiocache's `RedLock` is no substitute: it does not make other processes wait for the result.

No lease is held for nobody: a `SET` sent is answered even when its waiters leave (a lease won
then is released), a `SET` that timed out is asked again with the same token (it may have
won), and while this process still does the work for a key, a new flight joins that work
instead of contending for a second lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from ..errors import Unavailable
from .coalesce import Background
from .redis_cache import SharedCache, Unreachable

log = logging.getLogger(__name__)
V = TypeVar("V")

POLL = 0.05
RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
           "return redis.call('del', KEYS[1]) end return 0")
RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
         "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0")

Lead = Callable[[str], Awaitable[V]]  # the work, given the lease's token
Check = Callable[[frozenset[str]], Awaitable[V | None]]  # the shared result, given the holders


class Leases:
    """Leader election per key on the shared cache's Redis."""

    def __init__(self, cache: SharedCache, background: Background, lease: float,
                 max_wait: float) -> None:
        self._cache = cache
        self._background = background
        self._lease_ms = int(lease * 1000)
        self._max_wait = max_wait
        self._note_ms = self._lease_ms + int(max_wait * 1000)  # as long as a follower waits

    async def run(self, key: str, lead: Lead[V], check: Check[V]) -> V:
        """`lead(token)` if this process wins the lease for `key`, else the winner's result.

        `check(holders)` returns the value once stored, raises a remembered failure (or one
        published by a holder we waited on), or returns None while there is nothing yet.
        Work for `key` still running here (its first waiters left) is joined: this process
        leads it already. With Redis down, this process leads alone; a request that was
        merely slow is asked again (with the same token: it may have won).
        """
        deadline = time.monotonic() + self._max_wait
        token = secrets.token_hex(16)
        holders: set[str] = set()  # the leaders we waited on: their published failures are ours
        while True:
            if self._background.running(key):
                return await self._background.join(key)  # type: ignore[no-any-return]
            holder = await self._acquire(key, token)
            if holder is None:
                recheck = partial(check, frozenset(holders))
                return await self._background.finish(key, self._lead(key, token, lead, recheck))
            if holder:
                holders.add(holder)
            found = await check(frozenset(holders))
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise Unavailable(f"another instance is still making {key.split(':')[0]}",
                                  retry_after=1)
            await asyncio.sleep(POLL)  # bounded polling of the shared cache

    async def note(self, token: str, text: str) -> None:
        """What the holder of lease `token` says about its work (its trace span), for the
        followers that waited on it to read with `notes` once they have its result. A note
        that cannot be written is left out: it is not the work."""
        with contextlib.suppress(Unreachable):
            await self._cache.call(lambda: self._cache.client.set(
                self._note(token), text, px=self._note_ms))

    async def notes(self, tokens: frozenset[str]) -> list[str]:
        """The notes the holders of leases `tokens` wrote (none if Redis cannot say)."""
        names = [self._note(token) for token in tokens]
        try:
            found = await self._cache.call(lambda: self._cache.client.mget(names))
        except Unreachable:
            return []
        return [note.decode(errors="replace") if isinstance(note, bytes) else str(note)
                for note in found if note is not None]

    async def _acquire(self, key: str, token: str) -> str | None:
        """None if this process now holds the lease (or Redis is down: lead locally), else
        the current holder's token ("" if the request failed: nobody knows who holds it).

        Once sent, the request's reply is awaited even if this flight is cancelled meanwhile
        (the last waiter left): a lease won for nobody is released, not left to expire while
        every instance waits on it."""
        request = asyncio.create_task(self._cache.call(lambda: self._cache.client.set(
            self._name(key), token, nx=True, px=self._lease_ms, get=True)))
        try:
            held = await asyncio.shield(request)
        except Unreachable:
            return None if self._cache.degraded else ""
        except asyncio.CancelledError:
            with contextlib.suppress(Unreachable):
                if _holder(await request, token) is None:
                    await self._script(RELEASE, key, token)
            raise
        return _holder(held, token)

    async def _lead(self, key: str, token: str, lead: Lead[V],
                    recheck: Callable[[], Awaitable[V | None]]) -> V:
        renewal = asyncio.create_task(self._renew(key, token))
        try:
            found = await recheck()  # the leader before us may have just stored (or failed)
            return found if found is not None else await lead(token)
        finally:
            renewal.cancel()
            await self._script(RELEASE, key, token)

    async def _renew(self, key: str, token: str) -> None:
        """Keep the lease while the work runs, however long; say so once if it was lost (it
        cannot be won back by renewing: another instance may hold it now)."""
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            if await self._script(RENEW, key, token, str(self._lease_ms)) == 0:
                log.warning("lost the Redis lease for %s: another instance may repeat it", key)
                return

    async def _script(self, script: str, key: str, *args: str) -> object:
        try:
            return await self._cache.call(
                lambda: self._cache.client.eval(script, 1, self._name(key), *args))
        except Unreachable:
            return None

    def _name(self, key: str) -> str:
        return self._cache.key("lease:" + key)

    def _note(self, token: str) -> str:
        return self._cache.key("lease-note:" + token)


def _holder(held: object, token: str) -> str | None:
    """What `SET ... NX GET` answered: None if `token` holds the lease (set now, or by an
    earlier request of ours whose reply was lost), else the holder's token."""
    if held is None:
        return None
    holder = held.decode(errors="replace") if isinstance(held, bytes) else str(held)
    return None if holder == token else holder
