"""Skew of a crooked print: sign (counter-clockwise positive) and size within 0.5 degree."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.diagnosis.skew import assess_skew
from tasks.qa.diagnosis.views import Views


def _skew(pixels: np.ndarray) -> float:
    return assess_skew(Views(DecodedImage(pixels, None, 16 if pixels.dtype == np.uint16 else 8, None, None)))


@pytest.fixture(scope="module")
def clean(shared_data) -> np.ndarray:
    return decode(shared_data / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels


@pytest.mark.parametrize("angle, bed", [(2.0, 0.15), (-2.0, 0.9), (0.6, 0.9)])
def test_crooked_print_skew(clean, angle, bed):
    assert _skew(samples.skewed_scan(clean, angle, bed=bed)) == pytest.approx(angle, abs=0.5)


def test_level_photo_reads_zero(clean):
    assert _skew(clean) == 0.0


def test_grayscale_16bit_path(clean):
    scan = samples.skewed_scan(clean, 1.5, bed=0.15)[:, :, 1].astype(np.uint16) * 257
    assert _skew(scan) == pytest.approx(1.5, abs=0.5)
