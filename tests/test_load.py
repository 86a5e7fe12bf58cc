"""locust, headless, for a few seconds against the service in its own process: zero failures,
and every kind of request in `bench/locustfile.py` made. (How fast is for `bench/`.)"""

from __future__ import annotations

import asyncio
import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import Marsserver
from .stub import FEED_PATH, Stub

ROOT = Path(__file__).parent.parent
MIX = ROOT / "bench" / "locustfile.py"
EVERY_TASK_FIRST = Path(__file__).parent / "locust_every_task.py"


@pytest.mark.load
async def test_locust_mix_runs_without_failures(stub: Stub, tmp_path: Path):
    async with Marsserver("--api-url", stub.base + FEED_PATH,
                          "--image-hosts", f"127.0.0.1:{stub.port}") as service:
        locust = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "locust", "-f", str(EVERY_TASK_FIRST), "--headless",
            "--host", service.url, "-u", "20", "-r", "20", "-t", "4s",
            "--csv", str(tmp_path / "run"), "--only-summary", cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output, _ = await asyncio.wait_for(locust.communicate(), 60)

    assert locust.returncode == 0, output.decode()[-2000:]
    with (tmp_path / "run_stats.csv").open() as stats:
        counts = {row["Name"]: (int(row["Request Count"]), int(row["Failure Count"]))
                  for row in csv.DictReader(stats)}
    assert counts.pop("Aggregated")[1] == 0
    kinds = set(re.findall(r'name="([^"]+)"', MIX.read_text()))
    assert set(counts) == kinds  # each kind the mix names, and nothing else
    assert all(made >= 1 and failed == 0 for made, failed in counts.values()), counts
    assert (tmp_path / "run_exceptions.csv").read_text().count("\n") == 1  # the header alone
