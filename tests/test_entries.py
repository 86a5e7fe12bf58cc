"""The shared store's format: every entry round-trips, and nothing else is ever taken for one."""

from __future__ import annotations

import json
import time
from functools import partial

import pytest

from marsserver.core.entries import (
    MAGIC,
    Codec,
    Failure,
    KnownPhoto,
    Rendition,
    Unreadable,
    filename,
    http_date,
)
from marsserver.errors import BadUpstream, InternalError, Unavailable
from marsserver.http.views import Paths, cached_listing
from marsserver.imaging import Spec
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
    known = KnownPhoto(PHOTO, "curiosity", 4000)
    for key, entry in (("source:a", b"raw image bytes"), ("wallpaper:a", rendition),
                       ("list:sol=4000", today), ("failed:list:", failure), ("photo:1", known)):
        assert CODEC.load(CODEC.dump(entry), key) == entry


@pytest.mark.parametrize("media_type", ["image/jpeg", "image/webp", "image/avif", "image/png"])
def test_a_wallpaper_of_every_format_round_trips(media_type):
    """Another instance reads back every format this one makes (AVIF included)."""
    rendition = Rendition.of(b"bytes", media_type, filename="curiosity-sol1-NAV-h300.avif")
    assert CODEC.load(CODEC.dump(rendition), "wallpaper:a") == rendition


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
        CODEC.load(raw, "wallpaper:a" if b"rendition" in raw else "list:")


@pytest.mark.parametrize("key", ["list:", "photo:1", "source:a", "failed:list:", "lease:list:"])
def test_a_well_formed_entry_of_another_kind_than_its_key_holds_is_unreadable(key: str):
    """Raw bytes under a list's key would be served as a list: every request a 500."""
    raw = CODEC.dump(Rendition.of(b"\xff\xd8jpeg", "image/jpeg"))
    assert CODEC.load(raw, "wallpaper:a").body == b"\xff\xd8jpeg"
    with pytest.raises(Unreadable):
        CODEC.load(raw, key)


@pytest.mark.parametrize(("field", "value"), [
    ("filename", 'wallpaper.jpg"; filename*=UTF-8\'\'invoice.html; x="'),
    ("filename", "curiosity sol1.jpg"),
    ("last_modified", 'Mon, 01 Jan 2024 00:00:00 GMT"; x'),
    ("last_modified", "yesterday; x=1"),
])
def test_a_stored_header_value_is_only_what_the_service_makes_there(field: str, value: str):
    """A quote or a semicolon from the shared store must not add a Content-Disposition
    parameter: loaded values have the characters `filename` and `http_date` make, no others."""
    made = Rendition.of(b"\xff\xd8jpeg", "image/jpeg", last_modified=http_date(PHOTO.taken),
                        filename=filename("curiosity", 1, PHOTO, Spec(height=300)))
    assert CODEC.load(CODEC.dump(made), "wallpaper:a") == made
    with pytest.raises(Unreadable):
        CODEC.load(header(kind="rendition", media_type="image/jpeg", made_at=1.0,
                          **{field: value}), "wallpaper:a")


def test_views_are_rendered_again_never_served_as_stored():
    raw = header(kind="list", fetched_at=1.0, fresh_for=300.0, sol=None, cameras=[], listing={
        "source": "msl", "rover": "curiosity", "sol": 1, "newest_sol": None, "dropped": {},
        "photos": [{"id": "1", "camera": "<script>alert(1)</script>", "taken": "t",
                    "img_src": "https://mars.nasa.gov/a.jpg", "credit": "c", "full_res": None}]})
    today = CODEC.load(raw, "list:")
    assert b"<script>" not in today.html.body
    assert b"&lt;script&gt;" in today.html.body
