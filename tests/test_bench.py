"""The benchmarks' own helpers still fit the code they measure (the runs are by hand)."""

from __future__ import annotations

import io
import itertools
from types import SimpleNamespace

from PIL import Image

from bench import avif, cold_burst, resize, resize_loop, smart_crop
from marsserver import imaging
from marsserver.imaging import MAX_HEIGHT, MAX_WIDTH, Spec, standard_spec

from .stub import IMAGES


def test_resize_bench_helpers_make_the_same_size_as_plain_pillow():
    data = IMAGES[0].read_bytes()
    ours = Image.open(io.BytesIO(resize.ours(data, 300)))
    plain = Image.open(io.BytesIO(resize.plain_pillow(data, 300)))
    assert ours.size == plain.size
    assert resize.psnr(resize.plain_pillow(data, 300), resize.ours(data, 300)) > 30


def test_cold_burst_times_the_resize_its_burst_asks_for(monkeypatch):
    """The ideal the burst is compared with includes one resize, of the burst's own height,
    timed as the median of the runs (a clock that moves by hand makes that exact)."""
    ticks = iter([0.0, 0.5, 1.0, 2.5, 3.0, 3.25])  # runs of 500, 1500 and 250 ms: median 500
    made: list[tuple[bytes, Spec]] = []

    def wallpaper(data: bytes, spec: Spec, **_: object) -> bytes:
        made.append((data, spec))
        return b""

    monkeypatch.setattr(cold_burst, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    monkeypatch.setattr(cold_burst, "imaging", SimpleNamespace(wallpaper=wallpaper, Spec=Spec))

    assert cold_burst.median_resize_ms(b"source", runs=3) == 500.0
    assert made == [(b"source", Spec(cold_burst.HEIGHT))] * 3


def test_the_resize_loop_asks_for_distinct_sizes_the_service_takes():
    sizes = [resize_loop.loop_size(n) for n in range(100_000)]
    assert len(set(sizes)) == len(sizes)
    assert all(16 <= width <= MAX_WIDTH and 16 <= height <= MAX_HEIGHT for width, height in sizes)
    presets = [size for size in sizes if standard_spec(Spec(size[1], size[0]))]
    assert presets == [(3840, 2160)]  # the one the docs' table says the loop hit


def test_the_avif_bench_encodes_as_marsserver_does_at_its_defaults():
    """Its table's row for marsserver's own quality and speed is marsserver's own AVIF."""
    data = IMAGES[0].read_bytes()
    spec = Spec(300, 400, "cover", "avif", imaging.AVIF_QUALITY)
    with Image.open(io.BytesIO(imaging.wallpaper(data, Spec(300, 400, "cover", "png", 0),
                                                 max_pixels=10**9))) as lossless:
        lossless.load()
        encoded = avif.avif(lossless, imaging.AVIF_QUALITY, imaging.AVIF_OPTIONS["speed"])
    assert encoded == imaging.wallpaper(data, spec, max_pixels=10**9)


def test_the_smart_crop_bench_times_both_crops_of_every_frame(monkeypatch):
    made: list[Spec] = []

    def wallpaper(data: bytes, spec: Spec, **_: object) -> bytes:
        made.append(spec)
        return b""

    clock = itertools.count().__next__  # every reading one tick later: no time is zero
    monkeypatch.setattr(smart_crop, "time", SimpleNamespace(perf_counter=clock,
                                                            process_time=clock))
    monkeypatch.setattr(smart_crop, "imaging", SimpleNamespace(
        wallpaper=wallpaper, Spec=Spec, PRESETS=imaging.PRESETS))
    smart_crop.compare([b"a", b"b"], "phone", rounds=2)
    crops = [spec.crop for spec in made]
    assert crops == ["smart"] * 2 + ["smart"] * 2 + ["center"] * 2 + ["center"] * 2 + [
        "smart"] * 2
    assert {(spec.width, spec.height, spec.fit) for spec in made} == {(1170, 2532, "cover")}
