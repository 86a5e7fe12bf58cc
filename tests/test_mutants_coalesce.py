"""Background work at shutdown and when it fails with nobody waiting: what `close` leaves
behind, what is refused after it, and what the operator reads in the log."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings

import pytest

from marsserver.core.coalesce import Background
from marsserver.errors import BadUpstream, Unavailable

from .helpers import until


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
