"""Permalinks, `/photos/{id}/wallpaper`: one photo for good, whatever the list says later and
on any worker; immutable for caches, varying only with a negotiated format; an unknown id is
a JSON 404 that quotes it back, cut short."""

from __future__ import annotations

from marsserver import Settings, create_app

from .helpers import DEMO_PERMALINK, Clock, pipeline_of, until
from .stub import Stub


async def test_a_permalink_is_immutable_and_varies_only_with_a_negotiated_format(demo_client):
    negotiated = await demo_client.get(DEMO_PERMALINK)
    assert negotiated.status == 200
    assert negotiated.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert negotiated.headers["Vary"] == "Accept"
    assert "Content-Disposition" not in negotiated.headers
    chosen = await demo_client.get(DEMO_PERMALINK + "&format=jpeg")
    assert "Vary" not in chosen.headers
    download = await demo_client.get(DEMO_PERMALINK + "&download=1")
    assert download.headers["Content-Disposition"].startswith('attachment; filename="')


async def test_a_permalink_keeps_its_bytes_after_the_list_moves_on(stub: Stub, client_for,
                                                                    clock: Clock):
    client = await client_for(stub.settings(info_ttl=60))
    first = (await (await client.get("/api/photos")).json())["photos"][0]
    before = await (await client.get(first["permalink"] + "?height=120")).read()
    stub.feed_images = stub.images_not_in_feed()[:1]  # a new sol: a different photo list
    clock.now += 61
    await client.get("/api/photos")  # stale; the refresh brings the new list
    await until(lambda: not pipeline_of(client).background)
    listed = await (await client.get("/api/photos")).json()
    assert first["permalink"] not in {p["permalink"] for p in listed["photos"]}

    after = await client.get(first["permalink"] + "?height=120")
    assert (after.status, await after.read()) == (200, before)


async def test_a_permalink_answers_on_a_worker_that_never_listed_photos(aiohttp_client):
    first = await aiohttp_client(create_app(Settings(source="demo")))
    second = await aiohttp_client(create_app(Settings(source="demo")))  # or after a restart
    permalink = (await (await first.get("/api/photos")).json())["photos"][0]["permalink"]
    assert (await second.get(permalink + "?height=100")).status == 200


async def test_an_unknown_photo_is_a_json_404(demo_client):
    for path in ("/photos/nope/wallpaper", "/photos/..%2F/wallpaper", "/photos/%00/wallpaper"):
        response = await demo_client.get(path)
        assert response.status == 404, path
        assert (await response.json())["error"] == "not_found"


async def test_an_unknown_photo_id_is_quoted_back_cut_to_80_characters(demo_client):
    response = await demo_client.get("/photos/" + "%25" + "x" * 200 + "/wallpaper")
    assert response.status == 404
    assert await response.json() == {"error": "not_found",
                                     "detail": "no photo " + repr("%" + "x" * 79)}
