"""HTTP handlers: thin translations between requests and the pipeline.

Parameters are validated strictly here (one value, ASCII digits, within range) so the pipeline
only ever sees sane numbers, and every error leaves as JSON: `{"error": code, "detail": text}`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .errors import BadParameter, ServiceError, Unavailable
from .imaging import MAX_HEIGHT, MIN_HEIGHT
from .metrics import CONTENT_TYPE
from .pipeline import Pipeline, Served

log = logging.getLogger(__name__)

PIPELINE = web.AppKey("pipeline", Pipeline)
MAX_PHOTO_NUMBER = 9999
DEFAULT_HEIGHT = 1080
_MAX_DIGITS = 6
MAX_QUERY = 1024
STALE_WARNINGS = {False: '110 - "Response is Stale"', True: '111 - "Revalidation Failed"'}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def index(request: web.Request) -> web.Response:
    """Today's photos as JSON, pre-encoded when the list was fetched."""
    pipeline = request.app[PIPELINE]
    today, served = await pipeline.today()
    headers = {"X-Cache": served.value}
    if served is Served.STALE:
        failing = await pipeline.upstream_failing()
        headers["Age"] = str(int(time.time() - today.fetched_at))
        headers["Warning"] = STALE_WARNINGS[failing]
    return web.Response(body=today.json, content_type="application/json", headers=headers)


async def wallpaper(request: web.Request) -> web.Response:
    """Photo `photo_number` of today's list, `height` pixels high, as JPEG."""
    if len(request.query_string) > MAX_QUERY:
        raise BadParameter(f"query string longer than {MAX_QUERY} bytes")
    number = int_param(request, "photo_number", 0, 0, MAX_PHOTO_NUMBER)
    height = int_param(request, "height", DEFAULT_HEIGHT, MIN_HEIGHT, MAX_HEIGHT)
    image, served = await request.app[PIPELINE].wallpaper(number, height)
    return web.Response(body=image, content_type="image/jpeg", headers={"X-Cache": served.value})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    body = request.app[PIPELINE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    pipeline = request.app[PIPELINE]
    return web.json_response({"status": "ok", "source": pipeline.source.name,
                              "in_flight": len(pipeline.in_flight())})


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """Query parameter `name` as an int in `low..high`; anything else is a 400 naming it."""
    values = request.query.getall(name, [])
    if not values:
        return default
    allowed = f"an integer from {low} to {high}"
    if len(values) > 1:
        raise BadParameter(f"{name} given {len(values)} times; give it once, as {allowed}")
    text = values[0]
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS) or not (
        low <= int(text) <= high
    ):
        raise BadParameter(f"{name} must be {allowed}, got {text[:20]!r}")
    return int(text)


def error_response(status: int, code: str, detail: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers, content_type="application/json",
                        text=json.dumps({"error": code, "detail": detail}))


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as JSON with the right status; never a traceback to the client."""
    try:
        return await handler(request)
    except ServiceError as error:
        retry_after = error.retry_after if isinstance(error, Unavailable) else None
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return error_response(error.status, error.code, error.detail, headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return error_response(error.status, error.reason.lower().replace(" ", "_"), error.reason,
                              allow)
    except Exception:
        log.exception("unhandled error serving %s", request.rel_url)
        return error_response(500, "internal_error", "unexpected error; it has been logged")
