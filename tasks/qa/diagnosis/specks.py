"""Specks: dust counted, and the opaque specks a damaged print's cleanup masks.

Dust. Black/white top-hat residues (7x7) above a contrast of 0.25 that are small (≤ 30 px,
≤ 7 px across) and isolated: their residue is 20x the mean residue of their 15x15
surroundings, so specks in texture (foliage, gravel) are not counted. This is conservative:
it finds specks on smooth areas (where they show), about a quarter of specks strewn at random.
Their count (`dust_count`) is reported, not masked: clean photographs have as many as dusty ones
(91 bench photos: median 12, p90 69; with 25 specks drawn 19 and 79), and a print that had more
than 95 (the rule until 2026-12-07) was as often clean texture (3 of 91 clean photos, RNI15's
Flowers) as dusty (5 of 91 with 25 specks drawn).

Opaque specks. On a damaged print dark specks are looked for at a
lower isolation bar (4x instead of 20x), at dust's residue of 0.25 and again at 0.12: black-hat
specks whose darkest pixel is near black (< 0.12), colourless there (CIELab chroma < 6: the
scene's dark details carry its hues) and darker by 0.1 than everything within 3 px of them
(stained glass's lead joints and the ends of dark lines sit in darkness; dust sits on the scene),
up to 8 px across at the first residue (two specks touching), 7 at the second.
A JPEG that keeps its colour at half resolution (4:2:0) shows no colour at that scale: a grey
speck there takes the hue of what surrounds it, so the test asks only that the core's chroma be
what it lies on, thinned (see _diluted; the demo's coffee scan: 24 of 25 specks, not 1). On other
files that looser test would quadruple the false specks (3.1 -> 11.3 per clean photo); on JPEG
(q88, 4:2:0) copies of the clean photos it costs 9.6 false specks per photo instead of 2.7, paid
only where a scratch was found.
On the 56 held-out CBSD68 photos it finds about half the specks strewn there. The second residue
finds specks on mid-grey areas (the demo scans: 76 of 109 specks instead of 60) for 1.95 false
specks per clean photo instead of 1.38 (0.29 instead of 0.11 on x4 thumbnails), where a scratch
was found; alone, 0.12 merges specks with dark detail beside them (issue 22, bench/RESULTS.md).
A print without scratch lines counts as damaged where at least 5 opaque specks stand out as
dust does (see standing_out): a scene's own near-black dots (pupils, pebbles, gaps in foliage)
sit in texture or shadow; dust lands anywhere, smooth areas too.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np

_DUST_CONTRAST = 0.25
_DUST_ISOLATION = 20.0
_DUST_MAX_AREA, _DUST_MAX_SIDE, _DUST_WINDOW = 30, 7, 15
# Opaque specks, dust on a damaged print (see opaque_specks)
_OPAQUE_DARK, _OPAQUE_CHROMA, _OPAQUE_ISOLATION = 0.12, 6.0, 4.0
_DILUTED = 0.8  # see _diluted
# source px a speck's grey spreads past it in a JPEG with its colour at half resolution (4:2:0, 4:2:2):
# one colour sample spans two pixels (demo: 1 px leaves 3 of 22 specks; 0, 2, 3 px: 6, 3, 4). The
# cleanup grows the colour's mask this much further too (tasks.steps.plan).
CHROMA_REACH = 1
# Their black-hat residue, at dust's 0.25 and again lower (see opaque_specks): a near-black speck
# on a mid-grey area shows too (0.25 alone missed 49 of the demo scans' 109 specks)
_OPAQUE_CONTRASTS = (_DUST_CONTRAST, 0.12)
# and the px across a speck may be at each: two specks touching (the demo cat's, 6 x 8 px at the
# scan's edge) pass at the higher; at the lower, 8 px lets a speck merged with a dark edge beside it in
_OPAQUE_MAX_SIDES = (8, _DUST_MAX_SIDE)
# A speck's core must be this much darker than the darkest of its 7 px ring (a dark joint ends dark
# lines; dust sits on the scene). 0.1 left 10 of the demo cameraman's 25 specks on his dark coat
# (ring 0.09-0.16); 0.05 leaves 3, and bench/quality.py's scratches row gains 0.07 dB.
_RING, _RING_GAP = 7, 0.05

# A print without scratch lines is dusty when at least PRINT_DUST_MIN of its opaque specks stand
# out: _STAND_OUT darker than the 11 px median around them, their residue _STAND_ALONE x the mean
# residue (black- plus top-hat) of their 31 px surroundings. Clean scenes' opaque specks sit in
# texture and shadow (foliage, gravel, a dark coat's folds); dust lands anywhere, smooth areas too.
# Measured on bench/diagnosis.py's 91 photos with 25 drawn dust specks (issue 22, bench/RESULTS.md).
_STAND_OUT, _STAND_ALONE, PRINT_DUST_MIN = 0.3, 5.0, 5
_STAND_MEDIAN, _STAND_WINDOW = 11, 31


def residues(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The grey view's black-hat and top-hat residues (7 px disc): what is darker or lighter than
    its surroundings at speck scale. Computed once per scan for every speck test here."""
    se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    return cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, se), cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, se)


def _isolated_specks(residue: np.ndarray, contrast: float, isolation: float,
                     max_side: int = _DUST_MAX_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Small specks of a `residue` (black-hat: dark, top-hat: light) above `contrast` whose
    peak residue is `isolation` x the mean residue of their surroundings: the component labels
    and the kept labels."""
    win = _DUST_WINDOW
    on = (residue > contrast).astype(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(on, connectivity=8)
    area, bw, bh = stats[:, 4], stats[:, 2], stats[:, 3]
    cand = (area >= 2) & (area <= _DUST_MAX_AREA) & (np.maximum(bw, bh) <= max_side)
    cand[0] = False
    idx = np.nonzero(cand)[0]
    if not len(idx):
        return labels, idx
    # mean residue of the surroundings: window sum minus the speck's own (dilated) footprint
    foot = cv2.dilate(on, np.ones((3, 3), np.uint8)).astype(np.float32)
    total_sum = cv2.boxFilter(residue, -1, (win, win), normalize=False)
    own_sum = cv2.boxFilter(foot * residue, -1, (win, win), normalize=False)
    own_n = cv2.boxFilter(foot, -1, (win, win), normalize=False)
    cx = np.clip(np.rint(centroids[idx, 0]).astype(int), 0, residue.shape[1] - 1)
    cy = np.clip(np.rint(centroids[idx, 1]).astype(int), 0, residue.shape[0] - 1)
    around = (total_sum[cy, cx] - own_sum[cy, cx]) / np.maximum(win * win - own_n[cy, cx], 1)
    peak = np.zeros(n, np.float32)
    # int32 labels: OpenCV's stubs type every array it returns as integer-or-float
    np.maximum.at(peak, cast("np.ndarray", labels).ravel(), residue.ravel())
    return labels, idx[peak[idx] > isolation * np.maximum(around, 1e-3)]


def dust(hats: tuple[np.ndarray, np.ndarray]) -> tuple[int, np.ndarray]:
    """Isolated small high-contrast specks, dark or light (see residues): their count and a mask
    at the analysis scale."""
    total, mask = 0, np.zeros(hats[0].shape, np.uint8)
    for residue in hats:
        labels, isolated = _isolated_specks(residue, _DUST_CONTRAST, _DUST_ISOLATION)
        total += len(isolated)
        mask |= _labels_mask(labels, isolated)
    return total, mask


def opaque_specks(rgb: np.ndarray, gray: np.ndarray, black_hat: np.ndarray, subsampled: bool = False,
                   scale: float = 1.0) -> tuple[int, np.ndarray]:
    """Specks an opaque particle would leave: dark, near black at their core and without colour
    of their own (the scene's dark details carry its hues), isolated at a lower bar than _dust's.
    Their count and a mask at the analysis scale. Looked for at two residues: a lower one finds
    specks on mid-grey areas, but merges a speck with the dark detail beside it into a component
    too large to be one, which the higher one keeps apart. `subsampled`: a JPEG's colour at half
    resolution (see _diluted); `scale`: analysis px per scan px."""
    chroma = _ycbcr_chroma(rgb) if subsampled and rgb.ndim == 3 else None
    mask: np.ndarray = np.zeros(gray.shape, np.uint8)
    for contrast, max_side in zip(_OPAQUE_CONTRASTS, _OPAQUE_MAX_SIDES, strict=True):
        mask |= _opaque_specks_at(rgb, gray, black_hat, contrast, chroma, max_side)
    count = cv2.connectedComponents(mask, connectivity=8)[0] - 1
    reach = round(CHROMA_REACH * scale)
    if subsampled and reach:  # the speck's grey spreads as far as the half-resolution colour reaches
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    return count, mask


def _opaque_specks_at(rgb: np.ndarray, gray: np.ndarray, black_hat: np.ndarray, contrast: float,
                      chroma: np.ndarray | None,
                      max_side: int = _DUST_MAX_SIDE) -> np.ndarray:
    labels, cand = _isolated_specks(black_hat, contrast, _OPAQUE_ISOLATION, max_side=max_side)
    if not len(cand):
        return np.zeros(gray.shape, np.uint8)
    n = labels.max() + 1
    flat_labels, flat_gray = labels.ravel(), gray.ravel()
    # each candidate's darkest pixel, sorting only the candidates' pixels (a large scan's view has
    # thousands of residue components, nearly all refused by their size already)
    is_cand = np.zeros(n, bool)
    is_cand[cand] = True
    pixels = np.flatnonzero(is_cand[flat_labels])
    order = pixels[np.lexsort((flat_gray[pixels], flat_labels[pixels]))]  # by label, darkest first
    core = np.zeros(n, np.intp)
    core[cand] = order[np.searchsorted(flat_labels[order], cand)]
    darkest = flat_gray[core]
    own_colour = np.zeros(n, bool)
    if rgb.ndim == 3:  # CIELab chroma at the core: its rim takes the colour of what it lies on
        lab = cv2.cvtColor(np.ascontiguousarray(rgb.reshape(-1, 3)[core][None], np.float32), cv2.COLOR_RGB2Lab)[0]
        own_colour = np.hypot(lab[:, 1], lab[:, 2]) >= _OPAQUE_CHROMA
        if chroma is not None:
            own_colour &= ~_diluted(chroma, labels, core)
    # what lies around it: a speck of dust sits on the scene, a dark joint ends dark lines
    foot = cv2.dilate((labels > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ring = cv2.erode(np.where(foot, 1.0, gray).astype(np.float32), np.ones((_RING, _RING), np.uint8))
    ring_dark = np.full(n, np.inf, np.float32)
    np.minimum.at(ring_dark, labels.ravel(), ring.ravel())
    kept = cand[(darkest[cand] < _OPAQUE_DARK) & ~own_colour[cand]
                & (ring_dark[cand] - darkest[cand] > _RING_GAP)]
    return _labels_mask(labels, kept)


def standing_out(gray: np.ndarray, hats: tuple[np.ndarray, np.ndarray], specks: np.ndarray) -> int:
    """How many components of `specks` (uint8 mask at the analysis scale) stand out from the scene
    as dust does: much darker than its local median, alone in a quiet neighbourhood."""
    n, labels, _, centroids = cv2.connectedComponentsWithStats(specks, connectivity=8)
    if n <= 1:
        return 0
    residue = hats[0] + hats[1]
    elsewhere = 1 - cv2.dilate(specks, np.ones((5, 5), np.uint8)).astype(np.float32)
    win = (_STAND_WINDOW, _STAND_WINDOW)
    around = cv2.boxFilter(residue * elsewhere, -1, win, normalize=False) / np.maximum(
        cv2.boxFilter(elsewhere, -1, win, normalize=False), 1)
    median = cv2.medianBlur(np.clip(np.rint(gray * 255), 0, 255).astype(np.uint8), _STAND_MEDIAN)
    darkest = np.full(n, np.inf, np.float32)
    np.minimum.at(darkest, cast("np.ndarray", labels).ravel(), gray.ravel())
    cx = np.clip(np.rint(centroids[1:, 0]).astype(int), 0, gray.shape[1] - 1)
    cy = np.clip(np.rint(centroids[1:, 1]).astype(int), 0, gray.shape[0] - 1)
    contrast = median[cy, cx].astype(np.float32) / 255 - darkest[1:]
    return int(((contrast > _STAND_OUT) & (contrast > _STAND_ALONE * np.maximum(around[cy, cx], 1e-3))).sum())


def _ycbcr_chroma(rgb: np.ndarray) -> np.ndarray:
    """Distance from grey in the Cb/Cr plane (0-0.5), the plane a JPEG subsamples."""
    ycc = cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2YCrCb)
    return np.hypot(ycc[..., 1] - 0.5, ycc[..., 2] - 0.5)


def _diluted(chroma: np.ndarray, labels: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Per label, whether the core's colour is what it lies on, thinned towards grey: its YCbCr
    chroma at most _DILUTED x the mean of its 15x15 surroundings' (the footprint left out). A JPEG
    keeps colour at half resolution (4:2:0), so a grey speck a few px across takes the hue of the
    scene around it. Looser than the CIELab test: a shadow is thinner in colour than its setting
    too, so it is asked only where colour at a speck's scale cannot be seen at all."""
    win = _DUST_WINDOW
    outside = (cv2.dilate((labels > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) == 0).astype(np.float32)
    around = cv2.boxFilter(chroma * outside, -1, (win, win), normalize=False) / np.maximum(
        cv2.boxFilter(outside, -1, (win, win), normalize=False), 1)
    flat_chroma, flat_around = chroma.ravel(), around.ravel()
    return flat_chroma[core] <= _DILUTED * flat_around[core]


def _labels_mask(labels: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """uint8 mask of the components of `labels` whose numbers are in `kept`."""
    keep = np.zeros(int(labels.max()) + 1, bool)
    keep[kept] = True
    return keep[labels].astype(np.uint8)
