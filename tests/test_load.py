"""locust, headless, for a few seconds against the service in its own process: zero failures."""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from .stub import FEED_PATH, Stub

LOCUSTFILE = Path(__file__).parent.parent / "bench" / "locustfile.py"


@pytest.mark.load
async def test_locust_mix_runs_without_failures(stub: Stub, tmp_path: Path):
    service = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "marsserver", "--port", "0", "--api-url", stub.base + FEED_PATH,
        "--image-hosts", f"127.0.0.1:{stub.port}", stderr=subprocess.PIPE)
    assert service.stderr is not None
    url = (await service.stderr.readline()).decode().split("listening on ")[1].split(",")[0]
    drain = asyncio.create_task(service.stderr.read())
    try:
        locust = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
            "-u", "20", "-r", "20", "-t", "4s", "--csv", str(tmp_path / "run"), "--only-summary",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output, _ = await asyncio.wait_for(locust.communicate(), 60)
    finally:
        service.terminate()
        await service.wait()
        await drain

    with (tmp_path / "run_stats.csv").open() as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    assert locust.returncode == 0, output.decode()[-2000:]
    assert int(total["Request Count"]) > 100
    assert int(total["Failure Count"]) == 0
