"""Inpainting benchmark: does the fill of dust and scratches leave a trace?

Clean real photographs from ../shared/data/sr_gt (McMaster 18, every sixth CBSD68: 12, Set5 HR 5:
the ones bench/quality.py and bench/diagnosis.py score), at full size and as x4-down thumbnails
(INTER_AREA, then damaged), get damage drawn with its true mask:

  lines   tasks.demo.samples.scratch_and_dust: 3 bright near-vertical 1 px anti-aliased scratches
          and dark round dust (25 specks full size, 15 on thumbnails), opaque;
  mixed   tasks.demo.damage.draw_damage with its MIXED mix: straight and curved scratches 1-4 px
          wide, bright or dark, opacity 0.4-1, some softened; fibres; bright and dark specks
          (skipped, and said so, where tasks/demo/damage.py is missing).

Each is inpainted (tasks.steps.inpaint.inpaint, plus the bench-only fills below) inside
  true     the true mask;                 true+1   the true mask dilated by 1 px;
  det      the classical detector's mask (tasks.qa.diagnosis.diagnose(...).scratch_mask), and
  det+1, det+2   that mask dilated by 1 and 2 px (the recipe's cleanup.dilate).

Per method and mask, over the photos: PSNR inside the true mask against the clean photo (mean of
per-image dB; the `damaged` row is before), the residual count (pixels of the true mask still more
than 20 levels of 0-255 off the clean photo in some channel, per image; the total is printed below
each table), the pixels outside the true mask more than 20 levels off (a soft mark's rim that the
mask leaves out, or clean pixels a fill spoilt), and the PSNR of the whole image.
Speed: each method on a 6000x4000 RGB float32 scan with 4 long 5 px scratches and 60 specks (the
true mask, dilated by 1), and with the mask the detector draws for it.

Bench-only fills (not in tasks/steps/inpaint.py, kept for comparison):
  median       each masked pixel, onion-peel from the mask's edge, the per-channel median of the
               known or already filled pixels among its 8 neighbours;
  skimage      skimage.restoration.inpaint_biharmonic (the reference for `biharmonic`: the bench
               prints the largest difference; timed on the 24 MP scan only when --skimage).
An edge-directed fill (each pixel interpolated along the direction whose two known ends agree
best, 16 directions, soft-weighted) was tried on 5 photos before this bench: 2-3 dB under
biharmonic inside the true mask on every one, so it was dropped.
OpenCV-contrib's frequency-selective reconstruction (cv2.xphoto.inpaint, FSR_FAST; 2026-12-07, 4 of
the photos, from a separate opencv-contrib-python-headless 5.0.0 install) against spline, true mask /
true+1: full size lines 26.80 / 23.90 dB against 26.43 / 23.03 (residual px equal), mixed 23.71 /
21.85 against 22.11 / 21.00 (residual 550 against 808); x4 thumbnails lines 21.40 / 18.84 against
22.36 / 19.86 (worse), mixed 21.02 / 19.78 against 19.99 / 19.46; 0.3-1.6 s an image against
0.01-0.03 s. Not adopted: worse on thumbnails, 30-100x slower, and it needs opencv-contrib in place
of the opencv-python that basicsr and realesrgan require (both install a `cv2` package).

Results (2026-12-06, the shared 2-core machine, under load; PSNR in the true mask dB / residual
px per image, 35 photos; damaged 7.74 / 1018 on lines, 11.85 / 2001 on mixed, full size):
                          true mask                   true+1                      det+1
                      telea r3    spline         telea r3    spline         telea r3    spline
  lines, full size   25.25/367  27.33/248       23.21/501  23.96/445       16.70/592  16.79/549
  lines, x4          21.96/210  23.85/155       19.85/273  20.95/238       12.19/266  12.24/252
  mixed, full size   23.22/595  21.86/899       21.99/681  22.96/635       12.32/1889 12.33/1888
  mixed, x4          20.45/303  20.16/347       19.04/349  20.05/318       11.95/627  11.95/627
The detector's recall (0.43, 0.22, 0.05, 0.01) bounds every method on det masks; det+1 beats
det (16.79 vs 13.17 dB on lines) and det+2 (16.64). Speed (24 MP, true mask, dilate 1): spline
1.02 s, biharmonic 0.99 s, harmonic 0.73 s, Telea 2.86 s, NS 2.56 s, skimage 8.30 s.

Usage: python bench/inpainting.py [--quick] [--images N] [--no-speed] [--skimage] [--per-image] [--grain S]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.diagnosis import diagnose
from tasks.steps.inpaint import dilate_mask, inpaint

try:
    from tasks.demo import damage
except ImportError:  # another helper's module, not there yet
    damage = None  # type: ignore[assignment]

OFF = 20 / 255  # "still damaged": more than 20 levels of 0-255 off the clean photo
MASKS = ("true", "true+1", "det", "det+1", "det+2")
Fill = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def photos() -> list[tuple[str, np.ndarray]]:
    paths = (sorted((DATA / "sr_gt/McMaster").glob("*.tif")) + sorted((DATA / "sr_gt/CBSD68").glob("*.png"))[::6]
             + sorted((DATA / "sr_gt/Set5/HR").glob("*.png")))
    return [(f"{p.parent.name}/{p.name}", decode(p, max_pixels=10**9).pixels[:, :, :3]) for p in paths]


def image(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage(pixels=pixels, alpha=None, bit_depth=8, icc=None, ppi=None)


def _median_fill(rgb: np.ndarray, mask: np.ndarray, dilate: int) -> np.ndarray:
    grown = dilate_mask(mask, dilate)
    out = rgb.astype(np.float32).copy()
    todo = grown.copy()
    h, w = todo.shape
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    while todo.any():
        ys, xs = np.nonzero(todo)
        stack = np.full((len(ys), 8, out.shape[2]), np.nan, np.float32)
        for k, (dy, dx) in enumerate(offsets):
            ny, nx = np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)
            ok = ~todo[ny, nx]
            stack[ok, k] = out[ny[ok], nx[ok]]
        ready = ~np.isnan(stack[:, :, 0]).all(axis=1)
        if not ready.any():  # a mask covering the whole image: nothing to draw from
            break
        out[ys[ready], xs[ready]] = np.nanmedian(stack[ready], axis=1)
        todo[ys[ready], xs[ready]] = False
    return out


def _skimage_fill(rgb: np.ndarray, mask: np.ndarray, dilate: int) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    grown = dilate_mask(mask, dilate)
    return np.clip(inpaint_biharmonic(rgb, grown, channel_axis=-1), 0, 1).astype(np.float32)


def methods() -> dict[str, Fill]:
    out: dict[str, Fill] = {}
    for name in ("telea", "ns"):
        for r in (2, 3, 4, 5):
            out[f"{name} r{r}"] = lambda rgb, m, d, name=name, r=r: inpaint(rgb, m, method=name, radius=r, dilate=d)[0]
    out["harmonic"] = lambda rgb, m, d: inpaint(rgb, m, method="harmonic", dilate=d)[0]
    out["biharmonic"] = lambda rgb, m, d: inpaint(rgb, m, method="biharmonic", dilate=d)[0]
    out["spline"] = lambda rgb, m, d: inpaint(rgb, m, method="spline", dilate=d)[0]
    out["median"] = _median_fill
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2)) if a.size else 0.0
    return 10 * np.log10(1 / mse) if mse > 1e-12 else 99.0


def damage_cases(idx: int, clean: np.ndarray, kinds: list[str], grain: float = 0.0):
    """(size, kind, photo, damaged uint8, true mask) for one photo, seeded by its index; with
    `grain`, Gaussian grain of that sigma (0-255) is part of the photo (and of its truth)."""
    if grain:
        clean = samples.add_noise(clean, grain, seed=idx)
    h, w = clean.shape[:2]
    thumb = cv2.resize(clean, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    for size, img, dust in (("full", clean, 25), ("x4", thumb, 15)):
        for kind in kinds:
            if kind == "lines":
                damaged, truth = samples.scratch_and_dust(img, 3, dust, seed=idx)
            else:
                drawn = img.astype(np.float32) / 255
                truth = damage.draw_damage(drawn, np.random.default_rng(5000 + idx), damage.MIXED)
                damaged = np.clip(np.rint(drawn * 255), 0, 255).astype(np.uint8)
            yield size, kind, img, damaged, truth


class Scores:
    def __init__(self) -> None:
        self.v: dict[tuple, list[float]] = defaultdict(list)

    def add(self, key: tuple, value: float) -> None:
        self.v[key].append(float(value))

    def mean(self, key: tuple) -> float:
        return float(np.mean(self.v[key])) if self.v.get(key) else float("nan")

    def total(self, key: tuple) -> float:
        return float(np.sum(self.v[key])) if self.v.get(key) else float("nan")


def score_case(group: tuple[str, str], name: str, clean8: np.ndarray, damaged8: np.ndarray, truth: np.ndarray,
               fills: dict[str, Fill], scores: Scores, per_image: dict, skimage_diff: list[float]) -> None:
    clean, damaged = clean8.astype(np.float32) / 255, damaged8.astype(np.float32) / 255
    det = diagnose(image(damaged8)).scratch_mask
    det = np.zeros(truth.shape, bool) if det is None else det
    masks = {"true": (truth, 0), "true+1": (truth, 1), "det": (det, 0), "det+1": (det, 1), "det+2": (det, 2)}
    scores.add((*group, "recall"), (det & truth).sum() / max(truth.sum(), 1))
    scores.add((*group, "det_px"), det.sum() / max(truth.sum(), 1))

    def record(method: str, mask_name: str, out: np.ndarray, seconds: float) -> None:
        off = np.abs(out - clean).max(axis=2) > OFF
        key = (*group, method, mask_name)
        scores.add((*key, "psnr_in"), psnr(out[truth], clean[truth]))
        scores.add((*key, "resid"), (off & truth).sum())
        scores.add((*key, "outside"), (off & ~truth).sum())
        scores.add((*key, "whole"), psnr(out, clean))
        scores.add((*key, "ms_per_mp"), seconds * 1e3 / (truth.size / 1e6))
        per_image[(*key, name)] = int((off & truth).sum())

    for mask_name in MASKS:
        record("damaged", mask_name, damaged, 0.0)
    for method, fill in fills.items():
        for mask_name, (mask, dil) in masks.items():
            t = time.perf_counter()
            out = fill(damaged, mask, dil)
            record(method, mask_name, out, time.perf_counter() - t)
            if method == "biharmonic" and mask_name in ("true", "det+1") and mask.any():
                ref = _skimage_fill(damaged, mask, dil)
                skimage_diff.append(float(np.abs(ref - out).max()))


def print_group(group: tuple[str, str], names: list[str], scores: Scores, n: int) -> None:
    size, kind = group
    print(f"\n{kind} damage, {'full size' if size == 'full' else 'x4 thumbnails'} ({n} photos); detector mask "
          f"recall {scores.mean((*group, 'recall')):.3f}, its size {scores.mean((*group, 'det_px')):.2f}x the true mask's")
    print("  cells: PSNR inside the true mask (dB) / residual px per image / px > 20 off outside the true mask "
          "per image / whole-image PSNR")
    print(f"  {'method':11s}" + "".join(f"{m:>30s}" for m in MASKS))
    for method in ["damaged", *names]:
        cells = []
        for m in MASKS:
            k = (*group, method, m)
            cells.append(f"{scores.mean((*k, 'psnr_in')):6.2f} /{scores.mean((*k, 'resid')):6.0f} /"
                         f"{scores.mean((*k, 'outside')):5.0f} /{scores.mean((*k, 'whole')):6.2f}")
        print(f"  {method:11s}" + "".join(f"{c:>30s}" for c in cells))
    print(f"  {'resid total':11s}" + "".join(
        " / ".join(f"{scores.total((*group, meth, m, 'resid')):.0f}" for meth in ("damaged", "telea r3", "spline")).rjust(30)
        for m in MASKS) + "   (damaged / telea r3 / spline)")


def speed(runs: int, with_skimage: bool) -> None:
    """Each method on a 24 MP scan: the true mask of 4 long 5 px scratches and 60 specks (dilated by
    1, as the recipe does), and the mask diagnose() draws for the same scan."""
    clean = decode(DATA / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels
    big = cv2.resize(clean, (6000, 4000), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(7)
    truth = np.zeros(big.shape[:2], np.uint8)
    for _ in range(4):
        x0 = int(rng.integers(0, 6000))
        x1 = int(np.clip(x0 + rng.integers(-600, 601), 0, 5999))
        ends = (x0, int(rng.integers(0, 1300))), (x1, int(rng.integers(2700, 4000)))
        cv2.line(big, *ends, (235, 235, 235), 5, cv2.LINE_AA)
        cv2.line(truth, *ends, 1, 5)
    for _ in range(60):
        centre, radius = (int(rng.integers(0, 6000)), int(rng.integers(0, 4000))), int(rng.integers(2, 7))
        cv2.circle(big, centre, radius, (20, 20, 20), -1, cv2.LINE_AA)
        cv2.circle(truth, centre, radius, 1, -1)
    det = diagnose(image(big)).scratch_mask
    rgb = big.astype(np.float32) / 255
    del big
    cases = {"true mask": truth.astype(bool)}
    if det is not None:
        cases["detected mask"] = det
    print(f"\nSpeed on a 6000x4000 RGB float32 scan (24 MP), dilate 1, median of {runs}:")
    for label, mask in cases.items():
        print(f"  {label}: {int(dilate_mask(mask, 1).sum())} px to fill ({dilate_mask(mask, 1).mean() * 100:.2f} %)")
        meths = [("telea", 3), ("ns", 3), ("harmonic", 3), ("biharmonic", 3), ("spline", 3)]
        for method, radius in meths:
            inpaint(rgb[:64, :64], mask[:64, :64], method=method, radius=radius)  # warm-up
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                inpaint(rgb, mask, method=method, radius=radius, dilate=1)
                times.append(time.perf_counter() - t)
            med = float(np.median(times))
            print(f"    {method:11s} {med:6.2f} s  ({med / 24 * 1000:5.1f} ms/MP)")
        if with_skimage:
            t = time.perf_counter()
            _skimage_fill(rgb, mask, 1)
            med = time.perf_counter() - t
            print(f"    {'skimage':11s} {med:6.2f} s  ({med / 24 * 1000:5.1f} ms/MP, one run)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="every 3rd photo, one speed run")
    ap.add_argument("--images", type=int, default=0, help="only the first N photos (after --quick's pick)")
    ap.add_argument("--no-speed", action="store_true", help="skip the 24 MP timing")
    ap.add_argument("--skimage", action="store_true", help="also time skimage's biharmonic on the 24 MP scan")
    ap.add_argument("--per-image", action="store_true", help="print residual counts per photo")
    ap.add_argument("--grain", type=float, default=0.0, help="film grain sigma (0-255) in the photos before damage")
    args = ap.parse_args()

    kinds = ["lines"] + (["mixed"] if damage is not None else [])
    if damage is None:
        print("tasks/demo/damage.py not found: the `mixed` damage cases are skipped")
    all_photos = photos()
    chosen = all_photos[:: 3 if args.quick else 1]
    if args.images:
        chosen = chosen[: args.images]
    fills = methods()
    scores, per_image, skimage_diff = Scores(), {}, []
    groups: list[tuple[str, str]] = []
    start = time.perf_counter()
    for n, (name, clean) in enumerate(chosen):
        idx = [p[0] for p in all_photos].index(name)
        for size, kind, img, damaged, truth in damage_cases(idx, clean, kinds, args.grain):
            if (size, kind) not in groups:
                groups.append((size, kind))
            score_case((size, kind), name, img, damaged, truth, fills, scores, per_image, skimage_diff)
        if sys.stderr.isatty():
            print(f"\r{n + 1}/{len(chosen)} photos", end="", file=sys.stderr, flush=True)
    print(f"inpainting benchmark: {len(chosen)} clean photos from {DATA / 'sr_gt'} (McMaster, CBSD68 every sixth, "
          f"Set5 HR){f', grain sigma {args.grain:g} in the photos' if args.grain else ''}, "
          f"{time.perf_counter() - start:.0f} s")
    for group in sorted(groups, key=lambda g: (g[1], g[0])):
        print_group(group, list(fills), scores, len(chosen))
    if skimage_diff:
        print(f"\nbiharmonic vs skimage.restoration.inpaint_biharmonic: largest difference {max(skimage_diff):.2g} "
              f"(median over cases {np.median(skimage_diff):.2g}), 0-1 scale")
    if args.per_image:
        print("\nResidual px per photo (true mask px > 20 levels off): damaged -> telea r3 -> spline")
        print(f"  {'':30s} {'true mask':>22s} {'det+1':>22s}")
        for size, kind in groups:
            for name, _ in chosen:
                cells = [" -> ".join(f"{per_image[(size, kind, meth, m, name)]:4d}" for meth in ("damaged", "telea r3", "spline"))
                         for m in ("true", "det+1")]
                print(f"  {kind:6s} {size:4s} {name:18s} {cells[0]:>22s} {cells[1]:>22s}")
    if not args.no_speed:
        speed(1 if args.quick else 3, args.skimage)


if __name__ == "__main__":
    main()
