"""Conditional requests (RFC 9110, section 13): If-None-Match and If-Modified-Since answer 304
without a body, If-Match and If-Unmodified-Since 412 naming the current version; ETags are
strong and compared as the RFC says, on lists, wallpapers, permalinks and the documents."""

from __future__ import annotations

import pytest

from .helpers import DEMO_PERMALINK


@pytest.mark.parametrize("path", ["/wallpaper?height=200", "/", "/api/photos"])
async def test_if_none_match_gives_304_without_a_body(demo_client, path):
    first = await demo_client.get(path)
    tag = first.headers["ETag"]
    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = await demo_client.get(path, headers={"If-None-Match": header})
        assert again.status == 304
        assert await again.read() == b""
        assert again.headers["ETag"] == tag
    miss = await demo_client.get(path, headers={"If-None-Match": '"other"'})
    assert miss.status == 200


async def test_if_none_match_lists_may_omit_the_spaces(demo_client):
    etag = (await demo_client.get(DEMO_PERMALINK)).headers["ETag"]
    response = await demo_client.get(DEMO_PERMALINK, headers={"If-None-Match": f'"other",{etag}'})
    assert response.status == 304


async def test_a_permalink_is_cacheable_forever_and_answers_conditional_requests(demo_client):
    photo = (await (await demo_client.get("/api/photos")).json())["photos"][1]
    url = photo["permalink"] + "&preset=720p&format=png"
    made = await demo_client.get(url)
    assert made.status == 200
    assert made.headers["Cache-Control"] == "max-age=31536000, immutable"
    assert made.headers["Last-Modified"] == "Mon, 01 Jan 2024 12:07:00 GMT"  # the photo's own
    assert made.headers["Content-Type"] == "image/png"
    etag = made.headers["ETag"]
    assert etag.startswith('"')  # strong: no W/

    for conditional in ({"If-None-Match": etag}, {"If-None-Match": f'W/{etag}, "x"'},
                        {"If-Modified-Since": "Mon, 01 Jan 2024 12:07:00 GMT"},
                        {"If-Modified-Since": "Tue, 02 Jan 2024 00:00:00 GMT"}):
        answer = await demo_client.get(url, headers=conditional)
        assert (answer.status, await answer.read()) == (304, b""), conditional
    older = await demo_client.get(url, headers={"If-Modified-Since":
                                                 "Sun, 31 Dec 2023 00:00:00 GMT"})
    assert older.status == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    both = await demo_client.get(url, headers={"If-None-Match": '"other"',
                                               "If-Modified-Since": made.headers["Last-Modified"]})
    assert both.status == 200


async def test_a_permalink_not_modified_since_its_date_is_a_304(demo_client):
    modified = (await demo_client.get(DEMO_PERMALINK)).headers["Last-Modified"]
    response = await demo_client.get(DEMO_PERMALINK, headers={"If-Modified-Since": modified})
    assert response.status == 304


async def test_if_match_naming_another_version_is_a_412(demo_client):
    made = await demo_client.get("/api/photos")
    etag = made.headers["ETag"]
    assert (await demo_client.get("/api/photos", headers={"If-Match": etag})).status == 200
    assert (await demo_client.get("/api/photos", headers={"If-Match": "*"})).status == 200
    stale = await demo_client.get("/api/photos", headers={"If-Match": '"older"'})
    assert stale.status == 412
    assert (await stale.json())["error"] == "precondition_failed"
    weak = await demo_client.get("/api/photos", headers={"If-Match": f"W/{etag}"})
    assert weak.status == 412  # If-Match compares strongly


async def test_if_match_naming_another_version_is_a_412_naming_the_current_one(demo_client):
    etag = (await demo_client.get(DEMO_PERMALINK)).headers["ETag"]
    response = await demo_client.get(DEMO_PERMALINK, headers={"If-Match": '"another"'})
    assert response.status == 412
    assert response.headers["ETag"] == etag
    assert await response.json() == {
        "error": "precondition_failed",
        "detail": f"If-Match or If-Unmodified-Since names another version than {etag}"}


async def test_if_match_compares_strongly_so_a_weak_tag_never_matches(demo_client):
    etag = (await demo_client.get(DEMO_PERMALINK)).headers["ETag"]
    response = await demo_client.get(DEMO_PERMALINK, headers={"If-Match": f"W/{etag}"})
    assert response.status == 412


async def test_if_unmodified_since_before_the_photo_is_a_412_and_errors_vary(demo_client):
    photo = (await (await demo_client.get("/api/photos")).json())["photos"][0]
    url = photo["permalink"] + "&height=100"
    made = await demo_client.get(url)
    old = await demo_client.get(url, headers={"If-Unmodified-Since":
                                              "Mon, 01 Jan 1990 00:00:00 GMT"})
    assert old.status == 412
    same = await demo_client.get(url, headers={"If-Unmodified-Since":
                                               made.headers["Last-Modified"]})
    assert same.status == 200
    for accept in ("text/html", "application/json"):
        missing = await demo_client.get("/api/photos?sol=99999", headers={"Accept": accept})
        assert (missing.status, missing.headers["Vary"]) == (404, "Accept")


async def test_presets_and_the_contract_carry_validators_and_freshness(demo_client):
    for path in ("/presets", "/openapi.json"):
        first = await demo_client.get(path)
        assert first.headers["Cache-Control"] == "max-age=3600"
        again = await demo_client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status == 304
