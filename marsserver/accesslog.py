"""Access logging that costs almost nothing: one pre-formatted line per request, written in batches.

aiohttp's own access logger sends every request through `logging` (a LogRecord, a Formatter, a
handler lock and a write to stderr each time) and runs strftime for every line: that halved the
throughput of cached hits (bench/throughput.py). Here a request costs one f-string and a list
append. The timestamp is formatted once per second. A writer thread writes the lines to the sink
in batches (every `interval` seconds, or each `batch_bytes`), so the event loop never waits on
stderr; when the sink stalls, at most about `max_bytes` wait in memory (besides the batch being
written) and further lines are dropped, counted, and reported with a warning once the sink
moves again. Times are UTC: no time zone lookup per second, no ambiguous hour at a DST change.

aiohttp builds an access logger per connection, from a class: `AccessLog.logger_class` is that
class, and every instance hands its requests to the one shared `AccessLog`. aiohttp tells an
access logger nothing at shutdown, so `attach(app)` makes the app's cleanup write out what is
buffered: cleanup runs after the last request is answered, so no line is left behind, and
while the process is still whole (an atexit hook would run after the event loop is gone, and
would keep every AccessLog alive).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple, TextIO

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

log = logging.getLogger(__name__)

MODES = ("on", "json")  # "off" is no access logger at all: aiohttp then skips even the call
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _Batch(NamedTuple):
    text: str
    lines: int
    dropped: int  # lines dropped so far, all told: the writer warns about the increase


class AccessLog:
    """One line per request to `sink` (None: whatever `sys.stderr` is when a batch is written):
    `on` is aiohttp's default line plus the duration; `json` one JSON object per line, for log
    shippers."""

    def __init__(self, mode: str = "on", sink: TextIO | None = None, *,
                 clock: Callable[[], float] = time.time, interval: float = 0.1,
                 batch_bytes: int = 64 * 2**10, max_bytes: int = 4 * 2**20) -> None:
        if mode not in MODES:
            raise ValueError(f"access log mode must be one of {', '.join(MODES)}, not {mode!r}")
        self._line = self._common if mode == "on" else self._json
        self._format_second = _common_time if mode == "on" else _iso_time
        self._sink = sink
        self._clock = clock
        self._interval, self._batch_bytes, self._max_bytes = interval, batch_bytes, max_bytes
        self._lines: list[str] = []
        self._size = 0
        self._second, self._stamp_text = -1, ""
        self._timer: asyncio.TimerHandle | None = None
        self._dropped = 0  # by the event loop, when the buffer is full
        self._lost = 0  # by the writer thread, when the sink fails
        self._idle = threading.Event()
        self._idle.set()
        self._batches: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self.logger_class = _logger_class(self.record)

    @property
    def dropped(self) -> int:
        """Lines that never reached the sink: it was too slow, or it failed."""
        return self._dropped + self._lost

    def attach(self, app: web.Application) -> None:
        """Write out the buffer, and stop the writer, when `app` is cleaned up."""
        async def close(_: web.Application) -> None:
            self.close()
        app.on_cleanup.append(close)

    def record(self, request: BaseRequest, response: StreamResponse, duration: float) -> None:
        """Buffer the line for one answered request; called on the event loop."""
        if self._size > self._max_bytes:
            self._dropped += 1
            return
        line = self._line(request, response, duration)
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self._batch_bytes:
            self._hand_off()
        if self._lines and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._tick)

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything buffered and wait until it is written, up to `timeout` seconds per
        batch; False when the sink did not take it in time. It blocks: it is for shutdown."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._idle.wait(timeout):
            return False
        self._hand_off()
        return self._idle.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush, then end the writer thread (a later line starts a new one)."""
        if not self.flush(timeout):
            log.warning("access log: the sink did not take the last lines within %.0f s",
                        timeout)
        if self._writer is not None:
            self._batches.put(None)
            self._writer.join(timeout)
            self._writer = None

    def _tick(self) -> None:
        self._timer = None
        self._hand_off()
        if self._lines:  # the writer is still busy with the previous batch
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._tick)

    def _hand_off(self) -> None:
        """Give the buffer to the writer thread, unless it is still writing the last batch
        (then the buffer grows, up to `max_bytes`): one batch in flight bounds the memory."""
        if not self._lines or not self._idle.is_set():
            return
        self._idle.clear()
        batch = _Batch("".join(self._lines), len(self._lines), self._dropped)
        self._lines.clear()
        self._size = 0
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_batches, name="access-log",
                                            daemon=True)
            self._writer.start()
        self._batches.put(batch)

    def _write_batches(self) -> None:
        reported = 0
        while (batch := self._batches.get()) is not None:
            if batch.dropped > reported:
                log.warning("access log: dropped %d lines, the log sink was too slow",
                            batch.dropped - reported)
                reported = batch.dropped
            sink = sys.stderr if self._sink is None else self._sink
            try:
                sink.write(batch.text)
                sink.flush()
            except (OSError, ValueError):  # a closed or broken stream must not kill the writer
                self._lost += batch.lines
            self._idle.set()

    def _stamp(self, when: float) -> str:
        second = int(when)
        if second != self._second:
            self._second, self._stamp_text = second, self._format_second(second)
        return self._stamp_text

    def _common(self, request: BaseRequest, response: StreamResponse, duration: float) -> str:
        """aiohttp's default `%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"`, what operators
        and log parsers already know, then the duration (aiohttp's, from the loop's clock: in
        1 ms steps under uvloop)."""
        headers, version = request.headers, request.version
        return (f'{request.remote or "-"} {self._stamp(self._clock() - duration)} '
                f'"{request.method} {_quotable(request.raw_path)} '
                f'HTTP/{version.major}.{version.minor}" {response.status} '
                f'{response.body_length} "{_quotable(headers.get(hdrs.REFERER, "-"))}" '
                f'"{_quotable(headers.get(hdrs.USER_AGENT, "-"))}" {duration * 1000:.3f}ms\n')

    def _json(self, request: BaseRequest, response: StreamResponse, duration: float) -> str:
        """The same facts as `_common`, as one JSON object with millisecond times."""
        headers, version = request.headers, request.version
        when = self._clock() - duration
        return (f'{{"time":"{self._stamp(when)}.{int(when * 1000) % 1000:03d}Z",'
                f'"remote":{_json_text(request.remote)},'
                f'"method":{encode_basestring_ascii(request.method)},'
                f'"path":{encode_basestring_ascii(request.raw_path)},'
                f'"version":"{version.major}.{version.minor}","status":{response.status},'
                f'"bytes":{response.body_length},'
                f'"referer":{_json_text(headers.get(hdrs.REFERER))},'
                f'"user_agent":{_json_text(headers.get(hdrs.USER_AGENT))},'
                f'"duration_ms":{duration * 1000:.3f}}}\n')


def run_app_options(app: web.Application, mode: str) -> dict[str, Any]:
    """The access-log arguments of `web.run_app` (or `web.AppRunner`) for mode on, off or json;
    the lines go to stderr, and whatever is buffered is written when `app` is cleaned up."""
    if mode == "off":
        return {"access_log": None}
    access_log = AccessLog(mode)
    access_log.attach(app)
    return {"access_log": logging.getLogger("aiohttp.access"),
            "access_log_class": access_log.logger_class}


def _logger_class(record: Callable[[BaseRequest, StreamResponse, float], None],
                  ) -> type[AbstractAccessLogger]:
    class FastAccessLogger(AbstractAccessLogger):
        """What aiohttp builds per connection: it passes each request on to `record`.

        It ignores the format aiohttp hands over (the mode decides), and writes past the
        logger's handlers (they are the cost), but honours the logger's level as aiohttp's
        logger does, so logging configuration can still silence it.
        """

        __slots__ = ()

        @property
        def enabled(self) -> bool:
            return self.logger.isEnabledFor(logging.INFO)

        def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
            record(request, response, time)

    return FastAccessLogger


def _quotable(text: str) -> str:
    """`text`, escaped JSON-style if it holds a quote, a backslash or a control character:
    a client must not be able to close a quoted field or start a forged line."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return encode_basestring_ascii(text)[1:-1]


def _json_text(text: str | None) -> str:
    return "null" if text is None else encode_basestring_ascii(text)


def _common_time(second: int) -> str:
    # Month names from a table: strftime's %b follows the locale.
    t = time.gmtime(second)
    return (f"[{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000]")


def _iso_time(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
