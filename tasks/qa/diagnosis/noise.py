"""Noise: the standard deviation of additive noise per colour channel, on the 0-255 scale.

Estimator: weak-texture patches (Liu, Tanaka & Okutomi, IEEE TIP 2013) and the patch-covariance
eigenvalue tail whose mean equals its median (Chen, Zhu & Heng, ICCV 2015). Patches whose
in-patch gradient energy is what noise alone would give (99 % gamma quantile at the current
estimate) are kept, iteratively; the noise variance is the mean of the smallest eigenvalues of
their covariance. Unlike a wavelet MAD (skimage `estimate_sigma`, the first cut) it is not fooled
by texture: on bench/diagnosis.py's 91 clean photographs it reads a median 0.4 where the
per-channel MAD reads 2.1.

It runs per channel (the sigma a per-channel denoiser such as FFDNet takes) on full-resolution
crops: noise is a pixel-scale property that downscaling would average away. Patches touching
black or white are left out (clipping squeezes noise); when that leaves too few, the channel
falls back to the wavelet MAD. Limits: it measures white noise; noise that JPEG or
demosaicing made spatially correlated (several RNI15 photos) reads lower than it looks.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import gamma
from skimage.restoration import estimate_sigma

from tasks.qa.diagnosis.views import Views

# A scan is "noisy" above this sigma (0-255): midway between the clean photos' 97.5th percentile
# (2.97; a few grainy CBSD68 photos read up to 4.05) and sigma-5 noise's 2.5th percentile (4.26)
# on the benchmark's calibration half (bench/diagnosis.py --calibrate).
NOISY_SIGMA = 3.6

_K = 7  # patch side
_STRIDE = 2
_CROP_SIDE, _CROPS = 384, 4  # full-resolution crops for large scans: ~0.6 MP per channel
_MAX_PATCHES = 80_000  # per channel: plenty for a 49x49 covariance
_MIN_UNCLIPPED = 0.02  # below this share of unclipped patches, fall back to the wavelet MAD
# In-patch squared forward differences of pure noise: Gamma(K²/2, scale 2/K² · tr(DhᵀDh + DvᵀDv))
# times sigma², with tr = 4 K (K - 1); keep patches under its 99 % quantile.
_TEXTURE_QUANTILE = float(gamma.ppf(0.99, _K * _K / 2, scale=2.0 / (_K * _K) * 4 * _K * (_K - 1)))


def _tail_variance(eigenvalues: np.ndarray) -> float:
    """Mean of the largest set of smallest eigenvalues whose mean does not exceed their median."""
    ev = np.sort(eigenvalues)
    for n in range(len(ev), 0, -1):
        tail = ev[:n]
        if tail.mean() <= np.median(tail):
            return float(tail.mean())
    return float(ev[0])


def _patches(channel: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Flattened 7x7 patches (stride 2), their texture strength (clipped patches dropped) and
    how many patches there were before dropping."""
    dx = np.zeros_like(channel)
    dx[:, :-1] = channel[:, 1:] - channel[:, :-1]
    dy = np.zeros_like(channel)
    dy[:-1, :] = channel[1:, :] - channel[:-1, :]
    # sum of squared forward differences inside each patch (anchor at the patch's top-left)
    sx = cv2.boxFilter(dx * dx, -1, (_K - 1, _K), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    sy = cv2.boxFilter(dy * dy, -1, (_K, _K - 1), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    h, w = channel.shape
    texture = (sx + sy)[: h - _K + 1, : w - _K + 1][::_STRIDE, ::_STRIDE].ravel()
    patches = sliding_window_view(channel, (_K, _K))[::_STRIDE, ::_STRIDE].reshape(-1, _K * _K)
    unclipped = (patches.min(axis=1) > lo) & (patches.max(axis=1) < hi)  # clipping squeezes noise
    return patches[unclipped], texture[unclipped], len(patches)


def _channel_variance(patches: np.ndarray, texture: np.ndarray, iterations: int = 8) -> float | None:
    def variance(selected: np.ndarray) -> float | None:
        chosen = patches[selected]
        if len(chosen) < 4 * _K * _K:
            return None
        chosen = chosen - chosen.mean(axis=0)
        cov = (chosen.T @ chosen).astype(np.float64) / len(chosen)
        return _tail_variance(np.linalg.eigvalsh(cov))

    var = variance(np.ones(len(patches), bool))
    if var is None:
        return None
    for _ in range(iterations):
        new = variance(texture < max(var, 1e-4) * _TEXTURE_QUANTILE)
        if new is None:
            break
        converged = abs(new - var) <= 1e-3 * max(var, 1e-4)
        var = new
        if converged:
            break
    return var


def noise_sigma(views: Views) -> float:
    """Average per-channel noise sigma on the 0-255 scale (0.0 when the image is too small)."""
    peak = views.peak
    lo, hi = 0.5 * 255.0 / peak, 255.0 - 0.5 * 255.0 / peak  # one code value from the extremes
    boxes = views.crops(_CROP_SIDE, _CROPS)
    channels = 1 if views.image.is_gray else 3
    per_channel: list[list[np.ndarray]] = [[] for _ in range(channels)]
    per_texture: list[list[np.ndarray]] = [[] for _ in range(channels)]
    totals = [0] * channels
    crops = []
    for top, left, h, w in boxes:
        if h < _K or w < _K:
            continue
        crop = views.crop(top, left, h, w, gray=False) * 255.0
        crops.append(crop)
        for c in range(channels):
            p, t, n = _patches(np.ascontiguousarray(crop if channels == 1 else crop[:, :, c]), lo, hi)
            per_channel[c].append(p)
            per_texture[c].append(t)
            totals[c] += n
    rng = np.random.default_rng(0)  # deterministic subsample
    sigmas = []
    for c in range(channels):
        if not per_channel[c]:
            continue
        patches, texture = np.concatenate(per_channel[c]), np.concatenate(per_texture[c])
        if len(patches) < max(4 * _K * _K, _MIN_UNCLIPPED * totals[c]):
            # Heavy noise on a contrasty picture clips nearly every patch somewhere: fall back to
            # the wavelet MAD (texture is negligible against such noise). RNI15 Flowers: 0 → 59.
            planes = [cr if channels == 1 else cr[:, :, c] for cr in crops]
            sigmas.append(float(np.mean([estimate_sigma(pl / 255.0, channel_axis=None) for pl in planes])) * 255.0)
            continue
        if len(patches) > _MAX_PATCHES:
            keep = rng.choice(len(patches), _MAX_PATCHES, replace=False)
            patches, texture = patches[keep], texture[keep]
        var = _channel_variance(patches, texture)
        if var is not None:
            sigmas.append(np.sqrt(max(var, 0.0)))
    return float(np.mean(sigmas)) if sigmas else 0.0
