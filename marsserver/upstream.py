"""Upstream: every network call the service makes, with timeouts, size limits and an allow-list.

Sources call `get_json` for their feeds and `get_image` for the links those feeds contain.
Image links come from upstream JSON and are untrusted: only allow-listed hosts are fetched,
redirects are followed by hand (at most `MAX_REDIRECTS`, each hop checked again), plain http to
NASA's hosts is upgraded to https, and a download stops at `max_bytes`. Transport failures are
translated into the service's own errors here, so no aiohttp exception reaches a handler.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import aiohttp
from yarl import URL

from .errors import BadUpstream, Unavailable, UpstreamTimeout

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
NASA_DOMAIN = "nasa.gov"
_CHUNK = 64 * 1024


class Upstream:
    """A client session plus the rules for talking to NASA (or whatever stands in for it)."""

    def __init__(self, session: aiohttp.ClientSession, image_hosts: tuple[str, ...],
                 max_bytes: int) -> None:
        self._session = session
        self._image_hosts = frozenset(image_hosts)
        self._max_bytes = max_bytes

    async def get_json(self, url: str, params: Mapping[str, str]) -> object:
        """GET a JSON document; anything but a 200 with valid JSON is a `ServiceError`."""
        body, _ = await self._get(URL(url).update_query(params))
        try:
            return json.loads(body)
        except ValueError:
            raise BadUpstream(f"{url} did not answer JSON") from None

    async def get_image(self, url: str) -> bytes:
        """GET an image from an allow-listed host, following redirects only within the list."""
        target = self._allowed(URL(url))
        for _ in range(MAX_REDIRECTS + 1):
            body, location = await self._get(target, redirects=True)
            if location is None:
                return body
            target = self._allowed(target.join(location))
        raise BadUpstream(f"more than {MAX_REDIRECTS} redirects fetching {url}")

    def _allowed(self, url: URL) -> URL:
        host = (url.host or "").lower()
        if url.scheme == "http" and (host == NASA_DOMAIN or host.endswith("." + NASA_DOMAIN)):
            url = url.with_scheme("https")
        if url.scheme not in ("http", "https") or not (
            host in self._image_hosts or f"{host}:{url.port}" in self._image_hosts
        ):
            raise BadUpstream(f"image link outside the allowed hosts: {url.scheme}://{host}")
        return url

    async def _get(self, url: URL, *, redirects: bool = False) -> tuple[bytes, URL | None]:
        """One GET: the body, or with `redirects` the Location of a 3xx answer instead."""
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if redirects and response.status in (301, 302, 303, 307, 308):
                    return b"", URL(response.headers.get("Location", ""))
                _check_status(url, response)
                return await _read_limited(url, response, self._max_bytes), None
        except TimeoutError:
            raise UpstreamTimeout(f"{url.host} did not answer in time") from None
        except aiohttp.ClientError as error:
            raise BadUpstream(f"{url.host} failed: {type(error).__name__}") from None


def _check_status(url: URL, response: aiohttp.ClientResponse) -> None:
    if response.status == 429:
        retry = response.headers.get("Retry-After", "")
        raise Unavailable(f"{url.host} is rate limiting us",
                          retry_after=int(retry) if retry.isdigit() else None)
    if response.status != 200:
        raise BadUpstream(f"{url.host} answered HTTP {response.status}")


async def _read_limited(url: URL, response: aiohttp.ClientResponse, limit: int) -> bytes:
    if (response.content_length or 0) > limit:
        raise BadUpstream(f"{url.host} sent more than {limit} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise BadUpstream(f"{url.host} sent more than {limit} bytes")
    return bytes(body)
