"""Scratches and dust: the `scratches` finding and the cleanup's damage mask.

Both are looked for on one grey view of the scan, its long side at most 1536 px:
  - scratch lines (tasks.qa.diagnosis.scratch_lines): thin long light lines across the print;
  - specks (tasks.qa.diagnosis.specks): dust counted, and opaque specks (near black, colourless,
    isolated) found.

A damaged print is one with a scratch line, or one where at least 5 opaque specks stand out as
dust does (specks.standing_out): a scene's own near-black dots (pupils, pebbles, gaps in foliage)
sit in texture or shadow; dust lands anywhere, smooth areas too.

The mask (bool, full resolution) covers the scratch lines, drawn over their whole extent so an
inpainter also closes the gaps, at the width the line's median profile measures (offsets where
it stands at least half its peak above the sides, odd, at most 3 px at the analysis scale: the
old fixed 3 px also took the image beside a 1 px scratch), on along the scan's edge where a line
runs out into it (scratch_lines._follow_to_border: the demo coffee's last scratch;
bench/diagnosis.py as inpainted, median recall 0.964 -> 0.978 at the same precision), plus the
opaque specks of a damaged print: a handful of isolated specks on a scan without scratches are
as likely catchlights in eyes as dust, and an inpainter should not fill those. `coverage` is the
mask's share. With the measured width and the opaque specks the archival cleanup brings the demo
scans 6.9 dB closer to their unmarked selves on average (was 3.7).

The specks no line touches are returned as well: the cleanup fills them as found while it grows
the lines (tasks.steps.inpaint; bench/demo_damage.py: 4 specks left in the five masters -> 3, PSNR
inside the damage 27.51 -> 27.62 dB). On a 4:2:0 JPEG, whose colour around a speck is the JPEG's
guess, the cleanup fills their lightness as found and grows their colour (tasks.steps.inpaint).
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks.qa.diagnosis.scratch_lines import scratch_lines
from tasks.qa.diagnosis.specks import PRINT_DUST_MIN, dust, opaque_specks, residues, standing_out
from tasks.qa.diagnosis.views import Views, json_float

ANALYSIS_SIDE = 1536


def assess_scratches(
    views: Views, noise_sigma: float = 0.0,
) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    """The `scratches` finding, the full-resolution mask (None when nothing was found) and the
    mask's specks, which the cleanup fills as found (None when it holds none)."""
    h, w = views.shape
    finding = {"count": 0, "coverage": 0.0, "dust_count": 0, "opaque_specks": 0, "dust_standing_out": 0}
    if min(h, w) < 16:
        return finding, None, None
    gray = views.small_gray(ANALYSIS_SIDE)
    scale = gray.shape[0] / h
    lines = scratch_lines(gray, noise_sigma * scale)  # area downscaling divides the noise
    hats = residues(gray)
    finding["dust_count"] = dust(hats)[0]  # a measure only: clean texture has as many (see specks)
    # A damaged print's opaque specks are dust, at a lower bar than the scene's specks need.
    # Damaged: scratched, or with specks that stand out: then its fainter opaque specks go into
    # the mask as well.
    opaque, small = opaque_specks(views.small(ANALYSIS_SIDE), gray, hats[0], views.image.chroma_subsampled, scale)
    outstanding = standing_out(gray, hats, small)
    finding["dust_standing_out"] = outstanding
    if not lines and outstanding < PRINT_DUST_MIN:
        return finding, None, None
    finding["opaque_specks"] = opaque
    specks = small.copy()
    for x0, y0, x1, y1, width, courses in lines:
        cv2.line(small, (round(x0), round(y0)), (round(x1), round(y1)), 1, width)
        cv2.polylines(small, [np.rint(c).astype(np.int32) for c in courses], False, 1, width)
    mask = _full_size(small, (h, w))
    finding.update(count=len(lines), coverage=json_float(mask.mean(), 5))
    specks = _apart_from_lines(specks, small)
    return finding, mask, (_full_size(specks, (h, w)) & mask) if specks.any() else None


def _apart_from_lines(specks: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """The speck components (uint8, analysis scale) that no line of `marked` (specks and lines)
    touches: a speck on a scratch's edge is filled with the scratch, grown (the demo cat's)."""
    lines = cv2.dilate(((marked > 0) & (specks == 0)).astype(np.uint8), np.ones((3, 3), np.uint8))
    n, labels = cv2.connectedComponents(specks, connectivity=8)
    touched = np.zeros(n, bool)
    touched[labels[lines > 0]] = True
    touched[0] = True
    return (~touched[labels]).astype(np.uint8)


def _full_size(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A uint8 0/1 mask at the analysis scale as a bool mask at the scan's size (every scan pixel
    the analysis pixels touch)."""
    h, w = shape
    if small.shape == (h, w):
        return small > 0
    return cv2.resize(small * 255, (w, h), interpolation=cv2.INTER_LINEAR) > 0
