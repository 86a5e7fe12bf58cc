"""Rover cameras: the feeds' instrument codes, their human names, and what a code may look like.

Names follow the feeds' own `title` strings and NASA's gallery labels (sources in
docs/feeds.md, section 3), written as "Camera, side" so a gallery can sort
them. The `_A`/`_B` suffix of Curiosity's engineering cameras names the rover computer they
are wired to, not a different camera, so both spell the same name.

Validation checks the shape of a code only, never membership of these tables: NASA adds
instruments, and a code no feed knows simply finds no photos (a clear 404), while a code
outside the shape could smuggle feed syntax (`|`, `:`, `,`) into the query we send.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..errors import BadParameter

MAX_CAMERAS = 10  # bounds the feed's search term and the number of distinct cache keys
_CODE = re.compile(r"[A-Z][A-Z0-9_]{1,31}")


def _sides(codes: Mapping[str, str]) -> dict[str, str]:
    """`{"NAV_{side}_A": "Navigation Camera"}` -> left and right codes, each ", left"/", right"."""
    return {code.format(side=side.upper()): f"{name}, {side}"
            for code, name in codes.items() for side in ("left", "right")}


CURIOSITY: Mapping[str, str] = {
    **_sides({
        "NAV_{side}_A": "Navigation Camera", "NAV_{side}_B": "Navigation Camera",
        "FHAZ_{side}_A": "Front Hazard Avoidance Camera",
        "FHAZ_{side}_B": "Front Hazard Avoidance Camera",
        "RHAZ_{side}_A": "Rear Hazard Avoidance Camera",
        "RHAZ_{side}_B": "Rear Hazard Avoidance Camera",
        "MAST_{side}": "Mast Camera (Mastcam)",
    }),
    "MAHLI": "Mars Hand Lens Imager",
    "MARDI": "Mars Descent Imager",
    "CHEMCAM_RMI": "Chemistry & Camera (ChemCam)",
}

PERSEVERANCE: Mapping[str, str] = {
    **_sides({
        "NAVCAM_{side}": "Navigation Camera",
        "FRONT_HAZCAM_{side}_A": "Front Hazard Avoidance Camera",
        "FRONT_HAZCAM_{side}_B": "Front Hazard Avoidance Camera",
        "REAR_HAZCAM_{side}": "Rear Hazard Avoidance Camera",
        "MCZ_{side}": "Mastcam-Z",
    }),
    "SKYCAM": "MEDA SkyCam",
    "SHERLOC_WATSON": "SHERLOC WATSON",
    "SHERLOC_ACI": "SHERLOC Context Imager",
    "SUPERCAM_RMI": "SuperCam Remote Micro Imager",
    "PIXL_MCC": "PIXL Micro Context Camera",
    "CACHECAM": "Sample Caching System (CacheCam)",
    "EDL_RDCAM": "Rover Down-Look Camera",
    "EDL_RUCAM": "Rover Up-Look Camera",
    "EDL_DDCAM": "Descent Stage Down-Look Camera",
    "EDL_PUCAM1": "Parachute Up-Look Camera A",
    "EDL_PUCAM2": "Parachute Up-Look Camera B",
    "LCAM": "Lander Vision System Camera",
    "HELI_NAV": "Ingenuity Navigation Camera",
    "HELI_RTE": "Ingenuity Color Camera",
}

#: The retired Mars Rover Photos API's short names (its own `camera.full_name` strings).
MARS_PHOTOS: Mapping[str, str] = {
    "FHAZ": "Front Hazard Avoidance Camera",
    "RHAZ": "Rear Hazard Avoidance Camera",
    "MAST": "Mast Camera",
    "CHEMCAM": "Chemistry and Camera Complex",
    "MAHLI": "Mars Hand Lens Imager",
    "MARDI": "Mars Descent Imager",
    "NAVCAM": "Navigation Camera",
}

#: The offline demo source's cameras.
DEMO: Mapping[str, str] = {
    "DEMO_MAST": "Mast camera (demo)",
    "DEMO_NAV_LEFT": "Navigation camera, left (demo)",
    "DEMO_NAV_RIGHT": "Navigation camera, right (demo)",
    "DEMO_FHAZ": "Front hazard camera (demo)",
}

_NAMES: Mapping[str, str] = {**MARS_PHOTOS, **CURIOSITY, **PERSEVERANCE, **DEMO}


def human_name(code: str) -> str:
    """What to call a camera on a page: its name when known, else the code as the feed gave it."""
    return _NAMES.get(code.upper(), code)


def canonical(codes: Iterable[str]) -> tuple[str, ...]:
    """Codes upper-cased, deduplicated and sorted: one spelling per set, so one cache key."""
    found = {_checked(code) for code in codes}
    if len(found) > MAX_CAMERAS:
        raise BadParameter(f"camera names at most {MAX_CAMERAS} cameras, got {len(found)}")
    return tuple(sorted(found))


#: What a `camera` parameter may be: up to MAX_CAMERAS codes, comma-separated (spaces after
#: the commas allowed), or nothing (any camera). The OpenAPI contract publishes this pattern.
LIST_PATTERN = (r"(?:[A-Za-z][A-Za-z0-9_]{1,31}(?:, *[A-Za-z][A-Za-z0-9_]{1,31})"
                rf"{{0,{MAX_CAMERAS - 1}}})?")


def parse_cameras(text: str) -> tuple[str, ...]:
    """`"nav_left_b, MAST_LEFT"` -> `("MAST_LEFT", "NAV_LEFT_B")`; empty means any camera."""
    if not re.fullmatch(LIST_PATTERN, text):
        raise BadParameter("camera must be up to 10 comma-separated instrument codes such as "
                           f"NAV_LEFT_B,MCZ_LEFT (letters, digits and _), got {text[:60]!r}")
    return canonical(code.strip() for code in text.split(",") if code.strip())


def _checked(code: str) -> str:
    upper = code.upper()
    if not (code.isascii() and _CODE.fullmatch(upper)):
        raise BadParameter("camera must be instrument codes such as NAV_LEFT_B or MCZ_LEFT "
                           f"(letters, digits and _), got {code[:40]!r}")
    return upper
