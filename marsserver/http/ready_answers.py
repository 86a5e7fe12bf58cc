"""Ready answers: a cached hit's finished 200, sent again before its handler runs.

On a cached hit the full path (parsing the query, negotiating the format, two cache lookups,
counting down max-age, building headers) costs more than aiohttp's own work for the request. So
each plain 200 made from cache entries is kept per (request target as sent, Accept, and on the
routes that gzip, Accept-Encoding) and sent again while it is exactly what the full path would
send: its Cache-Control is worked out again when the second its max-age was counted in ends,
it is sent until its list falls due for a refresh, and only while the cache holds the very
entries it was made from. The cache says when
it replaces or drops one (`Cache.watch`), so a hit checks no entry, and no answer outlives what
it was made from. Conditional requests always take the full path, so ETag, 304, 412,
Cache-Control, X-Cache and the metrics stay exact.

Bounded by entries and by bytes, least recently used out first. A body is the cache entry's own
bytes object, so what an answer costs here is its key and headers (and OVERHEAD).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps

from aiohttp import hdrs, web
from multidict import CIMultiDict

from ..core.cache import Cache
from ..metrics import HitCount
from .params import MAX_KEPT_ACCEPT

log = logging.getLogger(__name__)

# Only ASCII targets in origin form (`/path?query`) are kept, and only up to this length: a
# short path and a query of up to params.MAX_QUERY characters, even percent-encoded ones.
# aiohttp reads targets of up to 64 KiB here (app.MAX_REQUEST_LINE), and an absolute URL's
# host and user info must never become keys.
MAX_KEPT_TARGET = 4096
OVERHEAD = 1024  # bytes of Python objects an answer holds besides its strings

# The request target as sent, Accept, and Accept-Encoding where the answer depends on it (a
# list may be gzipped), else "": a wallpaper is one answer whatever the client decodes.
Key = tuple[str, str, str]
# Cache-Control as of a moment, and until when it stays that (the handlers' own function).
CacheControl = Callable[[float], tuple[str, float]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MadeFrom = tuple[tuple[str, object], ...]  # cache key -> the entry an answer was made from


@dataclass(slots=True)
class Ready:
    body: bytes
    headers: CIMultiDict[str]
    until: float  # wall-clock time after which the headers must be worked out again
    due: float  # wall-clock time after which the full path must answer again
    cache_control: CacheControl
    made_from: tuple[str, ...]  # the cache keys whose entries it was made from
    count: HitCount  # where to count what the full path would have counted
    size: int  # what it holds besides the body, in bytes


class ReadyAnswers:
    """The ready answers of one app: `answer` on the way in, `remember` on the way out."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._max_entries, self._max_bytes = max_entries, max_bytes
        self._ready: OrderedDict[Key, Ready] = OrderedDict()
        self._by_entry: dict[str, set[Key]] = {}  # cache key -> answers made from its entry
        self._cache: Cache | None = None
        self._touch: Callable[[str], None] = _nothing
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._ready)

    def watch(self, cache: Cache) -> None:
        """Answer from what `cache` holds, forgetting answers when their entries change."""
        self._cache, self._touch = cache, cache.touch
        cache.watch(self._entry_changed)

    @staticmethod
    def key(request: web.BaseRequest, by_encoding: bool) -> Key:
        headers = request.headers
        return (request.raw_path, headers.get(hdrs.ACCEPT, ""),
                headers.get(hdrs.ACCEPT_ENCODING, "") if by_encoding else "")

    def answer(self, request: web.BaseRequest, by_encoding: bool = False,
               ) -> web.Response | None:
        """The ready answer to `request`, if it is still exactly what the full path would send;
        its entries count as used in the cache, as the full path's lookups would make them.
        `by_encoding`: the route's answers depend on Accept-Encoding (as in `remember`)."""
        key = self.key(request, by_encoding)
        ready = self._ready.get(key)
        if ready is None:
            return None
        if (now := time.time()) >= ready.until:
            if now >= ready.due:
                return None
            ready = self._renewed(key, ready, now)
        headers = request.headers
        if (hdrs.IF_NONE_MATCH in headers or hdrs.IF_MATCH in headers
                or hdrs.IF_MODIFIED_SINCE in headers):
            return None  # the full path answers 304 and 412
        self._ready.move_to_end(key)
        for entry_key in ready.made_from:
            self._touch(entry_key)
        ready.count.served += 1
        return web.Response(body=ready.body, headers=ready.headers)

    def remember(self, request: web.BaseRequest, response: web.Response,
                 cache_control: CacheControl, due: float, made_from: MadeFrom,
                 count: HitCount) -> None:
        """Keep a full-path answer that was a plain 200 made from the entries `made_from` names,
        if the cache still holds those very entries; `cache_control` is how its Cache-Control
        header was made, and the answer is not sent after `due`. An answer that varies on
        Accept-Encoding (its own Vary says so) is sent again only for the same header."""
        by_encoding = hdrs.ACCEPT_ENCODING in response.headers.get(hdrs.VARY, "")
        target, accept, encoding = key = self.key(request, by_encoding)
        body = response.body
        if (self._cache is None or not made_from or response.status != 200
                or not isinstance(body, bytes) or not target.startswith("/")
                or not target.isascii() or len(target) > MAX_KEPT_TARGET
                or len(accept) > MAX_KEPT_ACCEPT or len(encoding) > MAX_KEPT_ACCEPT
                or any(self._cache.peek(entry_key) is not entry
                       for entry_key, entry in made_from)):
            return
        headers = CIMultiDict(response.headers)
        headers["X-Cache"] = "HIT"
        # Cache-Control and the moment it changes, read at one instant.
        headers[hdrs.CACHE_CONTROL], until = cache_control(time.time())
        size = OVERHEAD + len(target) + len(accept) + len(encoding) + sum(
            len(name) + len(value) for name, value in headers.items())
        self._forget(key)
        entry_keys = tuple(entry_key for entry_key, _ in made_from)
        self._ready[key] = Ready(body, headers, min(until, due), due, cache_control, entry_keys,
                                 count, size)
        self.nbytes += size
        for entry_key in entry_keys:
            self._by_entry.setdefault(entry_key, set()).add(key)
        while len(self._ready) > self._max_entries or self.nbytes > self._max_bytes:
            self._forget(next(iter(self._ready)))

    def _renewed(self, key: Key, ready: Ready, now: float) -> Ready:
        """`ready` with the Cache-Control the full path would send at `now` (once a second).
        Changed in place: every response sent copies the headers it is given."""
        header, until = ready.cache_control(now)
        grown = len(header) - len(ready.headers.get(hdrs.CACHE_CONTROL, ""))
        ready.headers[hdrs.CACHE_CONTROL] = header
        ready.until, ready.size = min(until, ready.due), ready.size + grown
        self.nbytes += grown
        return ready

    def _entry_changed(self, entry_key: str) -> None:
        """The cache replaced or dropped `entry_key`: what was made from it is no longer exact."""
        for key in self._by_entry.pop(entry_key, ()):
            self._forget(key)

    def _forget(self, key: Key) -> None:
        ready = self._ready.pop(key, None)
        if ready is None:
            return
        self.nbytes -= ready.size
        for entry_key in ready.made_from:
            keys = self._by_entry.get(entry_key)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_entry[entry_key]


READY_ANSWERS = web.AppKey("ready_answers", ReadyAnswers)


def ready_first(handler: Handler, ready: ReadyAnswers, by_encoding: bool = False) -> Handler:
    """`handler` (already answering failures as JSON), preceded by a look for its ready answer:
    a hit is answered before anything is parsed, in this one coroutine frame. A failing look
    is logged and the full path answers. `by_encoding`: the route's answers depend on
    Accept-Encoding (its handler remembers them so)."""
    @wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            found = ready.answer(request, by_encoding)
        except Exception:
            log.exception("looking up the ready answer for %s failed", request.rel_url)
            found = None
        return found if found is not None else await handler(request)
    return answer


def _nothing(_: str) -> None:
    """What a hit touches before `watch` named a cache (no answer is kept until then)."""
