"""Quality assessment (first cut): how sharp and how noisy a decoded scan is, and a verdict.

A file that does not decode never reaches this stage: imageio.decode fails it with its reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import cv2
import numpy as np
from skimage.restoration import estimate_sigma

from tasks.imageio import DecodedImage, to_float

# Thresholds on the 0-255 scale, measured on ../shared/data: clean CBSD68/McMaster photos give
# noise sigma 0.9-3.5 (one grainy outlier 8.1), the real old photos 0.7-4.3, real noisy RNI15
# 0.3-42; added Gaussian noise of 10 reads 6.5-10.9. Laplacian variance is 2,000-29,000 on the
# clean photos, 40-210 after a Gaussian blur of sigma 2, 13-56 after sigma 3.
NOISY_SIGMA = 10.0
BLURRY_LAPLACIAN_VAR = 100.0
_MAX_SIDE = 2048  # measure on at most a 2048 px centre crop: noise is a local property


@dataclass
class QAReport:
    verdict: Literal["pass", "warn", "fail"]
    reasons: list[str] = field(default_factory=list)
    findings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def luminance(image: DecodedImage) -> np.ndarray:
    """Float32 luminance in [0, 1] (Rec. 601 weights, as OpenCV's gray conversion)."""
    values = to_float(image.pixels)
    if values.ndim == 2:
        return values
    return cv2.cvtColor(values, cv2.COLOR_RGB2GRAY)


def _centre_crop(values: np.ndarray, side: int) -> np.ndarray:
    h, w = values.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return values[top : top + side, left : left + side]


def noise_sigma(gray: np.ndarray) -> float:
    """Gaussian noise sigma on the 0-255 scale (wavelet median-absolute-deviation estimator)."""
    return float(estimate_sigma(_centre_crop(gray, _MAX_SIDE), channel_axis=None)) * 255.0


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian on the 0-255 scale: low means soft or blurred."""
    crop = _centre_crop(gray, _MAX_SIDE) * 255.0
    return float(cv2.Laplacian(crop, cv2.CV_32F, ksize=3).var())


def assess(image: DecodedImage) -> QAReport:
    gray = luminance(image)
    sigma, sharp = noise_sigma(gray), sharpness(gray)
    findings = {"noise_sigma": round(sigma, 3), "sharpness": round(sharp, 3)}
    reasons = []
    if sigma > NOISY_SIGMA:
        reasons.append(f"noisy: sigma {sigma:.1f} > {NOISY_SIGMA}")
    if sharp < BLURRY_LAPLACIAN_VAR:
        reasons.append(f"soft: Laplacian variance {sharp:.1f} < {BLURRY_LAPLACIAN_VAR}")
    return QAReport(verdict="warn" if reasons else "pass", reasons=reasons, findings=findings)
