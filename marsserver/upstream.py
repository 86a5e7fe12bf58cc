"""Upstream: every network call the service makes, and the rules that keep it polite and safe.

Sources call `get_json` for their feeds and `get_image` for the links those feeds contain.
- Polite: a total and a connect timeout on every request; a bounded number of retries with
  jittered exponential backoff, on connection errors and 5xx only (never 4xx, never a
  timeout: a slow NASA is not helped by more requests); a 429 or `X-RateLimit-Remaining: 0`
  makes us rest that host for that kind of call (the feed, or images) until its `Retry-After`
  (or `RATE_LIMIT_REST`) has passed, `MAX_HOLD` at most. The kinds rest apart: a feed API's
  quota is its own, and one client spending it must not stop the images of lists already
  cached from downloading for everyone. Every attempt first takes a token from the upstream
  budget (`core/budget.py`), if one is given: a refusal is the budget's, not the host's, and
  opens no failure episode.
- Safe: image links are untrusted, so only allow-listed hosts are fetched, plain http to NASA
  is upgraded to https, redirects are followed by hand (at most `MAX_REDIRECTS`, each hop
  checked again), downloads stop at `max_bytes`, and `PublicResolver` refuses names that
  resolve to loopback, private or link-local addresses unless the operator named them.
Transport failures become the service's own errors here; no aiohttp exception leaves. Each
says what happened in words a person reads (could not resolve, could not connect, timed out,
a server error) and names neither a host, which may be an internal one, nor an exception
class: those go to the log (`ServiceError.cause`), once per episode: when a host starts failing
for a kind of call (a WARNING for images; an INFO for the feed, whose outage the pipeline
reports as the service's, with what it does about it), an INFO when it answers again, DEBUG in
between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from .core.budget import Budget
from .errors import (
    MAX_HOLD,
    BadUpstream,
    BudgetSpent,
    ServiceError,
    Unavailable,
    UpstreamTimeout,
)
from .metrics import Metrics

if TYPE_CHECKING:  # tracing is an extra
    from .tracing import Tracing

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
NASA_DOMAIN = "nasa.gov"
RATE_LIMIT_REST = 60
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
#: What failed, as a client is told: by the kind of request, never by host.
WHAT = {"list": "the photo feed", "image": "the image server"}
#: A host and a kind of call to it ("list" or "image"): what rests, and what fails, together.
Line = tuple[str, str]


class _Retryable(Exception):
    """A failure worth another attempt (connection error, 5xx), carrying the final error."""

    def __init__(self, error: ServiceError) -> None:
        super().__init__(error.detail)
        self.error = error


class Upstream:
    """A client session plus the rules for talking to NASA (or whatever stands in for it)."""

    def __init__(self, session: aiohttp.ClientSession, image_hosts: tuple[str, ...],
                 max_bytes: int, retries: int = 2, backoff: float = 0.25,
                 metrics: Metrics | None = None, source: str = "",
                 budget: Budget | None = None, tracing: Tracing | None = None) -> None:
        self._session = session
        self._budget = budget
        self._tracing = tracing
        self._requests = (metrics or Metrics()).upstream_requests
        self._source = source
        self._image_hosts = frozenset(image_hosts)
        self._max_bytes = max_bytes
        self._retries = retries
        self._backoff = backoff
        # Both keyed by allow-listed or configured hosts only, so both stay small.
        self._resting: dict[Line, float] = {}  # -> monotonic time it may be called again
        self._failing: set[Line] = set()  # lines whose last call failed (an episode is open)

    async def get_json(self, url: str, params: Mapping[str, str]) -> object:
        """GET a JSON document; anything but a 200 with valid JSON is a `ServiceError`."""
        try:
            body, _ = await self._get(URL(url).update_query(params), "list")
            try:
                document = json.loads(body)
            except (ValueError, RecursionError):  # RecursionError: b"[" * 10**6
                raise BadUpstream(f"{WHAT['list']} did not answer with JSON",
                                  cause=f"{URL(url).host} did not answer JSON") from None
            self._answered(URL(url), "list")
            return document
        except BudgetSpent:
            raise
        except ServiceError as error:
            raise self._logged((URL(url).host or "", "list"), error) from None

    async def get_image(self, url: str) -> bytes:
        """GET an image from an allow-listed host, following redirects only within the list."""
        target: URL | None = None
        try:
            target = self._allowed(url)
            for _ in range(MAX_REDIRECTS + 1):
                body, location = await self._get(target, "image", redirects=True)
                if location is None:
                    self._answered(target, "image")
                    return body
                target = self._allowed(str(target.join(location)))
            raise BadUpstream(f"{WHAT['image']} redirected more than {MAX_REDIRECTS} times",
                              cause=f"more than {MAX_REDIRECTS} redirects fetching {url!r}")
        except BudgetSpent:
            raise
        except ServiceError as error:
            if target is None:  # a link refused before any call: no host's episode
                log.info("%s failed: %s", WHAT["image"], error.cause)
                raise
            raise self._logged((target.host or "", "image"), error) from None

    def _allowed(self, link: str) -> URL:
        try:
            url = URL(link)
            host = (url.host or "").lower().rstrip(".")
            port = url.port
        except (ValueError, UnicodeError):
            raise BadUpstream("the photo's image link is not a valid URL",
                              cause=f"image link {link[:200]!r} is not a valid URL") from None
        if url.scheme == "http" and (host == NASA_DOMAIN or host.endswith("." + NASA_DOMAIN)):
            url, port = url.with_scheme("https").with_port(None), 443
        if url.scheme not in ("http", "https") or url.user is not None or not (
            host in self._image_hosts or f"{host}:{port}" in self._image_hosts
        ):
            raise BadUpstream("the photo's image link points outside the allowed hosts",
                              cause="image link outside the allowed hosts: "
                                    f"{f'{url.scheme}://{host}'!r}")
        return url

    async def _get(self, url: URL, kind: str, *, redirects: bool = False,
                   ) -> tuple[bytes, URL | None]:
        """GET with retries: the body, or with `redirects` the Location of a 3xx answer."""
        for attempt in range(self._retries + 1):
            self._check_rest(url, kind)
            if self._budget is not None:
                await self._budget.spend(kind)
            try:
                return await self._attempt(url, kind, redirects)
            except _Retryable as failure:
                if attempt == self._retries:
                    raise failure.error from None
                delay = self._backoff * 2**attempt * random.uniform(0.5, 1.5)
                level = logging.DEBUG if (url.host or "", kind) in self._failing else logging.INFO
                log.log(level, "retrying %s in %.2fs: %s", url.host, delay, failure.error.cause)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, url: URL, kind: str, redirects: bool) -> tuple[bytes, URL | None]:
        """One call, in a client span when traced."""
        if self._tracing is None:
            return await self._call(url, kind, redirects, _untraced)
        with self._tracing.client(url, kind) as answered:
            return await self._call(url, kind, redirects, answered)

    async def _call(self, url: URL, kind: str, redirects: bool,
                    answered: Callable[[str], None]) -> tuple[bytes, URL | None]:
        status = "error"
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                status = str(response.status)
                if redirects and response.status in _REDIRECTS:
                    if not response.headers.get("Location"):
                        raise BadUpstream(f"{WHAT[kind]} redirected nowhere",
                                          cause=f"{url.host} redirected nowhere")
                    return b"", URL(response.headers["Location"])
                self._check_status(url, kind, response)
                return await _read_limited(url, kind, response, self._max_bytes), None
        except TimeoutError:
            status = "timeout"
            raise UpstreamTimeout(f"{WHAT[kind]} did not answer in time",
                                  cause=f"{url.host} did not answer in time") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as error:
            raise _Retryable(_failed(url, kind, error)) from None
        except (aiohttp.ClientError, ValueError) as error:
            raise _failed(url, kind, error) from None
        finally:
            self._requests.labels(self._source, kind, status).inc()
            answered(status)

    def _logged(self, line: Line, error: ServiceError) -> ServiceError:
        """`error`, its technical cause logged once per episode: the client reads a sentence,
        the operator this (later failures of the same episode at DEBUG)."""
        if line in self._failing:
            log.debug("%s still failing: %s", WHAT[line[1]], error.cause)
        else:
            self._failing.add(line)
            log.log(logging.WARNING if line[1] == "image" else logging.INFO,
                    "%s failed: %s", WHAT[line[1]], error.cause)
        return error

    def _answered(self, url: URL, kind: str) -> None:
        """A good answer: closes the line's failure episode, if one was open."""
        if (url.host or "", kind) in self._failing:
            self._failing.discard((url.host or "", kind))
            log.info("%s answers again (%s)", WHAT[kind], url.host)

    def _check_rest(self, url: URL, kind: str) -> None:
        wait = self._resting.get((url.host or "", kind), 0.0) - time.monotonic()
        if wait > 0:
            raise Unavailable(f"{WHAT[kind]} asked this service to slow down",
                              retry_after=int(wait) + 1,
                              cause=f"{url.host} asked us to slow down")

    def _rest(self, url: URL, kind: str, response: aiohttp.ClientResponse) -> int:
        """Rest this host for this kind of call as its `Retry-After` asks, `MAX_HOLD` at most:
        a hold we keep is a failure we remember, and no failure is remembered longer."""
        retry = response.headers.get("Retry-After", "")
        seconds = RATE_LIMIT_REST
        if retry.isascii() and retry.isdigit():  # not "²"; an HTTP date gets the default
            seconds = MAX_HOLD if len(retry) > len(str(MAX_HOLD)) else min(int(retry), MAX_HOLD)
        self._resting[(url.host or "", kind)] = time.monotonic() + seconds
        return seconds

    def _check_status(self, url: URL, kind: str, response: aiohttp.ClientResponse) -> None:
        status, cause = response.status, f"{url.host} answered HTTP {response.status}"
        if status == 429:
            seconds = self._rest(url, kind, response)
            raise Unavailable(f"{WHAT[kind]} is rate limiting this service",
                              retry_after=seconds,
                              cause=f"{url.host} is rate limiting us: resting it for {seconds} s")
        if response.headers.get("X-RateLimit-Remaining") == "0":
            # This answer is good; the next would be a 429.
            seconds = self._rest(url, kind, response)
            log.warning("%s has no requests left for us: resting it for %d s", url.host, seconds)
        if status >= 500:
            raise _Retryable(BadUpstream(
                f"{WHAT[kind]} answered with a server error (HTTP {status})", cause=cause))
        if 400 <= status < 500:
            raise BadUpstream(f"{WHAT[kind]} refused the request (HTTP {status})", cause=cause)
        if status != 200:
            raise BadUpstream(f"{WHAT[kind]} answered HTTP {status}, not what was asked for",
                              cause=cause)


def _untraced(status: str) -> None:
    """How a call ended, where nobody traces it."""


def _failed(url: URL, kind: str, error: Exception) -> BadUpstream:
    """A transport failure in words (DNS, connecting, TLS, a connection lost, a garbled
    answer); the exception itself goes to the log."""
    what = WHAT[kind]
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        words = f"could not resolve the address of {what}"
    elif isinstance(error, aiohttp.ClientSSLError):
        words = f"could not connect securely to {what} (TLS failed)"
    elif isinstance(error, aiohttp.ClientConnectorError):
        words = f"could not connect to {what}"
    elif isinstance(error, aiohttp.ClientConnectionError):
        words = f"the connection to {what} was lost"
    elif isinstance(error, aiohttp.ClientPayloadError):
        words = f"{what} sent a broken answer"
    else:
        words = f"the request to {what} failed"
    return BadUpstream(words, cause=f"{url.host}: {type(error).__name__}: {error}")


async def _read_limited(url: URL, kind: str, response: aiohttp.ClientResponse,
                        limit: int) -> bytes:
    if (response.content_length or 0) > limit:
        raise _too_large(url, kind, limit)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise _too_large(url, kind, limit)
    return bytes(body)


def _too_large(url: URL, kind: str, limit: int) -> BadUpstream:
    return BadUpstream(f"{WHAT[kind]} sent more than {limit} bytes",
                       cause=f"{url.host} sent more than {limit} bytes")


class PublicResolver(AbstractResolver):
    """DNS that refuses non-public addresses for every name the operator did not name.

    The host allow-list is checked on names; this stops an allowed name (or a rebinding
    trick) from leading the service to loopback, private or link-local addresses.
    """

    def __init__(self, trusted: frozenset[str], inner: AbstractResolver | None = None) -> None:
        self._trusted = trusted
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if host.lower().rstrip(".") in self._trusted:
            return results
        public = [r for r in results if is_public(r["host"])]
        if not public:
            raise OSError(f"{host} resolves only to non-public addresses")
        return public

    async def close(self) -> None:
        await self._inner.close()


#: IPv6 ranges that carry an IPv4 address in their last 32 bits, which is where the packet
#: really goes: NAT64's well-known prefix (RFC 6052) and the old IPv4-compatible form.
_EMBEDDING = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))
#: IPv6 ranges that `is_global` does not rule out on every Python, and that never lead to the
#: public internet: NAT64 for local use (RFC 8215) and the deprecated site-local addresses.
_NOT_PUBLIC = (ipaddress.IPv6Network("64:ff9b:1::/48"), ipaddress.IPv6Network("fec0::/10"))


def is_public(host: str) -> bool:
    """Whether an address DNS gave leads to the public internet. An IPv6 address that embeds
    an IPv4 one (mapped, NAT64, IPv4-compatible, 6to4) is judged by the IPv4 address, which
    is where a translator or tunnel delivers it: `64:ff9b::7f00:1` is loopback."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv4Address):
        return address.is_global
    if address.is_loopback or address.is_unspecified or any(
            address in network for network in _NOT_PUBLIC):
        return False
    embedded = _embedded(address)
    return embedded.is_global if embedded is not None else address.is_global


def _embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address `address` carries, if it is of a form that carries one."""
    carried = address.ipv4_mapped or address.sixtofour
    if carried is None and any(address in network for network in _EMBEDDING):
        carried = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return carried


def trusted_names(api_url: str | None, image_hosts: tuple[str, ...] | None) -> frozenset[str]:
    """The names an operator gave explicitly: those may resolve to private addresses."""
    names = [URL(api_url).host or "" if api_url else ""]
    names += [host.rsplit(":", 1)[0] for host in image_hosts or ()]
    return frozenset(name.lower().rstrip(".") for name in names if name)
