"""Cached-hit throughput: marsserver's `/wallpaper` and `/` against a bare aiohttp handler.

Both servers run in their own process, both without access logs, both on the same event
loop; wrk (Debian's `wrk`) loads each in turn from a third process. Reports the median
requests/s of several runs and the ratio to the bare handler (target >= 0.9x).

    python -m bench.throughput [--runs 3] [--seconds 5] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import tempfile
from pathlib import Path

import aiohttp

from .common import Service, start_process, start_service, start_stub, stop

PATHS = {"/wallpaper": "/wallpaper?photo_number=0&height=1080", "/": "/"}


async def wrk(url: str, seconds: int, connections: int) -> float:
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await process.communicate())[0].decode()
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not match or "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk failed against {url}:\n{output}")
    return float(match.group(1))


async def measure(service: Service, path: str, runs: int, seconds: int, connections: int,
                  ) -> float:
    await wrk(service.url + path, 1, connections)  # warm-up
    return statistics.median([await wrk(service.url + path, seconds, connections)
                              for _ in range(runs)])


async def compare(loop: str, args: argparse.Namespace) -> list[tuple[str, float, float]]:
    """(path, marsserver req/s, bare req/s) for each path, on event loop `loop`."""
    stub, runner = await start_stub()
    service = await start_service(stub, "--access-log", "off", "--loop", loop)
    bodies = {}
    async with aiohttp.ClientSession() as session:
        for name, path in PATHS.items():
            async with session.get(service.url + path) as response:
                bodies[name] = await response.read()
    with tempfile.TemporaryDirectory() as scratch:
        files = [Path(scratch, "wallpaper"), Path(scratch, "list")]
        files[0].write_bytes(bodies["/wallpaper"])
        files[1].write_bytes(bodies["/"])
        bare = await start_process("bench.bare", *map(str, files), "--loop", loop)
        try:
            rows = []
            for name, path in PATHS.items():
                ours = await measure(service, path, args.runs, args.seconds, args.connections)
                ceiling = await measure(bare, path, args.runs, args.seconds, args.connections)
                rows.append((name, ours, ceiling))
        finally:
            await stop(bare)
            await stop(service, runner)
    return rows


async def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--runs", type=int, default=3)
    cli.add_argument("--seconds", type=int, default=5)
    cli.add_argument("--connections", type=int, default=64)
    args = cli.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    loops = ["asyncio"]
    try:
        import uvloop  # noqa: F401
        loops.append("uvloop")
    except ImportError:
        print("uvloop not installed (pip install -e '.[bench]'): asyncio loop only")
    print(f"cached hits, wrk -t1 -c{args.connections}, median of {args.runs} x {args.seconds}s")
    print(f"{'loop':8} {'path':11} {'marsserver':>11} {'bare':>9} {'ratio':>6}  target >= 0.90")
    for loop in loops:
        for path, ours, ceiling in await compare(loop, args):
            print(f"{loop:8} {path:11} {ours:>9.0f}/s {ceiling:>7.0f}/s {ours / ceiling:>6.2f}",
                  flush=True)


if __name__ == "__main__":
    asyncio.run(main())
