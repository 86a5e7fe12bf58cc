"""Signed URLs: with `--signing-key`, a wallpaper of a free size needs the deployment's signature.

A free size (any but a preset, the default height and the gallery's thumbnails) is a fresh
resize and a fresh cache entry each, so a client looping over sizes would fill the resize
queue and the cache. As with imgproxy, the deployment's own pages or apps sign the URLs they
hand out; everyone else can ask only for the standard sizes. The contract, for clients in any
language (docs/http-api.md, Signed URLs):

    sig = base64url(HMAC-SHA256(key, target)), without `=` padding

where `target` is the request target exactly as sent (path, then `?` and the query string,
percent-encoding and parameter order untouched) with every `sig` parameter taken out, and the
`?` dropped if nothing is left. The key is its text's UTF-8 bytes. Of several keys, the first
signs and every one verifies, so a key is rotated by putting the new one first and dropping
the old one when no URL signed with it is in use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit, urlunsplit

from ..errors import BadSignature
from ..imaging import Spec, default_quality, standard_spec

SIG = "sig"


def signature(key: str, target: str) -> str:
    """The `sig` value of `target` (with no `sig` in it) under `key`."""
    digest = hmac.new(key.encode(), target.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def unsigned(target: str) -> tuple[str, list[str]]:
    """`target` without its `sig` parameters (what is signed), and their values.

    The query is split on `&` as sent, never decoded: a name that is not `sig` byte for byte
    (`si%67`) stays in what is signed, and is an unknown parameter the service ignores."""
    path, mark, query = target.partition("?")
    kept, sigs = [], []
    for pair in query.split("&") if mark else ():
        name, _, value = pair.partition("=")
        if name == SIG:
            sigs.append(value)
        else:
            kept.append(pair)
    return (f"{path}?{'&'.join(kept)}" if kept else path), sigs


def check(keys: tuple[str, ...], target: str, spec: Spec) -> None:
    """Raise `BadSignature` unless `spec` is a standard one, no key is set, or `target` (the
    request target as sent) carries a signature one of `keys` made. Compared in constant time:
    how long a refusal takes says nothing about how close a guess came."""
    if not keys or standard_spec(spec):
        return
    size = f"{spec.width}x{spec.height}" if spec.width else f"height {spec.height}"
    if spec.quality != default_quality(spec.format):
        size += f" at quality {spec.quality}"
    if not target.isascii():
        raise BadSignature(f"{size} is a free size, and a signed URL is ASCII: percent-encode "
                           "it, then sign it")
    signed, sigs = unsigned(target)
    if not sigs:
        raise BadSignature(f"{size} is not a preset at its default quality: this deployment "
                           "serves other sizes and qualities only on signed URLs (a sig "
                           "parameter)")
    if len(sigs) > 1:
        raise BadSignature(f"sig given {len(sigs)} times; give it once")
    given = sigs[0].encode()
    if not any(hmac.compare_digest(signature(key, signed).encode(), given) for key in keys):
        raise BadSignature(f"the sig of this URL ({size}) does not match: sign the path and "
                           "query exactly as sent, without sig")


def sign(url: str, key: str) -> str:
    """`url` (a full URL or a path with its query) with `sig` set for `key`, replacing any it
    had; the rest of it stays byte for byte as it was."""
    parts = urlsplit(url)
    target, _ = unsigned((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    path, _, query = target.partition("?")
    sig = f"{SIG}={signature(key, target)}"
    return urlunsplit(parts._replace(path=path, query=f"{query}&{sig}" if query else sig))
