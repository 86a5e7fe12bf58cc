"""Cold burst: N concurrent first requests for one wallpaper against a slow stub of NASA.

Runs marsserver as users do (`python -m marsserver`, its own process) in front of a local
stub with realistic latency, fires the burst from this process, and prints what it cost
upstream and the latency percentiles against the ideal (upstream latency + one resize);
then the same burst against `bench.naive`, the same work without coalescing.

    python -m bench.cold_burst [--requests 500] [--list-latency 0.3] [--image-latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from marsserver import imaging
from tests.stub import FEED_PATH, Stub

from .common import Service, burst, start_process, start_service, start_stub, stop

HEIGHT = 1080


def median_resize_ms(data: bytes, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        imaging.wallpaper(data, imaging.Spec(HEIGHT), max_pixels=10**9)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def run(name: str, start: str, args: argparse.Namespace) -> tuple[Stub, list[float]]:
    stub, runner = await start_stub(args.list_latency, args.image_latency)
    service: Service = await (start_service(stub) if start == "marsserver"
                              else start_process("bench.naive", stub.base + FEED_PATH))
    try:
        latencies, statuses, bodies = await burst(
            [service.url], f"/wallpaper?photo_number=0&height={HEIGHT}", args.requests)
    finally:
        await stop(service, runner)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    print(f"{name:14} {stub.calls['feed']:>6} {stub.downloads():>9} {p50:>8.0f} {p99:>8.0f} "
          f"{latencies[-1]:>8.0f}   {dict(statuses)}, {len(bodies)} distinct bodies", flush=True)
    return stub, latencies


async def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--requests", type=int, default=500)
    cli.add_argument("--list-latency", type=float, default=0.3)
    cli.add_argument("--image-latency", type=float, default=0.2)
    args = cli.parse_args()
    print(f"cold burst: {args.requests} concurrent GET /wallpaper?height={HEIGHT} (stub latency:"
          f" list {args.list_latency * 1000:.0f} ms, image {args.image_latency * 1000:.0f} ms)")
    print(f"{'server':14} {'lists':>6} {'downloads':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    stub, latencies = await run("marsserver", "marsserver", args)
    await run("no coalescing", "naive", args)
    resize = median_resize_ms(stub.images[stub.feed_images[0]])
    ideal = (args.list_latency + args.image_latency) * 1000 + resize
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"ideal = list + image latency + one {resize:.0f} ms resize = {ideal:.0f} ms; "
          f"marsserver p99/ideal = {p99 / ideal:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    asyncio.run(main())
