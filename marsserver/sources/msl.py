"""`msl`: NASA's Curiosity raw image feed on mars.nasa.gov (no API key).

The feed lists every frame the rover sends, thumbnails included, newest sol first. Today's
photos are the full-size frames of the newest sol in the first page.
"""

from __future__ import annotations

from .base import FeedSource, Listing, Photo, dated_photos, newest_sol, require

PER_PAGE = 100


class MslSource(FeedSource):
    """Curiosity's raw images, straight from NASA."""

    name = "msl"
    default_api_url = "https://mars.nasa.gov/api/v1/raw_image_items/"

    async def latest(self) -> Listing:
        return parse(await self._upstream.get_json(self._api_url, {
            "order": "sol desc", "per_page": str(PER_PAGE), "page": "0",
            "condition_1": "msl:mission",
        }))


def parse(payload: object) -> Listing:
    """The newest sol's full frames from a `raw_image_items` answer."""
    photos = dated_photos(require(payload, "items", list), _full_frame)
    return newest_sol(MslSource.name, "curiosity", photos)


def _full_frame(item: object) -> tuple[int, Photo] | None:
    """`(sol, photo)` for a full-size frame, None for a thumbnail."""
    extended = item.get("extended") if isinstance(item, dict) else None
    sample = extended.get("sample_type") if isinstance(extended, dict) else None
    if require(item, "is_thumbnail", bool) or sample == "thumbnail":
        return None
    photo = Photo(
        id=str(require(item, "id", int)),
        camera=require(item, "instrument", str),
        taken=require(item, "date_taken", str),
        img_src=require(item, "https_url", str),
        credit=require(item, "image_credit", str),
    )
    return require(item, "sol", int), photo
