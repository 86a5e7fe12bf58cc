"""The OpenAPI 3.1 contract of every route, served at `GET /openapi.json`.

Built from the same constants the code validates with (ranges, presets, formats, fits, the
spellings `params` forgives), so the document cannot drift from the behaviour. It says all
the service enforces, the rules between parameters included, so that a schema-valid request
is accepted and any other refused: tests/test_contract.py holds the two together with
schemathesis' every check against the live app.
"""

from __future__ import annotations

import json
from typing import Any

from .. import imaging
from ..imaging import FITS, MAX_HEIGHT, MAX_WIDTH, MEDIA_TYPES, MIN_SIZE
from ..sources import cameras
from . import params
from .views import ICON_TYPE

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
        "camera": {"type": "string"}, "camera_name": {"type": "string"},
        "taken": {"type": "string"},
        "img_src": {"type": "string"}, "credit": {"type": "string"},
        "wallpaper_url": {"type": "string"},
        "permalink": {"type": "string", "description": "/photos/{id}/wallpaper?sol=N: add "
                      "wallpaper parameters with &"},
    },
}
LISTING: Schema = {
    "type": "object", "required": ["source", "rover", "sol", "count", "photos"],
    "properties": {
        "source": {"type": "string"}, "rover": {"type": "string"},
        "sol": {"type": "integer"}, "count": {"type": "integer", "minimum": 0},
        "newest_sol": {"type": ["integer", "null"]},
        "cameras": {"type": "array", "items": {"type": "string"}},
        "photos": {"type": "array", "items": {"$ref": "#/components/schemas/Photo"}},
    },
}
CACHE_HEADERS: Schema = {
    "ETag": {"schema": {"type": "string"}, "description": "strong validator of this output"},
    "X-Cache": {"schema": {"enum": ["HIT", "MISS", "COALESCED", "STALE", "SHARED"]},
                "description": "how this answer was obtained (docs/http-api.md)"},
    "Cache-Control": {"schema": {"type": "string"}},
}


def _bad_request(detail: str) -> Schema:
    """A 400: a wrong parameter, or a query string too long to be worth parsing (a rule of
    the whole query that OpenAPI cannot put in a schema)."""
    return _error(f"a parameter is wrong, or the query string is longer than "
                  f"{params.MAX_QUERY} characters (decoded); {detail}")


def _error(description: str) -> Schema:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


UPSTREAM_ERRORS = {
    "502": _error("NASA's answer was unusable"),
    "503": _error("rate limited by NASA, the upstream budget spent, or overloaded; see "
                  "Retry-After"),
    "504": _error("NASA did not answer in time"),
}
NOT_MODIFIED = {"description": "the client's copy (If-None-Match) is current",
                "headers": CACHE_HEADERS}


def _integer(low: int, high: int) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high}


def _words(words: params.Words) -> Schema:
    """Every spelling `words` accepts, in any case: JSON Schema's patterns have no `i` flag."""
    any_case = ("".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in spelling)
                for spelling in words.spellings)
    return {"type": "string", "pattern": f"^(?:{'|'.join(any_case)})$",
            "examples": list(words.words)}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def _described(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description}


SCALED = params.Words(("scale",))
FRAMED = params.Words(tuple(fit for fit in FITS if fit != "scale"))
# The size parameters depend on each other, which separate parameters cannot say: they are
# one exploded object (each property its own query parameter) with one schema per form.
SIZE: Schema = {
    "type": "object",
    "properties": {
        "height": _described(_integer(MIN_SIZE, MAX_HEIGHT), "output height; default 1080"),
        "width": _described(_integer(MIN_SIZE, MAX_WIDTH), "output width; needs height"),
        "fit": _described(_words(params.FIT), "how the photo fills the size (any case)"),
        "preset": _described(_words(params.PRESET), "a named screen size (any case)"),
    },
    "oneOf": [
        {"title": "height alone", "description": "scaled to `height` (default 1080), keeping "
         "the photo's aspect ratio; fit, if given, is scale",
         "properties": {"width": False, "preset": False, "fit": _words(SCALED)}},
        {"title": "width and height", "description": "exactly this size; fit cover (default) "
         "crops the photo to it, contain letterboxes it",
         "required": ["width", "height"], "properties": {"preset": False, "fit": _words(FRAMED)}},
        {"title": "preset", "description": "a named screen size (GET /presets); fit as with "
         "width and height", "required": ["preset"],
         "properties": {"width": False, "height": False, "fit": _words(FRAMED)}},
    ],
}

LIST_PARAMETERS = [
    _query("sol", _integer(0, params.MAX_SOL),
           "which sol (Mars day); default: the newest with whole frames; beyond the newest: 404"),
    _query("camera", {"type": "string", "pattern": f"^{cameras.LIST_PATTERN}$"},
           "comma-separated instrument codes, any case (e.g. NAV_LEFT_B,MCZ_LEFT); a camera "
           "with no photos that sol: 404"),
]
WALLPAPER_PARAMETERS = [*LIST_PARAMETERS,
    _query("photo_number", _integer(0, params.MAX_PHOTO_NUMBER),
           "which of today's photos (0-based)"),
    {**_query("size", {"$ref": "#/components/schemas/Size"},
              "the output size, in one of three forms: height alone, width and height, or a "
              "preset; each property is its own query parameter (`?width=800&height=600`)"),
     "style": "form", "explode": True},
    _query("crop", _words(params.CROP),
           "where fit=cover cuts, any case: smart (default) keeps the part with the most "
           "detail, center (or centre) the middle; other fits ignore it"),
    _query("format", _words(params.FORMAT),
           "output format, any case, jpg for jpeg; when absent, the one of "
           f"{', '.join(params.OFFERS)} (in this order) that Accept names with the highest "
           "q; jpeg when it names none (*/* alone)"),
    _query("quality", _integer(*params.QUALITY), f"JPEG, WebP and AVIF quality; default "
           f"{imaging.DEFAULT_QUALITY}, {imaging.AVIF_QUALITY} for AVIF (its scale is its own)"),
    _query("download", _words(params.FLAG),
           "1 (or true, yes, on): Content-Disposition attachment; default 0"),
    _query("sig", {"type": "string"}, "the URL's signature, which a deployment with a "
           "signing key requires for a size that is not a preset (docs/http-api.md)"),
]


UNSIGNED = _error("a size that is not a preset without its sig, or with a wrong one, where "
                  "the deployment has a signing key")
PRECONDITION_FAILED = _error("If-Match names another version than the current ETag")
PHOTO_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


def _listing_operation(summary: str, html: bool) -> Schema:
    content: Schema = {"application/json": {"schema": {"$ref": "#/components/schemas/Listing"}}}
    if html:
        content["text/html"] = {"schema": {"type": "string"}}
    return {"summary": summary, "parameters": LIST_PARAMETERS, "responses": {
        "200": {"description": "the photos", "content": content, "headers": CACHE_HEADERS},
        "304": NOT_MODIFIED,
        "400": _bad_request("detail names which"),
        "412": PRECONDITION_FAILED,
        "404": _error("no such sol yet, or no photos from those cameras that sol"),
        **UPSTREAM_ERRORS}}


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
                    "400": _bad_request("detail names which, and the range"),
                    "403": UNSIGNED,
                    "404": _error("photo_number is beyond the list, or no such sol or camera"),
                    "412": PRECONDITION_FAILED,
                    **UPSTREAM_ERRORS,
                },
            }},
            "/photos/{id}/wallpaper": {"get": {
                "summary": "one photo by its id (a listed photo's permalink), as a wallpaper",
                "parameters": [
                    {"name": "id", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": PHOTO_ID_PATTERN},
                     "description": "the photo's id, as listed"},
                    _query("sol", _integer(0, params.MAX_SOL),
                           "the sol the photo was listed on, as the permalinks the service "
                           "emits say: lets any instance find the photo again"),
                    *(p for p in WALLPAPER_PARAMETERS
                      if p["name"] not in ("photo_number", "sol", "camera"))],
                "responses": {
                    "200": {"description": "the wallpaper; the same bytes for as long as the "
                            "photo is known, cacheable forever", "headers": CACHE_HEADERS,
                            "content": dict.fromkeys(MEDIA_TYPES.values(), binary)},
                    "304": NOT_MODIFIED,
                    "400": _bad_request("detail names which, and the range"),
                    "403": UNSIGNED,
                    "404": _error("no photo with this id is known, or none among the "
                                  "photos of its sol"),
                    "412": PRECONDITION_FAILED,
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
                    "properties": {"status": {"enum": ["ok", "degraded"], "description":
                                              "degraded: the shared cache is unreachable or "
                                              "full, or the photo feed fails"},
                                   "redis": {"enum": ["ok", "unreachable", "full", "evicting"],
                                             "description": "with --cache redis:// only: "
                                                            "full refuses writes, evicting "
                                                            "drops keys early"},
                                   "upstream": {"enum": ["ok", "failing"],
                                                "description": "whether the photo feed answers"},
                                   "source": {"type": "string"},
                                   "in_flight": {"type": "integer"}}}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {
                "description": "OpenAPI 3.1",
                "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/favicon.ico": {"get": {"summary": "the site's icon", "responses": {
                "200": {"description": "a Mars disc, 16 and 32 px", "headers": CACHE_HEADERS,
                        "content": {ICON_TYPE: binary}},
                "304": NOT_MODIFIED}}},
        },
        "components": {"schemas": {"Error": ERROR, "Photo": PHOTO, "Listing": LISTING,
                                   "Size": SIZE}},
    }


def encoded(base_path: str) -> bytes:
    return json.dumps(document(base_path), indent=1).encode()
