"""Tracing (docs/tracing.md): a server span per request, one span per piece of work done, and
links from every request that waited on work another started to that work's span, in one
process and across instances; failures on every waiter's span; off unless asked for.

Spans are read from the SDK's in-memory exporter, each app with a provider of its own (one
per instance); the real command's console output is parsed once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import TCPConnector
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import marsserver
from marsserver import Settings, create_app, tracing
from marsserver.errors import BadUpstream
from marsserver.http.app import TRACING
from marsserver.sources import Source

from .helpers import Client, Gated, Marsserver, pipeline_of, until
from .stub import Stub

BURST = 20
Traced = tuple[Client, InMemorySpanExporter]


@pytest.fixture
def traced(aiohttp_client: Any) -> Callable[..., Any]:
    """An instance of the service tracing into an in-memory exporter of its own."""
    async def make(settings: Settings, source: Source | None = None) -> Traced:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        app = create_app(settings, source=source, tracer_provider=provider)
        return await aiohttp_client(app, connector=TCPConnector(limit=0)), exporter
    return make


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]


def work(exporter: InMemorySpanExporter, stage: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans()
            if (span.attributes or {}).get(tracing.STAGE) == stage
            and span.name != tracing.LEASE_WAIT]


def linked_to(spans: list[ReadableSpan], target: ReadableSpan) -> list[ReadableSpan]:
    """The spans among `spans` with a link to `target`."""
    wanted = (target.context.trace_id, target.context.span_id)
    return [span for span in spans
            if wanted in {(link.context.trace_id, link.context.span_id) for link in span.links}]


def wallpaper_waiters(*clients: Client) -> int:
    return sum(n for client in clients for key, n in pipeline_of(client).in_flight().items()
               if key.startswith("wallpaper:"))


async def test_a_cold_burst_is_one_source_and_one_wallpaper_span_every_request_links_to(
        stub: Stub, traced):
    client, exporter = await traced(stub.settings())
    feed, image = stub.hold("feed"), stub.hold(stub.feed_images[0])
    requests = [asyncio.create_task(client.get("/wallpaper?photo_number=0&height=300"))
                for _ in range(BURST)]
    await until(lambda: sum(pipeline_of(client).in_flight().values()) == BURST)
    feed.set()
    await until(lambda: wallpaper_waiters(client) == BURST)
    image.set()
    responses = await asyncio.gather(*requests)
    assert [r.status for r in responses] == [200] * BURST

    servers = server_spans(exporter)
    assert len(servers) == BURST
    assert {(s.name, s.attributes["http.route"], s.attributes["http.request.method"],
             s.attributes["http.response.status_code"]) for s in servers} == {
        ("GET /wallpaper", "/wallpaper", "GET", 200)}
    assert sorted(s.attributes[tracing.SERVED] for s in servers) == (
        ["COALESCED"] * (BURST - 1) + ["MISS"])
    (wallpaper,), (source,), (listing,) = (work(exporter, stage)
                                           for stage in ("wallpaper", "source", "list"))
    assert source.parent.span_id == wallpaper.context.span_id  # downloaded for the resize
    followers = linked_to(servers, wallpaper)
    assert len(followers) == BURST - 1
    leader, = (s for s in servers if s not in followers)
    assert wallpaper.parent.span_id == leader.context.span_id
    assert leader.attributes[tracing.SERVED] == "MISS"
    assert len(linked_to(servers, listing)) >= BURST - 1
    calls = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert sorted((s.parent.span_id, s.attributes["server.address"],
                   s.attributes["http.response.status_code"]) for s in calls) == sorted(
        [(listing.context.span_id, "127.0.0.1", 200), (source.context.span_id, "127.0.0.1", 200)])


async def test_a_cached_hit_is_a_server_span_with_no_work(stub: Stub, traced):
    client, exporter = await traced(stub.settings())
    assert (await client.get("/wallpaper?height=200")).status == 200
    exporter.clear()
    hit = await client.get("/wallpaper?height=200")
    assert hit.headers["X-Cache"] == "HIT"
    span, = exporter.get_finished_spans()
    assert (span.kind, span.attributes[tracing.SERVED]) == (SpanKind.SERVER, "HIT")


async def test_a_failure_marks_every_waiters_span(stub: Stub, traced):
    client, exporter = await traced(stub.settings(error_ttl=0, retries=0))
    await pipeline_of(client).today()
    image = stub.hold(stub.feed_images[0])
    stub.fail("image", 500)
    requests = [asyncio.create_task(client.get("/wallpaper")) for _ in range(BURST)]
    await until(lambda: wallpaper_waiters(client) == BURST)
    image.set()
    assert [r.status for r in await asyncio.gather(*requests)] == [502] * BURST

    servers = [s for s in server_spans(exporter) if s.attributes["http.route"] == "/wallpaper"]
    assert len(servers) == BURST
    assert {(s.status.status_code, s.attributes["error.type"]) for s in servers} == {
        (StatusCode.ERROR, "bad_upstream")}
    assert all("HTTP 500" in (s.status.description or "") for s in servers)
    (wallpaper,), (source,) = work(exporter, "wallpaper"), work(exporter, "source")
    assert wallpaper.status.status_code is source.status.status_code is StatusCode.ERROR
    assert [event.name for event in source.events] == ["exception"]
    assert len(linked_to(servers, wallpaper)) == BURST - 1
    call, = (s for s in exporter.get_finished_spans()
             if s.kind is SpanKind.CLIENT and s.parent.span_id == source.context.span_id)
    assert (call.status.status_code, call.attributes["http.response.status_code"]) == (
        StatusCode.ERROR, 500)


async def test_a_reload_after_a_hang_up_links_to_the_work_still_running(traced):
    """The first request left, its work went on: the reload waits on that work, and says so."""
    source = Gated()
    client, exporter = await traced(Settings(source="demo"), source)
    await pipeline_of(client).today()
    gate = source.hold("image")
    first = asyncio.create_task(client.get("/wallpaper?height=150"))
    await until(lambda: source.calls["image"] == 1)
    first.cancel()  # the client hung up
    await asyncio.gather(first, return_exceptions=True)
    reload = asyncio.create_task(client.get("/wallpaper?height=150"))
    await until(lambda: wallpaper_waiters(client) == 1)
    gate.set()
    assert (await reload).status == 200
    wallpaper, = work(exporter, "wallpaper")
    server, = (s for s in server_spans(exporter)
               if s.attributes.get(tracing.SERVED) in ("MISS", "COALESCED"))
    assert linked_to([server], wallpaper) == [server]
    assert wallpaper.parent.span_id != server.context.span_id  # the first request's work


async def test_a_background_refresh_is_a_trace_of_its_own(traced):
    """No request waits for it: the one that set it off (here, by asking for the list, which
    set a timer) was answered long before."""
    source = Gated()
    client, exporter = await traced(Settings(source="demo", info_ttl=0.2), source)
    assert (await client.get("/api/photos")).status == 200
    await until(lambda: source.calls["list"] >= 2 and not pipeline_of(client).background)
    fetched, *refreshes = work(exporter, "list")
    request, = server_spans(exporter)
    assert fetched.parent.span_id == request.context.span_id
    assert refreshes
    assert {(refresh.parent, refresh.context.trace_id == request.context.trace_id)
            for refresh in refreshes} == {(None, False)}


@pytest.mark.parametrize("fails", [False, True], ids=["made", "failed"])
async def test_the_follower_instance_links_to_the_leader_instances_work(traced, redis_url,
                                                                        fails):
    source = Gated()
    settings = Settings(source="demo", cache=redis_url, error_ttl=0, retries=0)
    instances = [await traced(settings, source) for _ in range(2)]
    clients = [client for client, _ in instances]
    for client in clients:
        assert (await client.get("/api/photos")).status == 200
    gate = source.hold("image")
    if fails:
        source.fail["image"] = BadUpstream("NASA 500")
    requests = [asyncio.create_task(clients[n % 2].get("/wallpaper?height=120"))
                for n in range(10)]
    await until(lambda: source.calls["image"] == 1 and wallpaper_waiters(*clients) == 10)
    gate.set()
    statuses = [r.status for r in await asyncio.gather(*requests)]
    assert statuses == [502 if fails else 200] * 10

    made = [(work(exporter, "wallpaper"), exporter) for _, exporter in instances]
    (wallpaper,), leader = next((spans, exporter) for spans, exporter in made if spans)
    follower, = (exporter for _, exporter in instances if exporter is not leader)
    assert work(follower, "wallpaper") == work(follower, "source") == []
    servers = [s for s in server_spans(follower) if s.attributes["http.route"] == "/wallpaper"]
    assert len(servers) == 5
    assert linked_to(servers, wallpaper) == servers  # every request there, first one too
    waited, = (s for s in follower.get_finished_spans() if s.name == tracing.LEASE_WAIT)
    assert linked_to([waited], wallpaper) == [waited]
    if fails:
        assert {s.status.status_code for s in [*servers, waited]} == {StatusCode.ERROR}
    # The error raised holds the requests' frames in its traceback, and aiohttp's cache of
    # middleware chains may hold these apps (so the source) past the test.
    source.fail.clear()
    await asyncio.gather(*(client.close() for client in clients))


def test_off_unless_the_environment_asks_for_it():
    assert tracing.from_environment({}) == (
        None, "tracing off: OTEL_TRACES_EXPORTER is none or not set")
    assert tracing.from_environment({"OTEL_SERVICE_NAME": "x"})[0] is None
    assert tracing.from_environment({"OTEL_TRACES_EXPORTER": "none"})[0] is None
    assert tracing.from_environment({"OTEL_TRACES_EXPORTER": "console",
                                     "OTEL_SDK_DISABLED": "true"})[0] is None
    assert "zipkin" in tracing.from_environment({"OTEL_TRACES_EXPORTER": "zipkin"})[1]
    assert tracing.from_environment({"OTEL_TRACES_EXPORTER": "otlp",
                                     "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})[0] is None


@pytest.mark.parametrize(("environ", "exporting"), [
    ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, "otlp"),  # the spec's default
    ({"OTEL_TRACES_EXPORTER": "console,otlp"}, "console, otlp"),
])
def test_on_as_the_standard_variables_say(environ, exporting, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "wallpapers")
    provider, line = tracing.from_environment(environ)
    assert provider is not None
    assert line == f"tracing on: service wallpapers, exporting to {exporting}"
    provider.shutdown()


def test_the_service_is_named_marsserver_unless_told(monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider, _ = tracing.from_environment({"OTEL_TRACES_EXPORTER": "console"})
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "marsserver"
    provider.shutdown()


def test_with_tracing_off_the_app_has_no_middleware(monkeypatch, caplog):
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.INFO, logger="marsserver"):
        app = create_app(Settings(source="demo"))
    assert not app.middlewares
    assert TRACING not in app
    assert [r.getMessage() for r in caplog.records if "tracing" in r.getMessage()] == [
        "tracing off: OTEL_TRACES_EXPORTER is none or not set"]


@pytest.fixture
def without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if `opentelemetry` were not installed: importing it fails."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "marsserver.tracing")
    monkeypatch.delattr(marsserver, "tracing")


async def test_without_the_extra_it_says_so_and_serves(without_the_extra, monkeypatch, caplog,
                                                       aiohttp_client):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    with caplog.at_level(logging.INFO, logger="marsserver"):
        app = create_app(Settings(source="demo"))
    assert [r.getMessage() for r in caplog.records if "tracing" in r.getMessage()] == [
        "tracing off: the otel extra is not installed (pip install 'marsserver[otel]')"]
    assert not app.middlewares
    assert (await (await aiohttp_client(app)).get("/api/photos")).status == 200


async def test_an_embedders_own_provider_is_used_and_left_running(monkeypatch, aiohttp_client):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    client = await aiohttp_client(create_app(Settings(source="demo")))
    assert (await client.get("/api/photos")).status == 200
    await client.close()
    span, *_ = server_spans(exporter)
    assert span.name == "GET /api/photos"
    with provider.get_tracer("after").start_as_current_span("still exporting"):
        pass
    assert exporter.get_finished_spans()[-1].name == "still exporting"


def test_a_secret_query_value_never_reaches_a_span():
    url = tracing._redacted(tracing.URL("https://api.nasa.gov/feed?api_key=s3cret&sol=4"))
    assert str(url) == "https://api.nasa.gov/feed?api_key=REDACTED&sol=4"


def console_spans(output: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed: JSON objects, one after another."""
    decoder, spans, at = json.JSONDecoder(), [], output.find("{")
    while at >= 0:
        span, end = decoder.raw_decode(output, at)
        spans.append(span)
        at = output.find("{", end)
    return spans


async def test_the_real_command_prints_a_coalesced_trace_to_the_console(capfd):
    environ = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "marsserver-test"}
    async with Marsserver("--source", "demo", env=environ) as server, \
            aiohttp.ClientSession() as session:
        async def get(target: str) -> int:
            async with session.get(server.url + target) as response:
                await response.read()
                return response.status
        statuses = await asyncio.gather(*(get("/wallpaper?height=90") for _ in range(5)))
    assert statuses == [200] * 5
    assert "tracing on: service marsserver-test, exporting to console" in server.log

    spans = console_spans(capfd.readouterr().out)
    servers = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    assert len(servers) == 5
    assert {s["resource"]["attributes"]["service.name"] for s in spans} == {"marsserver-test"}
    wallpaper, = (s for s in spans if s["attributes"].get(tracing.STAGE) == "wallpaper")
    followers = [s for s in servers
                 if wallpaper["context"]["span_id"] in {link["context"]["span_id"]
                                                        for link in s["links"]}]
    assert len(followers) == sum(s["attributes"][tracing.SERVED] == "COALESCED"
                                 for s in servers) >= 1
