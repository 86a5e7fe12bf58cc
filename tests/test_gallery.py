"""The gallery in a real browser: Debian's Chromium driven by Playwright, against the demo app.

Checks what a person would: every thumbnail decoded, alt text, keyboard focus, a preset link
that opens a wallpaper of that size. Saves a screenshot to test-artifacts/gallery.png.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import async_playwright

from marsserver import Settings, create_app

from .helpers import require_tool

ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


async def test_gallery_shows_every_photo_and_its_preset_links_work(aiohttp_server):
    chromium = require_tool("chromium", "Debian's chromium; .ci/run installs it")
    server = await aiohttp_server(create_app(Settings(source="demo")))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 2400})
            await page.goto(str(server.make_url("/")))
            await page.wait_for_function(
                "Array.from(document.images).every(i => i.complete)", timeout=20_000)
            images = await page.eval_on_selector_all(
                "img", "all => all.map(i => [i.naturalWidth, i.naturalHeight, i.alt])")
            assert len(images) == 5
            assert all(width > 0 and height == 240 for width, height, _ in images)
            assert all("sol 4000" in alt for _, _, alt in images)
            assert "NASA/JPL-Caltech" not in await page.content()  # the demo's own credit
            assert "marsserver demo (generated)" in await page.content()

            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.tagName") == "A"

            ARTIFACTS.mkdir(exist_ok=True)
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.screenshot(path=str(ARTIFACTS / "gallery.png"))

            await page.click("li.photo >> nth=0 >> text=4k")
            await page.wait_for_function("document.images.length == 1 "
                                         "&& document.images[0].complete")
            size = await page.evaluate("[document.images[0].naturalWidth, "
                                       "document.images[0].naturalHeight]")
            assert size == [3840, 2160]
            assert "preset=4k" in page.url
        finally:
            await browser.close()
