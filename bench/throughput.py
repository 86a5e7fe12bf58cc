"""Cached-hit throughput: marsserver's `/wallpaper` and `/`, and a working set of 5,000
distinct cached wallpaper URLs, against a bare aiohttp handler, with each access log mode.

Every server runs in its own process, all on the same event loop: the bare handler (no
logging: the ceiling), marsserver with `--access-log off`, `on` and `json`, and marsserver with
aiohttp's own access logger (`bench.aiohttp_log`, what `on` did before). Their stderr goes to
files, so every log line is really written, and counted at the end. wrk (Debian's `wrk`)
loads one server at a time from a third process. Each run of a marsserver is paired with a run
of the bare handler right before or after it (alternating): a shared machine's speed drifts
within seconds, so only runs side by side compare fairly. The report is, per server, the
median over rounds of its req/s over the bare handler's in the same pair. Targets: off >=
0.90x, on and json >= 0.85x. The last column is the server's CPU time per request (all its
threads, from /proc). wrk runs on the first CPU, the servers on the others.

The working set is what real traffic looks like (photos x sizes x qualities): wrk cycles
through 5,000 URLs, all cached first, against a bare handler that answers each of them with
the very bytes marsserver sent for it, looked up by request target.

    python -m bench.throughput [--rounds 7] [--seconds 2] [--connections 64] [--loop uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.stub import FEED_PATH, Stub

from .common import start_stub

PATHS = {"/wallpaper": "/wallpaper?photo_number=1&height=600", "/": "/"}
BODIES = {"/wallpaper": "wallpaper.jpg", "/": "list.json"}  # what the bare handler serves
WORKING_SET = "5,000 URLs"
SET_URLS = [f"/wallpaper?photo_number={n % 3}&height={100 + n // 3 % 100}&quality={30 + n // 300}"
            for n in range(5000)]
# wrk asks for each URL of the file named by its first script argument in turn.
CYCLE = """
local paths, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  wrk.headers["Accept"] = "*/*"
end
function request() i = i % #paths + 1 return wrk.format(nil, paths[i]) end
"""
MODES = ("off", "on", "json")
AIOHTTP_LOG = "aiohttp log"
TARGETS = {"off": 0.90, "on": 0.85, "json": 0.85}
# wrk on the first CPU, the servers on the others: a server that moves between CPUs (or shares
# one with wrk) measures the scheduler, not itself.
_CPUS = sorted(os.sched_getaffinity(0))
WRK_CPU = ("taskset", "-c", str(_CPUS[0])) if len(_CPUS) > 1 else ()
SERVER_CPUS = ("taskset", "-c", ",".join(map(str, _CPUS[1:]))) if len(_CPUS) > 1 else ()


@dataclass
class Server:
    name: str
    process: asyncio.subprocess.Process
    url: str
    log: Path


@dataclass
class Load:
    requests_per_second: float
    requests: int
    cpu_seconds: float  # the server's, all its threads: steadier than req/s on a busy machine


async def start(name: str, log: Path, module: str, *args: str) -> Server:
    """Run `python -m module args` with its stderr in `log`, and wait for "listening on URL"."""
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(*SERVER_CPUS, sys.executable, "-m",
                                                       module, *args, stderr=stderr)
    while process.returncode is None:
        if "listening on " in (text := _text(log)):
            return Server(name, process, text.split("listening on ")[1].split(",")[0], log)
        await asyncio.sleep(0.05)  # a bench polling a file, not a test synchronising
    raise SystemExit(f"{module} did not start:\n{_text(log)}")


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


async def start_servers(stub: Stub, loop: str, scratch: Path) -> list[Server]:
    """The bare handlers first (one URL, the working set), then marsserver in every mode, each
    with a primed cache."""
    flags = ("--port", "0", "--source", "msl", "--api-url", stub.base + FEED_PATH,
             "--image-hosts", f"127.0.0.1:{stub.port}", "--loop", loop)
    servers = [await start(mode, scratch / mode, "marsserver", *flags, "--access-log", mode)
               for mode in MODES]
    servers.append(await start(AIOHTTP_LOG, scratch / "aiohttp", "bench.aiohttp_log", *flags))
    async with aiohttp.ClientSession() as session:
        for server in servers:
            for name, path in PATHS.items():
                async with session.get(server.url + path) as response:
                    (scratch / BODIES[name]).write_bytes(await response.read())
        bodies = [await _prime(session, server, SET_URLS) for server in servers[:len(MODES)]]
    bare = await start("bare", scratch / "bare", "bench.bare",
                       *(str(scratch / body) for body in BODIES.values()), "--loop", loop)
    (working_set := scratch / "set").mkdir()
    (working_set / "urls.txt").write_text("\n".join(SET_URLS) + "\n")
    for n, body in enumerate(bodies[0]):
        (working_set / f"{n}.jpg").write_bytes(body)
    bare_set = await start("bare set", scratch / "bare-set", "bench.bare",
                           *(str(scratch / body) for body in BODIES.values()), "--loop", loop,
                           "--set", str(working_set))
    (scratch / "cycle.lua").write_text(CYCLE)
    return [bare, bare_set, *servers]


async def _prime(session: aiohttp.ClientSession, server: Server, paths: list[str],
                 ) -> list[bytes]:
    """Ask for every path (eight at a time, as resize threads allow) until each is a cached
    hit; their bodies."""
    bodies: list[bytes] = []
    for start_at in range(0, len(paths), 8):
        async def one(path: str) -> bytes:
            async with session.get(server.url + path) as response:
                if response.status != 200:
                    raise SystemExit(f"priming {server.name} with {path}: {response.status}")
                return await response.read()
        bodies += await asyncio.gather(*map(one, paths[start_at:start_at + 8]))
    print(f"primed {server.name} with {len(paths):,} URLs", file=sys.stderr, flush=True)
    return bodies


async def wrk(server: Server, path: str, seconds: int, connections: int,
              scratch: Path | None = None) -> Load:
    """One run of wrk against `path`, or against the working set when it is WORKING_SET (its
    files are in `scratch`)."""
    url = server.url + (path if path != WORKING_SET else "/")
    cycle: tuple[str, ...] = ()
    if path == WORKING_SET and scratch is not None:
        cycle = ("-s", str(scratch / "cycle.lua"), url, "--", str(scratch / "set" / "urls.txt"))
    cpu = cpu_seconds(server.process.pid)
    process = await asyncio.create_subprocess_exec(
        *WRK_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *(cycle or (url,)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await process.communicate())[0].decode()
    cpu = cpu_seconds(server.process.pid) - cpu
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rate or not total or "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk failed against {url}:\n{output}")
    return Load(float(rate.group(1)), int(total.group(1)), cpu)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process `pid` has used so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(servers: list[Server], args: argparse.Namespace, scratch: Path,
                  ) -> tuple[dict[str, dict[str, list[Load]]], Counter[str]]:
    """Per path, per server: one Load per round, each run right next to a run of the bare
    handler (first or second, alternating), whose Load is kept beside it: this machine's
    speed drifts within seconds, so only runs side by side compare fairly."""
    loads: dict[str, dict[str, list[Load]]] = defaultdict(lambda: defaultdict(list))
    served: Counter[str] = Counter()
    (bare, bare_set), others = servers[:2], servers[2:]
    paths = {**PATHS, WORKING_SET: WORKING_SET}
    for server in others:
        for path in paths.values():
            if path != WORKING_SET or server.name in MODES:
                served[server.name] += (await wrk(server, path, 1, args.connections,
                                                  scratch)).requests
    for round_ in range(args.rounds):
        for name, path in paths.items():
            for server in others:
                if path == WORKING_SET and server.name not in MODES:
                    continue
                ceiling = bare_set if path == WORKING_SET else bare
                pair = (ceiling, server) if round_ % 2 == 0 else (server, ceiling)
                for one in pair:
                    load = await wrk(one, path, args.seconds, args.connections, scratch)
                    loads[name][one.name if one is server else f"bare/{server.name}"].append(load)
                    served[one.name] += load.requests
    return loads, served


def _line(loop: str, path: str, name: str, runs: list[Load], ceilings: list[Load],
          target: str) -> None:
    ratio = statistics.median(load.requests_per_second / ceiling.requests_per_second
                              for load, ceiling in zip(runs, ceilings, strict=True))
    rate = statistics.median(load.requests_per_second for load in runs)
    cpu = statistics.median(load.cpu_seconds / load.requests * 1e6 for load in runs)
    print(f"{loop:8} {path:11} {name:12} {rate:>9.0f}/s {ratio:>6.2f}x {target:>8} {cpu:>8.1f}",
          flush=True)


def logged_requests(log: Path) -> int:
    """Request lines in a server's stderr: each one holds "GET" exactly once (CLF and JSON)."""
    with log.open("rb") as lines:
        return sum(b"GET" in line for line in lines)


def report(loop: str, loads: dict[str, dict[str, list[Load]]], served: Counter[str],
           servers: list[Server]) -> None:
    for path, by_server in loads.items():
        for server in servers[2:]:
            if server.name not in by_server:
                continue
            runs, ceilings = by_server[server.name], by_server[f"bare/{server.name}"]
            if server is servers[2]:
                _line(loop, path, "bare", ceilings, ceilings, "")
            target = f">= {TARGETS[server.name]:.2f}" if server.name in TARGETS else ""
            _line(loop, path, server.name, runs, ceilings, target)
    for server in servers[2:]:
        print(f"{loop:8} {server.name:12} {logged_requests(server.log):>10,} request lines "
              f"written for {served[server.name]:,} requests counted by wrk (it does not count "
              "the priming request and those in flight when a run ends)")


async def compare(loop: str, args: argparse.Namespace) -> None:
    stub, runner = await start_stub()
    with tempfile.TemporaryDirectory() as scratch:
        servers = await start_servers(stub, loop, Path(scratch))
        try:
            loads, served = await measure(servers, args, Path(scratch))
        finally:
            for server in servers:  # SIGTERM: marsserver writes out its buffered lines
                server.process.terminate()
                await server.process.wait()
            await runner.cleanup()
        report(loop, loads, served, servers)


async def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--rounds", type=int, default=7)
    cli.add_argument("--seconds", type=int, default=2)
    cli.add_argument("--connections", type=int, default=64)
    cli.add_argument("--loop", choices=("asyncio", "uvloop"), action="append",
                     help="event loop (repeatable; default: asyncio, and uvloop if installed)")
    args = cli.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    print(f"cached hits, wrk -t1 -c{args.connections}, {args.rounds} rounds x {args.seconds}s; "
          "ratio: median over rounds of req/s / the bare handler's run beside it")
    print(f"{'loop':8} {'path':11} {'server':12} {'req/s':>11} {'ratio':>7} {'target':>8} "
          f"{'CPU us/request':>14}")
    for loop in args.loop or _available_loops():
        await compare(loop, args)


def _available_loops() -> list[str]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        print("uvloop not installed (pip install -e '.[bench]'): asyncio loop only")
        return ["asyncio"]
    return ["asyncio", "uvloop"]


if __name__ == "__main__":
    asyncio.run(main())
