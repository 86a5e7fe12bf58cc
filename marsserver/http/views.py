"""Views of today's listing: JSON for programs, an HTML gallery for people, and names and dates.

Rendered once per fetch of the list (not per request). The gallery needs no JavaScript and
no external assets (it works offline); it is plain, accessible HTML: alt text on every
thumbnail, visible keyboard focus, one list of photos. Dates and camera names are written for
people (the feed's codes stay in small print); thumbnails come in 1x and 2x, so high-DPI
screens get sharp ones; the error page wears the same frame.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode

from PIL import Image, ImageDraw

from ..core import entries
from ..core.entries import CachedListing, Rendition
from ..errors import BadParameter
from ..imaging import PRESETS, THUMBNAIL_HEIGHTS
from ..sources import Listing, Photo, Query
from ..sources.cameras import human_name

ICON_TYPE = "image/vnd.microsoft.icon"
ICON_SIZES = ((16, 16), (32, 32))


@dataclass(frozen=True, slots=True)
class Paths:
    """Where this app's routes are (it may be mounted under a prefix)."""

    index: str = "/"
    wallpaper: str = "/wallpaper"

    def permalink(self, photo: Photo, sol: int, **parameters: object) -> str:
        """The URL naming `photo` of `sol` itself, cacheable forever:
        `{index}photos/{id}/wallpaper?sol=N&...`. The sol is what any instance needs to find
        the photo again (one listing of that sol), cold, restarted or long after."""
        query = urlencode({"sol": sol, **parameters})
        return f"{self.index.rstrip('/')}/photos/{quote(photo.id, safe='')}/wallpaper?{query}"


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
         "permalink": paths.permalink(p, listing.sol)}
        for n, p in enumerate(listing.photos)
    ]
    return json.dumps({"source": listing.source, "rover": listing.rover, "sol": listing.sol,
                       "newest_sol": listing.newest_sol, "cameras": list(query.cameras),
                       "count": len(photos), "photos": photos}).encode()


def gallery_html(listing: Listing, query: Query, paths: Paths) -> bytes:
    """One sol's photos as a page; every URL in it is under `paths.index`, wherever mounted."""
    rover = escape(listing.rover.capitalize())
    count = len(listing.photos)
    lede = f'{count} photo{"" if count == 1 else "s"}{escape(_which(query))}'
    header = f"""<div class="title">
<h1>{rover}: sol {listing.sol}</h1>
{_sol_links(listing, query, paths)}
</div>
<p>{lede}, as wallpapers for any screen.</p>
{_sol_hint(query)}{_notice(listing)}{_camera_links(listing, query, paths)}"""
    cards = "\n".join(_card(photo, listing, paths) for photo in listing.photos)
    credits = tuple(dict.fromkeys(photo.credit for photo in listing.photos))
    footer = _footer(paths.index, credits, query_string(query))
    return _page(f"{rover}, sol {listing.sol}", paths.index, header,
                 f'<ul class="photos">\n{cards}\n</ul>', footer)


def _which(query: Query) -> str:
    if query.sol is None and not query.cameras:
        return " from the newest sol"
    cameras = ", ".join(human_name(code) for code in query.cameras)
    return f" from {cameras}" if cameras else ""


def _notice(listing: Listing) -> str:
    """Said up front, not only in the credits: nobody should take a demo image for Mars."""
    if listing.source != "demo":
        return ""
    return ('<p class="notice" role="note"><strong>Demo:</strong> these images are generated '
            "by marsserver, not taken on Mars.</p>\n")


def _sol_links(listing: Listing, query: Query, paths: Paths) -> str:
    """Plain links to the sols on either side (no later sol than the newest one known), with
    every camera: a camera does not take photos every sol, and finding the nearest sol that
    has some would cost a list per sol looked at (`_sol_hint` says so on the page)."""
    sols = []
    if listing.sol > 0:
        sols.append((listing.sol - 1, f"&larr; sol {listing.sol - 1}"))
    if listing.newest_sol is None or listing.sol < listing.newest_sol:
        sols.append((listing.sol + 1, f"sol {listing.sol + 1} &rarr;"))
    links = [f'<a href="{escape(f"{paths.index}?{query_string(Query(sol))}")}">{label}</a>'
             for sol, label in sols]
    return f'<nav aria-label="sols">{" ".join(links)}</nav>'


def _sol_hint(query: Query) -> str:
    """Why the sol links drop a camera filter, said where the filter is shown."""
    if not query.cameras:
        return ""
    return ('<p class="hint">Other sols open with all cameras: not every camera takes '
            "photos every sol.</p>\n")


def _camera_links(listing: Listing, query: Query, paths: Paths) -> str:
    """A filter for each camera in this sol, by its human name (the feed's code in `title`):
    all of the sol's cameras, the current filter marked, also when the page shows one."""
    here = Query(listing.sol)
    cameras = [f'<a href="{escape(paths.index)}?{escape(query_string(here))}"'
               f'{"" if query.cameras else " aria-current=true"}>all cameras</a>']
    for code in listing.cameras:
        try:
            only = Query(listing.sol, (code,))
        except BadParameter:
            continue  # a feed's odd camera name: listed on its photos, but not filterable
        current = " aria-current=true" if query.cameras == only.cameras else ""
        href = escape(f"{paths.index}?{query_string(only)}")
        cameras.append(f'<a href="{href}" title="{escape(code)}"{current}>'
                       f"{escape(human_name(code))}</a>")
    return f'<nav aria-label="cameras">{" ".join(cameras)}</nav>'


def _card(photo: Photo, listing: Listing, paths: Paths) -> str:
    """One photo; every link is its permalink, which caches in front can keep forever."""
    name = human_name(photo.camera)
    code = "" if name == photo.camera else f" <small>{escape(photo.camera)}</small>"
    sizes = " ".join(
        f'<a href="{escape(paths.permalink(photo, listing.sol, preset=preset))}">{preset} '
        f"<small>{w}&times;{h}</small></a>" for preset, (w, h) in PRESETS.items()
    )
    alt = escape(f"{listing.rover.capitalize()} {name} photo from sol {listing.sol}, "
                 f"taken {human_date(photo.taken)}")
    small, large = (escape(paths.permalink(photo, listing.sol, height=height))
                    for height in THUMBNAIL_HEIGHTS)
    # A file people set as their wallpaper: JPEG, which every desktop takes, not WebP.
    download = escape(paths.permalink(photo, listing.sol, preset="1080p", format="jpeg",
                                      download=1))
    return f"""<li class="photo">
<img src="{small}" srcset="{small} 1x, {large} 2x" alt="{alt}" loading="lazy">
<div class="meta">
<h2>{escape(name)}{code}</h2>
<p>{_time(photo.taken)}</p>
<p class="sizes">{sizes}</p>
<a class="download" href="{download}">Download 1080p</a>
<p class="credit">Credit: {escape(photo.credit)}</p>
</div>
</li>"""


def _time(taken: str) -> str:
    """A feed's date for people, with the machine-readable moment kept in `<time>`."""
    moment = entries.moment(taken)
    if moment is None:
        return escape(taken)
    return f'<time datetime="{moment.isoformat()}">{escape(human_date(taken))}</time>'


def _footer(index: str, credits: tuple[str, ...] = (), api_query: str = "") -> str:
    """The machine-readable twins of the page, and whose images these are."""
    photos = f"{index}api/photos" + (f"?{api_query}" if api_query else "")
    links = " ".join(f'<a href="{escape(href)}">{label}</a>' for href, label in (
        (photos, "Photos as JSON"), (f"{index}openapi.json", "OpenAPI contract"),
        (f"{index}presets", "Screen presets")))
    credit = f"<p>Images: {escape('; '.join(credits))}.</p>\n" if credits else ""
    return f'<footer>\n<nav aria-label="API">For programs: {links}</nav>\n{credit}</footer>'


ERROR_TITLES = {400: "That request does not work", 403: "That link needs a valid signature",
                404: "Nothing here",
                500: "Something broke on our side", 502: "NASA's photo feed cannot be read",
                503: "Not right now", 504: "NASA's photo feed does not answer"}


def error_page(status: int, detail: str, retry_after: int | None, *, newest_cached: bool,
               index: str, offline_hint: bool) -> bytes:
    """An error in the gallery's style, in plain words, for people in a browser."""
    title = escape(ERROR_TITLES.get(status, "Something went wrong"))
    advice = [f"<p>{escape(detail[:1].upper() + detail[1:])}.</p>"]
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
    main = f'<div class="error">\n{body}\n<p><small>HTTP {status}</small></p>\n</div>'
    return _page(title, index, f"<h1>{title}</h1>", main, _footer(index))


def _page(title: str, index: str, header: str, main: str, footer: str) -> bytes:
    """The frame every page shares: one look, one stylesheet inline (nothing to fetch but
    this app's own icon, linked under its mount: a browser would ask the site's root)."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: Mars wallpapers</title>
<link rel="icon" href="{escape(index)}favicon.ico" type="{ICON_TYPE}">
<style>{STYLE}</style>
</head>
<body>
<header>
<a class="brand" href="{escape(index)}">Mars wallpapers</a>
{header}
</header>
<main>
{main}
</main>
{footer}
</body>
</html>
""".encode()


# Content sits in a centred column of at most 72rem; header and footer bands span the window.
STYLE = """
  :root { color-scheme: dark; }
  * { box-sizing: border-box; }
  body { display: flex; flex-direction: column; min-height: 100vh; margin: 0;
         font: 16px/1.5 system-ui, sans-serif; background: #1b1210; color: #f3e9e4; }
  header, main, footer { padding: 1rem max(1rem, calc((100% - 72rem) / 2)); }
  main { flex: 1; }
  header { background: #251814; border-bottom: 1px solid #3d2a23; }
  header p { margin: .25rem 0 0; color: #dcc8bf; }
  header .hint { font-size: .9rem; color: #b89c91; }
  a { color: #ffd27a; }
  a:focus-visible { outline: 3px solid #ffd27a; outline-offset: 2px; }
  .brand { font-size: .8rem; letter-spacing: .08em; text-transform: uppercase;
           color: #e0a184; text-decoration: none; }
  .title { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between;
           gap: .25rem 1rem; }
  h1 { font-size: 1.75rem; line-height: 1.25; margin: 0; }
  nav { display: flex; flex-wrap: wrap; gap: .4rem; }
  header nav[aria-label=cameras] { margin-top: .75rem; }
  header nav a { padding: .15rem .75rem; border: 1px solid #5c3b31; border-radius: 1rem;
                 font-size: .9rem; text-decoration: none; }
  header nav a:hover { border-color: #ffd27a; }
  header nav a[aria-current] { background: #ffd27a; border-color: #ffd27a; color: #1b1210;
                               font-weight: 600; }
  .notice { margin-top: .6rem; padding: .35rem .75rem; border-left: 4px solid #ffd27a;
            border-radius: .25rem; background: #3a2620; color: #f3e9e4; }
  ul.photos { list-style: none; margin: 0; padding: 0; display: grid; gap: 1rem;
              grid-template-columns: repeat(auto-fill, minmax(min(18rem, 100%), 1fr)); }
  li.photo { display: flex; flex-direction: column; background: #2b1d19; border-radius: .5rem;
             overflow: hidden; }
  li.photo img { display: block; width: 100%; height: 15rem; object-fit: cover;
                 background: #000; }
  .meta { display: flex; flex: 1; flex-direction: column; padding: .6rem .75rem .75rem;
          overflow-wrap: anywhere; }
  .meta h2 { font-size: 1.05rem; margin: 0; }
  .meta p { margin: .1rem 0; font-size: .9rem; color: #dcc8bf; }
  .meta small { color: #b89c91; font-size: .8rem; font-weight: normal; }
  .meta .sizes { display: flex; flex-wrap: wrap; gap: .3rem; margin: .6rem 0; }
  .sizes a { padding: .1rem .45rem; border-radius: .3rem; background: #4a2d25; color: #fff;
             font-size: .85rem; text-decoration: none; }
  .sizes a small { color: #e3cbc1; }
  .sizes a:hover { background: #6a3f33; }
  .download { align-self: flex-start; margin-top: auto; padding: .3rem .9rem;
              border-radius: .3rem; background: #b8532f; color: #fff; font-weight: 600;
              text-decoration: none; }
  .download:hover { background: #cf6240; }
  .meta .credit { margin-top: .6rem; font-size: .8rem; color: #b89c91; }
  .error { max-width: 40rem; }
  .error small { color: #b89c91; }
  code { background: #2b1d19; padding: .1rem .3rem; border-radius: .2rem; }
  footer { margin-top: 1rem; border-top: 1px solid #3d2a23; background: #251814;
           color: #b89c91; font-size: .9rem; }
  footer nav { gap: .25rem 1.25rem; }
  footer p { margin: .4rem 0 0; }
  @media (max-width: 40rem) {
    h1 { font-size: 1.5rem; }
  }
"""


def icon() -> bytes:
    """A rust-red disc with a darker patch, drawn large and scaled down for smooth edges, as an
    ICO (PNG inside) of the sizes browsers show: made once, when the app is imported."""
    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, 123, 123), fill=(193, 68, 14, 255))
    draw.ellipse((34, 40, 74, 70), fill=(140, 46, 16, 255))
    draw.ellipse((70, 82, 96, 100), fill=(160, 56, 18, 255))
    out = io.BytesIO()
    image.save(out, "ICO", sizes=list(ICON_SIZES))
    return out.getvalue()


def human_date(taken: str) -> str:
    """`2024-01-01T12:00:00Z` -> `1 Jan 2024, 12:00 UTC` (a bare date stays a date); what
    the feed said when it cannot be read. Month names are fixed, whatever the locale."""
    moment = entries.moment(taken)
    if moment is None:
        return taken
    day = f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"
    return day if _DATE.fullmatch(taken) else f"{day}, {moment:%H:%M} UTC"


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def cached_listing(listing: Listing, query: Query, fresh_for: float, fetched_at: float, *,
                   paths: Paths) -> CachedListing:
    """A listing with its JSON and HTML views, as cached (also when read back from Redis),
    each gzipped here once for all the clients that take gzip."""
    return CachedListing(
        listing, query, fresh_for,
        Rendition.of(listing_json(listing, query, paths), "application/json",
                     made_at=fetched_at, compress=True),
        Rendition.of(gallery_html(listing, query, paths), "text/html; charset=utf-8",
                     made_at=fetched_at, compress=True),
    )
