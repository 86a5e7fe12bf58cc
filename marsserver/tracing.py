"""OpenTelemetry tracing, the `otel` extra: spans that show one NASA call serving a crowd.

Each request gets a server span; each piece of work actually done (a list fetched, a source
downloaded, a wallpaper made) a span of its own, under the request that started it; a request
that waited on work another request started links to that work's span instead. A flight's
`Trail` collects the spans its waiters link to: the work's, or the spans another instance
announced for the Redis lease it held (`Leases.note`), so links cross instances too.

Off unless asked for: `from_environment` reads the standard `OTEL_*` variables, and with
tracing off the app has no middleware and the pipeline and upstream no hook, so a cached hit
costs what it did without the extra. An embedder's own `TracerProvider`, passed or set
globally, is used as it is and left for the embedder to shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import hdrs, web
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from yarl import URL

from .core.coalesce import SingleFlight
from .errors import ServiceError

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVED = "marsserver.served"
STAGE = "marsserver.stage"
KEY = "marsserver.key"
WORK = {"list": "fetch list", "source": "download source", "wallpaper": "make wallpaper"}
LEASE_WAIT = "wait for lease"
SECRET_QUERY = frozenset({"api_key"})  # query values never written to a span
EXPORTERS = ("console", "otlp")
_TRACEPARENT = TraceContextTextMapPropagator()


def for_app(provider: trace.TracerProvider | None, environ: Mapping[str, str],
            ) -> Tracing | None:
    """An app's tracing, said in one line: with `provider` if given, else with the one an
    embedder set globally, else as `environ`'s `OTEL_*` variables ask (or None: off)."""
    if provider is None:
        provider = embedder_provider()
    if provider is not None:
        log.info("tracing on, with the application's own TracerProvider")
        return Tracing(provider, owned=False)
    ours, line = from_environment(environ)
    log.info("%s", line)
    return None if ours is None else Tracing(ours, owned=True)


def from_environment(environ: Mapping[str, str]) -> tuple[TracerProvider | None, str]:
    """A provider of our own as the `OTEL_*` variables ask, or None; and the line saying so.

    Off when nothing asks for it: `OTEL_TRACES_EXPORTER` unset (or `none`) and no OTLP
    endpoint set, or `OTEL_SDK_DISABLED=true`. The SDK itself reads the rest (service name
    and resource attributes, sampler, batch sizes, the exporter's endpoint, headers, timeout).
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None, "tracing off: OTEL_SDK_DISABLED is true"
    endpoint = (environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    asked = environ.get("OTEL_TRACES_EXPORTER", "otlp" if endpoint else "none")
    names = [name.strip().lower() for name in asked.split(",") if name.strip()]
    unknown = [name for name in names if name not in (*EXPORTERS, "none")]
    if unknown:
        return None, (f"tracing off: OTEL_TRACES_EXPORTER names {', '.join(unknown)}; "
                      f"this service exports to {' or '.join(EXPORTERS)}")
    chosen = [name for name in names if name != "none"]
    if not chosen:
        return None, "tracing off: OTEL_TRACES_EXPORTER is none or not set"
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    if "otlp" in chosen and protocol != "http/protobuf":
        return None, (f"tracing off: OTLP over {protocol} is not supported; "
                      "set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "marsserver"}))
    provider = TracerProvider(resource=resource)
    for name in chosen:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    service = resource.attributes[SERVICE_NAME]
    return provider, f"tracing on: service {service!s}, exporting to {', '.join(chosen)}"


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def embedder_provider() -> trace.TracerProvider | None:
    """The provider an embedding application set globally, if it set one."""
    provider = trace.get_tracer_provider()
    return None if isinstance(provider, trace.ProxyTracerProvider) else provider


@dataclass(slots=True)
class Trail:
    """The spans one flight's waiters link to: the work its own task did, and work it waited
    on that others started (in another instance, or here before its first waiters left)."""

    spans: list[tuple[SpanContext, bool]] = field(default_factory=list)  # and: done by it?

    def link(self, span: Span, joined: bool) -> None:
        """Link `span` (a waiter's) to the work it waited on: all of it if it joined a flight
        another started, else only what others did (its flight's own work is its child)."""
        for work, own in self.spans:
            if joined or not own:
                span.add_link(work)


_TRAIL: ContextVar[Trail | None] = ContextVar("marsserver_trail", default=None)


class Tracing:
    """One app's tracer, and the hooks the HTTP layer, the pipeline and upstream call."""

    def __init__(self, provider: trace.TracerProvider, owned: bool) -> None:
        self.tracer = provider.get_tracer("marsserver")
        self._provider = provider if owned and isinstance(provider, TracerProvider) else None
        self._trails: dict[str, Trail] = {}  # flight key -> the trail of the flight running
        self._working: dict[str, SpanContext] = {}  # key -> the span of its work running here

    async def close(self, _: web.Application) -> None:
        """Export what is left and stop, if the provider is ours (an embedder's is theirs): in
        a thread, as exporting waits on the collector."""
        if self._provider is not None:
            await asyncio.to_thread(self._provider.shutdown)

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                         ) -> web.StreamResponse:
        """The server span: HTTP semantic conventions, and `marsserver.served` (X-Cache)."""
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None and resource.name else None
        attributes = {"http.request.method": request.method, "url.path": request.path,
                      "url.scheme": request.scheme}
        if template is not None:
            attributes["http.route"] = template
        name = f"{request.method} {template}" if template else request.method
        with self.tracer.start_as_current_span(
                name, context=propagate.extract(request.headers), kind=SpanKind.SERVER,
                attributes=attributes, record_exception=False,
                set_status_on_exception=False) as span:
            try:
                response = await handler(request)
            except web.HTTPException as error:
                _answered(span, error.status)
                raise
            except Exception as error:
                span.record_exception(error)
                _answered(span, 500)
                raise
            _answered(span, response.status)
            served = response.headers.get("X-Cache")
            if served is not None:
                span.set_attribute(SERVED, served)
            return response

    async def waited(self, flights: SingleFlight[str, T], key: str,
                     fill: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, bool]:
        """`flights.do(key, fill)`, linking this caller's span to the work it waited on and
        marking it with the flight's failure."""
        running = flights.running(key)  # so this caller joins, and the work is another's
        trail = self._trails.get(key, Trail()) if running else self._start(key)
        span = trace.get_current_span()
        try:
            return await flights.do(key, lambda: self._flight(key, trail, fill))
        except ServiceError as error:
            if error.status >= 500:
                span.set_status(Status(StatusCode.ERROR, error.detail))
                span.set_attribute("error.type", error.code)
            raise
        finally:
            trail.link(span, running)

    @staticmethod
    async def detached(work: Awaitable[T]) -> T:
        """`work` as a trace of its own: a background refresh, which no request waits for (the
        one that set it off may be long answered, as when a timer does)."""
        context.attach(context.Context())  # this task's context only: it ends with the task
        return await work

    def _start(self, key: str) -> Trail:
        """A new flight's trail; work for `key` still running here (its first waiters left)
        is what this flight will join."""
        working = self._working.get(key)
        trail = self._trails[key] = Trail([] if working is None else [(working, False)])
        return trail

    async def _flight(self, key: str, trail: Trail, fill: Callable[[], Coroutine[Any, Any, T]],
                      ) -> T:
        """A flight's own task: its work finds the trail here, and the trail goes with it."""
        _TRAIL.set(trail)
        try:
            return await fill()
        finally:
            if self._trails.get(key) is trail:
                del self._trails[key]

    async def work(self, key: str, compute: Callable[[], Awaitable[T]],
                   announce: Callable[[str], Awaitable[None]] | None) -> T:
        """`compute()` in a span for the stage `key` belongs to, on the flight's trail and, for
        followers in other instances, `announce`d (a traceparent) before the work starts."""
        stage = key.split(":", 1)[0]
        with self.tracer.start_as_current_span(
                WORK.get(stage, stage), attributes={STAGE: stage, KEY: key}) as span:
            trail = _TRAIL.get()
            if trail is not None:
                trail.spans.append((span.get_span_context(), True))
            self._working[key] = context = span.get_span_context()
            try:
                if announce is not None:
                    carrier: dict[str, str] = {}
                    _TRACEPARENT.inject(carrier)
                    await announce(carrier.get("traceparent", ""))
                return await compute()
            finally:
                if self._working.get(key) is context:
                    del self._working[key]

    async def lease(self, key: str, run: Callable[[Callable[[frozenset[str]],
                                                             Awaitable[T | None]]], Awaitable[T]],
                    check: Callable[[frozenset[str]], Awaitable[T | None]],
                    announced: Callable[[frozenset[str]], Awaitable[list[str]]]) -> T:
        """`run(check)` (a Redis lease for `key`), in a span from the moment another instance
        is seen to hold it; once its result (or failure) is found, the spans its holders
        announced go on the trail and on that span as links."""
        waiting: list[Span] = []

        async def watched(holders: frozenset[str]) -> T | None:
            if holders and not waiting:
                stage = key.split(":", 1)[0]
                waiting.append(self.tracer.start_span(
                    LEASE_WAIT, attributes={STAGE: stage, KEY: key}))
            try:
                found = await check(holders)
            except ServiceError:
                await self._follow(holders, announced, waiting)
                raise
            if found is not None:
                await self._follow(holders, announced, waiting)
            return found

        try:
            return await run(watched)
        except ServiceError as error:
            for span in waiting:
                span.set_status(Status(StatusCode.ERROR, error.detail))
            raise
        finally:
            for span in waiting:
                span.end()

    async def _follow(self, holders: frozenset[str],
                      announced: Callable[[frozenset[str]], Awaitable[list[str]]],
                      waiting: list[Span]) -> None:
        if not holders:
            return
        trail = _TRAIL.get()
        for traceparent in await announced(holders):
            remote = trace.get_current_span(
                _TRACEPARENT.extract({"traceparent": traceparent})).get_span_context()
            if not remote.is_valid:
                continue
            if trail is not None:
                trail.spans.append((remote, False))
            for span in waiting:
                span.add_link(remote)

    @contextlib.contextmanager
    def client(self, url: URL, kind: str) -> Iterator[Callable[[str], None]]:
        """A client span for one call upstream; the caller reports how it ended (a status
        code, "timeout" or "error") through the function it is given."""
        attributes: dict[str, str | int] = {
            "http.request.method": hdrs.METH_GET, "server.address": url.host or "",
            "url.full": str(_redacted(url)), "marsserver.upstream": kind}
        if url.port is not None:
            attributes["server.port"] = url.port
        with self.tracer.start_as_current_span(
                hdrs.METH_GET, kind=SpanKind.CLIENT, attributes=attributes) as span:
            yield lambda status: _upstream_answered(span, status)


def _answered(span: Span, status: int) -> None:
    """A server span's status: a 5xx is an error (unless the failure already said which)."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500 and getattr(span, "status", Status(StatusCode.UNSET)).is_unset:
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", str(status))


def _upstream_answered(span: Span, status: str) -> None:
    """A client span's status: any answer but a 2xx or 3xx, or none, is an error."""
    if status.isdigit():
        span.set_attribute("http.response.status_code", int(status))
    if not status.isdigit() or int(status) >= 400:
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", status)


def _redacted(url: URL) -> URL:
    """`url` without the values of secret query parameters (the API key)."""
    if not SECRET_QUERY & set(url.query):
        return url
    return url.with_query([(name, "REDACTED" if name in SECRET_QUERY else value)
                           for name, value in url.query.items()])
