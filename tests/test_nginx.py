"""Behind a real nginx (the reference deployment in deploy/nginx.conf), caches hear the truth.

nginx revalidates an expired entry with If-None-Match. A 304 that says `max-age=0` makes nginx
fall back on the cached response's own max-age, keeping the old list for another full
`info_ttl`; so a new list must show through nginx within `info_ttl` + 2 s of the change.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from marsserver import create_app

from .helpers import require_tool
from .nginx_server import nginx_config
from .redis_server import free_port
from .stub import Stub

pytestmark = pytest.mark.external  # nginx, and redis-server behind it

INFO_TTL = 4.0


@pytest.fixture
async def nginx(redis_url: str, tmp_path: Path, stub: Stub, aiohttp_server: AiohttpServer,
                ) -> AsyncIterator[str]:
    """nginx on a free port in front of two marsserver instances sharing a Redis."""
    binary = require_tool("nginx", "apt-get install nginx-light; .ci/run does")
    instances = [await aiohttp_server(create_app(stub.settings(
        cache=redis_url, info_ttl=INFO_TTL, retries=0))) for _ in range(2)]
    port = free_port()
    config = nginx_config(tmp_path, port, [server.port for server in instances])
    process = await asyncio.create_subprocess_exec(binary, "-c", str(config), "-g",
                                                   "daemon off;", stderr=subprocess.PIPE)
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    assert process.returncode is None, "nginx did not start"
                    await asyncio.sleep(0.02)  # polling a port nginx has not opened yet
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


async def test_a_new_list_shows_through_nginx_within_info_ttl_plus_two_seconds(nginx, stub):
    async with aiohttp.ClientSession() as http:
        async def count() -> tuple[int, str]:
            async with http.get(nginx + "/api/photos") as response:
                assert response.status == 200
                return (await response.json())["count"], response.headers["X-Proxy-Cache"]

        assert await count() == (3, "MISS")
        assert await count() == (3, "HIT")  # nginx caches it: the test really goes through it
        stub.feed_images = stub.feed_images[:1]  # NASA's list changes now
        changed = time.monotonic()
        seen: set[str] = set()
        async with asyncio.timeout(INFO_TTL * 4):
            while (answer := await count())[0] != 1:
                seen.add(answer[1])
                await asyncio.sleep(0.1)  # a client asking ten times a second
        assert time.monotonic() - changed <= INFO_TTL + 2
        assert "REVALIDATED" in seen or "HIT" in seen  # nginx kept serving from its cache
