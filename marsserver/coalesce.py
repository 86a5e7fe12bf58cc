"""Single-flight coalescing: concurrent callers for one key share one in-flight computation.

Modelled on Go's `singleflight` (one result shared by every caller, plus a `shared` flag) and on
`async-lru`'s shielded task: the work runs in its own task, every caller awaits it through
`asyncio.shield`, so a caller that goes away (a disconnected client) never cancels work that
others still wait for. Only when the last waiter leaves is the work cancelled, so nothing runs
for nobody and nothing leaks.

A failure is delivered to every waiter of that flight and then forgotten: the next call starts
a new attempt. Caching results is the caller's business (see `pipeline`), not this module's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class _Flight(Generic[V]):
    task: asyncio.Task[V]
    waiters: int = field(default=0)


class SingleFlight(Generic[K, V]):
    """A table of in-flight computations keyed by `K`; empty whenever nothing runs."""

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}

    def waiters(self) -> dict[K, int]:
        """Waiters per in-flight key: for metrics, health checks and tests."""
        return {key: flight.waiters for key, flight in self._flights.items()}

    async def do(self, key: K, work: Callable[[], Coroutine[Any, Any, V]]) -> tuple[V, bool]:
        """Return `work()`'s result, sharing one run among concurrent callers of `key`.

        The flag is True when this caller joined a flight another caller started.
        """
        flight = self._flights.get(key)
        shared = flight is not None and not flight.task.done()
        if flight is None or not shared:
            flight = self._start(key, work)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task), shared
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                # The last waiter left (cancelled): stop the work and let the next caller
                # start afresh rather than join a flight that is being torn down.
                flight.task.cancel()
                self._forget(key, flight)

    def _start(self, key: K, work: Callable[[], Coroutine[Any, Any, V]]) -> _Flight[V]:
        flight: _Flight[V] = _Flight(asyncio.create_task(work()))
        self._flights[key] = flight
        flight.task.add_done_callback(lambda _: self._forget(key, flight))
        return flight

    def _forget(self, key: K, flight: _Flight[V]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
