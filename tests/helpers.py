"""Small helpers for tests: reaching into an app, waiting for a condition, the README's literal
presets, external tools, `marsserver` run as its own process, a request sent byte for byte, and
`Gated`, a stand-in source whose answers a test holds and releases."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import ModuleType, TracebackType
from typing import Any, ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestClient

from marsserver.core.pipeline import Pipeline
from marsserver.errors import BadUpstream, NotFound
from marsserver.http.handlers import PIPELINE
from marsserver.sources import Listing, Photo, Query, QuerySource

from .stub import IMAGES

# A permalink of the demo source (its photo 0 of sol 4000), at a small height.
DEMO_PERMALINK = "/photos/demo-4000-0/wallpaper?height=100"

# The README's preset table, written out: tests compare the service with this, never with the
# code's own table, so a wrong size in the code cannot agree with itself.
README_PRESETS = {
    "720p": (1280, 720), "1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160),
    "ultrawide": (3440, 1440), "phone": (1170, 2532), "tablet": (1640, 2360),
}

def pipeline_of(client: TestClient[web.Request, web.Application]) -> Pipeline:
    return client.app[PIPELINE]


def cache_keys(client: TestClient[web.Request, web.Application]) -> set[str]:
    """The keys an app's cache holds in this process."""
    return set(pipeline_of(client).cache.view())


def work_entries(client: TestClient[web.Request, web.Application]) -> list[str]:
    """Cache keys of lists, sources, wallpapers and failures: not the photo index."""
    return [key for key in pipeline_of(client).cache.view() if not key.startswith("photo:")]


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Wait for a condition other tasks will make true (yielding, not guessing a delay)."""
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.001)


async def raw_get(server: BaseTestServer, target: str, *headers: str) -> bytes:
    """Every byte of the answer to one GET of `target` exactly as written (aiohttp's client
    would make an absolute URL a path), with `headers`: what an access log's count must match."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = [f"GET {target} HTTP/1.1", "Host: test", "Connection: close", *headers]
    # Lone surrogates become the bytes they stand for, as aiohttp's parser reads them back.
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


class Clock:
    """A stand-in for the `time` module whose `time()` moves only when a test says so: headers
    that count down (max-age, Age) can then be checked for exact values, not ranges."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def install(self, monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> None:
        """Be `time` for `modules` (those that `import time` and call `time.time()`)."""
        for module in modules:
            monkeypatch.setattr(module, "time", self)


def require_tool(name: str, install: str) -> str:
    """The path of the program `name` (Debian keeps daemons in /usr/sbin, often not on PATH).

    A missing tool fails the test, never skips it: a skip would let a run without Chromium
    or Redis look green.
    """
    path = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if path is not None:
        return path
    pytest.fail(f"{name} is not installed ({install}; `bash .ci/run` installs it)",
                pytrace=False)


class Marsserver:
    """`python -m marsserver ARGS` in its own process, as users run it (`--port 0` unless
    given), as a context manager (`with` or `async with`) that yields once it listens.

    A thread keeps reading stderr, so a chatty access log never blocks the server on a full
    pipe, and the log stays readable (`log`, `wait_for`) while it runs and after it stops.
    The environment is the test's without `MARS_*` variables, plus `env`.
    """

    def __init__(self, *args: str, env: Mapping[str, str] | None = None,
                 startup: float = 30.0) -> None:
        self.args = [*args] if "--port" in args else [*args, "--port", "0"]
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARS_")},
                    **(env or {})}
        self.startup = startup
        self.lines: list[str] = []
        self._logged = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None, "not started"
        return self._process

    @property
    def log(self) -> str:
        with self._logged:
            return "".join(self.lines)

    @property
    def url(self) -> str:
        """The base URL from the first "listening on http://host:port, ..." line."""
        line = next(line for line in self.lines if "listening on " in line)
        return line.split("listening on ")[1].split(",")[0]

    def start(self) -> Marsserver:
        self._process = subprocess.Popen([sys.executable, "-m", "marsserver", *self.args],
                                         stderr=subprocess.PIPE, text=True, env=self.env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for("listening on ")
        return self

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._logged:
                self.lines.append(line)
                self._logged.notify_all()
        with self._logged:
            self.lines.append("")  # end of the log: the process has exited
            self._logged.notify_all()

    def wait_for(self, text: str, times: int = 1) -> list[str]:
        """Block until `times` lines of the log contain `text`; fail if it exits first."""
        def seen() -> list[str]:
            return [line for line in self.lines if text in line]

        def settled() -> bool:
            return len(seen()) >= times or self.lines[-1:] == [""]

        with self._logged:
            self._logged.wait_for(settled, timeout=self.startup)
            assert len(seen()) >= times, f"marsserver never logged {text!r}:\n{''.join(self.lines)}"
            return seen()

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM if it still runs; its exit status, once its log is read to the end."""
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout=timeout)
        assert self._reader is not None
        self._reader.join(timeout=timeout)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code

    def __enter__(self) -> Marsserver:
        try:
            return self.start()
        except BaseException:
            if self._process is not None:
                self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Marsserver:
        """Starting blocks on a pipe: do it in a thread, so this loop's stubs keep answering."""
        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)


# A stand-in for NASA in the coordination tests: counts calls and holds answers until the
# test lets them go.

IMAGE = IMAGES[0].read_bytes()
Client = TestClient[web.Request, web.Application]


class Gated:
    """A source that counts calls, fails when told, and holds answers behind gates."""

    name: ClassVar[str] = "gated"

    def __init__(self, photos: int = 2) -> None:
        self.calls = {"list": 0, "image": 0}
        self.fail: dict[str, BaseException] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.sol = 1
        self.frames = tuple(Photo(id=str(n), camera="NAV", taken="2024-01-01T00:00:00Z",
                                  img_src=f"https://mars.nasa.gov/img/{n}.jpg")
                            for n in range(photos))

    def hold(self, kind: str) -> asyncio.Event:
        self.gates[kind] = asyncio.Event()
        return self.gates[kind]

    async def _pass(self, kind: str) -> None:
        self.calls[kind] += 1
        if kind in self.gates:
            await self.gates[kind].wait()
        if kind in self.fail:
            raise self.fail[kind]

    async def latest(self) -> Listing:
        await self._pass("list")
        return Listing("gated", "curiosity", self.sol, self.frames)

    async def image(self, link: str) -> bytes:
        await self._pass("image")
        return IMAGE


class RoverFeed:
    """A feed like msl and m2020: a sol's list does not say the newest sol; unknown cameras find
    nothing; NASA can go down."""

    name: ClassVar[str] = "sols"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down = False
        self.frames = tuple(Photo(id=str(n), camera="NAV", taken="2024-01-01T00:00:00Z",
                                  img_src=f"https://mars.nasa.gov/img/{n}.jpg")
                            for n in range(2))

    async def latest(self) -> Listing:
        self.calls.append("latest")
        if self.down:
            raise BadUpstream("NASA is down")
        return Listing("sols", "curiosity", 100, self.frames, newest_sol=100)

    async def photos(self, query: Query) -> Listing:
        self.calls.append(query.key)
        if query.cameras and query.cameras != ("NAV",):
            raise NotFound(f"no photos from {query.cameras}")
        return Listing("sols", "curiosity", query.sol or 100, self.frames, newest_sol=None)

    async def image(self, link: str) -> bytes:
        return IMAGE


class Down(QuerySource):
    """NASA during an outage (or, with `error`, whatever else fails)."""

    name = "down"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or BadUpstream("mars.nasa.gov answered HTTP 503")

    async def photos(self, query: Query) -> Listing:
        raise self.error

    async def image(self, link: str) -> bytes:
        raise self.error
