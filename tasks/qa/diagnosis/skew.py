"""Skew: the rotation of the content, from long straight edges near the image axes.

A crooked print on the scanner bed shows it in the straight edges of its border and of the
picture area; photographed architecture and horizons usually agree. On the 1024 px view, Canny
edges go through a standard Hough transform restricted to within 10 degrees of horizontal and
vertical (0.1 degree bins); each of the strongest lines keeps only its longest run of edge pixels
(gaps ≤ 3 px), must be at least a quarter of the short side long, must separate two different
areas (3 px either side differ by ≥ 0.03: a scratch is a thin line, not an edge, and its tilt is
its own), and is refined by a robust line fit to its pixels (sub-0.05 degree). Skew is the length-weighted median deviation of the
best-supported 0.6-degree cluster, accepted only with real evidence: lines of both families
(horizontal and vertical, as a rectangle's edges) totalling 0.8 short sides, or one family
totalling 2.5. Otherwise 0.0 is reported: a photograph without long straight edges has no
measurable skew (a tightly cropped crooked scan of a landscape reads 0).

Sign: positive = content rotated counter-clockwise as displayed (OpenCV's getRotationMatrix2D
convention), so rotating the scan by -skew_deg levels it.
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks.qa.diagnosis.views import Views, json_float

# Reported as skewed at or above this magnitude (clean photos: 97 % read exactly 0).
SKEWED_DEG = 0.3
MAX_SKEW_DEG = 10.0
_VIEW = 1024
_SIDE_OFFSET, _STEP_MIN = 3.0, 0.03  # px either side of a line; intensity step (0-1) it must show


def skew_angle(gray: np.ndarray) -> float:
    h, w = gray.shape
    short = min(h, w)
    if short < 32:
        return 0.0
    smooth = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.0)
    g8 = np.clip(smooth * 255.0, 0, 255).astype(np.uint8)
    mag = cv2.magnitude(cv2.Sobel(g8, cv2.CV_32F, 1, 0), cv2.Sobel(g8, cv2.CV_32F, 0, 1))
    hi = max(float(np.percentile(mag, 85)), 24.0)  # faint print borders on a light bed count too
    edges = cv2.Canny(g8, hi / 2, hi, L2gradient=True)
    ey, ex = np.nonzero(edges)
    ex, ey = ex.astype(np.float64), ey.astype(np.float64)
    min_run = max(0.25 * short, 48.0)  # short lines give imprecise angles
    span = np.deg2rad(MAX_SKEW_DEG)
    found: list[tuple[float, float, bool, float]] = []  # (deviation, run length, vertical, rho)
    # cv2.HoughLines gives the line's normal angle: pi/2 for a horizontal line, 0 or pi for vertical
    families = ((np.pi / 2 - span, np.pi / 2 + span, False), (0.0, span, True), (np.pi - span, np.pi, True))
    for lo, hi_t, vertical in families:
        lines = cv2.HoughLines(edges, 1, np.pi / 1800, int(min_run), min_theta=lo, max_theta=hi_t)
        if lines is None:
            continue
        for rho, theta in lines.reshape(-1, 2)[:20]:
            nx, ny = np.cos(theta), np.sin(theta)
            near = np.abs(ex * nx + ey * ny - rho) < 1.5
            if near.sum() < min_run:
                continue
            idx = np.nonzero(near)[0]
            along = ey[idx] * nx - ex[idx] * ny
            order = np.argsort(along)
            t = along[order]
            breaks = np.nonzero(np.diff(t) > 3.0)[0]
            starts, ends = np.r_[0, breaks + 1], np.r_[breaks, len(t) - 1]
            k = int(np.argmax(t[ends] - t[starts]))
            run = float(t[ends[k]] - t[starts[k]])
            if run < min_run:
                continue
            pts = idx[order[starts[k] : ends[k] + 1]]
            points = np.c_[ex[pts], ey[pts]].astype(np.float32)
            vx, vy, _, _ = cv2.fitLine(points, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
            deviation = (np.rad2deg(np.arctan2(-vy, vx)) + 45) % 90 - 45
            if abs(deviation) <= MAX_SKEW_DEG and _is_step(smooth, ex[pts], ey[pts], nx, ny):
                found.append((float(deviation), run, vertical, float(rho)))
    # one physical line shows up in several neighbouring Hough bins: keep the longest
    found.sort(key=lambda f: -f[1])
    lines_: list[tuple[float, float, bool, float]] = []
    for f in found:
        if not any(u[2] == f[2] and abs(u[0] - f[0]) < 1.0 and abs(u[3] - f[3]) < 6 for u in lines_):
            lines_.append(f)
    if not lines_:
        return 0.0
    dev = np.array([f[0] for f in lines_])
    runs = np.array([f[1] for f in lines_])
    vert = np.array([f[2] for f in lines_])
    support = np.array([runs[np.abs(dev - d) <= 0.3].sum() for d in dev])
    best = int(np.argmax(support))
    cluster = np.abs(dev - dev[best]) <= 0.3
    both = bool(vert[cluster].any() and (~vert[cluster]).any())
    if not ((both and support[best] >= 0.8 * short) or support[best] >= 2.5 * short):
        return 0.0
    order = np.argsort(dev[cluster])
    cum = np.cumsum(runs[cluster][order])
    return float(dev[cluster][order][np.searchsorted(cum, cum[-1] / 2)])


def _is_step(smooth: np.ndarray, xs: np.ndarray, ys: np.ndarray, nx: float, ny: float) -> bool:
    """An edge between two areas (a print's border, a horizon), not a thin line on one area
    (a scratch, whose tilt says nothing about the print's): the two sides differ."""
    def side(offset: float) -> np.ndarray:
        mx = (xs + offset * nx).astype(np.float32)[None, :]
        my = (ys + offset * ny).astype(np.float32)[None, :]
        return cv2.remap(smooth, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
    return float(np.median(np.abs(side(_SIDE_OFFSET) - side(-_SIDE_OFFSET)))) >= _STEP_MIN


def assess_skew(views: Views) -> float:
    return json_float(skew_angle(views.small_gray(_VIEW)), 2)
