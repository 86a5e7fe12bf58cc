"""Query parameters and content negotiation: forgiving spellings, one clear 400 for each mistake.

A parameter is one ASCII integer in range (no repeats, signs, floats or other digits) or one
of a fixed set of words, in any case and with the usual aliases (`jpg`, `true`, `off`);
anything else is a `BadParameter` naming it and what is allowed. Parsed values are canonical
(`format=JPG` is `format=jpeg`, `preset=1080p` is `width=1920&height=1080&fit=cover`, no
`crop` is `crop=smart`), so equivalent requests share one cache entry, and unknown parameters
change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from multidict import MultiMapping

from ..errors import BadParameter
from ..imaging import (
    CROPS,
    DEFAULT_HEIGHT,
    DEFAULT_QUALITY,
    FITS,
    MAX_HEIGHT,
    MAX_WIDTH,
    MEDIA_TYPES,
    MIN_SIZE,
    PRESETS,
    Spec,
    default_quality,
)
from ..sources import Query
from ..sources.cameras import parse_cameras

MAX_PHOTO_NUMBER = 9999
MAX_SOL = 99999
QUALITY = (30, 95)
MAX_QUERY = 1024
# What the memos of parsed queries and ready answers keep of an Accept header at most: a
# browser's is about 150 characters, and one of 8 KiB (aiohttp's limit) per entry would make
# those memos a tenth of the cache's size. A longer one is answered, never remembered.
MAX_KEPT_ACCEPT = 256
_MAX_DIGITS = 6
# The formats `Accept` chooses among, smallest first: of those it names with the same q, a
# client gets the smallest.
OFFERS: dict[str, str] = {name: MEDIA_TYPES[name] for name in ("avif", "webp", "jpeg", "png")
                          if name in MEDIA_TYPES}


def int_param(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    """Query parameter `name` as an int in `low..high`; anything else is a 400 naming it."""
    text = _one(query, name, f"an integer from {low} to {high}")
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS) or not (
        low <= int(text) <= high
    ):
        raise BadParameter(f"{name} must be an integer from {low} to {high}, got {text[:20]!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class Words:
    """The values a word parameter takes, and the other spellings that mean them.

    Spellings are ASCII and matched in any case; a match is always one of `words`, so every
    spelling of a value gives the same `Spec` and the same cache key.
    """

    words: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every accepted lower-case spelling (the OpenAPI document lists them too)."""
        return (*self.words, *self.aliases)

    @property
    def allowed(self) -> str:
        aliases = "".join(
            f"; {', '.join(a for a, meant in self.aliases.items() if meant == word)} for {word}"
            for word in dict.fromkeys(self.aliases.values()))
        return f"one of {', '.join(self.words)} (any case{aliases})"

    def canonical(self, text: str) -> str | None:
        # isascii: str.lower() maps a few non-ASCII letters onto ASCII (the Kelvin sign to k).
        lowered = text.lower() if text.isascii() else ""
        return lowered if lowered in self.words else self.aliases.get(lowered)


FIT = Words(FITS)
CROP = Words(CROPS, {"centre": "center"})
PRESET = Words(tuple(PRESETS))
FORMAT = Words(tuple(MEDIA_TYPES), {"jpg": "jpeg"})
FLAG = Words(("1", "0"), {"true": "1", "yes": "1", "on": "1",
                          "false": "0", "no": "0", "off": "0"})


def word_param(query: MultiMapping[str], name: str, words: Words) -> str | None:
    """Query parameter `name` as the canonical one of `words`, or None when absent."""
    text = _one(query, name, words.allowed)
    if text is None:
        return None
    word = words.canonical(text)
    if word is None:
        raise BadParameter(f"{name} must be {words.allowed}, got {text[:20]!r}")
    return word


def flag_param(query: MultiMapping[str], name: str) -> bool:
    """Query parameter `name` as a yes or no (1/0, true/false, yes/no, on/off); absent is no."""
    return word_param(query, name, FLAG) == "1"


def _one(query: MultiMapping[str], name: str, allowed: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadParameter(f"{name} given {len(values)} times; give it once, as {allowed}")
    return values[0] if values else None


def photo_query(query: MultiMapping[str]) -> Query:
    """Which photos: `sol` (default: the newest with whole frames) and `camera` codes."""
    sol = int_param(query, "sol", -1, 0, MAX_SOL)
    cameras = _one(query, "camera", "comma-separated instrument codes")
    return Query(None if sol < 0 else sol, parse_cameras(cameras or ""))


def wallpaper_spec(query: MultiMapping[str], accept: str) -> tuple[Spec, bool]:
    """The output a `/wallpaper` query asks for, and whether its format came from `Accept`."""
    width, height, fit = _size(query)
    # Read with any fit, so a wrong one is a 400 everywhere; only cover crops, so with any
    # other fit it is the default, one cache entry with or without it.
    crop = word_param(query, "crop", CROP)
    chosen = word_param(query, "format", FORMAT)
    image_format = chosen or negotiate(accept, OFFERS, default="jpeg")
    quality = int_param(query, "quality", default_quality(image_format) or DEFAULT_QUALITY,
                        *QUALITY)
    return Spec(height, width, fit, image_format, 0 if image_format == "png" else quality,
                crop if crop and fit == "cover" else CROPS[0]), chosen is None


def _size(query: MultiMapping[str]) -> tuple[int | None, int, str]:
    preset = word_param(query, "preset", PRESET)
    fit = word_param(query, "fit", FIT)
    width: int | None
    if preset is not None:
        if "width" in query or "height" in query:
            raise BadParameter("preset cannot be combined with width or height")
        width, height = PRESETS[preset]
    else:
        height = int_param(query, "height", DEFAULT_HEIGHT, MIN_SIZE, MAX_HEIGHT)
        width = int_param(query, "width", 0, MIN_SIZE, MAX_WIDTH) or None
        if width is not None and "height" not in query:
            raise BadParameter("width needs height: give both, or height alone")
    if width is None and fit not in (None, "scale"):
        raise BadParameter(f"fit={fit} needs width and height (or a preset)")
    if width is not None and fit == "scale":
        raise BadParameter("fit=scale takes height alone; use cover or contain with width")
    return width, height, fit or ("scale" if width is None else "cover")


def negotiate(accept: str, offers: Mapping[str, str], default: str) -> str:
    """The offer whose media type `Accept` names with the highest q (earliest on a tie).

    Only types named outright count: `*/*` alone keeps `default`, so curl gets JPEG.
    """
    weights = _weights(accept)
    named = [(weights[media], -rank, name) for rank, (name, media) in enumerate(offers.items())
             if weights.get(media, 0) > 0]
    return max(named)[2] if named else default


@lru_cache(maxsize=256)  # a pure function of a few distinct headers, on every list request
def prefers(accept: str, media: str, over: str) -> bool:
    """Whether `Accept` names `media` outright and ranks it above `over` (wildcards included)."""
    weights = _weights(accept)
    other = max(weights.get(over, 0), weights.get(over.split("/")[0] + "/*", 0),
                weights.get("*/*", 0))
    return weights.get(media, 0) > other


@lru_cache(maxsize=256)  # a few distinct headers (one per browser), on every list request
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether `Accept-Encoding` takes gzip (RFC 9110 12.5.3): named, or as `x-gzip`, with a q
    above 0, or `*` above 0 when neither is named. No header (or an empty one) takes none:
    curl without `--compressed` must not get bytes it cannot read."""
    weights = _weights(accept_encoding)
    named = [weights[name] for name in ("gzip", "x-gzip") if name in weights]
    return (max(named) if named else weights.get("*", 0)) > 0


def _weights(accept: str) -> dict[str, float]:
    weights = {}
    for part in accept.split(",")[:32]:
        media, *options = (item.strip() for item in part.split(";"))
        quality = 1.0
        for option in options:
            key, _, value = option.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                if not 0 <= quality <= 1:  # also NaN
                    quality = 0.0
        if media:
            weights[media.lower()] = quality
    return weights
