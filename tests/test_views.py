"""The gallery's and the error page's HTML, read as a browser would: dates and camera names for
people, a 1x and a 2x thumbnail, permalinks behind every link, mount-aware footer links and
icon, the demo's notice, and nothing that needs JavaScript or the network."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from aiohttp import web

from marsserver import Settings, create_app
from marsserver.core.entries import http_date
from marsserver.http.views import Paths, error_page, gallery_html, human_date
from marsserver.sources import LATEST, Listing, Photo, Query

from .helpers import README_PRESETS

MOUNTED = Paths(index="/mars/", wallpaper="/mars/wallpaper")
NAV = Photo(id="1", camera="NAV_LEFT_B", taken="2026-08-30T13:52:10+02:00", img_src="a.jpg")
ODD = Photo(id="2", camera="XYZ_CAM", taken="the day after", img_src="b.jpg",
            credit="NASA/JPL-Caltech/ASU")


class Elements(HTMLParser):
    """Every start tag of a page, with its attributes, in order."""

    def __init__(self, html: bytes) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html.decode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


def gallery(*photos: Photo, source: str = "msl", query: Query = LATEST,
            sol_cameras: tuple[str, ...] = ()) -> bytes:
    listing = Listing(source, "curiosity", 4500, photos, 4501, sol_cameras=sol_cameras)
    return gallery_html(listing, query, MOUNTED)


def navigation(html: bytes, label: str) -> list[tuple[str, str]]:
    """The links of the `<nav aria-label=label>`: (href, what the link says)."""
    nav = re.search(rf'<nav aria-label="{label}">(.*?)</nav>', html.decode(), re.S)
    assert nav is not None
    return [(href.replace("&amp;", "&"), text)
            for href, text in re.findall(r'<a href="([^"]*)"[^>]*>(.*?)</a>', nav[1])]


def cards(html: bytes) -> list[str]:
    return re.findall(r'<li class="photo">.*?</li>', html.decode(), re.S)


def footer_links(html: bytes) -> list[str]:
    footer = html.split(b"<footer>")[1]
    return [attrs["href"] for attrs in Elements(footer).all("a")]


def style(html: bytes) -> str:
    return html.decode().split("<style>")[1].split("</style>")[0]


@pytest.mark.parametrize(("taken", "shown"), [
    ("2024-01-01T12:00:00Z", "1 Jan 2024, 12:00 UTC"),
    ("2021-02-19T21:31:08.000Z", "19 Feb 2021, 21:31 UTC"),
    ("2026-08-30T13:52:10+02:00", "30 Aug 2026, 11:52 UTC"),
    ("2023-12-31T23:20:24.123", "31 Dec 2023, 23:20 UTC"),  # naive: the feeds mean UTC
    ("2022-09-29", "29 Sep 2022"),  # mars-photos' earth_date: a day, no time to invent
    ("the day after", "the day after"),
    ("", ""),
])
def test_dates_read_as_people_write_them(taken, shown):
    assert human_date(taken) == shown


@pytest.mark.parametrize(("taken", "header"), [
    ("2024-01-01T12:00:00Z", "Mon, 01 Jan 2024 12:00:00 GMT"),
    ("2026-08-30T13:52:10+02:00", "Sun, 30 Aug 2026 11:52:10 GMT"),
    ("2023-12-31T23:20:24.123", "Sun, 31 Dec 2023 23:20:24 GMT"),
    ("t", None),
])
def test_http_dates_are_utc(taken, header):
    assert http_date(taken) == header


def test_a_card_names_the_camera_for_people_and_keeps_the_code_small():
    nav, odd = cards(gallery(NAV, ODD))
    assert "<h2>Navigation Camera, left <small>NAV_LEFT_B</small></h2>" in nav
    assert "<h2>XYZ_CAM</h2>" in odd  # unknown: the code once, as the feed gave it
    assert '<time datetime="2026-08-30T11:52:10+00:00">30 Aug 2026, 11:52 UTC</time>' in nav
    assert "<p>the day after</p>" in odd


def test_camera_filters_use_human_names_with_the_code_in_the_title():
    html = gallery(NAV, query=Query(4500, ("NAV_LEFT_B",))).decode()
    assert ('<a href="/mars/?sol=4500&amp;camera=NAV_LEFT_B" title="NAV_LEFT_B" '
            'aria-current=true>Navigation Camera, left</a>') in html
    assert "1 photo from Navigation Camera, left, as wallpapers" in html


def test_thumbnails_have_alt_text_and_a_2x_source_both_permalinks():
    images = Elements(gallery(NAV, ODD)).all("img")
    assert [image["src"] for image in images] == [
        "/mars/photos/1/wallpaper?sol=4500&height=240",
        "/mars/photos/2/wallpaper?sol=4500&height=240"]
    for image in images:
        large = image["src"].replace("height=240", "height=480")
        assert image["srcset"] == f"{image['src']} 1x, {large} 2x"
    assert images[0]["alt"] == ("Curiosity Navigation Camera, left photo from sol 4500, "
                                "taken 30 Aug 2026, 11:52 UTC")
    assert images[1]["alt"] == "Curiosity XYZ_CAM photo from sol 4500, taken the day after"


def test_every_preset_link_and_download_button_is_the_photos_permalink_with_its_sol():
    """The sol is what lets any instance find the photo again, cold or restarted."""
    for card, photo in zip(cards(gallery(NAV, ODD)), (NAV, ODD), strict=True):
        links = [a["href"] for a in Elements(card.encode()).all("a")]
        permalink = f"/mars/photos/{photo.id}/wallpaper?sol=4500&"
        assert links == [f"{permalink}preset={name}" for name in README_PRESETS] + [
            f"{permalink}preset=1080p&format=jpeg&download=1"]


def test_the_page_needs_no_script_and_nothing_from_elsewhere():
    elements = Elements(gallery(NAV, ODD)).tags
    assert not [tag for tag, _ in elements if tag in ("script", "iframe", "object")]
    assert [attrs["rel"] for tag, attrs in elements if tag == "link"] == ["icon"]  # its own
    assert not [name for _, attrs in elements for name in attrs if name.startswith("on")]
    urls = [url for _, attrs in elements for name in ("href", "src", "srcset")
            for url in attrs.get(name, "").split() if url not in ("", "1x,", "2x")]
    assert urls
    assert all(url.startswith("/mars/") for url in urls)


def test_the_footer_links_the_apis_under_the_mount_and_credits_every_feed_line():
    html = gallery(NAV, ODD, NAV, query=Query(4500))
    assert footer_links(html) == ["/mars/api/photos?sol=4500", "/mars/openapi.json",
                                  "/mars/presets"]
    assert b"<p>Images: NASA/JPL-Caltech; NASA/JPL-Caltech/ASU.</p>" in html


def test_only_generated_images_carry_the_demo_notice():
    assert b'class="notice"' not in gallery(NAV)
    demo = gallery(NAV, source="demo")
    assert b"these images are generated by marsserver, not taken on Mars" in demo


def test_the_error_page_wears_the_gallerys_header_footer_and_style():
    page = error_page(503, "try later", 30, newest_cached=False, index="/mars/",
                      offline_hint=False)
    assert style(page) == style(gallery(NAV))
    assert '<a class="brand" href="/mars/">Mars wallpapers</a>' in page.decode()
    assert footer_links(page) == ["/mars/api/photos", "/mars/openapi.json", "/mars/presets"]
    assert b"<p>Try later.</p>" in page
    assert b"Try again in 30 seconds." in page


def test_every_page_links_the_apps_own_icon_under_its_mount():
    """A browser asks the site's root for /favicon.ico; mounted, the app's icon is elsewhere."""
    page = error_page(404, "no such page", None, newest_cached=False, index="/mars/",
                      offline_hint=False)
    for html in (gallery(NAV), page):
        assert Elements(html).all("link") == [
            {"rel": "icon", "href": "/mars/favicon.ico", "type": "image/vnd.microsoft.icon"}]


async def test_the_linked_icon_answers_under_a_mount_prefix(aiohttp_client):
    host = web.Application()
    host.add_subapp("/mars/", create_app(Settings(source="demo")))
    client = await aiohttp_client(host)
    for url in ("/mars/", "/mars/?sol=5000"):  # the gallery, and an error page
        page = await (await client.get(url, headers={"Accept": "text/html"})).read()
        (link,) = Elements(page).all("link")
        icon = await client.get(link["href"])
        assert (icon.status, icon.content_type) == (200, "image/vnd.microsoft.icon"), url


async def test_footer_links_answer_under_a_mount_prefix(aiohttp_client):
    host = web.Application()
    host.add_subapp("/mars/", create_app(Settings(source="demo")))
    client = await aiohttp_client(host)
    html = {"Accept": "text/html"}
    for url, status in (("/mars/?sol=3990", 200), ("/mars/?sol=5000", 404)):
        response = await client.get(url, headers=html)
        assert response.status == status
        links = footer_links(await response.read())
        assert len(links) == 3
        for link in links:
            assert (await client.get(link)).status == 200, link


def test_a_filtered_page_lists_every_camera_of_the_sol_and_marks_the_filter():
    html = gallery(NAV, query=Query(4500, ("NAV_LEFT_B",)),
                   sol_cameras=("MAST_LEFT", "NAV_LEFT_B", "XYZ_CAM"))
    assert navigation(html, "cameras") == [
        ("/mars/?sol=4500", "all cameras"),
        ("/mars/?sol=4500&camera=MAST_LEFT", "Mast Camera (Mastcam), left"),
        ("/mars/?sol=4500&camera=NAV_LEFT_B", "Navigation Camera, left"),
        ("/mars/?sol=4500&camera=XYZ_CAM", "XYZ_CAM")]
    assert html.decode().count("aria-current=true") == 1
    assert 'title="NAV_LEFT_B" aria-current=true>' in html.decode()


def test_sol_links_drop_the_camera_filter_and_the_page_says_so():
    filtered = gallery(NAV, query=Query(4500, ("NAV_LEFT_B",)))
    assert navigation(filtered, "sols") == [("/mars/?sol=4499", "&larr; sol 4499"),
                                            ("/mars/?sol=4501", "sol 4501 &rarr;")]
    assert (b'<p class="hint">Other sols open with all cameras: not every camera takes photos '
            b"every sol.</p>") in filtered
    assert b'class="hint"' not in gallery(NAV, query=Query(4500))


def test_on_a_phone_the_camera_chips_wrap_instead_of_scrolling_sideways():
    css = style(gallery(NAV))
    assert "nowrap" not in css
    assert "overflow-x" not in css
    assert re.search(r"(?m)^  nav \{[^}]*flex-wrap: wrap", css)
