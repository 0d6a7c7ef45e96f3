"""Restoration steps that need no learned model (the fallbacks and the resampling helpers)."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.restoration import denoise_nl_means


def denoise_nlmeans(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Non-local means on float RGB in [0, 1], sigma on the 0-255 scale (the no-weights fallback).

    h = 0.8·sigma follows scikit-image's guidance for a moderate strength that keeps texture.
    Works on float data, so a 16-bit scan keeps its precision.
    """
    s = sigma / 255.0
    out = denoise_nl_means(
        rgb, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=-1,
    )
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area averaging when shrinking (no aliasing), Lanczos when enlarging."""
    h, w = values.shape[:2]
    if (w, h) == (width, height):
        return values
    shrinking = width <= w and height <= h
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4
    out = cv2.resize(values, (width, height), interpolation=interpolation)
    return np.clip(out, 0.0, 1.0)
