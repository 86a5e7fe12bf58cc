"""Imaging: turn a source image into the wallpaper a `Spec` describes.

Plain, blocking Pillow code: the pipeline runs it in a thread pool (Pillow releases the GIL
while decoding, resampling and encoding), never on the event loop. Like thumbor and imgproxy,
it refuses what it should not open: only JPEG and PNG, and the pixel count is checked from
the header before anything is decoded (decompression bombs).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from .errors import BadParameter, BadUpstream

log = logging.getLogger(__name__)

FORMATS = ("JPEG", "PNG")
MIN_SIZE = 16
MAX_HEIGHT = 4320
MAX_WIDTH = 7680
SLIVER_WIDTH = 4 * MAX_HEIGHT  # 4:1, wider than any real camera frame or ultrawide screen
FITS = ("scale", "cover", "contain")
MEDIA_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}
DEFAULT_QUALITY = 85
LETTERBOX = 0  # black bars for fit=contain, in grayscale and in colour
# Filters are chosen by measurement (bench/resize.py, docs/performance.md): every wallpaper
# stays visually identical to decoding everything and resizing with Lanczos, at least cost.
# Bicubic does what the cases in _resampled leave (enlarging, mostly).
RESAMPLING = Image.Resampling.BICUBIC
# libjpeg's DCT scaling: (1/n scale, least shrink that may use it), see _drafted.
DRAFTS = ((4, 4 * 2.5), (2, 2 * 1.4))
Box = tuple[float, float, float, float]  # left, top, right, bottom, in pixels


@dataclass(frozen=True, slots=True)
class Spec:
    """One distinct output. Equal specs are one cache entry and one coalesced flight."""

    height: int
    width: int | None = None  # None: scale to `height`, keeping the aspect ratio
    fit: str = "scale"
    format: str = "jpeg"
    quality: int = DEFAULT_QUALITY  # 0 for png, which has no quality

    @property
    def key(self) -> str:
        return f"{self.width or ''}x{self.height}-{self.fit}-q{self.quality}.{self.format}"

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


def standard_size(spec: Spec) -> bool:
    """Whether `spec` is of a size the service names itself: a preset (any fit), the default
    height or a gallery thumbnail. These are a few per photo; any other size is a client's
    choice, with no end to them, so it may need a signature and is kept briefly."""
    if spec.width is None:
        return spec.height == DEFAULT_HEIGHT or spec.height in THUMBNAIL_HEIGHTS
    return (spec.width, spec.height) in _PRESET_SIZES


def wallpaper(data: bytes, spec: Spec, *, max_pixels: int) -> bytes:
    """Make the wallpaper `spec` describes from encoded `data`.

    Grayscale stays grayscale in JPEG and PNG (a third of the bytes). Raises `BadUpstream`
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
    whole = (0.0, 0.0, float(source_width), float(source_height))
    if spec.fit != "contain":
        region = _crop_box(image.size, width, spec.height) if spec.fit == "cover" else whole
        return _resampled(image, (width, spec.height), region)
    scale = min(width / source_width, spec.height / source_height)
    inner = _resampled(image, (max(1, round(source_width * scale)),
                               max(1, round(source_height * scale))), whole)
    canvas = Image.new(inner.mode, (width, spec.height), LETTERBOX)
    canvas.paste(inner, ((width - inner.width) // 2, (spec.height - inner.height) // 2))
    return canvas


def _resampled(image: Image.Image, size: tuple[int, int], region: Box) -> Image.Image:
    """`region` of the source (in source pixels) resampled to `size` as cheaply as can be
    done while staying visually identical to a full-size Lanczos resize."""
    shrink = min((region[2] - region[0]) / size[0], (region[3] - region[1]) / size[1])
    factor = _drafted(image, shrink)
    box = (region[0] * factor, region[1] * factor, region[2] * factor, region[3] * factor)
    image = _normalised(image)
    if factor < 1:
        # Little is left to resample after DCT scaling, so Lanczos costs little, and it
        # is needed: bicubic on top of DCT scaling loses visible detail.
        return image.resize(size, Image.Resampling.LANCZOS, box=box)
    if 1 < shrink < DRAFTS[-1][1]:
        # Shrinking too little for DCT scaling: the costliest case, as the horizontal pass
        # runs over every source row. Hamming there halves its taps; bicubic does the
        # vertical pass, where Hamming would lose visible detail.
        across = image.resize((size[0], image.height), Image.Resampling.HAMMING,
                              box=(box[0], 0, box[2], image.height))
        return across.resize(size, RESAMPLING, box=(0, box[1], size[0], box[3]))
    return image.resize(size, RESAMPLING, box=box, reducing_gap=3.0)


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


def _crop_box(size: tuple[int, int], width: int, height: int) -> Box:
    """The centred part of a `size` source with the output's aspect ratio."""
    source_width, source_height = size
    if source_width / source_height > width / height:  # too wide: trim the sides
        kept = source_height * width / height
        return ((source_width - kept) / 2, 0, (source_width + kept) / 2, source_height)
    kept = source_width * height / width  # too tall: trim top and bottom
    return (0, (source_height - kept) / 2, source_width, (source_height + kept) / 2)


def _encode(image: Image.Image, spec: Spec) -> bytes:
    out = io.BytesIO()
    if spec.format == "png":
        image.save(out, "PNG", compress_level=6)
    elif spec.format == "webp":
        image.save(out, "WEBP", quality=spec.quality, method=4)
    else:
        image.save(out, "JPEG", quality=spec.quality)
    return out.getvalue()
