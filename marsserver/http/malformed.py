"""Malformed requests cost a 400 and at most one short log line, never a traceback.

aiohttp's server logs every request it cannot parse (a bad request line, a NUL in a header,
`Content-Length: -1`) as an ERROR with a full traceback, so any client could fill the error log.
This filter on the `aiohttp.server` logger turns each into one line without the traceback, and
lets at most `BURST` such lines through per `WINDOW` seconds, then says how many it dropped.
Errors that are not about a malformed request pass untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

BURST = 10
WINDOW = 60.0


class MalformedRequests(logging.Filter):
    """Shorten and rate-limit aiohttp's records of requests it could not parse."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._window_start = float("-inf")
        self._passed = 0
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        now = self._clock()
        if now - self._window_start >= WINDOW:
            dropped, self._dropped = self._dropped, 0
            self._window_start, self._passed = now, 0
            suffix = f" ({dropped} more in the last minute not logged)" if dropped else ""
        else:
            suffix = ""
        if self._passed >= BURST:
            self._dropped += 1
            return False
        self._passed += 1
        reason = str(error.message).splitlines()[0][:120] if error.message else "malformed"
        record.msg = "malformed request from %s: %s%s"
        peer = record.args[:1] if isinstance(record.args, tuple) else ("?",)
        record.args = (*peer, reason, suffix)
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        return True


def quiet_malformed_requests(logger: logging.Logger | None = None) -> None:
    """Install the filter on aiohttp's server logger, once per process."""
    logger = logger or logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in logger.filters):
        logger.addFilter(MalformedRequests())
