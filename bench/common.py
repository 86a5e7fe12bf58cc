"""What the benchmarks share: a stub NASA on a free port, and marsserver in its own process."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from tests.stub import FEED_PATH, Stub


async def start_stub(list_latency: float = 0.0, image_latency: float = 0.0,
                     ) -> tuple[Stub, web.AppRunner]:
    stub = Stub()
    stub.latency = {"feed": list_latency, "image": image_latency}
    runner = web.AppRunner(stub.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    stub.port = runner.addresses[0][1]
    return stub, runner


async def serve_hit(runner: web.AppRunner, path: str) -> tuple[str, bytes, str]:
    """Start `runner` (a marsserver app) on a free port and ask for `path` until it is a cached
    hit: its URL there, and the hit's body and content type."""
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # the second one is a hit
            async with session.get(url) as response:
                body, content_type = await response.read(), response.content_type
                cache = response.headers["X-Cache"]
    if cache != "HIT":
        raise SystemExit(f"{path} was not a cached hit the second time: {cache}")
    return url, body, content_type


@dataclass
class Service:
    """marsserver running in its own process, its log drained so it never blocks on a pipe."""

    process: asyncio.subprocess.Process
    url: str
    drain: asyncio.Task[None]


async def start_service(stub: Stub, *flags: str) -> Service:
    """Start `python -m marsserver` on a free port in front of `stub`."""
    return await start_process(
        "marsserver", "--port", "0", "--source", "msl", "--api-url", stub.base + FEED_PATH,
        "--image-hosts", f"127.0.0.1:{stub.port}", *flags)


async def start_process(module: str, *args: str) -> Service:
    """Run `python -m module args` and wait for its "listening on URL" log line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    line = (await process.stderr.readline()).decode()
    if "listening on " not in line:
        raise SystemExit(f"{module} did not start: {line}")
    url = line.split("listening on ")[1].split(",")[0]
    return Service(process, url, asyncio.create_task(_drain(process.stderr)))


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def stop(service: Service, runner: web.AppRunner | None = None) -> None:
    service.process.terminate()
    await service.process.wait()
    await service.drain
    if runner is not None:
        await runner.cleanup()


async def burst(urls: list[str], path: str, requests: int,
                ) -> tuple[list[float], Counter[int], set[bytes]]:
    """`requests` concurrent GETs of `path`, round-robin over `urls`: sorted latencies (ms),
    statuses and the distinct bodies."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(n: int) -> tuple[float, int, bytes]:
            start = time.perf_counter()
            async with session.get(urls[n % len(urls)] + path) as response:
                body = await response.read()
                return (time.perf_counter() - start) * 1000, response.status, body

        results = await asyncio.gather(*(one(n) for n in range(requests)))
    return sorted(r[0] for r in results), Counter(r[1] for r in results), {r[2] for r in results}
