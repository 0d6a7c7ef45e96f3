"""Synthetic "old scans" made from clean photographs, with the clean image kept as ground truth.

The recipe is what an old print and its scan go through: downscale, optical blur, faded tone
curve with a warm cast, grain, JPEG, thin bright scratches and dust. The clean image is the ground
truth: tests and benchmarks measure PSNR/SSIM against it and check that QA finds what was put in.
Seeded: the same seed gives the same scan.
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
    return degrade_with_mask(clean, spec, seed)[0]


def degrade_with_mask(clean: np.ndarray, spec: Degradation = Degradation(),
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`degrade`, and the true mask of its scratches and dust (bool, the scan's size)."""
    rng = np.random.default_rng(seed)
    img: np.ndarray = clean.astype(np.float32) / 255.0
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
    mask = np.zeros(img.shape[:2], np.uint8)
    _scratch(img, rng, spec.scratches, spec.dust, mask)
    out = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    if spec.jpeg_quality:
        out = jpeg_roundtrip(out, spec.jpeg_quality)
    return out, mask > 0


def _scratch(
    img: np.ndarray, rng: np.random.Generator, scratches: int, dust: int, mask: np.ndarray | None = None,
) -> None:
    """Draw bright scratches and dark dust in place; `mask` (uint8 H x W), when given, gets them
    too, with their anti-aliased coverage as 0-255."""
    h, w = img.shape[:2]
    colour = (0.92,) * (img.shape[2] if img.ndim == 3 else 1)
    for _ in range(scratches):  # long thin near-vertical bright lines, as on old prints
        x0 = int(rng.integers(0, w))
        x1 = int(np.clip(x0 + rng.integers(-w // 10, w // 10 + 1), 0, w - 1))
        y0, y1 = int(rng.integers(0, h // 3)), int(rng.integers(2 * h // 3, h))
        cv2.line(img, (x0, y0), (x1, y1), colour, 1, cv2.LINE_AA)
        if mask is not None:
            cv2.line(mask, (x0, y0), (x1, y1), 255, 1, cv2.LINE_AA)
    for _ in range(dust):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        radius = int(rng.integers(1, 3))
        cv2.circle(img, centre, radius, (0.08,) * len(colour), -1, cv2.LINE_AA)
        if mask is not None:
            cv2.circle(mask, centre, radius, 255, -1, cv2.LINE_AA)


def jpeg_roundtrip(pixels: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


# scikit-image's bundled photographs (no download needed), as (name, loader attribute).
DEMO_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def demo_photographs() -> dict[str, np.ndarray]:
    from skimage import data

    return {name: getattr(data, name)() for name in DEMO_IMAGES}


# --- Single degradations with known parameters, for the diagnosis tests and benchmark -----------
# Each takes and returns uint8 (RGB or gray) so that results are quantised like a real 8-bit scan.


def _to_float(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / 255.0


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Normalised linear-motion PSF: a segment `length` px long at `angle_deg` counter-clockwise
    from +x as displayed (y points down). Anti-aliased by splatting dense samples bilinearly, so
    its projection on the motion direction is a box of exactly `length` px."""
    half = length / 2.0
    size = 2 * int(np.ceil(half)) + 3
    c = size // 2
    t = np.linspace(-half, half, max(2, int(length * 16)))
    theta = np.deg2rad(angle_deg)
    xs, ys = c + t * np.cos(theta), c - t * np.sin(theta)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    kernel = np.zeros((size, size), np.float64)
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), wgt)
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(pixels: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """Linear camera motion of `length` px at `angle_deg` (see motion_kernel)."""
    out = cv2.filter2D(_to_float(pixels), -1, motion_kernel(length, angle_deg), borderType=cv2.BORDER_REFLECT)
    return _to_uint8(out)


def defocus_blur(pixels: np.ndarray, sigma: float, *, disk: bool = False) -> np.ndarray:
    """Out-of-focus blur: Gaussian of `sigma` px, or with disk=True a pillbox of radius 2*sigma
    (a real lens's defocus PSF; radius r has a standard deviation of r/2)."""
    img = _to_float(pixels)
    if not disk:
        return _to_uint8(cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT))
    r = 2.0 * sigma
    size = 2 * int(np.ceil(r)) + 1
    yy, xx = np.mgrid[:size, :size] - size // 2
    k = np.clip(r + 0.5 - np.hypot(xx, yy), 0, 1).astype(np.float32)  # anti-aliased rim
    return _to_uint8(cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT))


def add_noise(pixels: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Independent Gaussian noise of `sigma` (0-255 scale) on every channel."""
    rng = np.random.default_rng(seed)
    return _to_uint8(_to_float(pixels) + rng.normal(0, sigma / 255.0, pixels.shape).astype(np.float32))


def fade(pixels: np.ndarray, amount: float, grey: float = 0.55) -> np.ndarray:
    """Lose `amount` (0-1) of the contrast toward a mid grey, as a faded print."""
    return _to_uint8((1 - amount) * _to_float(pixels) + amount * grey)


def colour_cast(pixels: np.ndarray, warm: float) -> np.ndarray:
    """Warm (positive: red up, blue down) or cool (negative) cast, as a fraction of full scale."""
    img = _to_float(pixels)
    if img.ndim == 3:
        img[:, :, 0] += warm
        img[:, :, 2] -= warm
    return _to_uint8(img)


def skewed_scan(pixels: np.ndarray, angle_deg: float, *, border: float = 0.04, bed: float = 0.85,
                print_border: float = 0.97) -> np.ndarray:
    """A print scanned crooked: the photo with a white print border (`border` of its size),
    rotated by `angle_deg` counter-clockwise as displayed (OpenCV's sign), on a scanner bed of
    grey level `bed`, framed with a small margin around the rotated print."""
    img = _to_float(pixels)
    h, w = img.shape[:2]
    pad = max(2, int(round(border * max(h, w))))
    fill = (print_border,) * (3 if img.ndim == 3 else 1)
    printed = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
    ph, pw = printed.shape[:2]
    theta = np.deg2rad(abs(angle_deg))
    cw = int(np.ceil(pw * np.cos(theta) + ph * np.sin(theta))) + 2 * pad
    ch = int(np.ceil(ph * np.cos(theta) + pw * np.sin(theta))) + 2 * pad
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle_deg, 1.0)
    m[0, 2] += (cw - pw) / 2
    m[1, 2] += (ch - ph) / 2
    bed_fill = (bed,) * (3 if img.ndim == 3 else 1)
    out = cv2.warpAffine(printed, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=bed_fill)
    return _to_uint8(out)


def rotate_content(pixels: np.ndarray, angle_deg: float) -> np.ndarray:
    """Content rotated by `angle_deg` (counter-clockwise) and cropped to its largest inner
    rectangle: a tightly cropped crooked scan with no border left to see."""
    h, w = pixels.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
    out = cv2.warpAffine(_to_float(pixels), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    t = abs(np.deg2rad(angle_deg))
    # largest axis-aligned rectangle inside the rotated frame (small angles)
    ch = int((h * np.cos(t) - w * np.sin(t)) / (np.cos(2 * t))) if np.cos(2 * t) > 0 else h
    cw = int((w * np.cos(t) - h * np.sin(t)) / (np.cos(2 * t))) if np.cos(2 * t) > 0 else w
    ch, cw = max(8, min(h, ch)), max(8, min(w, cw))
    top, left = (h - ch) // 2, (w - cw) // 2
    return _to_uint8(out[top:top + ch, left:left + cw])


def scratch_and_dust(pixels: np.ndarray, scratches: int, dust: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`degrade`'s bright scratches and dark dust alone, with the ground-truth mask (bool H x W)."""
    rng = np.random.default_rng(seed)
    img = _to_float(pixels)
    mask = np.zeros(pixels.shape[:2], np.uint8)
    _scratch(img, rng, scratches, dust, mask)
    return _to_uint8(img), mask >= 64  # pixels at least a quarter covered
