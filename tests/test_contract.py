"""The OpenAPI contract, checked against the live service on the demo source.

`schemathesis run --checks all`, as anyone would run it: every generated request gets a
documented status, content type and body, never a 500; every schema-valid request is accepted
(`positive_data_acceptance`) and every schema-invalid one refused (`negative_data_rejection`),
so the rules between parameters must be in the document, not only in its descriptions.
Each run draws a new seed, so runs together cover more than one sample; the run prints it, and
`MARS_TEST_CONTRACT_SEED` replays it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema_rs
import pytest

from marsserver.http import params
from marsserver.http.openapi import document

from .helpers import Marsserver

MAX_EXAMPLES = 150  # per operation: about 5 s on two cores, and every form of /wallpaper
SEED_VARIABLE = "MARS_TEST_CONTRACT_SEED"  # set to a seed a run printed, to replay that run


@pytest.fixture(scope="module")
def live() -> Iterator[Marsserver]:
    """`python -m marsserver --source demo` on a free port, as users run it."""
    with Marsserver("--source", "demo", "--access-log", "off") as server:
        yield server


def contract_seed() -> int:
    """A new sample of the space each run, unless SEED_VARIABLE names one to replay."""
    return int(os.environ.get(SEED_VARIABLE) or secrets.randbelow(2**32))


def test_schemathesis_with_every_check_finds_nothing(live: Marsserver, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    seed = contract_seed()
    replay = f"replay: {SEED_VARIABLE}={seed} pytest tests/test_contract.py"
    with capsys.disabled():  # in every run's output, passed or not
        print(f"\nschemathesis seed {seed} ({replay})")
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{live.url}/openapi.json",
         "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--generation-database", "none",
         "--seed", str(seed), "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    report = (f"{replay}\n{result.stdout[-8000:]}{result.stderr[-2000:]}\n"
              f"server log:\n{live.log[-4000:]}")
    assert result.returncode == 0, report


def test_each_run_draws_its_own_seed_and_the_variable_replays_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SEED_VARIABLE, raising=False)
    assert len({contract_seed() for _ in range(5)}) > 1
    monkeypatch.setenv(SEED_VARIABLE, "77")
    assert contract_seed() == 77


def _query_schema() -> dict[str, Any]:
    """The `/wallpaper` parameters as one JSON Schema for a whole query, as OpenAPI reads them."""
    doc = document("/")
    parameters = doc["paths"]["/wallpaper"]["get"]["parameters"]
    return {"components": doc["components"], "type": "object",
            "properties": {p["name"]: p["schema"] for p in parameters if not p.get("explode")},
            "allOf": [p["schema"] for p in parameters if p.get("explode")]}


QUERY = jsonschema_rs.validator_for(_query_schema())
INTEGERS = {"photo_number", "height", "width", "quality"}


def _documented_as_valid(query: str) -> bool:
    typed = {name: int(value) if name in INTEGERS and value.isdigit() else value
             for name, value in parse_qsl(query)}
    return QUERY.is_valid(typed)


VALID = ["", "height=300", "height=300&fit=SCALE", "width=320&height=200",
         "width=320&height=200&fit=Contain", "preset=720P", "preset=720p&fit=cover",
         "format=JPG&download=yes&quality=30", "download=OFF", "preset=phone&crop=Center",
         "height=300&crop=centre", "format=AVIF&quality=95"]
INVALID = ["width=320", "fit=cover", "height=300&fit=contain", "width=320&height=200&fit=scale",
           "preset=720p&width=1280", "preset=720p&height=720", "preset=720p&fit=scale",
           "preset=8k", "format=gif", "download=2", "height=15", "quality=96",
           "preset=phone&crop=sideways", "format=avif&quality=96"]


@pytest.mark.parametrize(("query", "valid"), [(q, True) for q in VALID]
                         + [(q, False) for q in INVALID])
async def test_the_document_and_the_service_agree_on_what_is_valid(demo_client, query, valid):
    """Schemathesis samples at random; these are the rules between parameters, every time."""
    response = await demo_client.get(f"/wallpaper?{query}")
    expected = (200, True) if valid else (400, False)
    assert (response.status, _documented_as_valid(query)) == expected


async def test_the_served_document_is_the_one_tested(demo_client):
    served = await (await demo_client.get("/openapi.json")).json()
    assert served == document("/")
    assert document("/mars/")["servers"] == [{"url": "/mars"}]


@pytest.mark.parametrize("path", ["/", "/api/photos", "/wallpaper", "/photos/{id}/wallpaper"])
async def test_the_query_length_limit_is_in_the_document_and_enforced(demo_client, path):
    """No schema can bound a whole query string, so the 400's description must say it."""
    limit = f"longer than {params.MAX_QUERY} characters"
    operation = document("/")["paths"][path]["get"]
    assert limit in operation["responses"]["400"]["description"]
    url = path.replace("{id}", "NLB_0001") + "?height=300&pad=" + "z" * params.MAX_QUERY
    response = await demo_client.get(url)
    assert response.status == 400
    assert (await response.json())["detail"] == f"query string {limit}"
