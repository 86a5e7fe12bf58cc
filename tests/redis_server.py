"""A throwaway `redis-server` on a free loopback port, optionally with TLS, for the tests."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from .helpers import require_tool


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server of our own that can be stopped, started again on the same port, or
    killed; with `tls` (a directory holding ca.crt, server.crt, server.key) it speaks TLS only;
    `options` are more of its command-line options (`--maxmemory 2mb`)."""

    def __init__(self, workdir: Path, tls: Path | None = None, options: tuple[str, ...] = (),
                 ) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.tls = tls
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        self.binary = require_tool("redis-server", "apt-get install redis-server; .ci/run does")

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        ports = ["--port", str(self.port)]
        if self.tls:
            ports = ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", str(self.tls / "server.crt"),
                     "--tls-key-file", str(self.tls / "server.key"),
                     "--tls-ca-cert-file", str(self.tls / "ca.crt"), "--tls-auth-clients", "no"]
        self.process = subprocess.Popen(
            [self.binary, *ports, "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir), *self.options],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.process.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)  # polling a port the server has not opened yet

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)
