"""Resize loop: one client asking for ever new free sizes, with and without `--signing-key`.

Runs marsserver (its own process, default settings) in front of a local stub NASA serving
real rover images. For SECONDS, a client asks for distinct sizes, CONCURRENCY at a time (as
review/abuse/redisgrowth.py did); meanwhile a person asks for a preset wallpaper they have
not seen yet every 0.2 s. Prints, for each run: what the loop got, the resizes it cost, the
bytes it wrote into the cache (and how long they are kept), and what the person got.

    python -m bench.resize_loop [--seconds 20] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections import Counter

import aiohttp

from marsserver.imaging import PRESETS

from .common import start_service, start_stub, stop

KEY = "bench-signing-key-0123456789"
PERSON_EVERY = 0.2  # seconds between a person's requests


def loop_size(n: int) -> tuple[int, int]:
    """The loop's `n`th size: large, within the service's limits, never the same twice."""
    return 3840 - n // 2300, 2001 + n % 2300


async def loop(session: aiohttp.ClientSession, url: str, until: float,
               sizes: itertools.count[int], got: Counter[int]) -> int:
    """Distinct sizes, each a resize (and a cache entry) of its own: the bytes of the 200s."""
    written = 0
    while time.monotonic() < until:
        n = next(sizes)
        width, height = loop_size(n)
        async with session.get(f"{url}/wallpaper", params={
                "photo_number": n % 3, "width": width, "height": height, "fit": "contain",
                "format": "png"}) as response:
            body = await response.read()
            got[response.status] += 1
            written += len(body) if response.status == 200 else 0
    return written


async def person(session: aiohttp.ClientSession, url: str, until: float,
                 got: Counter[int], latencies: list[float]) -> None:
    """A preset of a photo not asked for before, every PERSON_EVERY seconds: cold each time."""
    wanted = itertools.cycle(itertools.product(PRESETS, ("jpeg", "webp", "png"), range(3)))
    while time.monotonic() < until:
        preset, image_format, number = next(wanted)
        start = time.perf_counter()
        async with session.get(f"{url}/wallpaper", params={
                "photo_number": number, "preset": preset, "format": image_format}) as response:
            await response.read()
            got[response.status] += 1
        latencies.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(PERSON_EVERY)


async def resizes(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    return int(float(next(line.split()[1] for line in text.splitlines()
                          if line.startswith("marsserver_resizes_total"))))


async def run(name: str, flags: tuple[str, ...], args: argparse.Namespace) -> None:
    stub, runner = await start_stub()
    service = await start_service(stub, "--access-log", "off", *flags)
    loop_got: Counter[int] = Counter()
    person_got: Counter[int] = Counter()
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            until = time.monotonic() + args.seconds
            sizes = itertools.count()
            looping = asyncio.gather(*(loop(session, service.url, until, sizes, loop_got)
                                       for _ in range(args.concurrency)))
            written, _ = await asyncio.gather(
                looping, person(session, service.url, until, person_got, latencies))
            made = await resizes(session, service.url)
    finally:
        await stop(service, runner)
    latencies.sort()
    p50, p99 = (latencies[min(len(latencies) - 1, int(len(latencies) * q))] for q in (0.5, 0.99))
    print(f"{name:22} loop: {sum(loop_got.values()):>6} requests {dict(loop_got)}, "
          f"{made:>4} resizes, {sum(written) / 2**20:6.1f} MiB written to the cache; "
          f"person: {dict(person_got)}, p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    print(f"{args.concurrency} clients asking for new sizes for {args.seconds:g} s, "
          f"and a person asking for a new preset every {PERSON_EVERY} s", flush=True)
    await run("no --signing-key", (), args)
    await run("with --signing-key", ("--signing-key", KEY), args)


if __name__ == "__main__":
    asyncio.run(main())
