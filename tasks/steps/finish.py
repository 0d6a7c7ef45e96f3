"""Finishing: keep the master a believable likeness of the scan.

All light touches on float RGB in [0, 1]: colour transfer from the restored scan, consistency
with it (back-projection), the fidelity blend with a classical upscale, optional grain and
minimal sharpening. Each returns its input untouched at strength/amount 0.

Memory: a 24 MP scan's x2 master is 1.15 GB in float32. Each step takes `out=` (the array to
write, which may be the input itself: the pipeline finishes the model's output in place) and
works a band of rows at a time, so its temporaries are a band's, not another master's; what it
needs of the restored scan at the master's size is resampled a band at a time (tasks.steps.restore).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from tasks.steps.restore import BAND_ROWS, aligned_bands, resize_rows
from tasks.steps.tone import from_lab, to_lab


def _target(values: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return np.empty(values.shape, np.float32)
    if out.shape != values.shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 of shape {values.shape}, got {out.dtype} {out.shape}")
    return out


def _row_bands(height: int) -> list[slice]:
    return [slice(y, min(height, y + BAND_ROWS)) for y in range(0, height, BAND_ROWS)]


def fidelity_blend(
    ai: np.ndarray, restored: np.ndarray, strength: float, *, out: np.ndarray | None = None,
) -> np.ndarray:
    """Mix a classical (Lanczos) upscale of the restored scan into the AI result.

    `strength` is the classical share: 0 keeps the AI output, 1 is a plain Lanczos upscale.
    Tames the model's invented texture ("plastic skin") while keeping most of its clarity.
    The upscale is made a band at a time (the same pixels as the whole one, up to rounding).
    """
    if strength <= 0:
        return ai if out is None else _copy_into(ai, out)
    dst = _target(ai, out)
    for big, small in aligned_bands(ai.shape[0], restored.shape[0]):
        _blend_band(ai, restored, strength, big, small, dst[big])
    return dst


def blended_at_scan_size(ai: np.ndarray, restored: np.ndarray, strength: float) -> np.ndarray:
    """fidelity_blend(ai, restored, strength) area-resized to the restored scan's size, without
    the full-size blend: band by band, each band's rows shrinking onto whole rows of the scan.
    (The pipeline blends again after the consistency step: the classical upscale is resampled
    twice rather than held at the master's size in between.)"""
    sh, sw = restored.shape[:2]
    small_out = np.empty((sh, sw, 3), np.float32)
    for big, small in aligned_bands(ai.shape[0], sh):
        band = ai[big] if strength <= 0 else _blend_band(ai, restored, strength, big, small)
        small_out[small] = cv2.resize(band, (sw, small.stop - small.start), interpolation=cv2.INTER_AREA)
    return small_out


def _blend_band(ai: np.ndarray, restored: np.ndarray, strength: float, big: slice, small: slice,
                dst: np.ndarray | None = None) -> np.ndarray:
    """Rows `big` of the fidelity blend (an aligned_bands pair), into `dst` when given."""
    h, w = ai.shape[:2]
    classical = resize_rows(restored, w, h, big, small)
    dst = cv2.addWeighted(ai[big], 1.0 - strength, classical, strength, 0.0, dst=dst)
    return np.clip(dst, 0.0, 1.0, out=dst)


def _copy_into(values: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out is not values:
        np.copyto(out, values)
    return out


def consistency(
    result: np.ndarray, reference: np.ndarray, *, strength: float = 1.0, iterations: int = 2,
    psf: np.ndarray | None = None, out: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Make the master, seen at the scan's size, reproduce the restored scan (iterative
    back-projection, Irani & Peleg 1991).

    The imaging model is the scan's: area averaging down to `reference`'s size, after the
    diagnosed blur `psf` (in scan pixels) when there is one. What the model moved at the scan's
    scale (colours, tones, edges, texture it invented large enough to see there) is measured as
    the difference from the reference and spread back (bicubic, through the PSF's adjoint); what
    it added at finer scales, which the scan cannot contradict, stays. `strength` scales each
    correction. Unlike colour transfer this is local: a tint in one corner is put right there.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    params: dict[str, Any] = {"method": "iterative back-projection", "strength": strength,
                              "iterations": iterations, "psf_size": None if psf is None else int(psf.shape[0])}
    if strength == 0.0:
        return (result if out is None else _copy_into(result, out)), {**params, "applied": False}
    h, w = reference.shape[:2]
    big_h, big_w = result.shape[:2]
    ref = reference.astype(np.float32, copy=False)
    kernel = None if psf is None else psf.astype(np.float32)
    adjoint = None if kernel is None else np.ascontiguousarray(kernel[::-1, ::-1])

    def seen(x: np.ndarray) -> np.ndarray:
        small = cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)
        return small if kernel is None else cv2.filter2D(small, -1, kernel, borderType=cv2.BORDER_REFLECT_101)

    out = _copy_into(result, _target(result, out))
    bands = aligned_bands(big_h, h)
    errors = []

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(cv2.norm(x, cv2.NORM_L2SQR) / x.size))

    for _ in range(iterations):
        residual = seen(out)
        np.subtract(ref, residual, out=residual)  # in place: scan-sized arrays add up at 24 MP
        errors.append(rms(residual))
        if adjoint is not None:
            residual = cv2.filter2D(residual, -1, adjoint, borderType=cv2.BORDER_REFLECT_101)
        for big, small in bands:  # the correction spread back a band at a time
            correction = resize_rows(residual, big_w, big_h, big, small, cv2.INTER_CUBIC)
            cv2.scaleAdd(correction, strength, out[big], dst=out[big])
            np.clip(out[big], 0.0, 1.0, out=out[big])
    residual = seen(out)
    errors.append(rms(np.subtract(ref, residual, out=residual)))
    return out, {**params, "applied": True, "imaging_model": "area" + ("" if psf is None else " after the PSF"),
                 "rms_difference": [round(e * 255, 3) for e in errors]}  # 0-255 scale, before each pass and after


# --- colour transfer, grain, sharpening ------------------------------------------------------

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601, as cv2's RGB2GRAY
# Std ratios outside this range mean the images do not correspond (or one is flat): no blow-ups.
_STD_RATIO = (0.5, 2.0)


def _lab_stats(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel Lab mean and (population) standard deviation, a band at a time (the Lab
    conversion of a whole master would be several master-sized float arrays), the bands' moments
    combined in float64. color_transfer converts each band to Lab again to apply the map: twice
    the conversion, to hold no master-sized Lab copy."""
    count, total, squares = 0, np.zeros(3), np.zeros(3)
    for rows in _row_bands(rgb.shape[0]):
        mean, std = cv2.meanStdDev(to_lab(rgb[rows]))
        n = (rows.stop - rows.start) * rgb.shape[1]
        count, total, squares = count + n, total + mean.ravel() * n, squares + (std.ravel() ** 2 + mean.ravel() ** 2) * n
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean**2, 0.0))


def color_transfer(
    result: np.ndarray, reference: np.ndarray, *, strength: float = 1.0, out: np.ndarray | None = None,
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
        return (result if out is None else _copy_into(result, out)), {**params, "applied": False}
    mean_r, std_r = _lab_stats(result)
    mean_ref, std_ref = _lab_stats(reference)
    ratio = np.clip(std_ref / np.maximum(std_r, 1e-6), *_STD_RATIO)
    # lab + strength * (moved - lab), moved = (lab - mean_r) * ratio + mean_ref: one affine map per
    # channel, applied in a single pass.
    gain = 1.0 + strength * (ratio - 1.0)
    offset = strength * (mean_ref - mean_r * ratio)
    affine = np.hstack([np.diag(gain), offset[:, None]]).astype(np.float32)
    dst = _target(result, out)
    for rows in _row_bands(result.shape[0]):
        dst[rows] = from_lab(cv2.transform(to_lab(result[rows]), affine))
    params.update(
        applied=True,
        result_mean=[round(float(v), 4) for v in mean_r], result_std=[round(float(v), 4) for v in std_r],
        reference_mean=[round(float(v), 4) for v in mean_ref], reference_std=[round(float(v), 4) for v in std_ref],
        std_ratio=[round(float(v), 4) for v in ratio],
    )
    return dst, params


def add_grain(
    rgb: np.ndarray, *, amount: float = 0.01, seed: int = 0, size: float = 1.0, out: np.ndarray | None = None,
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
        return (rgb if out is None else _copy_into(rgb, out)), {**params, "applied": False}
    src = rgb.astype(np.float32, copy=False)
    noise: np.ndarray = np.random.default_rng(seed).standard_normal(src.shape[:2], dtype=np.float32)
    if size > 0.3:
        noise = cv2.GaussianBlur(noise, (0, 0), size, borderType=cv2.BORDER_REFLECT_101)
        np.divide(noise, max(float(noise.std()), 1e-12), out=noise)  # back to unit variance: `amount` means the same at any size
    dst = _target(src, out)
    for rows in _row_bands(src.shape[0]):
        y = src[rows] @ _LUMA
        grain = amount * 4.0 * y * (1.0 - y) * noise[rows]
        np.clip(src[rows] + grain[:, :, None], 0.0, 1.0, out=dst[rows])
    return dst, {**params, "applied": True, "weighting": "4*Y*(1-Y)", "channels": "monochrome"}


def sharpen(
    rgb: np.ndarray, *, amount: float = 0.3, radius: float = 1.0, threshold: float = 0.01,
    out: np.ndarray | None = None,
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
        return (rgb if out is None else _copy_into(rgb, out)), {**params, "applied": False}
    src = rgb.astype(np.float32, copy=False)
    y = src @ _LUMA  # whole luminance first: `out` may be `rgb`, and the blur reads across bands
    blurred = cv2.GaussianBlur(y, (0, 0), radius, borderType=cv2.BORDER_REFLECT_101)
    dst = _target(src, out)
    for rows in _row_bands(src.shape[0]):
        detail = y[rows] - blurred[rows]
        detail = np.sign(detail) * np.maximum(np.abs(detail) - threshold, 0.0)
        np.clip(src[rows] + (amount * detail)[:, :, None], 0.0, 1.0, out=dst[rows])
    return dst, {**params, "applied": True, "channels": "luminance (Rec. 601)"}
