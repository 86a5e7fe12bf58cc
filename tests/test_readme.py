"""The README stays true: its commands are CI's, its routes answer as it says, every flag it
documents exists with its documented default, and its presets are what the service serves."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

from marsserver import Settings
from marsserver.cli import settings_from
from marsserver.settings import env_name, flag_name
from marsserver.sources import default_image_hosts

from .helpers import README_PRESETS

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_the_readme_test_command_is_what_ci_runs():
    command = README.split("```sh\n")[2].split("\n")[0]
    assert "pytest" in command
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_first_command_runs_the_demo_source():
    assert README.split("```sh\n")[1].split("\n")[0].endswith("marsserver --source demo")


def test_every_flag_and_variable_is_in_the_configuration_table():
    rows = [line for line in README.splitlines() if line.startswith("| `--")]
    for field in dataclasses.fields(Settings):
        assert any(row.startswith(f"| `{flag_name(field.name)}` | `{env_name(field.name)}` |")
                   for row in rows), field.name


def table(heading: str) -> list[list[str]]:
    """The rows of the first table whose header row starts with `| heading |`, cell by cell."""
    lines = README.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(f"| {heading} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_the_readme_preset_table_is_the_one_the_tests_check():
    sizes = {name.strip("`"): tuple(map(int, size.split(" x "))) for name, size in table("preset")}
    assert sizes == README_PRESETS


async def test_the_service_serves_the_readmes_presets(demo_client):
    response = await demo_client.get("/presets")
    assert response.status == 200
    served = await response.json()
    assert {name: (size["width"], size["height"]) for name, size in served.items()} == (
        README_PRESETS)
    assert list(served) == list(README_PRESETS)  # in the README's order, smallest first


def documented_keys(answer: str) -> tuple[set[str], set[str]]:
    """The JSON keys a route's answer cell names: outside and inside its "(each: ...)"."""
    outer, _, each = answer.partition("(each:")
    return _names(outer), _names(each)


def _names(text: str) -> set[str]:
    return {a or b for a, b in re.findall(r'`(\w+)`|"(\w+)":', text)}


async def test_every_route_in_the_readme_answers_as_it_says(demo_client):
    routes = {route.strip("`").removeprefix("GET ").split("?")[0]: answer
              for route, answer in table("route")}
    assert set(routes) == {"/", "/api/photos", "/wallpaper", "/photos/{id}/wallpaper",
                           "/presets", "/healthz", "/metrics", "/openapi.json"}
    listing = await (await demo_client.get("/api/photos")).json()
    examples = {"/wallpaper": "/wallpaper?photo_number=0&height=64",
                "/photos/{id}/wallpaper": listing["photos"][0]["permalink"] + "?height=64"}
    for path in routes:
        response = await demo_client.get(examples.get(path, path))
        assert response.status == 200, path
    outer, each = documented_keys(routes["/api/photos"])
    assert set(listing) == outer
    assert all(set(photo) == each for photo in listing["photos"])
    health = await (await demo_client.get("/healthz")).json()
    assert set(health) == _names(routes["/healthz"])
    assert (health["status"], health["upstream"]) == ("ok", "ok")


def test_every_documented_flag_is_in_help_with_its_documented_default():
    help_text = subprocess.run([sys.executable, "-m", "marsserver", "--help"], check=True,
                               capture_output=True, text=True, timeout=30).stdout
    defaults = settings_from([], {})
    for flag, variable, default, _ in table("flag"):
        flag, variable = flag.strip("`"), variable.strip("`")
        assert re.search(rf"^\s+{re.escape(flag)}\b", help_text, re.MULTILINE), flag
        field = variable.removeprefix("MARS_").lower()
        assert (flag, variable) == (flag_name(field), env_name(field))
        value = getattr(defaults, field)
        if field == "image_hosts":
            value = default_image_hosts(defaults)  # None: the hosts NASA's feeds link to
        expected = spelled(value)
        if expected is None:  # no value: said in words ("none", "the source's"), not as one
            assert not default.startswith("`"), flag
        else:
            assert default.startswith(expected), flag


def spelled(value: object) -> str | None:
    """A default as the README's table starts it: `on`, `a,b`, `300`."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, tuple):
        value = ",".join(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"
