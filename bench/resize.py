"""Resize pipeline: marsserver's `imaging.wallpaper` against plain Pillow and libvips.

For every real rover image in tests/fixtures/images and each height, the median time to go
from encoded bytes to a JPEG of that height, for:
  - marsserver: JPEG draft (DCT-domain) decoding, Lanczos with reducing_gap, quality 85
  - plain Pillow: open, resize(LANCZOS), save quality 85
  - libvips: pyvips.Image.thumbnail_buffer (shrink-on-load), quality 85, when installed
and the quality of marsserver's output against plain Pillow's (PSNR, dB; >= 40 is visually
identical). Targets: >= 2x plain Pillow when shrinking by 2x or more; no slower than libvips.

    python -m bench.resize [--repeat 7]
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

from marsserver import imaging

IMAGES = sorted((Path(__file__).parent.parent / "tests" / "fixtures" / "images").glob("*.jpg"))
HEIGHTS = (300, 600, 1080, 2160)


def plain_pillow(data: bytes, height: int) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        width = round(image.width * height / image.height)
        out = io.BytesIO()
        image.resize((width, height), Image.Resampling.LANCZOS).save(out, "JPEG", quality=85)
        return out.getvalue()


def libvips() -> Callable[[bytes, int], bytes] | None:
    try:
        import pyvips
    except (ImportError, OSError):
        return None

    def thumbnail(data: bytes, height: int) -> bytes:
        image = pyvips.Image.thumbnail_buffer(data, 100_000, height=height, size="both")
        return bytes(image.write_to_buffer(".jpg", Q=85))

    return thumbnail


def ours(data: bytes, height: int) -> bytes:
    return imaging.wallpaper(data, imaging.Spec(height), max_pixels=10**9)


def median_ms(work: Callable[[bytes, int], bytes], data: bytes, height: int, repeat: int) -> float:
    work(data, height)  # warm caches and lazy imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work(data, height)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def psnr(a: bytes, b: bytes) -> float:
    first, second = Image.open(io.BytesIO(a)), Image.open(io.BytesIO(b))
    second = second.convert(first.mode).resize(first.size)
    mse = statistics.fmean(v**2 for v in ImageStat.Stat(ImageChops.difference(first, second)).rms)
    return math.inf if mse == 0 else 20 * math.log10(255 / math.sqrt(mse))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--repeat", type=int, default=7)
    args = cli.parse_args()
    vips = libvips()
    if vips is None:
        print("pyvips not installed (pip install -e '.[bench]'): libvips column left out")
    print(f"{'image':28} {'h':>5} {'shrink':>6} {'ours ms':>8} {'pillow':>7} {'x':>5} "
          f"{'vips':>6} {'x':>5} {'PSNR':>5}")
    rows = []
    for path in IMAGES:
        data = path.read_bytes()
        source_height = Image.open(io.BytesIO(data)).height
        for height in HEIGHTS:
            mine = median_ms(ours, data, height, args.repeat)
            pillow = median_ms(plain_pillow, data, height, args.repeat)
            vips_ms = median_ms(vips, data, height, args.repeat) if vips else math.nan
            quality = psnr(plain_pillow(data, height), ours(data, height))
            rows.append((source_height / height, pillow / mine, vips_ms / mine))
            print(f"{path.name[:28]:28} {height:>5} {source_height / height:>6.2f} {mine:>8.1f} "
                  f"{pillow:>7.1f} {pillow / mine:>5.2f} {vips_ms:>6.1f} {vips_ms / mine:>5.2f} "
                  f"{quality:>5.1f}", flush=True)
    shrinking = [speedup for shrink, speedup, _ in rows if shrink >= 2]
    print(f"speed-up over plain Pillow when shrinking >= 2x: min {min(shrinking):.2f}x, "
          f"median {statistics.median(shrinking):.2f}x (target >= 2x)")
    if vips:
        print(f"libvips time / ours: min {min(r[2] for r in rows):.2f}, median "
              f"{statistics.median(r[2] for r in rows):.2f} (target >= 1.0 at every height)")


if __name__ == "__main__":
    main()
