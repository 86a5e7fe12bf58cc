"""Shared test fixtures: a real local stub of NASA's feed, mocked upstreams, and small helpers."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from unittest.mock import Mock

import aioresponses.core
import pytest
from aiohttp import ClientResponse, TCPConnector, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient, AiohttpServer

from marsserver import Settings, create_app, imaging
from marsserver.imaging import Spec

from .stub import Stub


class _ShimResponse(ClientResponse):
    """aioresponses 0.7.9 builds `ClientResponse` without `stream_writer`, which aiohttp >= 3.13
    requires (pnuckowski/aioresponses#289). Supply a stand-in until a fixed release exists."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", Mock(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def mock_nasa(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses.aioresponses]:
    """aioresponses for unit tests; the local test client and stub still pass through."""
    monkeypatch.setattr(aioresponses.core, "ClientResponse", _ShimResponse)
    with aioresponses.aioresponses(passthrough=["http://127.0.0.1"]) as mocked:
        yield mocked


@pytest.fixture
async def stub(aiohttp_server: AiohttpServer) -> Stub:
    fake = Stub()
    fake.port = (await aiohttp_server(fake.app())).port
    return fake


@pytest.fixture
def resizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Heights of every resize the pipeline runs (it runs them in threads)."""
    done: list[int] = []
    lock = threading.Lock()
    real = imaging.wallpaper

    def counting(data: bytes, spec: Spec, **kwargs: Any) -> bytes:
        with lock:
            done.append(spec.height)
        return real(data, spec, **kwargs)

    monkeypatch.setattr(imaging, "wallpaper", counting)
    return done


@pytest.fixture
def client_for(aiohttp_client: AiohttpClient,
               ) -> Callable[[Settings], Awaitable[TestClient[web.Request, web.Application]]]:
    async def make(settings: Settings) -> TestClient[web.Request, web.Application]:
        # No client connection limit, so bursts really are concurrent. (aiohttp's TestServer
        # cancels handlers whose client goes away: the harshest case for coalescing.)
        return await aiohttp_client(create_app(settings), connector=TCPConnector(limit=0))
    return make


@pytest.fixture
async def demo_client(aiohttp_client: AiohttpClient,
                      ) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_app(Settings(source="demo")))
