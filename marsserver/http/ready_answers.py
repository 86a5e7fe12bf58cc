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

Answers whose Cache-Control comes from the same function of the same values (a list's answers,
the wallpapers made from it) share one `Clock`, so a working set of thousands of answers works
the header out once a second, not once per answer. Bounded by entries and by bytes; when full,
an answer not sent since it was last passed over goes out first (second chance: a hit only
sets a flag, where moving it to the end of the table would touch two neighbours). A
body is the cache entry's own bytes object, so what an answer costs here is its key and
headers (and OVERHEAD).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial, wraps

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
CACHE_CONTROL_ROOM = 16  # a Cache-Control header may grow by this as its figures change

# The request target as sent, Accept, and Accept-Encoding where the answer depends on it (a
# list may be gzipped), else "": a wallpaper is one answer whatever the client decodes.
Key = tuple[str, str, str]
# Cache-Control as of a moment, and until when it stays that: the handlers' own function, with
# the values it is worked out from (answers that share them share a Clock).
CacheControl = partial[tuple[str, float]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MadeFrom = tuple[tuple[str, object], ...]  # cache key -> the entry an answer was made from


@dataclass(slots=True)
class Clock:
    """One Cache-Control header, worked out again once the second it was counted in ends, for
    every answer that shares its function and values and the moment they fall due."""

    cache_control: CacheControl
    due: float  # wall-clock time after which the full path must answer again
    header: str = ""
    until: float = 0.0  # wall-clock time after which `header` must be worked out again
    users: int = 0  # answers that show it

    def renew(self, now: float) -> None:
        self.header, until = self.cache_control(now)
        self.until = min(until, self.due)


@dataclass(slots=True)
class Ready:
    body: bytes
    headers: CIMultiDict[str]
    clock: Clock
    made_from: tuple[str, ...]  # the cache keys whose entries it was made from
    count: HitCount  # where to count what the full path would have counted
    size: int  # what it holds besides the body, in bytes
    shown: str  # the Cache-Control its headers hold
    used: bool = False  # sent since the table last passed over it


class ReadyAnswers:
    """The ready answers of one app: `answer` on the way in, `remember` on the way out."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._max_entries, self._max_bytes = max_entries, max_bytes
        self._ready: OrderedDict[Key, Ready] = OrderedDict()  # in the order it passes over them
        self._by_entry: dict[str, set[Key]] = {}  # cache key -> answers made from its entry
        self._clocks: dict[tuple[object, ...], Clock] = {}
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
        ready = self._ready.get(self.key(request, by_encoding))
        if ready is None:
            return None
        clock = ready.clock
        if (now := time.time()) >= clock.until:
            if now >= clock.due:
                return None
            clock.renew(now)
        headers = request.headers
        if (hdrs.IF_NONE_MATCH in headers or hdrs.IF_MATCH in headers
                or hdrs.IF_MODIFIED_SINCE in headers):
            return None  # the full path answers 304 and 412
        if ready.shown is not clock.header:  # every response copies the headers
            ready.headers[hdrs.CACHE_CONTROL] = ready.shown = clock.header
        ready.used = True
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
                or time.time() >= due  # never sent again: only crowds out live answers
                or not isinstance(body, bytes) or not target.startswith("/")
                or not target.isascii() or len(target) > MAX_KEPT_TARGET
                or len(accept) > MAX_KEPT_ACCEPT or len(encoding) > MAX_KEPT_ACCEPT
                or any(self._cache.peek(entry_key) is not entry
                       for entry_key, entry in made_from)):
            return
        self._forget(key)  # first: the clock it let go of may be the one this answer takes
        clock = self._clock(cache_control, due)
        headers = CIMultiDict(response.headers)
        headers["X-Cache"] = "HIT"
        headers[hdrs.CACHE_CONTROL] = clock.header
        size = OVERHEAD + CACHE_CONTROL_ROOM + len(target) + len(accept) + len(encoding) + sum(
            len(name) + len(value) for name, value in headers.items())
        entry_keys = tuple(entry_key for entry_key, _ in made_from)
        self._ready[key] = Ready(body, headers, clock, entry_keys, count, size, clock.header)
        clock.users += 1
        self.nbytes += size
        for entry_key in entry_keys:
            self._by_entry.setdefault(entry_key, set()).add(key)
        while len(self._ready) > self._max_entries or self.nbytes > self._max_bytes:
            self._pass_over()

    def _clock(self, cache_control: CacheControl, due: float) -> Clock:
        """The clock of the answers made with `cache_control` and `due`, its header as of now."""
        name = _clock_name(cache_control, due)
        clock = self._clocks.get(name)
        if clock is None:
            clock = self._clocks[name] = Clock(cache_control, due)
        if (now := time.time()) >= clock.until:
            clock.renew(now)  # read with its deadline at one instant
        return clock

    def _pass_over(self) -> None:
        """Drop the first answer not sent since the table last passed over it; the sent ones
        it passes go to the end, unflagged (second chance)."""
        while True:
            key, ready = next(iter(self._ready.items()))
            if not ready.used:
                self._forget(key)
                return
            ready.used = False
            self._ready.move_to_end(key)

    def _entry_changed(self, entry_key: str) -> None:
        """The cache replaced or dropped `entry_key`: what was made from it is no longer exact."""
        for key in self._by_entry.pop(entry_key, ()):
            self._forget(key)

    def _forget(self, key: Key) -> None:
        ready = self._ready.pop(key, None)
        if ready is None:
            return
        self.nbytes -= ready.size
        clock = ready.clock
        clock.users -= 1
        if not clock.users:
            del self._clocks[_clock_name(clock.cache_control, clock.due)]
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


def _clock_name(cache_control: CacheControl, due: float) -> tuple[object, ...]:
    """What makes two answers' Cache-Control the same: its function, every value it is given,
    and when they fall due."""
    return (cache_control.func, cache_control.args, tuple(sorted(cache_control.keywords.items())),
            due)


def _nothing(_: str) -> None:
    """What a hit touches before `watch` named a cache (no answer is kept until then)."""
