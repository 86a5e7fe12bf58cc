"""The upstream budget: at most N calls a minute to the source, for the whole deployment.

Coalescing makes one key cost the source one call, but every sol is a key of its own: a crawler
walking the sols would cost NASA a call per sol at whatever rate it asks, and NASA blocks an
abusive client by address, for every user of the deployment. So every call `Upstream` makes,
lists and images alike (both land on NASA and either can be driven by a client), first takes a
token from a bucket that holds at most N and gains N a minute: bursts up to N pass, a steady
rate above N a minute does not.

With Redis the bucket is one hash under the deployment's key prefix, changed by one Lua script
on Redis's own clock (`shared_budget.py`), so every instance on that Redis draws from it. In
memory mode, and while Redis cannot be reached, each process draws from a bucket of its own.

The newest list has first call: other calls leave a reserve (`reserve_of`) that only calls made
under `first_call()` may take, and the pipeline makes the newest list's fetches there; however
hard a crawler spends, today's photos still get their refresh.

A call the budget refuses raises `BudgetSpent` at once, a 503 whose `Retry-After` is the
seconds until a token: the pipeline then answers from cache what it can (a stale list).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple, Protocol

from ..errors import BudgetSpent
from ..metrics import Metrics

log = logging.getLogger(__name__)

PERIOD = 60.0  # the budget is N calls per this many seconds
_FIRST: ContextVar[bool] = ContextVar("marsserver_budget_first_call", default=False)


class Draw(NamedTuple):
    """What a bucket said: the tokens left after it, and 0 if a token was taken, else the
    seconds until one could be."""

    left: float
    wait: float


class Bucket(Protocol):
    """A token bucket of N tokens gaining N per period."""

    async def take(self, floor: int) -> Draw:
        """Take a token if more than `floor` are left."""
        ...


@contextmanager
def first_call() -> Iterator[None]:
    """Calls made inside (in this task, and tasks it starts) may take the reserve."""
    token = _FIRST.set(True)
    try:
        yield
    finally:
        _FIRST.reset(token)


def reserve_of(calls: int) -> int:
    """Tokens only the newest list may take: a tenth of the budget, at least one (none in a
    budget of one call, which would leave nothing else)."""
    return max(1, calls // 10) if calls > 1 else 0


class LocalBucket:
    """A token bucket in this process's memory, on a monotonic clock."""

    def __init__(self, capacity: int, period: float = PERIOD,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = float(capacity)
        self._rate = capacity / period
        self._clock = clock
        self._tokens = self._capacity
        self._stamp = clock()

    async def take(self, floor: int) -> Draw:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + max(0.0, now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= floor + 1:
            self._tokens -= 1
            return Draw(self._tokens, 0.0)
        return Draw(self._tokens, (floor + 1 - self._tokens) / self._rate)


class Budget:
    """`calls` calls per `period` to the source (0: unlimited), drawn from `bucket` (by
    default one of this process's own); counted in the metrics, logged once per episode."""

    def __init__(self, calls: int, metrics: Metrics, bucket: Bucket | None = None, *,
                 period: float = PERIOD, clock: Callable[[], float] = time.monotonic) -> None:
        self.calls = calls
        self.reserve = reserve_of(calls)
        self._rate = calls / period
        self._bucket = (bucket or LocalBucket(calls, period, clock)) if calls else None
        self._clock = clock
        self._refused = metrics.upstream_budget_refused
        self._seen = (float(calls), clock())  # tokens left, and when that was seen
        self._spent_until = 0.0  # while refusing: when the last refusal said a token comes
        metrics.upstream_budget_left.set_function(self.left)

    def share(self, bucket: Bucket) -> None:
        """Draw from `bucket`, the deployment's shared one, from now on: it is made with the
        shared cache, after the source this budget's calls go to (whose name keys the cache)."""
        if self.calls:
            self._bucket = bucket

    @property
    def exhausted(self) -> bool:
        """Whether calls other than the newest list's are being refused right now."""
        return self._clock() < self._spent_until

    def left(self) -> float:
        """Tokens left for calls other than the newest list's, as last seen here and refilled
        since (other instances may have taken some); infinite when unlimited."""
        if self._bucket is None:
            return math.inf
        left, seen_at = self._seen
        refilled = left + (self._clock() - seen_at) * self._rate
        return max(0.0, min(float(self.calls), refilled) - self.reserve)

    async def spend(self, kind: str) -> None:
        """Take a token for a call of `kind` ("list" or "image"), or raise `BudgetSpent`."""
        if self._bucket is None:
            return
        first = _FIRST.get()
        left, wait = await self._bucket.take(0 if first else self.reserve)
        now = self._clock()
        self._seen = (left, now)
        if wait <= 0:
            return
        self._refused.labels(kind, "newest" if first else "other").inc()
        if now >= self._spent_until:
            log.warning("the upstream budget of %d calls a minute is spent: calls that need the "
                        "source are refused for about %.0f s, cached answers still served",
                        self.calls, wait)
        self._spent_until = max(self._spent_until, now + wait)
        raise BudgetSpent("this service's budget of calls to the photo source is spent for "
                          "now; what is cached is still served", retry_after=math.ceil(wait),
                          cause=f"upstream budget spent ({kind}, {self.calls} calls a minute)")
