"""The baseline the cold-burst bench compares against: the same work with no coalescing.

    python -m bench.naive FEED_URL

Every request fetches the list, downloads the photo and resizes it (in a thread pool, with
marsserver's own parser and resizer): what a cache does on a cold burst without
single-flight, since every request misses at once.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import aiohttp
from aiohttp import web

from marsserver import imaging
from marsserver.cli import LISTEN_BACKLOG
from marsserver.sources.msl import MslSource


def main() -> None:
    feed_url = sys.argv[1]
    executor = ThreadPoolExecutor(2)
    sessions: list[aiohttp.ClientSession] = []

    async def wallpaper(request: web.Request) -> web.Response:
        number, height = int(request.query["photo_number"]), int(request.query["height"])
        async with sessions[0].get(feed_url) as response:
            listing = MslSource.parse(await response.json())
        async with sessions[0].get(listing.photos[number].img_src) as response:
            data = await response.read()
        resize = partial(imaging.wallpaper, data, imaging.Spec(height), max_pixels=10**9)
        body = await asyncio.get_running_loop().run_in_executor(executor, resize)
        return web.Response(body=body, content_type="image/jpeg")

    async def session(app: web.Application):  # type: ignore[no-untyped-def]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
            sessions.append(client)
            yield

    def started(banner: str) -> None:
        address = banner.split("Running on ")[-1].split(" ")[0]
        print(f"naive server listening on {address}", file=sys.stderr, flush=True)

    app = web.Application()
    app.router.add_get("/wallpaper", wallpaper)
    app.cleanup_ctx.append(session)
    # marsserver's listen queue, so the comparison is of coalescing, not of dropped SYNs.
    web.run_app(app, host="127.0.0.1", port=0, access_log=None, print=started,
                backlog=LISTEN_BACKLOG)


if __name__ == "__main__":
    main()
