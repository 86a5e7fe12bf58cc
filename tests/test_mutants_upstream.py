"""Upstream politeness and safety at their edges: exact backoff, rest and size bounds, what
the operator reads (log lines, metrics) and what a client reads (error details)."""

from __future__ import annotations

import asyncio
import logging
import random
import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver

from marsserver import upstream as upstream_module
from marsserver.errors import BadUpstream, ServiceError, Unavailable
from marsserver.metrics import Metrics
from marsserver.upstream import PublicResolver, Upstream

FEED = "https://mars.nasa.gov/api/v1/raw_image_items/"
IMAGE = "https://mars.nasa.gov/msl-raw-images/a.jpg"


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


@pytest.mark.parametrize(("link", "shown"), [("file:///etc/passwd", "file://"),
                                             ("demo:4000/1", "demo://")])
async def test_a_link_without_a_host_is_refused_naming_no_host(upstream, mock_nasa, link, shown):
    with pytest.raises(BadUpstream) as raised:
        await upstream.get_image(link)
    assert raised.value.detail == f"image link outside the allowed hosts: {shown}"
    assert mock_nasa.requests == {}


async def test_a_malformed_link_says_so(upstream, mock_nasa):
    with pytest.raises(BadUpstream) as raised:
        await upstream.get_image("http://[::1")
    assert raised.value.detail == "image link is not a valid URL"


async def test_an_upgraded_nasa_link_counts_as_port_443(session, mock_nasa):
    upstream = Upstream(session, ("mars.nasa.gov:443",), max_bytes=1000, retries=0)
    mock_nasa.get(IMAGE, body=b"jpeg")
    assert await upstream.get_image(IMAGE.replace("https:", "http:")) == b"jpeg"


async def test_a_feed_that_redirects_is_a_bad_upstream_naming_the_status(upstream, mock_nasa):
    mock_nasa.get(FEED, status=302, headers={"Location": FEED + "elsewhere"})
    with pytest.raises(BadUpstream) as raised:
        await upstream.get_json(FEED, {})
    assert raised.value.detail == "mars.nasa.gov answered HTTP 302"


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
        for delay in expected]


@pytest.mark.parametrize(("kwargs", "status", "detail"), [
    ({"exception": aiohttp.ClientConnectionError()}, "error",
     "mars.nasa.gov failed: ClientConnectionError"),
    ({"exception": ValueError("odd")}, "error", "mars.nasa.gov failed: ValueError"),
    ({"exception": TimeoutError()}, "timeout", "mars.nasa.gov did not answer in time"),
    ({"status": 503}, "503", "mars.nasa.gov answered HTTP 503"),
])
async def test_every_failed_request_is_counted_by_outcome_and_explained(
        session, mock_nasa, kwargs, status, detail):
    metrics = Metrics()
    upstream = Upstream(session, ("mars.nasa.gov",), max_bytes=1000, retries=0,
                        metrics=metrics, source="msl")
    mock_nasa.get(FEED, **kwargs)
    with pytest.raises(ServiceError) as raised:
        await upstream.get_json(FEED, {})
    assert raised.value.detail == detail
    assert metrics.registry.get_sample_value(
        "marsserver_upstream_requests_total",
        {"source": "msl", "kind": "list", "status": status}) == 1


async def test_a_rested_host_is_called_again_exactly_when_its_rest_is_over(
        upstream, mock_nasa, monkeypatch, caplog):
    clock = Monotonic()
    monkeypatch.setattr(upstream_module, "time", clock)
    mock_nasa.get(FEED, status=429, headers={"Retry-After": "10"})
    mock_nasa.get(FEED, payload={"ok": True})
    with caplog.at_level(logging.WARNING, logger="marsserver.upstream"), \
            pytest.raises(Unavailable) as limited:
        await upstream.get_json(FEED, {})
    assert (limited.value.detail, limited.value.retry_after) == (
        "mars.nasa.gov is rate limiting us", 10)
    assert [r.getMessage() for r in caplog.records] == [
        "mars.nasa.gov is rate limiting us: resting it for 10 s"]
    clock.now = 9.5
    with pytest.raises(Unavailable) as resting:
        await upstream.get_json(FEED, {})
    assert (resting.value.detail, resting.value.retry_after) == (
        "mars.nasa.gov asked us to slow down", 1)
    clock.now = 10.0
    assert await upstream.get_json(FEED, {}) == {"ok": True}
    assert sum(map(len, mock_nasa.requests.values())) == 2


@pytest.mark.parametrize(("retry_after", "rest"), [("100000", 100000), ("1000000", 60)])
async def test_retry_after_is_honoured_up_to_six_digits(upstream, mock_nasa, retry_after, rest):
    mock_nasa.get(FEED, status=429, headers={"Retry-After": retry_after})
    with pytest.raises(Unavailable) as caught:
        await upstream.get_json(FEED, {})
    assert caught.value.retry_after == rest


@pytest.mark.parametrize("headers", [{}, {"Content-Length": "1000"}])
async def test_a_download_of_exactly_the_limit_is_accepted(upstream, mock_nasa, headers):
    mock_nasa.get(IMAGE, body=bytes(1000), headers=headers)
    assert await upstream.get_image(IMAGE) == bytes(1000)


async def test_a_declared_length_over_the_limit_is_refused_before_reading(upstream, mock_nasa):
    mock_nasa.get(IMAGE, body=bytes(10), headers={"Content-Length": "1001"})
    with pytest.raises(BadUpstream) as raised:
        await upstream.get_image(IMAGE)
    assert raised.value.detail == "mars.nasa.gov sent more than 1000 bytes"


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
