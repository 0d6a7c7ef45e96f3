"""QA findings move the right way on real photographs with known degradations."""

from __future__ import annotations

import cv2
import numpy as np

from tasks.imageio import DecodedImage, decode
from tasks.qa import assess


def _image(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage(pixels=pixels, alpha=None, bit_depth=8, icc=None, ppi=None)


def test_noise_estimate_tracks_added_noise(shared_data):
    clean = decode(shared_data / "sr_gt/CBSD68/102061.png", max_pixels=10**9).pixels
    rng = np.random.default_rng(0)
    sigmas = []
    for added in (0, 5, 15, 30):
        noisy = np.clip(clean + rng.normal(0, added, clean.shape), 0, 255).astype(np.uint8)
        sigmas.append(assess(_image(noisy)).findings["noise_sigma"])
    assert sigmas == sorted(sigmas) and sigmas[0] < 2.0
    assert 10 < sigmas[2] < 20  # MAD estimate of 15 on a real photo
    report = assess(_image(np.clip(clean + rng.normal(0, 30, clean.shape), 0, 255).astype(np.uint8)))
    assert report.verdict == "warn" and any(r.startswith("noisy") for r in report.reasons)


def test_blur_lowers_sharpness_and_warns(shared_data):
    clean = decode(shared_data / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels
    sharp = assess(_image(clean))
    blurred = assess(_image(cv2.GaussianBlur(clean, (0, 0), 3)))
    assert sharp.verdict == "pass"
    assert blurred.findings["sharpness"] < sharp.findings["sharpness"] / 50
    assert any(r.startswith("soft") for r in blurred.reasons)


def test_16bit_and_grayscale_are_measured_on_the_same_scale(shared_data):
    rgb = decode(shared_data / "sr_gt/CBSD68/102061.png", max_pixels=10**9).pixels
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    f8 = assess(_image(gray)).findings
    f16 = assess(DecodedImage(gray.astype(np.uint16) * 257, None, 16, None, None)).findings
    assert abs(f8["noise_sigma"] - f16["noise_sigma"]) < 0.05
    assert abs(f8["sharpness"] - f16["sharpness"]) / f8["sharpness"] < 0.01
