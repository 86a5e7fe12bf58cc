"""The ceiling: a bare aiohttp server answering fixed bytes from memory.

    python -m bench.bare WALLPAPER_FILE LIST_FILE [--loop asyncio|uvloop] [--set DIR]

It serves `/wallpaper` and `/` with the same bytes and content types marsserver sends, so the
throughput bench compares marsserver's cached hits with the least a handler can do. With
`--set DIR` (`urls.txt`, and `N.jpg` for its Nth line) `/wallpaper` answers each URL with its
own body, as marsserver does for a working set: distinct bodies cost the kernel more to copy
than one that stays in the CPU's cache, and the ceiling must pay that too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from aiohttp import web


def main() -> None:
    cli = argparse.ArgumentParser()
    cli.add_argument("wallpaper", type=Path)
    cli.add_argument("listing", type=Path)
    cli.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    cli.add_argument("--set", type=Path, help="a working set: urls.txt and N.jpg per URL")
    args = cli.parse_args()
    wallpaper, listing = args.wallpaper.read_bytes(), args.listing.read_bytes()
    bodies = {} if args.set is None else {
        url: (args.set / f"{n}.jpg").read_bytes()
        for n, url in enumerate((args.set / "urls.txt").read_text().split())}

    async def wallpaper_handler(request: web.Request) -> web.Response:
        return web.Response(body=bodies.get(request.raw_path, wallpaper),
                            content_type="image/jpeg")

    async def list_handler(request: web.Request) -> web.Response:
        return web.Response(body=listing, content_type="application/json")

    app = web.Application()
    app.router.add_get("/wallpaper", wallpaper_handler)
    app.router.add_get("/", list_handler)
    if args.loop == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    def started(banner: str) -> None:
        address = banner.split("Running on ")[-1].split(" ")[0]
        print(f"bare server listening on {address}, source none", file=sys.stderr, flush=True)

    web.run_app(app, host="127.0.0.1", port=0, access_log=None, print=started, loop=loop)


if __name__ == "__main__":
    main()
