"""The shared store's format: every entry round-trips, and nothing else is ever taken for one."""

from __future__ import annotations

import json
import time
from functools import partial

import pytest

from marsserver.core.entries import MAGIC, Codec, Failure, Rendition, Unreadable
from marsserver.errors import BadUpstream, InternalError, Unavailable
from marsserver.http.views import Paths, cached_listing
from marsserver.sources import Listing, Photo, Query

PHOTO = Photo(id="1", camera="NAV_LEFT_B", taken="2024-01-01T00:00:00Z",
              img_src="https://mars.nasa.gov/a.jpg", full_res="https://mars.nasa.gov/a.png")
LISTING = Listing("msl", "curiosity", 4000, (PHOTO,), newest_sol=4001, dropped={"thumbnail": 2})
CODEC = Codec(partial(cached_listing, paths=Paths()))


def test_every_kind_of_entry_round_trips():
    rendition = Rendition.of(b"\xff\xd8jpeg", "image/jpeg", last_modified="Mon, 01 Jan 2024 "
                             "00:00:00 GMT", filename="curiosity-sol1-NAV-h300.jpg")
    today = cached_listing(LISTING, Query(4000, ("NAV_LEFT_B",)), 3600.0, 1_700_000_000.5,
                           paths=Paths())
    failure = Failure("unavailable", "rate limited", 1_700_000_100.0, "token", 30)
    for entry in (b"raw image bytes", rendition, today, failure):
        assert CODEC.load(CODEC.dump(entry)) == entry


@pytest.mark.parametrize("media_type", ["image/jpeg", "image/webp", "image/avif", "image/png"])
def test_a_wallpaper_of_every_format_round_trips(media_type):
    """Another instance reads back every format this one makes (AVIF included)."""
    rendition = Rendition.of(b"bytes", media_type, filename="curiosity-sol1-NAV-h300.avif")
    assert CODEC.load(CODEC.dump(rendition)) == rendition


def test_a_failure_replays_as_the_error_it_was_with_its_expiry():
    error = Failure("unavailable", "rate limited", 1_700_000_100.0, "", 30).error()
    assert isinstance(error, Unavailable)
    assert (error.detail, error.retry_after, error.until) == ("rate limited", 30, 1_700_000_100.0)
    assert isinstance(Failure("bad_upstream", "x", 0.0).error(), BadUpstream)
    assert isinstance(Failure("internal_error", "x", 0.0).error(), InternalError)
    assert Failure("bad_upstream", "x", time.time() + 60).remembered
    assert not Failure("bad_upstream", "x", time.time() - 1).remembered


def header(**fields: object) -> bytes:
    return MAGIC + json.dumps(fields).encode() + b"\n"


@pytest.mark.parametrize("raw", [
    b"\x80\x04\x95pickled",  # a pickle: never unpickled
    b"marsserver/1\n{}\n",  # an older format
    MAGIC + b"not json\n",
    MAGIC + b"[" * 100_000 + b"\n",
    header(kind="shell"),
    header(kind="rendition", media_type="text/html", made_at=1.0),
    header(kind="rendition", media_type="image/jpeg", made_at=1.0,
           filename="x.jpg\r\nSet-Cookie: a=b"),  # header injection
    header(kind="rendition", media_type="image/jpeg", made_at="yesterday"),
    header(kind="list", fetched_at=1.0, fresh_for=1.0, sol=None, cameras=[],
           listing={"source": "msl"}),
    header(kind="list", fetched_at=1.0, fresh_for=1.0, sol=-1, cameras=[], listing={
        "source": "msl", "rover": "curiosity", "sol": 1, "photos": [], "newest_sol": None,
        "dropped": {}}),
    header(kind="list", fetched_at=1.0, fresh_for=1.0, sol=None, cameras=["no spaces"],
           listing={"source": "msl", "rover": "curiosity", "sol": 1, "photos": [],
                    "newest_sol": None, "dropped": {}}),
    header(kind="list", fetched_at=1.0, fresh_for=1.0, sol=None, cameras=[], listing={
        "source": "msl", "rover": "curiosity", "sol": True, "photos": [], "newest_sol": None,
        "dropped": {}}),
    header(kind="failure", code="os.system", detail="x", until=1.0, token=""),
])
def test_anything_else_is_unreadable(raw: bytes):
    with pytest.raises(Unreadable):
        CODEC.load(raw)


def test_views_are_rendered_again_never_served_as_stored():
    raw = header(kind="list", fetched_at=1.0, fresh_for=300.0, sol=None, cameras=[], listing={
        "source": "msl", "rover": "curiosity", "sol": 1, "newest_sol": None, "dropped": {},
        "photos": [{"id": "1", "camera": "<script>alert(1)</script>", "taken": "t",
                    "img_src": "https://mars.nasa.gov/a.jpg", "credit": "c", "full_res": None}]})
    today = CODEC.load(raw)
    assert b"<script>" not in today.html.body
    assert b"&lt;script&gt;" in today.html.body
