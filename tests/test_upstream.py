"""Upstream hygiene with mocked NASA hosts: status and transport errors, allow-list, redirects."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from marsserver.errors import BadUpstream, Unavailable, UpstreamTimeout
from marsserver.upstream import Upstream

FEED = "https://mars.nasa.gov/api/v1/raw_image_items/"
IMAGE = "https://mars.nasa.gov/msl-raw-images/a.jpg"


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with aiohttp.ClientSession() as session:
        yield Upstream(session, ("mars.nasa.gov", "images.example:8443"), max_bytes=1000)


async def test_json_is_returned_parsed(upstream, mock_nasa):
    mock_nasa.get(re.compile(re.escape(FEED) + r"\?.*"), payload={"items": []})
    assert await upstream.get_json(FEED, {"page": "0"}) == {"items": []}


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"status": 500}, BadUpstream),
    ({"status": 404}, BadUpstream),
    ({"body": "<html>maintenance</html>", "content_type": "text/html"}, BadUpstream),
    ({"exception": TimeoutError()}, UpstreamTimeout),
    ({"exception": aiohttp.ClientConnectionError()}, BadUpstream),
    ({"body": "x" * 1001}, BadUpstream),
])
async def test_feed_failures_become_service_errors(upstream, mock_nasa, kwargs, error):
    mock_nasa.get(FEED, **kwargs)
    with pytest.raises(error):
        await upstream.get_json(FEED, {})


async def test_rate_limiting_is_unavailable_with_the_upstreams_retry_after(upstream, mock_nasa):
    mock_nasa.get(FEED, status=429, headers={"Retry-After": "120"})
    with pytest.raises(Unavailable) as caught:
        await upstream.get_json(FEED, {})
    assert caught.value.retry_after == 120


async def test_images_come_only_from_allowed_hosts(upstream, mock_nasa):
    with pytest.raises(BadUpstream, match="outside the allowed hosts"):
        await upstream.get_image("https://evil.example/a.jpg")
    with pytest.raises(BadUpstream, match="outside the allowed hosts"):
        await upstream.get_image("https://images.example:9999/a.jpg")  # port not allowed
    with pytest.raises(BadUpstream, match="outside the allowed hosts"):
        await upstream.get_image("file:///etc/passwd")
    assert mock_nasa.requests == {}


async def test_host_and_port_entries_allow_exactly_that_port(upstream, mock_nasa):
    mock_nasa.get("https://images.example:8443/a.jpg", body=b"jpeg")
    assert await upstream.get_image("https://images.example:8443/a.jpg") == b"jpeg"


async def test_plain_http_to_nasa_is_upgraded_to_https(upstream, mock_nasa):
    mock_nasa.get(IMAGE, body=b"jpeg")
    assert await upstream.get_image(IMAGE.replace("https:", "http:")) == b"jpeg"


async def test_redirects_are_followed_within_the_allow_list(upstream, mock_nasa):
    mock_nasa.get(IMAGE, status=302, headers={"Location": "/other.jpg"})
    mock_nasa.get("https://mars.nasa.gov/other.jpg", body=b"jpeg")
    assert await upstream.get_image(IMAGE) == b"jpeg"


async def test_redirects_to_other_hosts_are_refused(upstream, mock_nasa):
    mock_nasa.get(IMAGE, status=301, headers={"Location": "http://127.0.0.1/admin"})
    with pytest.raises(BadUpstream, match="outside the allowed hosts"):
        await upstream.get_image(IMAGE)


async def test_redirect_chains_are_bounded(upstream, mock_nasa):
    mock_nasa.get(IMAGE, status=302, headers={"Location": IMAGE}, repeat=True)
    with pytest.raises(BadUpstream, match="more than 3 redirects"):
        await upstream.get_image(IMAGE)
    assert len(next(iter(mock_nasa.requests.values()))) == 4


async def test_downloads_stop_at_the_size_limit(upstream, mock_nasa):
    mock_nasa.get(IMAGE, body=bytes(1001))
    with pytest.raises(BadUpstream, match="more than 1000 bytes"):
        await upstream.get_image(IMAGE)
