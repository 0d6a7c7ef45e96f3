"""Synthetic "old scans" made from clean photographs, with the clean image kept as ground truth.

The recipe follows ../shared/data/DATA.md: downscale, optical blur, faded tone curve with a warm
cast, grain, JPEG, thin bright scratches and dust. Seeded: the same seed gives the same scan.
Used by `restorium demo` (on scikit-image's bundled photographs), by tests and by benchmarks.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Degradation:
    downscale: float = 2.0
    blur_sigma: float = 1.0
    fade: float = 0.25  # share of contrast lost toward a mid grey
    warm_cast: float = 0.06  # red up, blue down, as a fraction of full scale
    noise_sigma: float = 6.0  # 0-255 scale
    jpeg_quality: int | None = 75
    scratches: int = 3
    dust: int = 25


def degrade(clean: np.ndarray, spec: Degradation = Degradation(), seed: int = 0) -> np.ndarray:
    """uint8 RGB (or gray) in, uint8 "old scan" out, smaller by spec.downscale."""
    rng = np.random.default_rng(seed)
    img = clean.astype(np.float32) / 255.0
    h, w = img.shape[:2]
    if spec.downscale > 1:
        size = (max(1, round(w / spec.downscale)), max(1, round(h / spec.downscale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    if spec.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), spec.blur_sigma)
    img = (1 - spec.fade) * img + spec.fade * 0.55
    if img.ndim == 3 and spec.warm_cast:
        img[:, :, 0] += spec.warm_cast
        img[:, :, 2] -= spec.warm_cast
    if spec.noise_sigma > 0:
        img = img + rng.normal(0, spec.noise_sigma / 255.0, img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    _scratch(img, rng, spec.scratches, spec.dust)
    out = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    if spec.jpeg_quality:
        out = jpeg_roundtrip(out, spec.jpeg_quality)
    return out


def _scratch(img: np.ndarray, rng: np.random.Generator, scratches: int, dust: int) -> None:
    h, w = img.shape[:2]
    colour = (0.92,) * (img.shape[2] if img.ndim == 3 else 1)
    for _ in range(scratches):  # long thin near-vertical bright lines, as on old prints
        x0 = int(rng.integers(0, w))
        x1 = int(np.clip(x0 + rng.integers(-w // 10, w // 10 + 1), 0, w - 1))
        y0, y1 = int(rng.integers(0, h // 3)), int(rng.integers(2 * h // 3, h))
        cv2.line(img, (x0, y0), (x1, y1), colour, 1, cv2.LINE_AA)
    for _ in range(dust):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, centre, int(rng.integers(1, 3)), (0.08,) * len(colour), -1, cv2.LINE_AA)


def jpeg_roundtrip(pixels: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


# scikit-image's bundled photographs (no download needed), as (name, loader attribute).
DEMO_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def demo_photographs() -> dict[str, np.ndarray]:
    from skimage import data

    return {name: getattr(data, name)() for name in DEMO_IMAGES}
