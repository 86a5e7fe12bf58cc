"""Property-based: any query string gives 200, 400 or 404, never a 500, never a cache leak."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marsserver import Settings, create_app

from .helpers import pipeline_of

PARAMS = st.sampled_from(["photo_number", "height", "Height", "photo_number[]", "x", ""])
VALUES = st.one_of(
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=40),
    st.text(alphabet="0123456789", min_size=1, max_size=8),
    st.sampled_from(["0", "16", "4320", "1080", "0x10", " 16", "16 ", "+16", "١٦"]),
)
QUERIES = st.lists(st.tuples(PARAMS, VALUES), max_size=6)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES, long_tail=st.integers(0, 3))
async def test_any_query_is_answered_without_500_and_without_unbounded_caching(
        aiohttp_client, query, long_tail):
    client = await aiohttp_client(create_app(Settings(source="demo", resize_threads=1)))
    text = "&".join(f"{quote(k)}={quote(v)}" for k, v in query) + "&pad=" + "z" * 3000 * long_tail
    response = await client.get("/wallpaper?" + text)
    assert response.status in (200, 304, 400, 404)
    if response.status != 200:
        assert (await response.json())["error"] in ("bad_parameter", "not_found")
    cache = pipeline_of(client)._cache
    # At most: the list, one source image, one wallpaper; never one per spelling of a query.
    assert len(cache) <= 3
