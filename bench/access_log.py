"""What the access log costs per cached hit, measured where the machine's drift cancels out.

    python -m bench.access_log [--seconds 12] [--slot 0.3]

One marsserver app (demo source) serves cached hits to wrk, in this process, while its access
log is switched on and off every `slot` seconds; the CPU time this process spends per request
(all threads: the writer's formatting and writing included) is compared between the two kinds
of slot. Paired runs of separate servers (bench.throughput) see the machine's speed drift by
half within seconds; here both states see the same drift, so the difference is the logger's.
The writer is woken every 20 ms, so little of a slot's formatting spills into the next one
(up to 20 ms of 300: the cost may read up to about 7% low).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
from typing import TextIO

import aiohttp
from aiohttp import web
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from marsserver import Settings, create_app
from marsserver.accesslog import MODES, AccessLog

from .throughput import PATHS, SERVER_CPUS, WRK_CPU


class Switched(AccessLog):
    """The access log, switched on and off, counting requests either way."""

    on = False
    requests = 0

    def record(self, request: BaseRequest, response: StreamResponse, duration: float) -> None:
        self.requests += 1
        if self.on:
            super().record(request, response, duration)


async def measure(mode: str, path: str, args: argparse.Namespace, sink: TextIO,
                  ) -> tuple[float, float]:
    """Median CPU microseconds per request with the log on, and off."""
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    app = create_app(Settings(source="demo"))
    switched = Switched(mode, sink, interval=0.02)
    switched.attach(app)
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access"),
                           access_log_class=switched.logger_class)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # the second one is a hit
            async with session.get(url) as response:
                await response.read()
    wrk = await asyncio.create_subprocess_exec(
        *WRK_CPU, "wrk", "-t1", "-c64", f"-d{args.seconds}s", url,
        stdout=asyncio.subprocess.DEVNULL)
    costs: dict[bool, list[float]] = {True: [], False: []}
    await asyncio.sleep(1)  # wrk connects
    for slot in range(int((args.seconds - 2) / args.slot)):
        switched.on = slot % 2 == 0
        requests, cpu = switched.requests, time.process_time()
        await asyncio.sleep(args.slot)  # a bench slicing time, not a test synchronising
        if served := switched.requests - requests:
            costs[switched.on].append((time.process_time() - cpu) / served * 1e6)
    await wrk.wait()
    await runner.cleanup()
    return statistics.median(costs[True]), statistics.median(costs[False])


async def main(sink: TextIO) -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--seconds", type=int, default=12)
    cli.add_argument("--slot", type=float, default=0.3)
    args = cli.parse_args()
    if SERVER_CPUS:  # this process is the server: off wrk's CPU, like bench.throughput's
        os.sched_setaffinity(0, {int(cpu) for cpu in SERVER_CPUS[-1].split(",")})
    print(f"access log cost per cached hit, one server, log switched every {args.slot} s; "
          "CPU us per request (all threads), medians over slots")
    print(f"{'mode':5} {'path':11} {'log on':>8} {'log off':>8} {'cost':>7} {'share':>6}")
    for mode in MODES:
        for name, path in PATHS.items():
            on, off = await measure(mode, path, args, sink)
            print(f"{mode:5} {name:11} {on:8.1f} {off:8.1f} {on - off:7.1f} "
                  f"{on / off - 1:6.1%}", flush=True)


if __name__ == "__main__":
    with open(os.devnull, "w") as devnull:  # real writes, to nowhere
        asyncio.run(main(devnull))
