"""Scratch lines: thin long light lines across a print, found on a grey view.

At a moderate resolution (long side ≤ 1536 px) the Hessian at sigma 1 px marks
ridge pixels: a strong second derivative across, a weak one along, no first derivative (that
rejects the pseudo-ridges beside every edge), thinned by non-maximum suppression across the
line. Ridge pixels are grouped into straight pieces per 30-degree orientation sector (connected
components, principal-axis length ≥ 12 px, thickness ≤ 1.5 px), and collinear pieces (either
polarity: a bright scratch over a brighter area turns dark there) are merged into lines. A line
with a tenth of the short side in pieces is then traced on the ridge points themselves (those
within 1 px of it, running its way, gaps up to a tenth of the short side), which recovers the
bits of a scratch that texture broke or thickened, and re-fitted to them; a line that passes the
tests below is traced again until it stops growing (a fit to part of a scratch misses its far end
by a pixel; bench/diagnosis.py: mask recall 0.806 -> 0.822).

A scan found scratched is looked at a second time with the pieces bridged: ridge points one
missing pixel apart along the sector's direction connect (a steep line's ridge fails where it
steps from one pixel column to the next, leaving runs too short to be pieces), a short piece may
join a line as far off as one pixel over its length, and a found scratch's own edges no longer
count against a second one running close beside it. Each scratch is kept once (parallel within 3
degrees and 3 px: the demo cat's two scratches 2-4 px apart differ by 4.7), the longer of its two
traces. That finds a second scratch crossing the first at a shallow angle and traces steep
ones to their ends (bench/diagnosis.py --only scratches: as inpainted, median recall 0.821 ->
0.930, precision 0.943 -> 0.975, count exact 53 -> 69 %; the demo masters keep 1 of their 12
scratches instead of 5). Only there: on clean photographs bridging also lengthens horizons, snow
lines and frames into "scratches" (4 of the 91 flagged instead of 1).

A scratch is a mark on the print, not a thing in the scene, and the tests say so:
  - long for the image: ridge points along at least a quarter of the image's extent in the
    line's direction (a quarter of the height for a vertical line, of the width for a horizon),
    covering at least 40 % of the line's own extent;
  - light: at least half of it brighter than its sides (scratches on prints show the paper's
    white; thin dark straight lines in photographs are wires, frames, text);
  - no darker line runs beside it within 15 px (a highlight with its object's dark edge: a rod,
    a rail, a rim), and at most 3 lines run parallel to it within 0.15 of the short side (a
    family: bricks, blinds, fences, a glass lattice);
  - no content edges along it: in bands 3-12 px either side, the gradient energy across the
    line exceeds that along it (isotropic texture cancels) by less than 0.12 of the line's own
    contrast, as a median along the line. A scratch crosses whatever the scene holds; a fence
    rail, a facade's edge, a horizon or a pipe's highlight belongs to an object whose other
    edges run with it.
Calibration: bench/diagnosis.py's even-indexed photos (clean, noisy, scratched), plus 37 more
clean images outside the benchmark as further negatives: the four tests take the false scratches
there from 6 of the 37 to 1 with detection unchanged (the log is in bench/RESULTS.md).
The length threshold lies between the longest line the tests let through on the calibration
half's clean and noisy photos (0.23 of the span) and the shortest scratch found there (0.26).
Short scratches (under a quarter of the span) and dark lines are not reported.
"""

from __future__ import annotations

import cv2
import numpy as np

_RIDGE_SIGMA = 1.0
_RIDGE_MIN = 0.04  # |Hessian| difference at sigma 1 (a 1 px line of contrast 0.1 gives ~0.04)
_PIECE_MIN = 12.0  # px at the analysis scale
_PIECE_THICKNESS = 1.5
_LINE_SUPPORT = 0.25  # share of the image's extent along the line that a scratch must cover
_LINE_COVERAGE = 0.4
_MERGE_ANGLE, _MERGE_OFFSET = 3.0, 3.0  # degrees, px
_MARGIN = 1  # the image's outermost rows/columns are not scratches (a print's or the platen's edge)
_TRACE_SEED, _TRACE_GAP = 0.1, 0.1  # shares of the short side (see _trace)
_RETRACE_ROUNDS, _RETRACE_TURN = 3, 1.0  # re-traces of a candidate at most; the turn (degrees) refused
_BRIGHT_SHARE = 0.5  # of a line's support that must be lighter than its sides
_PARALLEL_ANGLE, _PARALLEL_GAP = 3.0, 15.0  # a darker parallel line this close: an object's edge
_FAMILY_GAP, _FAMILY_MAX = 0.15, 3  # more parallel lines than this within 0.15 of the short side
_SIDE_BAND = (3, 13)  # px either side of a line where content edges along it are looked for
_ALIGNED_EDGES = 0.12  # their strength (see _clear_of_content_edges) against the line's contrast
_WIDTH_SHARE, _MAX_WIDTH = 0.5, 3  # see _mask_width
_BORDER_NEAR, _BORDER_GAP, _BORDER_DRIFT = 3.0, 6, 3  # px: see _follow_to_border


def _ridge_points(gray: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """Thin ridge points: (ys, xs, bright polarity, line direction in degrees counter-clockwise),
    and the smoothed image they were found on."""
    # Replicated, not mirrored, at the border: a mirror doubles a line 1 px from the edge into two
    # that blur into one ridge on the edge itself, which _MARGIN leaves out.
    s = cv2.GaussianBlur(gray, (0, 0), _RIDGE_SIGMA, borderType=cv2.BORDER_REPLICATE)
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
    return ys[keep], xs[keep], big[keep] < 0, direction[keep], s


def _pieces(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int],
            along: float | None = None) -> tuple[np.ndarray, ...]:
    """Connected components of the given points: principal length and thickness, angle, centroid.
    With `along` (degrees), points one missing pixel apart in that direction connect too: where a
    steep line steps from one pixel column to the next its ridge is split between the two and the
    point there fails, which broke such scratches into runs too short to be pieces."""
    img = np.zeros(shape, np.uint8)
    img[ys, xs] = 1
    if along is not None:
        dx, dy = np.cos(np.deg2rad(along)), -np.sin(np.deg2rad(along))
        kernel = np.zeros((3, 3), np.uint8)
        kernel[1, 1] = kernel[1 + round(dy), 1 + round(dx)] = kernel[1 - round(dy), 1 - round(dx)] = 1
        img = cv2.dilate(img, kernel).astype(np.uint8)
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


def scratch_lines(gray: np.ndarray, noise_sigma: float) -> list[tuple]:
    """Scratch lines as (x0, y0, x1, y1, width, courses along the scan's edge: see
    _follow_to_border) at the analysis scale. A scan found scratched is
    looked at a second time with the pieces bridged (see the module's doc); each scratch is kept
    once, the longer of its two traces (over texture, bridging can join a scratch to texture
    ridges and trace it shorter)."""
    # pure-noise ridge strength at sigma 1 is ~0.24 sigma_lum; stay well above it
    threshold = max(_RIDGE_MIN, 3.0 * 0.67 * noise_sigma / 255.0)
    ridges = _ridge_points(gray, threshold)
    found = _find_lines(gray, ridges, bridged=False)
    if found:  # bridging on a clean photo would also lengthen horizons and frames into scratches
        extent = lambda line: line["t1"] - line["t0"]
        for line in _find_lines(gray, ridges, bridged=True):
            twin = next((i for i, kept in enumerate(found)
                         if _parallel_neighbour(kept, line, 0.0, _MERGE_OFFSET, 0.0)), None)
            if twin is None:
                found.append(line)
            elif extent(line) > extent(found[twin]):
                found[twin] = line
    return [(*_endpoints(line), _mask_width(gray, line), _follow_to_border(gray, line)) for line in found]


def _find_lines(gray: np.ndarray, ridges: tuple[np.ndarray, ...], bridged: bool) -> list[dict]:
    """The scratch lines among the ridge points: straight pieces per direction sector, merged,
    traced, and put to the tests of a scratch. `bridged`: the second look (module doc)."""
    h, w = gray.shape
    ys, xs, bright, direction, smooth = ridges
    pieces = []
    for polarity in (True, False):
        for k in range(12):  # 30-degree sectors every 15 degrees: a straight line fits one whole
            centre = 15.0 * k
            sel = (bright == polarity) & (np.abs((direction - centre + 90) % 180 - 90) <= 15)
            if sel.sum() < _PIECE_MIN:
                continue
            length, thickness, angle, mx, my = _pieces(ys[sel], xs[sel], (h, w), centre if bridged else None)
            off = np.abs((angle - centre + 90) % 180 - 90)
            ok = (length >= _PIECE_MIN) & (thickness <= _PIECE_THICKNESS) & (off <= 7.5)
            ok[0] = False
            pieces += [(length[i], angle[i], mx[i], my[i], polarity) for i in np.nonzero(ok)[0]]
    lines = _merge_collinear(pieces, bridged)
    short = min(h, w)
    for line in lines:
        if line["support"] >= _TRACE_SEED * short:
            _trace(line, ys, xs, bright, direction, short)
    candidates = _candidates(lines, (h, w))
    if not candidates:
        return []
    for line in candidates:
        _retrace(line, ys, xs, bright, direction, short)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0) / 8
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1) / 8
    found: list[dict] = []
    for line in sorted(candidates, key=lambda c: -c["support"]):
        if any(_parallel_neighbour(line, other, 0.0, _MERGE_OFFSET, 0.0) for other in found):
            continue  # the same scratch, reached from two sets of pieces
        if _clear_of_content_edges(gray, gx, gy, line):
            found.append(line)
            if bridged:
                # a found scratch is not scene content: its edges must not count against a second
                # scratch running close beside it (two crossing at a shallow angle)
                band = np.zeros((h, w), np.uint8)
                x0, y0, x1, y1 = _endpoints(line)
                cv2.line(band, (round(x0), round(y0)), (round(x1), round(y1)), 1, 5)
                gx[band > 0], gy[band > 0] = 0.0, 0.0
    return found


def _merge_collinear(pieces: list[tuple], bridged: bool = False) -> list[dict]:
    """Greedy merge of straight pieces (longest first) into lines; a piece joins a line when its
    direction and its centroid's distance to the line (re-fitted after each join) agree. Either
    polarity: a bright scratch crossing a brighter area turns dark there. Each line gets its
    support (summed piece length), extent (t0, t1 along its direction from its centre) and the
    part of its support that is lighter than its sides (`bright`)."""
    pieces = sorted(pieces, key=lambda p: -p[0])
    lines: list[dict] = []
    for length, angle, cx, cy, polarity in pieces:
        for line in lines:
            ux, uy = line["u"]
            px, py = line["centre"]
            if (abs((angle - line["angle"] + 90) % 180 - 90) < (_merge_angle(length) if bridged else _MERGE_ANGLE)
                    and abs((cx - px) * uy - (cy - py) * ux) < _MERGE_OFFSET):
                line["members"].append((length, angle, cx, cy))
                line["bright"] += length * polarity
                _refit(line)
                break
        else:
            line = {"members": [(length, angle, cx, cy)], "bright": length * polarity}
            _refit(line)
            lines.append(line)
    for line in lines:
        (ux, uy), (px, py) = line["u"], line["centre"]
        line["support"] = sum(m[0] for m in line["members"])
        ts = [((m[2] - px) * ux + (m[3] - py) * uy, m[0]) for m in line["members"]]
        line["t0"], line["t1"] = min(t - L / 2 for t, L in ts), max(t + L / 2 for t, L in ts)
    return lines


def _merge_angle(length: float) -> float:
    """How far (degrees) a piece's direction may be from a line's to join it, bridged: a short piece
    measures its angle no better than one pixel over its length (a steep scratch on the pixel grid
    is a staircase of runs a few degrees off it)."""
    return max(_MERGE_ANGLE, float(np.rad2deg(np.arctan(1 / length))))


def _trace(line: dict, ys: np.ndarray, xs: np.ndarray, bright: np.ndarray, direction: np.ndarray,
           short_side: int) -> None:
    """Re-measure a line on the ridge points themselves (within 1 px of it, running its way), not
    only on the straight pieces: a scratch over texture breaks into bits that texture ridges touch
    and thicken, and those bits fail as pieces. The line becomes the longest run of such points
    with no gap over _TRACE_GAP of the short side: its support the positions they cover, its
    geometry their own straight fit (total least squares)."""
    (ux, uy), (px, py) = line["u"], line["centre"]
    dx, dy = xs - px, ys - py
    near = (np.abs(dx * uy - dy * ux) <= 1.0) & (np.abs((direction - line["angle"] + 90) % 180 - 90) <= 10)
    if not near.any():
        return
    t = dx[near] * ux + dy[near] * uy
    pos, first = np.unique(np.rint(t).astype(np.int64), return_index=True)
    breaks = np.nonzero(np.diff(pos) > max(_TRACE_GAP * short_side, _PIECE_MIN))[0]
    starts, ends = np.r_[0, breaks + 1], np.r_[breaks + 1, len(pos)]
    best = int(np.argmax(ends - starts))
    a, b = starts[best], ends[best]
    if b - a <= line["support"]:
        return
    t0, t1 = pos[a] - 0.5, pos[b - 1] + 0.5
    line["support"], line["bright"] = float(b - a), float(bright[near][first][a:b].sum())
    line["t0"], line["t1"] = float(t0), float(t1)
    run = (t >= t0) & (t <= t1)
    fx, fy = xs[near][run].astype(np.float64), ys[near][run].astype(np.float64)
    if len(fx) < 2 * _PIECE_MIN:
        return
    mx, my = fx.mean(), fy.mean()
    vx, vy = np.linalg.eigh(np.cov(np.vstack([fx - mx, fy - my])))[1][:, 1]
    if vx * ux + vy * uy < 0:
        vx, vy = -vx, -vy
    ends_x, ends_y = px + np.array([t0, t1]) * ux - mx, py + np.array([t0, t1]) * uy - my
    line["t0"], line["t1"] = (float(v) for v in ends_x * vx + ends_y * vy)
    line["u"], line["centre"] = (float(vx), float(vy)), (float(mx), float(my))
    line["angle"] = float(np.rad2deg(np.arctan2(-vy, vx)) % 180)


def _retrace(line: dict, ys: np.ndarray, xs: np.ndarray, bright: np.ndarray, direction: np.ndarray,
             short_side: int) -> None:
    """Trace a candidate again until it stops growing: a line fitted to part of a scratch misses its
    far end by a pixel or so, which the re-fitted line reaches (the mask then covers the whole
    scratch). Only candidates, after the tests against their neighbours: a line re-traced freely
    can wander through texture onto another. A re-trace that turns the line is refused."""
    for _ in range(_RETRACE_ROUNDS):
        before = dict(line)
        _trace(line, ys, xs, bright, direction, short_side)
        if line["support"] <= before["support"]:
            return
        if abs((line["angle"] - before["angle"] + 90) % 180 - 90) > _RETRACE_TURN:
            line.clear()
            line.update(before)
            return


def _candidates(lines: list[dict], shape: tuple[int, int]) -> list[dict]:
    """The lines that may be scratches: long for the image, covered enough, mostly lighter than
    their sides, no darker line close beside them, few parallel lines near."""
    h, w = shape
    short = min(h, w)
    out = []
    for line in lines:
        ux, uy = line["u"]
        span = abs(ux) * w + abs(uy) * h  # the image's extent along the line
        if line["support"] < _LINE_SUPPORT * span:
            continue
        if line["support"] / max(line["t1"] - line["t0"], 1.0) < _LINE_COVERAGE:
            continue
        if line["bright"] < _BRIGHT_SHARE * line["support"]:
            continue  # a dark line: a wire, a frame, a stroke of text (scratches on prints are light)
        shades = (other for other in lines if other is not line and other["support"] >= _LINE_SUPPORT * short / 2
                  and other["bright"] < _BRIGHT_SHARE * other["support"])
        if any(_parallel_neighbour(line, other, _MERGE_OFFSET, _PARALLEL_GAP, 0.3) for other in shades):
            continue  # a highlight with its object's dark edge beside it: a rod, a rail, a rim
        family = sum(_parallel_neighbour(line, other, _MERGE_OFFSET, _FAMILY_GAP * short, 0.0)
                     for other in lines if other is not line and other["support"] >= _PIECE_MIN)
        if family > _FAMILY_MAX:
            continue  # one of a family of parallel lines: bricks, blinds, a lattice, a fence
        out.append(line)
    return out


def _clear_of_content_edges(gray: np.ndarray, gx: np.ndarray, gy: np.ndarray, line: dict) -> bool:
    """A scratch lies on the print, not in the scene: beside it (3-12 px either side) the image has
    no edges running along it, whatever it crosses. A content line does: a rail, a rim, a facade's
    edge, a pipe's highlight belong to an object whose other edges run parallel to them. Measured
    at each step along the line as the excess of the across-line over the along-line gradient
    energy in the two side bands (isotropic texture cancels), and compared, as a median along the
    line, with the line's own contrast against its sides (3-5 px each side)."""
    (ux, uy), (px, py) = line["u"], line["centre"]
    nx, ny = -uy, ux
    ts = np.arange(line["t0"], line["t1"], 1.0, dtype=np.float32)
    xs, ys = px + ts * ux, py + ts * uy  # (samples past the image's border are reflected)
    prof = _sample(gray, xs, ys, nx, ny, np.arange(-5, 6, dtype=np.float32))
    contrast = float(np.median(prof[:, 4:7].max(1) - (prof[:, :3].mean(1) + prof[:, -3:].mean(1)) / 2))
    if contrast <= 0:
        return False
    band = np.r_[-np.arange(*_SIDE_BAND), np.arange(*_SIDE_BAND)].astype(np.float32)
    sx, sy = _sample(gx, xs, ys, nx, ny, band), _sample(gy, xs, ys, nx, ny, band)
    across, along = (sx * nx + sy * ny) ** 2, (sx * ux + sy * uy) ** 2
    aligned = float(np.median(np.sqrt(np.maximum((across - along).mean(1), 0))))
    return aligned <= _ALIGNED_EDGES * contrast


def _follow_to_border(gray: np.ndarray, line: dict) -> list[np.ndarray]:
    """Where a scratch's end lies within _BORDER_NEAR px of the scan's edge, follow the scratch on
    to the edge: per end followed, the points (x, y) of its course from the traced end on.
    A scratch running out along the edge (the demo coffee's lies in column 0 for its last 40 rows)
    has no ridge there, since the outermost column has one side only, and a line fitted to the
    ridge points beside it runs a pixel or two inside. So the course is tracked: at each step
    along the line the lightest of the positions within 1 px of the last one, up to _BORDER_DRIFT
    px off the line, as long as it is lighter than the image on the inner side (3-5 px in) by half
    the line's own contrast there; gaps up to _BORDER_GAP px (a speck on it)."""
    h, w = gray.shape
    (ux, uy), (px, py) = line["u"], line["centre"]
    nx, ny = -uy, ux
    ts = np.arange(line["t0"], line["t1"], 1.0, dtype=np.float32)
    inside = lambda x, y: -0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5
    courses = []
    for key, step in (("t0", -1.0), ("t1", 1.0)):
        ex, ey = px + line[key] * ux, py + line[key] * uy
        if min(ex, ey, w - 1 - ex, h - 1 - ey) > _BORDER_NEAR:
            continue
        # the inner side: the normal's direction that leads away from the nearest border
        depth = lambda x, y: min(x, y, w - 1 - x, h - 1 - y)
        side = 1.0 if depth(ex + 3 * nx, ey + 3 * ny) >= depth(ex - 3 * nx, ey - 3 * ny) else -1.0
        inner = np.array([3, 4, 5], np.float32) * side
        near_end = ts[::-1][:30] if step > 0 else ts[:30]
        ref = _sample(gray, px + near_end * ux, py + near_end * uy, nx, ny, np.r_[np.float32(0), inner])
        contrast = float(np.median(ref[:, 0] - ref[:, 1:].mean(1)))
        if contrast <= 0:
            continue
        t, offset, gap, tail = line[key], 0.0, 0, []
        while gap <= _BORDER_GAP:
            t += step
            bx, by = px + t * ux, py + t * uy
            tries = [o for o in (offset - 1, offset, offset + 1) if abs(o) <= _BORDER_DRIFT
                     and inside(bx + o * nx, by + o * ny)]
            if not tries:
                break
            across = lambda offsets: _sample(gray, np.array([bx], np.float32), np.array([by], np.float32),
                                             nx, ny, np.asarray(offsets, np.float32))[0]
            values = across(tries)
            best = tries[int(np.argmax(values))]
            if values.max() - across(best + inner).mean() >= 0.5 * contrast:
                offset, gap = best, 0
                tail.append((bx + best * nx, by + best * ny))
            else:
                gap += 1
        if tail:
            courses.append(np.array([(ex, ey), *tail], np.float32))
    return courses


def _sample(img: np.ndarray, xs: np.ndarray, ys: np.ndarray, nx: float, ny: float, d: np.ndarray) -> np.ndarray:
    """img at the points (xs, ys) + d * normal: one row per point, one column per offset."""
    mx = (xs[:, None] + d[None, :] * nx).astype(np.float32)
    my = (ys[:, None] + d[None, :] * ny).astype(np.float32)
    return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _mask_width(gray: np.ndarray, line: dict) -> int:
    """The odd width (px) to mask: the offsets across the line where its median profile stands at
    least half its peak above the sides (1 for a one-pixel scratch on the line's axis, 3 when it
    falls between two pixels). A wider mask would also take the image beside the scratch."""
    (ux, uy), (px, py) = line["u"], line["centre"]
    ts = np.arange(line["t0"], line["t1"], 1.0, dtype=np.float32)
    offsets = np.arange(-4, 5, dtype=np.float32)
    prof = np.median(_sample(gray, px + ts * ux, py + ts * uy, -uy, ux, offsets), axis=0)
    excess = prof - (prof[:2].mean() + prof[-2:].mean()) / 2
    centre = 4 + int(np.argmax(np.abs(excess[3:6]))) - 1
    excess *= np.sign(excess[centre]) or 1.0
    over = excess >= _WIDTH_SHARE * excess[centre]
    left = right = centre
    while left > 0 and over[left - 1]:
        left -= 1
    while right < len(over) - 1 and over[right + 1]:
        right += 1
    return min((right - left + 1) | 1, _MAX_WIDTH)


def _endpoints(line: dict) -> tuple[float, float, float, float]:
    (ux, uy), (px, py) = line["u"], line["centre"]
    return px + line["t0"] * ux, py + line["t0"] * uy, px + line["t1"] * ux, py + line["t1"] * uy


def _parallel_neighbour(line: dict, other: dict, gap_min: float, gap_max: float, overlap_min: float) -> bool:
    """`other` runs parallel to `line`, gap_min-gap_max px away, alongside it (overlapping more than
    overlap_min of its extent)."""
    if abs((other["angle"] - line["angle"] + 90) % 180 - 90) >= _PARALLEL_ANGLE:
        return False
    (ux, uy), (px, py) = line["u"], line["centre"]
    ox, oy = other["centre"]
    offset = abs((ox - px) * uy - (oy - py) * ux)
    along = (ox - px) * ux + (oy - py) * uy
    o0, o1 = along + other["t0"], along + other["t1"]
    overlap = min(o1, line["t1"]) - max(o0, line["t0"])
    return gap_min <= offset <= gap_max and overlap > overlap_min * (line["t1"] - line["t0"])


def _refit(line: dict) -> None:
    """Length-weighted direction (doubled-angle mean) and centroid of a line's pieces."""
    m = np.array(line["members"], dtype=np.float64)
    weights, angles = m[:, 0], np.deg2rad(m[:, 1])
    mean = np.angle((weights * np.exp(2j * angles)).sum()) / 2
    line["angle"] = float(np.rad2deg(mean) % 180)
    line["u"] = (float(np.cos(mean)), float(-np.sin(mean)))
    line["centre"] = (float(np.average(m[:, 2], weights=weights)), float(np.average(m[:, 3], weights=weights)))
