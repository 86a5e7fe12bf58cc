"""Answers ready to send again: a response cache in front of the handlers, for cached hits.

On a hit the service itself does little, but that little (parsing the query, two cache
lookups, counting down max-age, building headers) cost more than aiohttp's own work for the
request. So the answer to a hit is kept per (request target as sent, Accept), with what
it was made from: the cache entries it came from (compared by identity) and the moment it stops
being exact (the end of the second its max-age was counted in, or when its list falls due for a
refresh). It is sent again only while all of that holds, and never to conditional requests, so
ETag, 304, 412, Cache-Control, X-Cache and the metrics stay what the full path would say.

Bounded by entries and by the bytes it keeps alive: bodies are shared with the cache, and only
those the cache has since dropped cost memory here.

The response itself is made without web.Response's constructor, whose Python (checks for text,
charset, content type; 11k instructions) cost 4% of a cached hit for what always ends up the
same few fields. What the constructor leaves is read off two responses at import (`_maker`):
an `Again` sets the per-response fields and shares the rest, which must be the same plain
values in both. An aiohttp whose constructor leaves anything else gets the constructor
instead (tests/test_hits.py checks that the installed one does not).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web
from multidict import CIMultiDict

from ..core.cache import Cache
from ..metrics import Tally
from .params import MAX_KEPT_ACCEPT, MAX_KEPT_TARGET

MAX_ENTRIES = 1024

# The request target as sent, Accept: only ASCII origin-form targets (`/path?query`) of at most
# MAX_KEPT_TARGET characters, and Accept headers of at most MAX_KEPT_ACCEPT, are kept: at most
# MAX_ENTRIES x 4.4 KB of keys (an absolute URL's host and user info never are).
Key = tuple[str, str]
_PER_RESPONSE = ("_state", "_headers", "_body")  # what Again.__init__ sets
_PLAIN = (bool, int, float, str, bytes, type(None))


class Again(web.Response):
    """A 200 with `body` and `headers`, as `web.Response(body=body, headers=headers)` makes
    it, for a tenth of the instructions (see the module's docstring)."""

    def __init__(self, body: bytes, headers: CIMultiDict[str]) -> None:
        self._state: dict[Any, Any] = {}
        self._headers = headers.copy()
        self._body = body


def _constructed(body: bytes, headers: CIMultiDict[str]) -> web.Response:
    return web.Response(body=body, headers=headers)


def _left(body: bytes, headers: dict[str, str]) -> dict[str, object] | None:
    """What web.Response's constructor leaves on a 200 besides `_PER_RESPONSE`; None if it
    does not set those."""
    fields = vars(web.Response(body=body, headers=CIMultiDict(headers)))
    if not all(name in fields for name in _PER_RESPONSE):
        return None
    return {name: value for name, value in fields.items() if name not in _PER_RESPONSE}


def _maker() -> Callable[[bytes, CIMultiDict[str]], web.Response]:
    """`Again`, sharing what the constructor leaves besides `_PER_RESPONSE`; the constructor
    itself unless that is the same plain values whatever the body and headers."""
    try:
        empty, svg = _left(b"", {}), _left(b"<svg/>", {"Content-Type": "image/svg+xml"})
    except Exception:  # an aiohttp whose responses have no instance dict, say
        return _constructed
    if empty is None or empty != svg or not all(isinstance(v, _PLAIN) for v in empty.values()):
        return _constructed
    for name, value in empty.items():
        setattr(Again, name, value)
    return Again


respond = _maker()


@dataclass(frozen=True, slots=True)
class Ready:
    body: bytes
    headers: CIMultiDict[str]  # what aiohttp copies fastest into a Response
    until: float  # wall-clock time after which the full path must answer again
    made_from: tuple[tuple[str, object], ...]  # cache key -> the entry it held
    tally: Tally  # where to count what the full path would have counted


class Hits:
    """The ready answers of one app."""

    def __init__(self, cache: Cache, max_bytes: int) -> None:
        self._cache = cache
        self._max_bytes = max_bytes
        self._ready: dict[Key, Ready] = {}
        self._bytes = 0

    @staticmethod
    def key(request: web.Request) -> Key:
        """The target as aiohttp's parser read it: the URL's `raw_path_qs` is worked out anew
        for each request (1k instructions), and the same target always routes the same way.
        aiohttp's fields rather than its properties, which are Python calls; `answer` makes
        the same key inline."""
        return request._message.path, request._headers.get(hdrs.ACCEPT, "")

    def answer(self, request: web.Request) -> web.Response | None:
        """The ready answer to `request`, if it is still exactly what the full path would send.
        (Key and lookup in one call: a call is 0.2% of a hit.)"""
        headers = request._headers  # the key as Hits.key(request) makes it:
        ready = self._ready.get((request._message.path, headers.get(hdrs.ACCEPT, "")))
        if (ready is None or time.time() >= ready.until or hdrs.IF_NONE_MATCH in headers
                or hdrs.IF_MATCH in headers or hdrs.IF_MODIFIED_SINCE in headers):
            return None
        for entry_key, entry in ready.made_from:
            if self._cache.peek(entry_key) is not entry:
                return None
        ready.tally.served += 1
        return respond(ready.body, ready.headers)

    def keep(self, key: Key, response: web.Response, until: float,
             made_from: tuple[tuple[str, object], ...], tally: Tally) -> None:
        """Remember a full-path answer that was a plain 200 made from `made_from`."""
        body = response.body
        target, accept = key
        if (not made_from or response.status != 200 or not isinstance(body, bytes)
                or not target.startswith("/") or not target.isascii()
                or len(target) > MAX_KEPT_TARGET or len(accept) > MAX_KEPT_ACCEPT):
            return
        if ((key not in self._ready and len(self._ready) >= MAX_ENTRIES)
                or self._bytes + len(body) > self._max_bytes):
            self._ready.clear()  # bounded; the hot answers come straight back
            self._bytes = 0
        headers = CIMultiDict(response.headers)
        headers["X-Cache"] = "HIT"
        replaced = self._ready.get(key)
        self._ready[key] = Ready(body, headers, until, made_from, tally)
        self._bytes += len(body) - (len(replaced.body) if replaced else 0)
