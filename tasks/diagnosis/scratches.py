"""Scratches and dust: thin long bright/dark lines and small isolated specks, with a mask.

Scratches. At a moderate resolution (long side ≤ 1536 px) the Hessian at sigma 1 px marks
ridge pixels: a strong second derivative across, a weak one along, no first derivative (that
rejects the pseudo-ridges beside every edge), thinned by non-maximum suppression across the
line. Ridge pixels are grouped into straight pieces per 30-degree orientation sector (connected
components, principal-axis length ≥ 12 px, thickness ≤ 1.5 px), and collinear pieces (either
polarity: a bright scratch over a brighter area turns dark there) are merged into lines. A line
is a scratch when its pieces add up to at least a quarter of the image's short side, cover at
least 40 % of its extent, and no other line runs parallel to it within 15 px. Photographed thin
straight things (fence rails, horizons, window frames, lattices) remain the main source of false
alarms; bench/diagnosis.py measures how many clean photos get a "scratch". Short scratches
(under a quarter of the short side) are not reported.

Dust. Black/white top-hat residues (7x7) above a contrast of 0.25 that are small (≤ 30 px,
≤ 7 px across) and isolated: their residue is 20x the mean residue of their 15x15
surroundings, so specks in texture (foliage, gravel) are not counted. This is conservative:
it finds specks on smooth areas (where they show), about a quarter of specks strewn at random.

The mask (bool, full resolution) covers the scratch lines (3 px wide at the analysis scale,
drawn over their whole extent so an inpainter also closes the gaps) and, when there are more
than DUSTY_COUNT of them, the dust specks (dilated): a handful of isolated specks are as likely
catchlights in eyes as dust, and an inpainter should not fill those. `coverage` is the mask's share.
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks.diagnosis.views import Views, json_float

_ANALYSIS_SIDE = 1536
_RIDGE_SIGMA = 1.0
_RIDGE_MIN = 0.04  # |Hessian| difference at sigma 1 (a 1 px line of contrast 0.1 gives ~0.04)
_PIECE_MIN = 12.0  # px at the analysis scale
_PIECE_THICKNESS = 1.5
_LINE_SUPPORT = 0.25  # share of the short side a scratch's pieces must add up to
_LINE_COVERAGE = 0.4
_MERGE_ANGLE, _MERGE_OFFSET = 3.0, 3.0  # degrees, px
_MARGIN = 4  # the image's own border rows/columns are not scratches
# A parallel line 3-15 px away means structure (rails, lattices, facades), not a scratch:
# on the calibration half this took clean-photo false alarms from 6.5 % to 4.3 %, detection
# unchanged (93.5 %); 25 px: 4.3 % / 91.3 %.
_PARALLEL_ANGLE, _PARALLEL_GAP = 3.0, 15.0

_DUST_CONTRAST = 0.25
_DUST_ISOLATION = 20.0
_DUST_MAX_AREA, _DUST_MAX_SIDE, _DUST_WINDOW = 30, 7, 15

# A scan is reported scratched with at least one scratch line, or dusty with more specks than
# this: the clean photos' 97.5th percentile on the calibration half (93; median 12.5). Natural
# specks (catchlights, pebbles, leaves) are common, so dust alone is rarely reported.
DUSTY_COUNT = 95


def _ridge_points(gray: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """Thin ridge points: (ys, xs, bright polarity, line direction in degrees counter-clockwise)."""
    s = cv2.GaussianBlur(gray, (0, 0), _RIDGE_SIGMA)
    dxx = cv2.Sobel(s, cv2.CV_32F, 2, 0) / 4
    dyy = cv2.Sobel(s, cv2.CV_32F, 0, 2) / 4
    dxy = cv2.Sobel(s, cv2.CV_32F, 1, 1) / 4
    half_trace = (dxx + dyy) * 0.5
    disc = cv2.magnitude((dxx - dyy) * 0.5, dxy)
    # eigenvalues half_trace ± disc: |dominant| - |other| = 2 min(|half_trace|, disc), which is
    # large across a line and small at blobs (both large) and flat areas (both small)
    strength = 2 * np.minimum(np.abs(half_trace), disc)
    h, w = gray.shape
    on = strength > threshold
    on[:_MARGIN], on[-_MARGIN:], on[:, :_MARGIN], on[:, -_MARGIN:] = False, False, False, False
    ys, xs = np.nonzero(on)
    ht, dc, sxy, syy = half_trace[ys, xs], disc[ys, xs], dxy[ys, xs], dyy[ys, xs]
    big = ht + np.sign(ht) * dc  # the dominant eigenvalue: negative on a bright line
    nx, ny = big - syy, sxy  # its eigenvector: the line's normal
    norm = np.hypot(nx, ny) + 1e-12
    nx, ny = nx / norm, ny / norm
    # non-maximum suppression across the line (normal rounded to the 8-neighbourhood)
    ox, oy = np.rint(nx).astype(np.intp), np.rint(ny).astype(np.intp)
    st = strength[ys, xs]
    peak = (st >= strength[ys + oy, xs + ox]) & (st >= strength[ys - oy, xs - ox])
    # a line's centre has no slope; the pseudo-ridges beside an edge do
    gx = (s[ys, xs + 1] - s[ys, xs - 1]) * 0.5
    gy = (s[ys + 1, xs] - s[ys - 1, xs]) * 0.5
    keep = peak & (np.hypot(gx, gy) < 0.5 * np.abs(big))
    direction = (np.rad2deg(np.arctan2(-ny, nx)) + 90) % 180
    return ys[keep], xs[keep], big[keep] < 0, direction[keep]


def _pieces(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Connected components of the given points: principal length and thickness, angle, centroid."""
    img = np.zeros(shape, np.uint8)
    img[ys, xs] = 1
    n, labels = cv2.connectedComponents(img, connectivity=8)
    lab = labels[ys, xs]
    fx, fy = xs.astype(np.float64), ys.astype(np.float64)
    count = np.maximum(np.bincount(lab, minlength=n).astype(np.float64), 1)
    mx, my = np.bincount(lab, fx, n) / count, np.bincount(lab, fy, n) / count
    sxx = np.bincount(lab, fx * fx, n) / count - mx**2
    syy = np.bincount(lab, fy * fy, n) / count - my**2
    sxy = np.bincount(lab, fx * fy, n) / count - mx * my
    half = (sxx + syy) / 2
    disc = np.sqrt(np.maximum((sxx - syy) ** 2 / 4 + sxy**2, 0))
    length = np.sqrt(12 * (half + disc))  # a uniform segment of length L has variance L²/12
    thickness = np.sqrt(12 * np.maximum(half - disc, 0))
    angle = np.rad2deg(-0.5 * np.arctan2(2 * sxy, sxx - syy)) % 180  # counter-clockwise as displayed
    return length, thickness, angle, mx, my


def _scratch_lines(gray: np.ndarray, noise_sigma: float) -> list[tuple[float, float, float, float]]:
    """Scratch lines as (x0, y0, x1, y1) at the analysis scale."""
    h, w = gray.shape
    # pure-noise ridge strength at sigma 1 is ~0.24 sigma_lum; stay well above it
    threshold = max(_RIDGE_MIN, 3.0 * 0.67 * noise_sigma / 255.0)
    ys, xs, bright, direction = _ridge_points(gray, threshold)
    pieces = []
    for polarity in (True, False):
        for k in range(12):  # 30-degree sectors every 15 degrees: a straight line fits one whole
            centre = 15.0 * k
            sel = (bright == polarity) & (np.abs((direction - centre + 90) % 180 - 90) <= 15)
            if sel.sum() < _PIECE_MIN:
                continue
            length, thickness, angle, mx, my = _pieces(ys[sel], xs[sel], (h, w))
            off = np.abs((angle - centre + 90) % 180 - 90)
            ok = (length >= _PIECE_MIN) & (thickness <= _PIECE_THICKNESS) & (off <= 7.5)
            ok[0] = False
            pieces += [(length[i], angle[i], mx[i], my[i], polarity) for i in np.nonzero(ok)[0]]
    return _merge_collinear(pieces, min(h, w))


def _merge_collinear(pieces: list[tuple], short_side: int) -> list[tuple[float, float, float, float]]:
    """Greedy merge of straight pieces (longest first) into lines; a piece joins a line when its
    direction and its centroid's distance to the line (re-fitted after each join) agree. Either
    polarity: a bright scratch crossing a brighter area turns dark there."""
    pieces = sorted(pieces, key=lambda p: -p[0])
    lines: list[dict] = []
    for length, angle, cx, cy, _ in pieces:
        for line in lines:
            ux, uy = line["u"]
            px, py = line["centre"]
            if (abs((angle - line["angle"] + 90) % 180 - 90) < _MERGE_ANGLE
                    and abs((cx - px) * uy - (cy - py) * ux) < _MERGE_OFFSET):
                line["members"].append((length, angle, cx, cy))
                _refit(line)
                break
        else:
            line = {"members": [(length, angle, cx, cy)]}
            _refit(line)
            lines.append(line)
    for line in lines:
        (ux, uy), (px, py) = line["u"], line["centre"]
        line["support"] = sum(m[0] for m in line["members"])
        ts = [((m[2] - px) * ux + (m[3] - py) * uy, m[0]) for m in line["members"]]
        line["t0"], line["t1"] = min(t - L / 2 for t, L in ts), max(t + L / 2 for t, L in ts)
    needed = _LINE_SUPPORT * short_side
    out = []
    for line in lines:
        if line["support"] < needed or line["support"] / max(line["t1"] - line["t0"], 1.0) < _LINE_COVERAGE:
            continue
        neighbours = (other for other in lines if other is not line and other["support"] >= needed / 2)
        if any(_parallel_neighbour(line, other) for other in neighbours):
            continue  # rails, lattices, facades: the scene's own parallel lines
        (ux, uy), (px, py) = line["u"], line["centre"]
        out.append((px + line["t0"] * ux, py + line["t0"] * uy, px + line["t1"] * ux, py + line["t1"] * uy))
    return out


def _parallel_neighbour(line: dict, other: dict) -> bool:
    """`other` runs parallel to `line`, 3-15 px away, alongside it."""
    if abs((other["angle"] - line["angle"] + 90) % 180 - 90) >= _PARALLEL_ANGLE:
        return False
    (ux, uy), (px, py) = line["u"], line["centre"]
    ox, oy = other["centre"]
    offset = abs((ox - px) * uy - (oy - py) * ux)
    along = (ox - px) * ux + (oy - py) * uy
    o0, o1 = along + other["t0"], along + other["t1"]
    overlap = min(o1, line["t1"]) - max(o0, line["t0"])
    return _MERGE_OFFSET <= offset <= _PARALLEL_GAP and overlap > 0.3 * (line["t1"] - line["t0"])


def _refit(line: dict) -> None:
    """Length-weighted direction (doubled-angle mean) and centroid of a line's pieces."""
    m = np.array(line["members"], dtype=np.float64)
    weights, angles = m[:, 0], np.deg2rad(m[:, 1])
    mean = np.angle((weights * np.exp(2j * angles)).sum()) / 2
    line["angle"] = float(np.rad2deg(mean) % 180)
    line["u"] = (float(np.cos(mean)), float(-np.sin(mean)))
    line["centre"] = (float(np.average(m[:, 2], weights=weights)), float(np.average(m[:, 3], weights=weights)))


def _dust(gray: np.ndarray) -> tuple[int, np.ndarray]:
    """Isolated small high-contrast specks: their count and a mask at the analysis scale."""
    se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    total, mask = 0, np.zeros(gray.shape, np.uint8)
    win = _DUST_WINDOW
    for op in (cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT):
        residue = cv2.morphologyEx(gray, op, se)
        on = (residue > _DUST_CONTRAST).astype(np.uint8)
        n, labels, stats, centroids = cv2.connectedComponentsWithStats(on, connectivity=8)
        area, bw, bh = stats[:, 4], stats[:, 2], stats[:, 3]
        cand = (area >= 2) & (area <= _DUST_MAX_AREA) & (np.maximum(bw, bh) <= _DUST_MAX_SIDE)
        cand[0] = False
        idx = np.nonzero(cand)[0]
        if not len(idx):
            continue
        # mean residue of the surroundings: window sum minus the speck's own (dilated) footprint
        foot = cv2.dilate(on, np.ones((3, 3), np.uint8)).astype(np.float32)
        total_sum = cv2.boxFilter(residue, -1, (win, win), normalize=False)
        own_sum = cv2.boxFilter(foot * residue, -1, (win, win), normalize=False)
        own_n = cv2.boxFilter(foot, -1, (win, win), normalize=False)
        cx = np.clip(np.rint(centroids[idx, 0]).astype(int), 0, gray.shape[1] - 1)
        cy = np.clip(np.rint(centroids[idx, 1]).astype(int), 0, gray.shape[0] - 1)
        around = (total_sum[cy, cx] - own_sum[cy, cx]) / np.maximum(win * win - own_n[cy, cx], 1)
        peak = np.zeros(n, np.float32)
        np.maximum.at(peak, labels.ravel(), residue.ravel())
        isolated = idx[peak[idx] > _DUST_ISOLATION * np.maximum(around, 1e-3)]
        total += len(isolated)
        keep = np.zeros(n, bool)
        keep[isolated] = True
        mask |= keep[labels].astype(np.uint8)
    return total, mask


def assess_scratches(views: Views, noise_sigma: float = 0.0) -> tuple[dict, np.ndarray | None]:
    """The `scratches` finding and the full-resolution mask (None when nothing was found)."""
    h, w = views.shape
    finding = {"count": 0, "coverage": 0.0, "dust_count": 0}
    if min(h, w) < 16:
        return finding, None
    gray = views.small_gray(_ANALYSIS_SIDE)
    scale = gray.shape[0] / h
    lines = _scratch_lines(gray, noise_sigma * scale)  # area downscaling divides the noise
    dust_count, dust_mask = _dust(gray)
    # A few isolated specks are as likely catchlights and pebbles as dust: they join the mask
    # (that an inpainter will fill) only when there are more than DUSTY_COUNT of them.
    dusty = dust_count > DUSTY_COUNT
    finding["dust_count"] = int(dust_count)
    if not lines and not dusty:
        return finding, None
    small = cv2.dilate(dust_mask, np.ones((3, 3), np.uint8)) if dusty else np.zeros(gray.shape, np.uint8)
    for x0, y0, x1, y1 in lines:
        cv2.line(small, (round(x0), round(y0)), (round(x1), round(y1)), 1, 3)
    if small.shape != (h, w):
        mask = cv2.resize(small * 255, (w, h), interpolation=cv2.INTER_LINEAR) > 0
    else:
        mask = small > 0
    finding.update(count=len(lines), coverage=json_float(mask.mean(), 5))
    return finding, mask
