"""HTTP handlers: thin translations between requests and the pipeline.

Parameters are parsed by `params`; the pipeline does the work; this module adds HTTP's
caching semantics (strong ETags computed once per output, `If-None-Match` -> 304, HEAD,
`Cache-Control` from the remaining TTL, text gzipped once for the clients that take it) and
turns every error into JSON:
`{"error": code, "detail": text}`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import partial, wraps

from aiohttp import web

from ..core.budget import Budget
from ..core.entries import Rendition
from ..core.pipeline import NEWEST_KEY, Pipeline, Served
from ..errors import BadParameter, NotFound, ServiceError, Unavailable
from ..imaging import PRESETS, Spec
from ..metrics import CONTENT_TYPE
from ..settings import Settings
from ..sources import LATEST, Query
from . import params, signing, views
from .openapi import PHOTO_ID_PATTERN
from .ready_answers import READY_ANSWERS

log = logging.getLogger(__name__)

PIPELINE = web.AppKey("pipeline", Pipeline)
SETTINGS = web.AppKey("settings", Settings)
OPENAPI = web.AppKey("openapi", Rendition)
BUDGET = web.AppKey("budget", Budget)
Parsed = tuple[int, Spec, bool, bool, Query]  # number, spec, negotiated?, download, which list
QUERIES = web.AppKey("queries", dict[tuple[str, str], Parsed])
MAX_REMEMBERED_QUERIES = 4096
# No `public`: these answers are cacheable anyway, and none answers a request with credentials.
IMMUTABLE = "max-age=31536000, immutable"
DOCUMENT = "max-age=3600"  # /presets and /openapi.json change only with a new version
ICON = "max-age=604800"  # the icon changes only with a new version, but keeps its URL
NO_STORE = {"Cache-Control": "no-store"}  # a moment's state: /healthz, /metrics
# On every answer, so that a browser takes a body for the type it is sent as and never runs
# text a feed put in it. Set where each answer is made (ready answers copy it), not by an
# on_response_prepare hook, which would cost every cached hit a coroutine.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
PHOTO_ID = re.compile(PHOTO_ID_PATTERN)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def index(request: web.Request) -> web.Response:
    """CachedListing's photos: the HTML gallery for browsers, JSON for everyone else."""
    html = params.prefers(request.headers.get("Accept", ""), "text/html", "application/json")
    return await _listing(request, html=html, vary="Accept")


async def photos(request: web.Request) -> web.Response:
    """CachedListing's photos as JSON, whatever the `Accept` header says."""
    return await _listing(request, html=False)


async def _listing(request: web.Request, html: bool, vary: str | None = None) -> web.Response:
    pipeline, settings = request.app[PIPELINE], request.app[SETTINGS]
    _check_query_length(request)
    query = params.photo_query(request.query) if request.query_string else LATEST
    today, served = await pipeline.listing(query)
    now = time.time()
    cache_control = partial(_list_cache_control, today.fetched_at + today.fresh_for,
                            settings.max_stale)
    # No `Age`, even for a stale list: windows counted from now mean the same to a cache that
    # ignores Age (nginx) and to one that adds it (RFC 9111), which would otherwise see them
    # used up that many seconds early.
    headers = {"Cache-Control": cache_control(now)[0]}
    response = _respond(request, today.html if html else today.json, served, headers, vary)
    if served is not Served.STALE:
        request.app[READY_ANSWERS].remember(request, response, cache_control,
                                            pipeline.due_at(today), pipeline.made_from(today),
                                            pipeline.count_hits("list"))
    return response


def _list_cache_control(fresh_until: float, max_stale: float, now: float) -> tuple[str, float]:
    """Freshness and stale windows counted from `now`, never past what the service itself
    does: fresh until `fresh_until` (`info_ttl` after the fetch, or longer for an old sol),
    then servable stale for `max_stale` more; and until when the header stays this.

    `max-age` is never 0: nginx takes a 304 that says `max-age=0` as "keep the old response
    for its own max-age again", so a list that is (nearly) stale is fresh for one second more,
    and a shared cache asks again a second later, when the refresh has usually landed.
    """
    fresh = fresh_until - now
    max_age = max(1, math.ceil(fresh))
    stale = max(0, int(fresh + max_stale) - max_age)
    return (f"max-age={max_age}, stale-while-revalidate={stale}, stale-if-error={stale}",
            min(now + fresh % 1, now + (fresh + max_stale) % 1))


def _wallpaper_cache_control(expires: float, now: float) -> tuple[str, float]:
    """max-age until `expires`, and until when the header stays this."""
    left = expires - now
    return f"max-age={max(0, int(left))}", now + left % 1


async def wallpaper(request: web.Request) -> web.Response:
    """Photo `photo_number` of today's list, fitted to a screen, in the format asked for."""
    number, spec, negotiated, download, query = _parsed(request)
    pipeline = request.app[PIPELINE]
    today, _ = await pipeline.listing(query)
    rendition, served = await pipeline.wallpaper_in(today, number, spec)
    # The URL names a position in this list: cacheable only while the list is (this very list,
    # even if a newer one arrived while the wallpaper was made).
    expires = min(rendition.made_at + request.app[SETTINGS].image_ttl,
                  today.fetched_at + today.fresh_for)
    cache_control = partial(_wallpaper_cache_control, expires)
    headers = {"Cache-Control": cache_control(time.time())[0]}
    if download and rendition.filename:
        headers["Content-Disposition"] = f'attachment; filename="{rendition.filename}"'
    response = _respond(request, rendition, served, headers, "Accept" if negotiated else None)
    request.app[READY_ANSWERS].remember(request, response, cache_control,
                                        pipeline.due_at(today),
                                        pipeline.made_from(today, rendition, number, spec),
                                        pipeline.count_hits("list", "wallpaper"))
    return response


async def permalink(request: web.Request) -> web.Response:
    """One photo by its id, as `/wallpaper` makes it: the same bytes for as long as the
    source has the photo, so caches may keep it forever. The `sol` the emitted links carry
    lets any instance find the photo again; `camera` is read (and checked) but not needed."""
    photo_id = request.match_info["id"]
    if not PHOTO_ID.match(photo_id):
        raise NotFound(f"no photo {photo_id[:80]!r}")
    _, spec, negotiated, download, query = _parsed(request)
    rendition, served = await request.app[PIPELINE].permalink(photo_id, spec, query.sol)
    headers = {"Cache-Control": IMMUTABLE}
    if download and rendition.filename:
        headers["Content-Disposition"] = f'attachment; filename="{rendition.filename}"'
    return _respond(request, rendition, served, headers, "Accept" if negotiated else None,
                    dated=True)


def _parsed(request: web.Request) -> Parsed:
    """The wallpaper query, parsed once per distinct (query string, Accept): hot wallpapers
    are asked for with the same few URLs, and parsing costs more than the cache lookup. A
    free size's signature is checked on every request, before any work is done for it."""
    accept = request.headers.get("Accept", "")
    remembered = request.app[QUERIES]
    parsed = remembered.get((request.query_string, accept))
    if parsed is None:
        _check_query_length(request)
        query = request.query
        number = params.int_param(query, "photo_number", 0, 0, params.MAX_PHOTO_NUMBER)
        spec, negotiated = params.wallpaper_spec(query, accept)
        parsed = (number, spec, negotiated, params.flag_param(query, "download"),
                  params.photo_query(query))
        if len(accept) <= params.MAX_KEPT_ACCEPT:
            if len(remembered) >= MAX_REMEMBERED_QUERIES:
                remembered.clear()  # bounded; the hot ones come straight back
            remembered[request.query_string, accept] = parsed
    signing.check(request.app[SETTINGS].signing_key, request.raw_path, parsed[1])
    return parsed


def _check_query_length(request: web.Request) -> None:
    """Counted in characters once decoded (`%C3%A9` is one), as the query is parsed and
    remembered: a query the OpenAPI document allows is not refused for how it was encoded."""
    if len(request.query_string) > params.MAX_QUERY:
        raise BadParameter(f"query string longer than {params.MAX_QUERY} characters")


PRESETS_JSON = Rendition.of(json.dumps({name: {"width": w, "height": h}
                                         for name, (w, h) in PRESETS.items()}).encode(),
                             "application/json", compress=True)
FAVICON = Rendition.of(views.icon(), views.ICON_TYPE)


async def presets(request: web.Request) -> web.Response:
    """The named screen sizes `/wallpaper?preset=` accepts (fixed while this version runs)."""
    return _respond(request, PRESETS_JSON, Served.HIT, {"Cache-Control": DOCUMENT}, None)


async def openapi(request: web.Request) -> web.Response:
    """This app's OpenAPI 3.1 document (encoded once, at start-up)."""
    return _respond(request, request.app[OPENAPI], Served.HIT, {"Cache-Control": DOCUMENT}, None)


async def favicon(request: web.Request) -> web.Response:
    """The icon browsers ask every site for (and the pages link): without it, every visit
    would log a 404."""
    return _respond(request, FAVICON, Served.HIT, {"Cache-Control": ICON}, None)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; never stored, as a scrape wants the counts of now."""
    body = request.app[PIPELINE].metrics.render()
    return web.Response(body=body, headers={**NO_STORE, **NOSNIFF, "Content-Type": CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    """Always 200 while the instance can serve what it has; `degraded` says it is missing
    something: the shared cache (unreachable, or full), or NASA (the last list fetch failed
    and no fresh list is held, or the upstream budget is spent); `redis` says how Redis is,
    where there is one. Never stored: a cache in front must not answer a health check for the
    instance."""
    pipeline = request.app[PIPELINE]
    upstream = "failing" if pipeline.upstream_failing() else "ok"
    budget = "exhausted" if request.app[BUDGET].exhausted else "ok"
    healthy = not pipeline.degraded and upstream == budget == "ok"
    health: dict[str, object] = {
        "status": "ok" if healthy else "degraded",
        "upstream": upstream, "upstream_budget": budget, "source": pipeline.source.name,
        "in_flight": len(pipeline.in_flight())}
    if pipeline.cache.state is not None:
        health["redis"] = pipeline.cache.state
    return web.json_response(health, headers={**NO_STORE, **NOSNIFF})


def _respond(request: web.Request, rendition: Rendition, served: Served,
             headers: dict[str, str], vary: str | None, dated: bool = False) -> web.Response:
    """The rendition, 304 when the client already has it, 412 when it holds another version
    (GET and HEAD alike). Only `dated` answers carry Last-Modified: one per photo, never one
    per position in a list, where a cache could answer for another photo.

    A rendition with a gzipped twin is that twin for a client that takes gzip, compared with
    its own ETag, and both vary on Accept-Encoding; the body was compressed when it was made.
    """
    headers.update(NOSNIFF)
    gzipped = False
    if rendition.gzipped is not None:
        vary = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"
        if params.accepts_gzip(request.headers.get("Accept-Encoding", "")):
            rendition, gzipped = rendition.gzipped, True
    headers["ETag"] = rendition.etag
    headers["X-Cache"] = served.value
    if vary:
        headers["Vary"] = vary
    if dated and rendition.last_modified:
        headers["Last-Modified"] = rendition.last_modified
    if _precondition_failed(request, rendition, dated):
        return error_response(412, "precondition_failed", "If-Match or If-Unmodified-Since "
                              f"names another version than {rendition.etag}",
                              {"ETag": rendition.etag})
    if _not_modified(request, rendition, dated):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = rendition.media_type
    if gzipped:
        # Set here, with no enable_compression(): aiohttp sends the body as it is.
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=rendition.body, headers=headers)


def _precondition_failed(request: web.Request, rendition: Rendition, dated: bool) -> bool:
    """RFC 9110: If-Match decides when present; If-Unmodified-Since only without it."""
    if_match = request.headers.get("If-Match")
    if if_match is not None:
        return not _matches(if_match, rendition.etag, weak=False)
    since, modified = request.if_unmodified_since, _last_modified(rendition)
    return dated and since is not None and modified is not None and modified > since


def _last_modified(rendition: Rendition) -> datetime | None:
    try:
        return parsedate_to_datetime(rendition.last_modified or "")
    except ValueError:
        return None


def _not_modified(request: web.Request, rendition: Rendition, dated: bool) -> bool:
    """RFC 9110: If-None-Match decides when present; If-Modified-Since only without it."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return _matches(if_none_match, rendition.etag, weak=True)
    since, modified = request.if_modified_since, _last_modified(rendition)
    return dated and since is not None and modified is not None and modified <= since


def _matches(header: str, etag: str, weak: bool) -> bool:
    """RFC 9110 comparison: `*`, or any listed tag; If-None-Match compares weakly (W/ or not),
    If-Match strongly (a weak tag never matches)."""
    tags = (tag.strip() for tag in header.split(","))
    return any(tag in ("*", etag) or (weak and tag.removeprefix("W/") == etag) for tag in tags)


def error_response(status: int, code: str, detail: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    """A JSON error; browsers get a page instead (`_error_page`), so errors vary on Accept."""
    return web.Response(status=status, headers={**(headers or {}), **NOSNIFF, "Vary": "Accept"},
                        content_type="application/json",
                        text=json.dumps({"error": code, "detail": detail}))


def _error_page(request: web.Request, error: ServiceError, retry_after: int | None,
                headers: dict[str, str] | None) -> web.Response:
    """What a person in a browser sees: what failed, what still works, when to retry."""
    pipeline, settings = request.app[PIPELINE], request.app[SETTINGS]
    page = views.error_page(error.status, error.detail, retry_after,
                            newest_cached=pipeline.cache.peek(NEWEST_KEY) is not None,
                            index=str(request.app.router["index"].url_for()),
                            offline_hint=settings.source == "msl" and error.status >= 500)
    return web.Response(status=error.status,
                        headers={**(headers or {}), **NOSNIFF, "Vary": "Accept"},
                        body=page, content_type="text/html", charset="utf-8")


def json_errors(handler: Handler) -> Handler:
    """`handler` with every failure answered as JSON with the right status (a page for
    browsers), never a traceback.

    A wrapper per route, not a middleware: with any middleware at all, aiohttp adds one of its
    own and builds the chain on every request, and the pair cost a tenth of a cached hit.
    """
    @wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ServiceError as error:
            return _service_error(request, error)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
            return error_response(error.status, error.reason.lower().replace(" ", "_"),
                                  error.reason, allow)
        except Exception:
            log.exception("unhandled error serving %s", request.rel_url)
            return error_response(500, "internal_error", "unexpected error; it has been logged")
    return guarded


async def no_route(request: web.Request) -> web.StreamResponse:
    """What the router found nothing for: 405 naming the methods the path has, else 404.
    Registered last, for every path and method, so these are JSON too (see `json_errors`).

    A route added to this app after `create_app`, at the top level and dynamic (`/{name}`),
    comes after this one and is never reached: mount marsserver in your own app instead
    (docs/embedding.md). Such a request is logged and answered 404 rather than a 405 that
    would contradict itself.
    """
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            match, methods = await resource.resolve(request)
            if match is not None:
                log.warning("%s %s matches %s, added after create_app and shadowed by "
                            "marsserver's catch-all: mount marsserver instead", request.method,
                            request.path[:80], resource.canonical)
                raise web.HTTPNotFound()
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def _service_error(request: web.Request, error: ServiceError) -> web.Response:
    retry_after = error.retry_after if isinstance(error, Unavailable) else None
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    if params.prefers(request.headers.get("Accept", ""), "text/html", "application/json"):
        return _error_page(request, error, retry_after, headers)
    return error_response(error.status, error.code, error.detail, headers)
