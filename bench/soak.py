"""Soak: the README's promises under load and faults at once.

Three `python -m marsserver --cache redis://...` instances share one redis-server behind the
shipped deploy/nginx.conf, in front of a stub NASA with two sols. A mixed load (cached hits,
cold sizes, a new sol, permalinks, bad input, clients hanging up, slow and idle connections)
runs for `--seconds` while, on a schedule scaled to that length, an instance is SIGKILLed and
restarted, Redis restarts, Redis turns slow (300 ms each way), NASA answers 500s, then 429 with
Retry-After, then hangs, and then publishes a new sol. It prints one table and, last:

    soak: requests=R unexpected_5xx=U mismatched=M nasa_calls=C keys=K restarts=N rss_drift=D%

The promises: U = 0 (`expected_5xx` says which 5xx are allowed), M = 0 (every image answer is
byte for byte its photo's permalink at that spec), C <= K x (1 + N), and D <= 10.

    python -m bench.soak [--seconds 180] [--clients 8] [--logs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.nginx_server import nginx_config
from tests.slowproxy import SlowProxy
from tests.stub import IMAGES, Stub

from .common import Service, free_port, serve_stub, start_redis, start_service, until_listening
from .flood import rss_mib
from .throughput import cpu_seconds

#: The sols NASA has at the start (newest last), the one it publishes during the run, and
#: their photos: distinct images, so a wallpaper of the wrong photo cannot match by chance.
SOLS = {4999: tuple(p.name for p in IMAGES[3:6]), 5000: tuple(p.name for p in IMAGES[:3])}
NEW_SOL, NEW_PHOTOS = 5001, tuple(p.name for p in IMAGES[6:9])
UNPUBLISHED = 99999  # a sol NASA never has: a 404, asked for again and again
PHOTOS = {**SOLS, NEW_SOL: NEW_PHOTOS}
HEIGHTS = (720, 1080)  # the cached hits' screen heights
REDIS_DELAY = 0.3  # each way, while Redis is slow
RETRY_AFTER = 3  # seconds, in NASA's 429s
ERROR_TTL = 5.0  # --error-ttl: how long an instance may answer a remembered failure
UPSTREAM_TIMEOUT = 3.0  # --timeout: what makes a hanging NASA a failure
CLIENT_TIMEOUT = 60.0
INSTANCES = 3
SLOW_REQUEST = b"GET /api/photos HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
# Small enough that the caches are full by the end of the warm-up: RSS after it then measures
# what leaks, not a cache filling up.
CACHE_BYTES = "16MiB"
# How long after a NASA fault ends a 5xx may still be NASA's: a remembered failure is
# answered for --error-ttl, a Retry-After hold lasts its seconds, and work begun in the fault
# ends within one more upstream timeout.
GRACE = max(ERROR_TTL, RETRY_AFTER) + UPSTREAM_TIMEOUT


@dataclass(frozen=True)
class Ask:
    """One request of the mix and what its answer depends on: the list of `sol` (None: the
    newest) and, for an image, photo number `photo` of that list at `height`."""

    kind: str
    path: str
    sol: int | None = None
    photo: int | None = None
    height: int | None = None


@dataclass
class Answer:
    ask: Ask
    via: str  # "nginx" or "direct" (an instance, as a load balancer without a cache would)
    start: float
    end: float = 0.0
    status: int = 0  # 0: no answer, `failure` says why
    failure: str = ""
    source: str = ""  # "nginx" for nginx's cache (a cached hit), else the instance's X-Cache
    digest: bytes = b""  # of the body of an image answer
    detail: bytes = b""  # the start of the body of a 5xx


class Nasa(Stub):
    """The stub NASA with sols: it answers the feed by sol (`condition_2`), newest first, can
    publish a new sol, hang, and records every answer it gave: (key, when, outcome), the outcome
    "data", "nothing" (no photos of the sol asked for) or "fault"."""

    def __init__(self) -> None:
        super().__init__()
        self.sols = dict(SOLS)
        self.answered: list[tuple[str, float, str]] = []
        self.released = asyncio.Event()

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        await self._pass("feed", "feed")
        condition = request.query.get("condition_2", "")
        sol = int(condition.split(":")[0]) if condition else None
        if "feed" in self.faults:
            response = await self.faults["feed"](request)
        else:
            response = web.json_response(self.page(sol))
        outcome = ("fault" if response.status != 200 else
                   "data" if sol is None or sol in self.sols else "nothing")
        self.answered.append((list_key(sol), time.monotonic(), outcome))
        return response

    async def _image(self, request: web.Request) -> web.StreamResponse:
        response = await super()._image(request)
        self.answered.append((request.match_info["name"], time.monotonic(),
                              "data" if response.status == 200 else "fault"))
        return response

    def page(self, sol: int | None) -> dict[str, object]:
        """The feed's one page for `sol` (None: every sol, newest first)."""
        items = []
        for number in sorted(self.sols, reverse=True):
            if sol in (None, number):
                page = self.feed([f"{self.base}/images/{n}" for n in self.sols[number]])
                items += [{**item, "sol": number} for item in page["items"]]
        return {"items": items, "more": False, "page": 0, "per_page": 100}

    def hang(self) -> None:
        """Answer nothing until `released` is set (then a 503, to nobody)."""
        async def never(request: web.Request) -> web.Response:
            await self.released.wait()
            return web.Response(status=503)
        self.released.clear()
        self.faults.update(feed=never, image=never)

    def recover(self) -> None:
        self.faults.clear()
        self.released.set()


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def list_key(sol: int | None) -> str:
    return f"list:{'newest' if sol is None else sol}"


class RedisLink(SlowProxy):
    """The instances' one way to Redis: loopback speed until `delay` is set. A connection
    made while Redis restarts is closed, as Redis would refuse it."""

    async def _connect(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        try:
            await super()._connect(reader, writer)
        except OSError:
            writer.close()


@dataclass
class Timeline:
    """When each fault ran (monotonic seconds), what the verdicts are judged against."""

    start: float
    nasa_faults: list[tuple[float, float]] = field(default_factory=list)
    # When every instance was on Redis again after each restart of it.
    redis_restarts: list[float] = field(default_factory=list)
    published: dict[int, float] = field(default_factory=dict)  # sol: when NASA had it
    kills: int = 0
    events: list[str] = field(default_factory=list)

    def sols_of(self, ask: Ask, until: float) -> list[int]:
        """The sols whose list `ask` may have been answered from: its own, or for the newest
        list, the newest at the start and any published before `until`."""
        if ask.sol is not None:
            return [ask.sol]
        return [sol for sol, when in self.published.items() if when <= until and sol >= max(SOLS)]

    def note(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self.start:6.1f} s  {what}")
        print(self.events[-1], file=sys.stderr, flush=True)


def ingredients(ask: Ask, timeline: Timeline, until: float) -> set[str]:
    """What NASA gave that an answer to `ask` is made of: its list, and the image of its photo
    in each sol it may name (for the newest list, any sol published before `until`)."""
    needs = {list_key(ask.sol)}
    if ask.photo is not None:
        needs |= {photos[ask.photo] for sol in timeline.sols_of(ask, until)
                  if ask.photo < len(photos := PHOTOS.get(sol, ()))}
    return needs


def expected_5xx(answer: Answer, timeline: Timeline,
                 nasa: Iterable[tuple[str, float, str]]) -> bool:
    """A 5xx is expected only when nothing cached could answer and NASA failed: a NASA fault
    (widened by GRACE) overlapped the request, and NASA had not given one of its ingredients
    with data since every instance was back on Redis after Redis last restarted (a shared
    cache that lost it, or never had it: a sol NASA had no photos of is a not-found, kept only
    briefly)."""
    failing = any(start <= answer.end and answer.start <= end + GRACE
                  for start, end in timeline.nasa_faults)
    lost = max((t for t in timeline.redis_restarts if t <= answer.start), default=0.0)
    given = {key for key, when, outcome in nasa
             if outcome == "data" and lost < when <= answer.start}
    return failing and bool(ingredients(answer.ask, timeline, answer.end) - given)


def matches(answer: Answer, references: dict[tuple[int, int, int], bytes],
            timeline: Timeline) -> bool:
    """Whether an image answer is byte for byte the permalink of its photo at its height (the
    digest of each, by sol, photo number and height, in `references`), in a sol it may name."""
    return any(references.get((sol, answer.ask.photo or 0, answer.ask.height or 0))
               == answer.digest for sol in timeline.sols_of(answer.ask, answer.end))


class Load:
    """The mixed load's clients and what they saw."""

    def __init__(self, nginx: str, instances: list[str]) -> None:
        self.nginx = nginx
        self.instances = instances  # base URLs, "" while that instance is down
        self.answers: list[Answer] = []
        self.permalinks: dict[tuple[int, int], str] = {}  # (sol, photo number): its path
        self.idle_closed = Counter[str]()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(None))

    async def get(self, ask: Ask, direct: bool = False, hang_up: float | None = None) -> None:
        up = [url for url in self.instances if url]
        base, via = (random.choice(up), "direct") if direct and up else (self.nginx, "nginx")
        answer = Answer(ask, via, time.monotonic())
        self.answers.append(answer)
        try:
            async with asyncio.timeout(hang_up or CLIENT_TIMEOUT), \
                    self.session.get(base + ask.path) as response:
                body = await response.read()
                answer.status = response.status
                answer.source = ("nginx" if response.headers.get("X-Proxy-Cache") == "HIT"
                                 else response.headers.get("X-Cache", ""))
                if response.status == 200 and response.content_type.startswith("image/"):
                    answer.digest = hashlib.blake2b(body, digest_size=16).digest()
                elif response.status == 200 and response.content_type == "application/json":
                    self.learn(body)
                elif response.status >= 500:
                    answer.detail = body[:200]
        except TimeoutError:
            answer.failure = "hung up" if hang_up else "timed out"
        except aiohttp.ClientError as error:
            answer.failure = f"cut ({type(error).__name__})"
        answer.end = time.monotonic()

    def learn(self, body: bytes) -> None:
        """Remember the permalinks a list answer gives, by sol and photo number."""
        listing = json.loads(body)
        if isinstance(listing, dict) and "photos" in listing:
            for number, photo in enumerate(listing["photos"]):
                self.permalinks[listing["sol"], number] = photo["permalink"]

    def asks(self) -> list[tuple[int, Callable[[], Awaitable[None]]]]:
        """The mix, by weight: what one client does next."""
        def wallpaper(kind: str, sol: int | None, photo: int, height: int) -> Ask:
            in_sol = "" if sol is None else f"sol={sol}&"
            return Ask(kind, f"/wallpaper?{in_sol}photo_number={photo}&height={height}",
                       sol, photo, height)

        def hit(sol: int | None) -> Awaitable[None]:
            ask = wallpaper("cached hit", sol, random.randrange(3), random.choice(HEIGHTS))
            return self.get(ask, direct=random.random() < 0.25)

        def listing() -> Awaitable[None]:
            sol = random.choice((None, 4999, 5000))
            return self.get(Ask("list", "/api/photos" + ("" if sol is None else f"?sol={sol}"),
                                sol))

        def permalink() -> Awaitable[None]:
            (sol, photo), path = random.choice(list(self.permalinks.items()))
            height = random.choice(HEIGHTS)
            return self.get(Ask("permalink", f"{path}&height={height}", sol, photo, height))

        def new_sol() -> Awaitable[None]:
            return self.get(random.choice((
                Ask("new sol", f"/api/photos?sol={NEW_SOL}", NEW_SOL),
                wallpaper("new sol", NEW_SOL, random.randrange(3), 720))))

        def bad() -> Awaitable[None]:
            path, sol = random.choice((
                ("/wallpaper?height=abc", None), ("/wallpaper?photo_number=-1", None),
                ("/wallpaper?format=bmp", None), ("/api/photos?sol=-3", None),
                ("/wallpaper?photo_number=99&height=720", None),
                ("/photos/nope/wallpaper?sol=5000&height=100", 5000),
                (f"/api/photos?sol={UNPUBLISHED}", UNPUBLISHED)))
            return self.get(Ask("bad input", path, sol))

        def hang_up() -> Awaitable[None]:
            ask = wallpaper("hung up", random.choice((4999, 5000)), random.randrange(3),
                            random.randint(100, 900))
            return self.get(ask, hang_up=random.uniform(0.005, 0.05))

        return [(40, lambda: hit(None)), (12, lambda: hit(4999)), (8, listing),
                (8, permalink), (4, new_sol), (6, bad), (3, hang_up)]

    async def client(self, until: float) -> None:
        weights, calls = zip(*self.asks(), strict=True)
        while time.monotonic() < until:
            if not self.permalinks:
                await self.get(Ask("list", "/api/photos"))
                continue
            await random.choices(calls, weights)[0]()
            await asyncio.sleep(random.uniform(0.005, 0.03))  # a client's pace, not a wait

    async def cold_sizes(self, until: float) -> None:
        """New sizes one after the other: each one a resize, never enough to fill a queue."""
        while time.monotonic() < until:
            sol, photo = random.choice((4999, 5000)), random.randrange(3)
            height = random.randint(100, 900)
            await self.get(Ask("cold size", f"/wallpaper?sol={sol}&photo_number={photo}"
                                            f"&height={height}", sol, photo, height))

    async def slow_client(self, until: float) -> None:
        """A request written a few bytes at a time over about a second, then read."""
        while time.monotonic() < until:
            port = urlsplit(random.choice([self.nginx, *filter(None, self.instances)])).port
            answer = Answer(Ask("slow client", "/api/photos"), "raw", time.monotonic())
            self.answers.append(answer)
            try:
                async with asyncio.timeout(CLIENT_TIMEOUT):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    try:
                        for at in range(0, len(SLOW_REQUEST), 6):
                            writer.write(SLOW_REQUEST[at:at + 6])
                            await writer.drain()  # raises once the server has gone
                            await asyncio.sleep(0.08)  # the slowness is the test
                        answer.status = int((await reader.readline()).split()[1])
                        await reader.read()
                    finally:
                        writer.close()
            except (OSError, IndexError, ValueError, TimeoutError) as error:
                answer.failure = f"cut ({type(error).__name__})"
            answer.end = time.monotonic()

    async def idle(self, target: str, until: float) -> None:
        """A connection that sends half a request and waits: counted when the server closes
        it, then opened again."""
        while time.monotonic() < until:
            url = self.nginx if target == "nginx" else random.choice(
                [u for u in self.instances if u] or [self.nginx])
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", urlsplit(url).port)
            except OSError:
                await asyncio.sleep(0.5)  # the instance is restarting
                continue
            writer.write(b"GET /api/photos HTTP/1.1\r\nHost: soak\r\n")
            with contextlib.suppress(TimeoutError, OSError):
                async with asyncio.timeout(max(0.0, until - time.monotonic())):
                    await reader.read()
                    self.idle_closed[target] += 1
            writer.close()


@dataclass
class Instance:
    port: int
    log: Path
    service: Service | None = None
    # The RSS of the process now running, sampled from the end of its warm-up (time, MiB);
    # and for each process, once it ended: for how long it was sampled, and its RSS after its
    # warm-up, half-way and at its end.
    samples: list[tuple[float, float]] = field(default_factory=list)
    lives: list[tuple[float, float, float, float]] = field(default_factory=list)
    cpu_start: float = 0.0  # of the process now running, when it started listening
    cpu_used: float = 0.0  # serving, by every process that ran in this slot

    def sample(self) -> None:
        assert self.service is not None
        self.samples.append((time.monotonic(), rss_mib(self.service.process.pid)))

    def stopping(self) -> None:
        """Count the CPU time the process now running used, and its RSS since its warm-up."""
        assert self.service is not None
        pid = self.service.process.pid
        self.cpu_used += cpu_seconds(pid) - self.cpu_start
        if self.samples:
            self.sample()
            (start, first), (end, last) = self.samples[0], self.samples[-1]
            middle = min(self.samples, key=lambda s: abs(s[0] - (start + end) / 2))[1]
            self.lives.append((end - start, first, middle, last))
        self.samples = []


class Soak:
    """The deployment, its faults on a schedule, and the verdicts."""

    def __init__(self, seconds: float, clients: int, scratch: Path) -> None:
        self.seconds = seconds
        self.clients = clients
        self.scratch = scratch
        # Short enough that every NASA fault meets a refresh of each list.
        self.info_ttl = max(5.0, seconds / 18)
        self.instances = [Instance(free_port(), scratch / f"instance{n}.log")
                          for n in range(INSTANCES)]

    async def run(self) -> list[str]:
        nasa, runner = await serve_stub(Nasa())
        self.nasa = nasa
        redis_port = free_port()
        self.redis = await start_redis(redis_port, str(self.scratch))
        self.link = await RedisLink(redis_port, 0.0).start()
        for instance in self.instances:
            await self.start(instance)
        nginx = await self.start_nginx()
        self.timeline = Timeline(time.monotonic(), published=dict.fromkeys(SOLS, 0.0))
        self.load = load = Load(f"http://127.0.0.1:{self.port}",
                                [i.service.url for i in self.instances if i.service])
        try:
            until = self.timeline.start + self.seconds
            tasks = [load.client(until) for _ in range(self.clients)]
            tasks += [load.cold_sizes(until), load.slow_client(until)]
            tasks += [load.idle(target, until) for target in ("nginx", "direct") * 10]
            await asyncio.gather(self.schedule(), self.sample_rss(until), *tasks)
            self.timeline.note("end")
            for instance in self.instances:
                instance.stopping()
            self.nginx_cpu = sum(map(cpu_seconds, children(nginx.pid)))
            return await self.verdicts()
        finally:
            await load.session.close()
            nginx.terminate()
            await nginx.wait()
            for instance in self.instances:
                if instance.service:
                    instance.service.process.terminate()
                    await instance.service.process.wait()
            await self.link.close()
            self.redis.terminate()
            await self.redis.wait()
            nasa.recover()
            await runner.cleanup()

    async def start(self, instance: Instance) -> None:
        instance.service = await start_service(
            self.nasa, "--cache", self.link.url(), "--info-ttl", str(self.info_ttl),
            "--timeout", str(UPSTREAM_TIMEOUT), "--error-ttl", str(ERROR_TTL),
            "--access-log", "off", "--cache-bytes", CACHE_BYTES,
            port=instance.port, log=instance.log)
        instance.cpu_start = cpu_seconds(instance.service.process.pid)

    async def start_nginx(self) -> asyncio.subprocess.Process:
        binary = shutil.which("nginx", path=os.pathsep.join([os.environ["PATH"], "/usr/sbin"]))
        if binary is None:
            raise SystemExit("this benchmark needs nginx: apt-get install nginx-light")
        self.port = free_port()
        config = nginx_config(self.scratch, self.port, [i.port for i in self.instances], 1024)
        with (self.scratch / "nginx.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                binary, "-c", str(config), "-g", "daemon off;", stderr=log)
        await until_listening(self.port)
        return process

    async def schedule(self) -> None:
        """The faults, each at its share of the run."""
        s, warm = self.seconds, self.seconds * 0.1
        steps: list[tuple[float, Callable[[], Coroutine[None, None, None]]]] = [
            (0.10, self.warmed_up), (0.15, lambda: self.kill(0, warm)),
            (0.25, self.restart_redis), (0.32, lambda: self.slow_redis(0.10 * s)),
            (0.48, lambda: self.nasa_fault("500s", 0.08 * s)),
            (0.56, lambda: self.nasa_fault("429s", 0.08 * s)),
            (0.64, lambda: self.nasa_fault("hangs", 0.08 * s)),
            (0.80, self.publish), (0.85, lambda: self.kill(1, warm))]
        pending: list[asyncio.Task[None]] = []
        for share, step in steps:
            await asyncio.sleep(max(0.0, self.timeline.start + share * s - time.monotonic()))
            pending.append(asyncio.create_task(step()))
        await asyncio.gather(*pending)

    async def sample_rss(self, until: float) -> None:
        """Every second, the RSS of each process past its warm-up."""
        while time.monotonic() < until:
            for instance in self.instances:
                if instance.samples:
                    instance.sample()
            await asyncio.sleep(1.0)  # a sampling period

    async def warmed_up(self) -> None:
        for instance in self.instances:
            instance.sample()
        self.timeline.note("warmed up: RSS measured")

    async def kill(self, number: int, warm: float) -> None:
        instance = self.instances[number]
        assert instance.service is not None
        self.load.instances[number] = ""
        instance.stopping()
        instance.service.process.kill()
        await instance.service.process.wait()
        await instance.service.drain
        self.timeline.kills += 1
        self.timeline.note(f"instance {number} SIGKILLed")
        await self.start(instance)
        self.load.instances[number] = instance.service.url
        self.timeline.note(f"instance {number} restarted")
        await asyncio.sleep(warm)  # its own warm-up before its RSS counts
        instance.sample()

    async def restart_redis(self) -> None:
        self.redis.terminate()
        await self.redis.wait()
        self.redis = await start_redis(self.link.target_port, str(self.scratch))
        self.timeline.note("Redis restarted (empty)")
        self.timeline.redis_restarts.append(await self.shared_again(time.monotonic()))
        self.timeline.note("every instance shares the cache again")

    async def shared_again(self, listening: float) -> float:
        """When every instance is on Redis again, at least 3 s after it listened (an instance
        notices a restart at its next call): until then, what an instance fetches may stay in
        its memory only, as the README says it serves while Redis is down."""
        while True:
            await asyncio.sleep(0.2)  # polling /healthz, as a monitor would
            if time.monotonic() - listening >= 3 and all(
                    [await self.on_redis(url) for url in self.load.instances if url]):
                return time.monotonic()

    async def on_redis(self, url: str) -> bool:
        """Whether the instance at `url` says it uses Redis (degraded only by NASA, if at all)."""
        with contextlib.suppress(aiohttp.ClientError):
            async with self.load.session.get(url + "/healthz") as response:
                health = await response.json()
                return bool(health["status"] == "ok" or health["upstream"] == "failing")
        return False

    async def slow_redis(self, seconds: float) -> None:
        self.link.delay = REDIS_DELAY
        self.timeline.note(f"Redis slow: {REDIS_DELAY * 1000:.0f} ms each way")
        await asyncio.sleep(seconds)
        self.link.delay = 0.0
        self.timeline.note("Redis fast again")

    async def nasa_fault(self, how: str, seconds: float) -> None:
        start = time.monotonic()
        if how == "500s":
            self.nasa.fail("feed", 500)
            self.nasa.fail("image", 500)
        elif how == "429s":
            self.nasa.recover()
            for kind in ("feed", "image"):
                self.nasa.fail(kind, 429, b"slow down", **{"Retry-After": str(RETRY_AFTER)})
        else:
            self.nasa.hang()
        self.timeline.note(f"NASA {how}")
        await asyncio.sleep(seconds)
        if how == "hangs":
            self.nasa.recover()
            self.timeline.note("NASA well again")
        self.timeline.nasa_faults.append((start, time.monotonic()))

    async def publish(self) -> None:
        self.nasa.sols[NEW_SOL] = NEW_PHOTOS
        self.timeline.published[NEW_SOL] = time.monotonic()
        self.timeline.note(f"NASA publishes sol {NEW_SOL}")

    async def references(self) -> dict[tuple[int, int, int], bytes]:
        """Each photo's permalink bytes at each height an image answer had, from an
        instance once the faults are over: what every image answer must equal."""
        base = next(url for url in self.load.instances if url)
        for sol in PHOTOS:
            await self.load.get(Ask("reference", f"/api/photos?sol={sol}", sol), direct=True)
        wanted = {(sol, a.ask.photo, a.ask.height) for a in self.load.answers if a.digest
                  for sol in self.timeline.sols_of(a.ask, a.end)
                  if a.ask.photo is not None and a.ask.height is not None}
        references: dict[tuple[int, int, int], bytes] = {}
        for sol, photo, height in sorted(wanted):
            if (sol, photo) in self.load.permalinks:
                path = f"{self.load.permalinks[sol, photo]}&height={height}"
                async with self.load.session.get(base + path) as response:
                    references[sol, photo, height] = hashlib.blake2b(
                        await response.read(), digest_size=16).digest()
        return references

    async def verdicts(self) -> list[str]:
        answers = [a for a in self.load.answers if a.ask.kind != "reference"]
        references = await self.references()
        calls, keys = self.nasa_calls()
        verdicts = Verdicts(
            answers,
            [a for a in answers
             if a.status >= 500 and not expected_5xx(a, self.timeline, self.nasa.answered)],
            [a for a in answers if a.digest and not matches(a, references, self.timeline)],
            len(references), calls, keys, self.timeline.kills, len(self.timeline.redis_restarts),
            max(((end - start) / start * 100 for i in self.instances
                 for span, start, _, end in i.lives if span >= self.seconds / 4), key=abs))
        rows = verdicts.rows(self.seconds) + self.measures(answers)
        return ["", "| measure | value |", "| --- | --- |",
                *(f"| {name} | {value} |" for name, value in rows), "",
                "schedule:", *self.timeline.events, "",
                *verdicts.cases(self.timeline.start), verdicts.line()]

    def nasa_calls(self) -> tuple[int, int]:
        """Calls NASA answered (with data or with nothing, not those a fault answered), and the
        distinct keys they were for: a list once per --info-ttl (it is due again after that),
        an image once."""
        given = [(key, when) for key, when, outcome in self.nasa.answered
                 if outcome != "fault"]
        keys = {(key, int((when - self.timeline.start) // self.info_ttl)
                 if key.startswith("list:") else 0) for key, when in given}
        return len(given), len(keys)

    def measures(self, answers: list[Answer]) -> list[tuple[str, str]]:
        """The table's rows beside the promises: where answers came from, what they cost, how
        memory went, how NASA and the idle connections fared."""
        served = Counter("nginx's cache" if a.source == "nginx" else
                         f"X-Cache {a.source}" if a.source else "an error" for a in answers
                         if a.status)
        through = sum(a.via == "nginx" and a.status > 0 for a in answers)
        reached = sum(a.status > 0 and a.source != "nginx" for a in answers)
        instance_cpu = sum(i.cpu_used for i in self.instances)
        slowest = {source: max((a.end - a.start for a in answers if a.source == source),
                               default=0.0) for source in ("nginx", "HIT")}
        per_key = Counter(key for key, _, outcome in self.nasa.answered if outcome != "fault")
        return [
            ("answered from", ", ".join(f"{k} {v / sum(served.values()):.0%}"
                                        for k, v in sorted(served.items()))),
            ("NASA calls answered by a fault",
             str(sum(outcome == "fault" for _, _, outcome in self.nasa.answered))),
            ("the key NASA was asked for most", "{} ({} calls answered)".format(
                *per_key.most_common(1)[0])),
            ("CPU per request", f"nginx {self.nginx_cpu / through * 1e6:.0f} us over {through:,}"
                                f" answers; instances {instance_cpu / reached * 1e6:.0f} us over"
                                f" {reached:,} answers that reached them"),
            ("RSS after warm-up -> half-way -> at the end, each process (drift: of those "
             "measured for a quarter of the run or more)",
             ", ".join(f"instance {n}: {start:.0f} -> {middle:.0f} -> {end:.0f} MiB in "
                       f"{span:.0f} s" for n, i in enumerate(self.instances)
                       for span, start, middle, end in i.lives)),
            ("slowest cached hit", f"nginx's cache {slowest['nginx'] * 1000:.0f} ms, an "
                                   f"instance's HIT {slowest['HIT'] * 1000:.0f} ms"),
            ("idle connections closed by", ", ".join(f"{k} {v}" for k, v in
                                                   sorted(self.load.idle_closed.items()))
             or "nobody"),
            ("ERROR lines in the instances' logs", str(sum(
                line.split(" ", 3)[2:3] == ["ERROR"] for i in self.instances
                for line in i.log.read_text(errors="replace").splitlines()))),
        ]


@dataclass
class Verdicts:
    """The promises, as the run kept them or not."""

    answers: list[Answer]
    unexpected: list[Answer]  # 5xx that expected_5xx does not allow
    mismatched: list[Answer]  # image answers that are not their permalink's bytes
    references: int
    calls: int  # what NASA answered
    keys: int
    kills: int
    redis_restarts: int
    drift: float  # %

    def rows(self, seconds: float) -> list[tuple[str, str]]:
        kinds = Counter(a.ask.kind for a in self.answers)
        classes = Counter(f"{a.status // 100}xx" if a.status else a.failure
                          for a in self.answers)
        total, restarts = len(self.answers), self.kills + self.redis_restarts
        return [
            ("requests", f"{total:,} in {seconds:.0f} s ({total / seconds:.0f}/s): "
                         + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items()))),
            ("by status class", ", ".join(f"{k} {v:,}" for k, v in sorted(classes.items()))),
            ("5xx not expected", f"**{len(self.unexpected)}** of "
             f"{sum(a.status >= 500 for a in self.answers):,} (expected: NASA failing and an "
             "ingredient not in Redis)"),
            ("bytes differing from the permalink's", f"**{len(self.mismatched)}** of "
             f"{sum(bool(a.digest) for a in self.answers):,} image answers "
             f"({self.references} references)"),
            ("NASA calls answered / distinct keys", f"**{self.calls} / {self.keys}** (bound: "
             f"keys x (1 + {restarts} restarts) = {self.keys * (1 + restarts)}; only a Redis "
             f"restart empties the shared cache, so keys x (1 + {self.redis_restarts}) = "
             f"{self.keys * (1 + self.redis_restarts)}, plus what the SIGKILLed processes were "
             "fetching, is closer)"),
        ]

    def cases(self, start: float) -> list[str]:
        """The first few answers that broke a promise, to reproduce them by."""
        return [f"  {a.status or a.failure} {a.ask.kind} via {a.via} "
                f"({a.source or 'no X-Cache'}) at {a.start - start:.1f}-{a.end - start:.1f} s: "
                f"{a.ask.path} {a.detail[:120]!r}"
                for a in (self.unexpected + self.mismatched)[:10]]

    def line(self) -> str:
        return (f"soak: requests={len(self.answers)} unexpected_5xx={len(self.unexpected)} "
                f"mismatched={len(self.mismatched)} nasa_calls={self.calls} keys={self.keys} "
                f"restarts={self.kills + self.redis_restarts} rss_drift={self.drift:.1f}%")


async def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--seconds", type=float, default=180.0)
    cli.add_argument("--clients", type=int, default=8)
    cli.add_argument("--logs", type=Path, help="keep the instances' and nginx's logs here")
    args = cli.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.logs or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        rows = await Soak(args.seconds, args.clients, directory).run()
    print("\n".join(rows), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
