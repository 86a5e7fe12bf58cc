"""Instructions per cached hit, counted by callgrind: bench.hit_cost's question, answered the
same way on every run.

    python -m bench.instructions [--requests 2000]   (needs valgrind: apt-get install valgrind)

For each path and each state (a bare aiohttp handler returning the same bytes with no logging,
marsserver's cached hit with the access log off, `on` and `json`), one server process runs under
`valgrind --tool=callgrind`. Once its hit is warm, a client process (not under valgrind) sends
`requests` requests over 8 keep-alive connections, then twice as many, and the server has
callgrind count each stretch apart (zeroing the counts before the first, dumping them after
each, its log lines written within it). The difference between the two is exactly `requests`
requests: what a stretch costs besides them cancels out. The count covers every thread of the
server (the log's writer included), not the kernel.

Instructions are not time: cache misses and system calls weigh nothing here. But the count
hardly moves between runs, whatever else the machine does, where CPU time on a shared machine
moves by a third: this is how to see what a change of a thousand instructions is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from marsserver import Settings, create_app
from marsserver.http import ready_answers
from marsserver.http.accesslog import AccessLog
from marsserver.http.handlers import PIPELINE

from .common import serve_hit
from .throughput import PATHS, TARGETS

STATES = ("bare", "off", "on", "json")
CONNECTIONS = 8  # --connections: 1 makes a count steadier (no batching of requests per wakeup)
STRETCHES = ("short", "long")  # `requests`, then twice as many: the difference is `requests`


async def serve(state: str, path: str, requests: int, connections: int) -> None:
    """Run under callgrind: serve `path` in `state`, counting two stretches of requests.

    Each stretch ends with the log's lines written and a dump of the counts (which zeroes
    them). What a stretch costs besides its requests (telling the client to go, starting
    callgrind_control) is the same in both, so the difference between them is `requests`
    requests and nothing else.

    Work done once a second or once a batch is not counted: valgrind runs the server some 40
    times slower, so each request would carry 40 times its share (a ready answer made again
    each second, a log batch of a line or two), and that share would move with the machine's
    speed. The ready answer is made to last (`_still`), and the log writes a batch only when a
    stretch ends: in production a batch holds some 300 lines (20 ms at 15k requests/s), so
    what it costs besides its lines is a few dozen instructions per line."""
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    hit = create_app(Settings(source="demo"))
    log = None if state in ("bare", "off") else AccessLog(
        state, interval=3600, batch_lines=2**30, max_bytes=2**40)  # one batch a stretch
    if log is None:
        runner = web.AppRunner(hit, access_log=None)
    else:
        log.attach(hit)
        runner = web.AppRunner(hit, access_log=logging.getLogger("aiohttp.access"),
                               access_log_class=log.logger_class)
    url, body, content_type = await serve_hit(runner, path)
    _still()
    gc.freeze()  # a full collection over start-up's objects, in one stretch and not the other
    if state == "bare":
        await runner.cleanup()
        runner = await _bare(path.split("?")[0], body, content_type)
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.instructions", "--client", url,
        "--connections", str(connections),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert client.stdin is not None
    assert client.stdout is not None
    await _expect(client.stdout, b"ready\n")  # every connection open and warm
    if log is not None:
        log.flush()  # the warm-up's lines, before counting starts
    registry = hit[PIPELINE].metrics.registry
    await _callgrind("--zero")
    for factor, stretch in enumerate(STRETCHES, start=1):
        served = _ready_answers(registry)
        client.stdin.write(f"{requests * factor}\n".encode())
        await client.stdin.drain()
        await _expect(client.stdout, b"done\n")
        if log is not None:
            log.flush()  # the stretch's lines are written, and counted, within it
        await _callgrind(f"--dump={stretch}")
        if state != "bare" and _ready_answers(registry) - served != requests * factor:
            raise SystemExit(f"not every request of the {stretch} stretch had a ready answer")
    client.stdin.close()
    if await client.wait() != 0:
        raise SystemExit("the client failed")
    await runner.cleanup()


def _still() -> None:
    """Stop the clock of the ready answers: the next answer made stays ready all along.
    (A C callable returning the moment, as cheap to call as `time.time`.)"""
    ready_answers.time = SimpleNamespace(time=itertools.repeat(time.time()).__next__)  # type: ignore


def _ready_answers(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("marsserver_ready_answers_total") or 0.0


async def _expect(stream: asyncio.StreamReader, line: bytes) -> None:
    if (got := await stream.readline()) != line:
        raise SystemExit(f"the client said {got!r}, not {line!r}")


async def _bare(route: str, body: bytes, content_type: str) -> web.AppRunner:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get(route, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def _callgrind(command: str) -> None:
    """callgrind_control acts on this process while it waits (valgrind answers it)."""
    control = await asyncio.create_subprocess_exec(
        "callgrind_control", command, str(os.getpid()), stdout=subprocess.DEVNULL)
    if await control.wait() != 0:
        raise SystemExit(f"callgrind_control {command} failed: is this running under callgrind?")


async def client(url: str, connections: int) -> None:
    """Open and warm every connection and say so; then, for each count read from stdin, send
    that many requests over them and say done."""
    connector = aiohttp.TCPConnector(limit=connections)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=connector) as session:
        async def get(count: int, warming: bool = False) -> None:
            for _ in range(count):
                async with session.get(url, headers={"User-Agent": "bench"}) as response:
                    await response.read()
                    # Counted requests are all cached hits (the bare server says nothing).
                    cache = "HIT" if warming else response.headers.get("X-Cache", "HIT")
                    if response.status != 200 or cache != "HIT":
                        raise SystemExit(f"{url}: {response.status}, X-Cache {cache}")

        await asyncio.gather(*(get(1, warming=True) for _ in range(connections)))
        print("ready", flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            await asyncio.gather(*(get(int(line) // connections) for _ in range(connections)))
            print("done", flush=True)


def count(state: str, path: str, requests: int, connections: int = CONNECTIONS) -> float:
    """Instructions per request of one server in `state` answering `path`."""
    requests -= requests % connections
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.%p",
             sys.executable, "-m", "bench.instructions", "--serve", state, path,
             "--connections", str(connections), "--requests", str(requests)],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:
            raise SystemExit(f"{state} {path} failed under valgrind:\n{run.stderr[-3000:]}")
        totals = {}
        for dump in Path(out).iterdir():
            text = dump.read_text(errors="replace")
            trigger = re.search(r"^desc: Trigger: dump (\w+)$", text, re.MULTILINE)
            summary = re.search(r"^summary: (\d+)$", text, re.MULTILINE)
            if trigger and summary:
                totals[trigger.group(1)] = int(summary.group(1))
    if set(totals) != set(STRETCHES):
        raise SystemExit(f"callgrind dumped {sorted(totals)}, not {list(STRETCHES)}")
    return (totals["long"] - totals["short"]) / requests


def main(requests: int, connections: int) -> None:
    print(f"cached hits against a bare handler: instructions per request (callgrind, "
          f"{requests} requests, {connections} connections, asyncio)")
    print(f"{'path':11} {'bare':>7}   {'off':>14}   {'on':>14}   {'json':>14}   "
          "hit (off - bare); log (on, json - off)")
    for name, path in PATHS.items():
        k = {state: count(state, path, requests, connections) / 1000 for state in STATES}
        cells = "   ".join(f"{k[s]:6.1f}k {k['bare'] / k[s]:5.3f}x" for s in STATES[1:])
        print(f"{name:11} {k['bare']:6.1f}k   {cells}   {k['off'] - k['bare']:4.1f}k; "
              f"{k['on'] - k['off']:4.1f}k, {k['json'] - k['off']:4.1f}k", flush=True)
    targets = ", ".join(f"{mode} >= {TARGETS[mode]:.2f}x" for mode in STATES[1:])
    print(f"ratio = bare's instructions per request / the state's (targets, in time: {targets})")


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--requests", type=int, default=2000)
    cli.add_argument("--serve", nargs=2, metavar=("STATE", "PATH"))
    cli.add_argument("--client", metavar="URL")
    cli.add_argument("--connections", type=int, default=CONNECTIONS)
    args = cli.parse_args()
    if args.serve:
        state, path = args.serve
        asyncio.run(serve(state, path, args.requests, args.connections))
    elif args.client:
        asyncio.run(client(args.client, args.connections))
    else:
        main(args.requests, args.connections)
