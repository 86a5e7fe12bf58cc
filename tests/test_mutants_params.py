"""Query parsing at its edges: the cases mutation testing showed no other test pinned down.

Each test states a rule a client relies on (how `Accept` picks a format, which values are in
range, what a 400 says), at the boundary where an off-by-one or a swapped operator would
change the answer.
"""

from __future__ import annotations

import pytest
from multidict import MultiDict

from marsserver.errors import BadParameter
from marsserver.http.params import photo_query, wallpaper_spec
from marsserver.sources import Query


def format_for(accept: str) -> str:
    spec, negotiated = wallpaper_spec(MultiDict(), accept)
    assert negotiated
    return spec.format


def refusal(query: str) -> str:
    pairs = [tuple(pair.split("=", 1)) for pair in query.split("&")]
    with pytest.raises(BadParameter) as raised:
        wallpaper_spec(MultiDict(pairs), accept="")
    return raised.value.detail


@pytest.mark.parametrize(("accept", "chosen"), [
    ("image/png, image/webp", "webp"),  # equally acceptable: the smallest format first
    ("image/png, image/jpeg", "jpeg"),
    ("image/webp;q=1, image/png", "webp"),  # no q is q=1, not more
    ("image/png;q=0.9", "png"),
    ("image/png; q = 0.5", "png"),
    ("image/png;q=1", "png"),
    ("image/webp;q=0.4, image/png;q=0.5", "png"),
    ("image/png;level=1;q=0.8, image/webp;q=0.7", "png"),
])
def test_accept_picks_the_named_format_with_the_highest_q(accept, chosen):
    assert format_for(accept) == chosen


@pytest.mark.parametrize("q", ["0", "abc", "1=1", "nan", "1.5", "-0.5", ""])
def test_a_zero_or_unreadable_q_makes_a_format_unacceptable(q):
    assert format_for(f"image/png;q={q}") == "jpeg"


def test_only_the_first_32_media_ranges_of_accept_count():
    padding = ", ".join(f"text/x-{n}" for n in range(31))
    assert format_for(f"{padding}, image/png") == "png"
    assert format_for(f"{padding}, text/x-last, image/png") == "jpeg"


def test_sol_0_is_a_sol_and_no_sol_is_the_newest():
    assert photo_query(MultiDict(sol="0")) == Query(0)
    assert photo_query(MultiDict()) == Query(None)


def test_integers_take_up_to_six_digits_leading_zeros_included():
    assert photo_query(MultiDict(sol="012345")) == Query(12345)
    with pytest.raises(BadParameter, match="sol must be an integer from 0 to 99999"):
        photo_query(MultiDict(sol="0012345"))


def test_a_repeated_camera_says_what_camera_takes():
    with pytest.raises(BadParameter) as raised:
        photo_query(MultiDict([("camera", "NAV_LEFT"), ("camera", "MAST")]))
    assert raised.value.detail == ("camera given 2 times; give it once, as comma-separated "
                                   "instrument codes")


@pytest.mark.parametrize(("query", "detail"), [
    ("height=123456789012345678901234", "height must be an integer from 16 to 4320, "
                                        "got '12345678901234567890'"),
    ("format=abcdefghijklmnopqrstuvwxyz", "format must be one of jpeg, webp, png (any case; "
                                          "jpg for jpeg), got 'abcdefghijklmnopqrst'"),
    ("preset=4k&width=100", "preset cannot be combined with width or height"),
    ("preset=4k&height=100", "preset cannot be combined with width or height"),
    ("width=100", "width needs height: give both, or height alone"),
    ("width=200&height=100&fit=scale", "fit=scale takes height alone; use cover or contain "
                                       "with width"),
])
def test_each_mistake_gets_its_own_message(query, detail):
    assert refusal(query) == detail
