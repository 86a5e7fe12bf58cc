"""The source interface, and the logic every feed adapter shares: queries, paging, frame rules.

A source answers two questions: which photos a `Query` asks for (`photos`), and what the bytes
of one of them are (`image`). Adapters parse untrusted JSON with the `require` helpers so a
surprising feed becomes one clear `BadUpstream`, not a `KeyError` deep in a handler.

A feed adapter only says how to ask its feed for a page, where the items are in an answer,
and whether an item is a whole frame (`judge`). `FeedSource` pages through the answers and
`FeedTally` keeps the whole frames and counts the rest by reason, so the rules for paging, sols,
cameras and errors are the same for every feed.
"""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, TypeAlias, TypeVar

from ..errors import BadParameter, BadUpstream, NotFound, ServiceError
from ..upstream import Upstream
from .cameras import canonical

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Pages read for one listing at most: a busy sol is complete up to this many pages (1000
#: Curiosity or Perseverance items, thumbnails included); beyond it the listing is cut short
#: (logged).
MAX_PAGES = 10
#: Pages read at most, newest first, looking for a sol with a whole frame when no sol is asked.
MAX_PAGES_BACK = 3

#: Why items are not listed: the label values `Listing.dropped` uses (a closed set, so they
#: can label a Prometheus counter). Each item counts once, under the first rule it fails, in
#: this order: malformed, sol, the feed's frame rules, camera, duplicate.
REASONS = (
    "malformed",  # missing or mistyped fields
    "sol",  # not the sol asked for (the feed ignored our condition)
    "thumbnail",
    "subframe", "downsampled", "mixed", "chemcam_prc",  # Curiosity's other sample types
    "small",  # Perseverance: long side under 1000 px
    "strip",  # Perseverance: wider than 3:1
    "other",  # a sample type we do not know
    "camera",  # not one of the cameras asked for (the feed ignored our search)
    "duplicate",  # seen on an earlier page (the feed's order shifted between pages)
)


@dataclass(frozen=True, slots=True)
class Photo:
    """One full-size frame. `img_src` is its identity for caching: stable across list changes."""

    id: str
    camera: str
    taken: str
    img_src: str
    credit: str = "NASA/JPL-Caltech"
    full_res: str | None = None  # a larger original (PNG), for outputs bigger than img_src


@dataclass(frozen=True, slots=True)
class Query:
    """Which photos: of one sol (None: the newest sol that has any) from some cameras (none:
    any). Canonical, so equal questions are equal keys: cameras upper-cased, sorted, unique."""

    sol: int | None = None
    cameras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sol is not None and self.sol < 0:
            raise BadParameter(f"sol must be 0 or more, got {self.sol}")
        object.__setattr__(self, "cameras", canonical(self.cameras))

    @property
    def key(self) -> str:
        """A string naming this query, for caches that key by string."""
        sol = "latest" if self.sol is None else str(self.sol)
        return f"sol={sol}&camera={','.join(self.cameras)}"

    def describe(self) -> str:
        """This query's filters in words, for messages: "of sol 12 from MAST_LEFT" or ""."""
        sol = "" if self.sol is None else f"of sol {self.sol}"
        cameras = f"from {', '.join(self.cameras)}" if self.cameras else ""
        return " ".join(part for part in (sol, cameras) if part)


LATEST = Query()


@dataclass(frozen=True, slots=True)
class Listing:
    """The whole frames a query found, all of one sol.

    - `Query()` (`latest()`): the newest sol with a whole frame among the feed's newest items
      (`MAX_PAGES_BACK` pages); `newest_sol` is the feed's newest sol, which is later than
      `sol` when the newest sols hold no whole frame.
    - `Query(cameras=...)`: the newest sol with a whole frame from those cameras; `newest_sol`
      is None (the feed was searched by camera, so its answer does not say the rover's newest
      sol) unless the source knows it otherwise.
    - `Query(sol=N)`: sol N complete (up to `MAX_PAGES` pages); `newest_sol` is None unless
      the source knows it cheaply (mars-photos' `max_sol`; the demo).
    A query that finds no whole frame raises `NotFound` instead (a `BadUpstream` for
    `Query()`: the feed itself is unusable). `dropped` counts, by `REASONS` label, the items
    examined and not listed; whole frames of sols older than `sol` are not counted.
    `sol_cameras` names every camera with whole frames that sol, those a camera filter left
    out included, when known (the service fills it in for filtered lists); empty: only the
    photos' own cameras are known.
    """

    source: str
    rover: str
    sol: int
    photos: tuple[Photo, ...]
    newest_sol: int | None = None
    dropped: Mapping[str, int] = field(default_factory=dict, hash=False)
    sol_cameras: tuple[str, ...] = ()

    @property
    def cameras(self) -> tuple[str, ...]:
        """Every camera known to have whole frames this sol, sorted."""
        return tuple(sorted({*self.sol_cameras, *(photo.camera for photo in self.photos)}))


class Source(Protocol):
    """One upstream. Implement this (and pass it to `create_app`) to serve your own photos."""

    name: ClassVar[str]

    async def photos(self, query: Query) -> Listing:
        """The photos `query` asks for; raise a `ServiceError` (`NotFound`, `BadUpstream`...)
        when there are none."""
        ...

    async def latest(self) -> Listing:
        """Today's photos: `photos(Query())`."""
        ...

    async def image(self, link: str) -> bytes:
        """The encoded (JPEG or PNG) bytes behind a photo's `img_src` or `full_res`."""
        ...


class QuerySource(ABC):
    """Base of the built-in sources: `latest()` is one query among others."""

    name: ClassVar[str]

    @abstractmethod
    async def photos(self, query: Query) -> Listing: ...

    @abstractmethod
    async def image(self, link: str) -> bytes: ...

    async def latest(self) -> Listing:
        return await self.photos(LATEST)


def require(mapping: object, key: str, kind: type[T]) -> T:
    """`mapping[key]`, which must exist and be a `kind`; anything else is a bad upstream."""
    if not isinstance(mapping, Mapping):
        raise BadUpstream(f"expected a JSON object holding {key!r}")
    value = mapping.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadUpstream(f"field {key!r} missing or not a {kind.__name__}")
    return value


Verdict: TypeAlias = Photo | str  # a whole frame, or the `REASONS` label saying why not
Judge: TypeAlias = Callable[[object], Verdict]


class FeedTally:
    """The items a query's pages held: whole frames with their sols, the rest counted by reason.

    One odd item must not hide the rest: a malformed one is counted and skipped.
    """

    def __init__(self, query: Query) -> None:
        self.query = query
        self.kept: list[tuple[int, Photo]] = []
        self.dropped: Counter[str] = Counter()
        self.items = 0
        #: The last page held whole frames from other cameras and none from those asked for.
        self.off_camera = False
        self._known: int | None = None  # the newest sol, as the feed said
        self._span: tuple[int, int] | None = None  # the oldest and newest sol of any item
        self._ids: set[str] = set()

    def add(self, items: list[object], judge: Judge) -> None:
        """Tally one page of items."""
        kept, strays = len(self.kept), self.dropped["camera"]
        for item in items:
            self.items += 1
            reason = self._admit(item, judge)
            if reason is not None:
                self.dropped[reason] += 1
        self.off_camera = len(self.kept) == kept and self.dropped["camera"] > strays

    def know_newest(self, sol: int | None) -> None:
        """The feed said which sol is its newest (not every feed does)."""
        if sol is not None:
            self._known = max(sol, self._known or 0)

    @property
    def newest(self) -> int | None:
        """The feed's newest sol: as it said, or as the newest items of an unfiltered query
        show; unknown otherwise (items searched by sol or camera say nothing about it)."""
        if self._known is not None or self.query != LATEST or self._span is None:
            return self._known
        return self._span[1]

    @property
    def settled(self) -> bool:
        """Whether more pages cannot change the answer to a `sol=None` query: the feed (newest
        first) has moved past the newest sol with a whole frame, so that sol is complete."""
        if self.query.sol is not None or not self.kept or self._span is None:
            return False
        return self._span[0] < max(sol for sol, _ in self.kept)

    def listing(self, source: str, rover: str) -> Listing:
        """The whole frames of the sol the query asks for; none at all is an error."""
        if not self.kept:
            raise self._nothing(source)
        sol = max(sol for sol, _ in self.kept) if self.query.sol is None else self.query.sol
        return Listing(source, rover, sol, tuple(p for s, p in self.kept if s == sol),
                       self.newest, dict(self.dropped))

    def _admit(self, item: object, judge: Judge) -> str | None:
        try:
            sol = require(item, "sol", int)
            if self.query.sol is not None and sol != self.query.sol:
                return "sol"
            verdict = judge(item)
        except BadUpstream as error:
            log.debug("skipping feed item: %s", error.detail)
            return "malformed"
        self._see(sol)
        if isinstance(verdict, str):
            return verdict
        if self.query.cameras and verdict.camera.upper() not in self.query.cameras:
            return "camera"
        if verdict.id in self._ids:
            return "duplicate"
        self._ids.add(verdict.id)
        self.kept.append((sol, verdict))
        return None

    def _see(self, sol: int) -> None:
        oldest, newest = self._span or (sol, sol)
        self._span = (min(oldest, sol), max(newest, sol))

    def _nothing(self, source: str) -> ServiceError:
        """Why there is nothing to list: the client's question (404) or the feed (502)."""
        what = self.query.describe()
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(self.dropped.items()))
        if not self.items:
            detail = _words("the", source, "feed has no photos", what)
            if self.query.sol is not None:
                detail += " (a sol without photos, or one beyond the newest)"
        elif self.query.sol is None:
            detail = _words(f"none of the {source} feed's newest {self.items} items", what,
                            f"is a whole frame (dropped: {counts})")
        else:
            detail = _words("the", source, "feed has no whole frames", what,
                            f"(dropped: {counts})")
        return BadUpstream(detail) if self.query == LATEST else NotFound(detail)


class FeedSource(QuerySource):
    """Base of the sources whose feed is paged JSON and whose images are links in it.

    Subclasses say how to ask for a page (`_request`), where its items are (`_items`), and
    which items are whole frames (`_judge`); this class pages through the answers.
    """

    default_api_url: ClassVar[str]
    page_size: ClassVar[int | None]  # items per page; None: one answer holds them all
    rover: str

    def __init__(self, upstream: Upstream, api_url: str | None = None) -> None:
        self._upstream = upstream
        self._api_url = api_url or self.default_api_url

    async def photos(self, query: Query) -> Listing:
        tally = FeedTally(query)
        for page in itertools.count():
            url, params = self._request(query, page)
            count = self._read(tally, await self._upstream.get_json(url, params))
            if not self._turn_page(tally, page, count):
                break
        return tally.listing(self.name, self.rover)

    async def image(self, link: str) -> bytes:
        return await self._upstream.get_image(link)

    @classmethod
    def parse(cls, payload: object, query: Query = LATEST) -> Listing:
        """One answer of the feed as a listing, without the network."""
        tally = FeedTally(query)
        cls._read(tally, payload)
        return tally.listing(cls.name, cls.rover)

    @classmethod
    def _read(cls, tally: FeedTally, payload: object) -> int:
        """FeedTally one answer; returns how many items it held."""
        items = cls._items(payload)
        tally.know_newest(cls._newest(items))
        tally.add(items, cls._judge)
        return len(items)

    def _turn_page(self, tally: FeedTally, page: int, count: int) -> bool:
        """Whether to read the next page: it may hold more of the answer, within the bounds.

        A camera query stops at a page of other cameras' frames only: a feed that filters by
        camera (both NASA feeds do) never sends one, and one that does not would have us read
        every page of a sol for a camera it may not have, which any client could ask for."""
        if self.page_size is None or count < self.page_size:
            return False  # that was the last page
        if tally.settled or tally.off_camera:
            return False
        searching = tally.query.sol is None and not tally.kept
        bound = MAX_PAGES_BACK if searching else MAX_PAGES
        if page + 1 < bound:
            return True
        log.warning("%s: stopped after %d pages for %s: %s", self.name, bound, tally.query.key,
                    "no whole frame found" if searching else "the listing may be incomplete")
        return False

    @abstractmethod
    def _request(self, query: Query, page: int) -> tuple[str, dict[str, str]]:
        """The URL and query parameters that ask the feed for `page` (0-based) of `query`."""

    @staticmethod
    @abstractmethod
    def _items(payload: object) -> list[object]:
        """The items in one answer of the feed."""

    @staticmethod
    @abstractmethod
    def _judge(item: object) -> Verdict:
        """The item as a `Photo` if it is a whole frame, else the `REASONS` label why not."""

    @staticmethod
    def _newest(items: list[object]) -> int | None:
        """The feed's newest sol, if its items say so (most feeds' do not)."""
        return None


def _words(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def search(query: Query) -> dict[str, str]:
    """The NASA feeds' camera filter: instrument codes, pipe-joined, in `search`."""
    return {"search": "|".join(query.cameras)} if query.cameras else {}
