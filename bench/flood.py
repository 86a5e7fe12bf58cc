"""Memory flood: thousands of distinct wallpaper sizes must not grow the process past its bound.

Runs `python -m marsserver` with `--cache-bytes` in front of a local stub NASA serving real
rover images, requests COUNT distinct (photo, height) wallpapers, and samples the server's
resident memory (/proc/PID/status) throughout. Prints the baseline (after start-up and a
warm-up), the peak, and whether the peak stayed under cache bound + baseline.

    python -m bench.flood [--count 10000] [--cache-mib 64] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter

import aiohttp

from .common import start_service, start_stub, stop

MIN_HEIGHT, MAX_HEIGHT = 16, 4320
# Working memory of one resize at the largest height (Pillow keeps RGB as 4 bytes a pixel):
# measured 122 MiB for a 1200x874 source at 4320 px. Each resize thread may hold that much.
RESIZE_WORKING_MIB = 125


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


async def flood(url: str, pairs: list[tuple[int, int]], concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    queue = iter(pairs)
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        async def worker() -> None:
            for number, height in queue:
                query = f"photo_number={number}&height={height}"
                async with session.get(f"{url}/wallpaper?{query}") as response:
                    await response.read()
                    statuses[response.status] += 1
                done = sum(statuses.values())
                if done % 500 == 0:
                    rate = done / (time.perf_counter() - started)
                    print(f"  {done}/{len(pairs)} wallpapers, {rate:.0f}/s", flush=True)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def sample_peak(pid: int, peak: list[float]) -> None:
    while True:
        peak[0] = max(peak[0], rss_mib(pid))
        await asyncio.sleep(0.2)


async def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--count", type=int, default=10_000)
    cli.add_argument("--cache-mib", type=int, default=64)
    cli.add_argument("--concurrency", type=int, default=4)
    cli.add_argument("--resize-threads", type=int, default=2)
    args = cli.parse_args()

    stub, runner = await start_stub()
    service = await start_service(stub, "--cache-bytes", str(args.cache_mib * 2**20),
                                  "--resize-threads", str(args.resize_threads))
    pid, url = service.process.pid, service.url
    photos = len(stub.feed_images)
    pairs = [(n, h) for n in range(photos) for h in range(MIN_HEIGHT, MAX_HEIGHT + 1)]
    random.Random(42).shuffle(pairs)
    pairs = pairs[: args.count]
    try:
        await flood(url, [(n, 1080) for n in range(photos)], 1)  # warm-up: imports, sources
        baseline = rss_mib(pid)
        print(f"flood: {len(pairs)} distinct wallpapers, --cache-bytes {args.cache_mib} MiB, "
              f"baseline RSS {baseline:.0f} MiB", flush=True)
        peak = [baseline]
        sampler = asyncio.create_task(sample_peak(pid, peak))
        started = time.perf_counter()
        statuses = await flood(url, pairs, args.concurrency)
        elapsed = time.perf_counter() - started
        sampler.cancel()
        peak[0] = max(peak[0], rss_mib(pid, "VmHWM"))
    finally:
        await stop(service, runner)

    working = args.resize_threads * RESIZE_WORKING_MIB
    bound = args.cache_mib + baseline + working
    print(f"statuses: {dict(statuses)} in {elapsed:.0f} s ({len(pairs) / elapsed:.0f}/s)")
    print(f"peak RSS {peak[0]:.0f} MiB; bound = cache {args.cache_mib} + start-up {baseline:.0f}"
          f" + {args.resize_threads} resize threads x {RESIZE_WORKING_MIB} = {bound:.0f} MiB; "
          f"peak/bound = {peak[0] / bound:.2f} ({'within' if peak[0] <= bound else 'OVER'})")


if __name__ == "__main__":
    asyncio.run(main())
