"""The soak (`python -m bench.soak`) for 20 seconds: three instances on one Redis behind
deploy/nginx.conf, a mixed load and every fault of its schedule, and the README's promises
hold: no 5xx that NASA's failure does not explain, every image answer is its permalink's bytes,
and NASA is asked once per key, once more per restart at most.

The other tests pin what the promises rest on: the soak's definitions of an expected 5xx and of
an image answer that matches its permalink.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak import GRACE, NEW_SOL, SOLS, Answer, Ask, Timeline, expected_5xx, list_key, matches

from .helpers import require_tool

ROOT = Path(__file__).parent.parent
LAST_LINE = re.compile(r"soak: requests=(?P<requests>\d+) unexpected_5xx=(?P<unexpected_5xx>\d+)"
                       r" mismatched=(?P<mismatched>\d+) nasa_calls=(?P<nasa_calls>\d+)"
                       r" keys=(?P<keys>\d+) restarts=(?P<restarts>\d+)"
                       r" rss_drift=(?P<rss_drift>-?\d+\.\d)%")


@pytest.fixture(scope="module")
def soak() -> tuple[dict[str, int], str]:
    """One 20-second soak for the module's tests: the figures of its last line, its output."""
    require_tool("nginx", "apt-get install nginx-light; .ci/run does")
    require_tool("redis-server", "apt-get install redis-server; .ci/run does")
    run = subprocess.run([sys.executable, "-m", "bench.soak", "--seconds", "20"], cwd=ROOT,
                         capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    match = LAST_LINE.fullmatch(run.stdout.splitlines()[-1])
    assert match, run.stdout[-3000:]
    figures = {name: int(value) for name, value in match.groupdict().items()
               if name != "rss_drift"}
    return figures, run.stdout


@pytest.mark.external
def test_soak_has_no_5xx_but_those_nasa_explains(soak):
    figures, output = soak
    assert figures["requests"] > 500, output
    assert figures["unexpected_5xx"] == 0, output


@pytest.mark.external
def test_soak_answers_each_image_with_its_permalinks_bytes(soak):
    figures, output = soak
    assert figures["mismatched"] == 0, output


@pytest.mark.external
def test_soak_asks_nasa_once_per_key_and_restart(soak):
    figures, output = soak
    assert figures["restarts"] == 3, output  # two SIGKILLed instances, one Redis restart
    assert 0 < figures["nasa_calls"] <= figures["keys"] * (1 + figures["restarts"]), output


# The definition of an expected 5xx, on a made-up timeline.

PHOTO = SOLS[5000][0]  # the image of photo 0 of the newest sol


def failing() -> Timeline:
    """NASA failing from 100 to 110 s."""
    return Timeline(0.0, nasa_faults=[(100.0, 110.0)], published=dict.fromkeys(SOLS, 0.0))


def answer(path: str, start: float, sol: int | None = None, photo: int | None = 0) -> Answer:
    return Answer(Ask("cached hit", path, sol, photo, 720), "nginx", start, start + 1, 503)


def test_a_5xx_while_nasa_fails_is_expected_when_an_ingredient_was_never_given():
    line, nasa = failing(), [(list_key(None), 50.0, "data")]  # the list, not the image
    assert expected_5xx(answer("/wallpaper?height=720", 105.0), line, nasa)


def test_a_5xx_while_nasa_fails_is_unexpected_when_redis_holds_everything_it_needs():
    line, nasa = failing(), [(list_key(None), 50.0, "data"), (PHOTO, 60.0, "data")]
    assert not expected_5xx(answer("/wallpaper?height=720", 105.0), line, nasa)


def test_a_5xx_when_nasa_is_well_is_unexpected_even_for_something_never_fetched():
    line, nasa = failing(), []
    assert not expected_5xx(answer("/wallpaper?height=720", 110 + GRACE + 1), line, nasa)
    assert expected_5xx(answer("/wallpaper?height=720", 110 + GRACE - 2), line, nasa)


def test_a_redis_restart_loses_what_nasa_gave_before_it():
    line, nasa = failing(), [(list_key(None), 50.0, "data"), (PHOTO, 60.0, "data")]
    line.redis_restarts.append(70.0)
    assert expected_5xx(answer("/wallpaper?height=720", 105.0), line, nasa)


def test_a_failed_nasa_call_gives_nothing():
    line, nasa = failing(), [(list_key(None), 50.0, "data"), (PHOTO, 60.0, "fault")]
    assert expected_5xx(answer("/wallpaper?height=720", 105.0), line, nasa)


def test_a_sol_nasa_had_no_photos_of_gives_nothing_to_cache():
    line, nasa = failing(), [(list_key(NEW_SOL), 50.0, "nothing")]
    assert expected_5xx(answer(f"/api/photos?sol={NEW_SOL}", 105.0, NEW_SOL, None), line, nasa)
    nasa.append((list_key(NEW_SOL), 60.0, "data"))  # published since
    assert not expected_5xx(answer(f"/api/photos?sol={NEW_SOL}", 105.0, NEW_SOL, None), line,
                            nasa)


# What counts as the permalink's bytes.

REFERENCES = {(5000, 0, 720): b"photo 0 of 5000", (5001, 0, 720): b"photo 0 of 5001",
              (5000, 1, 720): b"photo 1 of 5000"}


def image(digest: bytes, sol: int | None, end: float) -> Answer:
    return Answer(Ask("cached hit", "/wallpaper", sol, 0, 720), "nginx", end - 1, end, 200,
                  digest=digest)


def test_an_image_answer_must_be_its_own_photos_permalink():
    line = failing()
    assert matches(image(b"photo 0 of 5000", 5000, 50.0), REFERENCES, line)
    assert not matches(image(b"photo 1 of 5000", 5000, 50.0), REFERENCES, line)
    assert not matches(image(b"photo 0 of 5001", 5000, 50.0), REFERENCES, line)


def test_the_newest_lists_photo_may_be_of_any_sol_newest_while_it_was_asked():
    line = failing()
    assert not matches(image(b"photo 0 of 5001", None, 50.0), REFERENCES, line)
    line.published[NEW_SOL] = 40.0
    assert matches(image(b"photo 0 of 5001", None, 50.0), REFERENCES, line)
    assert matches(image(b"photo 0 of 5000", None, 50.0), REFERENCES, line)  # a stale list
    assert not matches(image(b"photo 1 of 5000", None, 50.0), REFERENCES, line)
