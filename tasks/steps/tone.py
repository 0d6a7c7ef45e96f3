"""Tone and colour cleanup before any AI: levels for faded scans, CLAHE on luminance, white balance.

Each step is optional, takes float RGB in [0, 1] (HxWx3), returns (image, parameters used), and
with strength 0 returns its input untouched. Lab is CIELab (sRGB, D65; L 0-100) through
scikit-image, whose round trip is exact to 1e-5; OpenCV's float Lab path is table-driven and
loses up to 0.005 (1.3 levels of 255) on a round trip, which a 16-bit master would show.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import cv2
import numpy as np
from skimage.color import lab2rgb, rgb2lab
from skimage.exposure import equalize_adapthist

# A near-flat scan (a blank page, fog) must not be stretched into noise: at most 4x.
_MAX_LEVELS_GAIN = 4.0
_CLAHE_BINS = 256
# Grey-world mean taken over mid-tones only: clipped blacks/whites carry no cast information.
_WB_L_RANGE = (5.0, 95.0)
_GREY_EDGE_P = 6.0  # van de Weijer's best Minkowski norm; p=1 and 2 measured worse here too
_MAX_WB_GAIN = 1.6  # a cast needing more than this is not a cast: leave the rest to a person
_ESTIMATE_SIDE = 1024
_LINEAR_LUMA = np.array([0.2126, 0.7152, 0.0722])


def _check(rgb: np.ndarray, strength: float) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected RGB of shape (H, W, 3), got {rgb.shape}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    return rgb.astype(np.float32, copy=False)


def _mix(before: np.ndarray, after: np.ndarray, strength: float) -> np.ndarray:
    return np.clip(before + strength * (after - before), 0.0, 1.0).astype(np.float32)


def levels(
    rgb: np.ndarray, *, black_clip: float = 0.001, white_clip: float = 0.001, strength: float = 1.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Stretch a faded scan's range to [0, 1], one linear map for all three channels (hues stay).

    The black point is the `black_clip` quantile of each pixel's darkest channel, the white point
    the `1 - white_clip` quantile of its brightest, so at most `black_clip` (resp. `white_clip`)
    of the pixels get any channel clipped. The gain is capped at 4x.
    """
    src = _check(rgb, strength)
    if not (0.0 <= black_clip < 0.5 and 0.0 <= white_clip < 0.5):
        raise ValueError(f"clip shares must be in [0, 0.5), got {black_clip}, {white_clip}")
    params: dict[str, Any] = {"black_clip": black_clip, "white_clip": white_clip, "strength": strength}
    if strength == 0.0:
        return rgb, {**params, "applied": False}
    black = float(np.quantile(src.min(axis=2), black_clip))
    white = float(np.quantile(src.max(axis=2), 1.0 - white_clip))
    if white - black < 1.0 / _MAX_LEVELS_GAIN:  # widen around the middle: never more than the cap
        mid = min(max((white + black) / 2, 0.5 / _MAX_LEVELS_GAIN), 1.0 - 0.5 / _MAX_LEVELS_GAIN)
        black, white = mid - 0.5 / _MAX_LEVELS_GAIN, mid + 0.5 / _MAX_LEVELS_GAIN
    stretched = (src - black) / (white - black)
    params.update(applied=True, black_point=black, white_point=white, gain=round(1.0 / (white - black), 4))
    return _mix(src, stretched, strength), params


def to_lab(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(rgb.astype(np.float32, copy=False)).astype(np.float32, copy=False)


def from_lab(lab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # out-of-gamut colours are clipped, as intended
        warnings.simplefilter("ignore", UserWarning)
        rgb = lab2rgb(lab)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32, copy=False)


def clahe_luminance(
    rgb: np.ndarray, *, clip_limit: float = 2.0, tiles: int = 8, strength: float = 1.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Contrast-limited adaptive histogram equalisation of Lab L only (a and b kept: no colour shift).

    `clip_limit` in OpenCV's convention (a multiple of the mean histogram bin; 2 is gentle),
    `tiles` per side (the shorter side gets `tiles` tiles, square ones). scikit-image does the
    work on floats: OpenCV's CLAHE takes 8-bit L, or 16-bit with a 65,536-bin histogram on which
    the same clip limit means something else. Its mapping uses 256 bins (as OpenCV's does;
    more bins weaken the effect on small tiles), so at strength 1 tonal steps can reach
    clip_limit/255 within a tile; a strength below 1 keeps that share of the input's precision.
    (scikit-image also stretches the equalised L to the full range, which CLAHE nearly gives.)
    """
    src = _check(rgb, strength)
    if clip_limit <= 0 or tiles < 1:
        raise ValueError(f"clip_limit must be > 0 and tiles >= 1, got {clip_limit}, {tiles}")
    params: dict[str, Any] = {"clip_limit": clip_limit, "tiles": tiles, "strength": strength}
    if strength == 0.0:
        return rgb, {**params, "applied": False}
    h, w = src.shape[:2]
    kernel = max(8, math.ceil(min(h, w) / tiles))
    lab = to_lab(src)
    lum = lab[:, :, 0] / 100.0
    equalised = equalize_adapthist(
        np.clip(lum, 0.0, 1.0), kernel_size=kernel, clip_limit=clip_limit / _CLAHE_BINS, nbins=_CLAHE_BINS,
    ).astype(np.float32)
    lab[:, :, 0] = 100.0 * (lum + strength * (equalised - lum))
    params.update(applied=True, kernel_px=kernel, space="Lab L", nbins=_CLAHE_BINS)
    return from_lab(lab).astype(np.float32), params


def measure_cast(rgb: np.ndarray) -> dict[str, float]:
    """Grey-world cast: mean Lab a and b over mid-tone pixels, and its magnitude (ΔE from neutral)."""
    lab = to_lab(rgb.astype(np.float32, copy=False))
    lum = lab[:, :, 0]
    sel = (lum >= _WB_L_RANGE[0]) & (lum <= _WB_L_RANGE[1])
    if sel.sum() < 0.01 * sel.size:  # almost all black/white: use everything
        sel = np.ones_like(sel)
    a, b = float(lab[:, :, 1][sel].mean()), float(lab[:, :, 2][sel].mean())
    return {"a": a, "b": b, "magnitude": math.hypot(a, b)}


def _working_copy(rgb: np.ndarray) -> np.ndarray:
    """At most _ESTIMATE_SIDE px on the long side (area): statistics at the scale of the picture,
    not of a high-resolution scan's film grain, and fast on a 400 MP scan."""
    h, w = rgb.shape[:2]
    scale = _ESTIMATE_SIDE / max(h, w)
    if scale >= 1.0:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _grey_edge_illuminant(linear: np.ndarray) -> np.ndarray:
    """Illuminant colour by grey-edge (van de Weijer et al. 2007): the Minkowski p=6 mean of each
    channel's gradient magnitude at sigma 1. Edges, unlike areas, are not dominated by one large
    coloured surface (grass, sky, a painted wall), which is what misleads grey-world."""
    smooth = cv2.GaussianBlur(linear, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT_101)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REFLECT_101)
    magnitude = np.sqrt(gx * gx + gy * gy).reshape(-1, 3).astype(np.float64)
    return np.mean(magnitude**_GREY_EDGE_P, axis=0) ** (1.0 / _GREY_EDGE_P)


def white_balance(
    rgb: np.ndarray, *, method: Literal["grey-edge", "grey-world", "gains"] = "grey-edge", strength: float = 1.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Remove a colour cast, by `strength` (0 keeps the input, 1 the full correction).

    "grey-edge" (default): per-channel gains in linear light (von Kries) that make the grey-edge
    illuminant estimate neutral. "gains": the same gains from the grey-world mid-tone means.
    "grey-world": shift Lab a/b by the mid-tone mean, i.e. the cast as the diagnosis measures it,
    fading out towards black and white (which stay neutral rather than take the opposite tint).
    Gains keep the linear luminance and are clamped to [1/1.6, 1.6].

    grey-edge is the default: on clean photos with strong synthetic casts it left a median 0.40 of
    the cast, grey-world gains 0.85 (the log is in bench/RESULTS.md): many real scenes are not
    grey on average, so grey-world needs a low strength.
    """
    src = _check(rgb, strength)
    if method not in ("grey-edge", "grey-world", "gains"):
        raise ValueError(f"unknown white balance method {method!r} (expected 'grey-edge', 'grey-world' or 'gains')")
    params: dict[str, Any] = {"method": method, "strength": strength}
    if strength == 0.0:
        return rgb, {**params, "applied": False}
    small = _working_copy(src)
    cast = measure_cast(small)
    params.update(applied=True, cast_before={k: round(v, 4) for k, v in cast.items()})
    if method == "grey-world":
        lab = to_lab(src)
        lum = lab[:, :, 0]
        fade = np.clip(np.minimum(lum, 100.0 - lum) / 10.0, 0.0, 1.0)  # 0 at L=0/100, 1 from 10 to 90
        lab[:, :, 1] -= strength * cast["a"] * fade
        lab[:, :, 2] -= strength * cast["b"] * fade
        params.update(shift_a=round(-strength * cast["a"], 4), shift_b=round(-strength * cast["b"], 4))
        return from_lab(lab), params
    small_linear = _srgb_to_linear(small)
    if method == "grey-edge":
        illuminant = _grey_edge_illuminant(small_linear)
    else:
        lum = to_lab(small)[:, :, 0]
        sel = (lum >= _WB_L_RANGE[0]) & (lum <= _WB_L_RANGE[1])
        illuminant = (small_linear[sel] if sel.any() else small_linear.reshape(-1, 3)).mean(axis=0)
    illuminant = np.maximum(np.asarray(illuminant, np.float64), 1e-9)
    # Gains that make the illuminant neutral at the same luminance, scaled by strength in log space.
    target = float(illuminant @ _LINEAR_LUMA)
    gains = np.clip((target / illuminant) ** strength, 1 / _MAX_WB_GAIN, _MAX_WB_GAIN)
    out = _linear_to_srgb(_srgb_to_linear(src) * gains.astype(np.float32))
    params.update(illuminant=[round(float(v), 6) for v in illuminant], gains=[round(float(g), 5) for g in gains])
    return out, params


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055).astype(np.float32)
