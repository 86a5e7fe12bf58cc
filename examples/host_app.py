"""Embedding marsserver: two differently configured instances inside your own aiohttp app.

Curiosity under /curiosity/ and Perseverance under /perseverance/, both on the offline demo
source so this runs anywhere. Swap in `Settings()` / `Settings(rover="perseverance")` for
NASA's live feeds.

    .venv/bin/python examples/host_app.py    # then open http://127.0.0.1:8081/

It listens on 8081, so it runs beside a marsserver on its default 8080.
"""

from __future__ import annotations

from aiohttp import web

from marsserver import Settings, create_app


async def home(request: web.Request) -> web.Response:
    return web.Response(text='<a href="curiosity/">Curiosity</a> '
                             '<a href="perseverance/">Perseverance</a>',
                        content_type="text/html")


def build() -> web.Application:
    """The host app: its own route, and one marsserver per rover under its own prefix.

    Only the app that is run sets the request-line limit, so the host passes marsserver's
    (64 KiB): a long query then gets marsserver's JSON 400, not aiohttp's plain-text one."""
    app = web.Application(handler_args={"max_line_size": 64 * 1024})
    app.router.add_get("/", home)
    app.add_subapp("/curiosity/", create_app(Settings(source="demo")))
    app.add_subapp("/perseverance/",
                   create_app(Settings(source="demo", rover="perseverance", info_ttl=60)))
    return app


if __name__ == "__main__":
    web.run_app(build(), host="127.0.0.1", port=8081)
