"""A failed request as each client reads it: browsers get an HTML page with advice (what
failed, when to try again, the gallery while photos are cached, `--source demo` to those
running the default source); API clients, and clients that send no Accept, get JSON."""

from __future__ import annotations

import logging
import re

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from pytest_aiohttp import AiohttpClient

from marsserver import Settings, create_app
from marsserver.errors import BadUpstream, Unavailable

from .helpers import Down
from .stub import Stub

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HTML = {"Accept": "text/html"}


async def test_browsers_get_an_error_page_api_clients_json(stub: Stub, client_for):
    stub.fail("feed", 503)
    client = await client_for(stub.settings(retries=0))
    page = await client.get("/", headers=BROWSER)
    text = await page.text()
    assert (page.status, page.content_type) == (502, "text/html")
    assert "photo feed cannot be read" in text
    assert "No earlier photos are cached yet" in text
    assert "--source demo" in text
    assert "Traceback" not in text
    api = await client.get("/api/photos", headers={"Accept": "application/json"})
    assert (api.status, (await api.json())["error"]) == (502, "bad_upstream")


async def test_the_offline_hint_is_only_for_the_default_source(aiohttp_client: AiohttpClient):
    client = await aiohttp_client(create_app(Settings(source="demo")))
    page = await client.get("/api/photos?sol=4001", headers=BROWSER)
    text = await page.text()
    assert page.status == 404
    assert "sol 4001 is beyond the newest sol" in text.lower()
    assert "--source demo" not in text
    assert "go to the gallery" in text  # the newest photos are still there


@pytest.mark.parametrize(("error", "status", "advice"), [
    (Unavailable("the photo feed asked this service to slow down", retry_after=30), 503,
     "Try again in 30 seconds."),
    (BadUpstream("the photo feed answered with a server error (HTTP 503)"), 502,
     "No earlier photos are cached yet"),
])
async def test_a_browser_gets_an_html_error_page_with_advice(app_for, error, status, advice):
    client = await app_for(Down(error))
    response = await client.get("/", headers=HTML)
    assert response.status == status
    assert (response.content_type, response.charset) == ("text/html", "utf-8")
    assert advice in await response.text()
    assert "--source demo" not in await response.text()


async def test_an_error_page_points_at_the_gallery_while_the_newest_photos_are_cached(
        demo_client):
    assert (await demo_client.get("/api/photos")).status == 200
    response = await demo_client.get("/wallpaper?photo_number=999", headers=HTML)
    assert response.status == 404
    assert "go to the gallery" in await response.text()


@pytest.mark.parametrize(("error", "status"), [
    (BadUpstream("the photo feed answered with a server error (HTTP 503)"), 502),
    (RuntimeError("a bug"), 500),
])
async def test_nasa_failing_suggests_the_demo_source_to_those_running_msl(
        aiohttp_client, error, status):
    client = await aiohttp_client(create_app(Settings(source="msl"), source=Down(error)))
    response = await client.get("/", headers=HTML)
    assert response.status == status
    assert "<code>marsserver --source demo</code>" in await response.text()


async def test_an_error_for_a_client_without_accept_is_json_and_says_nothing_of_retrying(
        demo_client):
    response = await demo_client.get("/wallpaper?height=0", skip_auto_headers=["Accept"])
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Retry-After" not in response.headers


async def test_an_error_for_a_client_ranking_json_above_html_is_json(demo_client):
    response = await demo_client.get(
        "/wallpaper?height=0", headers={"Accept": "text/html;q=0.5, application/json"})
    assert (response.status, response.content_type) == (400, "application/json")


async def test_an_error_page_keeps_retry_after(app_for):
    client = await app_for(Down(Unavailable("the photo feed asked this service to slow down",
                                            retry_after=30)))
    response = await client.get("/", headers=HTML)
    assert (response.status, response.content_type) == (503, "text/html")
    assert response.headers["Retry-After"] == "30"


async def test_nasa_unreachable_is_said_in_words_the_cause_goes_to_the_log(
        aiohttp_client: AiohttpClient, mock_nasa, caplog):
    """Not "Mars.nasa.gov failed: ClientConnectorDNSError": what happened, for a person."""
    key = ConnectionKey("mars.nasa.gov", 443, True, True, None, None, None)
    unresolved = aiohttp.ClientConnectorDNSError(key, OSError(-2, "Name or service not known"))
    mock_nasa.get(re.compile(r"https://mars\.nasa\.gov/.*"), exception=unresolved, repeat=True)
    client = await aiohttp_client(create_app(Settings(source="msl", retries=0, error_ttl=0)))
    sentence = "could not resolve the address of the photo feed"
    with caplog.at_level(logging.INFO, logger="marsserver"):
        page = await client.get("/", headers=BROWSER)
        api = await client.get("/api/photos")
    text = await page.text()
    assert (page.status, api.status) == (502, 502)
    assert f"<p>{sentence[0].upper()}{sentence[1:]}.</p>" in text
    assert await api.json() == {"error": "bad_upstream", "detail": sentence}
    for shown in (text, await api.text()):
        assert "ClientConnector" not in shown
        assert "mars.nasa.gov" not in shown.lower()
    assert any("mars.nasa.gov: ClientConnectorDNSError" in record.getMessage()
               for record in caplog.records)
