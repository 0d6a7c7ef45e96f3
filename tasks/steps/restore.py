"""Restoration steps that need no learned model (the fallbacks and the resampling helpers)."""

from __future__ import annotations

from math import gcd

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


def _interpolation(w: int, h: int, width: int, height: int) -> int:
    return cv2.INTER_AREA if width <= w and height <= h else cv2.INTER_LANCZOS4


def resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area averaging when shrinking (no aliasing), Lanczos when enlarging."""
    h, w = values.shape[:2]
    if (w, h) == (width, height):
        return values
    out = cv2.resize(values, (width, height), interpolation=_interpolation(w, h, width, height))
    return np.clip(out, 0.0, 1.0)


# --- the same resampling a band of rows at a time ----------------------------------------------
# A 24 MP scan's x2 master is 1.15 GB in float32: the finishing steps work on it in place, and
# what they need of the restored scan at the master's size is made a band at a time instead of
# as another full-size copy.

BAND_ROWS = 256
_MARGIN = 6  # source rows either side of a band: Lanczos4 reads 4, cubic 2; area none when aligned


def aligned_bands(rows_a: int, rows_b: int, band: int = BAND_ROWS) -> list[tuple[slice, slice]]:
    """Row bands (of a, of b) that correspond exactly under a resize between rows_a and rows_b
    rows: band edges fall where a row edge of one meets a row edge of the other, about `band` rows
    of the larger side each (one band when the sizes share no useful common factor)."""
    g = gcd(rows_a, rows_b)
    pa, pb = rows_a // g, rows_b // g  # rows of a and of b in one aligned unit
    units = max(1, band // max(pa, pb))
    return [(slice(i * pa, min(g, i + units) * pa), slice(i * pb, min(g, i + units) * pb))
            for i in range(0, g, units)]


def resize_rows(values: np.ndarray, width: int, height: int, rows: slice, source_rows: slice,
                interpolation: int | None = None) -> np.ndarray:
    """Rows `rows` of cv2.resize(values, (width, height)), from the source rows they need only.

    `rows`/`source_rows` must be a pair from aligned_bands(height, len(values)): then the crop's
    resampling grid is the full image's, and the band equals the full resize up to float rounding
    (tested). `interpolation` defaults to resize()'s choice (and then the result is clipped as
    resize() clips it)."""
    h, w = values.shape[:2]
    g = gcd(height, h)
    p, q = height // g, h // g
    margin = -(-_MARGIN // q) * q  # whole units, so the crop starts on the grid
    a0, a1 = max(0, source_rows.start - margin), min(h, source_rows.stop + margin)
    clip = interpolation is None
    if interpolation is None:
        interpolation = _interpolation(w, h, width, height)
    out = cv2.resize(values[a0:a1], (width, (a1 - a0) * p // q), interpolation=interpolation)
    offset = a0 * p // q
    band = out[rows.start - offset : rows.stop - offset]
    return np.clip(band, 0.0, 1.0, out=band) if clip else band

