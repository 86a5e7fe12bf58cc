"""A loopback TCP proxy that makes a server far away: every byte arrives `delay` seconds late.

Latency, not bandwidth: chunks are forwarded in order, each `delay` after it was read, without
waiting for the chunks before it (a link 300 ms away still moves megabytes per second).
"""

from __future__ import annotations

import asyncio
import contextlib


class SlowProxy:
    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> SlowProxy:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, scheme: str = "redis") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/0"

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await self._server.wait_closed()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        late: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await late.get())[1]:
                await asyncio.sleep(max(0.0, item[0] - loop.time()))  # the link's latency
                sink.write(item[1])
                await sink.drain()
            sink.close()

        delivery = asyncio.create_task(deliver())
        try:
            while chunk := await source.read(65536):
                late.put_nowait((loop.time() + self.delay, chunk))
            late.put_nowait((loop.time() + self.delay, b""))
            await delivery
        except (ConnectionError, asyncio.CancelledError):
            delivery.cancel()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await delivery
            sink.close()
