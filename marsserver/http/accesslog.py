"""Access logging that costs almost nothing: a tuple per request on the event loop, its line
formatted and written in batches by a thread.

aiohttp's own access logger sends every request through `logging` (a LogRecord, a Formatter, a
handler lock and a write to stderr each time) and runs strftime for every line, which costs
more than a cached hit itself (docs/performance.md). Here the event loop only keeps each
request's facts in a tuple; a writer thread formats
the lines, the timestamp once per second, and writes them to the sink in batches (every
`interval` seconds, or each `batch_lines`), so the event loop never waits on stderr. When the
sink stalls, at most about `max_bytes` wait in memory (counted from each request's target,
Referer and User-Agent, which may be 64 KiB each: a count of lines would bound nothing),
besides the batch being written, and further lines are dropped, counted, and reported with a
warning once the sink moves again. Times are UTC: no time zone lookup per second, no ambiguous
hour at a DST change.

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

from aiohttp import HttpVersion, hdrs, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

log = logging.getLogger(__name__)

LINE_BYTES = 100  # what a line holds besides its target, Referer and User-Agent
MODES = ("on", "json")  # "off" is no access logger at all: aiohttp then skips even the call
_COMMON = '%s %s "%s %s HTTP/%d.%d" %d %d "%s" "%s" %.3fms\n'  # see AccessLog._common
# What a field of _COMMON may hold and still need no escaping: printable ASCII but backslash
# and the quote. Take it out of a line that needs no escaping, and its marks are all that is left.
_PLAIN_ASCII = bytes(sorted(set(range(0x20, 0x7F)) - {ord("\\"), ord('"')}))
_LINE_MARKS = b'""""""\n'
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# What a line is made from: remote, start time, method, request target, HTTP version, status,
# body length, Referer, User-Agent, duration. A plain tuple: the cheapest thing to build.
_Entry = tuple[str | None, float, str, str, HttpVersion, int, int, str | None, str | None,
               float]


class _Batch(NamedTuple):
    entries: list[_Entry]
    dropped: int  # lines dropped so far, all told: the writer warns about the increase


class AccessLog:
    """One line per request to `sink` (None: whatever `sys.stderr` is when a batch is written):
    `on` is aiohttp's default line plus the duration; `json` one JSON object per line, for log
    shippers.

    Every 20 ms by default: lines reach the sink soon, and few wait in memory; one wake-up and
    one write every 20 ms while lines are pending cost nothing measurable."""

    def __init__(self, mode: str = "on", sink: TextIO | None = None, *,
                 clock: Callable[[], float] = time.time, interval: float = 0.02,
                 batch_lines: int = 4096, max_bytes: int = 4 * 2**20) -> None:
        if mode not in MODES:
            raise ValueError(f"access log mode must be one of {', '.join(MODES)}, not {mode!r}")
        self._lines = self._common_lines if mode == "on" else self._json_lines
        self._format_second = _common_time if mode == "on" else _iso_time
        self._sink = sink
        self._clock = clock
        self._interval, self._batch_lines, self._max_bytes = interval, batch_lines, max_bytes
        self._entries: list[_Entry] = []
        self._size = 0  # of the buffered entries' variable fields, plus LINE_BYTES each
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

    def record(self, request: BaseRequest, response: StreamResponse, duration: float,
               remote: str | None = None) -> None:
        """Keep the facts of one answered request for its line; called on the event loop.
        `remote` is the client's address when the caller knows it (`request.remote` if not)."""
        if self._size > self._max_bytes:
            self._dropped += 1
            return
        headers = request.headers
        target = request.raw_path
        referer, agent = headers.get(hdrs.REFERER), headers.get(hdrs.USER_AGENT)
        if remote is None:
            remote = request.remote
        self._entries.append((
            remote, self._clock() - duration, request.method, target, request.version,
            response.status, response.body_length, referer, agent, duration))
        self._size += LINE_BYTES + len(target) + len(referer or "") + len(agent or "")
        if len(self._entries) >= self._batch_lines:
            self._hand_off()
        if self._entries and self._timer is None:
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
        if self._entries:  # the writer is still busy with the previous batch
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._tick)

    def _hand_off(self) -> None:
        """Give the buffer to the writer thread, unless it is still writing the last batch
        (then the buffer grows, up to about `max_bytes`): one batch in flight bounds the
        memory."""
        if not self._entries or not self._idle.is_set():
            return
        self._idle.clear()
        batch = _Batch(self._entries, self._dropped)
        self._entries, self._size = [], 0
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_batches, name="access-log",
                                            daemon=True)
            self._writer.start()
        self._batches.put(batch)

    def _write_batches(self) -> None:
        reported, failing = 0, False
        while (batch := self._batches.get()) is not None:
            if batch.dropped > reported:
                log.warning("access log: dropped %d lines, the log sink was too slow",
                            batch.dropped - reported)
                reported = batch.dropped
            sink = sys.stderr if self._sink is None else self._sink
            try:
                sink.write(self._lines(batch.entries))
                sink.flush()
                failing = False
            except (OSError, ValueError) as error:  # a broken stream must not kill the writer
                self._lost += len(batch.entries)
                if not failing:  # once per failure, not per batch: the sink may be stderr
                    log.warning("access log: lost %d lines, the log sink failed: %r",
                                len(batch.entries), error)
                failing = True
            self._idle.set()

    def _stamp(self, when: float) -> str:
        second = int(when)
        if second != self._second:
            self._second, self._stamp_text = second, self._format_second(second)
        return self._stamp_text

    def _common_lines(self, entries: list[_Entry]) -> str:
        """The batch's `_common` lines for a fifth less than formatting them one by one.
        The usual batch has nothing to escape: each line is a plain %-format, and one look
        over the whole text finds anything that might need escaping (a quote, backslash,
        newline, control or non-ASCII character, including the lone surrogates that stand for
        undecodable bytes). Only then is the batch formatted again line by line by `_common`,
        which escapes just the fields that need it."""
        lines = []
        for remote, when, method, target, version, status, length, referer, agent, duration \
                in entries:
            stamp = self._stamp_text if int(when) == self._second else self._stamp(when)
            lines.append(_COMMON % (remote or "-", stamp, method, target,
                                    version.major, version.minor, status, length,
                                    referer or "-", agent or "-", duration * 1000))
        text = "".join(lines)
        if (text.isascii()
                and text.encode().translate(None, _PLAIN_ASCII) == _LINE_MARKS * len(lines)):
            return text
        return "".join([self._common(*entry) for entry in entries])

    def _common(self, remote: str | None, when: float, method: str, target: str,
                version: HttpVersion, status: int, length: int, referer: str | None,
                agent: str | None, duration: float) -> str:
        """aiohttp's default `%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"`, what operators
        and log parsers already know, then the duration (aiohttp's, by the loop's clock: the
        command line gives uvloop asyncio's clock, as uvloop's own counts whole milliseconds)."""
        referer, agent = referer or "-", agent or "-"
        if not _plain(target + referer + agent):  # one check for the usual case: all plain
            target, referer, agent = _escaped(target), _escaped(referer), _escaped(agent)
        return _COMMON % (remote or "-", self._stamp(when), method, target, version.major,
                          version.minor, status, length, referer, agent, duration * 1000)

    def _json_lines(self, entries: list[_Entry]) -> str:
        return "".join([self._json(*entry) for entry in entries])

    def _json(self, remote: str | None, when: float, method: str, target: str,
              version: HttpVersion, status: int, length: int, referer: str | None,
              agent: str | None, duration: float) -> str:
        """The same facts as `_common`, as one JSON object with millisecond times. (No helper
        calls for the stamp or the nullable fields: a call is a tenth of the line's cost.)"""
        stamp = self._stamp_text if int(when) == self._second else self._stamp(when)
        return (f'{{"time":"{stamp}.{int(when * 1000) % 1000:03d}Z",'
                f'"remote":{"null" if remote is None else encode_basestring_ascii(remote)},'
                f'"method":{encode_basestring_ascii(method)},'
                f'"path":{encode_basestring_ascii(target)},'
                f'"version":"{version.major}.{version.minor}","status":{status},'
                f'"bytes":{length},'
                f'"referer":{"null" if referer is None else encode_basestring_ascii(referer)},'
                f'"user_agent":{"null" if agent is None else encode_basestring_ascii(agent)},'
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


def _logger_class(record: Callable[[BaseRequest, StreamResponse, float, str | None], None],
                  ) -> type[AbstractAccessLogger]:
    class FastAccessLogger(AbstractAccessLogger):
        """What aiohttp builds per connection: it passes each request on to `record`.

        It ignores the format aiohttp hands over (the mode decides), and writes past the
        logger's handlers (they are the cost), but honours the logger's level as aiohttp's
        logger does, so logging configuration can still silence it. A connection has one
        client: its address is worked out once (`request.remote` builds it from the socket's
        peer name anew for every request), not per request.
        """

        __slots__ = ("_remote",)

        def __init__(self, logger: logging.Logger, log_format: str) -> None:
            super().__init__(logger, log_format)
            self._remote: str | None = None

        @property
        def enabled(self) -> bool:
            return self.logger.isEnabledFor(logging.INFO)

        def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
            if self._remote is None:
                self._remote = request.remote
            record(request, response, time, self._remote)

    return FastAccessLogger


def _plain(text: str) -> bool:
    """Nothing in `text` can close a quoted field or start a forged line."""
    return text.isprintable() and '"' not in text and "\\" not in text


def _escaped(text: str) -> str:
    """`text`, escaped JSON-style when it is not `_plain`."""
    return text if _plain(text) else encode_basestring_ascii(text)[1:-1]


def _common_time(second: int) -> str:
    # Month names from a table: strftime's %b follows the locale.
    t = time.gmtime(second)
    return (f"[{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000]")


def _iso_time(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
