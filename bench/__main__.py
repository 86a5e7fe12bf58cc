"""Every benchmark, one after the other: `python -m bench` (after `pip install -e '.[bench]'`).

Each section runs on its own too: `python -m bench.throughput`, `bench.hit_cost`,
`bench.cold_burst`, `bench.resize`, `bench.smart_crop`, `bench.scaling`, and those left out of
this run: `bench.flood` (long), `bench.avif` (several minutes of AVIF encoding),
`bench.crawler` and `bench.resize_loop` (a minute or two each), `bench.instructions` (about 7
minutes under valgrind), `bench.tracing_cost` (needs the `otel` extra), `bench.scale_out` and
`bench.soak` (3 minutes; both need redis-server, the soak nginx too).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import aiohttp
import PIL

SECTIONS = ("throughput", "hit_cost", "cold_burst", "resize", "smart_crop", "scaling")


def main() -> None:
    print(f"machine: {platform.machine()}, {_cpus()} cores; Python {platform.python_version()}, "
          f"aiohttp {aiohttp.__version__}, Pillow {PIL.__version__}", flush=True)
    for section in SECTIONS:
        print(f"\n== {section} ==", flush=True)
        subprocess.run([sys.executable, "-m", f"bench.{section}"], check=True)


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
