"""Overload and lifecycle: a full resize queue sheds new work only; shutdown is clean."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from marsserver import imaging
from marsserver.cli import MAX_CONNECTIONS, SHUTDOWN_TIMEOUT, CappedConnections
from marsserver.http.app import (
    HEADER_TIMEOUT,
    MAX_FIELD_SIZE,
    MAX_HEADER_MEMORY,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    SHUTDOWN_GRACE,
)
from marsserver.imaging import Spec

from .helpers import Marsserver, pipeline_of, until
from .stub import Stub


@pytest.fixture
def blocked_resizes(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Resizes wait (in their threads) until the returned event is set."""
    release = threading.Event()
    real = imaging.wallpaper

    def slow(data: bytes, spec: Spec, **kwargs: Any) -> bytes:
        release.wait(timeout=30)
        return real(data, spec, **kwargs)

    monkeypatch.setattr(imaging, "wallpaper", slow)
    return release


async def test_a_full_resize_queue_sheds_new_uncached_work_but_serves_hits(
        stub: Stub, client_for, blocked_resizes):
    client = await client_for(stub.settings(resize_queue=1))
    pipeline = pipeline_of(client)
    blocked_resizes.set()
    assert (await client.get("/wallpaper?height=100")).status == 200  # cached from now on
    blocked_resizes.clear()

    busy = asyncio.create_task(client.get("/wallpaper?height=200"))
    await until(lambda: pipeline.resizes_pending == 1)
    shed = await client.get("/wallpaper?height=300")
    hit = await client.get("/wallpaper?height=100")

    assert shed.status == 503
    assert shed.headers["Retry-After"] == "1"
    assert (await shed.json())["error"] == "overloaded"
    assert (hit.status, hit.headers["X-Cache"]) == (200, "HIT")
    blocked_resizes.set()
    assert (await busy).status == 200
    assert (await client.get("/wallpaper?height=300")).status == 200  # shedding is not remembered


async def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(stub: Stub):
    held = stub.hold(stub.feed_images[0])
    async with Marsserver("--api-url", stub.settings().api_url,
                          "--image-hosts", f"127.0.0.1:{stub.port}") as server:
        async with aiohttp.ClientSession() as session:
            in_flight = asyncio.create_task(session.get(server.url + "/wallpaper?height=100"))
            await until(lambda: stub.calls[stub.feed_images[0]] == 1)
            server.process.send_signal(signal.SIGTERM)
            await until_refused(server.url)  # it stopped accepting...
            held.set()
            response = await in_flight  # ...but finished what it had started
            assert response.status == 200
            assert len(await response.read()) > 0
        assert await asyncio.to_thread(server.process.wait, 20) == 0, server.log
    for symptom in ("Traceback", "Task was destroyed", "Unclosed", "Exception"):
        assert symptom not in server.log


async def test_sigterm_answers_a_request_on_a_hung_upstream_with_a_json_503_in_time(
        stub: Stub):
    """NASA's image server never answers: the waiting client gets the README's JSON 503
    within the shutdown window, through the real command and a raw socket."""
    for name in stub.feed_images:
        stub.hold(name)
    async with Marsserver("--api-url", stub.settings().api_url, "--timeout", "60",
                          "--image-hosts", f"127.0.0.1:{stub.port}") as server:
        host, port = server.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /wallpaper?height=100 HTTP/1.1\r\nHost: x\r\n\r\n")
        await until(lambda: stub.downloads() == 1)
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        answer = await asyncio.wait_for(reader.read(), SHUTDOWN_TIMEOUT)
        took = time.monotonic() - sent
        writer.close()
        for gate in stub.gates.values():
            gate.set()
        assert await asyncio.to_thread(server.process.wait, 20) == 0, server.log
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), answer
    assert b"\r\nContent-Type: application/json" in head
    assert json.loads(body)["error"] == "unavailable"
    assert SHUTDOWN_GRACE <= took < SHUTDOWN_TIMEOUT


async def until_refused(url: str) -> None:
    async def refused() -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(url + "/healthz"):
                return False
        except aiohttp.ClientConnectionError:
            return True

    async with asyncio.timeout(10):
        while not await refused():
            await asyncio.sleep(0.01)


# One hostile client must not hurt everyone else: connections that hold memory or files.

def memory_kib(pid: int, field: str) -> int:
    """`VmRSS` (now) or `VmHWM` (the peak so far) of process `pid`, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.findall(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)[0])


def open_files_limits(pid: int) -> tuple[int, int]:
    """The soft and hard limits on open files of process `pid`."""
    limits = Path(f"/proc/{pid}/limits").read_text()
    soft, hard = re.findall(r"^Max open files\s+(\d+)\s+(\d+)", limits, re.MULTILINE)[0]
    return int(soft), int(hard)


async def healthz_over_a_new_connection(url: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def never_finished_headers(url: str, line: int, headers: int) -> Connection:
    """A connection that sends a request line of `line` bytes and `headers` header fields of
    the largest size allowed, and never the blank line that ends them. (Its writer is
    returned too: a writer nobody holds closes its connection.)"""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    target = b"/?" + b"q" * (line - len(b"GET /? HTTP/1.1"))
    names = [b"X-Pad-%03d" % n for n in range(headers)]
    writer.write(b"GET " + target + b" HTTP/1.1\r\n" + b"".join(
        name + b": " + b"a" * (MAX_FIELD_SIZE - len(name)) + b"\r\n" for name in names))
    with contextlib.suppress(ConnectionError):  # refused before it was all sent
        await writer.drain()
    return reader, writer


async def until_closed(connection: Connection) -> bytes:
    """What the server sent before it closed the connection."""
    reader, writer = connection
    try:
        return await reader.read()
    except ConnectionResetError:  # closed with our bytes unread
        return b""
    finally:
        writer.close()


async def test_connections_that_never_finish_their_headers_are_bounded_and_closed():
    """200 connections send the longest request line and the most header fields allowed, and
    stop short: the service answers meanwhile, each holds no more than MAX_HEADER_MEMORY, and
    all are closed when the header timeout runs out."""
    async with Marsserver("--source", "demo", "--access-log", "off") as server:
        before = memory_kib(server.process.pid, "VmRSS")
        opened = time.monotonic()
        connections = await asyncio.gather(*(
            never_finished_headers(server.url, MAX_REQUEST_LINE - 100, MAX_HEADERS - 1)
            for _ in range(200)))
        assert (await healthz_over_a_new_connection(server.url)).startswith(b"HTTP/1.1 200")
        async with asyncio.timeout(HEADER_TIMEOUT + 5):
            answers = await asyncio.gather(*map(until_closed, connections))
        took = time.monotonic() - opened
        growth = memory_kib(server.process.pid, "VmHWM") - before
    assert set(answers) == {b""}  # closed unanswered when the header timeout ran out
    assert HEADER_TIMEOUT - 1 < took < HEADER_TIMEOUT + 2
    assert growth * 1024 <= 200 * MAX_HEADER_MEMORY, f"grew {growth} KiB"


async def test_more_header_fields_than_the_service_takes_end_the_connection_at_once():
    """The review's slow clients sent aiohttp's default maximum, 127 fields of 8 KiB, and
    were held for the whole keep-alive with 2 MiB each."""
    async with Marsserver("--source", "demo", "--access-log", "off") as server:
        connections = await asyncio.gather(*(
            never_finished_headers(server.url, 100, 127) for _ in range(200)))
        async with asyncio.timeout(2):
            answers = await asyncio.gather(*map(until_closed, connections))
    assert {answer[9:12] for answer in answers} <= {b"400", b""}  # b"": reset, unread


async def test_past_the_connection_cap_the_oldest_connections_make_room():
    """One client opening connections without end closes its own oldest, not the door on
    everyone else: the next client is answered, and memory stays bounded by the cap."""
    async with Marsserver("--source", "demo", "--access-log", "off") as server:
        host, port = server.url.removeprefix("http://").split(":")
        held = [await asyncio.open_connection(host, int(port))
                for _ in range(MAX_CONNECTIONS + 100)]
        answer = await healthz_over_a_new_connection(server.url)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        async with asyncio.timeout(HEADER_TIMEOUT / 2):  # closed by the cap, not the timeout
            shed = await asyncio.gather(*(reader.read() for reader, _ in held[:101]))
        still_open = [reader.at_eof() for reader, _ in held[101:]]
        for _, writer in held:
            writer.close()
    assert set(shed) == {b""}
    assert not any(still_open)


async def test_a_burst_of_connections_past_the_cap_is_brought_back_under_it():
    """Connections that arrive together are accepted in one go, each counted by the server only
    once it is set up: the cap must hold once the burst is in, not only when the next
    connection comes (the review's case: a cap of 5, 50 connections at once)."""
    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(text="ok")

    server = web.Server(handler)
    listener = await asyncio.get_running_loop().create_server(
        CappedConnections(server, 5, grace=1.0), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    held = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port)
                                  for _ in range(50)))
    readers = [asyncio.create_task(reader.read()) for reader, _ in held]
    try:
        await until(lambda: sum(task.done() for task in readers) >= 45, within=5)
    finally:
        for task in readers:
            task.cancel()
        for _, writer in held:
            writer.close()
        listener.close()
        await server.shutdown(0.1)


async def test_a_thousand_idle_connections_leave_room_for_the_next_client():
    """With the common soft limit of 1,024 open files, 1,100 connections that send nothing
    took every file: the next client's /healthz was never accepted. The command raises the
    soft limit to the hard one (and sheds the oldest past its connection cap)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 4096, "this test needs a hard limit on open files of 4,096 or more"
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # what the server inherits
    try:
        server = Marsserver("--source", "demo", "--access-log", "off")
        await server.__aenter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    idle: list[socket.socket] = []
    try:
        host, port = server.url.removeprefix("http://").split(":")
        idle.extend(socket.create_connection((host, int(port))) for _ in range(1100))
        answer = await healthz_over_a_new_connection(server.url)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert open_files_limits(server.process.pid) == (hard, hard)
    finally:
        for connection in idle:
            connection.close()
        await server.__aexit__(None, None, None)
