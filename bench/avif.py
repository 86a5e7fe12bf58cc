"""AVIF against JPEG for 1080p wallpapers, and the AVIF encoder speed.

The wallpapers: the real rover frames in tests/fixtures/images as 1920x1080 covers (smart
crop), made losslessly (marsserver's PNG output) as the reference every encoding is measured
against. Encoding alone is timed, on one thread (as marsserver encodes: one thread per
wallpaper), in CPU time (which a shared machine moves far less than wall-clock time) and in
wall-clock time; rounds interleave the speeds (in a rotated order), and each figure is the
median over rounds of the mean per frame.

Tables: for each aom speed at marsserver's AVIF quality, the bytes (all frames) and encode
time; for each AVIF quality at the chosen speed, bytes against JPEG at marsserver's default
quality and PSNR against the lossless wallpaper; then marsserver's own AVIF (its default
quality and speed, through `imaging.wallpaper`) against its own JPEG. Targets: at most 0.8x
the bytes, PSNR no more than 1.5 dB lower (mean over frames, and the worst frame).

    python -m bench.avif [--rounds 3] [--speeds 6 7 8 9 10] [--qualities 70 75 80 85]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

from PIL import Image

from marsserver import imaging

from .resize import IMAGES, psnr

SIZE = (1920, 1080)
SPEEDS = (6, 7, 8, 9, 10)
QUALITIES = (70, 75, 80, 85)


def reference(data: bytes) -> Image.Image:
    """The 1080p wallpaper of `data`, losslessly: what every encoding is compared with."""
    spec = imaging.Spec(SIZE[1], SIZE[0], "cover", "png", 0)
    image = Image.open(io.BytesIO(imaging.wallpaper(data, spec, max_pixels=10**9)))
    image.load()
    return image


def avif(image: Image.Image, quality: int, speed: int) -> bytes:
    """`image` as marsserver encodes AVIF, but at this quality and speed."""
    out = io.BytesIO()
    image.save(out, "AVIF", quality=quality, **{**imaging.AVIF_OPTIONS, "speed": speed})
    return out.getvalue()


def encode_times(images: list[Image.Image], speeds: tuple[int, ...],
                 rounds: int) -> dict[int, tuple[float, float]]:
    """Per speed: median over `rounds` of the mean CPU and wall-clock ms per frame."""
    cpu: dict[int, list[float]] = {speed: [] for speed in speeds}
    wall: dict[int, list[float]] = {speed: [] for speed in speeds}
    for n in range(rounds):
        for speed in speeds[n % len(speeds):] + speeds[:n % len(speeds)]:
            started, used = time.perf_counter(), time.process_time()
            for image in images:
                avif(image, imaging.AVIF_QUALITY, speed)
            cpu[speed].append((time.process_time() - used) * 1000 / len(images))
            wall[speed].append((time.perf_counter() - started) * 1000 / len(images))
    return {speed: (statistics.median(cpu[speed]), statistics.median(wall[speed]))
            for speed in speeds}


def against_jpeg(images: list[Image.Image], encoded: list[bytes],
                 jpegs: list[bytes]) -> tuple[float, float, float, float]:
    """Bytes of `encoded` over the JPEGs' (all frames, and the worst frame), and PSNR
    against the lossless wallpapers minus the JPEGs' (mean over frames, and the worst)."""
    ratios = [len(mine) / len(jpeg) for mine, jpeg in zip(encoded, jpegs, strict=True)]
    gaps = [psnr(image, mine) - psnr(image, jpeg)
            for image, mine, jpeg in zip(images, encoded, jpegs, strict=True)]
    return (sum(map(len, encoded)) / sum(map(len, jpegs)), max(ratios),
            statistics.fmean(gaps), min(gaps))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--rounds", type=int, default=3, help="interleaved rounds of timing")
    cli.add_argument("--speeds", type=int, nargs="+", default=SPEEDS)
    cli.add_argument("--qualities", type=int, nargs="+", default=QUALITIES)
    args = cli.parse_args()
    frames = [path.read_bytes() for path in IMAGES]
    images = [reference(data) for data in frames]
    jpegs = [imaging.wallpaper(data, imaging.Spec(SIZE[1], SIZE[0], "cover"), max_pixels=10**9)
             for data in frames]
    chosen = imaging.AVIF_OPTIONS["speed"]
    print(f"{len(frames)} frames as {SIZE[0]}x{SIZE[1]} wallpapers; JPEG q"
          f"{imaging.DEFAULT_QUALITY}: {sum(map(len, jpegs))} bytes; load average before: "
          f"{os.getloadavg()[0]:.2f}")
    print(f"\nAVIF q{imaging.AVIF_QUALITY} by speed ({args.rounds} interleaved rounds, one "
          f"thread):\n{'speed':>5} {'bytes':>9} {'vs JPEG':>7} {'CPU ms':>7} {'wall ms':>7}")
    times = encode_times(images, tuple(args.speeds), args.rounds)
    for speed in args.speeds:
        size = sum(len(avif(image, imaging.AVIF_QUALITY, speed)) for image in images)
        print(f"{speed:>5} {size:>9} {size / sum(map(len, jpegs)):>7.3f} "
              f"{times[speed][0]:>7.0f} {times[speed][1]:>7.0f}", flush=True)
    print(f"\nAVIF by quality at speed {chosen}, against JPEG q{imaging.DEFAULT_QUALITY}:\n"
          f"{'quality':>7} {'bytes':>6} {'worst':>6} {'PSNR dB':>7} {'worst':>6}")
    for quality in args.qualities:
        ratio, worst_ratio, gap, worst_gap = against_jpeg(
            images, [avif(image, quality, chosen) for image in images], jpegs)
        print(f"{quality:>7} {ratio:>6.3f} {worst_ratio:>6.3f} {gap:>+7.2f} {worst_gap:>+6.2f}",
              flush=True)
    spec = imaging.Spec(SIZE[1], SIZE[0], "cover", "avif", imaging.AVIF_QUALITY)
    ours = [imaging.wallpaper(data, spec, max_pixels=10**9) for data in frames]
    ratio, worst_ratio, gap, worst_gap = against_jpeg(images, ours, jpegs)
    print(f"\nmarsserver's AVIF (q{imaging.AVIF_QUALITY}, speed {chosen}) against its JPEG: "
          f"{ratio:.3f}x the bytes (worst frame {worst_ratio:.3f}x), PSNR {gap:+.2f} dB "
          f"(worst frame {worst_gap:+.2f} dB); target: <= 0.8x and >= -1.5 dB; "
          f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
