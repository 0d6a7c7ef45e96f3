"""Diagnosis of one decoded scan: what is wrong with it, measured, before anything touches it.

`diagnose(image)` returns the findings (plain JSON: they are stored in the catalog and the
master's XMP) and, separately, a full-resolution mask of the scratches found (and of the dust
on a damaged print: see scratches.py), for an inpainting step. One small module per finding
(scratches.py draws on scratch_lines.py and specks.py); each documents its measure and the
calibration behind its threshold (bench/diagnosis.py measures them all on degraded real photographs).

Findings:
    blur            {type: none|defocus|motion, score (px), sigma_px, angle_deg, length_px}
    sharpness       variance of the Laplacian, 0-255 scale (2048 px centre crop)
    noise_sigma     per-channel Gaussian noise sigma, 0-255 scale
    scratches       {count (lines), coverage (share of pixels in the mask), dust_count (isolated
                    specks, counted, not masked: clean texture has as many), opaque_specks
                    (near-black colourless specks masked on a damaged print), dust_standing_out (those
                    of them that stand out as dust: 5 make a print without scratches damaged)}
    jpeg_blockiness 0 = no 8x8 grid; reported above jpeg.BLOCKY
    clipping        {black: [share per channel], white: [...]}
    contrast        luminance p99.5 - p0.5 on 0-1
    color_cast      {a, b, magnitude, chroma_residual, spread}: grey-world CIELab deviation (0 for
                    grayscale), chroma not explained by lightness (low: a toned print), chroma spread
    skew_deg        content rotation, degrees, positive = counter-clockwise
    phash           64-bit DCT perceptual hash, 16 hex digits (see phash_distance)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tasks.files.imageio import DecodedImage
from tasks.qa.diagnosis.blur import assess_blur
from tasks.qa.diagnosis.jpeg import assess_jpeg
from tasks.qa.diagnosis.noise import noise_sigma
from tasks.qa.diagnosis.phash import perceptual_hash, phash_distance
from tasks.qa.diagnosis.scratches import assess_scratches
from tasks.qa.diagnosis.skew import assess_skew
from tasks.qa.diagnosis.tone import clipping, colour_cast, contrast
from tasks.qa.diagnosis.views import Views, json_float

__all__ = ["Diagnosis", "diagnose", "phash_distance", "sharpness"]

_SHARPNESS_SIDE = 2048


@dataclass
class Diagnosis:
    findings: dict
    scratch_mask: np.ndarray | None  # bool H x W at full resolution; not part of the findings
    speck_mask: np.ndarray | None = None  # its specks, filled as found (scratches.assess_scratches)
    chroma_spread: float = 0.0  # spread of the CIELab chroma (tone.cast_is_reported needs it)


def sharpness(views: Views) -> float:
    """Variance of the Laplacian (0-255 scale) on the full-resolution centre crop of ≤ 2048 px."""
    h, w = views.shape
    side_h, side_w = min(h, _SHARPNESS_SIDE), min(w, _SHARPNESS_SIDE)
    crop = views.crop((h - side_h) // 2, (w - side_w) // 2, side_h, side_w) * 255.0
    return json_float(cv2.Laplacian(crop, cv2.CV_32F, ksize=3).var(), 3)


def diagnose(image: DecodedImage) -> Diagnosis:
    views = Views(image)
    sigma = noise_sigma(views)  # first: blur and scratch thresholds stay above the noise
    scratches, mask, specks = assess_scratches(views, sigma)
    cast, spread = colour_cast(views)
    findings = {
        "blur": assess_blur(views, sigma),
        "sharpness": sharpness(views),
        "noise_sigma": json_float(sigma, 2),
        "scratches": scratches,
        "jpeg_blockiness": assess_jpeg(views),
        "clipping": clipping(views),
        "contrast": contrast(views),
        "color_cast": {**cast, "spread": json_float(spread, 3)},  # the planner grades by it
        "skew_deg": assess_skew(views),
        "phash": perceptual_hash(views),
    }
    return Diagnosis(findings=findings, scratch_mask=mask, speck_mask=specks, chroma_spread=spread)
