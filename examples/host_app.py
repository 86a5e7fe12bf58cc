"""Embedding marsserver: two differently configured instances inside your own aiohttp app.

Curiosity under /curiosity/ and Perseverance under /perseverance/, both on the offline demo
source so this runs anywhere. Swap in `Settings()` / `Settings(rover="perseverance")` for
NASA's live feeds.

    .venv/bin/python examples/host_app.py    # then open http://127.0.0.1:8090/

It listens on 8090, a port of its own: the quick start's marsserver has 8080, and the nginx
deployment (deploy/nginx.conf) 8000, 8081 and 8082.
"""

from __future__ import annotations

from aiohttp import web

from marsserver import Settings, create_app

PORT = 8090
MOUNTS = {
    "/curiosity/": Settings(source="demo"),
    "/perseverance/": Settings(source="demo", rover="perseverance", info_ttl=60),
}


async def home(request: web.Request) -> web.Response:
    return web.Response(text='<a href="curiosity/">Curiosity</a> '
                             '<a href="perseverance/">Perseverance</a>',
                        content_type="text/html")


async def to_the_mount(request: web.Request) -> web.StreamResponse:
    """`/curiosity` is not the mount `/curiosity/`: without this, aiohttp answers a plain-text
    404 to whoever leaves off the slash."""
    query = request.rel_url.raw_query_string
    raise web.HTTPPermanentRedirect(request.path + "/" + (f"?{query}" if query else ""))


def build() -> web.Application:
    """The host app: its own route, and one marsserver per rover under its own prefix.

    Only the app that is run sets the request-line limit, so the host passes marsserver's
    (64 KiB): a long query then gets marsserver's JSON 400, not aiohttp's plain-text one.
    Each prefix without its slash redirects to it; that route comes before the mount, as
    aiohttp tries routes for one path in the order they were added."""
    app = web.Application(handler_args={"max_line_size": 64 * 1024})
    app.router.add_get("/", home)
    for prefix, settings in MOUNTS.items():
        app.router.add_get(prefix.rstrip("/"), to_the_mount)
        app.add_subapp(prefix, create_app(settings))
    return app


if __name__ == "__main__":
    web.run_app(build(), host="127.0.0.1", port=PORT)
