"""Executor scaling: cold wallpapers per second with 1 and with 2 resize threads.

Each run starts marsserver with `--resize-threads N` in front of a stub NASA (no latency),
warms the list and the source images, then requests COUNT distinct, uncached sizes with
8 concurrent clients: every request is one resize.

    python -m bench.scaling [--count 120]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from .common import start_service, start_stub, stop


async def cold_rate(threads: int, count: int) -> float:
    stub, runner = await start_stub()
    service = await start_service(stub, "--resize-threads", str(threads), "--access-log", "off",
                                  "--resize-queue", str(count))
    photos = len(stub.feed_images)
    try:
        async with aiohttp.ClientSession() as session:
            for number in range(photos):  # warm: the list and every source image
                async with session.get(f"{service.url}/wallpaper?photo_number={number}&height=64"):
                    pass
            queue = iter(range(count))

            async def client() -> None:
                for n in queue:
                    query = f"photo_number={n % photos}&height={1000 + n}"
                    async with session.get(f"{service.url}/wallpaper?{query}") as response:
                        assert response.status == 200, response.status
                        await response.read()

            start = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(8)))
            return count / (time.perf_counter() - start)
    finally:
        await stop(service, runner)


async def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--count", type=int, default=120)
    args = cli.parse_args()
    one = await cold_rate(1, args.count)
    two = await cold_rate(2, args.count)
    print(f"cold wallpapers/s (~1000-1120 px high): 1 thread {one:.1f}, 2 threads {two:.1f}; "
          f"2 threads / 1 thread = {two / one:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
