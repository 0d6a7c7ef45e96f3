"""Tone and colour: clipping per channel, faded contrast, colour cast.

* Clipping: share of pixels per channel within half an 8-bit code value of black or white
  (so 0 and 255 in 8-bit, 0-128 and 65407-65535 in 16-bit). Counted at full resolution (every
  pixel, or every n-th row and column of scans over 8 MP: averaging would hide clipped pixels).
* Contrast: luminance p99.5 - p0.5 on 0-1 (1024 px view). Clean photos 0.47-0.99 (5th
  percentile 0.54); a print that lost half its contrast toward grey reads ≤ 0.50.
* Colour cast: grey-world deviation, the mean CIELab a* and b* (D65, sRGB) of the image; the
  magnitude is their hypot in Δab units. Colourful scenes are not grey on average (clean photos:
  median 14, up to 45), so a cast is reported only when the deviation is both large and large
  against the spread of the image's own chroma (Gasparini & Schettini's D/σ idea): a yellowed
  monochrome print has a tight chroma cloud away from neutral, a sunset a wide one.
* Toned print: a monochrome print toned sepia, selenium or gold has one hue per lightness (the
  toner's colour, stronger in the mid-tones), a colour photograph many. `chroma_residual` is the
  RMS Δab of a*, b* about their median at each lightness (16 bins of L*): what lightness does
  not explain. The planner leaves a toned print's tone alone (white balance would neutralise it).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tasks.qa.diagnosis.views import Views, json_float

# Thresholds (bench/diagnosis.py --calibrate, calibration half).
CLIPPED_SHARE = 0.01  # per channel (no synthetic check; clean photos: p95 0.018 black, 0.13 white)
# Contrast of clean photos: p2.5 0.53, min 0.50; losing 30 % of it toward grey gives 0.35-0.70:
# the two overlap, so the threshold sits at the clean photos' low end.
FADED_CONTRAST = 0.5
CAST_DELTA_AB = 5.0  # Δab of the grey-world mean (a 0.04 cast on a grey print: 5.6-8.3)
# Deviation over chroma spread: clean photos p97.5 3.21 (max 3.66), 0.04 cast on a monochrome
# print p2.5 3.65: midway 3.4. A cast on a colourful photo mostly stays under it.
CAST_SPREAD_RATIO = 3.4
# Chroma residual: toned prints, synthetic and real, read 0.40-2.26; of bench/diagnosis.py's 91
# colour photographs only two nearly monochrome scenes fall under 3.0 (leaving their colour alone
# is the safe side; the log is in bench/RESULTS.md). Below this: a toned print.
TONED_RESIDUAL = 3.0
_L_BINS = 16
_CLIP_FULL_PIXELS = 8_000_000

_HUES = ("red", "orange", "yellow", "yellow-green", "green", "cyan", "blue", "magenta")


def clipping(views: Views) -> dict[str, list[float]]:
    px = views.pixels
    step = max(1, math.ceil(math.sqrt(px.shape[0] * px.shape[1] / _CLIP_FULL_PIXELS)))
    sample = px[::step, ::step]
    peak = views.peak
    lo, hi = peak * 0.5 / 255.0, peak - peak * 0.5 / 255.0
    channels = [sample] if sample.ndim == 2 else [sample[:, :, c] for c in range(sample.shape[2])]
    n = float(channels[0].size)
    return {
        "black": [json_float(np.count_nonzero(ch <= lo) / n, 4) for ch in channels],
        "white": [json_float(np.count_nonzero(ch >= hi) / n, 4) for ch in channels],
    }


def contrast(views: Views) -> float:
    lo, hi = np.percentile(views.small_gray(1024), [0.5, 99.5])
    return json_float(hi - lo, 3)


def colour_cast(views: Views) -> tuple[dict[str, float], float]:
    """The grey-world finding {a, b, magnitude, chroma_residual} and the chroma spread (σ of a*,
    b* together)."""
    if views.image.is_gray:
        return {"a": 0.0, "b": 0.0, "magnitude": 0.0, "chroma_residual": 0.0}, 0.0
    lab = cv2.cvtColor(views.small(512), cv2.COLOR_RGB2Lab)  # float input: L 0-100, a/b in Δab units
    a, b = lab[:, :, 1], lab[:, :, 2]
    ma, mb = float(a.mean()), float(b.mean())
    spread = float(np.sqrt(a.var() + b.var()))
    return {"a": json_float(ma, 2), "b": json_float(mb, 2), "magnitude": json_float(math.hypot(ma, mb), 2),
            "chroma_residual": json_float(chroma_residual(lab), 2)}, spread


def chroma_residual(lab: np.ndarray) -> float:
    """RMS Δab of a*, b* about their median within each lightness bin (see the module doc)."""
    flat = lab.reshape(-1, 3)
    bins = np.clip((flat[:, 0] * (_L_BINS / 100.0)).astype(np.int64), 0, _L_BINS - 1)
    total = 0.0
    for k in np.unique(bins):
        part = flat[bins == k, 1:]
        total += float(((part - np.median(part, axis=0)) ** 2).sum())
    return math.sqrt(total / max(len(flat), 1))


def is_toned_print(cast: dict[str, float]) -> bool:
    """A monochrome print toned some colour: its chroma is what its lightness predicts."""
    residual = cast.get("chroma_residual")
    return residual is not None and residual < TONED_RESIDUAL


def cast_is_reported(cast: dict[str, float], spread: float) -> bool:
    return cast["magnitude"] >= CAST_DELTA_AB and cast["magnitude"] >= CAST_SPREAD_RATIO * spread


def hue_name(a: float, b: float) -> str:
    """Direction of a cast in words: CIELab hue angle in eight 45-degree sectors."""
    angle = math.degrees(math.atan2(b, a)) % 360
    return _HUES[int(((angle + 22.5) % 360) // 45)]
