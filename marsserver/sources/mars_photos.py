"""`mars-photos`: the classic Mars Rover Photos API schema.

NASA retired it at api.nasa.gov in October 2025; community mirrors still speak the schema,
so point `--api-url` at one. Its links may be plain http (upgraded by `Upstream`).
"""

from __future__ import annotations

from ..upstream import Upstream
from .base import FeedSource, Listing, Photo, dated_photos, newest_sol, require

ROVER = "curiosity"


class MarsPhotosSource(FeedSource):
    """Curiosity's latest photos through the Mars Rover Photos API (or a mirror of it)."""

    name = "mars-photos"
    default_api_url = "https://api.nasa.gov/mars-photos/api/v1"

    def __init__(self, upstream: Upstream, api_url: str | None = None,
                 api_key: str = "DEMO_KEY", rover: str = ROVER) -> None:
        super().__init__(upstream, api_url)
        self._api_key = api_key
        self._rover = rover

    async def latest(self) -> Listing:
        url = f"{self._api_url.rstrip('/')}/rovers/{self._rover}/latest_photos"
        return parse(await self._upstream.get_json(url, {"api_key": self._api_key}), self._rover)


def parse(payload: object, rover: str = ROVER) -> Listing:
    """Photos of the newest sol from a `latest_photos` (or a `photos?sol=`) answer."""
    key = "latest_photos" if isinstance(payload, dict) and "latest_photos" in payload else "photos"
    photos = dated_photos(require(payload, key, list), _photo)
    return newest_sol(MarsPhotosSource.name, rover, photos)


def _photo(item: object) -> tuple[int, Photo]:
    photo = Photo(
        id=str(require(item, "id", int)),
        camera=require(require(item, "camera", dict), "name", str),
        taken=require(item, "earth_date", str),
        img_src=require(item, "img_src", str),
    )
    return require(item, "sol", int), photo
