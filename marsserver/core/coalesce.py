"""Single-flight coalescing, and work that finishes once it has started.

`SingleFlight` is modelled on Go's `singleflight` (one result shared by every caller, plus a
`shared` flag) and on `async-lru`'s shielded task: the flight runs in its own task, every caller
awaits it through `asyncio.shield`, so a caller that goes away (a disconnected client) never
cancels what others still wait for. When the last waiter leaves, the flight is cancelled, so
nothing *waits* for nobody and nothing leaks.

Cancelling a flight must not throw away work that is already paid for: a resize running in a
thread cannot be stopped, and a half-done download is wasted. `Background.finish` runs such work
in a task of its own that outlives the flight that started it; its result is stored by the work
itself, so the next caller finds it cached instead of starting it again.

A failure reaches every waiter of that flight and is then forgotten: the next call starts a new
attempt. Remembering results or failures is the caller's business (see `pipeline`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..errors import ServiceError, Unavailable

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

log = logging.getLogger(__name__)


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

    def running(self, key: K) -> bool:
        flight = self._flights.get(key)
        return flight is not None and not flight.task.done()

    async def do(self, key: K, work: Callable[[], Coroutine[Any, Any, V]]) -> tuple[V, bool]:
        """Return `work()`'s result, sharing one run among concurrent callers of `key`.

        The flag is True when this caller joined a flight another caller started.
        """
        shared = self.running(key)
        flight = self._flights[key] if shared else self._start(key, work)
        flight.waiters += 1
        try:
            return await _outcome(flight.task), shared
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                # The last waiter left (cancelled): stop waiting and let the next caller
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


class Background:
    """Tasks that outlive their callers: started work, and fire-and-forget refreshes.

    Every task is kept until done (so none is garbage-collected mid-run) and every outcome is
    retrieved (so none ends as "Task exception was never retrieved"). `close` cancels what is
    left, at shutdown.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._by_key: dict[Hashable, asyncio.Task[Any]] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def running(self, key: Hashable) -> bool:
        """Whether work for `key` runs (its callers may have left)."""
        return key in self._by_key

    async def join(self, key: Hashable) -> Any:
        """The outcome of the work running for `key` (see `running`)."""
        return await _outcome(self._by_key[key])

    async def finish(self, key: Hashable, work: Coroutine[Any, Any, T]) -> T:
        """`await work`, except that cancelling the caller does not cancel the work; while
        work for `key` runs (its first callers may have left), join it instead of repeating
        it."""
        running = self._by_key.get(key)
        if running is not None or self._closed:
            work.close()
        if running is not None:
            return await _outcome(running)
        if self._closed:
            raise Unavailable("the service is shutting down; try again", retry_after=1)
        task = self._keep(asyncio.create_task(work))
        self._by_key[key] = task
        task.add_done_callback(lambda _: self._by_key.pop(key, None))
        return await _outcome(task)

    def spawn(self, work: Coroutine[Any, Any, object], what: str) -> None:
        """Run `work` with nobody waiting; its failure is logged, never lost."""
        if self._closed:
            work.close()
            return
        task = self._keep(asyncio.create_task(work))
        task.add_done_callback(log_failure(what))

    async def close(self) -> None:
        """Cancel what is left and refuse new work: the app is shutting down."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _keep(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here; whoever awaited it has seen it too


def log_failure(what: str) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback that logs how a task nobody waits for failed."""
    def report(task: asyncio.Task[Any]) -> None:
        error = None if task.cancelled() else task.exception()
        if isinstance(error, ServiceError):
            log.warning("%s failed: %s", what, error.detail)
        elif error is not None:
            log.error("%s failed", what, exc_info=error)
    return report


async def _outcome(task: asyncio.Task[T]) -> T:
    """The task's result through a shield; a cancellation that came from elsewhere (shutdown,
    an embedding app) reaches this caller as a clean `Unavailable`, not a dropped connection."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and current is not None and not current.cancelling():
            raise Unavailable("the work for this request was cancelled (the service may be "
                              "shutting down); try again", retry_after=1) from None
        raise
