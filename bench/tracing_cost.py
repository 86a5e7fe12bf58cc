"""What tracing costs when it is on: per cached hit, and per cold wallpaper.

    python -m bench.tracing_cost [--seconds 16] [--slot 0.3] [--cold 40]   (the otel extra)

Spans are batched and exported over OTLP (HTTP/protobuf, as `OTEL_TRACES_EXPORTER=otlp`
does) to a collector stand-in in another process that reads each request and answers 200.

Hits: one server in this process (the demo source) answers one cached path to wrk while the
path switches, every `slot` seconds, between the app as it runs with tracing off (the ready
answer, no middleware) and the same with tracing's middleware in front. The CPU time this
process spends per request (the exporter's thread included) is compared between the kinds of
slot, so the machine's drift cancels out as in bench.hit_cost.

Cold wallpapers: two apps in this process, one tracing and one not, take turns at `cold`
rounds of ten wallpapers of sizes nobody asked for before (list and source cached, so each is
one resize; the tracing app's spans exported within its turn): the median CPU time per
wallpaper of each, and the median of the rounds' differences.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from itertools import islice

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from marsserver import Settings, create_app
from marsserver.http.app import TRACING

from .common import serve_hit
from .throughput import PATHS, SERVER_CPUS, WRK_CPU

STATES = ("off", "on")
ROUND = 10  # cold wallpapers each way in a round
COLLECTOR = """
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


async def collector() -> tuple[asyncio.subprocess.Process, str]:
    """A stand-in for an OTLP collector in its own process, and its traces endpoint."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", COLLECTOR,
                                                   stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    port = int(await process.stdout.readline())
    return process, f"http://127.0.0.1:{port}/v1/traces"


def provider(endpoint: str) -> TracerProvider:
    """Spans batched and exported over OTLP to `endpoint`."""
    traced = TracerProvider()
    traced.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return traced


async def hits(path: str, args: argparse.Namespace, traced_by: TracerProvider,
               ) -> dict[str, float]:
    """Median CPU microseconds per cached hit with tracing off and on."""
    app = create_app(Settings(source="demo"), tracer_provider=traced_by)
    traced = app.middlewares[0]
    app.middlewares.clear()  # the switch decides, per slot
    state = {"on": False, "requests": 0}

    @web.middleware
    async def switch(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        state["requests"] += 1
        return await (traced(request, handler) if state["on"] else handler(request))

    app.middlewares.append(switch)
    runner = web.AppRunner(app, access_log=None)
    url, _, _ = await serve_hit(runner, path)
    wrk = await asyncio.create_subprocess_exec(
        *WRK_CPU, "wrk", "-t1", "-c64", f"-d{args.seconds}s", url,
        stdout=asyncio.subprocess.DEVNULL)
    costs: dict[str, list[float]] = {name: [] for name in STATES}
    await asyncio.sleep(1)  # wrk connects
    for slot in range(int((args.seconds - 2) / args.slot)):
        name = STATES[slot % 2]
        state["on"] = name == "on"
        requests, cpu = state["requests"], time.process_time()
        await asyncio.sleep(args.slot)  # a bench slicing time, not a test synchronising
        if answered := state["requests"] - requests:
            costs[name].append((time.process_time() - cpu) / answered * 1e6)
    await wrk.wait()
    await runner.cleanup()
    return {name: statistics.median(costs[name]) for name in STATES}


async def cold(rounds: int, traced_by: TracerProvider) -> dict[str, float]:
    """Median CPU milliseconds per cold wallpaper, without tracing and with it (its spans
    exported before the round ends), over `rounds` rounds of `ROUND` wallpapers each way; and
    the median of the rounds' differences, where the machine's drift cancels out."""
    clients = {}
    for name in STATES:
        app = create_app(Settings(source="demo"),
                         tracer_provider=traced_by if name == "on" else None)
        if name == "off" and TRACING in app:
            raise SystemExit("tracing is on from the environment: unset the OTEL_* variables")
        clients[name] = TestClient(TestServer(app))
        await clients[name].start_server()
        await clients[name].get("/wallpaper?height=100")  # the list and the source, cached
    traced_by.force_flush()
    costs: dict[str, list[float]] = {name: [] for name in STATES}
    heights = iter(range(200, 200 + rounds * ROUND * len(STATES)))  # each asked once
    for turn in range(rounds):
        for name in STATES[::-1] if turn % 2 else STATES:  # each goes first in half the rounds
            cpu = time.process_time()
            for height in islice(heights, ROUND):
                await (await clients[name].get(f"/wallpaper?height={height}")).read()
            if name == "on":
                traced_by.force_flush()
            costs[name].append((time.process_time() - cpu) / ROUND * 1e3)
    for client in clients.values():
        await client.close()
    return {**{name: statistics.median(costs[name]) for name in STATES},
            "difference": statistics.median(on - off for off, on in zip(*costs.values(),
                                                                        strict=True))}


async def main(args: argparse.Namespace) -> None:
    if SERVER_CPUS:  # this process is the server: off wrk's CPU, like bench.throughput's
        os.sched_setaffinity(0, {int(cpu) for cpu in SERVER_CPUS[-1].split(",")})
    sink, endpoint = await collector()
    traced_by = provider(endpoint)
    print("cached hits, tracing off and on (OTLP to a local collector), switched every "
          f"{args.slot} s; CPU us per request (all threads), medians over slots")
    for name, path in PATHS.items():
        us = await hits(path, args, traced_by)
        print(f"{name:11} off {us['off']:6.1f}   on {us['on']:6.1f}   "
              f"tracing costs {us['on'] - us['off']:5.1f} us a hit", flush=True)
    ms = await cold(args.cold, traced_by)
    traced_by.shutdown()
    sink.terminate()
    await sink.wait()
    print(f"cold wallpapers ({args.cold} rounds of {ROUND} sizes, one resize each): "
          f"off {ms['off']:.2f} ms   "
          f"on {ms['on']:.2f} ms   tracing costs {ms['difference'] * 1e3:.0f} us a "
          "wallpaper (CPU, medians; the cost: of the rounds' differences)")


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--seconds", type=int, default=16)
    cli.add_argument("--slot", type=float, default=0.3)
    cli.add_argument("--cold", type=int, default=40)
    asyncio.run(main(cli.parse_args()))
