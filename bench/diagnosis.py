"""Diagnosis benchmark: do the findings see the degradations that were put in, and only those?

Clean real photographs from ../shared/data (McMaster 18, CBSD68 68, Set5 HR 5) are degraded one
way at a time with known parameters (tasks/demo/samples.py), seeded per image:

  defocus   Gaussian sigma U(1.5, 4) px                 expect blur.type == defocus
  motion    length U(7, 25) px, angle U(0, 180) deg      expect blur.type == motion (angle, length)
  noise     sigma U(5, 30) on 0-255, every channel       expect noise_sigma over NOISY_SIGMA
  scratches 1-5 long thin bright lines                   expect scratches.count >= 1 (mask vs truth)
  dust      25 dark specks                               specks found (recall), dust_count
  jpeg      quality U{10..40}                            expect jpeg_blockiness over BLOCKY
  fade      U(0.3, 0.6) of the contrast toward grey      expect contrast under FADED_CONTRAST
  cast      warm or cool U(0.04, 0.10) of full scale     expect a reported cast, b* sign right
  mono cast the same on a monochrome (grey) print        as above
  skew      U(0.5, 5) deg either way, crooked print      expect |skew_deg| >= SKEWED_DEG (error)
            on a light or dark scanner bed
  skew/crop the same rotation cropped to the content     (no frame left: a known blind spot)

and the clean photos themselves are the negatives (false alarms per finding), plus Set5's
bicubic x2/x3/x4 downscales as "low resolution but sharp" negatives for blur. Thresholds were
set on the calibration half (even-indexed photos; `--calibrate` prints the distributions they
came from); the tables report all photos and the held-out half separately.

Speed: diagnose() on a 24-megapixel 16-bit RGB scan (a clean McMaster photo upscaled to
6000x4000), median of 3 after a warm-up, against the 2 s target on this 2-core machine.

Usage: python bench/diagnosis.py [--quick] [--calibrate] [--only scratches]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

from config.recipe import load_recipe
from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.diagnosis import blur as blur_mod
from tasks.qa.diagnosis import diagnose, phash_distance
from tasks.qa.diagnosis import jpeg as jpeg_mod
from tasks.qa.diagnosis import noise as noise_mod
from tasks.qa.diagnosis import scratches as scratch_mod
from tasks.qa.diagnosis import skew as skew_mod
from tasks.qa.diagnosis import tone as tone_mod
from tasks.qa.diagnosis.views import Views
from tasks.steps.inpaint import dilate_mask

ARCHIVAL_DILATE = load_recipe("archival").cleanup.dilate


def image(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage(pixels=pixels, alpha=None, bit_depth=16 if pixels.dtype == np.uint16 else 8, icc=None, ppi=None)


def clean_photos() -> list[tuple[str, np.ndarray]]:
    paths = (sorted((DATA / "sr_gt/McMaster").glob("*.tif")) + sorted((DATA / "sr_gt/CBSD68").glob("*.png"))
             + sorted((DATA / "sr_gt/Set5/HR").glob("*.png")))
    return [(f"{p.parent.name}/{p.name}", decode(p, max_pixels=10**9).pixels) for p in paths]


def low_res_sharp() -> list[tuple[str, np.ndarray]]:
    out = []
    for scale in ("X2", "X3", "X4"):
        for p in sorted((DATA / "sr_gt/Set5/LR_bicubic" / scale).glob("*.png")):
            px = decode(p, max_pixels=10**9).pixels
            if min(px.shape[:2]) >= 64:
                out.append((f"{scale}/{p.name}", px))
    return out


def angle_error(a: float, b: float) -> float:
    return abs((a - b + 90) % 180 - 90)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Tally:
    """Per case: hits/trials for detection, false alarms, and lists of errors."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], list[bool]] = defaultdict(list)
        self.errors: dict[str, list[float]] = defaultdict(list)

    def hit(self, case: str, part: str, ok: bool) -> None:
        self.hits[(case, part)].append(bool(ok))

    def rate(self, case: str, part: str) -> tuple[float, int]:
        v = self.hits.get((case, part), [])
        return (float(np.mean(v)) if v else float("nan")), len(v)


def run_one(idx: int, name: str, clean: np.ndarray, other: np.ndarray, tally: Tally, part: str,
            calib: dict[str, list] | None) -> None:
    rng = np.random.default_rng(1000 + idx)
    gray_print = cv2.cvtColor(cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)

    def findings(px: np.ndarray) -> dict:
        return diagnose(image(px)).findings

    def record(case: str, ok: bool) -> None:
        for p in (part, "all"):
            tally.hit(case, p, ok)

    def err(key: str, value: float) -> None:
        for p in (part, "all"):
            tally.errors[f"{key}|{p}"].append(float(value))

    # negatives
    f = findings(clean)
    record("clean:blur", f["blur"]["type"] != "none")
    record("clean:noise", f["noise_sigma"] > noise_mod.NOISY_SIGMA)
    record("clean:scratches", f["scratches"]["count"] >= 1)
    record("clean:dusty", f["scratches"]["dust_count"] > scratch_mod.DUSTY_COUNT)
    record("clean:jpeg", f["jpeg_blockiness"] > jpeg_mod.BLOCKY)
    record("clean:faded", f["contrast"] < tone_mod.FADED_CONTRAST)
    cast, spread = tone_mod.colour_cast(Views(image(clean)))
    record("clean:cast", tone_mod.cast_is_reported(cast, spread))
    record("clean:skew", abs(f["skew_deg"]) >= skew_mod.SKEWED_DEG)
    err("dust_count_clean", f["scratches"]["dust_count"])

    # defocus
    sigma = rng.uniform(1.5, 4.0)
    fd = findings(samples.defocus_blur(clean, sigma))
    record("defocus:type", fd["blur"]["type"] == "defocus")
    record("defocus:blurred", fd["blur"]["type"] != "none")
    if fd["blur"]["sigma_px"] is not None:
        err("defocus_sigma_rel", abs(fd["blur"]["sigma_px"] - sigma) / sigma)

    # motion
    length, theta = rng.uniform(7, 25), rng.uniform(0, 180)
    motion = samples.motion_blur(clean, length, theta)
    fm = findings(motion)
    record("motion:type", fm["blur"]["type"] == "motion")
    record("motion:blurred", fm["blur"]["type"] != "none")
    if fm["blur"]["type"] == "motion":
        err("motion_angle", angle_error(fm["blur"]["angle_deg"], theta))
        err("motion_length_rel", abs(fm["blur"]["length_px"] - length) / length)

    # noise
    ns = rng.uniform(5, 30)
    fn = findings(samples.add_noise(clean, ns, seed=idx))
    record("noise:detect", fn["noise_sigma"] > noise_mod.NOISY_SIGMA)
    err("noise_rel", abs(fn["noise_sigma"] - ns) / ns)
    record("noise:blur_fa", fn["blur"]["type"] != "none")
    record("noise:scratch_fa", fn["scratches"]["count"] >= 1)

    # scratches and dust
    count = int(rng.integers(1, 6))
    scratch_cases(idx, clean, count, record, err)

    # jpeg
    q = int(rng.integers(10, 41))
    fj = findings(samples.jpeg_roundtrip(clean, q))
    record("jpeg:detect", fj["jpeg_blockiness"] > jpeg_mod.BLOCKY)
    record("jpeg:blur_fa", fj["blur"]["type"] != "none")
    record("jpeg:noise_fa", fj["noise_sigma"] > noise_mod.NOISY_SIGMA)

    # fade
    amount = rng.uniform(0.3, 0.6)
    ff = findings(samples.fade(clean, amount))
    record("fade:detect", ff["contrast"] < tone_mod.FADED_CONTRAST)

    # casts, colourful and monochrome
    warm = rng.uniform(0.04, 0.10) * rng.choice([-1, 1])
    for case, base in (("cast", clean), ("mono_cast", gray_print)):
        casted = samples.colour_cast(base, warm)
        cv = Views(image(casted))
        c, s = tone_mod.colour_cast(cv)
        record(f"{case}:detect", tone_mod.cast_is_reported(c, s))
        record(f"{case}:direction", np.sign(c["b"] - tone_mod.colour_cast(Views(image(base)))[0]["b"]) == np.sign(warm))

    # skew
    angle = rng.uniform(0.5, 5.0) * rng.choice([-1, 1])
    fs = findings(samples.skewed_scan(clean, angle, bed=0.15 if idx % 2 else 0.9))
    record("skew:detect", abs(fs["skew_deg"]) >= skew_mod.SKEWED_DEG)
    err("skew_err", abs(fs["skew_deg"] - angle))
    fc = findings(samples.rotate_content(clean, angle))
    record("skew_crop:detect", abs(fc["skew_deg"]) >= skew_mod.SKEWED_DEG)
    err("skew_crop_err", abs(fc["skew_deg"] - angle))

    # perceptual hash: the same photo resized to half and recompressed, and a different photo
    h, w = clean.shape[:2]
    copy = samples.jpeg_roundtrip(cv2.resize(clean, (w // 2, h // 2), interpolation=cv2.INTER_AREA), 75)
    err("phash_same", phash_distance(f["phash"], findings(copy)["phash"]))
    err("phash_other", phash_distance(f["phash"], findings(other)["phash"]))

    if calib is not None and part == "cal":
        g = lambda px: cv2.cvtColor(px, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
        for case, px in (("clean", clean), ("defocus", samples.defocus_blur(clean, sigma)), ("motion", motion),
                         ("defocus1.5", samples.defocus_blur(clean, 1.5)), ("motion7", samples.motion_blur(clean, 7, theta))):
            feats = blur_mod.blur_features(g(px))
            calib[f"blur_score|{case}"].append(blur_mod.blur_score(feats))
            calib[f"edge_aniso|{case}"].append(feats["edge_anisotropy"])
            calib[f"spec_aniso|{case}"].append(feats["spectral_anisotropy"])
            calib[f"w20|{case}"].append(feats["w20"])
        calib["noise|clean"].append(f["noise_sigma"])
        calib["noise|sigma5"].append(findings(samples.add_noise(clean, 5, seed=idx))["noise_sigma"])
        calib["blockiness|clean"].append(f["jpeg_blockiness"])
        calib["blockiness|q40"].append(findings(samples.jpeg_roundtrip(clean, 40))["jpeg_blockiness"])
        calib["contrast|clean"].append(f["contrast"])
        calib["contrast|fade0.3"].append(findings(samples.fade(clean, 0.3))["contrast"])
        c0, s0 = tone_mod.colour_cast(Views(image(clean)))
        calib["cast_ratio|clean"].append(c0["magnitude"] / max(s0, 1e-6))
        calib["cast_mag|clean"].append(c0["magnitude"])
        cm, sm = tone_mod.colour_cast(Views(image(samples.colour_cast(gray_print, 0.04))))
        calib["cast_ratio|mono0.04"].append(cm["magnitude"] / max(sm, 1e-6))
        calib["cast_mag|mono0.04"].append(cm["magnitude"])
        calib["dust_count|clean"].append(f["scratches"]["dust_count"])


def scratch_cases(idx: int, clean: np.ndarray, count: int, record, err) -> None:
    """The scratch and dust cases of one photo: `count` drawn scratches (detection, mask recall and
    precision against the true mask), then 25 dust specks."""
    # scratches
    scratched, truth = samples.scratch_and_dust(clean, count, 0, seed=idx)
    d = diagnose(image(scratched))
    record("scratches:detect", d.findings["scratches"]["count"] >= 1)
    record("scratches:count_exact", d.findings["scratches"]["count"] == count)
    mask = d.scratch_mask if d.scratch_mask is not None else np.zeros(truth.shape, bool)
    near_truth = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    err("scratch_recall", (mask & truth).sum() / max(truth.sum(), 1))
    # what the archival cleanup inpaints: the mask grown by its `dilate`
    filled = dilate_mask(mask, ARCHIVAL_DILATE)
    err("scratch_recall_filled", (filled & truth).sum() / max(truth.sum(), 1))
    if mask.any():
        err("scratch_precision", (mask & near_truth).sum() / mask.sum())
        err("scratch_precision_filled", (filled & near_truth).sum() / filled.sum())

    # dust
    dusty, dust_truth = samples.scratch_and_dust(clean, 0, 25, seed=idx)
    dd = diagnose(image(dusty))
    n_specks, labels = cv2.connectedComponents(dust_truth.astype(np.uint8))
    # the speck detector's own mask (the scan's mask holds specks only past DUSTY_COUNT)
    _, specks = scratch_mod._dust(cv2.cvtColor(dusty, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255)
    specks = cv2.dilate(specks, np.ones((3, 3), np.uint8)) > 0
    found = len(set(np.unique(labels[specks & dust_truth])) - {0})
    err("dust_recall", found / max(n_specks - 1, 1))
    err("dust_count_dusty", dd.findings["scratches"]["dust_count"])


def run_scratches(idx: int, clean: np.ndarray, tally: Tally, part: str) -> None:
    """--only scratches: run_one's scratch-related cases alone, with the same seeds and draws (clean
    negatives, scratches on the noisy photo, scratches, dust)."""
    rng = np.random.default_rng(1000 + idx)

    def record(case: str, ok: bool) -> None:
        for p in (part, "all"):
            tally.hit(case, p, ok)

    def err(key: str, value: float) -> None:
        for p in (part, "all"):
            tally.errors[f"{key}|{p}"].append(float(value))

    f = diagnose(image(clean)).findings
    record("clean:scratches", f["scratches"]["count"] >= 1)
    record("clean:dusty", f["scratches"]["dust_count"] > scratch_mod.DUSTY_COUNT)
    err("dust_count_clean", f["scratches"]["dust_count"])
    rng.uniform(1.5, 4.0), rng.uniform(7, 25), rng.uniform(0, 180)  # run_one's defocus and motion draws
    ns = rng.uniform(5, 30)
    fn = diagnose(image(samples.add_noise(clean, ns, seed=idx))).findings
    record("noise:scratch_fa", fn["scratches"]["count"] >= 1)
    count = int(rng.integers(1, 6))
    scratch_cases(idx, clean, count, record, err)


def speed(runs: int) -> tuple[float, list[float], list[float]]:
    """diagnose() on a 24 MP 16-bit scan, and assess_scratches() alone on the same scan (given the
    1536 px view that diagnose() shares between the findings)."""
    clean = decode(DATA / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels
    big = cv2.resize(clean, (6000, 4000), interpolation=cv2.INTER_CUBIC).astype(np.uint16) * 257
    scan = image(big)
    diagnose(scan)  # warm-up: OpenCV's first calls build tables
    times, scratch_times = [], []
    for _ in range(runs):
        t = time.perf_counter()
        diagnose(scan)
        times.append(time.perf_counter() - t)
        views = Views(scan)
        views.small_gray(scratch_mod._ANALYSIS_SIDE)
        t = time.perf_counter()
        scratch_mod.assess_scratches(views, 1.0)
        scratch_times.append(time.perf_counter() - t)
    return float(np.median(times)), times, scratch_times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="every 3rd photo, one speed run")
    ap.add_argument("--calibrate", action="store_true", help="print the calibration-half distributions")
    ap.add_argument("--only", choices=["scratches"], help="run and print one finding's cases alone")
    args = ap.parse_args()

    photos = clean_photos()
    chosen = list(range(len(photos)))[:: 3 if args.quick else 1]
    tally = Tally()
    calib: dict[str, list] | None = defaultdict(list) if args.calibrate else None
    start = time.perf_counter()
    for n, i in enumerate(chosen):
        name, px = photos[i]
        other = photos[(i + 7) % len(photos)][1]
        if args.only == "scratches":
            run_scratches(i, px, tally, "cal" if i % 2 == 0 else "held")
        else:
            run_one(i, name, px, other, tally, "cal" if i % 2 == 0 else "held", calib)
        if sys.stderr.isatty():
            print(f"\r{n + 1}/{len(chosen)} photos", end="", file=sys.stderr, flush=True)
    lowres = [] if args.only else low_res_sharp()
    for name, px in lowres:
        tally.hit("lowres:blur", "all", diagnose(image(px)).findings["blur"]["type"] != "none")

    print(f"diagnosis benchmark: {len(chosen)} clean photos from {DATA} (McMaster, CBSD68, Set5 HR), "
          f"one degradation at a time; calibration half = even-indexed photos, held-out = odd; "
          f"{time.perf_counter() - start:.0f} s\n")

    def row(label: str, key: str, target: str) -> None:
        a, na = tally.rate(*key.split("@")) if "@" in key else tally.rate(key, "all")
        h, nh = tally.rate(key, "held")
        if args.only and not na:
            return  # a case that --only did not run
        cal = ""
        if args.only:
            c, nc = tally.rate(key, "cal")
            cal = f"calibration {c * 100:6.1f} % (n={nc:3d})   "
        print(f"  {label:44s} {a * 100:6.1f} %  (n={na:3d})   {cal}held-out {h * 100:6.1f} % (n={nh:3d})   {target}")

    print("Detection (degraded photos flagged by the finding)")
    row("blur type = defocus  (Gaussian 1.5-4 px)", "defocus:type", "target >= 90 %")
    row("  ... called blurred at all", "defocus:blurred", "")
    row("blur type = motion   (7-25 px, 0-180 deg)", "motion:type", "target >= 90 %")
    row("  ... called blurred at all", "motion:blurred", "")
    row(f"noisy (sigma 5-30) > {noise_mod.NOISY_SIGMA}", "noise:detect", "target >= 90 %")
    row("scratches (1-5 lines) count >= 1", "scratches:detect", "target >= 90 %")
    row("  ... count exact", "scratches:count_exact", "")
    row(f"JPEG q10-40 blockiness > {jpeg_mod.BLOCKY}", "jpeg:detect", "")
    row(f"faded 0.3-0.6 contrast < {tone_mod.FADED_CONTRAST}", "fade:detect", "")
    row("colour cast 0.04-0.10, colourful photo", "cast:detect", "")
    row("  ... direction (sign of b*)", "cast:direction", "")
    row("colour cast 0.04-0.10, monochrome print", "mono_cast:detect", "")
    row(f"skew 0.5-5 deg, crooked print |skew| >= {skew_mod.SKEWED_DEG}", "skew:detect", "")
    row("skew 0.5-5 deg, cropped to content (no frame)", "skew_crop:detect", "")

    print("\nFalse alarms on the clean photos (and on other degradations)")
    row("blur (type != none)", "clean:blur", "target <= 10 %")
    row("blur on Set5 LR x2/x3/x4 (low-res, sharp)", "lowres:blur@all", "target <= 10 %")
    row("noise", "clean:noise", "target <= 10 %")
    row("scratches", "clean:scratches", "target <= 10 %")
    row(f"dusty (> {scratch_mod.DUSTY_COUNT} specks)", "clean:dusty", "")
    row("JPEG blocking", "clean:jpeg", "")
    row("faded", "clean:faded", "")
    row("colour cast", "clean:cast", "")
    row("skew", "clean:skew", "")
    row("blur on noisy (sigma 5-30) photos", "noise:blur_fa", "")
    row("scratches on noisy photos", "noise:scratch_fa", "")
    row("blur on JPEG q10-40 photos", "jpeg:blur_fa", "")
    row("noise on JPEG q10-40 photos", "jpeg:noise_fa", "")

    def errs(label: str, key: str, unit: str, within: float | None, target: str, *, at_least: bool = False) -> None:
        v = tally.errors.get(f"{key}|all", [])
        vh = tally.errors.get(f"{key}|held", [])
        if not v:
            if not args.only:
                print(f"  {label:44s} (no estimates)")
            return
        share = ""
        if within is not None and at_least:
            share = f"at least {within:g}{unit}: {np.mean(np.array(v) >= within) * 100:5.1f} %"
        elif within is not None:
            share = f"within {within:g}{unit}: {np.mean(np.array(v) <= within) * 100:5.1f} %"
        vc = f"calibration median {pct(tally.errors.get(f'{key}|cal', []), 50):6.3f}, " if args.only else ""
        print(f"  {label:44s} median {pct(v, 50):6.3f}  p90 {pct(v, 90):6.3f}  max {max(v):7.3f}  "
              f"(n={len(v):3d}, {vc}held-out median {pct(vh, 50):6.3f})  {share}  {target}")

    print("\nEstimates (absolute errors; rel = relative)")
    errs("noise sigma, rel error", "noise_rel", "", 0.25, "target within 25 %")
    errs("motion angle error, deg (mod 180)", "motion_angle", " deg", 10, "target within 10 deg")
    errs("motion length, rel error", "motion_length_rel", "", 0.2, "")
    errs("defocus sigma, rel error", "defocus_sigma_rel", "", 0.25, "")
    errs("skew error, deg (crooked print)", "skew_err", " deg", 0.5, "target within 0.5 deg")
    errs("skew error, deg (cropped content)", "skew_crop_err", " deg", 0.5, "")
    errs("scratch mask recall (true pixels covered)", "scratch_recall", "", None, "")
    errs("scratch mask precision (within 1 px of truth)", "scratch_precision", "", None, "")
    errs("  as inpainted (archival dilate): recall", "scratch_recall_filled", "", None, "")
    errs("  as inpainted (archival dilate): precision", "scratch_precision_filled", "", None, "")
    errs("dust specks found (recall of 25)", "dust_recall", "", None, "")
    errs("dust_count, clean photos", "dust_count_clean", "", None, "")
    errs("dust_count, with 25 specks", "dust_count_dusty", "", None, "")
    errs("phash distance, same photo (x0.5, JPEG 75)", "phash_same", " bits", 6, "near-duplicate <= 6")
    errs("phash distance, different photo", "phash_other", " bits", 20, "", at_least=True)

    runs = 1 if args.quick else 3
    med, times, scratch_times = speed(runs)
    verdict = "meets" if med < 2.0 else "MISSES"
    print(f"\nSpeed: diagnose() on a 6000x4000 16-bit RGB scan: median {med:.2f} s of {runs} "
          f"({', '.join(f'{t:.2f}' for t in times)}) — {verdict} the 2 s target on this machine")
    print(f"  of which scratches and dust (on the shared 1536 px view): median {np.median(scratch_times):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in scratch_times)})")

    if calib is not None:
        print("\nCalibration half: distributions behind the thresholds")
        print(f"  {'measure|case':28s} {'min':>8s} {'p2.5':>8s} {'p5':>8s} {'p50':>8s} {'p95':>8s} {'p97.5':>8s} {'max':>8s}")
        for key in sorted(calib):
            v = calib[key]
            print(f"  {key:28s} {min(v):8.3f} " + " ".join(f"{pct(v, q):8.3f}" for q in (2.5, 5, 50, 95, 97.5))
                  + f" {max(v):8.3f}")
        # rule: midway between the negatives' p97.5 and the positives' p2.5 (or the reverse for
        # measures that fall with the degradation), when they do not overlap
        print("\n  suggested threshold = midway between the negatives' p97.5 and the positives' p2.5")
        for measure, neg, pos, rising in (
            ("blur_score", "clean", "defocus1.5", True), ("blur_score", "clean", "motion7", True),
            ("edge_aniso", "defocus1.5", "motion7", True), ("spec_aniso", "defocus1.5", "motion7", True),
            ("edge_aniso", "defocus", "motion", True), ("spec_aniso", "defocus", "motion", True),
            ("noise", "clean", "sigma5", True), ("blockiness", "clean", "q40", True),
            ("contrast", "clean", "fade0.3", False), ("cast_ratio", "clean", "mono0.04", True),
        ):
            n, p_ = calib[f"{measure}|{neg}"], calib[f"{measure}|{pos}"]
            lo, hi = (pct(n, 97.5), pct(p_, 2.5)) if rising else (pct(p_, 97.5), pct(n, 2.5))
            note = f"{(lo + hi) / 2:.3f}" if lo < hi else f"overlap: negatives' p97.5 is {pct(n, 97.5 if rising else 2.5):.3f}"
            print(f"  {measure:12s} {neg:>10s} vs {pos:10s}: {note}")


if __name__ == "__main__":
    main()
