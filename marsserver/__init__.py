"""marsserver: the Mars rovers' newest photos as wallpapers, over aiohttp.

Public API: `create_app`, `Settings`, and the `Source` interface (with `Photo`, `Listing`,
`Query` and `QuerySource`, the base class for sources that list any sol and camera) for
bringing your own photos. Everything else is private: modules may move between releases.
"""

from .http.app import create_app
from .settings import Settings
from .sources import Listing, Photo, Query, QuerySource, Source

__all__ = ["Listing", "Photo", "Query", "QuerySource", "Settings", "Source", "create_app"]
