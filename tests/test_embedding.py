"""Embedding: the public API, and the example host app with two instances under two prefixes."""

from __future__ import annotations

import importlib.util
import logging
import warnings
from html import escape
from pathlib import Path

from yarl import URL

import marsserver
from marsserver.http.app import SETTINGS
from marsserver.http.handlers import PIPELINE

EXAMPLE = Path(__file__).parent.parent / "examples" / "host_app.py"


def load_example():
    spec = importlib.util.spec_from_file_location("host_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_public_api_is_small():
    assert sorted(marsserver.__all__) == ["Listing", "Photo", "Query", "QuerySource", "Settings",
                                          "Source", "create_app"]


def test_creating_an_app_leaves_the_process_wide_loggers_alone():
    """Only the command line (and the gunicorn factory) shortens aiohttp's logs of malformed
    requests: a host app keeps its own logging as it set it up."""
    loggers = [logging.getLogger(name) for name in ("", "aiohttp.server", "aiohttp.access",
                                                     "aiohttp.web", "marsserver")]
    before = [(logger.filters[:], logger.handlers[:], logger.level) for logger in loggers]
    marsserver.create_app(marsserver.Settings(source="demo"))
    assert [(logger.filters, logger.handlers, logger.level) for logger in loggers] == before


async def test_a_mounted_app_answers_a_long_query_with_json_when_the_host_passes_the_limit(
        aiohttp_client):
    """A query of 1,024 characters, percent-encoded to 9 KiB: past aiohttp's 8 KiB line."""
    client = await aiohttp_client(load_example().build())
    response = await client.get("/curiosity/wallpaper?note=" + "%E2%82%AC" * 1024)
    assert response.status == 400
    assert (await response.json())["error"] == "bad_parameter"


async def test_a_prefix_without_its_slash_redirects_to_its_mount(aiohttp_client):
    """aiohttp would answer `/curiosity` with a plain-text 404: the mount is `/curiosity/`."""
    client = await aiohttp_client(load_example().build())
    for prefix in ("/curiosity", "/perseverance"):
        for query in ("", "?sol=3999"):
            response = await client.get(prefix + query, allow_redirects=False)
            assert (response.status, response.headers.get("Location")) == (
                308, f"{prefix}/{query}")
        followed = await client.get(prefix, headers={"Accept": "text/html"})
        assert (followed.status, followed.url.path) == (200, f"{prefix}/")
        assert followed.content_type == "text/html"


async def test_two_instances_under_two_prefixes_share_nothing_and_know_their_urls(aiohttp_client):
    host = load_example().build()
    client = await aiohttp_client(host)
    curiosity, perseverance = host._subapps  # the two marsserver apps, as mounted

    assert (await client.get("/")).status == 200
    for prefix, rover in (("/curiosity", "curiosity"), ("/perseverance", "perseverance")):
        listing = await (await client.get(f"{prefix}/api/photos")).json()
        assert listing["rover"] == rover
        url = listing["photos"][0]["wallpaper_url"]
        assert url.startswith(f"{prefix}/wallpaper?")
        assert (await client.get(url + "&height=64")).status == 200
        html = await (await client.get(f"{prefix}/", headers={"Accept": "text/html"})).text()
        photo = listing["photos"][0]
        assert photo["permalink"].startswith(f"{prefix}/photos/")
        link = URL(photo["permalink"])
        assert f'src="{escape(str(link.update_query(height=240)))}"' in html
        assert f'href="{escape(str(link.update_query(preset="4k")))}"' in html
        assert (await client.get(link.update_query(height=64))).status == 200
        contract = await (await client.get(f"{prefix}/openapi.json")).json()
        assert contract["servers"] == [{"url": prefix}]

    one, two = curiosity[PIPELINE], perseverance[PIPELINE]
    assert curiosity[SETTINGS].info_ttl != perseverance[SETTINGS].info_ttl
    assert one.cache is not two.cache
    assert one._executor is not two._executor
    assert one.source is not two.source
    assert one.metrics.registry is not two.metrics.registry

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unclosed session or executor would warn
        await client.close()
    assert one._executor._shutdown  # type: ignore[attr-defined]
    assert two._executor._shutdown


async def test_the_gunicorn_factory_reads_settings_from_the_environment(monkeypatch):
    from marsserver.http.app import gunicorn_app

    monkeypatch.setenv("MARS_SOURCE", "demo")
    monkeypatch.setenv("MARS_INFO_TTL", "42")
    app = await gunicorn_app()
    assert (app[SETTINGS].source, app[SETTINGS].info_ttl) == ("demo", 42.0)
