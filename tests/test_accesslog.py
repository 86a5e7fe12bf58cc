"""The access log: the exact lines, one timestamp per second, batched writes, a bounded buffer,
nothing lost at shutdown, and the wiring through a real aiohttp server and the settings."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import threading
import urllib.request
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from aiohttp import HttpVersion, HttpVersion11, web
from aiohttp.test_utils import make_mocked_request

from marsserver import Settings
from marsserver.http import accesslog
from marsserver.http.accesslog import AccessLog, run_app_options

from .helpers import Marsserver, raw_get

MAY_DAY = 1714564800.0  # 2024-05-01T12:00:00Z
HEADERS = {"Referer": "http://example.test/", "User-Agent": "wallpaper-fetcher/1.0"}


class Sink(io.StringIO):
    """A text stream that remembers each write, and can fail like a closed pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.broken = False
        self.on_write: Callable[[str], object] = lambda text: None

    def write(self, text: str) -> int:
        if self.broken:
            raise BrokenPipeError
        self.writes.append(text)
        self.on_write(text)
        return super().write(text)

    def written(self) -> asyncio.Queue[str]:
        """Each write, delivered on the event loop (the writer thread does the writing)."""
        loop, writes = asyncio.get_running_loop(), asyncio.Queue[str]()
        self.on_write = lambda text: loop.call_soon_threadsafe(writes.put_nowait, text)
        return writes


def request(path="/wallpaper?photo_number=1&height=600", headers=HEADERS, method="GET",
            version=HttpVersion11):
    return make_mocked_request(method, path, headers, version=version).clone(remote="192.0.2.7")


# The response fields the log reads (aiohttp's own, past its properties: the real-server tests
# below check that they are the status and the bytes sent).
RESPONSE = SimpleNamespace(status=200, body_length=5120)


def entry_bytes(one) -> int:
    """What the buffer counts for `one` against `max_bytes`."""
    return (accesslog.LINE_BYTES + len(one.raw_path) + len(one.headers.get("Referer", ""))
            + len(one.headers.get("User-Agent", "")))


def logged(mode, *requests, duration=0.25):
    """The text AccessLog writes for `requests`, its clock at MAY_DAY + 0.75 s."""
    sink = Sink()
    log = AccessLog(mode, sink, clock=lambda: MAY_DAY + 0.75)
    for one in requests:
        log.record(one, RESPONSE, duration)
    log.close()
    return sink.getvalue()


async def test_on_is_aiohttps_default_line_in_utc_with_the_duration():
    assert logged("on", request()) == (
        '192.0.2.7 [01/May/2024:12:00:00 +0000] "GET /wallpaper?photo_number=1&height=600 '
        'HTTP/1.1" 200 5120 "http://example.test/" "wallpaper-fetcher/1.0" 250.000ms\n')


async def test_json_is_one_object_per_line_with_the_same_facts():
    line = logged("json", request(), duration=0.0125)
    assert line == (
        '{"time":"2024-05-01T12:00:00.737Z","remote":"192.0.2.7","method":"GET",'
        '"path":"/wallpaper?photo_number=1&height=600","version":"1.1","status":200,'
        '"bytes":5120,"referer":"http://example.test/","user_agent":"wallpaper-fetcher/1.0",'
        '"duration_ms":12.500}\n')
    assert json.loads(line)["duration_ms"] == 12.5


async def test_missing_headers_are_a_dash_or_null():
    bare = request("/", headers={}, method="HEAD", version=HttpVersion(1, 0))
    assert logged("on", bare).endswith('"HEAD / HTTP/1.0" 200 5120 "-" "-" 250.000ms\n')
    fields = json.loads(logged("json", bare))
    assert (fields["referer"], fields["user_agent"], fields["version"]) == (None, None, "1.0")


@pytest.mark.parametrize("mode", ["on", "json"])
async def test_a_client_cannot_break_out_of_its_field_or_forge_a_line(mode):
    hostile = {"User-Agent": 'x" 500 "\\', "Referer": "a\x1b[31m\u00e9"}
    text = logged(mode, request("/a\\b", headers=hostile))
    assert text.count("\n") == 1
    if mode == "on":
        assert text.endswith(r'"GET /a\\b HTTP/1.1" 200 5120 "a\u001b[31m\u00e9" '
                             r'"x\" 500 \"\\" 250.000ms' + "\n")
    else:
        fields = json.loads(text)
        assert (fields["path"], fields["user_agent"], fields["referer"]) == (
            "/a\\b", hostile["User-Agent"], hostile["Referer"])


async def test_the_timestamp_is_formatted_once_per_second(monkeypatch):
    formatted: list[int] = []
    real = accesslog._common_time
    monkeypatch.setattr(accesslog, "_common_time", lambda s: formatted.append(s) or real(s))
    times = iter([MAY_DAY + 0.1, MAY_DAY + 0.6, MAY_DAY + 0.999, MAY_DAY + 1.0, MAY_DAY + 1.5])
    sink = Sink()
    log = AccessLog("on", sink, clock=lambda: next(times))
    for _ in range(5):
        log.record(request(), RESPONSE, 0.0)
    log.close()
    stamps = [line.split(" ")[1] for line in sink.getvalue().splitlines()]
    assert stamps == ["[01/May/2024:12:00:00"] * 3 + ["[01/May/2024:12:00:01"] * 2
    assert formatted == [int(MAY_DAY), int(MAY_DAY) + 1]


async def test_lines_wait_in_memory_and_reach_the_sink_in_one_write():
    sink = Sink()
    log = AccessLog("on", sink, clock=lambda: MAY_DAY)
    for _ in range(100):
        log.record(request(), RESPONSE, 0.001)
    assert sink.writes == []
    assert log.flush()
    assert len(sink.writes) == 1
    assert sink.writes[0].count("\n") == 100
    log.close()


async def test_the_batch_is_written_after_the_interval_without_a_flush():
    sink = Sink()
    written = sink.written()
    log = AccessLog("on", sink, clock=lambda: MAY_DAY, interval=0)
    log.record(request(), RESPONSE, 0.001)
    log.record(request(), RESPONSE, 0.001)
    assert (await asyncio.wait_for(written.get(), 5)).count("\n") == 2
    log.close()


async def test_a_full_batch_is_written_at_once_not_after_the_interval():
    sink = Sink()
    written = sink.written()
    line = logged("on", request())
    log = AccessLog("on", sink, clock=lambda: MAY_DAY + 0.75, interval=3600,
                    batch_lines=3)
    for _ in range(3):
        log.record(request(), RESPONSE, 0.25)
    assert await asyncio.wait_for(written.get(), 5) == 3 * line
    log.close()


class StuckSink(Sink):
    """A sink whose writes hang until `release` is set; `entered` says one began."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(10)
        return super().write(text)


def stuck_log(max_bytes: int) -> tuple[AccessLog, StuckSink]:
    """An AccessLog whose writer hangs on its first line, so later lines wait in memory."""
    sink = StuckSink()
    log = AccessLog("on", sink, clock=lambda: MAY_DAY + 0.75, interval=3600,
                    batch_lines=1, max_bytes=max_bytes)
    log.record(request(), RESPONSE, 0.25)  # handed to the writer, which now hangs
    assert sink.entered.wait(5)
    return log, sink


async def test_a_stuck_sink_bounds_the_buffer_and_counts_what_it_drops(caplog):
    log, sink = stuck_log(max_bytes=3 * entry_bytes(request()))
    for _ in range(50):  # the event loop goes on: 4 lines fill the buffer, 46 are dropped
        log.record(request(), RESPONSE, 0.25)
    assert log.dropped == 46
    sink.release.set()
    log.close()
    assert sink.getvalue() == 5 * logged("on", request())
    assert "dropped 46 lines" in caplog.text


@pytest.mark.parametrize("field", ["User-Agent", "Referer"])
async def test_a_stuck_sink_holds_no_more_than_max_bytes_of_long_headers(field):
    """The bound counts what a line holds: a client sending a long User-Agent or Referer
    fills it in a few lines, not in the thousands a count of short lines would let in."""
    max_bytes = 256 * 1024
    log, sink = stuck_log(max_bytes)
    long = request(headers={**HEADERS, field: "x" * 32 * 1024})
    for _ in range(200):
        log.record(long, RESPONSE, 0.25)
    sink.release.set()
    log.close()
    held = len(sink.getvalue()) - len(logged("on", request()))
    assert held <= max_bytes + entry_bytes(long)
    assert log.dropped == 200 - (sink.getvalue().count("\n") - 1)


async def test_a_failing_sink_loses_its_batch_but_not_the_next_and_says_so_once(caplog):
    sink = Sink()
    sink.broken = True
    log = AccessLog("on", sink, clock=lambda: MAY_DAY + 0.75)
    for lines in (2, 1):  # two batches lost in one failure: one warning
        for _ in range(lines):
            log.record(request(), RESPONSE, 0.25)
        assert log.flush()
    sink.broken = False
    log.record(request(), RESPONSE, 0.25)
    log.close()
    assert log.dropped == 3
    assert sink.getvalue().count("\n") == 1
    assert [r.getMessage().split(",")[0] for r in caplog.records] == [
        "access log: lost 2 lines"]


def test_the_logger_follows_its_logging_level_like_aiohttps():
    quiet = logging.getLogger("tests.accesslog.quiet")
    quiet.setLevel(logging.WARNING)
    loud = logging.getLogger("tests.accesslog.loud")
    loud.setLevel(logging.INFO)
    cls = AccessLog().logger_class
    assert not cls(quiet, "").enabled
    assert cls(loud, "").enabled


async def test_each_connection_logs_its_own_client():
    """aiohttp makes a logger per connection, which asks for its client's address once: two
    connections' loggers must never share it."""
    sink = Sink()
    log = AccessLog("json", sink)
    logger = logging.getLogger("tests.accesslog.loud")
    logger.setLevel(logging.INFO)
    first, second = log.logger_class(logger, ""), log.logger_class(logger, "")
    for connection, client in ((first, "192.0.2.7"), (second, "2001:db8::9"), (first, "x")):
        connection.log(make_mocked_request("GET", "/").clone(remote=client), RESPONSE, 0.1)
    log.close()
    remotes = [json.loads(line)["remote"] for line in sink.getvalue().splitlines()]
    # The third came on the first connection, whose client is the one it first saw.
    assert remotes == ["192.0.2.7", "2001:db8::9", "192.0.2.7"]


def test_unknown_modes_are_refused():
    with pytest.raises(ValueError, match="on, json"):
        AccessLog("verbose")


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def logging_server(aiohttp_server, mode: str):
    """A real server answering /hello, its AccessLog (writing every hour: only shutdown writes)
    and the sink that log writes to."""
    app = web.Application()
    app.router.add_get("/hello", hello)
    sink = Sink()
    log = AccessLog(mode, sink, interval=3600)
    log.attach(app)
    logger = logging.getLogger("tests.accesslog.server")
    logger.setLevel(logging.INFO)
    server = await aiohttp_server(app, access_log_class=log.logger_class, access_log=logger)
    return server, sink, log


async def test_a_real_request_gives_one_line_and_shutdown_writes_it(aiohttp_server):
    server, sink, _ = await logging_server(aiohttp_server, "json")
    answer = await raw_get(server, "/hello?x=1", "User-Agent: probe", "Referer: http://r.test/")
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"hello")
    assert sink.writes == []  # still buffered: the interval is an hour
    await server.close()  # the app's cleanup flushes
    [line] = sink.getvalue().splitlines()
    fields = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields.pop("time"))
    assert 0 <= fields.pop("duration_ms") < 10_000
    assert fields == {
        "remote": "127.0.0.1", "method": "GET", "path": "/hello?x=1", "version": "1.1",
        "status": 200, "bytes": len(answer), "referer": "http://r.test/", "user_agent": "probe"}


async def test_the_cli_options_log_to_stderr_and_off_means_no_logger(
        aiohttp_server, capsys, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    assert run_app_options(web.Application(), "off") == {"access_log": None}
    app = web.Application()
    app.router.add_get("/hello", hello)
    server = await aiohttp_server(app, **run_app_options(app, "on"))
    answer = await raw_get(server, "/hello", "User-Agent: probe")
    await server.close()
    [line] = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r'127\.0\.0\.1 \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                        rf'"GET /hello HTTP/1\.1" 200 {len(answer)} "-" "probe" [\d.]+ms', line)


@pytest.mark.parametrize(("text", "mode"), [
    ("on", "on"), ("off", "off"), ("JSON", "json"), ("true", "on"), ("1", "on"), ("yes", "on"),
    ("false", "off"), ("0", "off"), ("no", "off"),
])
def test_the_setting_takes_on_off_json_and_the_old_boolean_spellings(text, mode):
    assert Settings.from_strings({"access_log": text}).access_log == mode


def test_the_setting_refuses_other_modes():
    with pytest.raises(ValueError, match="access_log must be one of on, off, json"):
        Settings.from_strings({"access_log": "verbose"})


@pytest.mark.parametrize("field", ["User-Agent", "Referer", "target"])
@pytest.mark.parametrize(("odd", "written"), [
    ('x"y', r'x\"y'), ("x\\y", r"x\\y"), ("x\ny", r"x\ny"), ("x\ry", r"x\ry"),
    ("x\x7fy", r"x\u007fy"), ("x\x00y", r"x\u0000y"), ("x\u00e9y", "x\u00e9y")])
async def test_one_odd_line_in_a_batch_is_escaped_and_the_plain_ones_stay_plain(field, odd,
                                                                                written):
    """Lines are formatted a batch at a time with one look for anything to escape: a single
    odd field among plain lines must still be escaped, and only there (printable non-ASCII
    text needs no escaping)."""
    plain = request()
    if field == "target":
        odd, written = "/" + odd, "/" + written
        oddly = request(path=odd)
    else:
        oddly = request(headers={**HEADERS, field: odd})
    batch = logged("on", plain, oddly, plain)
    first, second, third = batch.split("\n")[:3]
    assert batch.count("\n") == 3
    assert first == third == logged("on", plain).rstrip("\n")
    kept = {"User-Agent": HEADERS["User-Agent"], "Referer": HEADERS["Referer"],
            "target": "/wallpaper?photo_number=1&height=600"}[field]
    assert second == first.replace(kept, written, 1)


async def test_undecodable_header_bytes_are_escaped_and_lose_no_line(aiohttp_server):
    """aiohttp reads a header's bytes that are not UTF-8 as lone surrogates: they must be
    escaped like any odd character, not make the whole batch unwritable."""
    server, sink, log = await logging_server(aiohttp_server, "on")
    for agent in ("before", "evil\udcff", "after"):
        await raw_get(server, "/hello", f"User-Agent: {agent}")
    await server.close()
    assert [line.split('"')[5] for line in sink.getvalue().splitlines()] == [
        "before", r"evil\udcff", "after"]
    assert log.dropped == 0


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_command_logs_durations_finer_than_milliseconds_on_either_loop(loop):
    """aiohttp measures each request by the loop's clock; uvloop's own would print every
    duration as a whole number of milliseconds (1.000ms, 0.000ms)."""
    with Marsserver("--source", "demo", "--loop", loop) as server:
        for _ in range(5):
            urllib.request.urlopen(server.url + "/healthz", timeout=10).close()
        lines = server.wait_for('"GET /healthz HTTP/1.1" 200', times=5)
    durations = [float(re.findall(r" ([\d.]+)ms$", line)[0]) for line in lines]
    assert any(duration % 1 for duration in durations), durations
