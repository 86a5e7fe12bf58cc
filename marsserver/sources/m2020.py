"""`m2020`: NASA's Perseverance raw image feed on mars.nasa.gov (no API key).

Today's photos are the full frames (`sample_type: "Full"`, not thumbnails) of the newest sol
in the first page. Each offers a 1200 px `large` JPEG, the default start for wallpapers, and
a `full_res` PNG, used for outputs larger than that.
"""

from __future__ import annotations

from .base import FeedSource, Listing, Photo, dated_photos, newest_sol, require

PER_PAGE = 100


class M2020Source(FeedSource):
    """Perseverance's raw images, straight from NASA."""

    name = "m2020"
    default_api_url = "https://mars.nasa.gov/rss/api/"

    async def latest(self) -> Listing:
        return parse(await self._upstream.get_json(self._api_url, {
            "feed": "raw_images", "category": "mars2020", "feedtype": "json",
            "num": str(PER_PAGE), "page": "0", "order": "sol desc",
        }))


def parse(payload: object) -> Listing:
    """The newest sol's full frames from a `raw_images` answer."""
    photos = dated_photos(require(payload, "images", list), _full_frame)
    return newest_sol(M2020Source.name, "perseverance", photos)


def _full_frame(item: object) -> tuple[int, Photo] | None:
    if require(item, "sample_type", str) != "Full":
        return None
    files = require(item, "image_files", dict)
    full_res = files.get("full_res")
    photo = Photo(
        id=require(item, "imageid", str),
        camera=require(require(item, "camera", dict), "instrument", str),
        taken=require(item, "date_taken_utc", str),
        img_src=require(files, "large", str),
        credit=require(item, "credit", str),
        full_res=full_res if isinstance(full_res, str) else None,
    )
    return require(item, "sol", int), photo
