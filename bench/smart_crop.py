"""What smart crop costs: cold wallpapers with `crop=smart` against `crop=center`.

A cold wallpaper is `imaging.wallpaper` from the source's bytes to the JPEG (decode, crop,
resample, encode: all a resize thread does), for every real rover frame in
tests/fixtures/images and each cover preset that crops them. Rounds alternate the two crops
(and which goes first); the result per preset is the median of the per-round ratios
smart / center, in CPU time (which a shared machine moves far less than wall-clock time) and
in wall-clock time. Target: at most 1.15x.

    python -m bench.smart_crop [--rounds 15] [--presets phone 1080p ultrawide]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from marsserver import imaging

from .resize import IMAGES

PRESETS = ("phone", "1080p", "ultrawide", "tablet")
CROPS = ("smart", "center")


def cold(frames: list[bytes], spec: imaging.Spec) -> tuple[float, float]:
    """CPU and wall-clock seconds to make `spec` from every frame, one after the other."""
    started, used = time.perf_counter(), time.process_time()
    for data in frames:
        imaging.wallpaper(data, spec, max_pixels=10**9)
    return time.process_time() - used, time.perf_counter() - started


def compare(frames: list[bytes], preset: str, rounds: int) -> tuple[float, float, float]:
    """Median ms per wallpaper with smart crop, and the medians of the per-round ratios
    smart / center in CPU and in wall-clock time."""
    width, height = imaging.PRESETS[preset]
    specs = {crop: imaging.Spec(height, width, "cover", crop=crop) for crop in CROPS}
    cold(frames, specs["smart"])  # warms
    times: dict[str, list[tuple[float, float]]] = {crop: [] for crop in CROPS}
    for n in range(rounds):
        for crop in CROPS if n % 2 == 0 else CROPS[::-1]:
            times[crop].append(cold(frames, specs[crop]))
    pairs = list(zip(times["smart"], times["center"], strict=True))
    return (statistics.median(wall for _, wall in times["smart"]) * 1000 / len(frames),
            statistics.median(smart[0] / center[0] for smart, center in pairs),
            statistics.median(smart[1] / center[1] for smart, center in pairs))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--rounds", type=int, default=15, help="alternating rounds per preset")
    cli.add_argument("--presets", nargs="+", default=PRESETS, choices=tuple(imaging.PRESETS))
    args = cli.parse_args()
    frames = [path.read_bytes() for path in IMAGES]
    print(f"{len(frames)} frames, JPEG q{imaging.DEFAULT_QUALITY}, {args.rounds} alternating "
          f"rounds per preset; load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'preset':>9} {'size':>9} {'smart ms':>8} {'CPU ratio':>9} {'wall ratio':>10}")
    for preset in args.presets:
        width, height = imaging.PRESETS[preset]
        smart, cpu, wall = compare(frames, preset, args.rounds)
        print(f"{preset:>9} {f'{width}x{height}':>9} {smart:>8.1f} {cpu:>9.3f} {wall:>10.3f}",
              flush=True)
    print(f"target: ratio <= 1.15; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
