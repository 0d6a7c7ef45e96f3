"""Scratch and dust removal on a real photograph with scratches drawn in and the true mask."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.files.imageio import decode, to_float
from tasks.steps.inpaint import dilate_mask, inpaint


def _rgb(shared_data: Path, name: str) -> np.ndarray:
    return to_float(decode(shared_data / name, max_pixels=10**9).pixels)


def _scratch(clean: np.ndarray, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Thin bright scratches (1-2 px lines across the picture) and dust specks, and their mask."""
    rng = np.random.default_rng(seed)
    h, w = clean.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for _ in range(5):
        cv2.line(mask, (int(rng.integers(0, w)), 0), (int(rng.integers(0, w)), h - 1), 1, int(rng.integers(1, 3)))
    for _ in range(25):
        cv2.circle(mask, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 4)), 1, -1)
    mask = mask.astype(bool)
    damaged = clean.copy()
    damaged[mask] = np.clip(0.92 + rng.normal(0, 0.03, (int(mask.sum()), 1)), 0, 1)
    return damaged, mask


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_scratches_are_filled_and_nothing_else_changes(shared_data, method):
    clean = _rgb(shared_data, "sr_gt/McMaster/5.tif")
    damaged, mask = _scratch(clean)
    before = damaged.copy()
    out, params = inpaint(damaged, mask, method=method, radius=3, dilate=1)
    grown = dilate_mask(mask, 1)
    damaged_psnr, filled_psnr = _psnr(damaged[mask], clean[mask]), _psnr(out[mask], clean[mask])
    print(f"{method}: PSNR inside the scratches {damaged_psnr:.2f} -> {filled_psnr:.2f} dB")
    assert filled_psnr > damaged_psnr + 12 and filled_psnr > 20
    assert np.array_equal(out[~grown], damaged[~grown])  # bit for bit outside the dilated mask
    assert np.array_equal(damaged, before)  # input untouched
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    assert params["method"] == method and params["masked_pixels"] == int(grown.sum())


def test_16bit_precision_is_kept(shared_data):
    """A 16-bit scan: untouched pixels keep their 16-bit values, filled ones are not rounded to 8 bits."""
    pixels = decode(shared_data / "edge_cases/tree_alpha_16bit.png", max_pixels=10**9).pixels
    assert pixels.dtype == np.uint16
    rgb = to_float(pixels)
    damaged, mask = _scratch(rgb, seed=2)
    out, _ = inpaint(damaged, mask, dilate=0)
    assert np.array_equal(out[~mask], damaged[~mask])
    filled = out[mask] * 255
    assert np.abs(filled - np.round(filled)).max() > 0.01  # values between the 8-bit levels
    assert _psnr(out[mask], rgb[mask]) > _psnr(damaged[mask], rgb[mask]) + 10


def test_grayscale_replicated_stays_gray_and_empty_mask_is_a_no_op(shared_data):
    gray = cv2.cvtColor(_rgb(shared_data, "sr_gt/CBSD68/102061.png"), cv2.COLOR_RGB2GRAY)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    damaged, mask = _scratch(rgb, seed=3)
    out, _ = inpaint(damaged, mask, method="ns")
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])

    same, params = inpaint(rgb, np.zeros(rgb.shape[:2], bool))
    assert params["masked_pixels"] == 0 and np.array_equal(same, rgb)
    with pytest.raises(ValueError):
        inpaint(rgb, np.zeros((3, 3), bool))
    with pytest.raises(ValueError):
        inpaint(rgb, mask, method="patchmatch")
