"""Settings: the one description of every option, shared by the CLI, the environment and embedders.

Each field carries its help text and its string parser in its metadata, so the command line
(`--info-ttl`), the environment (`MARS_INFO_TTL`) and `Settings(info_ttl=...)` cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

SOURCES = ("msl", "m2020", "mars-photos", "demo")
ROVERS = ("curiosity", "perseverance")
LOOPS = ("auto", "asyncio", "uvloop")
ACCESS_LOGS = ("on", "off", "json")
ENV_PREFIX = "MARS_"
MIN_KEY_BYTES = 16  # an HMAC is as strong as its key: a short one can be guessed
_HOST_PORT = re.compile(r"^[a-z0-9.-]+(:[0-9]{1,5})?$")


def _option(default: T, help: str, parse: Callable[[str], T], secret: bool = False) -> T:
    """Declare a settings field together with its help text and its parser from text; a
    `secret` one is left out of the settings' repr, so no log or traceback shows it."""
    return field(default=default, repr=not secret, metadata={"help": help, "parse": parse})


def _hosts(text: str) -> tuple[str, ...] | None:
    hosts = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    return hosts or None


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _access_log(text: str) -> str:
    """on / off / json; the boolean spellings the option took before json still work."""
    try:
        return "on" if _flag(text) else "off"
    except ValueError:
        return text.lower()


def _keys(text: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in text.split(",") if key.strip())


def _optional(text: str) -> str | None:
    return text or None


_SIZE = re.compile(r"([0-9]+) *((?:[kmg]i?)?)b?", re.ASCII | re.IGNORECASE)
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def _size(text: str) -> int:
    """A number of bytes, plain or with a unit, any case, `B` optional: `64MiB`, `64 MiB`, `512M`.

    K, M and G are powers of 1000 and KiB, MiB and GiB powers of 1024, as the SI and IEC
    define them (and Kubernetes reads them): `512M` is 512,000,000 bytes, `512MiB` 536,870,912.
    Named `_size` so that errors read "is not a valid size".
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    return int(match[1]) * _UNITS[match[2].lower()]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything an operator or an embedding app can configure; defaults are production-ready."""

    host: str = _option("127.0.0.1", "address to listen on", str)
    port: int = _option(8080, "TCP port to listen on (0 picks a free one)", int)
    access_log: str = _option("on", "one log line per request: on, off, or json (one JSON object "
                              "per line)", _access_log)
    loop: str = _option("auto", "event loop: auto (uvloop when installed), asyncio, uvloop", str)
    source: str = _option("msl", "photo source: " + ", ".join(SOURCES), str)
    rover: str | None = _option(None, "curiosity or perseverance: picks msl or m2020 as source",
                                _optional)
    api_url: str | None = _option(None, "base URL of the source's API", _optional)
    api_key: str = _option("DEMO_KEY", "api.nasa.gov key, used by the mars-photos source", str)
    image_hosts: tuple[str, ...] | None = _option(
        None, "comma-separated host or host:port allowed in image links", _hosts)
    info_ttl: float = _option(300.0, "seconds the photo list is cached", float)
    image_ttl: float = _option(86400.0, "seconds source images and wallpapers are cached", float)
    free_size_ttl: float = _option(
        600.0, "seconds a wallpaper of a free size (not a preset, the default height or a "
        "thumbnail at its default quality) is cached, at most --image-ttl", float)
    old_sol_after: int = _option(14, "sols behind the newest after which a sol's photos rarely "
                                 "change and are cached for --old-sol-ttl", int)
    old_sol_ttl: float = _option(3600.0, "seconds an old sol's list is cached (at least "
                                 "--info-ttl)", float)
    max_stale: float = _option(86400.0, "seconds past info_ttl a list is served while NASA fails",
                               float)
    error_ttl: float = _option(5.0, "seconds an upstream failure is remembered (0: not at all)",
                               float)
    timeout: float = _option(20.0, "seconds any one upstream request may take in total", float)
    retries: int = _option(2, "retries on connection errors and 5xx, with jittered backoff", int)
    upstream_budget: int = _option(
        300, "calls a minute to the source, lists and images together, shared by every "
        "instance on one Redis (per process in memory mode); 0: unlimited", int)
    resize_threads: int = _option(2, "threads that resize images", int)
    resize_queue: int = _option(32, "resizes queued or running before new ones get 503", int)
    cache: str = _option("memory", "memory (per process), or redis://host:port/db to share the "
                         "cache and the work across instances", str)
    lease: float = _option(10.0, "seconds a Redis lease outlives its leader (failover time; at "
                           "least twice --redis-timeout)", float)
    redis_timeout: float = _option(
        5.0, "seconds one Redis call may take; a slow call fails alone, only connection errors "
        "or 3 failures in a row count as Redis down", float)
    redis_ca_file: str | None = _option(None, "CA certificates (PEM) to verify a rediss:// "
                                        "server with", _optional)
    cache_prefix: str | None = _option(
        None, "Redis key prefix; deployments sharing a Redis must differ (default: derived "
        "from source, rover, API URL and mount path)", _optional)
    workers: int = _option(1, "worker processes on one port (SO_REUSEPORT); with the memory "
                           "cache each has its own", int)
    cache_bytes: int = _option(256 * 2**20, "upper bound of all in-memory caches, in bytes "
                               "(units: 256MiB = 256 x 1024^2, 256M = 256 x 1000^2)", _size)
    cache_entries: int = _option(10_000, "upper bound of in-memory cache entries", int)
    max_source_bytes: int = _option(32 * 2**20, "largest source image download, in bytes "
                                    "(units as for --cache-bytes)", _size)
    max_source_pixels: int = _option(40_000_000, "largest source image, in pixels", int)
    signing_key: tuple[str, ...] = _option(
        (), "comma-separated keys of at least 16 bytes: a wallpaper of a free size then needs "
        "a sig made with one (the first signs, all verify); none: any size is served", _keys,
        secret=True)

    def __post_init__(self) -> None:
        if self.rover == "perseverance" and self.source == "msl":
            # msl is Curiosity's feed only: asking for Perseverance means its own feed.
            object.__setattr__(self, "source", "m2020")
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))

    def _problems(self) -> list[str]:
        numbers = (self.info_ttl, self.image_ttl, self.max_stale, self.error_ttl, self.timeout,
                   self.lease, self.redis_timeout, self.old_sol_ttl, self.free_size_ttl)
        checks: list[tuple[bool, str]] = [
            (all(math.isfinite(n) for n in numbers), "durations must be finite numbers"),
            (self.source in SOURCES, f"source must be one of {', '.join(SOURCES)}"),
            (self.rover in (None, *ROVERS), f"rover must be one of {', '.join(ROVERS)}"),
            (not (self.rover == "curiosity" and self.source == "m2020"),
             "source m2020 is Perseverance's feed; it cannot serve rover curiosity"),
            (self.loop in LOOPS, f"loop must be one of {', '.join(LOOPS)}"),
            (self.access_log in ACCESS_LOGS,
             f"access_log must be one of {', '.join(ACCESS_LOGS)}"),
            (0 <= self.port <= 65535, "port must be 0..65535"),
            (self.info_ttl > 0 and self.image_ttl > 0 and self.free_size_ttl > 0,
             "info_ttl, image_ttl and free_size_ttl must be > 0"),
            (self.old_sol_ttl >= self.info_ttl, "old_sol_ttl must be at least info_ttl"),
            (self.old_sol_after >= 0, "old_sol_after must be >= 0"),
            (self.max_stale >= 0 and self.error_ttl >= 0, "max_stale and error_ttl must be >= 0"),
            (self.timeout > 0, "timeout must be > 0"),
            (0 <= self.retries <= 10, "retries must be 0..10"),
            (self.upstream_budget >= 0, "upstream_budget must be >= 0 (0: unlimited)"),
            (self.cache == "memory" or self.cache.startswith(("redis://", "rediss://", "unix://")),
             "cache must be memory or a redis://, rediss:// or unix:// URL"),
            (0.1 <= self.lease <= 3600, "lease must be 0.1..3600"),
            (0 < self.redis_timeout <= 60, "redis_timeout must be in (0, 60]"),
            (self.cache == "memory" or self.lease >= 2 * self.redis_timeout,
             "lease must be at least twice redis_timeout: a lease is renewed a third of the way "
             "in, and the renewal, which may take redis_timeout, must land before it lapses"),
            (1 <= self.workers <= 64, "workers must be 1..64"),
            (self.workers == 1 or self.port != 0, "workers > 1 needs a fixed port"),
            (1 <= self.resize_threads <= 64, "resize_threads must be 1..64"),
            (self.resize_queue >= 1, "resize_queue must be >= 1"),
            (self.cache_bytes > 0 and self.cache_entries > 0,
             "cache_bytes and cache_entries must be > 0"),
            (self.max_source_bytes > 0 and self.max_source_pixels > 0,
             "max_source_bytes and max_source_pixels must be > 0"),
            (all(_HOST_PORT.match(h) for h in self.image_hosts or ()),
             "image_hosts must be comma-separated host or host:port"),
            (all(len(key.encode()) >= MIN_KEY_BYTES for key in self.signing_key),
             f"each signing_key must be at least {MIN_KEY_BYTES} bytes (make one with "
             "`openssl rand -hex 32`)"),
            (self.api_url is None or self.api_url.startswith(("http://", "https://")),
             "api_url must be an http(s) URL"),
        ]
        return [message for ok, message in checks if not ok]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults overridden by every `MARS_<FIELD>` variable that is set."""
        env = os.environ if environ is None else environ
        names = {f.name: env_name(f.name) for f in dataclasses.fields(cls)}
        return cls.from_strings({name: env[var] for name, var in names.items() if var in env})

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> Settings:
        """Build settings from text (flags, environment); errors name the option, in one line."""
        parsed: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in values:
                try:
                    parsed[f.name] = f.metadata["parse"](values[f.name])
                except ValueError:
                    raise ValueError(
                        f"{flag_name(f.name)} / {env_name(f.name)}: {values[f.name]!r} "
                        f"is not a valid {f.metadata['parse'].__name__.strip('_')}"
                    ) from None
        return cls(**parsed)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()
