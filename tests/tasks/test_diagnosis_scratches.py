"""Scratch lines and their mask against the true mask of drawn scratches."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tasks import samples
from tasks.diagnosis.scratches import assess_scratches
from tasks.diagnosis.views import Views
from tasks.imageio import DecodedImage, decode


def _scratches(pixels: np.ndarray) -> tuple[dict, np.ndarray | None]:
    depth = 16 if pixels.dtype == np.uint16 else 8
    return assess_scratches(Views(DecodedImage(pixels, None, depth, None, None)))


@pytest.fixture(scope="module")
def clean(shared_data) -> np.ndarray:
    return decode(shared_data / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels


def test_clean_photo_has_no_scratch_lines(clean):
    assert _scratches(clean)[0]["count"] == 0


def test_drawn_scratches_are_found_and_masked(clean):
    _, scene = _scratches(clean)  # the photo's own isolated specks, which the mask also holds
    scene = scene if scene is not None else np.zeros(clean.shape[:2], bool)
    recalls = []
    for seed in range(4):
        scratched, truth = samples.scratch_and_dust(clean, 3, 0, seed=seed)
        finding, mask = _scratches(scratched)
        assert finding["count"] >= 1
        assert mask is not None and mask.dtype == bool and mask.shape == truth.shape
        assert finding["coverage"] == pytest.approx(mask.mean(), abs=1e-4)
        recalls.append((mask & truth).sum() / truth.sum())
        near = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        added = mask & ~scene
        assert (added & near).sum() / added.sum() > 0.5  # what the scratches added lies on them
    assert np.mean(recalls) > 0.4  # and covers much of them (lines over bright areas fade out)


def test_large_16bit_scan_gets_a_full_resolution_mask(clean):
    # 2000 x 2000 (analysed at 1536) with 2 px scratches drawn at full resolution
    big = cv2.resize(clean, (2000, 2000), interpolation=cv2.INTER_CUBIC)
    truth = np.zeros(big.shape[:2], np.uint8)
    for x0, x1 in ((400, 520), (1500, 1420)):
        cv2.line(big, (x0, 100), (x1, 1900), (240, 240, 240), 2)
        cv2.line(truth, (x0, 100), (x1, 1900), 1, 2)
    finding, mask = _scratches(big.astype(np.uint16) * 257)
    assert finding["count"] >= 1
    assert mask.shape == (2000, 2000) and mask.dtype == bool
    assert (mask & (truth > 0)).sum() / truth.sum() > 0.3  # both lines, partly: they fade over white
