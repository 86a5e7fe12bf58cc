"""Small helpers for tests: reaching into an app, and waiting for a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from aiohttp.test_utils import TestClient

from marsserver.handlers import PIPELINE
from marsserver.pipeline import Pipeline


def pipeline_of(client: TestClient[web.Request, web.Application]) -> Pipeline:
    return client.app[PIPELINE]


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Wait for a condition other tasks will make true (yielding, not guessing a delay)."""
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.001)
