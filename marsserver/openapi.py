"""The OpenAPI 3.1 contract of every route, served at `GET /openapi.json`.

Built from the same constants the code validates with (ranges, presets, formats, fits), so
the document cannot drift from the behaviour; tests/test_contract.py runs schemathesis
against the live app to hold the two together.
"""

from __future__ import annotations

import json
from typing import Any

from . import params
from .imaging import FITS, MAX_HEIGHT, MAX_WIDTH, MEDIA_TYPES, MIN_SIZE, PRESETS

Schema = dict[str, Any]

ERROR: Schema = {
    "type": "object", "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
PHOTO: Schema = {
    "type": "object",
    "required": ["number", "id", "camera", "taken", "img_src", "credit", "wallpaper_url"],
    "properties": {
        "number": {"type": "integer", "minimum": 0}, "id": {"type": "string"},
        "camera": {"type": "string"}, "taken": {"type": "string"},
        "img_src": {"type": "string"}, "credit": {"type": "string"},
        "wallpaper_url": {"type": "string"},
    },
}
LISTING: Schema = {
    "type": "object", "required": ["source", "rover", "sol", "count", "photos"],
    "properties": {
        "source": {"type": "string"}, "rover": {"type": "string"},
        "sol": {"type": "integer"}, "count": {"type": "integer", "minimum": 0},
        "photos": {"type": "array", "items": {"$ref": "#/components/schemas/Photo"}},
    },
}
CACHE_HEADERS: Schema = {
    "ETag": {"schema": {"type": "string"}, "description": "strong validator of this output"},
    "X-Cache": {"schema": {"enum": ["HIT", "MISS", "COALESCED", "STALE"]}},
    "Cache-Control": {"schema": {"type": "string"}},
}


def _error(description: str) -> Schema:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


UPSTREAM_ERRORS = {
    "502": _error("NASA's answer was unusable"),
    "503": _error("rate limited by NASA or overloaded; see Retry-After"),
    "504": _error("NASA did not answer in time"),
}
NOT_MODIFIED = {"description": "the client's copy (If-None-Match) is current",
                "headers": CACHE_HEADERS}


def _integer(name: str, low: int, high: int, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": low, "maximum": high}}


def _word(name: str, words: tuple[str, ...], description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "string", "enum": list(words)}}


WALLPAPER_PARAMETERS = [
    _integer("photo_number", 0, params.MAX_PHOTO_NUMBER, "which of today's photos (0-based)"),
    _integer("height", MIN_SIZE, MAX_HEIGHT, "output height; default 1080"),
    _integer("width", MIN_SIZE, MAX_WIDTH, "output width; needs height"),
    _word("fit", FITS, "scale (height alone), cover (default with width) or contain"),
    _word("preset", tuple(PRESETS), "a named screen size; not with width or height"),
    _word("format", tuple(MEDIA_TYPES), "output format; negotiated from Accept when absent"),
    _integer("quality", *params.QUALITY, "JPEG and WebP quality; default 85"),
    _integer("download", 0, 1, "1: Content-Disposition attachment"),
]


def _listing_operation(summary: str, html: bool) -> Schema:
    content: Schema = {"application/json": {"schema": {"$ref": "#/components/schemas/Listing"}}}
    if html:
        content["text/html"] = {"schema": {"type": "string"}}
    return {"summary": summary, "responses": {
        "200": {"description": "today's photos", "content": content, "headers": CACHE_HEADERS},
        "304": NOT_MODIFIED, **UPSTREAM_ERRORS}}


def document(base_path: str) -> Schema:
    """The contract for an app mounted at `base_path` ("/" when it is the whole site)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "marsserver", "version": "1",
                 "description": "The Mars rovers' newest photos as wallpapers."},
        "servers": [{"url": base_path.rstrip("/") or "/"}],
        "paths": {
            "/": {"get": _listing_operation("today's photos (HTML for browsers, else JSON)",
                                            html=True)},
            "/api/photos": {"get": _listing_operation("today's photos as JSON", html=False)},
            "/wallpaper": {"get": {
                "summary": "one of today's photos as a wallpaper",
                "parameters": WALLPAPER_PARAMETERS,
                "responses": {
                    "200": {"description": "the wallpaper", "headers": CACHE_HEADERS,
                            "content": dict.fromkeys(MEDIA_TYPES.values(), binary)},
                    "304": NOT_MODIFIED,
                    "400": _error("a parameter is wrong; detail names it and the range"),
                    "404": _error("photo_number is beyond today's list"),
                    **UPSTREAM_ERRORS,
                },
            }},
            "/presets": {"get": {"summary": "named screen sizes", "responses": {"200": {
                "description": "preset name to size", "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": {
                        "type": "object", "required": ["width", "height"],
                        "properties": {"width": {"type": "integer"},
                                       "height": {"type": "integer"}}}}}}}}}},
            "/healthz": {"get": {"summary": "readiness", "responses": {"200": {
                "description": "ready", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status", "source", "in_flight"],
                    "properties": {"status": {"const": "ok"}, "source": {"type": "string"},
                                   "in_flight": {"type": "integer"}}}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {
                "description": "OpenAPI 3.1",
                "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {"schemas": {"Error": ERROR, "Photo": PHOTO, "Listing": LISTING}},
    }


def encoded(base_path: str) -> bytes:
    return json.dumps(document(base_path), indent=1).encode()
