"""Upstream hygiene with mocked NASA hosts: status and transport errors, allow-list, redirects."""

from __future__ import annotations

import re
import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver

from marsserver.errors import BadUpstream, Unavailable, UpstreamTimeout
from marsserver.upstream import PublicResolver, Upstream, trusted_names

FEED = "https://mars.nasa.gov/api/v1/raw_image_items/"
IMAGE = "https://mars.nasa.gov/msl-raw-images/a.jpg"


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


@pytest.fixture
def retrying(session: aiohttp.ClientSession) -> Upstream:
    return Upstream(session, ("mars.nasa.gov",), max_bytes=1000, retries=2, backoff=0.001)


async def test_5xx_and_connection_errors_are_retried_then_succeed(retrying, mock_nasa):
    mock_nasa.get(FEED, status=503)
    mock_nasa.get(FEED, exception=aiohttp.ClientConnectionError())
    mock_nasa.get(FEED, payload={"ok": True})
    assert await retrying.get_json(FEED, {}) == {"ok": True}
    assert len(next(iter(mock_nasa.requests.values()))) == 3


async def test_retries_are_bounded(retrying, mock_nasa):
    mock_nasa.get(FEED, status=500, repeat=True)
    with pytest.raises(BadUpstream, match="HTTP 500"):
        await retrying.get_json(FEED, {})
    assert len(next(iter(mock_nasa.requests.values()))) == 3


@pytest.mark.parametrize("kwargs", [{"status": 404}, {"exception": TimeoutError()}])
async def test_4xx_and_timeouts_are_not_retried(retrying, mock_nasa, kwargs):
    mock_nasa.get(FEED, **kwargs, repeat=True)
    with pytest.raises((BadUpstream, UpstreamTimeout)):
        await retrying.get_json(FEED, {})
    assert len(next(iter(mock_nasa.requests.values()))) == 1


async def test_after_a_429_the_host_is_not_called_until_retry_after(upstream, mock_nasa):
    mock_nasa.get(FEED, status=429, headers={"Retry-After": "600"}, repeat=True)
    with pytest.raises(Unavailable):
        await upstream.get_json(FEED, {})
    for call in (upstream.get_image(IMAGE), upstream.get_json(FEED, {})):  # images rest too
        with pytest.raises(Unavailable, match="slow down") as caught:
            await call
        assert 590 <= caught.value.retry_after <= 601
    assert sum(map(len, mock_nasa.requests.values())) == 1


async def test_rate_limit_remaining_zero_rests_the_host_after_a_good_answer(upstream, mock_nasa):
    mock_nasa.get(FEED, payload={"ok": 1}, headers={"X-RateLimit-Remaining": "0"}, repeat=True)
    assert await upstream.get_json(FEED, {}) == {"ok": 1}
    with pytest.raises(Unavailable, match="slow down"):
        await upstream.get_json(FEED, {})
    assert sum(map(len, mock_nasa.requests.values())) == 1


class FakeResolver(AbstractResolver):
    """DNS that answers `addresses` for every name, as a rebinding attacker would arrange."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": address, "port": port, "proto": 0, "flags": 0,
                 "family": socket.AF_INET6 if ":" in address else socket.AF_INET}
                for address in self.addresses]

    async def close(self) -> None:
        pass


NON_PUBLIC = [
    "127.0.0.1", "127.8.9.10", "::1",  # loopback
    "10.0.0.1", "10.255.255.254", "172.16.0.1", "172.31.255.254", "192.168.0.1",  # private
    "169.254.169.254", "fe80::1",  # link-local (the cloud metadata address among them)
    "fc00::1", "fd12:3456::1",  # IPv6 unique-local
    "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1",  # unspecified, IPv4-mapped
    "100.64.0.1",  # carrier-grade NAT
]
PUBLIC = ["93.184.215.14", "172.32.0.1", "2606:4700::1111"]  # 172.32/16 is past 172.16/12


@pytest.mark.parametrize("address", NON_PUBLIC)
async def test_names_resolving_to_non_public_addresses_are_refused(address):
    resolver = PublicResolver(frozenset(), FakeResolver(address))
    with pytest.raises(OSError, match="non-public"):
        await resolver.resolve("images.example", 443)


@pytest.mark.parametrize("address", NON_PUBLIC)
async def test_names_the_operator_gave_may_resolve_anywhere(address):
    resolver = PublicResolver(frozenset({"mirror.local"}), FakeResolver(address))
    assert [r["host"] for r in await resolver.resolve("Mirror.local.", 443)] == [address]


@pytest.mark.parametrize("address", PUBLIC)
async def test_public_addresses_are_used(address):
    resolver = PublicResolver(frozenset(), FakeResolver(address))
    assert [r["host"] for r in await resolver.resolve("images.example", 443)] == [address]


async def test_of_mixed_answers_only_the_public_ones_are_used():
    resolver = PublicResolver(frozenset(), FakeResolver("10.0.0.1", "93.184.215.14", "::1"))
    assert [r["host"] for r in await resolver.resolve("images.example", 443)] == ["93.184.215.14"]


async def test_a_refused_name_is_never_connected_to_unless_trusted(aiohttp_server):
    """End to end: the guard sits in the client session's connector, in front of the request."""
    calls = []

    async def jpeg(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.Response(body=b"jpeg")

    app = web.Application()
    app.router.add_get("/a.jpg", jpeg)
    server = await aiohttp_server(app)
    link = f"http://stub.test:{server.port}/a.jpg"
    for trusted, expected in ((frozenset(), None), (frozenset({"stub.test"}), b"jpeg")):
        connector = aiohttp.TCPConnector(
            resolver=PublicResolver(trusted, FakeResolver("127.0.0.1")))
        async with aiohttp.ClientSession(connector=connector) as session:
            upstream = Upstream(session, (f"stub.test:{server.port}",), 1000, retries=0)
            if expected is None:
                with pytest.raises(BadUpstream):
                    await upstream.get_image(link)
                assert calls == []
            else:
                assert await upstream.get_image(link) == expected
    assert calls == ["/a.jpg"]


def test_trusted_names_are_the_operators_own():
    assert trusted_names("http://Mirror.local:9000/api", ("img.local:81", "cdn.example")) == {
        "mirror.local", "img.local", "cdn.example"}
    assert trusted_names(None, None) == frozenset()


@pytest.mark.parametrize("retry_after", ["²", "9" * 5000, "soon"])
async def test_odd_retry_after_values_rest_the_default_time(upstream, mock_nasa, retry_after):
    mock_nasa.get(FEED, status=429, headers={"Retry-After": retry_after})
    with pytest.raises(Unavailable) as caught:
        await upstream.get_json(FEED, {})
    assert caught.value.retry_after == 60


async def test_deeply_nested_json_is_a_bad_upstream(mock_nasa):
    mock_nasa.get(FEED, body=b"[" * 5000)
    async with aiohttp.ClientSession() as session:
        upstream = Upstream(session, ("mars.nasa.gov",), max_bytes=10_000, retries=0)
        with pytest.raises(BadUpstream, match="did not answer JSON"):
            await upstream.get_json(FEED, {})


async def test_a_redirect_without_location_fails_at_once(upstream, mock_nasa):
    mock_nasa.get(IMAGE, status=302, repeat=True)
    with pytest.raises(BadUpstream, match="redirected nowhere"):
        await upstream.get_image(IMAGE)
    assert sum(map(len, mock_nasa.requests.values())) == 1


@pytest.mark.parametrize("link", ["http://[::1", "https://mars.nasa.gov:99999/x", "http://\udcff/"])
async def test_malformed_links_are_a_bad_upstream(upstream, mock_nasa, link):
    with pytest.raises(BadUpstream):
        await upstream.get_image(link)


async def test_the_https_upgrade_drops_an_explicit_port_80(upstream, mock_nasa):
    mock_nasa.get(IMAGE, body=b"jpeg")
    assert await upstream.get_image(IMAGE.replace("https://mars.nasa.gov", "http://mars.nasa.gov:80")
                                    ) == b"jpeg"
