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
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks.qa.diagnosis.scratch_lines import scratch_lines
from tasks.qa.diagnosis.specks import PRINT_DUST_MIN, dust, opaque_specks, residues, standing_out
from tasks.qa.diagnosis.views import Views, json_float

ANALYSIS_SIDE = 1536


def assess_scratches(views: Views, noise_sigma: float = 0.0) -> tuple[dict, np.ndarray | None]:
    """The `scratches` finding and the full-resolution mask (None when nothing was found)."""
    h, w = views.shape
    finding = {"count": 0, "coverage": 0.0, "dust_count": 0, "opaque_specks": 0, "dust_standing_out": 0}
    if min(h, w) < 16:
        return finding, None
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
        return finding, None
    finding["opaque_specks"] = opaque
    for x0, y0, x1, y1, width, courses in lines:
        cv2.line(small, (round(x0), round(y0)), (round(x1), round(y1)), 1, width)
        cv2.polylines(small, [np.rint(c).astype(np.int32) for c in courses], False, 1, width)
    if small.shape != (h, w):
        mask = cv2.resize(small * 255, (w, h), interpolation=cv2.INTER_LINEAR) > 0
    else:
        mask = small > 0
    finding.update(count=len(lines), coverage=json_float(mask.mean(), 5))
    return finding, mask
