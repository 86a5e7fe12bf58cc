"""marsserver with aiohttp's own access logger, as it logged before marsserver.http.accesslog.

    python -m bench.aiohttp_log [marsserver flags]

The throughput bench runs it next to `--access-log on` to show what the batched logger saves.
Its lines go through `logging`, in the CLI's format, exactly as `serve()` used to send them.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from marsserver import cli


def aiohttp_access_log(app: web.Application, mode: str) -> dict[str, Any]:
    return {"access_log": logging.getLogger("aiohttp.access")}


if __name__ == "__main__":
    cli.run_app_options = aiohttp_access_log  # type: ignore[attr-defined]  # serve() looks it up
    cli.main()
