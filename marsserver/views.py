"""Views of today's listing: JSON for programs, an HTML gallery for people, and names and dates.

Rendered once per fetch of the list (not per request). The gallery needs no JavaScript and
no external assets (it works offline); it is plain, accessible HTML: alt text on every
thumbnail, visible keyboard focus, one list of photos.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from urllib.parse import quote, urlencode

from .cameras import human_name
from .errors import BadParameter
from .imaging import PRESETS, Spec
from .sources import Listing, Photo, Query

THUMBNAIL_HEIGHT = 240


@dataclass(frozen=True, slots=True)
class Paths:
    """Where this app's routes are (it may be mounted under a prefix)."""

    index: str = "/"
    wallpaper: str = "/wallpaper"

    def permalink(self, photo: Photo, **parameters: object) -> str:
        """The URL naming `photo` itself, cacheable forever: `{index}photos/{id}/wallpaper`."""
        query = f"?{urlencode(parameters)}" if parameters else ""
        return f"{self.index.rstrip('/')}/photos/{quote(photo.id, safe='')}/wallpaper{query}"


def query_string(query: Query, **extra: object) -> str:
    """URL parameters naming `query` (nothing for the newest sol, any camera) and `extra`."""
    pairs: dict[str, object] = dict(extra)
    if query.sol is not None:
        pairs["sol"] = query.sol
    if query.cameras:
        pairs["camera"] = ",".join(query.cameras)
    return urlencode(pairs, safe=",")


def listing_json(listing: Listing, query: Query, paths: Paths) -> bytes:
    photos = [
        {"number": n, "id": p.id, "camera": p.camera, "camera_name": human_name(p.camera),
         "taken": p.taken, "img_src": p.img_src, "credit": p.credit,
         "wallpaper_url": f"{paths.wallpaper}?{query_string(query, photo_number=n)}",
         "permalink": paths.permalink(p)}
        for n, p in enumerate(listing.photos)
    ]
    return json.dumps({"source": listing.source, "rover": listing.rover, "sol": listing.sol,
                       "newest_sol": listing.newest_sol, "cameras": list(query.cameras),
                       "count": len(photos), "photos": photos}).encode()


def gallery_html(listing: Listing, query: Query, paths: Paths) -> bytes:
    rover = listing.rover.capitalize()
    cards = "\n".join(_card(photo, listing, paths) for photo in listing.photos)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(rover)}, sol {listing.sol}: Mars wallpapers</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #1b1210; color: #f3e9e4; }}
  header, main {{ max-width: 72rem; margin: auto; padding: 1rem; }}
  h1 {{ font-size: 1.6rem; margin: .5rem 0 0; }}
  ul.photos {{ list-style: none; padding: 0; display: grid; gap: 1rem;
              grid-template-columns: repeat(auto-fill, minmax(18rem, 1fr)); }}
  li.photo {{ background: #2b1d19; border-radius: .5rem; overflow: hidden; }}
  li.photo img {{ display: block; width: 100%; height: 14rem; object-fit: cover;
                  background: #000; }}
  .meta {{ padding: .5rem .75rem .75rem; }}
  .meta p {{ margin: .2rem 0; font-size: .9rem; color: #d9c3ba; }}
  .sizes a, .download {{ display: inline-block; margin: .25rem .25rem 0 0; padding: .15rem .5rem;
            border-radius: .3rem; background: #4a2d25; color: #fff; text-decoration: none; }}
  .download {{ background: #b8532f; }}
  a:focus-visible {{ outline: 3px solid #ffd27a; outline-offset: 2px; }}
  nav a {{ color: #ffd27a; margin-right: .75rem; }}
  nav a[aria-current] {{ color: #fff; font-weight: bold; text-decoration: none; }}
</style>
</head>
<body>
<header>
<h1>{escape(rover)}: sol {listing.sol}</h1>
<p>{len(listing.photos)} photos{escape(_which(query))}, as wallpapers for any screen.</p>
{_navigation(listing, query, paths)}
</header>
<main>
<ul class="photos">
{cards}
</ul>
</main>
</body>
</html>
""".encode()


def _which(query: Query) -> str:
    if query.sol is None and not query.cameras:
        return " from the newest sol"
    cameras = ", ".join(human_name(code) for code in query.cameras)
    return f" from {cameras}" if cameras else ""


def _navigation(listing: Listing, query: Query, paths: Paths) -> str:
    """Plain links: the sols on either side, and a filter for each camera in this sol."""
    sols = []
    if listing.sol > 0:
        sols.append((listing.sol - 1, f"&larr; sol {listing.sol - 1}"))
    if listing.newest_sol is None or listing.sol < listing.newest_sol:
        sols.append((listing.sol + 1, f"sol {listing.sol + 1} &rarr;"))
    links = [f'<a href="{escape(f"{paths.index}?{query_string(Query(sol, query.cameras))}")}">'
             f"{label}</a>" for sol, label in sols]
    here = Query(listing.sol)
    cameras = [f'<a href="{escape(paths.index)}?{escape(query_string(here))}"'
               f'{"" if query.cameras else " aria-current=true"}>all cameras</a>']
    for code in sorted({photo.camera for photo in listing.photos}):
        try:
            only = Query(listing.sol, (code,))
        except BadParameter:
            continue  # a feed's odd camera name: listed on its photos, but not filterable
        current = " aria-current=true" if query.cameras == only.cameras else ""
        href = escape(f"{paths.index}?{query_string(only)}")
        cameras.append(f'<a href="{href}"{current}>{escape(human_name(code))}</a>')
    return (f'<nav aria-label="sols">{" ".join(links)}</nav>\n'
            f'<nav aria-label="cameras">{" ".join(cameras)}</nav>')


def _card(photo: Photo, listing: Listing, paths: Paths) -> str:
    """One photo; every link is its permalink, which caches in front can keep forever."""
    camera, taken = escape(human_name(photo.camera)), escape(photo.taken)
    sizes = " ".join(
        f'<a href="{escape(paths.permalink(photo, preset=name))}">{name} '
        f"<small>{w}x{h}</small></a>" for name, (w, h) in PRESETS.items()
    )
    rover = escape(listing.rover.capitalize())
    alt = f"{rover} {camera} photo from sol {listing.sol}, taken {taken}"
    thumbnail = escape(paths.permalink(photo, height=THUMBNAIL_HEIGHT))
    download = escape(paths.permalink(photo, preset="1080p", download=1))
    return f"""<li class="photo">
<img src="{thumbnail}" alt="{alt}" loading="lazy">
<div class="meta">
<p><strong>{camera}</strong>, sol {listing.sol}, taken {taken}</p>
<p>Credit: {escape(photo.credit)}</p>
<p class="sizes">{sizes}</p>
<a class="download" href="{download}">Download 1080p</a>
</div>
</li>"""


ERROR_TITLES = {400: "That request does not work", 404: "Nothing here",
                500: "Something broke on our side", 502: "NASA's photo feed cannot be read",
                503: "Not right now", 504: "NASA's photo feed does not answer"}


def error_page(status: int, detail: str, retry_after: int | None, *, newest_cached: bool,
               index: str, offline_hint: bool) -> bytes:
    """An error in the gallery's style, in plain words, for people in a browser."""
    title = ERROR_TITLES.get(status, "Something went wrong")
    advice = [f"<p>{escape(detail)}.</p>"]
    if retry_after:
        advice.append(f"<p>Try again in {retry_after} seconds.</p>")
    elif status >= 500:
        advice.append("<p>Try again in a minute or two.</p>")
    if newest_cached:
        advice.append(f'<p>The newest photos are still here: <a href="{escape(index)}">'
                      "go to the gallery</a>.</p>")
    elif status >= 500:
        advice.append("<p>No earlier photos are cached yet, so there is nothing to show "
                      "meanwhile.</p>")
    if offline_hint:
        advice.append("<p>Running this yourself without internet access? "
                      "<code>marsserver --source demo</code> serves generated photos "
                      "offline.</p>")
    body = "\n".join(advice)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}: Mars wallpapers</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #1b1210; color: #f3e9e4; }}
  main {{ max-width: 40rem; margin: auto; padding: 2rem 1rem; }}
  h1 {{ font-size: 1.6rem; }}
  a {{ color: #ffd27a; }}
  code {{ background: #2b1d19; padding: .1rem .3rem; border-radius: .2rem; }}
</style>
</head>
<body>
<main>
<h1>{escape(title)}</h1>
{body}
<p><small>HTTP {status}</small></p>
</main>
</body>
</html>
""".encode()


def http_date(taken: str) -> str | None:
    """A feed's date (ISO 8601, with a zone or UTC without) as an HTTP date; None if unreadable."""
    try:
        moment = datetime.fromisoformat(taken.replace("Z", "+00:00"))
    except ValueError:
        return None
    return format_datetime((moment if moment.tzinfo else moment.replace(tzinfo=UTC))
                           .astimezone(UTC), usegmt=True)


def filename(rover: str, sol: int, photo: Photo, spec: Spec) -> str:
    """A download name that says what it is: rover, sol, camera and size."""
    size = f"{spec.width}x{spec.height}" if spec.width else f"h{spec.height}"
    extension = "jpg" if spec.format == "jpeg" else spec.format
    return f"{_plain(rover)}-sol{sol}-{_plain(photo.camera)}-{size}.{extension}"


def _plain(text: str) -> str:
    """The header stays plain ASCII, whatever the feed (or a shared cache) says."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in text)[:64]
