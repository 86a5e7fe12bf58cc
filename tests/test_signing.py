"""Signed URLs: with `--signing-key`, a free size needs its `sig`, checked before any work and
in constant time; presets and the gallery's own links work unsigned; several keys rotate; a
short key stops the start; `marsserver sign` and the documented snippets sign as the service
verifies."""

from __future__ import annotations

import asyncio
import hmac
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from marsserver import Settings, create_app
from marsserver.cli import settings_from, sign
from marsserver.http import signing

from .helpers import cache_keys, require_tool

KEY = "a-first-key-0123456789"
OLD_KEY = "an-older-key-0123456789"
FREE = "/wallpaper?photo_number=1&height=333&format=jpeg"
# The example the signing snippets of docs/http-api.md use, and what they print.
HTTP_API = Path(__file__).parent.parent / "docs" / "http-api.md"
EXAMPLE_KEY = "0123456789abcdef-example"
EXAMPLE_URL = "/wallpaper?photo_number=0&height=1111"

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def signed_client(aiohttp_client: AiohttpClient) -> Client:
    """The demo source with keys KEY (which signs) and OLD_KEY."""
    return await aiohttp_client(create_app(Settings(source="demo",
                                                    signing_key=(KEY, OLD_KEY))))


async def refusal(client: Client, url: str) -> dict[str, Any]:
    response = await client.get(url)
    assert (response.status, response.content_type) == (403, "application/json")
    error: dict[str, Any] = await response.json()
    assert error["error"] == "bad_signature"
    return error


async def test_a_free_size_unsigned_or_wrongly_signed_is_a_json_403_before_any_work(
        signed_client, resizes):
    unsigned = await refusal(signed_client, FREE)
    assert "not a preset" in unsigned["detail"]
    assert "signed" in unsigned["detail"]
    wrong = signing.sign(FREE, "not-the-deployment-key")
    assert "does not match" in (await refusal(signed_client, wrong))["detail"]
    permalink = "/photos/demo-4000-0/wallpaper?sol=4000&width=1000&height=999"
    await refusal(signed_client, permalink)
    await refusal(signed_client, f"{signing.sign(FREE, KEY)}&sig=again")
    assert (resizes, cache_keys(signed_client)) == ([], set())  # not even the list was read

    assert (await signed_client.get(signing.sign(FREE, KEY))).status == 200
    assert (await signed_client.get(signing.sign(permalink, KEY))).status == 200
    assert resizes == [333, 999]


async def test_a_preset_at_a_quality_of_the_clients_choosing_needs_a_signature_too(
        signed_client, resizes):
    """A loop over qualities costs as many resizes as one over sizes: only a preset at its
    format's default quality is free of a signature."""
    other = "/wallpaper?photo_number=1&preset=4k&fit=contain&quality=31"
    assert "at quality 31" in (await refusal(signed_client, other))["detail"]
    for url in ("/wallpaper?photo_number=1&preset=4k&fit=contain&quality=85",
                "/wallpaper?photo_number=1&preset=4k&fit=contain&format=avif&quality=80"):
        assert (await signed_client.get(url)).status == 200, url
    assert (await signed_client.get(signing.sign(other, KEY))).status == 200
    assert len(resizes) == 3


async def test_the_signature_covers_every_parameter_but_sig(signed_client):
    signed = signing.sign(FREE, KEY)
    assert (await signed_client.get(signed.replace("height=333", "height=334"))).status == 403
    assert (await signed_client.get(signed + "&quality=90")).status == 403
    moved = signed.replace("photo_number=1&", "") + "&photo_number=1"  # the order as sent
    assert (await signed_client.get(moved)).status == 403


async def test_signatures_are_compared_in_constant_time(signed_client, monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    await refusal(signed_client, FREE + "&sig=guess")
    assert len(compared) == 2  # once per key, however early a guess goes wrong


async def test_presets_and_every_link_the_service_emits_work_unsigned(signed_client):
    for url in ("/wallpaper?preset=4k&fit=contain", "/wallpaper?width=1920&height=1080",
                "/wallpaper", "/wallpaper?height=1080&format=png&quality=40"):
        assert (await signed_client.get(url)).status == 200, url
    page = await (await signed_client.get("/", headers={"Accept": "text/html"})).text()
    links = {link.replace("&amp;", "&") for link in re.findall(r'(?:href|src)="([^"]+)"', page)
             if "wallpaper" in link}
    photos = (await (await signed_client.get("/api/photos")).json())["photos"]
    links |= {photo[field] for photo in photos[:2] for field in ("wallpaper_url", "permalink")}
    assert any("height=240" in link for link in links)  # thumbnails are among them
    for link in links:
        assert (await signed_client.get(link)).status == 200, link


async def test_every_key_verifies_and_the_first_signs(signed_client):
    assert (await signed_client.get(signing.sign(FREE, OLD_KEY))).status == 200
    printed = sign(["--signing-key", f"{KEY},{OLD_KEY}", f"http://example.test{FREE}"], {})
    assert printed == "http://example.test" + signing.sign(FREE, KEY)
    assert sign([FREE], {"MARS_SIGNING_KEY": KEY}) == signing.sign(FREE, KEY)
    resigned = sign(["--signing-key", KEY, signing.sign(FREE, OLD_KEY)], {})
    assert resigned == signing.sign(FREE, KEY)  # an old sig is replaced, not added to
    assert (await signed_client.get(printed.removeprefix("http://example.test"))).status == 200


async def test_a_ready_answer_is_kept_only_under_its_signed_target(signed_client):
    signed = signing.sign(FREE, KEY)
    assert (await signed_client.get(signed)).headers["X-Cache"] == "MISS"
    assert (await signed_client.get(signed)).headers["X-Cache"] == "HIT"
    await refusal(signed_client, FREE)
    await refusal(signed_client, signed[:-1] + ("A" if signed[-1] != "A" else "B"))


async def test_a_mounted_app_verifies_the_path_with_its_prefix(aiohttp_client):
    host = web.Application()
    host.add_subapp("/mars/", create_app(Settings(source="demo", signing_key=(KEY,))))
    client = await aiohttp_client(host)
    assert (await client.get(signing.sign(f"/mars{FREE}", KEY))).status == 200
    unprefixed = signing.sign(FREE, KEY)
    assert (await client.get("/mars" + unprefixed)).status == 403


async def test_without_a_key_every_size_is_served_and_sig_is_ignored(demo_client):
    assert (await demo_client.get(FREE)).status == 200
    assert (await demo_client.get(FREE + "&sig=anything")).status == 200


def test_a_key_shorter_than_16_bytes_stops_the_start_without_showing_it(capsys):
    with pytest.raises(ValueError, match="at least 16 bytes") as refused:
        Settings(signing_key=(KEY, "too-short-key"))
    assert "too-short-key" not in str(refused.value)
    with pytest.raises(SystemExit) as exited:
        settings_from([], {"MARS_SIGNING_KEY": f"{KEY},too-short-key"})
    assert exited.value.code == 2
    assert "16 bytes" in capsys.readouterr().err
    assert KEY not in repr(Settings(signing_key=(KEY,)))
    assert Settings.from_strings({"signing_key": f" {KEY} , {OLD_KEY}"}).signing_key == (
        KEY, OLD_KEY)


def test_marsserver_sign_runs_as_a_command():
    signed = subprocess.run([sys.executable, "-m", "marsserver", "sign", "--signing-key", KEY,
                             FREE], check=True, capture_output=True, text=True, timeout=30)
    assert signed.stdout == signing.sign(FREE, KEY) + "\n"
    keyless = subprocess.run([sys.executable, "-m", "marsserver", "sign", FREE], env={},
                             capture_output=True, text=True, timeout=30)
    assert keyless.returncode == 2
    assert "--signing-key" in keyless.stderr


# The snippets of docs/http-api.md sign as the service verifies.

def snippet(language: str) -> str:
    """The block in `language` under "Signed URLs" in docs/http-api.md."""
    section = HTTP_API.read_text().split("## Signed URLs", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert EXAMPLE_KEY in block
    assert EXAMPLE_URL in block
    return block


async def served(aiohttp_client: AiohttpClient, *command: str) -> None:
    """What `command` prints is the documented output, what the service signs, and what it
    serves."""
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        printed = (await process.communicate())[0].decode()
    assert process.returncode == 0
    expected = signing.sign(EXAMPLE_URL, EXAMPLE_KEY)
    assert printed == expected + "\n"
    assert sign(["--signing-key", EXAMPLE_KEY, EXAMPLE_URL], {}) == expected
    assert f"\n{expected}\n" in HTTP_API.read_text()
    client = await aiohttp_client(create_app(Settings(source="demo",
                                                      signing_key=(EXAMPLE_KEY,))))
    assert (await client.get(expected)).status == 200


async def test_the_documented_python_snippet_signs_as_the_service_verifies(aiohttp_client):
    await served(aiohttp_client, sys.executable, "-c", snippet("python"))


@pytest.mark.external
async def test_the_documented_shell_snippet_signs_as_the_service_verifies(aiohttp_client):
    require_tool("openssl", "apt-get install openssl")
    await served(aiohttp_client, "sh", "-c", snippet("sh"))
