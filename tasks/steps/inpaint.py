"""Dust and scratch removal from a detected mask.

Methods:
  spline      (default) a spline in tension: (1 - T) L^2 u - T L u = 0 inside the mask, L the
              5-point Laplacian, T = 1/3, the known pixels within 2 px as boundary values (GMT's
              `surface` equation). Between the two below: it follows the slope of what it meets
              like the biharmonic fill, but overshoots less where that slope is a mark's soft rim.
  biharmonic  T = 0: the smoothest fill in value and slope; identical to scikit-image's
              inpaint_biharmonic before clipping (it clips each channel to its own range, this
              to [0, 1]), built as one sparse system: 1.0 s instead of 8.3 s on a 24 MP scan.
  harmonic    T = 1 (Laplace's equation): linear interpolation across a thin line.
  telea, ns   OpenCV's fast-marching (Telea) and Navier-Stokes inpainting, `radius` px around.

bench/inpainting.py (35 photos: McMaster, CBSD68 every sixth, Set5 HR; PSNR inside the true mask
in dB / pixels of it still > 20 levels off, per image; spline against telea radius 3):
  opaque 1 px bright lines and dark dust, true mask          27.33 / 248   vs 25.25 / 367
    the same on x4 thumbnails                                23.85 / 155   vs 21.96 / 210
  soft marks (tasks.demo.damage: semi-opaque, blurred,
    curved, fibres, specks), true mask grown by 1 px         22.96 / 635   vs 21.99 / 681
    the same on x4 thumbnails                                20.05 / 318   vs 19.04 / 349
  opaque lines, the classical detector's mask grown by 1     16.79 / 549   vs 16.70 / 592
(damaged: 7.7 / 1018 and 11.9 / 2001). With the detector's mask the gap is small because the
mask misses half the damage (recall 0.43 full size, 0.22 on thumbnails, 0.05 on the soft
marks): detection, not the fill, is what leaves damage behind. Caveat: on soft marks with the
mask not grown (dilate 0) the rim's half-damaged pixels set the slope and the spline loses
(21.86 / 899 against Telea's 23.22 / 595): keep dilate >= 1. With grain (sigma 6 in the photo,
12 photos, --quick --grain 6) the lead narrows: opaque lines, true mask 25.21 vs 24.47 dB; soft
marks, dilate 1, 21.67 vs 21.33 dB but 896 vs 840 pixels left. T = 1/3 was picked on 12 of the
photos among 0.2, 1/3, 0.5 and 0.67 (within 0.25 dB of each other with dilate 1) and held on 12
others. Tried on 12 photos and dropped (no gain, or worse): the boundary smoothed first, the
fill clamped to its neighbours' range, an edge-directed fill; the bench keeps a per-pixel
median (worse). Speed, 6000 x 4000 RGB, 4 long 5 px scratches and 60 specks (110 000 px with
dilate 1) on the shared 2-core machine: spline 1.0 s, Telea 2.9 s, NS 2.6 s.

Specks are filled as found (`footprint`): the classical detector measures a speck's extent, and
growing it only swaps the good pixels around it for a smooth guess. On bench/diagnosis.py's dust
case (12 photos, 25 drawn specks each) the drawn pixels left more than 20 levels off go 1,203 ->
1,020 (PSNR inside them 17.14 -> 17.32 dB); with the true mask, dilate 0 leaves 740 against 1,076
at dilate 1. Lines still grow: the detector's line is a fit, and its rim is where the fit misses
(scratches, dilate 0: 3,644 left; dilate 1: 3,389).

On a JPEG that keeps its colour at half resolution (4:2:0) the pipeline fills the colour (YCbCr's
Cb and Cr) inside the mask grown a pixel further than the lightness (`chroma_dilate`): one colour
sample spans two pixels, so a dark speck's grey tints the scene beyond the edge that the detector
measures on the lightness (the demo coffee's specks kept a blue-grey rim). The 91 bench photos with
3 scratches and 15 specks drawn, saved at quality 88 and masked by QA: PSNR inside the damage 21.60
-> 21.75 dB, drawn pixels left more than 20 levels off 45,787 -> 42,976, specks left 566 -> 538
(with grain of sigma 6: 21.11 -> 21.21 dB, 53,135 -> 50,463); two pixels further is worse than one
(21.71 dB). With the true mask grown by 1 px instead, one pixel further is neutral (23.19 -> 23.17
dB, 52,737 -> 54,258 pixels left, specks left 449 -> 437): what it mends is the colour the detector's
mask leaves at its rim. There the specks' lightness is filled as found too, while their colour
grows with the rest (it spreads past the extent measured on the grey): on the same 91 photos 21.75
-> 21.81 dB inside the damage, 37.17 -> 37.39 dB over the whole photo (the scene's own dark dots
that QA takes for dust lose less), pixels left 42,769 -> 42,100, specks left 538 -> 472 (grain
sigma 6: 21.21 -> 21.26 dB, 36.51 -> 36.74 dB, 580 -> 509); the colour of the specks grown by only
1 px gives 21.79 dB and 497 specks left. The cost, a 6000 x 4000 scan with 4 scratches across it and 60 specks: two
sparse systems instead of one, 1.45 -> 3.07 s, and 464 -> 891 MiB traced at the peak (the box
holding the mask, in YCbCr); below what the upscale step holds later (bench/large_scan.py).

cv2.inpaint takes 8-bit images of 1 or 3 channels, or 16-bit and float32 images of one channel
only (checked on OpenCV 5.0). Each channel is therefore inpainted as float32 on its own: no
rounding to 8 bits, so a 16-bit scan keeps its precision, and Telea/NS treat the channels
independently anyway. Telea on floats in [0, 1] returns garbage (values up to 1.9 on a real
photo: its weights assume 8-bit magnitudes), so the channels go in on the 0-255 scale, where
it matches the 8-bit result to within 2.4 levels. The sparse solvers work in float64 on all
channels at once (one LU, three right-hand sides). Pixels outside the (dilated) mask are
copied from the input bit for bit.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

Method = Literal["spline", "biharmonic", "harmonic", "telea", "ns"]
METHODS: tuple[str, ...] = ("spline", "biharmonic", "harmonic", "telea", "ns")
SPLINE_TENSION = 1 / 3  # see above: picked on the bench among 0.2-0.67
_TENSION = {"spline": SPLINE_TENSION, "biharmonic": 0.0, "harmonic": 1.0}
_OPENCV = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_DIRECT_MAX_PX, _THICK_PX = 20_000, 16


def dilate_mask(mask: np.ndarray, dilate: int, footprint: np.ndarray | None = None) -> np.ndarray:
    """Grow the mask by `dilate` px (elliptical element): detectors miss a scratch's soft rim.

    `footprint`: pixels of the mask filled as found, not grown: specks whose measured extent already
    covers them. Growing a speck only swaps the good pixels around it for a smooth guess (see the
    module doc)."""
    grow = mask if footprint is None else mask & ~footprint
    m: np.ndarray = grow.astype(np.uint8)
    if dilate > 0:
        element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        m = cv2.dilate(m, element)
    grown = m.astype(bool)
    return grown if footprint is None else grown | (mask & footprint)


def _laplacian(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int], columns: np.ndarray) -> sp.csr_matrix:
    """5-point Laplacian at the pixels (ys, xs) as rows over the pixels `columns` (sorted linear
    indices holding every neighbour of the rows). At the image's edge only the neighbours inside
    count (no flux across it), as in scikit-image."""
    h, w = shape
    n = len(ys)
    rows, cols = [], []
    degree = np.zeros(n)
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        degree += inside
        rows.append(np.flatnonzero(inside))
        cols.append(np.searchsorted(columns, ny[inside] * w + nx[inside]))
    rows.append(np.arange(n))
    cols.append(np.searchsorted(columns, ys * w + xs))
    values = np.concatenate([np.ones(sum(len(r) for r in rows[:-1])), -degree])
    return sp.csr_matrix((values, (np.concatenate(rows), np.concatenate(cols))), shape=(n, len(columns)))


def _solve(img: np.ndarray, mask: np.ndarray, tension: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The masked pixels of img (H x W x C float32) as (ys, xs, values N x C float64) that solve
    (1 - T) L^2 u - T L u = 0 there, the pixels around them the boundary values: the biharmonic
    equation at T = 0, Laplace's at T = 1, a spline in tension between (GMT's `surface`). One
    sparse LU, the channels its right-hand sides."""
    shape, width = mask.shape, mask.shape[1]
    ring1 = cv2.dilate(mask.astype(np.uint8), _CROSS)  # what L at the mask reaches
    ring2 = cv2.dilate(ring1, _CROSS) if tension < 1 else ring1  # what L^2 reaches
    oy, ox = np.nonzero(ring2)  # the one full-size scan: subsets of it stay in row-major order
    columns = oy * width + ox
    unknown = mask[oy, ox]
    ys, xs = oy[unknown], ox[unknown]
    op = -tension * _laplacian(ys, xs, shape, columns)
    if tension < 1:
        in1 = ring1[oy, ox].astype(bool)
        y1, x1 = oy[in1], ox[in1]
        op = op + (1 - tension) * (_laplacian(ys, xs, shape, columns[in1]) @ _laplacian(y1, x1, shape, columns))
    system = op.tocsc()
    rhs = -(system[:, ~unknown] @ img[oy[~unknown], ox[~unknown]].astype(np.float64))
    # COLAMD: MMD on A^T + A takes 20 s instead of 0.2 s on the 24 MP bench's harmonic system
    return ys, xs, np.asarray(spla.splu(system[:, unknown].tocsc()).solve(rhs))


def _large_holes(inside: np.ndarray) -> np.ndarray:
    """The masked pixels of holes too big for the sparse LU: parts more than 2 * _THICK_PX across
    (out to their edge) that hold over _DIRECT_MAX_PX pixels together. LU fill-in grows fast
    with a hole's area (a 400 x 400 px hole: 4.4 s, 600 x 600: 13 s), not with a line's length
    (110 000 px of scratches on the 24 MP bench scan: 0.5 s), so a scratch crossing such a hole
    keeps the spline outside it."""
    big = np.zeros(inside.shape, bool)
    if cv2.countNonZero(inside.view(np.uint8)) <= _DIRECT_MAX_PX:
        return big
    core = (cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3) > _THICK_PX).astype(np.uint8)
    if not core.any():
        return big
    ys, xs = np.nonzero(core)
    pad = _THICK_PX + 2
    top, left = max(0, ys.min() - pad), max(0, xs.min() - pad)
    bottom, right = ys.max() + pad + 1, xs.max() + pad + 1
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1, 2 * pad + 1))
    thick = cv2.dilate(core[top:bottom, left:right], element).astype(bool) & inside[top:bottom, left:right]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(thick.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] > _DIRECT_MAX_PX
    keep[0] = False  # the background
    big[top:bottom, left:right] = keep[labels]
    return big


def _opencv(crop: np.ndarray, inside: np.ndarray, method: str, radius: int) -> np.ndarray:
    """cv2.inpaint per channel on the 0-255 float scale (see the module's docstring)."""
    mcrop = inside.astype(np.uint8) * 255
    return np.stack(
        [cv2.inpaint(crop[:, :, c] * 255.0, mcrop, float(radius), _OPENCV[method]) for c in range(crop.shape[2])],
        axis=2,
    ) / 255.0


def inpaint(
    rgb: np.ndarray, mask: np.ndarray, *, method: Method = "spline", radius: int = 3, dilate: int = 1,
    footprint: np.ndarray | None = None, chroma_dilate: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fill the masked pixels of float RGB in [0, 1] (HxWx3) from their surroundings.

    `mask`: HxW, true where dust or a scratch is. `dilate`: px the mask grows by first, except
    its `footprint` pixels (HxW bool or None: specks filled as found, see dilate_mask).
    `chroma_dilate`: px (at least `dilate`) the mask grows by for the colour (YCbCr's Cb and Cr):
    the lightness is then filled inside the mask grown by `dilate` (the footprint as found), the
    colour inside the whole mask grown by `chroma_dilate` (a 4:2:0 JPEG's colour of a speck
    reaches further than its grey, see the module doc).
    `radius`: the neighbourhood each filled pixel draws from, for telea and ns, and for the
    Telea fill that the sparse methods leave holes over 20 000 px and 32 px across to (not dust
    or scratches; `telea_pixels` in the parameters counts them). Returns (image, parameters
    used); pixels outside the grown mask are the input's, bit for bit.
    """
    if method not in METHODS:
        raise ValueError(f"unknown inpainting method {method!r} (expected one of {', '.join(METHODS)})")
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match the image's {rgb.shape[:2]}")
    colour_dilate = dilate if chroma_dilate is None else chroma_dilate
    if colour_dilate < dilate:
        raise ValueError(f"chroma_dilate {chroma_dilate} is below dilate {dilate}: the colour's mask holds the lightness's")
    split = colour_dilate != dilate
    grown = dilate_mask(mask, dilate, footprint)
    # the colour's own mask grows whole: a speck's colour spreads past the extent measured on its grey
    colour = dilate_mask(mask, colour_dilate) if split else grown
    count = cv2.countNonZero(colour.view(np.uint8))  # it holds `grown`
    params: dict[str, Any] = {
        "method": method, "radius": int(radius), "dilate": int(dilate), "masked_pixels": count,
        "masked_share": round(count / grown.size, 6),
    }
    if chroma_dilate is not None:
        params["chroma_dilate"] = int(chroma_dilate)
    if method in _TENSION:
        params["tension"] = round(_TENSION[method], 4)
    if footprint is not None:
        params["not_grown_pixels"] = int(np.count_nonzero(mask & footprint))
    if count == 0:
        return rgb, params
    src = rgb.astype(np.float32, copy=False)
    out = src.copy()
    if not split:
        telea = _fill(out, grown, method, radius)
    else:
        # lightness and colour filled apart, each inside its own mask (a linear change of channels:
        # with equal masks this is the RGB fill), over the colour's box, which holds both
        box = _box(colour, int(radius) + 2)
        ycc = cv2.cvtColor(src[box], cv2.COLOR_RGB2YCrCb)
        luma, chroma = ycc[:, :, :1].copy(), ycc[:, :, 1:].copy()
        del ycc  # a 24 MP scan's box: 288 MB
        _fill(luma, grown[box], method, radius)
        telea = _fill(chroma, colour[box], method, radius)  # the larger mask: its large holes hold the other's
        inside = colour[box]
        filled = np.concatenate([luma[inside], chroma[inside]], axis=1)[None]  # 1 x N x 3
        out[box][inside] = np.clip(cv2.cvtColor(filled, cv2.COLOR_YCrCb2RGB)[0], 0.0, 1.0)
    if telea:
        params["telea_pixels"] = telea
    return out, params


def _box(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    """The mask's bounding box grown by `pad` px (what a fill reads around it), within the image."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return (slice(max(0, y - pad), min(mask.shape[0], y + h + pad)),
            slice(max(0, x - pad), min(mask.shape[1], x + w + pad)))


def _fill(img: np.ndarray, grown: np.ndarray, method: str, radius: int) -> int:
    """Fill the pixels of `grown` in img (H x W x C float32) in place by `method`; the number of
    pixels in holes too large for the sparse solvers, filled by Telea instead (see _large_holes)."""
    if not grown.any():
        return 0
    # Only the masked pixels' bounding box (plus what the fill reads around it) matters.
    pad = int(radius) + 2
    box = _box(grown, pad)
    region, inside = img[box], grown[box]
    if method in _OPENCV:
        region[inside] = np.clip(_opencv(region, inside, method, radius)[inside], 0.0, 1.0)
        return 0
    large = _large_holes(inside)
    if large.any():
        # Telea over the whole mask around them (so no damaged pixel is read as known), kept
        # in the large holes only; the spline then meets those filled values as its boundary
        ys, xs = np.nonzero(large)
        t, b = max(0, ys.min() - pad), ys.max() + pad + 1
        lft, r = max(0, xs.min() - pad), xs.max() + pad + 1
        filled = _opencv(region[t:b, lft:r], inside[t:b, lft:r], "telea", radius)
        sub = region[t:b, lft:r]
        sub[large[t:b, lft:r]] = np.clip(filled[large[t:b, lft:r]], 0.0, 1.0)
        inside = inside & ~large
    if inside.any():
        # the biharmonic part overshoots a little at hard edges: clipped like the others
        ys, xs, values = _solve(region, inside, _TENSION[method])
        region[ys, xs] = np.clip(values, 0.0, 1.0)
    return int(large.sum())
