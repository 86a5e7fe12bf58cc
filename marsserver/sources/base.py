"""The source interface: what every upstream adapter turns its feed into.

A source answers two questions: which photos are today's (`latest`), and what the bytes of
one of them are (`image`). Adapters parse untrusted JSON with the `require` helpers so a
surprising feed becomes one clear `BadUpstream`, not a `KeyError` deep in a handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

from ..errors import BadUpstream
from ..upstream import Upstream

log = logging.getLogger(__name__)
T = TypeVar("T")


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
class Listing:
    """Today's photos of one rover: the full frames of the newest sol in the feed."""

    source: str
    rover: str
    sol: int
    photos: tuple[Photo, ...]


class Source(Protocol):
    """One upstream. Implement this (and pass it to `create_app`) to serve your own photos."""

    name: ClassVar[str]

    async def latest(self) -> Listing:
        """Today's photos; raise a `ServiceError` (usually `BadUpstream`) when there are none."""
        ...

    async def image(self, link: str) -> bytes:
        """The encoded (JPEG or PNG) bytes behind a photo's `img_src` or `full_res`."""
        ...


def require(mapping: object, key: str, kind: type[T]) -> T:
    """`mapping[key]`, which must exist and be a `kind`; anything else is a bad upstream."""
    if not isinstance(mapping, Mapping):
        raise BadUpstream(f"expected a JSON object holding {key!r}")
    value = mapping.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadUpstream(f"field {key!r} missing or not a {kind.__name__}")
    return value


def newest_sol(source: str, rover: str, dated: list[tuple[int, Photo]]) -> Listing:
    """The listing of the newest sol among `(sol, photo)` pairs; none at all is a bad upstream."""
    if not dated:
        raise BadUpstream(f"{source} listed no usable photos")
    sol = max(sol for sol, _ in dated)
    return Listing(source, rover, sol, tuple(photo for s, photo in dated if s == sol))


def dated_photos(items: list[object], parse_item: Callable[[object], tuple[int, Photo] | None],
                 ) -> list[tuple[int, Photo]]:
    """`(sol, photo)` for every usable item: one odd item must not hide the rest."""
    dated = []
    for item in items:
        try:
            pair = parse_item(item)
        except BadUpstream as error:
            log.debug("skipping feed item: %s", error.detail)
            continue
        if pair is not None:
            dated.append(pair)
    return dated


class FeedSource:
    """Base of the sources whose feed is JSON and whose images are links in it."""

    name: ClassVar[str]
    default_api_url: ClassVar[str]

    def __init__(self, upstream: Upstream, api_url: str | None = None) -> None:
        self._upstream = upstream
        self._api_url = api_url or self.default_api_url

    async def image(self, link: str) -> bytes:
        return await self._upstream.get_image(link)
