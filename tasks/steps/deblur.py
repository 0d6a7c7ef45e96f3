"""Deblurring for the blur the diagnosis found: bounded Wiener deconvolution on luminance.

The PSF comes from the findings (motion: a line of `length_px` at `angle_deg`; defocus: a
Gaussian of `sigma_px`). Deconvolution runs on luminance only and the same correction is added
to R, G and B, so chroma (Cb, Cr) is untouched and colours cannot shift. Two bounds keep it
honest, both recorded:

- noise: the linear filter that reaches the output, (1 - strength) + strength·Wiener, is given a
  white-noise gain (RMS of its transfer function) of at most `max_noise_gain`; the
  regularisation is raised until it complies. Noise in the output is then at most that many
  times the input's (the clamp below only moves values towards the input's local range).
- ringing: the deconvolved luminance is clamped to the local min/max of the blurred luminance
  over the PSF's own footprint. A sharp edge lies between the plateaus that its blurred version
  already shows, so halos and overshoot beyond them are cut, not blended.

The FFT deconvolution runs in overlapping tiles on a reflect-padded image (bounded memory, no
wrap-around ringing at the borders), and a floor on the regulariser caps the filter's peak gain,
so an estimated PSF that is somewhat off costs little instead of ringing across the picture.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from skimage.restoration import uft

DEFAULT_STRENGTH = 0.7
# Noise may rise by at most this factor (RMS); measured PSNR gains at noise 1-5 need ~1.5-2.
DEFAULT_MAX_NOISE_GAIN = 1.5
# Regularisation: balance = _BALANCE_PER_VAR · sigma² (sigma on the 0-255 scale), never below the
# floor (8-bit quantisation and a PSF that is only an estimate need some even on a clean scan).
# Fitted to the best balance per noise level on 6 McMaster/CBSD68 photos x 6 known PSFs
# (motion 5-15 px, defocus sigma 1-2.5) at noise 0.5-12: 0.003-0.01 at sigma <= 1, 0.01-0.03 at
# 2-3, 0.03 at 5, 0.1 at 8, 0.1-0.3 at 12.
_BALANCE_FLOOR = 6e-3
_BALANCE_PER_VAR = 2e-3
# Peak-gain floor: 0.02 caps the filter's gain at ~3.5. Measured with PSFs 20 % too long and
# 4° off: +0.4 to +1.0 dB where no floor loses up to 1.4 dB; tiles agree to < 0.003.
_PEAK_FLOOR = 0.02
_FLOOR_CUTOFF = 0.05  # rad/px; below it the floor fades out (|H| ~ 1 there for PSFs < ~30 px)
_GAIN_GRID = 256  # the noise gain is a property of the filter: a small grid measures it
_TILE = 1024  # deconvolution tile (core) size: bounds memory on a 400 MP scan
_MIN_MARGIN = 48  # context around each tile, at least 6 PSF widths
_MIN_MOTION_PX = 1.5
_MIN_SIGMA_PX = 0.3
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601, as cv2's RGB2GRAY


def motion_psf(length_px: float, angle_deg: float) -> np.ndarray:
    """A centred, normalised line of `length_px` at `angle_deg` (counter-clockwise from +x; image
    rows grow downwards, so +angle goes up). Sub-pixel accurate: points along the line are
    splatted bilinearly, so lengths and angles need not be integers."""
    length = max(float(length_px), 1.0)
    size = int(math.ceil(length)) + 2
    size += 1 - size % 2  # odd, so the centre is a pixel
    c = size // 2
    theta = math.radians(angle_deg)
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, max(int(length * 8), 2))
    xs, ys = c + t * math.cos(theta), c - t * math.sin(theta)
    psf = np.zeros((size, size), np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(psf, (y0 + dy, x0 + dx), w)
    return psf / psf.sum()


def gaussian_psf(sigma_px: float) -> np.ndarray:
    """A centred, normalised Gaussian out to 3 sigma (defocus as the diagnosis models it)."""
    radius = max(1, int(math.ceil(3 * sigma_px)))
    g = cv2.getGaussianKernel(2 * radius + 1, sigma_px, cv2.CV_64F)
    psf = g @ g.T
    return psf / psf.sum()


def psf_from_findings(blur: dict[str, Any]) -> np.ndarray | None:
    """The PSF the findings describe, or None when there is nothing (meaningful) to undo."""
    kind = blur.get("type", "none")
    if kind == "motion":
        length = float(blur.get("length_px") or 0.0)
        return motion_psf(length, float(blur.get("angle_deg") or 0.0)) if length >= _MIN_MOTION_PX else None
    if kind == "defocus":
        sigma = float(blur.get("sigma_px") or 0.0)
        return gaussian_psf(sigma) if sigma >= _MIN_SIGMA_PX else None
    if kind == "none":
        return None
    raise ValueError(f"unknown blur type {kind!r} (expected 'none', 'defocus' or 'motion')")


def wiener_filter(psf: np.ndarray, shape: tuple[int, int], balance: float, *, real: bool = True) -> np.ndarray:
    """Transfer function conj(H) / (|H|² + balance·|∇|² + ε·|∇|²/(|∇|² + ω_c²)), on an rfft
    (real=True) or full grid.

    balance·|∇|²: the gradient energy (exactly the 5-point Laplacian's transfer function) is the
    inverse of a natural photo's 1/f² power spectrum, so `balance` acts as a noise-to-signal
    ratio; it is zero at DC, so brightness is kept. ε term: a floor that caps the peak gain at
    1/(2√ε) near the zeros of a motion PSF (where an estimated PSF is most wrong and the inverse
    rings far), faded out below ω_c so DC stays exact. scikit-image's `wiener` takes a single
    regulariser impulse response, which this is not; its `uft` helpers do the transforms.
    """
    h = uft.ir2tf(psf, shape, is_real=real)
    grad2 = np.abs(uft.laplacian(2, shape, is_real=real)[0])
    floor = _PEAK_FLOOR * grad2 / (grad2 + _FLOOR_CUTOFF**2)
    return np.conj(h) / (np.abs(h) ** 2 + balance * grad2 + floor)


def noise_gain(psf: np.ndarray, balance: float, strength: float) -> float:
    """White-noise RMS gain of the output filter (1 - strength) + strength·Wiener(psf, balance)."""
    shape = (max(_GAIN_GRID, 6 * psf.shape[0]),) * 2
    w = wiener_filter(psf, shape, balance, real=False)
    return float(np.sqrt(np.mean(np.abs((1 - strength) + strength * w) ** 2)))


def _balance_within(psf: np.ndarray, balance: float, strength: float, max_gain: float) -> float:
    """The smallest balance >= `balance` whose noise gain is <= max_gain (bisection in log)."""
    if noise_gain(psf, balance, strength) <= max_gain:
        return balance
    lo, hi = math.log(balance), math.log(balance)
    while noise_gain(psf, math.exp(hi), strength) > max_gain:
        lo, hi = hi, hi + math.log(4.0)
    for _ in range(20):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if noise_gain(psf, math.exp(mid), strength) > max_gain else (lo, mid)
    return math.exp(hi)


def _deconvolve(y: np.ndarray, psf: np.ndarray, balance: float, tile: int | None = None) -> np.ndarray:
    """Wiener deconvolution of one channel in overlapping tiles (memory stays bounded on large
    scans). The image is reflect-padded; each tile's FFT window carries a margin of real (or
    reflected) context that absorbs its own wrap-around error and is then dropped."""
    tile = tile or _TILE
    margin = max(_MIN_MARGIN, 6 * psf.shape[0])
    h, w = y.shape
    padded = cv2.copyMakeBorder(y, margin, margin, margin, margin, cv2.BORDER_REFLECT_101)
    out = np.empty_like(y, dtype=np.float32)
    filters: dict[tuple[int, int], np.ndarray] = {}
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            th, tw = min(tile, h - top), min(tile, w - left)
            window = padded[top : top + th + 2 * margin, left : left + tw + 2 * margin]
            shape = window.shape
            if shape not in filters:
                filters[shape] = wiener_filter(psf, shape, balance)
            restored = uft.uirfftn(filters[shape] * uft.urfftn(window), shape=shape)
            out[top : top + th, left : left + tw] = restored[margin : margin + th, margin : margin + tw]
    return out


def _local_range(y: np.ndarray, psf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of `y` over the PSF's footprint (where it carries weight) around each pixel."""
    footprint = (psf > psf.max() * 0.05).astype(np.uint8)
    lo = cv2.erode(y, footprint, borderType=cv2.BORDER_REFLECT_101)
    hi = cv2.dilate(y, footprint, borderType=cv2.BORDER_REFLECT_101)
    return lo, hi


def deblur(
    rgb: np.ndarray, blur: dict[str, Any], *, strength: float = DEFAULT_STRENGTH, noise_sigma: float,
    max_noise_gain: float = DEFAULT_MAX_NOISE_GAIN,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Undo the diagnosed blur on float RGB in [0, 1] (HxWx3); returns (image, parameters used).

    `blur` is the diagnosis' blur finding; `noise_sigma` its noise level on the 0-255 scale (sets
    the regularisation); `strength` in [0, 1] scales the correction. Type "none" (or a blur too
    small to matter, or strength 0) returns the input unchanged.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if max_noise_gain < 1.0:
        raise ValueError(f"max_noise_gain must be >= 1, got {max_noise_gain}")
    psf = psf_from_findings(blur)
    params: dict[str, Any] = {"type": blur.get("type", "none"), "strength": float(strength)}
    if psf is None or strength == 0.0:
        return rgb, {**params, "applied": False}
    if blur["type"] == "motion":
        params.update(length_px=float(blur["length_px"]), angle_deg=float(blur.get("angle_deg") or 0.0))
    else:
        params.update(sigma_px=float(blur["sigma_px"]), psf="gaussian")

    sigma = max(float(noise_sigma), 0.0)
    wanted = max(_BALANCE_FLOOR, _BALANCE_PER_VAR * sigma**2)
    balance = _balance_within(psf, wanted, strength, max_noise_gain)

    rgb = rgb.astype(np.float32, copy=False)
    y = rgb @ _LUMA
    lo, hi = _local_range(y, psf)
    restored = np.clip(_deconvolve(y, psf, balance), lo, hi)
    delta = strength * (restored - y)
    out = np.clip(rgb + delta[:, :, None], 0.0, 1.0).astype(np.float32)
    params.update(
        applied=True, method="wiener", regulariser="gradient", psf_size=int(psf.shape[0]),
        noise_sigma=float(noise_sigma), balance=balance, balance_raised_for_noise=balance > wanted,
        noise_gain=round(noise_gain(psf, balance, strength), 4), max_noise_gain=float(max_noise_gain),
        ringing_bound="local min/max of the blurred luminance over the PSF footprint",
        channels="luminance (Rec. 601), same correction on R, G, B",
    )
    return out, params
