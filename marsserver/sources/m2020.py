"""`m2020`: NASA's Perseverance raw image feed on mars.nasa.gov (no API key).

Its `sample_type` "Full" is not enough for a wallpaper: it includes 1280x256 horizon strips
and small tiles. A whole frame here is "Full", with a long side of at least `MIN_LONG_SIDE`
pixels and at most `MAX_ASPECT`:1, by `extended.dimension` "(w,h)", the delivered size. An
unknown size ("UNK", which the feed writes for fields it lacks, or no dimension) is kept:
the rules cannot judge it, and the resizer refuses images it cannot handle anyway.

Each photo offers a 1200 px `large` JPEG, the default start for wallpapers, and a `full_res`
PNG, used for outputs larger than that. A sol is asked for with
`condition_2=N:sol:gte&condition_3=N:sol:lte`, cameras with `search=A|B` (instrument codes;
a comma-separated list matches nothing), pages of at most 100 with 0-based `page`
(docs/feeds.md, section 1b).
"""

from __future__ import annotations

import re

from .base import FeedSource, Photo, Query, Verdict, require, search

PER_PAGE = 100  # the feed's cap: larger values are silently reduced
MIN_LONG_SIDE = 1000
MAX_ASPECT = 3.0
_SIZE = re.compile(r"\((\d{1,6}),(\d{1,6})\)")


class M2020Source(FeedSource):
    """Perseverance's raw images, straight from NASA."""

    name = "m2020"
    rover = "perseverance"
    default_api_url = "https://mars.nasa.gov/rss/api/"
    page_size = PER_PAGE

    def _request(self, query: Query, page: int) -> tuple[str, dict[str, str]]:
        params = {"feed": "raw_images", "category": "mars2020", "feedtype": "json",
                  "num": str(PER_PAGE), "page": str(page), "order": "sol desc"}
        if query.sol is not None:
            params |= {"condition_2": f"{query.sol}:sol:gte",
                       "condition_3": f"{query.sol}:sol:lte"}
        return self._api_url, params | search(query)

    @staticmethod
    def _items(payload: object) -> list[object]:
        return require(payload, "images", list)

    @staticmethod
    def _judge(item: object) -> Verdict:
        sample = require(item, "sample_type", str)
        if sample != "Full":
            return "thumbnail" if sample == "Thumbnail" else "other"
        reason = _shape(item)
        if reason is not None:
            return reason
        files = require(item, "image_files", dict)
        full_res = files.get("full_res")
        return Photo(
            id=require(item, "imageid", str),
            camera=require(require(item, "camera", dict), "instrument", str),
            taken=require(item, "date_taken_utc", str),
            img_src=require(files, "large", str),
            credit=require(item, "credit", str),
            full_res=full_res if isinstance(full_res, str) else None,
        )


def _shape(item: object) -> str | None:
    """"small" or "strip" if the delivered size rules the frame out; None if fine or unknown."""
    extended = item.get("extended") if isinstance(item, dict) else None
    dimension = extended.get("dimension") if isinstance(extended, dict) else None
    size = _SIZE.fullmatch(dimension) if isinstance(dimension, str) else None
    if size is None:
        return None
    short, long = sorted(int(side) for side in size.groups())
    if long < MIN_LONG_SIDE:
        return "small"
    return "strip" if long > MAX_ASPECT * short else None
