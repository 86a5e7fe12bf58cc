"""The test harness itself: errors on the event loop fail a test, a missing tool fails the test
that needs it (never a skip: such tests are marked `external`, and `-m "not external"` leaves
them out), and the subprocess helper reports a server that never starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import helpers
from .helpers import Marsserver, require_tool

ROOT = Path(__file__).parent.parent

INNER_TESTS = '''
import asyncio
import gc

from aiohttp import web

from tests.conftest import _frozen_heap, loop_errors  # noqa: F401  (the fixtures under test)

gc.disable()  # only the fixture's own collection may find garbage in cycles


async def crash() -> None:
    raise RuntimeError("background task crashed")


def boom() -> None:
    raise RuntimeError("callback crashed")


async def test_an_unretrieved_task_exception_on_pytest_asyncios_loop():
    task = asyncio.get_running_loop().create_task(crash())
    await asyncio.wait([task])  # done, and nobody ever asks for its exception
    cycle = [task]
    cycle.append(cycle)  # as tasks often are: freed, and reported, by a collection only


async def test_a_crashing_callback_on_pytest_aiohttps_loop(aiohttp_client):
    async def handler(request: web.Request) -> web.Response:
        asyncio.get_running_loop().call_soon(boom)
        return web.Response(text="fine")

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    assert await (await client.get("/")).text() == "fine"


async def test_a_clean_test_passes(aiohttp_client):
    assert (await (await aiohttp_client(web.Application())).get("/")).status == 404
'''


def test_errors_only_the_event_loop_saw_fail_the_test(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini("[pytest]\nasyncio_mode = auto\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_an_unretrieved_task_exception_on_pytest_asyncios_loop*",
        "*Task exception was never retrieved*",
        "RuntimeError: background task crashed",
        "*ERROR at teardown of test_a_crashing_callback_on_pytest_aiohttps_loop*",
        "*Exception in callback boom()*",
        "RuntimeError: callback crashed",
    ])


def test_a_missing_tool_fails_the_test_and_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(helpers.shutil, "which", lambda *_, **__: None)
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception),
                       match=r"no-such-tool is not installed \(apt-get install it") as caught:
        require_tool("no-such-tool", "apt-get install it")
    assert caught.type is pytest.fail.Exception  # (a skip must not just skip this test)


def test_a_present_tool_is_found_also_in_sbin(monkeypatch):
    monkeypatch.setenv("PATH", "/nowhere")
    monkeypatch.setattr(helpers.shutil, "which",
                        lambda name, path: f"/usr/sbin/{name}" if "/usr/sbin" in path else None)
    assert require_tool("nginx", "apt-get install nginx-light") == "/usr/sbin/nginx"


def test_a_server_that_never_listens_is_reported_with_its_log():
    with (pytest.raises(AssertionError, match=r"(?s)never logged 'listening on '.*no-such-flag"),
          Marsserver("--no-such-flag")):
        pass
