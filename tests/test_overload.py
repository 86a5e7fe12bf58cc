"""Overload and lifecycle: a full resize queue sheds new work only; shutdown is clean."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from typing import Any

import aiohttp
import pytest

from marsserver import imaging
from marsserver.cli import SHUTDOWN_TIMEOUT
from marsserver.http.app import SHUTDOWN_GRACE
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
