"""What the benchmarks share: a stub NASA on a free port, and marsserver in its own process."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
from aiohttp import web

from tests.stub import FEED_PATH, Stub

AnyStub = TypeVar("AnyStub", bound=Stub)


async def start_stub(list_latency: float = 0.0, image_latency: float = 0.0,
                     ) -> tuple[Stub, web.AppRunner]:
    stub = Stub()
    stub.latency = {"feed": list_latency, "image": image_latency}
    return await serve_stub(stub)


async def serve_stub(stub: AnyStub) -> tuple[AnyStub, web.AppRunner]:
    """`stub` answering on a free port."""
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


async def start_service(stub: Stub, *flags: str, port: int = 0, log: Path | None = None,
                        ) -> Service:
    """Start `python -m marsserver` on `port` (0: a free one) in front of `stub`; its log
    goes to `log` if given."""
    return await start_process(
        "marsserver", "--port", str(port), "--source", "msl", "--api-url", stub.base + FEED_PATH,
        "--image-hosts", f"127.0.0.1:{stub.port}", *flags, log=log)


async def start_process(module: str, *args: str, log: Path | None = None) -> Service:
    """Run `python -m module args` and wait for its "listening on URL" log line (lines before
    it, such as whether tracing is on, are passed over); the rest of its log is appended to
    `log` if given, else dropped. A process that ends before listening fails the bench."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    seen = []
    while "listening on " not in (line := (await process.stderr.readline()).decode()):
        seen.append(line)
        if not line:
            await process.wait()
            raise SystemExit(f"{module} did not start: {''.join(seen)}")
    url = line.split("listening on ")[1].split(",")[0]
    return Service(process, url, asyncio.create_task(_drain(process.stderr, log)))


async def _drain(stream: asyncio.StreamReader, log: Path | None = None) -> None:
    with (log or Path(os.devnull)).open("ab", buffering=0) as sink:  # readable as it runs
        while line := await stream.readline():
            sink.write(line)


async def start_redis(port: int, scratch: str) -> asyncio.subprocess.Process:
    """A redis-server of the benchmark's own on `port`, without persistence, once it listens."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("this benchmark needs redis-server: apt-get install redis-server")
    redis = await asyncio.create_subprocess_exec(
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", scratch, stdout=asyncio.subprocess.DEVNULL)
    await until_listening(port)
    return redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def until_listening(port: int) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


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
