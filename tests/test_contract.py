"""The OpenAPI contract, checked by schemathesis against the live service on the demo source.

Every generated request must get a documented status, a documented content type and a body
matching the schema; never a 500.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from marsserver.openapi import document

schema = schemathesis.openapi.from_dict(document("/"))

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    """`python -m marsserver --source demo` on a free port, as users run it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "marsserver", "--source", "demo", "--port", "0",
         "--access-log", "off"], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    try:
        yield line.split("listening on ")[1].split(",")[0]
    finally:
        process.terminate()
        process.wait(timeout=20)


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_the_contract(case, live_url):
    case.call_and_validate(base_url=live_url, checks=CHECKS)


async def test_the_served_document_is_the_one_tested(demo_client):
    served = await (await demo_client.get("/openapi.json")).json()
    assert served == document("/")
    assert document("/mars/")["servers"] == [{"url": "/mars"}]
