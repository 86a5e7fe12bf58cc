"""Scaling out, against a real Redis: shared cache, cross-instance single flight, failover;
and `--workers`, and a Redis nobody listens on, which need no redis-server.

The `redis_url` fixture (tests/conftest.py) uses MARS_TEST_REDIS_URL when set (a database the
tests may flush), else starts its own `redis-server` on a free port. Tests that need one are
marked `external`; a missing redis-server fails them (`require_tool`): a skip would let a run
without Redis look green (`.ci/run` makes sure there is one).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import aiohttp
import pytest
import redis.asyncio as redis

from marsserver import Listing, Photo, Query, QuerySource, Settings
from marsserver.core import redis_cache
from marsserver.core.entries import MAGIC, CachedListing
from marsserver.core.pipeline import NEWEST_KEY
from marsserver.core.redis_cache import SCHEMA_VERSION
from marsserver.errors import NotFound

from .helpers import Marsserver, pipeline_of, require_tool, until
from .redis_server import RedisServer, free_port
from .stub import FEED_PATH, Stub


@pytest.fixture
def redis_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server of the test's own, with the options a test may give (`indirect`)."""
    server = RedisServer(tmp_path, options=getattr(request, "param", ()))
    server.start()
    try:
        yield server
    finally:
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
    await until(lambda: waiting(clients, "list:") == 150)
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
        budget = [k for k in keys if k.endswith(b":upstream-budget")]
        assert len(budget) == 1  # the upstream budget's bucket: kept until it would be full
        assert 0 < await shared.pttl(budget[0]) <= 60_000
        keys = [k for k in keys if k not in budget]
        # the list, the source image, the wallpaper, the listed photos; no leases left
        assert len([k for k in keys if b":photo:" not in k]) == 3
        assert len(keys) == 3 + len(stub.feed_images)
        for key in keys:
            assert key.startswith(f"marsserver:v{SCHEMA_VERSION}:msl:".encode())
            ttl = 120_000 if b":list:" in key else 600_000  # info_ttl + max_stale, image_ttl
            assert ttl - 5_000 < await shared.pttl(key) <= ttl, key
    finally:
        await shared.aclose()


async def test_free_sizes_are_kept_free_size_ttl_and_standard_sizes_image_ttl(
        stub, client_for, redis_url):
    """A loop over sizes must not fill Redis for a day (docs/scaling.md, Memory in Redis)."""
    (client,) = await instances(client_for, stub, redis_url, count=1, image_ttl=3600,
                                free_size_ttl=60)
    for url in ("/wallpaper?height=1111", "/wallpaper?width=999&height=555",
                "/wallpaper?preset=720p", "/wallpaper?height=240"):
        assert (await client.get(url)).status == 200, url
    shared = redis.Redis.from_url(redis_url)
    try:
        kept = {key.split(b":wallpaper:")[1].split(b"-")[0]: await shared.pttl(key)
                for key in await shared.keys("*:wallpaper:*")}
    finally:
        await shared.aclose()
    assert set(kept) == {b"x1111", b"999x555", b"1280x720", b"x240"}
    for size, ttl in kept.items():
        expected = 60_000 if size in (b"x1111", b"999x555") else 3_600_000
        assert expected - 5_000 < ttl <= expected, size


async def test_an_instance_reads_what_another_made_and_its_front_expires_with_redis(
        stub, client_for, redis_url):
    one, two = await instances(client_for, stub, redis_url, count=2, image_ttl=30)
    made = await one.get("/wallpaper?height=120")
    seen = await two.get("/wallpaper?height=120")

    assert await seen.read() == await made.read()
    assert stub.downloads() == 1
    cache = pipeline_of(two).cache
    key = next(k for k in cache.view() if k.startswith("wallpaper:"))
    remaining = cache.expires_in(key)
    assert remaining is not None
    assert 29 < remaining <= 30


async def test_what_another_instance_made_is_shared_not_a_miss_then_a_hit(
        stub, client_for, redis_url):
    """X-Cache MISS means "this request did the work": reading another instance's work from
    Redis is SHARED, in the header and in the metrics; then it is in memory, a HIT."""
    one, two = await instances(client_for, stub, redis_url, count=2)
    assert (await one.get("/wallpaper?height=120")).headers["X-Cache"] == "MISS"
    assert (await two.get("/wallpaper?height=120")).headers["X-Cache"] == "SHARED"
    assert (await two.get("/wallpaper?height=120")).headers["X-Cache"] == "HIT"  # ready
    assert (await two.get("/api/photos")).headers["X-Cache"] == "HIT"
    metrics = await (await two.get("/metrics")).text()
    for stage, result, count in (("list", "shared", 1), ("wallpaper", "shared", 1),
                                 ("list", "miss", 0), ("wallpaper", "miss", 0),
                                 ("list", "hit", 2), ("wallpaper", "hit", 1)):
        sample = f'marsserver_cache_requests_total{{cache="{stage}",result="{result}"}}'
        assert f"{sample} {count}.0" in metrics, sample
    assert (stub.calls["feed"], stub.downloads()) == (1, 1)


async def test_followers_take_over_when_the_leader_process_is_killed(stub, redis_url):
    """A real leader process, SIGKILLed mid-download: it neither renews nor releases."""
    args = ("--source", "msl", "--api-url", stub.base + FEED_PATH, "--image-hosts",
            f"127.0.0.1:{stub.port}", "--cache", redis_url, "--lease", "1",
            "--redis-timeout", "0.5", "--access-log", "off")
    image = stub.feed_images[0]
    held = stub.hold(image)
    async with (Marsserver(*args) as leader, Marsserver(*args) as one, Marsserver(*args) as two,
                aiohttp.ClientSession() as http):
        dying = asyncio.create_task(http.get(leader.url + "/wallpaper?height=200"))
        await until(lambda: stub.calls[image] == 1)
        waiters = [asyncio.create_task(http.get(f.url + "/wallpaper?height=200"))
                   for f in (one, two)]
        for follower in (one, two):
            async with asyncio.timeout(10):
                while (await (await http.get(follower.url + "/healthz")).json())["in_flight"] < 1:
                    await asyncio.sleep(0.02)  # polling the follower until it waits
        leader.process.kill()
        held.set()
        responses = await asyncio.gather(*waiters)
        assert [r.status for r in responses] == [200, 200]
        assert len({await r.read() for r in responses}) == 1
        assert stub.calls[image] == 2  # the dead leader's, then exactly one takeover
        with pytest.raises(aiohttp.ClientError):
            await dying


async def test_a_failure_made_elsewhere_reaches_the_followers(stub, client_for, redis_url):
    clients = await instances(client_for, stub, redis_url, retries=0)
    stub.fail("feed", 500)
    feed = stub.hold("feed")
    burst = [asyncio.create_task(clients[n % 3].get("/")) for n in range(30)]
    await until(lambda: waiting(clients, "list:") == 30)
    feed.set()
    responses = await asyncio.gather(*burst)
    assert {r.status for r in responses} == {502}
    assert stub.calls["feed"] == 1


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
    await until(lambda: time.time() - pipeline.cache.peek(NEWEST_KEY).fetched_at > 0.2)
    for _ in range(3):
        stale = await client.get("/")
        assert (stale.status, stale.headers["X-Cache"]) == (200, "STALE")
        await until(lambda: not pipeline.background)
    assert stub.calls["feed"] == 2  # one good fetch, one failed refresh, then remembered


def two_workers(port: int) -> Marsserver:
    """`marsserver --workers 2` on `port`, once both workers listen."""
    parent = Marsserver("--source", "demo", "--port", str(port), "--workers", "2",
                        "--access-log", "off").start()
    parent.wait_for("listening on", times=2)
    return parent


def test_workers_share_one_port_and_stop_together():
    port = free_port()
    parent = two_workers(port)
    try:
        assert any("started 2 workers" in line for line in parent.lines)
        assert sum(f"listening on http://127.0.0.1:{port}" in line for line in parent.lines) == 2
        for _ in range(4):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                assert connection.recv(100).startswith(b"HTTP/1.0 200 OK")
    finally:
        assert parent.stop() == 0


def test_a_worker_dying_stops_the_rest_and_the_status_says_so():
    parent = two_workers(free_port())
    started = next(line for line in parent.lines if "started 2 workers" in line)
    pids = [int(pid) for pid in started.split("workers: ")[1].split(", ")]
    os.kill(pids[0], 9)
    assert parent.stop() == 128 + 9
    for pid in pids[1:]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def throwaway_certificates(directory: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 signed by it, made with openssl."""
    openssl = require_tool("openssl", "apt-get install openssl; .ci/run does")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "san.cnf", "-out", "server.crt")
    return directory


@pytest.mark.external  # redis-server, and openssl for its certificates
async def test_rediss_urls_with_a_ca_file_share_the_cache_over_tls(stub, client_for, tmp_path):
    tls = throwaway_certificates(tmp_path)
    server = RedisServer(tmp_path, tls=tls)
    server.start()
    try:
        url = f"rediss://default@127.0.0.1:{server.port}/2?health_check_interval=30"
        client = await client_for(stub.settings(cache=url, redis_ca_file=str(tls / "ca.crt")))
        assert (await client.get("/wallpaper?height=100")).status == 200
        assert not pipeline_of(client).degraded
        shared = redis.Redis.from_url(url, ssl_ca_certs=str(tls / "ca.crt"))
        try:
            keys = await shared.keys("*")
            # the list, the source, the wallpaper, the upstream budget: in database 2, over TLS
            assert len([k for k in keys if b":photo:" not in k]) == 4
        finally:
            await shared.aclose()

        untrusted = await client_for(stub.settings(cache=url))  # no CA: the handshake fails
        assert (await untrusted.get("/wallpaper?height=100")).status == 200
        assert pipeline_of(untrusted).degraded
    finally:
        server.stop()


async def plant(url: str, key: str, header: dict[str, object], body: bytes = b"") -> None:
    """Anyone who can write to the shared Redis: a well-formed entry, for an hour."""
    shared = redis.Redis.from_url(url)
    try:
        raw = MAGIC + json.dumps(header).encode() + b"\n" + body
        await shared.set(key, raw, px=3_600_000)
    finally:
        await shared.aclose()


async def test_an_entry_of_the_wrong_kind_in_redis_is_a_miss_logged_once(
        stub, client_for, redis_url, caplog):
    """Raw bytes under the list's key, well-formed: a miss, not a 500 on every request, and
    nothing of it kept in the front, neither the entry nor its planted hour."""
    writer, reader = await instances(client_for, stub, redis_url, count=2, info_ttl=60,
                                     max_stale=60)
    assert (await writer.get("/api/photos")).status == 200
    cache = pipeline_of(reader).cache
    for _ in range(2):  # the same key planted again: no second log line
        await plant(redis_url, cache.key(NEWEST_KEY), {"kind": "bytes"})
        await cache.clear()
        assert [(await reader.get("/api/photos")).status for _ in range(3)] == [200] * 3
        assert isinstance(cache.peek(NEWEST_KEY), CachedListing)
        assert cache.expires_in(NEWEST_KEY) <= 120  # the list's own TTL, not the plant's
    assert len([r for r in caplog.records if "unreadable Redis entry" in r.message]) == 1


async def test_a_filename_planted_in_redis_never_reaches_content_disposition(
        stub, client_for, redis_url):
    """A quote and a semicolon in a stored filename would add a parameter of their own."""
    writer, reader = await instances(client_for, stub, redis_url, count=2)
    made = await writer.get("/wallpaper?height=120&download=1")
    key = next(k for k in pipeline_of(writer).cache.view() if k.startswith("wallpaper:"))
    await plant(redis_url, pipeline_of(writer).cache.key(key), {
        "kind": "rendition", "media_type": "image/jpeg", "made_at": 1.7e9,
        "filename": "wallpaper.jpg\"; filename*=UTF-8''invoice.html; x=\""}, b"<html>")

    served = await reader.get("/wallpaper?height=120&download=1")
    assert served.headers["Content-Disposition"] == made.headers["Content-Disposition"]
    assert served.headers["Content-Disposition"].count('"') == 2
    assert await served.read() == await made.read()


class Garden(QuerySource):
    """An embedder's own photos; two embedders may well call theirs by the same name."""

    name: ClassVar[str] = "mine"
    who: ClassVar[str] = "garden"

    async def photos(self, query: Query) -> Listing:
        photo = Photo(id=f"{self.who}-1", camera="CAM", taken="2024-01-01T00:00:00Z",
                      img_src=f"https://mars.nasa.gov/{self.who}.jpg")
        return Listing(self.name, self.who, 1, (photo,))

    async def image(self, link: str) -> bytes:
        raise NotFound(link)


class Orchard(Garden):
    who: ClassVar[str] = "orchard"


async def test_embedders_with_their_own_sources_on_one_redis_stay_apart(app_for, redis_url):
    """The prefix names the source that serves, not `settings.source` (both say "demo")."""
    for source in (Garden(), Orchard()):
        client = await app_for(source, cache=redis_url)
        listed = await (await client.get("/api/photos")).json()
        assert [photo["id"] for photo in listed["photos"]] == [f"{source.who}-1"]


async def test_deployments_differing_only_by_rover_on_one_redis_stay_apart(client_for,
                                                                           redis_url):
    """Same source, API URL and mount path: only the rover tells their entries apart."""
    for rover in ("curiosity", "perseverance"):
        client = await client_for(Settings(source="demo", rover=rover, cache=redis_url))
        listed = await (await client.get("/api/photos")).json()
        assert listed["rover"] == rover


async def test_an_older_list_in_redis_never_replaces_a_newer_one_held_here(
        stub, client_for, redis_url):
    """Redis may fall behind this instance (a write lost in an outage, a snapshot restored):
    going back to its older list would serve photos the feed has already replaced."""
    client = await client_for(stub.settings(cache=redis_url, info_ttl=0.2, retries=0))
    cache = pipeline_of(client).cache
    shared = redis.Redis.from_url(redis_url)

    async def listed_ids() -> list[str]:
        await until(lambda: not pipeline_of(client).background)
        listed = await (await client.get("/api/photos")).json()
        return [photo["id"] for photo in listed["photos"]]

    def stale() -> bool:
        return time.time() - cache.peek(NEWEST_KEY).fetched_at > 0.2

    try:
        old = await listed_ids()
        snapshot = await shared.get(cache.key(NEWEST_KEY))
        stub.feed_images = stub.feed_images[1:]
        await until(stale)
        await listed_ids()  # stale: the refresh fetches the new list
        new = await listed_ids()
        assert new != old

        await shared.set(cache.key(NEWEST_KEY), snapshot, px=3_600_000)  # the restore
        stub.fail("feed", 500)
        await until(stale)
        assert [await listed_ids() for _ in range(3)] == [new] * 3
    finally:
        await shared.aclose()


def full(policy: str) -> tuple[str, ...]:
    """A real redis-server with 2 MB for data, and `policy` at maxmemory."""
    return ("--maxmemory", "2mb", "--maxmemory-policy", policy)


STARTED = {"full": "Redis is full and refuses writes", "evicting": "Redis is evicting keys"}


@pytest.mark.parametrize(("redis_server", "said"), [(full("noeviction"), "full"),
                                                    (full("allkeys-lru"), "evicting")],
                         indirect=["redis_server"])
async def test_a_full_redis_is_said_once_and_every_request_still_answered(
        stub, client_for, redis_server, said, caplog, monkeypatch):
    """noeviction refuses writes (OOM), the LRU policies drop keys early (leases too): both
    answered from memory, no 5xx, said once in the log and in /healthz. (An LRU Redis may
    refuse a write too, when evicting cannot make room: then it says full, also true.)"""
    monkeypatch.setattr(redis_cache, "WATCH_EVERY", 0.05)
    stub.feed_images = sorted(stub.images)
    clients = await instances(client_for, stub, redis_server.url, count=2)
    statuses = set()
    for height in range(100, 700, 25):  # wallpapers and sources far smaller than 2 MB
        for client in clients:
            statuses.add((await client.get(f"/wallpaper?height={height}&photo_number="
                                           f"{height // 25 % len(stub.feed_images)}")).status)

    def lines(episode: str) -> int:
        return sum(r.message.startswith(STARTED[episode]) for r in caplog.records)

    async def states() -> set[str]:
        return {(await (await c.get("/healthz")).json())["redis"] for c in clients}

    async with asyncio.timeout(10):
        while lines(said) < 2:
            await asyncio.sleep(0.05)  # polling the real redis-server's eviction count
    assert statuses == {200}
    assert await states() <= {said, "full"}
    assert lines(said) == 2  # one line from each instance, however many requests
    assert lines("full") <= 2
    assert lines("evicting") <= 2


def test_an_episode_is_logged_when_it_starts_and_once_more_when_it_ends(caplog, monkeypatch):
    monkeypatch.setattr(redis_cache, "QUIET", -1.0)  # any pause is long enough
    episode = redis_cache.Episode("Redis began", "Redis ended")
    for _ in range(3):
        episode.seen()
    assert episode.on
    episode.settle()
    episode.settle()
    assert not episode.on
    assert [r.message for r in caplog.records] == ["Redis began", "Redis ended"]
