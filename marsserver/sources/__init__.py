"""Sources of photos: one small adapter per upstream behind the `Source` interface."""

from __future__ import annotations

from ..settings import Settings
from ..upstream import Upstream
from .base import LATEST, REASONS, Listing, Photo, Query, QuerySource, Source
from .demo import DemoSource
from .m2020 import M2020Source
from .mars_photos import MarsPhotosSource
from .msl import MslSource

__all__ = ["LATEST", "REASONS", "Listing", "Photo", "Query", "QuerySource", "Source",
           "default_image_hosts", "make_source"]

NASA_IMAGE_HOSTS = ("mars.nasa.gov", "mars.jpl.nasa.gov")


def default_image_hosts(settings: Settings) -> tuple[str, ...]:
    """The hosts image links may point at: the operator's list, else NASA's own."""
    return settings.image_hosts or NASA_IMAGE_HOSTS


def make_source(settings: Settings, upstream: Upstream) -> Source:
    """The source `settings.source` names, configured from `settings`."""
    rover = settings.rover or "curiosity"
    if settings.source == "demo":
        return DemoSource(rover)
    if settings.source == "mars-photos":
        return MarsPhotosSource(upstream, settings.api_url, settings.api_key, rover)
    if settings.source == "m2020":
        return M2020Source(upstream, settings.api_url)
    return MslSource(upstream, settings.api_url)
