"""The benchmarks' own helpers still fit the code they measure (the runs are by hand)."""

from __future__ import annotations

import io

from PIL import Image

from bench import cold_burst, resize

from .stub import IMAGES


def test_resize_bench_helpers_make_the_same_size_as_plain_pillow():
    data = IMAGES[0].read_bytes()
    ours = Image.open(io.BytesIO(resize.ours(data, 300)))
    plain = Image.open(io.BytesIO(resize.plain_pillow(data, 300)))
    assert ours.size == plain.size
    assert resize.psnr(resize.plain_pillow(data, 300), resize.ours(data, 300)) > 30


def test_cold_burst_times_a_resize():
    assert cold_burst.median_resize_ms(IMAGES[0].read_bytes(), runs=1) > 0
