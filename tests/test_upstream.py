"""Upstream hygiene with mocked NASA hosts: status and transport errors, allow-list, redirects,
politeness (retries, back-off, rests) and the DNS guard.

At the edges: exact back-off, rest and size bounds, what the operator reads (log lines,
metrics) and what a client reads (error details): cases mutation testing showed no other test
pinned down (tests/MUTANTS.md)."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver

from marsserver import upstream as upstream_module
from marsserver.errors import MAX_HOLD, BadUpstream, ServiceError, Unavailable, UpstreamTimeout
from marsserver.metrics import Metrics
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
    with pytest.raises(BadUpstream, match="redirected more than 3 times"):
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


async def test_a_429_from_the_feed_rests_the_feed_and_leaves_images_of_that_host_alone(
        upstream, mock_nasa):
    """One client spending the feed API's quota must not stop, for everyone, the images of
    lists already cached: a host rests for the kind of call that was refused."""
    mock_nasa.get(FEED, status=429, headers={"Retry-After": "600"}, repeat=True)
    mock_nasa.get(IMAGE, body=b"jpeg", repeat=True)
    with pytest.raises(Unavailable):
        await upstream.get_json(FEED, {})
    with pytest.raises(Unavailable, match="slow down") as caught:
        await upstream.get_json(FEED, {})
    assert 590 <= caught.value.retry_after <= 601
    assert await upstream.get_image(IMAGE) == b"jpeg"
    assert [len(calls) for calls in mock_nasa.requests.values()] == [1, 1]


async def test_a_429_for_an_image_rests_images_and_leaves_the_feed_alone(upstream, mock_nasa):
    mock_nasa.get(IMAGE, status=429, headers={"Retry-After": "600"}, repeat=True)
    mock_nasa.get(FEED, payload={"items": []}, repeat=True)
    for _ in range(2):
        with pytest.raises(Unavailable):
            await upstream.get_image(IMAGE)
    assert await upstream.get_json(FEED, {}) == {"items": []}
    assert [len(calls) for calls in mock_nasa.requests.values()] == [1, 1]


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
    # IPv6 that carries an IPv4 address where it really goes: NAT64, IPv4-compatible, 6to4
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "::127.0.0.1", "::10.0.0.1", "2002:7f00:1::1",
    "2002:c0a8:1::",
    "64:ff9b:1::808:808",  # NAT64 for local use (RFC 8215): a private translator
    "fec0::1", "feff::1",  # site-local (deprecated, and never public)
]
PUBLIC = ["93.184.215.14", "172.32.0.1", "2606:4700::1111",  # 172.32/16 is past 172.16/12
          "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"]  # public IPv4 inside


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


@pytest.mark.parametrize("retry_after", ["²", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_odd_retry_after_values_rest_the_default_time(upstream, mock_nasa, retry_after):
    mock_nasa.get(FEED, status=429, headers={"Retry-After": retry_after})
    with pytest.raises(Unavailable) as caught:
        await upstream.get_json(FEED, {})
    assert caught.value.retry_after == 60


async def test_deeply_nested_json_is_a_bad_upstream(mock_nasa):
    mock_nasa.get(FEED, body=b"[" * 5000)
    async with aiohttp.ClientSession() as session:
        upstream = Upstream(session, ("mars.nasa.gov",), max_bytes=10_000, retries=0)
        with pytest.raises(BadUpstream, match="did not answer with JSON"):
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


# At the edges ------------------------------------------------------------------------------

class Monotonic:
    """`time` for the upstream module, whose monotonic clock moves only when told to (and
    starts at 0: a monotonic clock's origin is arbitrary)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize("link", ["https://mars.nasa.gov./a.jpg", "https://MARS.nasa.gov/a.jpg"])
async def test_a_fully_qualified_or_upper_case_allowed_host_is_still_allowed(
        upstream, mock_nasa, link):
    mock_nasa.get(link, body=b"jpeg")
    assert await upstream.get_image(link) == b"jpeg"


@pytest.mark.parametrize("link", ["ftp://mars.nasa.gov/a.jpg", "https://user@mars.nasa.gov/a.jpg",
                                  "https://user:secret@mars.nasa.gov/a.jpg"])
async def test_other_schemes_and_credentials_are_refused_even_on_an_allowed_host(
        upstream, mock_nasa, link):
    with pytest.raises(BadUpstream, match="outside the allowed hosts"):
        await upstream.get_image(link)
    assert mock_nasa.requests == {}


@pytest.mark.parametrize(("link", "shown"), [
    ("file:///etc/passwd", "'file://'"), ("demo:4000/1", "'demo://'"),
    ("http://169.254.169.254/latest/meta-data", "'http://169.254.169.254'")])
async def test_a_link_outside_the_allowed_hosts_is_refused_naming_no_host(
        upstream, mock_nasa, link, shown, caplog):
    """The client reads a sentence; the link (perhaps to an internal host) is for the log."""
    with caplog.at_level(logging.INFO, logger="marsserver.upstream"), \
            pytest.raises(BadUpstream) as raised:
        await upstream.get_image(link)
    assert raised.value.detail == "the photo's image link points outside the allowed hosts"
    assert mock_nasa.requests == {}
    assert [r.getMessage() for r in caplog.records] == [
        f"the image server failed: image link outside the allowed hosts: {shown}"]


async def test_a_malformed_link_says_so(upstream, mock_nasa):
    with pytest.raises(BadUpstream) as raised:
        await upstream.get_image("http://[::1")
    assert raised.value.detail == "the photo's image link is not a valid URL"
    assert raised.value.cause == "image link 'http://[::1' is not a valid URL"


async def test_an_upgraded_nasa_link_counts_as_port_443(session, mock_nasa):
    upstream = Upstream(session, ("mars.nasa.gov:443",), max_bytes=1000, retries=0)
    mock_nasa.get(IMAGE, body=b"jpeg")
    assert await upstream.get_image(IMAGE.replace("https:", "http:")) == b"jpeg"


async def test_a_feed_that_redirects_is_a_bad_upstream_naming_the_status(upstream, mock_nasa):
    mock_nasa.get(FEED, status=302, headers={"Location": FEED + "elsewhere"})
    with pytest.raises(BadUpstream) as raised:
        await upstream.get_json(FEED, {})
    assert raised.value.detail == "the photo feed answered HTTP 302, not what was asked for"


@pytest.fixture
def delays(monkeypatch) -> list[float]:
    """The upstream's back-off sleeps, taken at once, its jitter seeded with 7."""
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(upstream_module.asyncio, "sleep", sleep)
    monkeypatch.setattr(upstream_module, "random", random.Random(7))
    return slept


async def test_retries_back_off_exponentially_with_jitter_and_say_so(
        session, mock_nasa, delays, caplog):
    jitter = random.Random(7)
    expected = [0.5 * 2**attempt * jitter.uniform(0.5, 1.5) for attempt in range(4)]
    mock_nasa.get(FEED, status=503, repeat=True)
    upstream = Upstream(session, ("mars.nasa.gov",), max_bytes=1000, retries=4, backoff=0.5)
    with caplog.at_level(logging.INFO, logger="marsserver.upstream"), \
            pytest.raises(BadUpstream, match="HTTP 503"):
        await upstream.get_json(FEED, {})
    assert delays == pytest.approx(expected)
    assert [r.getMessage() for r in caplog.records] == [
        f"retrying mars.nasa.gov in {delay:.2f}s: mars.nasa.gov answered HTTP 503"
        for delay in expected] + ["the photo feed failed: mars.nasa.gov answered HTTP 503"]


def _connector(kind: type[aiohttp.ClientConnectorError], error: OSError) -> Exception:
    key = aiohttp.client_reqrep.ConnectionKey("mars.nasa.gov", 443, True, True, None, None,
                                               None)
    return kind(key, error)


DNS = _connector(aiohttp.ClientConnectorDNSError, socket.gaierror(-2, "Name or service not known"))
REFUSED = _connector(aiohttp.ClientConnectorError, ConnectionRefusedError(111, "refused"))
TLS = _connector(aiohttp.ClientConnectorCertificateError, ValueError("bad certificate"))


@pytest.mark.parametrize(("kwargs", "status", "detail", "cause"), [
    ({"exception": DNS}, "error", "could not resolve the address of the photo feed",
     "ClientConnectorDNSError"),
    ({"exception": REFUSED}, "error", "could not connect to the photo feed",
     "ClientConnectorError"),
    ({"exception": TLS}, "error", "could not connect securely to the photo feed (TLS failed)",
     "ClientConnectorCertificateError"),
    ({"exception": aiohttp.ServerDisconnectedError()}, "error",
     "the connection to the photo feed was lost", "ServerDisconnectedError"),
    ({"exception": aiohttp.ClientPayloadError("cut")}, "error",
     "the photo feed sent a broken answer", "ClientPayloadError: cut"),
    ({"exception": ValueError("odd")}, "error", "the request to the photo feed failed",
     "ValueError: odd"),
    ({"exception": TimeoutError()}, "timeout", "the photo feed did not answer in time",
     "mars.nasa.gov did not answer in time"),
    ({"status": 503}, "503", "the photo feed answered with a server error (HTTP 503)",
     "mars.nasa.gov answered HTTP 503"),
    ({"status": 404}, "404", "the photo feed refused the request (HTTP 404)",
     "mars.nasa.gov answered HTTP 404"),
])
async def test_every_failed_request_is_counted_and_explained_in_words_the_cause_logged(
        session, mock_nasa, kwargs, status, detail, cause, caplog):
    """A client reads what happened, never an exception class or a host; the log has both."""
    metrics = Metrics()
    upstream = Upstream(session, ("mars.nasa.gov",), max_bytes=1000, retries=0,
                        metrics=metrics, source="msl")
    mock_nasa.get(FEED, **kwargs)
    with caplog.at_level(logging.INFO, logger="marsserver.upstream"), \
            pytest.raises(ServiceError) as raised:
        await upstream.get_json(FEED, {})
    assert raised.value.detail == detail
    assert "mars.nasa.gov" not in detail
    assert cause in raised.value.cause
    assert "mars.nasa.gov" in raised.value.cause
    assert [r.getMessage() for r in caplog.records] == [
        f"the photo feed failed: {raised.value.cause}"]
    assert metrics.registry.get_sample_value(
        "marsserver_upstream_requests_total",
        {"source": "msl", "kind": "list", "status": status}) == 1


async def test_a_rested_host_is_called_again_exactly_when_its_rest_is_over(
        upstream, mock_nasa, monkeypatch, caplog):
    clock = Monotonic()
    monkeypatch.setattr(upstream_module, "time", clock)
    mock_nasa.get(FEED, status=429, headers={"Retry-After": "10"})
    mock_nasa.get(FEED, payload={"ok": True})
    with caplog.at_level(logging.INFO, logger="marsserver.upstream"), \
            pytest.raises(Unavailable) as limited:
        await upstream.get_json(FEED, {})
    assert (limited.value.detail, limited.value.retry_after) == (
        "the photo feed is rate limiting this service", 10)
    assert [r.getMessage() for r in caplog.records] == [
        "the photo feed failed: mars.nasa.gov is rate limiting us: resting it for 10 s"]
    clock.now = 9.5
    with pytest.raises(Unavailable) as resting:
        await upstream.get_json(FEED, {})
    assert (resting.value.detail, resting.value.retry_after) == (
        "the photo feed asked this service to slow down", 1)
    clock.now = 10.0
    assert await upstream.get_json(FEED, {}) == {"ok": True}
    assert sum(map(len, mock_nasa.requests.values())) == 2


@pytest.mark.parametrize(("retry_after", "rest"), [
    ("3599", 3599), ("3600", MAX_HOLD), ("3601", MAX_HOLD), ("999999", MAX_HOLD),
    ("1000000", MAX_HOLD), ("9" * 5000, MAX_HOLD)])
async def test_retry_after_is_capped_like_remembered_failures(
        upstream, mock_nasa, monkeypatch, retry_after, rest):
    """A feed asking for 999999 s (by mistake or not) rests the feed for an hour at most,
    as long as the pipeline remembers any failure, and the host is called again then."""
    clock = Monotonic()
    monkeypatch.setattr(upstream_module, "time", clock)
    mock_nasa.get(FEED, status=429, headers={"Retry-After": retry_after})
    mock_nasa.get(FEED, payload={"ok": True})
    with pytest.raises(Unavailable) as caught:
        await upstream.get_json(FEED, {})
    assert caught.value.retry_after == rest == min(int(retry_after[:7]), 3600)
    clock.now = rest - 0.5
    with pytest.raises(Unavailable, match="slow down"):
        await upstream.get_json(FEED, {})
    clock.now = rest
    assert await upstream.get_json(FEED, {}) == {"ok": True}


async def test_a_failing_feed_is_logged_once_per_episode(upstream, mock_nasa, caplog):
    """An outage is a line when it starts and one when it ends, not a line per request; the
    failures between are there at DEBUG. The feed's start is an INFO here: the pipeline says
    it as the service's WARNING, with what it does about it (one WARNING per outage)."""
    for _ in range(3):
        mock_nasa.get(FEED, status=502)
    mock_nasa.get(FEED, payload={"ok": True})
    mock_nasa.get(FEED, status=502)
    with caplog.at_level(logging.INFO, logger="marsserver.upstream"):
        for _ in range(3):
            with pytest.raises(BadUpstream):
                await upstream.get_json(FEED, {})
        assert await upstream.get_json(FEED, {}) == {"ok": True}
        with pytest.raises(BadUpstream):
            await upstream.get_json(FEED, {})
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "the photo feed failed: mars.nasa.gov answered HTTP 502"),
        ("INFO", "the photo feed answers again (mars.nasa.gov)"),
        ("INFO", "the photo feed failed: mars.nasa.gov answered HTTP 502")]


@pytest.mark.parametrize("headers", [{}, {"Content-Length": "1000"}])
async def test_a_download_of_exactly_the_limit_is_accepted(upstream, mock_nasa, headers):
    mock_nasa.get(IMAGE, body=bytes(1000), headers=headers)
    assert await upstream.get_image(IMAGE) == bytes(1000)


async def test_a_declared_length_over_the_limit_is_refused_before_reading(upstream, mock_nasa):
    mock_nasa.get(IMAGE, body=bytes(10), headers={"Content-Length": "1001"})
    with pytest.raises(BadUpstream) as raised:
        await upstream.get_image(IMAGE)
    assert raised.value.detail == "the image server sent more than 1000 bytes"


class RecordingResolver(AbstractResolver):
    """Public DNS answers for one name; records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int, socket.AddressFamily]] = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.asked.append((host, port, family))
        if host != "images.example":
            raise OSError(f"no such name: {host}")
        return [{"hostname": host, "host": "2606:4700::1111", "port": port, "proto": 0,
                 "flags": 0, "family": family}]

    async def close(self) -> None:
        pass


async def test_the_guard_asks_dns_exactly_what_the_connection_asked():
    inner = RecordingResolver()
    resolver = PublicResolver(frozenset(), inner)
    answers = await resolver.resolve("images.example", 8443, socket.AF_INET6)
    assert [(a["host"], a["port"]) for a in answers] == [("2606:4700::1111", 8443)]
    assert inner.asked == [("images.example", 8443, socket.AF_INET6)]


async def test_the_guard_has_aiohttps_resolver_defaults_port_0_and_ipv4():
    inner = RecordingResolver()
    [answer] = await PublicResolver(frozenset(), inner).resolve("images.example")
    assert (answer["port"], inner.asked) == (0, [("images.example", 0, socket.AF_INET)])


def test_operator_named_hosts_are_trusted_whatever_their_case_or_trailing_dot():
    assert upstream_module.trusted_names("http://Mirror.Local./api", ("IMG.local.:81",)) == {
        "mirror.local", "img.local"}


def test_an_api_url_without_a_host_trusts_no_name():
    assert upstream_module.trusted_names("file:///feed.json", None) == frozenset()


async def test_by_default_two_retries_back_off_from_a_quarter_second(
        session, mock_nasa, delays):
    jitter = random.Random(7)
    mock_nasa.get(FEED, status=503, repeat=True)
    with pytest.raises(BadUpstream):
        await Upstream(session, ("mars.nasa.gov",), max_bytes=1000).get_json(FEED, {})
    assert delays == pytest.approx([0.25 * 2**n * jitter.uniform(0.5, 1.5) for n in range(2)])
