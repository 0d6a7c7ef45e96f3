"""Blur: how much, what kind (none / defocus / motion), and for motion its angle and length.

Two independent views of the same optics, both normalised by the content:

* Edge widths. At strong edges (Canny), the intensity profile along the gradient is sampled and
  its 10-90 % rise distance measured (sub-pixel). Edge *width* does not depend on how much
  texture or which orientations a photo has, only on the blur: sharp photos have their sharpest
  edges 1.5-2.4 px wide whatever the subject, a smooth sky simply contributes no edges. Widths
  are binned by gradient orientation; per bin the 20th percentile (the sharpest edges, so a
  shallow depth of field is not "blur") and a fit w²(θ) = a + b·cos 2θ + c·sin 2θ give the
  widest direction, its width and an anisotropy (b² + c²)^½ / a: ~0 for defocus, ~1 for motion.
* The power spectrum (Welch average of Hann-windowed tiles). Linear motion multiplies it by
  sinc²(L f·u): the high frequencies along the motion direction u fall off much faster than
  across it. Per direction, high-band minus low-band log power removes each direction's content
  amplitude; the second circular harmonic of that fall-off gives the spectral anisotropy and the
  motion direction (4-fold patterns such as JPEG's cancel out in it). The cepstrum of the
  spectrum projected on u has its negative peak at the blur length L; scanning u ±15° around
  the first estimate for the deepest peak refines both angle and length.

Angles are degrees counter-clockwise from the image's +x axis as displayed, in [0, 180);
lengths and widths are pixels at full resolution (large scans are analysed on their most
detailed full-resolution 1024 px tile, so nothing needs rescaling).
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks.qa.diagnosis.views import Views, json_float

# --- thresholds: `python bench/diagnosis.py --calibrate` on the calibration half (46 of the 91
# clean photos), midway between the negatives' 97.5th and the positives' 2.5th percentile.
# Blur extent (the score): widest-direction 10-90 % width of the sharpest edges, px at full
# resolution. Clean photos 1.56-2.78 (p97.5 2.40); Gaussian defocus sigma 1.5: p2.5 2.79;
# 7 px motion: p2.5 3.16.
BLURRED_SCORE = 2.6
# Motion needs both views to agree that the blur is directional (defocus 1.5 px vs motion 7 px).
MOTION_EDGE_ANISOTROPY = 0.41  # defocus p97.5 0.36, motion p2.5 0.46
MOTION_SPECTRAL_ANISOTROPY = 0.90  # natural-log power: defocus p97.5 0.81, motion p2.5 1.13

_ANALYSIS_SIDE = 1024  # full-resolution tile for large scans
_MIN_SIDE = 32  # smaller images: too few edges to judge
_PROFILE_RADIUS = 24  # edge profile half-length (px): widths up to ~45 px, motion up to ~55 px
_MAX_EDGE_POINTS = 20_000
_BINS = 12  # orientation bins of 15 degrees
_MIN_PER_BIN = 15
# Sharp-edge width to Gaussian sigma: w20 ≈ K·sqrt(sigma² + S0²), K the median ratio over the
# photos blurred with sigma 1.5-4, S0 from the clean photos' median w20 (1.64 px).
_WIDTH_PER_SIGMA = 1.98
_INTRINSIC_SIGMA = 0.82
_CEPSTRUM_MIN_DEPTH = 2.0  # z-score of the cepstral dip below which the length comes from edges
# Below this many edge points (photos under ~100 px) per-direction widths are too noisy to call
# motion; the score is then the overall sharp-edge width (clean photos have 3,900-30,000 points).
_MIN_EDGES_FOR_DIRECTION = 1000


def _analysis_region(views: Views) -> np.ndarray:
    """Luminance at full resolution: the whole image, or its most detailed 1024 px tile."""
    h, w = views.shape
    if max(h, w) <= int(_ANALYSIS_SIDE * 1.5):
        return views.small_gray(max(h, w))
    thumb = views.small_gray(512)
    scale = thumb.shape[0] / h
    mag = cv2.magnitude(cv2.Sobel(thumb, cv2.CV_32F, 1, 0), cv2.Sobel(thumb, cv2.CV_32F, 0, 1))
    win_h, win_w = max(1, round(min(_ANALYSIS_SIDE, h) * scale)), max(1, round(min(_ANALYSIS_SIDE, w) * scale))
    energy = cv2.boxFilter(mag, -1, (win_w, win_h), normalize=True, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    valid = energy[: max(1, thumb.shape[0] - win_h + 1), : max(1, thumb.shape[1] - win_w + 1)]
    ty, tx = np.unravel_index(int(np.argmax(valid)), valid.shape)
    top = int(np.clip(round(ty / scale), 0, max(0, h - _ANALYSIS_SIDE)))
    left = int(np.clip(round(tx / scale), 0, max(0, w - _ANALYSIS_SIDE)))
    return views.crop(top, left, min(_ANALYSIS_SIDE, h), min(_ANALYSIS_SIDE, w))


# --- edge widths ------------------------------------------------------------------------------


def edge_widths(gray: np.ndarray, noise_sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Gradient orientation (deg, [0, 180), counter-clockwise) and 10-90 % width (px) per edge point."""
    h, w = gray.shape
    radius = int(min(_PROFILE_RADIUS, min(h, w) // 6))
    if radius < 4:
        return np.zeros(0), np.zeros(0)
    g8 = np.clip(gray * 255.0, 0, 255).astype(np.uint8)
    smooth = cv2.GaussianBlur(gray, (0, 0), 0.7)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0) / 8
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1) / 8
    mag = cv2.magnitude(gx, gy)
    # Canny thresholds follow the image (strongest 8-20 % of gradients) but stay above noise:
    # the 3x3 Sobel magnitude of pure noise of sigma s has its 99.9th percentile near 13 s.
    sobel = cv2.magnitude(cv2.Sobel(g8, cv2.CV_32F, 1, 0), cv2.Sobel(g8, cv2.CV_32F, 0, 1))
    lo_t, hi_t = np.percentile(sobel, [80, 92])
    floor = 13.0 * noise_sigma * 0.67  # luminance noise of independent RGB noise
    hi_t, lo_t = max(hi_t, 8.0, floor), max(lo_t, 4.0, floor / 2)
    edges = cv2.Canny(g8, lo_t, hi_t, L2gradient=True) > 0
    edges[:radius], edges[-radius:], edges[:, :radius], edges[:, -radius:] = False, False, False, False
    ys, xs = np.nonzero(edges)
    if len(ys) > _MAX_EDGE_POINTS:
        pick = np.random.default_rng(0).choice(len(ys), _MAX_EDGE_POINTS, replace=False)
        ys, xs = ys[pick], xs[pick]
    m = mag[ys, xs]
    ok = m > 1e-4
    ys, xs, m = ys[ok], xs[ok], m[ok]
    if len(ys) == 0:
        return np.zeros(0), np.zeros(0)
    ux, uy = gx[ys, xs] / m, gy[ys, xs] / m
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    map_x = (xs[:, None] + ux[:, None] * offsets[None, :]).astype(np.float32)
    map_y = (ys[:, None] + uy[:, None] * offsets[None, :]).astype(np.float32)
    prof = cv2.remap(gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    prof = cv2.GaussianBlur(prof, (0, 0), sigmaX=0.7, sigmaY=1e-3)  # along each profile only
    # walk out from the centre while the profile keeps rising: the edge's two plateaus
    rising = np.diff(prof, axis=1) > 0
    c = radius
    right = np.argmax(~rising[:, c:], axis=1)
    right[rising[:, c:].all(axis=1)] = radius
    left = np.argmax(~rising[:, :c][:, ::-1], axis=1)
    left[rising[:, :c].all(axis=1)] = radius
    idx = np.arange(len(ys))
    start, stop = c - left, c + right
    low, high = prof[idx, start], prof[idx, stop]
    span = high - low
    ks = np.arange(2 * radius + 1)[None, :]
    inside = (ks >= start[:, None]) & (ks <= stop[:, None])

    def crossing(level: np.ndarray) -> np.ndarray:
        below = ((prof < level[:, None]) & inside).sum(axis=1)
        k = np.clip(start + below - 1, 0, 2 * radius - 1)
        a, b = prof[idx, k], prof[idx, k + 1]
        return k + np.clip((level - a) / np.maximum(b - a, 1e-6), 0, 1)

    width = crossing(low + 0.9 * span) - crossing(low + 0.1 * span)
    theta = np.rad2deg(np.arctan2(-uy, ux)) % 180.0
    real = span > 0.04  # edges of at least 4 % contrast
    return theta[real], width[real].astype(np.float64)


def _orientation_fit(theta: np.ndarray, width: np.ndarray) -> dict[str, float] | None:
    """Per-bin 20th-percentile widths fitted with w² = a + b cos 2θ + c sin 2θ."""
    bins = (theta // (180 / _BINS)).astype(int) % _BINS
    values, counts = np.full(_BINS, np.nan), np.zeros(_BINS)
    for b in range(_BINS):
        sel = bins == b
        counts[b] = sel.sum()
        if counts[b] >= _MIN_PER_BIN:
            values[b] = np.percentile(width[sel], 20)
    ok = ~np.isnan(values)
    if ok.sum() < _BINS // 2:  # too few directions with edges to tell a direction
        return None
    ang = np.deg2rad((np.arange(_BINS) + 0.5) * 180 / _BINS)[ok]
    design = np.c_[np.ones(ok.sum()), np.cos(2 * ang), np.sin(2 * ang)]
    weight = np.sqrt(counts[ok])
    (a, b, c), *_ = np.linalg.lstsq(design * weight[:, None], values[ok] ** 2 * weight, rcond=None)
    amp = float(np.hypot(b, c))
    return {
        "anisotropy": amp / max(a, 1e-6),
        "angle": float(np.rad2deg(np.arctan2(c, b) / 2) % 180),
        "w_max": float(np.sqrt(max(a + amp, 0))),
        "w_min": float(np.sqrt(max(a - amp, 0))),
    }


# --- spectrum and cepstrum --------------------------------------------------------------------


def _log_psd(gray: np.ndarray, n: int, noise_sigma: float) -> np.ndarray:
    """fftshifted log power spectrum averaged over half-overlapping n x n Hann-windowed tiles,
    with the white-noise floor taken out."""
    window = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    h, w = gray.shape
    step = n // 2
    tiles = [
        gray[y : y + n, x : x + n] for y in range(0, h - n + 1, step) for x in range(0, w - n + 1, step)
    ]
    stack = np.stack(tiles).astype(np.float32)
    stack = (stack - stack.mean(axis=(1, 2), keepdims=True)) * window
    power = (np.abs(np.fft.fft2(stack)) ** 2).mean(axis=0)
    floor = (noise_sigma * 0.67 / 255.0) ** 2 * float((window**2).sum())  # luminance noise power
    power = np.maximum(power - floor, 1e-3 * floor + 1e-12)
    return np.log(np.fft.fftshift(power)).astype(np.float32)


def _spectral_anisotropy(log_psd: np.ndarray) -> tuple[float, float]:
    """(amplitude of the 2θ harmonic of the per-direction fall-off, motion direction in degrees)."""
    n = log_psd.shape[0]
    c = n // 2
    angles = np.deg2rad(np.arange(180.0))
    radii = np.arange(1.5, c - 1, 0.5)
    # frequency direction (cos a, -sin a) as displayed: column c + r cos a, row c - r sin a
    map_x = (c + radii[None, :] * np.cos(angles)[:, None]).astype(np.float32)
    map_y = (c - radii[None, :] * np.sin(angles)[:, None]).astype(np.float32)
    polar = cv2.remap(log_psd, map_x, map_y, cv2.INTER_LINEAR)
    f = radii / n
    low, high = (f >= 0.012) & (f <= 0.03), (f >= 0.06) & (f <= 0.4)
    if not low.any() or not high.any():
        return 0.0, 0.0
    falloff = polar[:, high].mean(axis=1) - polar[:, low].mean(axis=1)
    z = (falloff * np.exp(2j * angles)).mean()
    # the fall-off is steepest (most negative) along the motion: 90 degrees from the harmonic's peak
    return float(2 * abs(z)), float((np.rad2deg(np.angle(z)) / 2 + 90) % 180)


def _cepstral_dip(log_psd: np.ndarray, angle: float) -> tuple[float, float]:
    """(lag of the deepest cepstral dip along `angle`, its depth as a z-score)."""
    n = log_psd.shape[0]
    c = n / 2
    rot = cv2.getRotationMatrix2D((c, c), -angle, 1.0)  # brings the motion direction onto +x
    aligned = cv2.warpAffine(log_psd, rot, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # the sinc zeros are lines across the motion direction: average along them
    profile = aligned[int(c - 0.15 * n) : int(c + 0.15 * n)].mean(axis=0)
    profile = profile - cv2.GaussianBlur(profile[None, :], (0, 0), sigmaX=n / 16)[0]  # drop the 1/f trend
    cep = np.fft.ifft(np.fft.ifftshift(profile)).real
    lo, hi = 3, n // 3
    k = lo + int(np.argmin(cep[lo:hi]))
    depth = float(-cep[k] / (np.std(cep[lo:hi]) + 1e-12))
    if 1 <= k < n - 1:  # parabolic refinement of the lag
        a, b, d = cep[k - 1], cep[k], cep[k + 1]
        den = a - 2 * b + d
        return float(k + (0.5 * (a - d) / den if den > 0 else 0.0)), depth
    return float(k), depth


def _refine_motion(log_psd: np.ndarray, angle: float) -> tuple[float, float, float]:
    """Angle and length at the deepest cepstral dip within ±15 degrees of `angle`."""
    best = (angle, *_cepstral_dip(log_psd, angle))
    for step, span in ((1.0, 15.0), (0.25, 1.0)):
        centre = best[0]
        for a in centre + np.arange(-span, span + step / 2, step):
            length, depth = _cepstral_dip(log_psd, a)
            if depth > best[2]:
                best = (float(a), length, depth)
    return best[0] % 180.0, best[1], best[2]


def _circular_mean_deg(a: float, b: float) -> float:
    z = np.exp(2j * np.deg2rad(a)) + np.exp(2j * np.deg2rad(b))
    return float(np.rad2deg(np.angle(z) / 2) % 180)


# --- the finding ------------------------------------------------------------------------------


def blur_features(gray: np.ndarray, noise_sigma: float = 0.0) -> dict[str, float]:
    """The measurements behind the finding (also used by the benchmark for calibration)."""
    theta, width = edge_widths(gray, noise_sigma)
    feats: dict[str, float] = {"edges": float(len(width))}
    fit = _orientation_fit(theta, width) if len(width) >= _BINS * _MIN_PER_BIN // 2 else None
    if fit is None:
        feats.update(w20=float(np.percentile(width, 20)) if len(width) else 0.0, edge_anisotropy=0.0,
                     edge_angle=0.0, w_max=0.0, w_min=0.0)
    else:
        feats.update(w20=float(np.percentile(width, 20)), edge_anisotropy=fit["anisotropy"],
                     edge_angle=fit["angle"], w_max=fit["w_max"], w_min=fit["w_min"])
    h, w = gray.shape
    n = 256 if min(h, w) >= 768 else 128 if min(h, w) >= 128 else 64 if min(h, w) >= 64 else 0
    feats["psd_side"] = float(n)
    feats["spectral_anisotropy"], feats["spectral_angle"] = 0.0, 0.0
    if n:
        feats["spectral_anisotropy"], feats["spectral_angle"] = _spectral_anisotropy(_log_psd(gray, n, noise_sigma))
    return feats


def directional(feats: dict[str, float]) -> bool:
    """Enough edges in enough directions, and tiles for a spectrum, to judge a direction."""
    return feats["edges"] >= _MIN_EDGES_FOR_DIRECTION and feats["psd_side"] >= 128 and feats["w_max"] > 0


def blur_score(feats: dict[str, float]) -> float:
    return max(feats["w_max"], feats["w20"]) if directional(feats) else feats["w20"]


def classify(feats: dict[str, float]) -> str:
    if blur_score(feats) <= BLURRED_SCORE:
        return "none"
    if (directional(feats) and feats["edge_anisotropy"] > MOTION_EDGE_ANISOTROPY
            and feats["spectral_anisotropy"] > MOTION_SPECTRAL_ANISOTROPY):
        return "motion"
    return "defocus"


def assess_blur(views: Views, noise_sigma: float = 0.0) -> dict:
    """The `blur` finding: type, score, sigma_px (defocus), angle_deg and length_px (motion)."""
    finding = {"type": "none", "score": 0.0, "sigma_px": None, "angle_deg": None, "length_px": None}
    if min(views.shape) < _MIN_SIDE:
        return finding
    gray = _analysis_region(views)
    feats = blur_features(gray, noise_sigma)
    kind = classify(feats)
    finding["type"] = kind
    finding["score"] = json_float(blur_score(feats), 2)
    if kind == "defocus":
        sigma = np.sqrt(max((feats["w20"] / _WIDTH_PER_SIGMA) ** 2 - _INTRINSIC_SIGMA**2, 0.0))
        finding["sigma_px"] = json_float(sigma, 2)
    elif kind == "motion":
        angle = _circular_mean_deg(feats["edge_angle"], feats["spectral_angle"])
        length = np.sqrt(max(feats["w_max"] ** 2 - feats["w_min"] ** 2, 0.0)) / 0.8  # ramp 10-90 % = 0.8 L
        n = int(feats["psd_side"])
        if n:
            refined, cep_length, depth = _refine_motion(_log_psd(gray, n, noise_sigma), angle)
            if depth >= _CEPSTRUM_MIN_DEPTH:
                angle, length = refined, cep_length
        finding["angle_deg"] = json_float(angle % 180.0, 1)
        finding["length_px"] = json_float(length, 1)
    return finding
