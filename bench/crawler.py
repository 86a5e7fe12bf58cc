"""Crawler: what a client walking the sols costs NASA, with and without the upstream budget.

Runs marsserver as users do (its own process) in front of a stub NASA that answers every sol,
makes one wallpaper, then lets a crawler walk sols 0, 1, 2, ... (lap after lap, a refused sol
asked again on the next) over 8 connections for `--seconds`, while a user asks for the cached
wallpaper every 50 ms. Prints, for each `--upstream-budget`, the calls NASA saw (in all and
per minute), the crawler's answers by status, and the user's.

    python -m bench.crawler [--seconds 30] [--budgets 0,300]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections import Counter

import aiohttp

from .common import start_service, start_stub, stop

WALLPAPER = "/wallpaper?photo_number=0&height=360"
NEWEST = 5000
CONNECTIONS = 8


async def crawl(session: aiohttp.ClientSession, url: str, sols: itertools.cycle[int],
                deadline: float, statuses: Counter[int]) -> None:
    while time.monotonic() < deadline:
        async with session.get(f"{url}/api/photos?sol={next(sols)}") as response:
            await response.read()
            statuses[response.status] += 1


async def use(session: aiohttp.ClientSession, url: str, deadline: float,
              statuses: Counter[int]) -> None:
    while time.monotonic() < deadline:
        async with session.get(url + WALLPAPER) as response:
            await response.read()
            statuses[response.status] += 1
        await asyncio.sleep(0.05)  # a person's pace, not synchronization


async def run(budget: int, seconds: float) -> None:
    stub, runner = await start_stub()
    stub.each_sol(NEWEST)
    service = await start_service(stub, "--upstream-budget", str(budget), "--access-log", "off")
    crawler: Counter[int] = Counter()
    user: Counter[int] = Counter()
    try:
        connector = aiohttp.TCPConnector(limit=CONNECTIONS + 1)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(service.url + WALLPAPER) as response:
                assert response.status == 200, response.status
            before = sum(stub.calls.values())
            deadline = time.monotonic() + seconds
            sols = itertools.cycle(range(NEWEST))
            await asyncio.gather(use(session, service.url, deadline, user), *(
                crawl(session, service.url, sols, deadline, crawler)
                for _ in range(CONNECTIONS)))
    finally:
        await stop(service, runner)
    calls = sum(stub.calls.values()) - before
    print(f"{budget or 'unlimited':>9} {calls:>10} {calls / seconds * 60:>10.0f} "
          f"{crawler[200]:>8} {crawler[503]:>8} {sum(crawler.values()):>9}   user {dict(user)}",
          flush=True)


async def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--seconds", type=float, default=30.0)
    cli.add_argument("--budgets", default="0,300",
                     help="comma-separated --upstream-budget values (0: unlimited)")
    args = cli.parse_args()
    print(f"crawler: {CONNECTIONS} connections walking sols 0..{NEWEST - 1} for "
          f"{args.seconds:.0f} s; a user asks for a cached wallpaper every 50 ms")
    print(f"{'budget':>9} {'NASA calls':>10} {'per min':>10} {'sols 200':>8} {'503':>8} "
          f"{'requests':>9}")
    for budget in (int(text) for text in args.budgets.split(",")):
        await run(budget, args.seconds)


if __name__ == "__main__":
    asyncio.run(main())
