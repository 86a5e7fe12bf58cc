"""Scale-out cold burst: three marsserver processes sharing one Redis, N requests spread.

Starts its own redis-server on a free port, a stub NASA with realistic latency and three
`python -m marsserver --cache redis://...` processes, then sends N concurrent cold requests
for one wallpaper, round-robin over the three. Prints what NASA saw and the latencies.

    python -m bench.scale_out [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

from .common import burst, free_port, start_redis, start_service, start_stub, stop


async def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--requests", type=int, default=300)
    args = cli.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        redis = await start_redis(port, scratch)
        stub, runner = await start_stub(0.3, 0.2)
        services = [await start_service(stub, "--cache", f"redis://127.0.0.1:{port}/0",
                                        "--access-log", "off") for _ in range(3)]
        try:
            latencies, statuses, _ = await burst([s.url for s in services],
                                                 "/wallpaper?height=1080", args.requests)
        finally:
            for service in services:
                await stop(service)
            await runner.cleanup()
            redis.terminate()
            await redis.wait()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    print(f"3 instances, 1 Redis: {args.requests} concurrent cold requests for one wallpaper "
          f"(list 300 ms, image 200 ms): statuses {dict(statuses)}")
    print(f"NASA saw {stub.calls['feed']} list call(s) and {stub.downloads()} download(s); "
          f"latency p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
