"""Scaling out, against a real Redis: shared cache, cross-instance single flight, failover.

Uses MARS_TEST_REDIS_URL when set (a database the tests may flush), else starts its own
`redis-server` on a free port. Without either the module is skipped, except under CI, where
a missing Redis fails (`.ci/run` makes sure there is one).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from marsserver.redis_cache import PREFIX

from .helpers import pipeline_of, until
from .stub import Stub

SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    not (os.environ.get("MARS_TEST_REDIS_URL") or SERVER) and not os.environ.get("CI"),
    reason="no Redis: set MARS_TEST_REDIS_URL or install redis-server (CI never skips)")
needs_own_server = pytest.mark.skipif(SERVER is None and not os.environ.get("CI"),
                                      reason="stopping Redis needs our own redis-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A throwaway redis-server that can be stopped and started again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [SERVER or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)  # polling a port the server has not opened yet

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    """A Redis database for one test, flushed afterwards."""
    server = None
    url = os.environ.get("MARS_TEST_REDIS_URL")
    if not url:
        server = RedisServer(tmp_path)
        server.start()
        url = server.url
    try:
        yield url
    finally:
        client = redis.Redis.from_url(url)
        await client.flushdb()
        await client.aclose()
        if server is not None:
            server.stop()


async def instances(client_for, stub: Stub, url: str, count: int = 3, **settings):
    return [await client_for(stub.settings(cache=url, **settings)) for _ in range(count)]


def waiting(clients, prefix: str) -> int:
    return sum(n for c in clients for k, n in pipeline_of(c).in_flight().items()
               if k.startswith(prefix))


async def test_three_instances_cost_one_list_one_download_one_resize(stub, client_for, resizes,
                                                                      redis_url):
    clients = await instances(client_for, stub, redis_url)
    feed = stub.hold("feed")
    burst = [asyncio.create_task(clients[n % 3].get("/wallpaper?height=360"))
             for n in range(150)]
    await until(lambda: waiting(clients, "today") == 150)
    feed.set()
    responses = await asyncio.gather(*burst)

    assert [r.status for r in responses] == [200] * 150
    assert len({await r.read() for r in responses}) == 1
    assert (stub.calls["feed"], stub.downloads(), resizes) == (1, 1, [360])


async def test_keys_carry_the_versioned_prefix_and_ttls(stub, client_for, redis_url):
    (client,) = await instances(client_for, stub, redis_url, count=1, image_ttl=600,
                                info_ttl=60, max_stale=60)
    assert (await client.get("/wallpaper?height=100")).status == 200
    shared = redis.Redis.from_url(redis_url)
    try:
        keys = await shared.keys("*")
        assert len(keys) == 3  # the list, the source image, the wallpaper; no leases left
        for key in keys:
            assert key.startswith(PREFIX.encode() + b":")
            assert 0 < await shared.pttl(key) <= 600_000
    finally:
        await shared.aclose()


async def test_an_instance_reads_what_another_made_and_its_front_expires_with_redis(
        stub, client_for, redis_url):
    one, two = await instances(client_for, stub, redis_url, count=2, image_ttl=30)
    made = await one.get("/wallpaper?height=120")
    seen = await two.get("/wallpaper?height=120")

    assert await seen.read() == await made.read()
    assert stub.downloads() == 1
    front = pipeline_of(two)._cache.front
    key = next(k for k in front._cache if k.startswith("wallpaper:"))
    remaining = front._handlers[key].when() - asyncio.get_running_loop().time()
    assert 0 < remaining <= 30


async def test_followers_take_over_when_the_leader_dies(stub, client_for, redis_url):
    leader, *followers = await instances(client_for, stub, redis_url, lease=0.5)
    await leader.get("/")  # the list is shared; the wallpaper is the contested work
    held = stub.hold(stub.feed_images[0])
    dying = asyncio.create_task(leader.get("/wallpaper?height=200"))
    await until(lambda: stub.calls[stub.feed_images[0]] == 1)

    async def silence(*_: object) -> None:
        """A killed process neither renews nor releases its lease."""

    pipeline_of(leader)._leases._script = silence  # type: ignore[union-attr]
    waiters = [asyncio.create_task(f.get("/wallpaper?height=200")) for f in followers]
    await until(lambda: waiting(followers, "wallpaper:") == 2)
    dying.cancel()
    await leader.close()  # the leader's process is gone
    held.set()
    started = time.monotonic()
    responses = await asyncio.gather(*waiters)

    assert [r.status for r in responses] == [200, 200]
    assert time.monotonic() - started < 0.5 + 5  # lease expiry plus one download and resize
    assert stub.downloads() == 2  # the dead leader's, then exactly one takeover


async def test_a_failure_made_elsewhere_reaches_the_followers(stub, client_for, redis_url):
    clients = await instances(client_for, stub, redis_url, retries=0)
    stub.fail("feed", 500)
    feed = stub.hold("feed")
    burst = [asyncio.create_task(clients[n % 3].get("/")) for n in range(30)]
    await until(lambda: waiting(clients, "today") == 30)
    feed.set()
    responses = await asyncio.gather(*burst)
    assert {r.status for r in responses} == {502}
    assert stub.calls["feed"] == 1


@needs_own_server
async def test_a_redis_outage_degrades_to_memory_and_recovers(stub, client_for, redis_server):
    (client,) = await instances(client_for, stub, redis_server.url, count=1)
    assert (await client.get("/wallpaper?height=100")).status == 200

    redis_server.stop()
    outage = [await client.get(f"/wallpaper?height={h}") for h in (110, 120, 130)]
    assert [r.status for r in outage] == [200, 200, 200]
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded"

    redis_server.start()
    shared = redis.Redis.from_url(redis_server.url)
    try:
        height = 140

        async def written_again() -> bool:
            nonlocal height
            height += 1
            assert (await client.get(f"/wallpaper?height={height}")).status == 200
            return bool(await shared.keys("*wallpaper:*"))

        async with asyncio.timeout(15):
            while not await written_again():
                await asyncio.sleep(0.2)
        assert (await (await client.get("/healthz")).json())["status"] == "ok"
    finally:
        await shared.aclose()


async def test_with_redis_unreachable_a_stale_list_is_still_served(stub, client_for):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    client = await client_for(stub.settings(cache=unreachable, info_ttl=0.2, retries=0))
    pipeline = pipeline_of(client)
    assert (await client.get("/")).status == 200
    assert (await (await client.get("/healthz")).json())["status"] == "degraded"
    stub.fail("feed", 500)
    await until(lambda: time.time() - pipeline._cache.front.peek("today").fetched_at > 0.2)
    for _ in range(3):
        stale = await client.get("/")
        assert (stale.status, stale.headers["X-Cache"]) == (200, "STALE")
        await until(lambda: pipeline._refresh is not None and pipeline._refresh.done())
    assert stub.calls["feed"] == 2  # one good fetch, one failed refresh, then remembered


def two_workers(port: int) -> tuple[subprocess.Popen[str], list[str]]:
    """`marsserver --workers 2` on `port`, once its start line and both workers' are out."""
    parent = subprocess.Popen(
        [sys.executable, "-m", "marsserver", "--source", "demo", "--port", str(port),
         "--workers", "2", "--access-log", "off"], stderr=subprocess.PIPE, text=True)
    assert parent.stderr is not None
    return parent, [parent.stderr.readline() for _ in range(3)]


def test_workers_share_one_port_and_stop_together():
    port = free_port()
    parent, lines = two_workers(port)
    try:
        assert "started 2 workers" in lines[0]
        assert sum(f"listening on http://127.0.0.1:{port}" in line for line in lines) == 2
        for _ in range(4):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                assert connection.recv(100).startswith(b"HTTP/1.0 200 OK")
    finally:
        parent.terminate()
        assert parent.wait(timeout=30) == 0


def test_a_worker_dying_stops_the_rest_and_the_status_says_so():
    parent, lines = two_workers(free_port())
    pids = [int(pid) for pid in lines[0].split("workers: ")[1].split(", ")]
    os.kill(pids[0], 9)
    assert parent.wait(timeout=30) == 128 + 9
    for pid in pids[1:]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
