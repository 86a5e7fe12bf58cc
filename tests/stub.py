"""A stand-in for NASA's image feed, for the tests and the benchmarks (no pytest needed)."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from marsserver import Settings

FIXTURES = Path(__file__).parent / "fixtures"
IMAGES = sorted((FIXTURES / "images").glob("*.jpg"))
FEED_PATH = "/api/v1/raw_image_items/"

Fault = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fixture_json(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


class Stub:
    """A stand-in for mars.nasa.gov on a free local port: the MSL feed plus real rover JPEGs.

    It counts every request by path ("feed" or the image's name), can hold answers until a
    gate opens (to line up concurrent requests deterministically), and can be told to fail.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.gates: dict[str, asyncio.Event] = {}
        self.faults: dict[str, Fault] = {}
        self.images = {path.name: path.read_bytes() for path in IMAGES}
        self.feed_images = [path.name for path in IMAGES[:3]]
        self.latency: dict[str, float] = {"feed": 0.0, "image": 0.0}
        self.port = 0

    def fail(self, kind: str, status: int, body: bytes = b"down", **headers: str) -> None:
        """Answer every "feed" or "image" request with `status` until `faults` is cleared."""
        async def answer(request: web.Request) -> web.Response:
            return web.Response(status=status, body=body, headers=headers)
        self.faults[kind] = answer

    def hold(self, path: str) -> asyncio.Event:
        """Hold answers for `path` ("feed" or an image name) until the returned event is set."""
        self.gates[path] = asyncio.Event()
        return self.gates[path]

    async def _pass(self, path: str, kind: str) -> None:
        self.calls[path] += 1
        if path in self.gates:
            await self.gates[path].wait()
        if self.latency[kind]:
            await asyncio.sleep(self.latency[kind])  # a simulated network, not synchronization

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides: Any) -> Settings:
        """Settings that point the msl source at this stub."""
        values: dict[str, Any] = {
            "source": "msl", "api_url": self.base + FEED_PATH,
            "image_hosts": (f"127.0.0.1:{self.port}",), "timeout": 5.0,
        }
        return Settings(**{**values, **overrides})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(FEED_PATH, self._feed)
        app.router.add_get("/images/{name}", self._image)
        return app

    def feed(self, links: list[str]) -> dict[str, Any]:
        """A real recorded feed item, repeated with each of `links` as its image."""
        template = fixture_json("msl-raw/msl_raw_image_items_sol5000_navleftb.json")["items"][0]
        # Ids follow the image, as a real feed's do: a permalink names one photo for good.
        items = [{**template, "id": zlib.crc32(link.encode()), "https_url": link}
                 for link in links]
        return {"items": items, "more": True, "page": 0, "per_page": 100}

    def each_sol(self, newest: int = 5000) -> None:
        """Answer each sol asked for with two photos of its own (the newest list: `newest`),
        as a feed walked sol by sol does, instead of the same photos for every query."""
        template = self.feed([f"{self.base}/images/{self.feed_images[0]}"])["items"][0]

        async def feed(request: web.Request) -> web.Response:
            sol = int(request.query.get("condition_2", f"{newest}:sol:in").split(":")[0])
            return web.json_response({"items": [{**template, "sol": sol, "id": sol * 100 + n}
                                                for n in range(2)]})

        self.faults["feed"] = feed

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        await self._pass("feed", "feed")
        if "feed" in self.faults:
            return await self.faults["feed"](request)
        return web.json_response(self.feed([f"{self.base}/images/{n}" for n in self.feed_images]))

    async def _image(self, request: web.Request) -> web.StreamResponse:
        await self._pass(request.match_info["name"], "image")
        if "image" in self.faults:
            return await self.faults["image"](request)
        return web.Response(body=self.images[request.match_info["name"]],
                            content_type="image/jpeg")

    def images_not_in_feed(self) -> list[str]:
        return [name for name in self.images if name not in self.feed_images]

    def downloads(self) -> int:
        return sum(count for path, count in self.calls.items() if path != "feed")
