"""The command line contract: flag names, environment variables, precedence, clean failures."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import uvloop

from marsserver import Settings
from marsserver.cli import LISTEN_BACKLOG, event_loop, parser, settings_from, start_line
from marsserver.settings import env_name, flag_name

from .helpers import Marsserver, require_tool
from .redis_server import free_port

README = (Path(__file__).parent.parent / "README.md").read_text()


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marsserver", *args], capture_output=True,
                          text=True, timeout=30, check=False, env=env)


def test_no_flags_no_environment_gives_the_documented_defaults():
    settings = settings_from([], {})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.source) == ("127.0.0.1", 8080, "msl")
    assert settings.api_key == "DEMO_KEY"


def test_environment_variables_set_options_and_flags_win():
    env = {"MARS_API_KEY": "from-env", "MARS_PORT": "9000", "MARS_IMAGE_HOSTS": "a.example, b:81"}
    settings = settings_from(["--port", "9100", "--info-ttl", "5"], env)
    assert settings.api_key == "from-env"
    assert settings.port == 9100
    assert settings.info_ttl == 5.0
    assert settings.image_hosts == ("a.example", "b:81")


def test_settings_from_env_reads_mars_variables():
    assert Settings.from_env({"MARS_SOURCE": "demo", "OTHER": "x"}).source == "demo"


def test_every_settings_field_is_a_documented_flag_with_its_variable():
    help_text = parser().format_help()
    for field in dataclasses.fields(Settings):
        assert flag_name(field.name) in help_text
        assert env_name(field.name) in help_text


@pytest.mark.parametrize(("args", "env", "mentions"), [
    (["--port", "eighty"], {}, "--port"),
    (["--port", "70000"], {}, "port must be 0..65535"),
    (["--source", "hubble"], {}, "invalid choice"),
    ([], {"MARS_INFO_TTL": "soon"}, "MARS_INFO_TTL"),
    (["--image-hosts", "bad host!"], {}, "image_hosts"),
    (["--api-url", "ftp://x"], {}, "api_url"),
    (["--cache", "redis://127.0.0.1:1/0", "--lease", "5"], {},
     "lease must be at least twice redis_timeout"),
    (["--no-such-flag"], {}, "unrecognized"),
])
def test_bad_configuration_fails_in_one_line_without_a_traceback(args, env, mentions):
    result = run(*args, env={"PATH": "/usr/bin:/bin", **env})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert mentions in result.stderr


def test_help_describes_the_flags():
    result = run("--help")
    assert result.returncode == 0
    assert "--image-hosts" in result.stdout
    assert "MARS_<FLAG>" in result.stdout


def test_the_demo_server_starts_logs_where_it_listens_and_answers():
    with Marsserver("--source", "demo") as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*", server.url)
        assert server.wait_for("listening on ")[0].endswith(
            f" marsserver listening on {server.url}, source demo, cache memory, uvloop loop: "
            f"open {server.url}/\n")
        with urllib.request.urlopen(server.url + "/healthz", timeout=10) as response:
            assert json.load(response) == {"status": "ok", "upstream": "ok",
                                             "upstream_budget": "ok", "source": "demo",
                                             "in_flight": 0}
    assert server.process.returncode == 0


@pytest.mark.parametrize(("address", "opened"), [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
    ("http://0.0.0.0:8080", "http://127.0.0.1:8080/"),
    ("http://[::]:8080", "http://[::1]:8080/"),
    ("http://[::1]:8080", "http://[::1]:8080/"),
    ("http://mars.example:80", "http://mars.example:80/"),
])
def test_the_start_line_gives_a_url_a_browser_can_open(address, opened):
    """A wildcard address is where the server listens, not an address to open."""
    assert start_line(address, Settings(), "asyncio").endswith(f" loop: open {opened}")


def test_the_start_line_names_the_redis_cache_but_never_its_user_or_password():
    """Redis is not running there: the service starts degraded, which is enough here."""
    port = free_port()
    cache = f"redis://alice:s3cret@127.0.0.1:{port}/3?password=hunter2"
    with Marsserver("--source", "demo", "--cache", cache) as server:
        line = server.wait_for("listening on ")[0]
    assert f", cache redis://127.0.0.1:{port}/3, " in line
    assert not {"alice", "s3cret", "hunter2"} & set(re.findall(r"\w+", server.log))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_port_in_use_ends_in_one_line_that_says_to_pick_another(loop):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARS_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("--source", "demo", "--loop", loop, "--port", str(port), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"marsserver: cannot listen on 127.0.0.1:{port}: Address already in use; another "
        "program has that port: pick another with --port (0 picks a free one)")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_loop_tells_time_finer_than_milliseconds(loop):
    """aiohttp times each request for the access log by the loop's clock, and uvloop's own
    counts whole milliseconds (tests/test_accesslog.py checks the lines themselves)."""
    chosen = event_loop(loop)
    try:
        readings = [chosen.time() for _ in range(5)]
    finally:
        chosen.close()
    assert isinstance(chosen, uvloop.Loop) == (loop == "uvloop")
    assert any(round(reading * 1000 % 1, 6) not in (0, 1) for reading in readings), readings


@pytest.mark.external  # ss, from iproute2
def test_the_listening_socket_queues_a_burst_of_connections():
    """A full accept queue drops SYNs, and each costs its client a 1 s retransmit. For a
    listening socket, `ss` reports the queue's length as Send-Q."""
    ss = require_tool("ss", "apt-get install -y iproute2")
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    with Marsserver("--source", "demo") as server:
        port = server.url.rsplit(":", 1)[1]
        listing = subprocess.run([ss, "-ltnH", f"sport = :{port}"], capture_output=True,
                                 text=True, check=True).stdout.split()
    assert int(listing[2]) == min(LISTEN_BACKLOG, somaxconn)  # aiohttp's default is 128


@pytest.mark.parametrize("flag", ["--timeout", "--info-ttl", "--image-ttl", "--max-stale"])
def test_infinite_durations_are_refused(flag):
    with pytest.raises(SystemExit) as caught:
        settings_from([flag, "inf"], {})
    assert caught.value.code == 2


def test_the_readme_gunicorn_command_serves(tmp_path):
    """The README's gunicorn line, as written but on a free port (the `gunicorn` extra)."""
    command = re.search(r"MARS_SOURCE=demo (\S*gunicorn .*?)\n```", README, re.DOTALL)
    assert command is not None
    args = shlex.split(command.group(1).replace("\\\n", " ").replace("127.0.0.1:8080",
                                                                      "127.0.0.1:0"))
    gunicorn = Path(sys.executable).parent / Path(args[0]).name  # the venv running the tests
    process = subprocess.Popen([str(gunicorn), *args[1:]], cwd=tmp_path, text=True,
                               env={**os.environ, "MARS_SOURCE": "demo"},
                               stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        address = ""
        while not address:
            line = process.stderr.readline()
            assert line, "gunicorn exited before listening"
            address = "".join(re.findall(r"Listening at: (http://\S+)", line))
        with urllib.request.urlopen(address + "/healthz", timeout=10) as response:
            assert json.load(response)["status"] == "ok"
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
