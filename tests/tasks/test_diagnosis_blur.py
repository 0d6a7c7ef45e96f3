"""Blur type, extent, motion angle and length on a real photo with known synthetic blur."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.diagnosis.blur import assess_blur
from tasks.qa.diagnosis.views import Views


def _blur(pixels: np.ndarray) -> dict:
    depth = 16 if pixels.dtype == np.uint16 else 8
    return assess_blur(Views(DecodedImage(pixels, None, depth, None, None)))


@pytest.fixture(scope="module")
def clean(shared_data) -> np.ndarray:
    return decode(shared_data / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels


def test_clean_and_low_resolution_sharp_photos_are_not_blurred(clean, shared_data):
    assert _blur(clean)["type"] == "none"
    small = decode(shared_data / "sr_gt/Set5/LR_bicubic/X2/babyx2.png", max_pixels=10**9).pixels
    assert _blur(small)["type"] == "none"  # few pixels, but sharp at its own scale


def test_motion_blur_type_angle_and_length(clean):
    found = _blur(samples.motion_blur(clean, 15, 30))
    assert found["type"] == "motion"
    assert abs((found["angle_deg"] - 30 + 90) % 180 - 90) <= 10
    assert found["length_px"] == pytest.approx(15, rel=0.2)
    assert found["sigma_px"] is None


def test_motion_angle_is_counter_clockwise_from_x(clean):
    found = _blur(samples.motion_blur(clean, 12, 120))
    assert found["type"] == "motion" and abs((found["angle_deg"] - 120 + 90) % 180 - 90) <= 10


def test_defocus_is_isotropic_with_a_sigma(clean):
    found = _blur(samples.defocus_blur(clean, 2.5))
    assert found["type"] == "defocus"
    assert found["sigma_px"] == pytest.approx(2.5, rel=0.35)
    assert found["angle_deg"] is None and found["length_px"] is None
    assert found["score"] > _blur(clean)["score"]


def test_16bit_grayscale_path(clean):
    gray = samples.motion_blur(clean, 15, 30)[:, :, 1].astype(np.uint16) * 257
    found = _blur(gray)
    assert found["type"] == "motion" and abs((found["angle_deg"] - 30 + 90) % 180 - 90) <= 10


def test_tiny_image_is_not_judged():
    assert _blur(np.full((20, 20, 3), 128, np.uint8))["type"] == "none"
