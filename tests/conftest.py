"""Shared test fixtures: a real local stub of NASA's feed, mocked upstreams, a hand-moved clock,
a Redis per test, and a guard that fails any test whose event loop saw an error nobody raised.

Tests that need a program from outside pip are marked `external` (those getting a
redis-server through a fixture, here; the others where they are written), and only they may
look one up: in any other test, asking for one fails, so `pytest -m "not external"` passes
on a machine without them, and every full run proves it still would."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import aiohttp
import aioresponses.core
import pytest
import redis.asyncio as redis
from aiohttp import ClientResponse, TCPConnector, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient, AiohttpServer

from marsserver import Settings, create_app, imaging
from marsserver.imaging import Spec
from marsserver.sources import Source
from marsserver.upstream import Upstream

from .helpers import Clock
from .redis_server import RedisServer
from .stub import Stub

LoopErrors = list[dict[str, Any]]

# Programs from outside pip the tests use (`.ci/run` installs them; `require_tool` finds them).
EXTERNAL_TOOLS = frozenset({"chromium", "nginx", "openssl", "redis-server", "ss"})
# Fixtures that start a redis-server (or, with MARS_TEST_REDIS_URL, need a Redis).
EXTERNAL_FIXTURES = frozenset({"redis_url", "redis_server"})


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `external` every test that gets a Redis through its fixtures."""
    for item in items:
        if EXTERNAL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.external)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Outside tests marked `external`, looking up an external program fails the test."""
    if item.get_closest_marker("external"):
        return (yield)
    which = shutil.which

    def only_in_external_tests(name: str, *args: Any, **kwargs: Any) -> str | None:
        if Path(name).name in EXTERNAL_TOOLS:
            pytest.fail(f"{item.nodeid} needs {name}, a program from outside pip: mark it "
                        "`external` (`-m 'not external'` must pass without it)", pytrace=False)
        return which(name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shutil, "which", only_in_external_tests)
        return (yield)


@pytest.fixture(scope="session", autouse=True)
def _frozen_heap() -> None:
    """Keep what was imported before the first test out of the full collection `loop_errors`
    runs after every test: with hypothesis, schemathesis and Pillow loaded, scanning it all
    took 150 ms a test; what tests create themselves is still collected."""
    gc.freeze()


@pytest.fixture(autouse=True)
async def loop_errors() -> AsyncIterator[LoopErrors]:
    """Record what reaches the test's event loop's exception handler; fail the test if any.

    asyncio only logs "Task exception was never retrieved", exceptions in callbacks and the
    like, so `filterwarnings = error` never sees them and a crashed background task would pass.
    Autouse and set up first, this wraps the other fixtures' teardown too; it runs on the loop
    pytest-asyncio gives each test, which is also the one pytest-aiohttp's fixtures use.
    """
    loop = asyncio.get_running_loop()
    recorded: LoopErrors = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: recorded.append(context))
    try:
        yield recorded
        gc.collect()  # a task's unretrieved exception is reported when the task is collected
    finally:
        loop.set_exception_handler(previous)
    fail_on_loop_errors(recorded)


def fail_on_loop_errors(recorded: LoopErrors) -> None:
    if recorded:
        pytest.fail("the event loop reported errors nobody handled:\n"
                    + "\n".join(map(_described, recorded)), pytrace=False)


def _described(context: dict[str, Any]) -> str:
    error = context.get("exception")
    where = "".join(traceback.format_exception(error)) if error else ""
    return f"- {context.get('message', 'no message')}: {where or context}"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The wall clock every marsserver module reads (`time.time()`), stopped at an instant.

    Cache expiry runs on the event loop's own clock, so moving this one ages what responses
    say (max-age, Age) and when the list goes stale, without expiring anything.
    """
    fake = Clock(1_700_000_000.0)
    fake.install(monkeypatch, *(module for name, module in list(sys.modules.items())
                                if name.split(".")[0] == "marsserver"
                                and getattr(module, "time", None) is time))
    return fake


class _ShimResponse(ClientResponse):
    """aioresponses 0.7.9 builds `ClientResponse` without `stream_writer`, which aiohttp >= 3.13
    requires (pnuckowski/aioresponses#289). Supply a stand-in until a fixed release exists."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", Mock(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def mock_nasa(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses.aioresponses]:
    """aioresponses for unit tests; the local test client and stub still pass through."""
    monkeypatch.setattr(aioresponses.core, "ClientResponse", _ShimResponse)
    with aioresponses.aioresponses(passthrough=["http://127.0.0.1"]) as mocked:
        yield mocked


@pytest.fixture
async def stub(aiohttp_server: AiohttpServer) -> Stub:
    fake = Stub()
    fake.port = (await aiohttp_server(fake.app())).port
    return fake


@pytest.fixture
def resizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Heights of every resize the pipeline runs (it runs them in threads)."""
    done: list[int] = []
    lock = threading.Lock()
    real = imaging.wallpaper

    def counting(data: bytes, spec: Spec, **kwargs: Any) -> bytes:
        with lock:
            done.append(spec.height)
        return real(data, spec, **kwargs)

    monkeypatch.setattr(imaging, "wallpaper", counting)
    return done


@pytest.fixture
def client_for(aiohttp_client: AiohttpClient,
               ) -> Callable[[Settings], Awaitable[TestClient[web.Request, web.Application]]]:
    async def make(settings: Settings) -> TestClient[web.Request, web.Application]:
        # No client connection limit, so bursts really are concurrent. (aiohttp's TestServer
        # cancels handlers whose client goes away: the harshest case for coalescing.)
        return await aiohttp_client(create_app(settings), connector=TCPConnector(limit=0))
    return make


@pytest.fixture
async def demo_client(aiohttp_client: AiohttpClient,
                      ) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_app(Settings(source="demo")))


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    """A Redis database for one test: MARS_TEST_REDIS_URL when set (a database the tests may
    flush, flushed afterwards), else a redis-server of this test's own on a free port."""
    url = os.environ.get("MARS_TEST_REDIS_URL")
    if url:
        try:
            yield url
        finally:
            shared = redis.Redis.from_url(url)
            await shared.flushdb()
            await shared.aclose()
        return
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for an `Upstream` under test, closed afterwards."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def upstream(session: aiohttp.ClientSession) -> Upstream:
    """An `Upstream` for mocked NASA (`mock_nasa`): mars.nasa.gov and images.example:8443
    allowed, answers of at most 1000 bytes, no retries."""
    return Upstream(session, ("mars.nasa.gov", "images.example:8443"), max_bytes=1000,
                    retries=0)


@pytest.fixture
def app_for(aiohttp_client: AiohttpClient,
            ) -> Callable[..., Awaitable[TestClient[web.Request, web.Application]]]:
    """An instance of the service around `source`; several share a Redis like processes do."""
    async def make(source: Source, **settings: Any) -> TestClient[web.Request, web.Application]:
        app = create_app(Settings(**{"source": "demo", **settings}), source=source)
        return await aiohttp_client(app, connector=TCPConnector(limit=0))
    return make
