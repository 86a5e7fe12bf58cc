"""Fault injection against a real local stub of NASA: one test per way the upstream misbehaves.

Each asserts what the client sees, how many upstream calls it cost, and that the service
serves a good upstream again afterwards.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
import zlib

import pytest
from aiohttp import web
from PIL import Image

from marsserver.core.pipeline import NEWEST_KEY, Pipeline

from .helpers import pipeline_of, until
from .stub import Stub

FAST = {"error_ttl": 0.3, "timeout": 0.5}


def remembered(pipeline: Pipeline) -> list[str]:
    return [key for key in pipeline.cache.view() if key.startswith("failed:")]


async def recovers(client, stub: Stub, path: str = "/wallpaper?height=100") -> None:
    """Heal the stub, let the remembered failure expire, and see a good answer again."""
    stub.faults.clear()
    await until(lambda: not remembered(pipeline_of(client)))
    response = await client.get(path)
    assert response.status == 200


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


async def test_slow_upstream_is_a_504_and_not_retried(stub: Stub, client_for):
    client = await client_for(stub.settings(**FAST))
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        raise AssertionError("unreachable")

    stub.faults["feed"] = hang
    responses = [await client.get("/") for _ in range(3)]

    assert [r.status for r in responses] == [504] * 3
    assert (await responses[0].json())["error"] == "upstream_timeout"
    assert stub.calls["feed"] == 1  # one timeout, then remembered
    await recovers(client, stub, "/")


async def test_a_500_storm_is_retried_a_bounded_number_of_times_then_remembered(stub, client_for):
    client = await client_for(stub.settings(retries=2, **FAST))
    stub.fail("feed", 500)
    responses = [await client.get("/wallpaper") for _ in range(5)]

    assert [r.status for r in responses] == [502] * 5
    assert stub.calls["feed"] == 3  # 1 + 2 retries, then the failure is replayed
    await recovers(client, stub)
    assert stub.calls["feed"] == 4


async def test_4xx_is_not_retried(stub: Stub, client_for):
    client = await client_for(stub.settings(retries=2, **FAST))
    stub.fail("feed", 403, b'{"error": {"code": "API_KEY_INVALID"}}')
    assert (await client.get("/")).status == 502
    assert stub.calls["feed"] == 1
    await recovers(client, stub, "/")


async def test_429_with_retry_after_rests_the_upstream_until_then(stub: Stub, client_for):
    client = await client_for(stub.settings(**FAST))
    stub.fail("feed", 429, **{"Retry-After": "1"})
    first = await client.get("/")
    assert first.status == 503
    assert first.headers["Retry-After"] == "1"
    assert (await first.json())["error"] == "unavailable"

    stub.faults.clear()
    burst = [await client.get("/") for _ in range(10)]
    assert {r.status for r in burst} == {503}
    assert stub.calls["feed"] == 1  # nobody called NASA while it asked us to wait

    async with asyncio.timeout(5):
        while (await client.get("/")).status != 200:
            await until(lambda: not remembered(pipeline_of(client)))
    assert stub.calls["feed"] == 2


@pytest.mark.parametrize("body", [b"<html><body>Maintenance</body></html>", b'{"items": []}',
                                  b'{"items": [{"id": "1"}]}', b'{"items": '])
async def test_garbage_lists_are_a_clean_502_and_never_cached(stub, client_for, body):
    client = await client_for(stub.settings(**FAST))
    stub.fail("feed", 200, body, **{"Content-Type": "application/json"})
    for path in ("/", "/wallpaper"):
        response = await client.get(path)
        assert response.status == 502
        assert (await response.json())["error"] == "bad_upstream"
    assert stub.calls["feed"] == 1
    await recovers(client, stub, "/")
    assert stub.calls["feed"] == 2


@pytest.mark.parametrize(("name", "body", "detail"), [
    ("truncated", "truncated", "unusable"),
    ("corrupt", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20, "unusable"),
    ("bomb", bomb_png(8000, 8000), "too large: 8000x8000"),
    ("html", b"<html>not an image</html>", "unusable"),
])
async def test_bad_images_are_a_502_and_not_kept(stub, client_for, name, body, detail):
    client = await client_for(stub.settings(**FAST))
    image = stub.images[stub.feed_images[0]]
    stub.fail("image", 200, image[: len(image) // 2] if body == "truncated" else body)

    responses = [await client.get("/wallpaper?height=200") for _ in range(3)]
    assert [r.status for r in responses] == [502] * 3
    assert detail in (await responses[0].json())["detail"]
    assert stub.downloads() == 1
    assert not [k for k in pipeline_of(client).cache.view() if k.startswith("source:")]
    await recovers(client, stub, "/wallpaper?height=200")
    assert stub.downloads() == 2


async def test_an_image_link_outside_the_allow_list_is_never_fetched(stub, client_for):
    client = await client_for(stub.settings(**FAST))
    outside = f"http://localhost:{stub.port}/images/{stub.feed_images[0]}"
    stub.faults["feed"] = lambda request: _json(stub.feed([outside]))

    response = await client.get("/wallpaper")
    assert response.status == 502
    assert "outside the allowed hosts" in (await response.json())["detail"]
    assert stub.downloads() == 0
    await recovers(client, stub, "/")


async def test_a_redirect_to_loopback_is_refused(stub, client_for):
    client = await client_for(stub.settings(**FAST))
    name = stub.feed_images[0]
    stub.fail("image", 302, b"", Location=f"http://localhost:{stub.port}/images/{name}")

    response = await client.get("/wallpaper")
    assert response.status == 502
    assert "outside the allowed hosts" in (await response.json())["detail"]
    assert stub.calls[name] == 1  # the redirect itself, never its target
    await recovers(client, stub)


async def test_stale_while_revalidate_then_stale_if_error(stub: Stub, client_for):
    client = await client_for(stub.settings(info_ttl=0.2, error_ttl=60, retries=0))
    pipeline = pipeline_of(client)
    fresh = await client.get("/")
    assert fresh.headers["X-Cache"] == "MISS"
    body = await fresh.read()

    stub.fail("feed", 500)
    await until(lambda: _age(pipeline) > 0.2)
    stale = [await client.get("/") for _ in range(20)]  # served at once, one refresh behind
    assert {r.status for r in stale} == {200}
    assert {r.headers["X-Cache"] for r in stale} == {"STALE"}
    assert {await r.read() for r in stale} == {body}
    await until(lambda: not pipeline.background)
    assert stub.calls["feed"] == 2  # the first fetch and one failed refresh

    failing = await client.get("/")
    assert "Warning" not in failing.headers  # obsoleted by RFC 9111
    assert "Age" not in failing.headers  # its windows count from now (test_cache_control)
    assert (await client.get("/wallpaper?height=64")).status == 200  # wallpapers still served
    assert stub.calls["feed"] == 2


async def test_a_good_refresh_replaces_the_stale_list(stub: Stub, client_for, clock):
    client = await client_for(stub.settings(info_ttl=30))
    pipeline = pipeline_of(client)
    await client.get("/")
    stub.feed_images = stub.feed_images[:1]
    clock.now += 31

    assert (await client.get("/")).headers["X-Cache"] == "STALE"
    await until(lambda: not pipeline.background)
    fresh = await client.get("/")
    assert fresh.headers["X-Cache"] == "HIT"
    assert (await fresh.json())["count"] == 1
    assert stub.calls["feed"] == 2


async def test_a_cold_cache_with_a_failing_upstream_never_hangs(stub: Stub, client_for):
    client = await client_for(stub.settings(**FAST))
    stub.fail("feed", 503)
    async with asyncio.timeout(5):
        response = await client.get("/wallpaper")
    assert response.status == 502


def _age(pipeline: Pipeline) -> float:
    today = pipeline.cache.peek(NEWEST_KEY)
    return time.time() - today.fetched_at if today else 0.0


async def _json(payload: object) -> web.Response:
    return web.json_response(payload)


def test_the_bomb_really_claims_its_size():
    assert Image.open(io.BytesIO(bomb_png(8000, 8000))).size == (8000, 8000)


async def test_concurrent_stale_requests_start_exactly_one_refresh(stub: Stub, client_for):
    client = await client_for(stub.settings(info_ttl=0.2, error_ttl=60, retries=0))
    pipeline = pipeline_of(client)
    await client.get("/")
    stub.fail("feed", 500)
    await until(lambda: _age(pipeline) > 0.2)
    burst = await asyncio.gather(*(client.get("/") for _ in range(20)))
    assert {r.headers["X-Cache"] for r in burst} == {"STALE"}
    await until(lambda: not pipeline.background)
    assert stub.calls["feed"] == 2


async def test_a_429_from_the_feed_does_not_stop_wallpapers_of_a_cached_list(stub, client_for):
    """A client that spends the feed's quota (new sols, odd cameras) holds the feed for
    everyone, not the images: the wallpapers of a list already cached still get made."""
    client = await client_for(stub.settings(**FAST))
    assert (await client.get("/api/photos")).status == 200
    stub.fail("feed", 429, **{"Retry-After": "120"})
    limited = await client.get("/api/photos?sol=7")
    assert (limited.status, limited.headers["Retry-After"]) == (503, "120")
    assert (await client.get("/wallpaper?photo_number=1&height=100")).status == 200
    assert stub.downloads() == 1
