"""What a cached hit costs against a bare aiohttp handler, and what the access log adds, measured
where the machine's drift cancels out.

    python -m bench.hit_cost [--seconds 24] [--slot 0.3] [--loop asyncio|uvloop]

One server in this process (the demo source) answers one path to wrk while the path switches,
every `slot` seconds, between four states: a bare handler returning the same bytes with no
logging (the ceiling), marsserver's cached hit with the access log off, `on` and `json`. The CPU
time this process spends per request (all threads: the log writer's formatting and writing
included) is compared between the kinds of slot. Paired runs of separate servers
(bench.throughput) see the machine's speed drift by half within seconds; here every state sees
the same drift. Each slot ends by writing out its log lines, so their cost is counted there.

Every state pays for the switch (one coroutine frame) and for aiohttp's call to the access
logger (it returns at once in the states without a log), which a real bare handler or `off`
would not: a few tenths of a microsecond added to both sides of every ratio, which moves the
ratios about 0.01 towards 1. The differences in microseconds are exact: they cancel out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
from typing import TextIO
from unittest import mock

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

import marsserver.http.app
from marsserver import Settings, create_app
from marsserver.http import handlers
from marsserver.http.accesslog import MODES, AccessLog
from marsserver.http.ready_answers import READY_ANSWERS, ready_first

from .common import serve_hit
from .throughput import PATHS, SERVER_CPUS, TARGETS, WRK_CPU

STATES = ("bare", "off", *MODES)


class Switch:
    """Which state the server is in, and how many requests it has answered."""

    def __init__(self, sink: TextIO) -> None:
        self.state = "off"
        self.requests = 0
        self.body, self.content_type = b"", ""
        self.logs = {mode: AccessLog(mode, sink, interval=0.02) for mode in MODES}

    def close(self) -> None:
        for log in self.logs.values():
            log.close()

    def logger_class(self) -> type[AbstractAccessLogger]:
        switch = self

        class Logger(AbstractAccessLogger):
            """Per connection, like the shipped loggers: it hands each request to the
            connection's logger of the state's mode, if any."""

            __slots__ = ("modes",)

            def __init__(self, logger: logging.Logger, log_format: str) -> None:
                super().__init__(logger, log_format)
                self.modes = {mode: log.logger_class(logger, log_format)
                              for mode, log in switch.logs.items()}

            @property
            def enabled(self) -> bool:
                return True

            def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
                if (logger := self.modes.get(switch.state)) is not None:
                    logger.log(request, response, time)
        return Logger


async def measure(path: str, args: argparse.Namespace, sink: TextIO) -> dict[str, float]:
    """Median CPU microseconds per request in each state."""
    switch = Switch(sink)
    route = path.split("?")[0]
    served: handlers.Handler | None = None

    async def switched(request: web.Request) -> web.StreamResponse:
        switch.requests += 1
        if switch.state == "bare" or served is None:
            return web.Response(body=switch.body, content_type=switch.content_type)
        return await served(request)

    routes = tuple((p, switched, name, False) if p == route else (p, h, name, ready)
                   for p, h, name, ready in marsserver.http.app.ROUTES)
    handler = next(h for p, h, _, _ in marsserver.http.app.ROUTES if p == route)
    guard = handlers.json_errors
    unguarded = mock.patch.object(handlers, "json_errors",
                                  lambda h: h if h is switched else guard(h))
    with mock.patch.object(marsserver.http.app, "ROUTES", routes), unguarded:
        app = create_app(Settings(source="demo"))  # the switch, then the route as it serves
    served = ready_first(guard(handler), app[READY_ANSWERS])
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access"),
                           access_log_class=switch.logger_class())
    url, switch.body, switch.content_type = await serve_hit(runner, path)
    wrk = await asyncio.create_subprocess_exec(
        *WRK_CPU, "wrk", "-t1", "-c64", f"-d{args.seconds}s", url,
        stdout=asyncio.subprocess.DEVNULL)
    costs: dict[str, list[float]] = {state: [] for state in STATES}
    await asyncio.sleep(1)  # wrk connects
    for slot in range(int((args.seconds - 2) / args.slot)):
        switch.state = STATES[slot % len(STATES)]
        requests, cpu = switch.requests, time.process_time()
        await asyncio.sleep(args.slot)  # a bench slicing time, not a test synchronising
        if (log := switch.logs.get(switch.state)) is not None:
            log.flush()  # blocks the loop: no request is answered until the counts are read
        if answered := switch.requests - requests:
            costs[switch.state].append((time.process_time() - cpu) / answered * 1e6)
    await wrk.wait()
    await runner.cleanup()
    switch.close()
    return {state: statistics.median(costs[state]) for state in STATES}


async def main(args: argparse.Namespace, sink: TextIO) -> None:
    if SERVER_CPUS:  # this process is the server: off wrk's CPU, like bench.throughput's
        os.sched_setaffinity(0, {int(cpu) for cpu in SERVER_CPUS[-1].split(",")})
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    print(f"cached hits against a bare handler in one server ({args.loop}), states switched every "
          f"{args.slot} s; CPU us per request (all threads), medians over slots")
    print(f"{'path':11} {'bare':>6}   {'off':>13}   {'on':>13}   {'json':>13}   "
          "hit cost (off - bare); log cost (on, json - off)")
    for name, path in PATHS.items():
        us = await measure(path, args, sink)
        cells = "   ".join(f"{us[s]:5.1f} {us['bare'] / us[s]:5.2f}x" + (
            "*" if us["bare"] / us[s] >= TARGETS[s] else " ") for s in ("off", *MODES))
        print(f"{name:11} {us['bare']:6.1f}   {cells}   {us['off'] - us['bare']:4.1f} us; "
              f"{us['on'] - us['off']:4.1f}, {us['json'] - us['off']:4.1f} us", flush=True)
    targets = ", ".join(f"{mode} >= {TARGETS[mode]:.2f}x" for mode in ("off", *MODES))
    print(f"ratio = bare's CPU per request / the state's; * meets its target ({targets})")


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--seconds", type=int, default=24)
    cli.add_argument("--slot", type=float, default=0.3)
    cli.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    arguments = cli.parse_args()
    with open(os.devnull, "w") as devnull:  # real writes, to nowhere
        if arguments.loop == "uvloop":
            import uvloop
            uvloop.run(main(arguments, devnull))
        else:
            asyncio.run(main(arguments, devnull))
