"""What the caches hold, and the one format it takes in a shared store: data, never code.

Anyone who can write to a shared Redis must not be able to run code in every instance, nor
break them: so nothing is pickled. An entry is a line naming the format, a JSON header, and raw
bytes (an image) or nothing (a listing, a failure). Loading validates every field; HTML and
JSON views are rendered again from the parsed listing (never served as stored), ETags are
recomputed from the bytes, and anything that does not parse is a miss, not an error.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from ..errors import InternalError, ServiceError, error_of
from ..imaging import MEDIA_TYPES as IMAGE_TYPES
from ..imaging import Spec
from ..sources import Listing, Photo, Query

MAGIC = b"marsserver/2\n"
MEDIA_TYPES = frozenset(IMAGE_TYPES.values())
# The kind of entry each stage of keys holds (the part of a key before its first colon).
KINDS = {"list": "list", "photo": "photo", "wallpaper": "rendition", "source": "bytes",
         "failed": "failure"}
# What `filename` and `http_date` make, and so all a stored header value may be.
_PLAIN = re.compile(r"[^A-Za-z0-9_-]")
_FILENAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", re.ASCII)
# zlib's own default: nearly the size of the slowest level, in a fraction of its time.
GZIP_LEVEL = 6


class Unreadable(ValueError):
    """A stored value that is not one of ours (garbage, an older format, planted data)."""


@dataclass(frozen=True, slots=True)
class Rendition:
    """Bytes as served, with what HTTP caching needs, computed once when they were made."""

    body: bytes
    media_type: str
    etag: str
    made_at: float
    last_modified: str | None = None  # an HTTP date
    filename: str | None = None
    gzipped: Rendition | None = None  # the same, gzipped, with an ETag of its own

    @classmethod
    def of(cls, body: bytes, media_type: str, last_modified: str | None = None,
           filename: str | None = None, made_at: float | None = None,
           compress: bool = False) -> Rendition:
        """`compress` (text: HTML, JSON) also gzips the body, here, once: an answer sent many
        times is not compressed again for each client that takes gzip."""
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        made_at = time.time() if made_at is None else made_at
        gzipped = None
        if compress:
            # mtime=0: the same body always gzips to the same bytes, on any instance.
            packed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
            if len(packed) < len(body):
                # Its own tag, of its own bytes: another zlib may pack the same body otherwise.
                packed_digest = hashlib.blake2b(packed, digest_size=16).hexdigest()
                gzipped = cls(packed, media_type, f'"{packed_digest}-gzip"', made_at,
                              last_modified, filename)
        return cls(body, media_type, f'"{digest}"', made_at, last_modified, filename, gzipped)

    @property
    def nbytes(self) -> int:
        return len(self.body) + 256 + (self.gzipped.nbytes if self.gzipped else 0)


@dataclass(frozen=True, slots=True)
class CachedListing:
    """A listing, its JSON and its HTML gallery, rendered once per fetch, with the query that
    found it and how long it is fresh (a sol long past changes rarely, the newest often)."""

    listing: Listing
    query: Query
    fresh_for: float
    json: Rendition
    html: Rendition

    @property
    def fetched_at(self) -> float:
        return self.json.made_at

    @property
    def nbytes(self) -> int:
        # The listing's objects take about as much as their JSON.
        return len(self.json.body) + self.json.nbytes + self.html.nbytes


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure as every instance sees it: what to answer, and until when.

    `until` is when it stops being remembered (wall clock, shared by instances); a failure that
    is not remembered (`until` already past) is still shown to the followers of the leader
    whose lease `token` it names, so one failed attempt is one upstream call everywhere.
    """

    code: str
    detail: str
    until: float
    token: str = ""
    retry_after: int | None = None

    @property
    def remembered(self) -> bool:
        return self.until > time.time()

    def error(self) -> ServiceError:
        error = error_of(self.code, self.detail, self.retry_after) or InternalError(self.detail)
        error.until = self.until
        return error

    @property
    def nbytes(self) -> int:
        return 256 + len(self.detail)


@dataclass(frozen=True, slots=True)
class KnownPhoto:
    """A photo some listing named, kept so its permalink answers after the list moved on."""

    photo: Photo
    rover: str
    sol: int

    @property
    def nbytes(self) -> int:
        return 512


Entry = Rendition | CachedListing | Failure | KnownPhoto | bytes
MakeListing = Callable[[Listing, Query, float, float], CachedListing]


class Codec:
    """Entries to bytes and back. Lists are rebuilt with `make_listing` (the HTTP layer's views)."""

    def __init__(self, make_listing: MakeListing) -> None:
        self._make_listing = make_listing

    def dump(self, entry: Entry) -> bytes:
        if isinstance(entry, bytes):
            return _pack({"kind": "bytes"}, entry)
        if isinstance(entry, Rendition):
            return _pack({"kind": "rendition", "media_type": entry.media_type,
                          "made_at": entry.made_at, "last_modified": entry.last_modified,
                          "filename": entry.filename}, entry.body)
        if isinstance(entry, KnownPhoto):
            return _pack({"kind": "photo", "photo": dataclasses.asdict(entry.photo),
                          "rover": entry.rover, "sol": entry.sol})
        if isinstance(entry, CachedListing):
            return _pack({"kind": "list", "fetched_at": entry.fetched_at,
                          "fresh_for": entry.fresh_for, "sol": entry.query.sol,
                          "cameras": list(entry.query.cameras),
                          "listing": dataclasses.asdict(entry.listing)})
        return _pack({"kind": "failure", **dataclasses.asdict(entry)})

    def load(self, raw: bytes, key: str) -> Entry:
        """The entry `raw` holds, of the kind `key` holds; `Unreadable` for anything else (a
        well-formed entry of another kind would break whoever reads it)."""
        header, body = _unpack(raw)
        kind = header.get("kind")
        stage = key.partition(":")[0]
        if kind != KINDS.get(stage):
            raise Unreadable(f"a {kind!r} entry under a {stage!r} key")
        if kind == "bytes":
            return body
        if kind == "rendition":
            return _rendition(header, body)
        if kind == "list":
            return self._make_listing(_listing(_field(header, "listing", dict)), _query(header),
                                    _field(header, "fresh_for", float),
                                    _field(header, "fetched_at", float))
        if kind == "failure":
            return _failure(header)
        if kind == "photo":
            return KnownPhoto(_photo(header.get("photo")), _field(header, "rover", str),
                         _field(header, "sol", int))
        raise Unreadable(f"unknown kind {kind!r}")


def _pack(header: dict[str, Any], body: bytes = b"") -> bytes:
    return MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n" + body


def _unpack(raw: bytes) -> tuple[dict[str, Any], bytes]:
    if not raw.startswith(MAGIC):
        raise Unreadable("not a marsserver/2 entry")
    line, _, body = raw[len(MAGIC):].partition(b"\n")
    try:
        header = json.loads(line)
    except (ValueError, RecursionError):
        raise Unreadable("header is not JSON") from None
    if not isinstance(header, dict):
        raise Unreadable("header is not a JSON object")
    return header, body


def _field(mapping: dict[str, Any], name: str, kind: type, optional: bool = False) -> Any:
    value = mapping.get(name)
    if value is None and optional:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is float and isinstance(value, float) and not 0 <= value < 1e11:
        raise Unreadable(f"{name} is not a time or a duration: {value!r}")  # NaN, inf, < 0
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Unreadable(f"{name} missing or not a {kind.__name__}")
    return value


def _text(mapping: dict[str, Any], name: str, shape: re.Pattern[str]) -> str | None:
    """An optional string that ends up in an HTTP header: only what this service makes there
    (a quote or a semicolon would add a parameter of its own)."""
    value = _field(mapping, name, str, optional=True)
    if value is not None and not shape.fullmatch(value):
        raise Unreadable(f"{name} is not one this service makes")
    return value  # type: ignore[no-any-return]


def _rendition(header: dict[str, Any], body: bytes) -> Rendition:
    media_type = _field(header, "media_type", str)
    if media_type not in MEDIA_TYPES:
        raise Unreadable(f"media type {media_type!r}")
    return Rendition.of(body, media_type, last_modified=_text(header, "last_modified", _HTTP_DATE),
                        filename=_text(header, "filename", _FILENAME),
                        made_at=_field(header, "made_at", float))


def _listing(data: dict[str, Any]) -> Listing:
    dropped = _field(data, "dropped", dict)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in dropped.values()):
        raise Unreadable("dropped counts are not integers")
    sol_cameras = _field(data, "sol_cameras", list, optional=True) or []
    if not all(isinstance(code, str) for code in sol_cameras):
        raise Unreadable("sol_cameras are not strings")
    return Listing(
        source=_field(data, "source", str), rover=_field(data, "rover", str),
        sol=_field(data, "sol", int),
        photos=tuple(_photo(photo) for photo in _field(data, "photos", list)),
        newest_sol=_field(data, "newest_sol", int, optional=True), dropped=dropped,
        sol_cameras=tuple(sol_cameras))


def _query(header: dict[str, Any]) -> Query:
    cameras = _field(header, "cameras", list)
    if not all(isinstance(code, str) for code in cameras):
        raise Unreadable("cameras are not strings")
    try:
        return Query(_field(header, "sol", int, optional=True), tuple(cameras))
    except ServiceError as error:  # a negative sol, a code of the wrong shape
        raise Unreadable(error.detail) from None


def _photo(data: object) -> Photo:
    if not isinstance(data, dict):
        raise Unreadable("a photo is not a JSON object")
    return Photo(**{f.name: _field(data, f.name, str, optional=f.default is None)
                    for f in dataclasses.fields(Photo)})


def _failure(header: dict[str, Any]) -> Failure:
    code = _field(header, "code", str)
    if error_of(code, "") is None:
        raise Unreadable(f"failure code {code!r}")
    retry_after = _field(header, "retry_after", int, optional=True)
    return Failure(code, _field(header, "detail", str)[:500], _field(header, "until", float),
                   _field(header, "token", str), retry_after)


def moment(taken: str) -> datetime | None:
    """A feed's date (ISO 8601, with a zone or UTC without) in UTC; None if unreadable."""
    try:
        moment = datetime.fromisoformat(taken.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def http_date(taken: str) -> str | None:
    """A feed's date (ISO 8601, with a zone or UTC without) as an HTTP date; None if unreadable."""
    when = moment(taken)
    return None if when is None else format_datetime(when, usegmt=True)


def filename(rover: str, sol: int, photo: Photo, spec: Spec) -> str:
    """A download name that says what it is: rover, sol, camera and size."""
    size = f"{spec.width}x{spec.height}" if spec.width else f"h{spec.height}"
    extension = "jpg" if spec.format == "jpeg" else spec.format
    return f"{_plain(rover)}-sol{sol}-{_plain(photo.camera)}-{size}.{extension}"


def _plain(text: str) -> str:
    """The header stays plain ASCII, whatever the feed (or a shared cache) says."""
    return _PLAIN.sub("_", text)[:64]
