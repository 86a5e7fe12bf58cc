"""gzip: the lists, /presets and /openapi.json are gzipped for clients that take it, compressed
once when made (never per request), with an ETag of their own and `Vary: Accept-Encoding` on
both answers; images, health, metrics and errors are never gzipped."""

from __future__ import annotations

import gzip
import hashlib
import time

import pytest
from aiohttp.test_utils import TestClient

from marsserver import Settings, create_app
from marsserver.core.entries import CachedListing, Codec, Rendition
from marsserver.http.params import accepts_gzip
from marsserver.http.views import Paths, cached_listing
from marsserver.sources import LATEST, Listing, Photo, Query

from .helpers import DEMO_PERMALINK


@pytest.fixture
async def raw_client(aiohttp_client) -> TestClient:
    """A demo app's client that shows bodies as sent: gzipped bytes stay gzipped."""
    return await aiohttp_client(create_app(Settings(source="demo")), auto_decompress=False)


TEXT = [("/", "text/html", "Accept, Accept-Encoding"),
        ("/", "application/json", "Accept, Accept-Encoding"),
        ("/api/photos", "", "Accept-Encoding"),
        ("/api/photos?sol=3990", "", "Accept-Encoding"),
        ("/presets", "", "Accept-Encoding"),
        ("/openapi.json", "", "Accept-Encoding")]


@pytest.mark.parametrize(("path", "accept", "vary"), TEXT)
async def test_text_is_gzipped_for_a_client_that_takes_gzip(raw_client, path, accept, vary):
    plain = await raw_client.get(path, headers={"Accept": accept, "Accept-Encoding": "identity"})
    packed = await raw_client.get(path, headers={"Accept": accept, "Accept-Encoding": "gzip"})
    body, packed_body = await plain.read(), await packed.read()

    assert (plain.status, packed.status) == (200, 200)
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed_body) == body
    assert len(packed_body) < len(body)
    assert int(packed.headers["Content-Length"]) == len(packed_body)
    assert packed.headers["Content-Type"] == plain.headers["Content-Type"]
    digest = hashlib.blake2b(packed_body, digest_size=16).hexdigest()
    assert packed.headers["ETag"] == f'"{digest}-gzip"'  # a tag of the bytes it names
    assert (plain.headers["Vary"], packed.headers["Vary"]) == (vary, vary)
    assert packed.headers["Cache-Control"] == plain.headers["Cache-Control"]


async def test_head_says_the_gzipped_length(raw_client):
    get = await raw_client.get("/api/photos", headers={"Accept-Encoding": "gzip"})
    head = await raw_client.head("/api/photos", headers={"Accept-Encoding": "gzip"})
    assert head.headers["Content-Encoding"] == "gzip"
    assert head.headers["Content-Length"] == str(len(await get.read()))
    assert head.headers["ETag"] == get.headers["ETag"]


@pytest.mark.parametrize(("header", "takes"), [
    ("gzip", True), ("GZIP", True), ("gzip;q=1", True), ("gzip; q=0.5", True),
    ("deflate, gzip;q=0.1, br", True), ("x-gzip", True), ("*", True), ("br, *;q=0.2", True),
    ("gzip, deflate, br, zstd", True),
    ("", False), ("identity", False), ("deflate, br", False), ("gzip;q=0", False),
    ("gzip;q=0.000", False), ("*, gzip;q=0", False), ("*;q=0", False), ("gzip;q=x", False),
    ("gzip;q=2", False),
])
def test_which_accept_encodings_take_gzip(header, takes):
    assert accepts_gzip(header) is takes


@pytest.mark.parametrize(("header", "encoding"), [
    ("gzip;q=0", None), ("br", None), ("*", "gzip"), ("deflate, gzip;q=0.5", "gzip")])
async def test_accept_encoding_is_read_with_its_q_values(raw_client, header, encoding):
    response = await raw_client.get("/api/photos", headers={"Accept-Encoding": header})
    assert response.headers.get("Content-Encoding") == encoding


async def test_without_accept_encoding_nothing_is_gzipped(raw_client):
    """What curl sends without `--compressed`: bytes it can show."""
    response = await raw_client.get("/api/photos", skip_auto_headers={"Accept-Encoding"})
    assert "Content-Encoding" not in response.headers
    assert (await response.read()).startswith(b"{")


@pytest.mark.parametrize("path", ["/api/photos", "/openapi.json"])
async def test_if_none_match_compares_the_tag_of_the_answer_the_client_would_get(raw_client,
                                                                               path):
    plain = (await raw_client.get(path, headers={"Accept-Encoding": "identity"})).headers["ETag"]
    packed = (await raw_client.get(path, headers={"Accept-Encoding": "gzip"})).headers["ETag"]
    assert plain != packed
    seen = []
    for encoding, held in (("gzip", packed), ("gzip", plain), ("identity", plain),
                           ("identity", packed), ("gzip", f"{plain}, {packed}")):
        response = await raw_client.get(path, headers={"Accept-Encoding": encoding,
                                                       "If-None-Match": held})
        body = await response.read()
        seen.append((response.status, response.headers["ETag"],
                     response.headers.get("Content-Encoding"), bool(body)))
        assert "Accept-Encoding" in response.headers["Vary"]
    assert seen == [(304, packed, None, False), (200, packed, "gzip", True),
                    (304, plain, None, False), (200, plain, None, True),
                    (304, packed, None, False)]


@pytest.mark.parametrize("path", [
    "/wallpaper?height=100", "/wallpaper?height=100&format=png", DEMO_PERMALINK,
    DEMO_PERMALINK + "&format=webp", "/favicon.ico"])
async def test_images_are_never_gzipped_nor_vary_on_accept_encoding(raw_client, path):
    for _ in range(2):  # made, then a ready or cached answer
        response = await raw_client.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.status == 200
        assert response.content_type.startswith("image/")
        assert "Content-Encoding" not in response.headers
        assert "Accept-Encoding" not in response.headers.get("Vary", "")


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/nope", "/api/photos?sol=x"])
async def test_answers_made_for_each_request_are_not_gzipped(raw_client, path):
    response = await raw_client.get(path, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers
    assert "Accept-Encoding" not in response.headers.get("Vary", "")


async def test_a_list_is_gzipped_once_when_made_never_per_request(raw_client, monkeypatch):
    calls: list[int] = []
    real = gzip.compress

    def counting(data: bytes, *args: object, **kwargs: object) -> bytes:
        calls.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(gzip, "compress", counting)
    await raw_client.get("/api/photos", headers={"Accept-Encoding": "gzip"})
    assert len(calls) == 2  # the list's JSON and its HTML, when the list was made
    for path, accept in (("/", "text/html"), ("/", ""), ("/api/photos", ""),
                         ("/openapi.json", ""), ("/presets", "")):
        for conditional in ({}, {"If-None-Match": '"other"'}):  # ready, and the full path
            response = await raw_client.get(path, headers={
                "Accept": accept, "Accept-Encoding": "gzip", **conditional})
            assert response.headers["Content-Encoding"] == "gzip"
    assert len(calls) == 2


def test_the_same_text_always_gzips_to_the_same_bytes(monkeypatch):
    """No timestamp in the gzip header: every instance (and every restart) sends the same
    bytes under the same ETag."""
    body = b'{"photos": []}' * 20
    made = []
    for now in (1_000_000_000.0, 1_700_000_000.0):
        monkeypatch.setattr(time, "time", lambda now=now: now)
        made.append(Rendition.of(body, "application/json", compress=True))
    first, second = (rendition.gzipped for rendition in made)
    assert first is not None
    assert second is not None
    assert first.body == second.body
    digest = hashlib.blake2b(first.body, digest_size=16).hexdigest()
    assert first.etag == second.etag == f'"{digest}-gzip"'


def test_an_image_or_text_that_does_not_shrink_keeps_no_gzipped_twin():
    assert Rendition.of(b"\xff\xd8\xff" + bytes(range(256)), "image/jpeg").gzipped is None
    assert Rendition.of(b"{}", "application/json", compress=True).gzipped is None


def test_a_list_read_back_from_a_shared_cache_is_gzipped_again():
    """Redis holds the parsed list, never its views: an instance that reads it renders and
    gzips them itself."""
    def make(listing: Listing, query: Query, fresh_for: float, fetched_at: float,
             ) -> CachedListing:
        return cached_listing(listing, query, fresh_for, fetched_at, paths=Paths())

    photo = Photo(id="1", camera="NAV_LEFT_B", taken="2026-08-30T13:52:10Z", img_src="a.jpg")
    made = make(Listing("demo", "curiosity", 4000, (photo,) * 5), LATEST, 300.0, 1e9)
    codec = Codec(make)
    loaded = codec.load(codec.dump(made), "list:sol=latest")
    assert isinstance(loaded, CachedListing)
    for view in ("json", "html"):
        again, first = getattr(loaded, view).gzipped, getattr(made, view).gzipped
        assert again is not None
        assert (again.body, again.etag) == (first.body, first.etag)
