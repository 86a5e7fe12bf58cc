"""Resizing throughput: marsserver's `imaging.wallpaper` against libvips, and its quality.

For each height, wallpapers/s over the real rover frames in tests/fixtures/images (JPEG in,
JPEG quality 85 out, fit=scale by height, the same output size on both sides) with two
threads, for marsserver and for libvips' `thumbnail_buffer` (`VIPS_CONCURRENCY=1`: one thread
per image, two images in parallel, as marsserver's two resize threads do). Rounds alternate
the two sides (and which goes first), and the result is the median of the per-round ratios
ours / libvips, so load from other processes on the machine weighs on both sides alike. The
same ratio from CPU time per wallpaper (of every thread, libvips' own included) is printed
too: on a shared machine it moves far less than wall-clock time does.

Quality: PSNR (min over frames) of marsserver's resize against a Lanczos reference (full
decode, `LANCZOS` to the same size). It is measured on marsserver's PNG output, which goes
through the very same decoding and resampling but is lossless, because JPEG q85 alone puts
any resize 33-48 dB from the unencoded reference on these frames; comparing two JPEGs
would measure the encoder's requantisation, not the resize. Target: >= 1.1x libvips at every
height with PSNR >= 40 dB.

    python -m bench.resize [--rounds 15] [--seconds 0.4] [--heights 300 600 1080 2160]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

from marsserver import imaging

IMAGES = sorted((Path(__file__).parent.parent / "tests" / "fixtures" / "images").glob("*.jpg"))
HEIGHTS = (300, 600, 1080, 2160)
THREADS = 2
QUALITY = 85

Resize = Callable[[bytes, int], bytes]


def ours(data: bytes, height: int, fmt: str = "jpeg") -> bytes:
    spec = imaging.Spec(height, format=fmt, quality=QUALITY if fmt == "jpeg" else 0)
    return imaging.wallpaper(data, spec, max_pixels=10**9)


def libvips() -> Resize | None:
    """libvips' own fast path, shrink-on-load included; None when pyvips is not installed."""
    os.environ["VIPS_CONCURRENCY"] = "1"  # read when libvips starts, i.e. on import
    try:
        import pyvips
    except (ImportError, OSError):
        return None
    # Every request of a server is a new image: libvips must not answer a repeated frame
    # from its operation cache.
    pyvips.cache_set_max(0)

    def thumbnail(data: bytes, height: int) -> bytes:
        image = pyvips.Image.thumbnail_buffer(data, 100_000, height=height, size="both")
        return bytes(image.write_to_buffer(".jpg", Q=QUALITY))

    return thumbnail


def plain_pillow(data: bytes, height: int) -> bytes:
    """The Lanczos reference as a JPEG: full decode, `LANCZOS`, quality 85."""
    out = io.BytesIO()
    lanczos(data, height).save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def lanczos(data: bytes, height: int, width: int | None = None,
            box: tuple[float, float, float, float] | None = None) -> Image.Image:
    """The reference resize: full decode, then `LANCZOS` to `width` (by default the one
    that keeps the aspect ratio) x `height`, of `box` (by default the whole source)."""
    with Image.open(io.BytesIO(data)) as image:
        width = width or round(image.width * height / image.height)
        return image.resize((width, height), Image.Resampling.LANCZOS, box=box)


def psnr(reference: bytes | Image.Image, candidate: bytes | Image.Image) -> float:
    """Peak signal-to-noise ratio in dB (inf when identical); sizes must match."""
    first, second = (Image.open(io.BytesIO(x)) if isinstance(x, bytes) else x
                     for x in (reference, candidate))
    if first.size != second.size:
        raise ValueError(f"sizes differ: {first.size} and {second.size}")
    second = second.convert(first.mode)
    mse = statistics.fmean(v**2 for v in ImageStat.Stat(ImageChops.difference(first, second)).rms)
    return math.inf if mse == 0 else 20 * math.log10(255 / math.sqrt(mse))


def check_same_sizes(vips: Resize, frames: list[bytes], height: int) -> None:
    """A fair race: both sides make JPEGs of the same size from every frame."""
    for data in frames:
        sizes = {Image.open(io.BytesIO(resize(data, height))).size for resize in (ours, vips)}
        if len(sizes) != 1:
            raise SystemExit(f"ours and libvips made different sizes at {height}: {sizes}")


def rate(resize: Resize, frames: list[bytes], height: int, passes: int,
         pool: ThreadPoolExecutor) -> tuple[float, float]:
    """Wallpapers per second of wall-clock time and per second of CPU time (all threads of
    the process, libvips' own included) for `passes` passes over `frames`, two at a time."""
    wall, cpu = time.perf_counter(), time.process_time()
    done = sum(1 for _ in pool.map(lambda data: resize(data, height), frames * passes))
    return done / (time.perf_counter() - wall), done / (time.process_time() - cpu)


def compare(vips: Resize, frames: list[bytes], height: int, rounds: int, seconds: float,
            pool: ThreadPoolExecutor) -> tuple[float, float, float, float]:
    """Median wallpapers/s of ours and of libvips, and the medians of the per-round ratios
    ours / libvips of wall-clock and of CPU-time rates."""
    slowest = min(rate(resize, frames, height, 1, pool)[0] for resize in (ours, vips))  # warms
    passes = max(1, round(seconds * slowest / len(frames)))  # rounds of about `seconds`
    mine: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for n in range(rounds):
        sides = [(mine, ours), (theirs, vips)]
        for rates, resize in sides if n % 2 == 0 else sides[::-1]:
            rates.append(rate(resize, frames, height, passes, pool))
    return (statistics.median(wall for wall, _ in mine),
            statistics.median(wall for wall, _ in theirs),
            statistics.median(a[0] / b[0] for a, b in zip(mine, theirs, strict=True)),
            statistics.median(a[1] / b[1] for a, b in zip(mine, theirs, strict=True)))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--rounds", type=int, default=15, help="alternating rounds per height")
    cli.add_argument("--seconds", type=float, default=0.4, help="length of one round")
    cli.add_argument("--heights", type=int, nargs="+", default=HEIGHTS)
    args = cli.parse_args()
    vips = libvips()
    if vips is None:
        raise SystemExit("pyvips is not installed: pip install -e '.[bench]'")
    frames = [path.read_bytes() for path in IMAGES]
    print(f"{len(frames)} frames, {THREADS} threads, JPEG q{QUALITY}, "
          f"{args.rounds} alternating rounds of ~{args.seconds:g} s per height; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'height':>6} {'ours/s':>8} {'libvips/s':>9} {'ratio':>6} {'CPU ratio':>9} "
          f"{'min PSNR dB':>11}")
    with ThreadPoolExecutor(THREADS) as pool:
        for height in args.heights:
            check_same_sizes(vips, frames, height)
            quality = min(psnr(lanczos(data, height), ours(data, height, "png"))
                          for data in frames)
            mine, theirs, ratio, cpu = compare(vips, frames, height, args.rounds, args.seconds,
                                               pool)
            print(f"{height:>6} {mine:>8.1f} {theirs:>9.1f} {ratio:>6.2f} {cpu:>9.2f} "
                  f"{quality:>11.1f}", flush=True)
    print(f"target: ratio >= 1.1 and PSNR >= 40 at every height; "
          f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
