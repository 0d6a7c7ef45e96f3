"""JPEG blocking: how much the 8x8 block grid of a lossy JPEG shows.

Blockiness B = (mean |step| between neighbouring pixels across the 8-px grid lines) / (median
over the other seven grid phases of the same) - 1, per axis, at the grid phase with the largest
steps (so a crop that shifted the grid still counts), and the smaller of the two axes (real
blocking shows in both). 0 = no grid; 0.5 = steps across block boundaries half as large again as
elsewhere. Measured on full-resolution luminance (resampling would smear the grid): the clean
photos of bench/diagnosis.py 0.01-0.14 (95th percentile 0.08); JPEG quality 40 ≥ 0.08 (5th
percentile 0.20), quality 10 ≥ 0.49.
"""

from __future__ import annotations

import numpy as np

from tasks.qa.diagnosis.views import Views, json_float

# Reported as "JPEG blocking" above this: midway between clean photos' 97.5th percentile (0.085)
# and quality 40's 2.5th percentile (0.145) on the benchmark's calibration half.
BLOCKY = 0.115
_CROP = 1024


def blockiness(gray255: np.ndarray) -> float:
    """B (see module doc) of a float luminance on the 0-255 scale; 0.0 for images under 16 px."""
    values = []
    for axis in (1, 0):
        steps = np.abs(np.diff(gray255, axis=axis))
        profile = steps.mean(axis=1 - axis)  # mean step per column (axis 1) or per row (axis 0)
        n = len(profile) // 8 * 8
        if n < 16:
            return 0.0
        phases = profile[:n].reshape(-1, 8).mean(axis=0)
        k = int(np.argmax(phases))
        reference = float(np.median(np.delete(phases, k)))
        values.append(phases[k] / max(reference, 1e-6) - 1.0)
    return max(0.0, float(min(values)))


def assess_jpeg(views: Views) -> float:
    h, w = views.shape
    side_h, side_w = min(h, _CROP), min(w, _CROP)
    crop = views.crop((h - side_h) // 2, (w - side_w) // 2, side_h, side_w) * 255.0
    return json_float(blockiness(crop), 3)
