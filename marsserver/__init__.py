"""marsserver: the Mars rovers' newest photos as wallpapers, over aiohttp.

Public API: `create_app`, `Settings`, and the `Source` interface (with `Photo` and `Listing`)
for bringing your own photos. Everything else is private.
"""

from .http.app import create_app
from .settings import Settings
from .sources import Listing, Photo, Source

__all__ = ["Listing", "Photo", "Settings", "Source", "create_app"]
