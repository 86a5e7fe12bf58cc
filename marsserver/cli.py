"""The command line: flags (and `MARS_*` variables) in, a running server out.

Every flag comes from a `Settings` field, so `--help`, the environment and the embedding API
always agree. Bad configuration ends in one line on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import errno
import logging
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import partial
from time import monotonic
from typing import NoReturn
from urllib.parse import urlsplit

from aiohttp import web

from .http import signing
from .http.accesslog import run_app_options
from .http.app import SHUTDOWN_GRACE, create_app
from .http.malformed import quiet_malformed_requests
from .settings import LOOPS, ROVERS, SOURCES, Settings, env_name, flag_name
from .sources import NASA_IMAGE_HOSTS

log = logging.getLogger("marsserver")
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
DEFAULTS_IN_WORDS = {"image_hosts": ",".join(NASA_IMAGE_HOSTS)}  # what None stands for
# Connections the kernel queues for us to accept (it caps this at net.core.somaxconn).
# aiohttp's 128 overflowed in a 500-connection burst on a busy machine, and each SYN dropped
# then cost its client a 1 s retransmit: twice the whole burst's time.
LISTEN_BACKLOG = 4096
# Seconds in-flight requests get to finish on SIGTERM / SIGINT: the app cancels work still
# running at SHUTDOWN_GRACE, so its waiters' 503s are written within this.
SHUTDOWN_TIMEOUT = SHUTDOWN_GRACE + 1.0
# Open connections per process, as many as one nginx worker takes by default: past it, the
# oldest are closed (CappedConnections), which bounds what connections hold (docs/operating.md).
MAX_CONNECTIONS = 512
BURST_SETTLES = 0.01  # seconds after a connection is accepted until its burst is counted
WORKER_ENV = "MARSSERVER_WORKER"  # set in the environment of workers started by --workers


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit status 2: configuration errors are for people, not tracebacks."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    cli = _Parser(
        prog="marsserver",
        description="Serve the Mars rovers' newest photos as wallpapers.",
        epilog="Every flag can also be set as an environment variable MARS_<FLAG> "
               "(e.g. MARS_API_KEY); a flag wins over its variable. "
               "`marsserver sign [--signing-key KEYS] URL` prints URL signed for "
               "--signing-key.",
    )
    for field in dataclasses.fields(Settings):
        default = DEFAULTS_IN_WORDS.get(field.name, field.default)
        if default is None:
            default = "the source's own"
        if isinstance(default, tuple):
            default = ",".join(default) or "none"
        cli.add_argument(
            flag_name(field.name), dest=field.name, metavar=field.name.upper(),
            choices={"source": SOURCES, "loop": LOOPS, "rover": ROVERS}.get(field.name),
            help=f"{field.metadata['help']} (default: {default}; env {env_name(field.name)})",
        )
    return cli


def settings_from(argv: Sequence[str] | None, environ: dict[str, str]) -> Settings:
    """Settings from the environment, overridden by the flags given in `argv`."""
    cli = parser()
    flags = {k: v for k, v in vars(cli.parse_args(argv)).items() if v is not None}
    env = {f.name: environ[env_name(f.name)] for f in dataclasses.fields(Settings)
           if env_name(f.name) in environ}
    try:
        return Settings.from_strings({**env, **flags})
    except ValueError as error:
        cli.error(str(error))


def sign(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """`marsserver sign [--signing-key KEYS] URL`: `URL` with the `sig` the first key makes,
    for whatever hands out free sizes (a page, a script); keys are read as the server reads
    them, so a key the server would refuse is refused here too."""
    cli = _Parser(prog="marsserver sign",
                  description="Print URL signed for a deployment with --signing-key.")
    cli.add_argument("--signing-key", metavar="KEYS",
                     help=f"the server's keys; the first signs (default: env "
                          f"{env_name('signing_key')})")
    cli.add_argument("url", metavar="URL", help="a full URL, or a path and query, exactly as "
                     "clients will send it")
    given = cli.parse_args(argv)
    text = given.signing_key
    if text is None:
        text = environ.get(env_name("signing_key"), "")
    try:
        keys = Settings.from_strings({"signing_key": text}).signing_key
    except ValueError as error:
        cli.error(str(error))
    if not keys:
        cli.error(f"no key: give --signing-key or set {env_name('signing_key')}")
    return signing.sign(given.url, keys[0])


def release_large_frees() -> None:
    """Make glibc return freed image buffers to the OS instead of keeping them for reuse.

    Pillow allocates large images in blocks of up to 16 MiB. glibc's adaptive mmap threshold
    soon serves blocks that size from its heap, which it rarely shrinks, so the process would
    stay at its high-water mark after one burst of large wallpapers. Fixed thresholds keep RSS
    close to what is really in use. They are 1 MiB and 16 MiB, not glibc's 128 KiB: asyncio
    allocates a 256 KiB buffer for every socket read, and mapping and unmapping that each time
    would slow every request (docs/operating.md, Memory).
    MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ win; nothing happens on other C libraries.
    """
    if {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, 2**20)
    libc.mallopt(M_TRIM_THRESHOLD, 16 * 2**20)


def raise_open_files_limit() -> None:
    """Raise the soft limit on open files to the hard one: every connection is a file, and at
    the common soft limit of 1,024 a thousand idle connections would leave none for the next
    client (or for NASA and Redis). The hard limit is the operator's; nothing happens where
    it cannot be read or set."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return


def event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """uvloop when asked for, or for `auto` when installed (the `fast` extra); else asyncio's."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                sys.exit("marsserver: error: --loop uvloop needs the fast extra (uvloop)")
        else:
            class Loop(uvloop.Loop):
                """uvloop telling time by asyncio's clock. aiohttp times every request for the
                access log with the loop's clock, and uvloop's counts whole milliseconds, so
                every duration would read 0.000ms or 1.000ms. `monotonic` reads the clock
                libuv reads (CLOCK_MONOTONIC), to the nanosecond, for no more than uvloop's own
                `time()`: nothing per request is added. uvloop's timers keep their own clock."""

                time = staticmethod(monotonic)

            return Loop()
    return asyncio.new_event_loop()


def main(argv: Sequence[str] | None = None) -> None:
    release_large_frees()
    raise_open_files_limit()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["sign"]:
        print(sign(arguments[1:], os.environ))
        return
    settings = settings_from(arguments, dict(os.environ))
    if settings.workers > 1:
        sys.exit(run_workers(settings.workers, arguments))
    serve(settings, reuse_port=WORKER_ENV in os.environ)


def run_workers(count: int, arguments: list[str]) -> int:
    """Run `count` copies of this command on one port (SO_REUSEPORT) and wait for them.

    The kernel spreads connections among them. SIGTERM and SIGINT are passed on (handlers are
    in place before the first worker starts, so none is orphaned), and when one worker dies
    on its own the others are stopped too: a half-capacity server must not look healthy.
    The exit status is the first non-zero one, 128 + N for death by signal N.
    """
    command = [sys.executable, "-m", "marsserver", *arguments, "--workers", "1"]
    workers: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int = signal.SIGTERM, _: object = None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(count):
        if not stopping:
            workers.append(subprocess.Popen(command, env={**os.environ, WORKER_ENV: "1"}))
    log.info("marsserver started %d workers: %s", len(workers),
             ", ".join(str(w.pid) for w in workers))
    codes: list[int] = []
    while len(codes) < len(workers):
        pid, status = os.wait()
        codes.append(_exit_code(os.waitstatus_to_exitcode(status)))
        if not stopping:
            log.error("worker %d exited on its own (status %d): stopping the others", pid,
                      codes[-1])
            stop()
    return next((code for code in codes if code), 0)


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


def serve(settings: Settings, reuse_port: bool = False) -> None:
    """Run one server process until SIGTERM or SIGINT.

    What `web.run_app` does, with a listening socket of our own: its protocol factory caps the
    connections (`CappedConnections`), which aiohttp has no setting for.
    """
    loop = event_loop(settings.loop)
    asyncio.set_event_loop(loop)
    quiet_malformed_requests()
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=True, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           **run_app_options(app, settings.access_log))
    main = loop.create_task(_listen(runner, settings, reuse_port))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(main)
    except OSError as error:
        sys.exit(cannot_listen(settings, error))
    finally:
        _cancel_the_rest(loop)
        loop.close()


async def _listen(runner: web.AppRunner, settings: Settings, reuse_port: bool) -> None:
    """Start the app, listen, and serve until cancelled; then shut down as aiohttp does."""
    loop = asyncio.get_running_loop()
    await runner.setup()
    try:
        assert runner.server is not None  # set up
        listener = await loop.create_server(
            CappedConnections(runner.server, MAX_CONNECTIONS, SHUTDOWN_TIMEOUT),
            settings.host, settings.port,
            backlog=LISTEN_BACKLOG, reuse_port=reuse_port or None)
        try:
            port = listener.sockets[0].getsockname()[1]
            host = f"[{settings.host}]" if ":" in settings.host else settings.host
            name = "asyncio" if isinstance(loop, asyncio.BaseEventLoop) else "uvloop"
            log.info("%s", start_line(f"http://{host}:{port}", settings, name))
            await asyncio.Event().wait()  # until SIGTERM or SIGINT
        finally:
            listener.close()
    finally:
        await runner.cleanup()


def _cancel_the_rest(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending when the server has stopped, and wait for them, so none
    is destroyed pending; then close the async generators."""
    rest = asyncio.all_tasks(loop)
    for task in rest:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


class CappedConnections:
    """aiohttp's protocol factory, except that past `cap` open connections each new one shuts
    the oldest down as aiohttp does at exit (an idle one, or one still sending its headers,
    closes at once; a busy one after its answer, given `grace` seconds): a client holding many
    connections makes room for the next instead of locking it out, and the memory connections
    hold stays bounded."""

    def __init__(self, server: web.Server, cap: int, grace: float) -> None:
        self._server = server
        self._cap = cap
        self._grace = grace
        self._closing: dict[web.RequestHandler, asyncio.Task[None]] = {}
        self._trim_due: asyncio.TimerHandle | None = None

    def __call__(self) -> web.RequestHandler:
        self._trim(room=1)
        if self._trim_due is None:
            # A burst of connections is accepted in one go, each counted by the server only
            # once its connection_made has run: look again once the burst is in.
            self._trim_due = asyncio.get_running_loop().call_later(BURST_SETTLES, self._settled)
        return self._server()

    def _settled(self) -> None:
        self._trim_due = None
        self._trim(room=0)

    def _trim(self, room: int) -> None:
        """Shut the oldest open connections down until `room` more fit under the cap."""
        still_open = [c for c in self._server.connections if c not in self._closing]
        for oldest in still_open[:max(0, len(still_open) + room - self._cap)]:
            oldest.close()  # stops waiting for a request, as aiohttp's own shutdown begins
            closing = self._closing[oldest] = asyncio.ensure_future(oldest.shutdown(self._grace))
            closing.add_done_callback(partial(self._closed, oldest))

    def _closed(self, connection: web.RequestHandler, _: asyncio.Task[None]) -> None:
        del self._closing[connection]


def start_line(address: str, settings: Settings, loop: str) -> str:
    """What the log says once the server listens: where, what it serves from, which cache and
    loop, and the URL to open (a wildcard address is not one a browser can open)."""
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    near = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    return (f"marsserver listening on {address}, source {settings.source}, cache "
            f"{cache_in_words(settings.cache)}, {loop} loop: open {scheme}://{near}:{port}/")


def cache_in_words(cache: str) -> str:
    """`memory`, or the Redis URL without what may be secret: its user, password and query
    (redis-py reads a password from `?password=` too)."""
    if cache == "memory":
        return cache
    url = urlsplit(cache)
    return f"{url.scheme}://{url.netloc.rpartition('@')[2]}{url.path}"


def cannot_listen(settings: Settings, error: OSError) -> str:
    """The one line that ends the process when the port cannot be had: the system's reason in
    its own words (asyncio and uvloop word it differently), and for a port in use, what to do."""
    reason = os.strerror(error.errno) if error.errno else str(error)
    line = f"marsserver: cannot listen on {settings.host}:{settings.port}: {reason}"
    if error.errno == errno.EADDRINUSE:
        line += "; another program has that port: pick another with --port (0 picks a free one)"
    return line
