"""Imaging: turn a source image into the wallpaper a `Spec` describes.

Plain, blocking Pillow code: the pipeline runs it in a thread pool (Pillow releases the GIL
while decoding, resampling and encoding), never on the event loop. Like thumbor and imgproxy,
it refuses what it should not open: only JPEG and PNG, and the pixel count is checked from
the header before anything is decoded (decompression bombs). Like imgproxy's `gravity:sm`, a
cover crops where the photo's detail is (`_detail_at`), unless asked for the centre.
"""

from __future__ import annotations

import io
import logging
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageFilter, features
from PIL.JpegImagePlugin import JpegImageFile

from .errors import BadParameter, BadUpstream

log = logging.getLogger(__name__)

FORMATS = ("JPEG", "PNG")
MIN_SIZE = 16
MAX_HEIGHT = 4320
MAX_WIDTH = 7680
SLIVER_WIDTH = 4 * MAX_HEIGHT  # 4:1, wider than any real camera frame or ultrawide screen
FITS = ("scale", "cover", "contain")
CROPS = ("smart", "center")  # where fit=cover cuts; the first is the default
MEDIA_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}
if features.check("avif"):  # Pillow's wheels have it; a Pillow built without libavif does not
    MEDIA_TYPES["avif"] = "image/avif"
DEFAULT_QUALITY = 85
# AVIF's quality scale is its own: at AVIF_QUALITY a wallpaper is about as far from a lossless
# one as at JPEG's DEFAULT_QUALITY, in fewer bytes; aom's speed is where bytes stop buying
# encode time (both chosen with bench/avif.py, docs/performance.md). One thread per encode, as
# the resize pool already runs one wallpaper per thread.
AVIF_QUALITY = 80
AVIF_OPTIONS = {"speed": 9, "max_threads": 1}
LETTERBOX = 0  # black bars for fit=contain, in grayscale and in colour
# Filters are chosen by measurement (bench/resize.py, docs/performance.md): every wallpaper
# stays visually identical to decoding everything and resizing with Lanczos, at least cost.
# Bicubic does what the cases in _resampled leave (enlarging, mostly).
RESAMPLING = Image.Resampling.BICUBIC
# libjpeg's DCT scaling: (1/n scale, least shrink that may use it), see _drafted.
DRAFTS = ((4, 4 * 2.5), (2, 2 * 1.4))
Box = tuple[float, float, float, float]  # left, top, right, bottom, in pixels
# Smart crop: the long side of the copy detail is measured on, the edge strength (of 255)
# below which it is noise, and how close to the most detail a window nearer the centre may be.
DETAIL_SIDE = 256
NOISE = 8
TIE = 0.02


@dataclass(frozen=True, slots=True)
class Spec:
    """One distinct output. Equal specs are one cache entry and one coalesced flight."""

    height: int
    width: int | None = None  # None: scale to `height`, keeping the aspect ratio
    fit: str = "scale"
    format: str = "jpeg"
    quality: int = DEFAULT_QUALITY  # 0 for png, which has no quality
    crop: str = CROPS[0]  # only fit=cover crops: the default with every other fit

    @property
    def key(self) -> str:
        fit = f"cover-{self.crop}" if self.fit == "cover" else self.fit
        return f"{self.width or ''}x{self.height}-{fit}-q{self.quality}.{self.format}"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


PRESETS = {  # name: (width, height), for common screens
    "720p": (1280, 720), "1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160),
    "ultrawide": (3440, 1440), "phone": (1170, 2532), "tablet": (1640, 2360),
}
DEFAULT_HEIGHT = 1080  # a wallpaper asked for by height alone, or by nothing
THUMBNAIL_HEIGHTS = (240, 480)  # the gallery's thumbnails, 1x and 2x
_PRESET_SIZES = frozenset(PRESETS.values())


def default_quality(image_format: str) -> int:
    """The quality a wallpaper in `image_format` has when none is asked for (0: PNG has none)."""
    return {"png": 0, "avif": AVIF_QUALITY}.get(image_format, DEFAULT_QUALITY)


def standard_spec(spec: Spec) -> bool:
    """Whether `spec` is one the service names itself: a preset (any fit), the default height
    or a gallery thumbnail, at its format's default quality. These are a few per photo; any
    other size or quality is a client's choice, with no end to them (a loop over qualities is
    as many resizes as one over sizes), so it may need a signature and is kept briefly."""
    if spec.quality != default_quality(spec.format):
        return False
    if spec.width is None:
        return spec.height == DEFAULT_HEIGHT or spec.height in THUMBNAIL_HEIGHTS
    return (spec.width, spec.height) in _PRESET_SIZES


def wallpaper(data: bytes, spec: Spec, *, max_pixels: int) -> bytes:
    """Make the wallpaper `spec` describes from encoded `data`.

    Grayscale stays grayscale in JPEG, PNG and AVIF (a third of the bytes). Raises `BadUpstream`
    for anything that is not a sound JPEG or PNG within `max_pixels`.
    """
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            return _encode(_fitted(image, spec, max_pixels), spec)
    except (OSError, SyntaxError, ValueError, MemoryError, Image.DecompressionBombError) as error:
        # Pillow reports unknown, truncated and corrupt data through these; its words (which
        # may name an object's address) are for the log, the client reads ours.
        cause = f"source image unusable: {type(error).__name__}: {error}"
        log.info("%s", cause)
        raise BadUpstream("source image unusable: not a complete JPEG or PNG",
                          cause=cause) from None


def _fitted(image: Image.Image, spec: Spec, max_pixels: int) -> Image.Image:
    source_width, source_height = image.size
    if source_width * source_height > max_pixels:
        raise BadUpstream(f"source image too large: {source_width}x{source_height} pixels")
    width = spec.width or max(1, round(source_width * spec.height / source_height))
    if width > SLIVER_WIDTH:
        # A sliver of a source (1000x10) must not become a 432000-pixel-wide output. It is
        # the asked-for height that does not fit this photo, not a broken photo.
        raise BadParameter(f"height {spec.height} would make this {source_width}x{source_height}"
                           f" photo wider than {SLIVER_WIDTH} pixels")
    if spec.fit != "contain":
        kept = _kept(image.size, width, spec.height) if spec.fit == "cover" else image.size
        smart = spec.fit == "cover" and spec.crop == "smart"
        return _resampled(image, (width, spec.height), kept, smart=smart)
    scale = min(width / source_width, spec.height / source_height)
    inner = _resampled(image, (max(1, round(source_width * scale)),
                               max(1, round(source_height * scale))), image.size, smart=False)
    canvas = Image.new(inner.mode, (width, spec.height), LETTERBOX)
    canvas.paste(inner, ((width - inner.width) // 2, (spec.height - inner.height) // 2))
    return canvas


def _resampled(image: Image.Image, size: tuple[int, int], kept: tuple[float, float], *,
               smart: bool) -> Image.Image:
    """A `kept`-sized part of the source (in source pixels: centred, or where the detail is
    if `smart`) resampled to `size` as cheaply as can be done while staying visually
    identical to a full-size Lanczos resize."""
    source = image.size
    shrink = min(kept[0] / size[0], kept[1] / size[1])
    factor = _drafted(image, shrink)
    image = _normalised(image)
    where = _detail_at(image, kept[0] / source[0], kept[1] / source[1]) if smart else (0.5, 0.5)
    region = _placed(source, kept, where, factor)
    if factor < 1:
        # Little is left to resample after DCT scaling, so Lanczos costs little, and it
        # is needed: bicubic on top of DCT scaling loses visible detail.
        return image.resize(size, Image.Resampling.LANCZOS, box=region)
    if 1 < shrink < DRAFTS[-1][1]:
        # Shrinking too little for DCT scaling: the costliest case, as the horizontal pass
        # runs over every source row. Hamming there halves its taps; bicubic does the
        # vertical pass, where Hamming would lose visible detail.
        across = image.resize((size[0], image.height), Image.Resampling.HAMMING,
                              box=(region[0], 0, region[2], image.height))
        return across.resize(size, RESAMPLING, box=(0, region[1], size[0], region[3]))
    return image.resize(size, RESAMPLING, box=region, reducing_gap=3.0)


def _drafted(image: Image.Image, shrink: float) -> float:
    """Let libjpeg decode a JPEG at 1/2 or 1/4 scale (far less to decode and to resample)
    when that leaves enough shrinking to Lanczos; the scale it chose, 1 for none.

    DCT scaling is a crude filter of its own. Used to the full (a 1200 px frame decoded at
    600 px for a 600 px wallpaper) it is 38 dB from Lanczos on detailed frames; Lanczos
    after it hides that when it still shrinks 1.4x (1/2 scale: >= 41.6 dB) or 2.5x (1/4
    scale: >= 41.5 dB). 1/8 scale is plain block averages and never gets to 40 dB.
    An MPO (a JPEG with more frames appended, from stereo and some phone cameras) is
    opened as its first frame, a JPEG like any other.
    """
    denominator = next((n for n, least in DRAFTS if shrink >= least), 1)
    if not isinstance(image, JpegImageFile) or denominator == 1:
        return 1.0
    width, height = image.size
    drafted = image.draft(image.mode, (width // denominator, height // denominator))
    return 1.0 if drafted is None else drafted[1][2] / width


def _normalised(image: Image.Image) -> Image.Image:
    """8-bit grayscale or RGB, whatever the source's mode."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float grayscale: scale to 8 bits rather than clip everything to white.
        image = image.convert("I").point(lambda value: value / 256)
    mode = "L" if image.mode in ("1", "L", "LA", "I") else "RGB"
    return image if image.mode == mode else image.convert(mode)


def _kept(size: tuple[int, int], width: int, height: int) -> tuple[float, float]:
    """How much of a `size` source a `width` x `height` cover keeps: all of one side."""
    source_width, source_height = size
    if source_width / source_height > width / height:  # too wide: trim the sides
        return source_height * width / height, source_height
    return source_width, source_width * height / width  # too tall: trim top and bottom


def _placed(size: tuple[int, int], kept: tuple[float, float], where: tuple[float, float],
            scale: float) -> Box:
    """The `kept`-sized box in a `size` source, `where` along the room left on each axis
    (0: left or top, 0.5: centred, 1: right or bottom), in pixels of the source decoded at
    `scale`."""
    left = (size[0] - kept[0]) * where[0]
    top = (size[1] - kept[1]) * where[1]
    return (left * scale, top * scale, (left + kept[0]) * scale, (top + kept[1]) * scale)


def _detail_at(image: Image.Image, kept_across: float, kept_down: float) -> tuple[float, float]:
    """Where (as for `_placed`) a window keeping these fractions of `image` holds the most
    detail; the centre on an axis it spans, or where no window holds more than the centre.

    Detail is edge energy (the gradient a 3x3 edge filter sees) on a copy reduced to about
    DETAIL_SIDE pixels: edges are where a photo's subject differs from the sand and sky
    around it (a rover's deck, a rock's outline, the horizon), and a reduced copy sees
    those while JPEG noise and sand grain average out; what little survives is cut below
    NOISE. The window only slides along one axis, so its energy is a running sum over
    column (or row) means.
    """
    if min(kept_across, kept_down) > 1 - 1 / DETAIL_SIDE:  # less than a reduced pixel to move
        return (0.5, 0.5)
    reduced = image.reduce(max(1, max(image.size) // DETAIL_SIDE)).convert("L")
    if min(reduced.size) < 3:  # too small to filter
        return (0.5, 0.5)
    edges = reduced.filter(ImageFilter.FIND_EDGES)
    # The filter copies the border pixels unfiltered: they are not edges.
    edges = edges.crop((1, 1, edges.width - 1, edges.height - 1)).point(
        lambda value: value if value > NOISE else 0).convert("F")
    if kept_across < 1:  # the window slides across: the means of the columns
        return (_best_offset(_floats(edges.reduce((1, edges.height))), kept_across), 0.5)
    return (0.5, _best_offset(_floats(edges.reduce((edges.width, 1))), kept_down))


def _floats(image: Image.Image) -> array[float]:
    return array("f", image.tobytes())


def _best_offset(profile: Sequence[float], kept: float) -> float:
    """Where (0..1 of the room left) a window of `kept` of `profile` scores the most; of
    windows within TIE of the best, the one nearest the centre, so that a frame with as
    much detail everywhere (or none) is cut as a centre crop would.

    A window scores its detail, plus that detail weighted by a tent from 0 at the window's
    edges to 1 at its middle: of the windows that hold a subject whole, the one with it
    nearest its middle wins, not one that cuts it at an edge or leaves it there.
    """
    length = max(1, round(len(profile) * kept))
    room = len(profile) - length
    if room <= 0:
        return 0.5
    half = max(1, length // 2)
    # A tent is two boxes, one after the other: half wide, then the rest of the window.
    tents = _window_sums(_window_sums(profile, half), length - half + 1)
    scores = [whole + tent / half
              for whole, tent in zip(_window_sums(profile, length), tents, strict=True)]
    least = max(scores) * (1 - TIE)
    nearest = min((start for start in range(room + 1) if scores[start] >= least),
                  key=lambda start: abs(2 * start - room))
    # One reduced pixel from the middle is the centre, as closely as the profile can say.
    return 0.5 if abs(2 * nearest - room) <= 1 else nearest / room


def _window_sums(values: Sequence[float], length: int) -> list[float]:
    """The sum of every run of `length` consecutive `values`, from the first."""
    sums = [sum(values[:length])]
    for start in range(1, len(values) - length + 1):
        sums.append(sums[-1] + values[start + length - 1] - values[start - 1])
    return sums


def _encode(image: Image.Image, spec: Spec) -> bytes:
    out = io.BytesIO()
    if spec.format == "png":
        image.save(out, "PNG", compress_level=6)
    elif spec.format == "webp":
        image.save(out, "WEBP", quality=spec.quality, method=4)
    elif spec.format == "avif":
        # Grayscale is saved as such (4:0:0, luma alone), colour as 4:2:0, as JPEG does.
        image.save(out, "AVIF", quality=spec.quality, **AVIF_OPTIONS)
    else:
        image.save(out, "JPEG", quality=spec.quality)
    return out.getvalue()
