"""Finishing: keep the master a believable likeness of the scan.

All light touches on float RGB in [0, 1]: the fidelity blend with a classical upscale, colour
transfer from the restored scan, optional grain and minimal sharpening. Each returns its input
untouched at strength/amount 0.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from tasks.restore import resize
from tasks.tone import from_lab, to_lab


def fidelity_blend(ai: np.ndarray, restored: np.ndarray, strength: float) -> np.ndarray:
    """Mix a classical (Lanczos) upscale of the restored scan into the AI result.

    `strength` is the classical share: 0 keeps the AI output, 1 is a plain Lanczos upscale.
    Tames the model's invented texture ("plastic skin") while keeping most of its clarity.
    """
    if strength <= 0:
        return ai
    h, w = ai.shape[:2]
    classical = resize(restored, w, h)
    return np.clip((1.0 - strength) * ai + strength * classical, 0.0, 1.0).astype(np.float32)


# --- colour transfer, grain, sharpening ------------------------------------------------------

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601, as cv2's RGB2GRAY
# Std ratios outside this range mean the images do not correspond (or one is flat): no blow-ups.
_STD_RATIO = (0.5, 2.0)


def _lab_stats(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) standard deviation, accumulated in float64 by OpenCV in
    one pass: numpy's strided float64 std of a full-size master took ~0.1 s."""
    mean, std = cv2.meanStdDev(np.ascontiguousarray(lab, dtype=np.float32))
    return mean.ravel(), std.ravel()


def color_transfer(
    result: np.ndarray, reference: np.ndarray, *, strength: float = 1.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Give `result` the Lab mean and standard deviation of `reference` (Reinhard et al. 2001).

    `reference` is the restored scan at its own size, `result` the upscaled master: the global
    colour and tone statistics of an honest upscale equal the original's, so this undoes the
    model's colour and contrast shifts without touching its detail. `strength` blends in Lab.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    params: dict[str, Any] = {"method": "reinhard-lab", "strength": strength}
    if strength == 0.0:
        return result, {**params, "applied": False}
    lab = to_lab(result)
    mean_r, std_r = _lab_stats(lab)
    mean_ref, std_ref = _lab_stats(to_lab(reference))
    ratio = np.clip(std_ref / np.maximum(std_r, 1e-6), *_STD_RATIO)
    # lab + strength * (moved - lab), moved = (lab - mean_r) * ratio + mean_ref: one affine map per
    # channel, applied in a single pass.
    gain = 1.0 + strength * (ratio - 1.0)
    offset = strength * (mean_ref - mean_r * ratio)
    out = from_lab(cv2.transform(lab, np.hstack([np.diag(gain), offset[:, None]]).astype(np.float32)))
    params.update(
        applied=True,
        result_mean=[round(float(v), 4) for v in mean_r], result_std=[round(float(v), 4) for v in std_r],
        reference_mean=[round(float(v), 4) for v in mean_ref], reference_std=[round(float(v), 4) for v in std_ref],
        std_ratio=[round(float(v), 4) for v in ratio],
    )
    return out, params


def add_grain(
    rgb: np.ndarray, *, amount: float = 0.01, seed: int = 0, size: float = 1.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Subtle monochrome film grain, the same for a given seed and image size.

    `amount`: the grain's standard deviation at mid-grey on the 0-1 scale (0.01 ≈ 2.5 of 255).
    `size`: the grain's correlation length (Gaussian sigma, px; <= 0.3 is per-pixel noise).
    The grain is weighted by 4·Y·(1 - Y), so it is strongest in the mid-tones and vanishes in
    black and white (no clipped specks, as in film). It is added equally to R, G and B: no
    colour noise. A master upscaled by an AI model looks less plastic with it.
    """
    if amount < 0:
        raise ValueError(f"amount must be >= 0, got {amount}")
    params: dict[str, Any] = {"amount": amount, "seed": int(seed), "size": size}
    if amount == 0.0:
        return rgb, {**params, "applied": False}
    src = rgb.astype(np.float32, copy=False)
    noise = np.random.default_rng(seed).standard_normal(src.shape[:2], dtype=np.float32)
    if size > 0.3:
        noise = cv2.GaussianBlur(noise, (0, 0), size, borderType=cv2.BORDER_REFLECT_101)
        noise /= max(float(noise.std()), 1e-12)  # back to unit variance: `amount` means the same at any size
    y = src @ _LUMA
    grain = amount * 4.0 * y * (1.0 - y) * noise
    out = np.clip(src + grain[:, :, None], 0.0, 1.0).astype(np.float32)
    return out, {**params, "applied": True, "weighting": "4*Y*(1-Y)", "channels": "monochrome"}


def sharpen(
    rgb: np.ndarray, *, amount: float = 0.3, radius: float = 1.0, threshold: float = 0.01,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Minimal unsharp mask on luminance, the same correction added to R, G and B (no colour fringes).

    `radius`: Gaussian sigma in px; `amount`: share of the detail added back; `threshold` (0-1
    scale): detail smaller than this is noise or grain and is left alone (soft threshold, so
    there is no step where detail crosses it).
    """
    if amount < 0 or radius <= 0 or threshold < 0:
        raise ValueError(f"need amount >= 0, radius > 0, threshold >= 0; got {amount}, {radius}, {threshold}")
    params: dict[str, Any] = {"amount": amount, "radius": radius, "threshold": threshold}
    if amount == 0.0:
        return rgb, {**params, "applied": False}
    src = rgb.astype(np.float32, copy=False)
    y = src @ _LUMA
    detail = y - cv2.GaussianBlur(y, (0, 0), radius, borderType=cv2.BORDER_REFLECT_101)
    detail = np.sign(detail) * np.maximum(np.abs(detail) - threshold, 0.0)
    out = np.clip(src + (amount * detail)[:, :, None], 0.0, 1.0).astype(np.float32)
    return out, {**params, "applied": True, "channels": "luminance (Rec. 601)"}
