"""`mars-photos`: the classic Mars Rover Photos API schema.

NASA retired it at api.nasa.gov in October 2025; community mirrors still speak the schema,
so point `--api-url` at one. Its links may be plain http (upgraded by `Upstream`).

One request answers a query, unpaged: `latest_photos`, or `photos?sol=N`. It lists only
full-size photos, so every item is kept. Cameras are filtered here, not by the API (its
`camera` parameter takes one short name, and mirrors differ), so a camera query without a sol
lists the newest sol only. Photos carry `rover.max_sol` (in all but the oldest answers),
which tells every listing the newest sol.
"""

from __future__ import annotations

from ..errors import BadUpstream
from ..upstream import Upstream
from .base import FeedSource, Photo, Query, Verdict, require

ROVER = "curiosity"


class MarsPhotosSource(FeedSource):
    """A rover's photos through the Mars Rover Photos API (or a mirror of it)."""

    name = "mars-photos"
    rover = ROVER
    default_api_url = "https://api.nasa.gov/mars-photos/api/v1"
    page_size = None

    def __init__(self, upstream: Upstream, api_url: str | None = None,
                 api_key: str = "DEMO_KEY", rover: str = ROVER) -> None:
        super().__init__(upstream, api_url)
        self._api_key = api_key
        self.rover = rover

    def _request(self, query: Query, page: int) -> tuple[str, dict[str, str]]:
        rover = f"{self._api_url.rstrip('/')}/rovers/{self.rover}"
        if query.sol is None:
            return f"{rover}/latest_photos", {"api_key": self._api_key}
        return f"{rover}/photos", {"sol": str(query.sol), "api_key": self._api_key}

    @staticmethod
    def _items(payload: object) -> list[object]:
        latest = isinstance(payload, dict) and "latest_photos" in payload
        return require(payload, "latest_photos" if latest else "photos", list)

    @staticmethod
    def _newest(items: list[object]) -> int | None:
        try:
            return require(require(items[0], "rover", dict), "max_sol", int) if items else None
        except BadUpstream:
            return None  # the oldest answers do not say

    @staticmethod
    def _judge(item: object) -> Verdict:
        return Photo(
            id=str(require(item, "id", int)),
            camera=require(require(item, "camera", dict), "name", str),
            taken=require(item, "earth_date", str),
            img_src=require(item, "img_src", str),
        )
