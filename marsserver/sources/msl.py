"""`msl`: NASA's Curiosity raw image feed on mars.nasa.gov (no API key).

The feed lists every frame the rover sends, newest sol first, thumbnails included. Only whole
frames at native resolution make wallpapers: `extended.sample_type` "full" (not "subframe",
"downsampled", "mixed", "chemcam prc" or "thumbnail") and not `is_thumbnail`. An item that
gives no sample type at all is kept: the rule cannot judge it, and dropping every such item
would empty older or odd records that are fine.

A sol is asked for with `condition_2=N:sol:in`, cameras with `search=A|B` (instrument codes),
pages with 0-based `page` (docs/feeds.md, section 1a).
"""

from __future__ import annotations

from .base import FeedSource, Photo, Query, Verdict, require, search

PER_PAGE = 100
#: Curiosity's sample types that are not whole frames, as `REASONS` labels.
_NOT_WHOLE = {"thumbnail": "thumbnail", "subframe": "subframe", "downsampled": "downsampled",
              "mixed": "mixed", "chemcam prc": "chemcam_prc"}


class MslSource(FeedSource):
    """Curiosity's raw images, straight from NASA."""

    name = "msl"
    rover = "curiosity"
    default_api_url = "https://mars.nasa.gov/api/v1/raw_image_items/"
    page_size = PER_PAGE

    def _request(self, query: Query, page: int) -> tuple[str, dict[str, str]]:
        params = {"order": "sol desc", "per_page": str(PER_PAGE), "page": str(page),
                  "condition_1": "msl:mission"}
        if query.sol is not None:
            params["condition_2"] = f"{query.sol}:sol:in"
        return self._api_url, params | search(query)

    @staticmethod
    def _items(payload: object) -> list[object]:
        return require(payload, "items", list)

    @staticmethod
    def _judge(item: object) -> Verdict:
        if require(item, "is_thumbnail", bool):
            return "thumbnail"
        extended = item.get("extended") if isinstance(item, dict) else None
        sample = extended.get("sample_type") if isinstance(extended, dict) else None
        if sample is not None and sample != "full":
            return _NOT_WHOLE.get(sample, "other") if isinstance(sample, str) else "malformed"
        return Photo(
            id=str(require(item, "id", int)),
            camera=require(item, "instrument", str),
            taken=require(item, "date_taken", str),
            img_src=require(item, "https_url", str),
            credit=require(item, "image_credit", str),
        )

