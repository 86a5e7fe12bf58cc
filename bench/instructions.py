"""Instructions per cached hit, counted by callgrind: bench.hit_cost's question, answered the
same way on every run.

    python -m bench.instructions [--requests 2000]   (needs valgrind: apt-get install valgrind)

For each path and each state (a bare aiohttp handler returning the same bytes with no logging,
marsserver's cached hit with the access log off, `on` and `json`), one server process runs under
`valgrind --tool=callgrind`. Once its hit is warm, a client process (not under valgrind) sends
`requests` requests over 8 keep-alive connections, and callgrind counts only that stretch: the
server zeroes the counts before it tells the client to go and dumps them when the client is
done. The count covers every thread of the server (the log's writer included), not the kernel.

Instructions are not time: cache misses and system calls weigh nothing here. But the count moves
by well under 1% between runs whatever else the machine does, where CPU time on a shared machine
moves by a third: this is how to see what a change of a few hundred instructions is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

from marsserver import Settings, create_app
from marsserver.accesslog import run_app_options

from .common import serve_hit
from .throughput import PATHS, TARGETS

STATES = ("bare", "off", "on", "json")
CONNECTIONS = 8
DUMP = "measured"


async def serve(state: str, path: str, requests: int) -> None:
    """Run under callgrind: serve `path` in `state`, counting only the client's requests."""
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    hit = create_app(Settings(source="demo"))
    runner = web.AppRunner(hit, **run_app_options(hit, "off" if state == "bare" else state))
    url, body, content_type = await serve_hit(runner, path)
    if state == "bare":
        await runner.cleanup()
        runner = await _bare(path.split("?")[0], body, content_type)
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.instructions", "--client", url, "--requests", str(requests),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert client.stdin is not None
    assert client.stdout is not None
    await client.stdout.readline()  # connected and warm
    await _callgrind("--zero")
    client.stdin.write(b"go\n")
    await client.stdin.drain()
    await client.stdout.readline()  # done
    await _callgrind(f"--dump={DUMP}")
    if await client.wait() != 0:
        raise SystemExit("the client failed")
    await runner.cleanup()


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


async def client(url: str, requests: int) -> None:
    """Connect and warm every connection, say so, wait for `go`, send, say done."""
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def get(count: int) -> None:
            for _ in range(count):
                async with session.get(url, headers={"User-Agent": "bench"}) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{url}: {response.status}")

        await asyncio.gather(*(get(1) for _ in range(CONNECTIONS)))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.gather(*(get(requests // CONNECTIONS) for _ in range(CONNECTIONS)))
        print("done", flush=True)


def count(state: str, path: str, requests: int) -> float:
    """Instructions per request of one server in `state` answering `path`."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.%p",
             sys.executable, "-m", "bench.instructions", "--serve", state, path,
             "--requests", str(requests)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for dump in Path(out).iterdir():
            text = dump.read_text(errors="replace")
            if f"Trigger: dump {DUMP}" in text:
                match = re.search(r"^summary: (\d+)$", text, re.MULTILINE)
                assert match is not None, f"no summary in {dump}"
                return int(match.group(1)) / (requests // CONNECTIONS * CONNECTIONS)
    raise SystemExit("callgrind wrote no dump of the measured stretch")


def main(requests: int) -> None:
    print(f"cached hits against a bare handler: instructions per request (callgrind, "
          f"{requests} requests, 8 connections, asyncio)")
    print(f"{'path':11} {'bare':>7}   {'off':>14}   {'on':>14}   {'json':>14}   "
          "hit (off - bare); log (on, json - off)")
    for name, path in PATHS.items():
        k = {state: count(state, path, requests) / 1000 for state in STATES}
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
    args = cli.parse_args()
    if args.serve:
        asyncio.run(serve(*args.serve, args.requests))
    elif args.client:
        asyncio.run(client(args.client, args.requests))
    else:
        main(args.requests)
