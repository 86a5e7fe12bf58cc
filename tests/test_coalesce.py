"""SingleFlight on its own: sharing, the `shared` flag, failures, cancellation, an empty table."""

from __future__ import annotations

import asyncio

import pytest

from marsserver.core.coalesce import SingleFlight

from .helpers import until


class Work:
    """A computation that counts its runs and finishes when told to."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> str:
        self.runs += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return f"result {self.runs}"


async def test_concurrent_callers_share_one_run_and_only_joiners_are_flagged_shared():
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    calls = [asyncio.create_task(flights.do("k", work)) for _ in range(50)]
    await until(lambda: flights.waiters() == {"k": 50})
    work.release.set()
    results = await asyncio.gather(*calls)

    assert work.runs == 1
    assert {value for value, _ in results} == {"result 1"}
    assert [shared for _, shared in results].count(False) == 1
    assert flights.waiters() == {}


async def test_a_failure_reaches_every_waiter_and_the_next_call_runs_again():
    flights: SingleFlight[str, str] = SingleFlight()
    gate = asyncio.Event()
    runs = 0

    async def failing() -> str:
        nonlocal runs
        runs += 1
        await gate.wait()
        raise ValueError("upstream broke")

    calls = [asyncio.create_task(flights.do("k", failing)) for _ in range(5)]
    await until(lambda: flights.waiters() == {"k": 5})
    gate.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert flights.waiters() == {}

    with pytest.raises(ValueError, match="upstream broke"):
        await flights.do("k", failing)
    assert runs == 2


async def test_cancelling_some_waiters_leaves_the_work_running_for_the_rest():
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    calls = [asyncio.create_task(flights.do("k", work)) for _ in range(4)]
    await until(lambda: flights.waiters() == {"k": 4})
    for call in calls[:3]:
        call.cancel()
    await until(lambda: flights.waiters() == {"k": 1})
    work.release.set()

    assert await calls[3] == ("result 1", True)
    assert not work.cancelled


async def test_the_last_waiter_leaving_cancels_the_work_and_a_new_call_starts_fresh():
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    call = asyncio.create_task(flights.do("k", work))
    await until(lambda: flights.waiters() == {"k": 1})
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    assert flights.waiters() == {}
    await until(lambda: work.cancelled)
    work.release.set()
    assert await flights.do("k", work) == ("result 2", False)


async def test_different_keys_run_independently():
    flights: SingleFlight[str, str] = SingleFlight()
    slow, fast = Work(), Work()
    fast.release.set()
    stuck = asyncio.create_task(flights.do("slow", slow))
    await until(lambda: "slow" in flights.waiters())

    assert await flights.do("fast", fast) == ("result 1", False)
    assert not stuck.done()
    slow.release.set()
    await stuck
    assert flights.waiters() == {}
