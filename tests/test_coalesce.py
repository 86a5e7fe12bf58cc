"""core/coalesce.py on its own: `SingleFlight` (sharing, the `shared` flag, failures,
cancellation, an empty table, random joins and cancellations) and `Background` (work at
shutdown and when it fails with nobody waiting: what `close` leaves behind, what is refused
after it, what the operator reads in the log; cases mutation testing showed no other test
pinned down, tests/MUTANTS.md)."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import warnings

import pytest

from marsserver.core.coalesce import Background, SingleFlight
from marsserver.errors import BadUpstream, Unavailable

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


async def test_singleflight_tells_waiters_when_the_flight_was_cancelled_elsewhere():
    flights: SingleFlight[str, str] = SingleFlight()
    started = asyncio.Event()

    async def work() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    waiters = [asyncio.create_task(flights.do("k", work)) for _ in range(3)]
    await started.wait()
    next(iter(t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == work.__qualname__)
         ).cancel()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(outcome, Unavailable) for outcome in outcomes)
    assert flights.waiters() == {}


async def test_singleflight_survives_random_joins_cancellations_and_failures():
    flights: SingleFlight[int, int] = SingleFlight()
    background = Background()
    rng = random.Random(20261126)
    gates = {key: asyncio.Event() for key in range(4)}

    async def work(key: int) -> int:
        await gates[key].wait()
        if rng.random() < 0.3:
            raise BadUpstream("random failure")
        return key

    async def caller(key: int) -> int:
        value, _ = await flights.do(key, lambda: background.finish(key, work(key)))
        return value

    tasks: list[asyncio.Task[int]] = []
    for _ in range(400):
        action = rng.random()
        key = rng.randrange(4)
        if action < 0.6:
            tasks.append(asyncio.create_task(caller(key)))
        elif action < 0.8 and tasks:
            rng.choice(tasks).cancel()
        else:
            gates[key].set()
            gates[key] = asyncio.Event()
        await asyncio.sleep(0)
    for gate in gates.values():
        gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for task, outcome in zip(tasks, outcomes, strict=True):
        assert task.cancelled() or isinstance(outcome, (int, BadUpstream))
    await until(lambda: not background)
    assert flights.waiters() == {}


# Background --------------------------------------------------------------------------------

async def fails_with(error: Exception) -> None:
    raise error


async def test_close_cancels_running_work_and_waits_until_it_has_stopped():
    background = Background()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    background.spawn(work(), "refresh")
    await started.wait()
    await background.close()
    assert stopped.is_set()
    assert len(background) == 0


async def test_after_close_new_work_is_refused_and_never_started():
    background = Background()
    await background.close()
    ran = []

    async def work() -> str:
        ran.append(True)
        return "done"

    with pytest.raises(Unavailable) as raised:
        await background.finish("wallpaper", work())
    assert (raised.value.detail, raised.value.retry_after) == (
        "the service is shutting down; try again", 1)
    background.spawn(work(), "refresh")
    assert (ran, len(background)) == ([], 0)


async def test_a_service_error_nobody_waits_for_is_one_warning_naming_the_work(caplog):
    background = Background()
    with caplog.at_level(logging.WARNING, logger="marsserver.core.coalesce"):
        background.spawn(fails_with(BadUpstream("NASA answered HTTP 503")), "list refresh")
        await until(lambda: len(background) == 0)
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("WARNING", "list refresh failed: NASA answered HTTP 503", None)]


async def test_a_bug_nobody_waits_for_is_logged_as_an_error_with_its_traceback(caplog):
    background = Background()
    with caplog.at_level(logging.WARNING, logger="marsserver.core.coalesce"):
        background.spawn(fails_with(KeyError("oops")), "list refresh")
        await until(lambda: len(background) == 0)
    [record] = caplog.records
    assert (record.levelname, record.getMessage()) == ("ERROR", "list refresh failed")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)


async def test_work_cancelled_at_shutdown_logs_nothing(caplog):
    background = Background()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    with caplog.at_level(logging.DEBUG, logger="marsserver.core.coalesce"):
        background.spawn(work(), "list refresh")
        await started.wait()
        await background.close()
    assert caplog.records == []


async def test_finish_joins_work_already_running_for_its_key_and_forgets_it_when_done():
    background = Background()
    release, runs = asyncio.Event(), []

    async def work(n: int) -> str:
        runs.append(n)
        await release.wait()
        return f"made by {n}"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = asyncio.create_task(background.finish("wallpaper", work(1)))
        await until(lambda: runs == [1])
        second = asyncio.create_task(background.finish("wallpaper", work(2)))
        release.set()
        assert await asyncio.gather(first, second) == ["made by 1", "made by 1"]
        del first, second
        gc.collect()
    assert [str(w.message) for w in caught] == []  # the joiner's own work was closed, unrun
    assert await background.finish("wallpaper", work(3)) == "made by 3"
    assert runs == [1, 3]


async def caller_of_endless_work(background: Background) -> asyncio.Task[str]:
    """A caller waiting on work that never ends by itself, once that work has started."""
    started = asyncio.Event()

    async def work() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    caller = asyncio.create_task(background.finish("wallpaper", work()))
    await started.wait()
    return caller


async def test_a_caller_whose_work_is_cancelled_at_shutdown_is_told_to_retry():
    background = Background()
    caller = await caller_of_endless_work(background)
    await background.close()
    with pytest.raises(Unavailable) as raised:
        await caller
    assert (raised.value.detail, raised.value.retry_after) == (
        "the work for this request was cancelled (the service may be shutting down); try again",
        1)


async def test_a_caller_cancelled_itself_stays_cancelled_when_shutdown_cancels_its_work_too():
    background = Background()
    caller = await caller_of_endless_work(background)
    caller.cancel()
    await background.close()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_caller_cancelled_just_after_its_work_was_stays_cancelled():
    """The work's cancellation lands first, the caller's own in the same loop pass: the
    caller was cancelled itself, so it must not be told to retry."""
    background = Background()
    caller = await caller_of_endless_work(background)
    [work] = asyncio.all_tasks() - {caller, asyncio.current_task()}
    work.cancel()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert work.cancelled()
