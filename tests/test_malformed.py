"""Malformed requests: a 400 for the client, at most one short line each in the log."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.http_exceptions import BadHttpMessage
from pytest_aiohttp import AiohttpServer

from marsserver import Settings, create_app
from marsserver.http.malformed import BURST, WINDOW, MalformedRequests

MALFORMED = [
    b"GET / HTTP/1.1 extra\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
]


async def send(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


@pytest.mark.parametrize("raw", MALFORMED)
async def test_a_malformed_request_is_a_400_and_one_short_line(aiohttp_server: AiohttpServer,
                                                               raw: bytes, caplog):
    server = await aiohttp_server(create_app(Settings(source="demo")))
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    answer = await send(server.port, raw)

    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert records[0].exc_info is None
    assert records[0].getMessage().startswith("malformed request from 127.0.0.1: ")
    assert "\n" not in records[0].getMessage()


def test_a_flood_of_malformed_requests_is_rate_limited():
    now = [1000.0]
    limit = MalformedRequests(clock=lambda: now[0])
    logger = logging.getLogger("test.malformed")

    def record() -> logging.LogRecord:
        return logger.makeRecord(logger.name, logging.ERROR, __file__, 1,
                                 "Error handling request from %s", ("10.0.0.1",),
                                 (BadHttpMessage, BadHttpMessage("bad"), None))

    passed = [limit.filter(record()) for _ in range(BURST + 25)]
    assert passed == [True] * BURST + [False] * 25
    now[0] += WINDOW
    first = record()
    assert limit.filter(first)
    assert "25 more in the last minute not logged" in first.getMessage()


def test_other_errors_pass_untouched():
    logger = logging.getLogger("test.malformed")
    error = RuntimeError("a real bug")
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "Unhandled exception",
                               (), (RuntimeError, error, None))
    assert MalformedRequests().filter(record)
    assert (record.levelno, record.exc_info[1] if record.exc_info else None) == (
        logging.ERROR, error)
