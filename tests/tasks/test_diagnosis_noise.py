"""Noise sigma on real photos: the added sigma is found, clean photos read low, depths agree."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.diagnosis.noise import NOISY_SIGMA, noise_sigma
from tasks.qa.diagnosis.views import Views


def _sigma(pixels: np.ndarray) -> float:
    depth = 16 if pixels.dtype == np.uint16 else 8
    return noise_sigma(Views(DecodedImage(pixels, None, depth, None, None)))


@pytest.fixture(scope="module")
def clean(shared_data) -> np.ndarray:
    return decode(shared_data / "sr_gt/CBSD68/102061.png", max_pixels=10**9).pixels


def test_clean_photo_reads_under_threshold(clean):
    assert _sigma(clean) < NOISY_SIGMA


@pytest.mark.parametrize("sigma", [5, 15, 30])
def test_added_noise_is_measured_within_25_percent(clean, sigma):
    assert _sigma(samples.add_noise(clean, sigma, seed=1)) == pytest.approx(sigma, rel=0.25)


def test_16bit_and_grayscale_paths(clean):
    noisy = samples.add_noise(clean, 15, seed=2)
    s8 = _sigma(noisy)
    assert _sigma(noisy.astype(np.uint16) * 257) == pytest.approx(s8, abs=0.05)
    gray = noisy[:, :, 0]
    assert _sigma(gray) == pytest.approx(15, rel=0.25)
