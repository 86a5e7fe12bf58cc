"""The README stays true: its commands are CI's, and its configuration table has every flag."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from marsserver import Settings
from marsserver.settings import env_name, flag_name

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
