"""The aiohttp application: routes, and the resources each app owns for its lifetime.

Everything an app needs (client session, resize threads, cache, pipeline) is created in its
`cleanup_ctx` and reached through typed `web.AppKey`s: no module-level state, so two apps in
one process share nothing and an app can be mounted under a prefix with `add_subapp`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from ..core.budget import Bucket, Budget
from ..core.cache import BoundedMemoryCache, Cache
from ..core.coalesce import Background
from ..core.entries import Codec, Rendition
from ..core.pipeline import PHOTO, Pipeline
from ..metrics import Metrics
from ..settings import Settings
from ..sources import Source, default_image_hosts, make_source
from ..upstream import PublicResolver, Upstream, trusted_names
from . import handlers, openapi, views
from .malformed import quiet_malformed_requests
from .ready_answers import READY_ANSWERS, ReadyAnswers, ready_first

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from ..core.leases import Leases
    from ..tracing import Tracing

log = logging.getLogger(__name__)

SETTINGS = handlers.SETTINGS
SOURCE = web.AppKey("source", Source)
TRACING: web.AppKey[Tracing] = web.AppKey("tracing")
CONNECT_TIMEOUT = 5.0
MAX_REQUEST_LINE = 64 * 1024
# What one connection may send as headers. aiohttp keeps each field twice (as text and as
# bytes) and bounds their size and count, not their sum, so the count is what bounds the memory
# of a connection that never finishes its headers. 32 fields is half again a browser's request
# behind two proxies; 8 KiB a field is nginx's line limit too.
MAX_HEADERS = 32
MAX_FIELD_SIZE = 8190
# The most a connection holds while its request line and headers arrive (docs/operating.md):
# each kept twice, plus what the parser and the socket buffer besides.
MAX_HEADER_MEMORY = 2 * (MAX_REQUEST_LINE + MAX_HEADERS * MAX_FIELD_SIZE) + 128 * 1024
# Seconds a connection may take to send its request's headers, counted from the connection or
# from the previous answer: aiohttp's keep-alive timer, which data arriving does not restart,
# closes an idle connection and one whose headers are still coming alike.
HEADER_TIMEOUT = 10.0
# Passed to aiohttp by the app that is run (a host app that mounts this one passes the same):
# a request line longer than aiohttp's 8 KiB default reaches our handlers, which answer an
# over-long query with a JSON 400 instead of aiohttp's plain-text one.
REQUEST_LIMITS = {"max_line_size": MAX_REQUEST_LINE, "max_headers": MAX_HEADERS,
                  "max_field_size": MAX_FIELD_SIZE, "keepalive_timeout": HEADER_TIMEOUT}
# Seconds work in progress gets after SIGTERM before it is cancelled and whoever waits for it is
# answered 503: inside the 15 s the command line gives requests (cli.SHUTDOWN_TIMEOUT).
SHUTDOWN_GRACE = 14.0
UPSTREAM_CONNECTIONS = 8  # per host: coalescing keeps us far below, this caps the worst case
USER_AGENT = "marsserver/0.1 (Mars wallpaper service)"
# path, handler, name, and whether a cached hit is answered before the handler runs
ROUTES: tuple[tuple[str, handlers.Handler, str, bool], ...] = (
    ("/", handlers.index, "index", True),
    ("/api/photos", handlers.photos, "photos", True),
    ("/wallpaper", handlers.wallpaper, "wallpaper", True),
    ("/photos/{id}/wallpaper", handlers.permalink, "permalink", False),
    ("/presets", handlers.presets, "presets", False),
    ("/healthz", handlers.healthz, "healthz", False),
    ("/metrics", handlers.metrics, "metrics", False),
    ("/openapi.json", handlers.openapi, "openapi", False),
    ("/favicon.ico", handlers.favicon, "favicon", False),
)
# The routes whose ready answers are gzipped for some clients: kept by Accept-Encoding too.
BY_ENCODING = frozenset({"index", "photos"})


def create_app(settings: Settings | None = None, *, source: Source | None = None,
               tracer_provider: TracerProvider | None = None) -> web.Application:
    """A ready-to-run (or ready-to-mount) marsserver application.

    `source` replaces the one `settings.source` names, for serving your own photos;
    `tracer_provider` is the OpenTelemetry provider to trace with (docs/tracing.md).
    """
    app = web.Application(handler_args=REQUEST_LIMITS)
    settings = app[SETTINGS] = settings or Settings()
    app[handlers.QUERIES] = {}
    ready = app[READY_ANSWERS] = ReadyAnswers(settings.cache_entries, _ready_bytes(settings))
    if source is not None:
        app[SOURCE] = source
    for path, handler, name, answers_ready in ROUTES:
        guarded = handlers.json_errors(handler)
        if answers_ready:
            guarded = ready_first(guarded, ready, by_encoding=name in BY_ENCODING)
        app.router.add_get(path, guarded, name=name)
    app.router.add_route("*", r"/{path:[\s\S]*}", handlers.json_errors(handlers.no_route))
    tracing = _tracing(tracer_provider)
    if tracing is not None:  # with tracing off, not even a middleware
        app[TRACING] = tracing
        app.middlewares.append(tracing.middleware)
        app.on_cleanup.append(tracing.close)
    deadline = _WorkDeadline(SHUTDOWN_GRACE)
    app.on_shutdown.append(deadline.start)
    app.cleanup_ctx.append(_resources)
    app.on_cleanup.append(deadline.stop)
    return app


class _WorkDeadline:
    """At shutdown, cancels the work still running after `grace` seconds, so whoever waits for
    it gets a JSON 503 while aiohttp still holds the connection.

    aiohttp's shutdown stops accepting, runs on_shutdown, waits up to its shutdown_timeout for
    handlers in progress, then cancels them and drops their connections with no answer; only
    then does the app's cleanup (which closes the pipeline) run. Work cancelled there would
    answer nobody.
    """

    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._timer: asyncio.Task[None] | None = None

    async def start(self, app: web.Application) -> None:
        self._timer = asyncio.create_task(self._cancel_late(app[handlers.PIPELINE]))

    async def stop(self, _: web.Application) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def _cancel_late(self, pipeline: Pipeline) -> None:
        await asyncio.sleep(self._grace)
        await pipeline.close()


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    timeout = aiohttp.ClientTimeout(total=settings.timeout,
                                    connect=min(CONNECT_TIMEOUT, settings.timeout))
    executor = ThreadPoolExecutor(settings.resize_threads, thread_name_prefix="marsserver-resize")
    headers = {"User-Agent": USER_AGENT}
    resolver = PublicResolver(trusted_names(settings.api_url, settings.image_hosts))
    connector = aiohttp.TCPConnector(resolver=resolver, limit_per_host=UPSTREAM_CONNECTIONS)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers,
                                     connector=connector) as session:
        metrics = Metrics()
        app[handlers.OPENAPI] = Rendition.of(openapi.encoded(str(app.router["index"].url_for())),
                                             "application/json", compress=True)
        paths = views.Paths(index=str(app.router["index"].url_for()),
                            wallpaper=str(app.router["wallpaper"].url_for()))
        background = Background()
        make_listing = partial(views.cached_listing, paths=paths)
        codec = Codec(make_listing)
        app[handlers.BUDGET] = budget = Budget(settings.upstream_budget, metrics)
        tracing = app.get(TRACING)
        upstream = Upstream(session, default_image_hosts(settings), settings.max_source_bytes,
                            retries=settings.retries, metrics=metrics, source=settings.source,
                            budget=budget, tracing=tracing)
        source = app.get(SOURCE) or make_source(settings, upstream)
        cache, leases, bucket = await _cache_for(settings, source, codec, background,
                                                 paths.index)
        if bucket is not None:
            budget.share(bucket)
        app[READY_ANSWERS].watch(cache)
        app[handlers.PIPELINE] = pipeline = Pipeline(
            source, cache, executor, settings, make_listing, metrics=metrics,
            leases=leases, background=background, tracing=tracing)
        try:
            yield
        finally:
            await pipeline.close()
            await pipeline.cache.clear()
            await pipeline.cache.close()
            # Waiting for a running resize must not block the loop; queued ones are dropped.
            await asyncio.to_thread(partial(executor.shutdown, wait=True, cancel_futures=True))


def _tracing(provider: TracerProvider | None) -> Tracing | None:
    """The app's tracing: with `provider`, or the one an embedder set globally, or as the
    `OTEL_*` variables ask; None (said in one line) when off or the `otel` extra is missing."""
    try:
        from .. import tracing
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("opentelemetry"):
            raise
        log.info("tracing off: the otel extra is not installed (pip install 'marsserver[otel]')")
        return None
    return tracing.for_app(provider, os.environ)


def _ready_bytes(settings: Settings) -> int:
    """What ready answers may hold, out of --cache-bytes (keys and headers: bodies are the
    cache's own)."""
    return settings.cache_bytes // 16


async def _cache_for(settings: Settings, source: Source, codec: Codec, background: Background,
                     mount: str) -> tuple[Cache, Leases | None, Bucket | None]:
    """Memory alone, or Redis behind a memory front (a quarter of --cache-bytes) with leases
    and the upstream budget's shared bucket, its entries kept apart by the source that serves
    (see `prefix_for`)."""
    if settings.cache == "memory":
        return BoundedMemoryCache(settings.cache_bytes - _ready_bytes(settings),
                                  settings.cache_entries, index=PHOTO), None, None
    from ..core.leases import Leases  # the redis extra: needed only when asked for
    from ..core.redis_cache import SharedCache, client_for, prefix_for
    from ..core.shared_budget import SharedBucket
    front = BoundedMemoryCache(settings.cache_bytes // 4, settings.cache_entries, index=PHOTO)
    prefix = settings.cache_prefix or prefix_for(
        source, settings.rover or "", settings.api_url or "", mount)
    shared = SharedCache(client_for(settings.cache, settings.redis_timeout, settings.redis_ca_file),
                         front, codec, prefix, settings.redis_timeout)
    await shared.open()
    # A follower waits at most for a leader's failover plus a leader's upstream work (which
    # may itself wait on another lease, for the source image).
    wait = settings.lease + 2 * settings.timeout * (settings.retries + 2)
    bucket = SharedBucket(shared, settings.upstream_budget) if settings.upstream_budget else None
    return shared, Leases(shared, background, settings.lease, max_wait=wait), bucket


async def gunicorn_app() -> web.Application:
    """For `gunicorn marsserver.http.app:gunicorn_app --worker-class aiohttp.GunicornWebWorker`:
    the process is ours, so aiohttp's logs of malformed requests are shortened as by the CLI."""
    quiet_malformed_requests()
    return create_app(Settings.from_env())
