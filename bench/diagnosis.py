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

--only damage puts the classical damage mask (scratch lines and opaque specks, tasks.qa.diagnosis.
scratches) and the learned one (models.damage, weights from --models-dir) side by side on damage
drawn by tasks.demo.damage: mask recall / precision, specks found, drawn pixels still more than 20
levels off after the archival cleanup with each mask, and false alarms on clean photographs.

Usage: python bench/diagnosis.py [--quick] [--calibrate] [--only scratches|damage] [--models-dir DIR]
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
from tasks.demo import damage as damage_mod
from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.assessment import add_learned_mask
from tasks.qa.diagnosis import blur as blur_mod
from tasks.qa.diagnosis import diagnose, phash_distance
from tasks.qa.diagnosis import jpeg as jpeg_mod
from tasks.qa.diagnosis import noise as noise_mod
from tasks.qa.diagnosis import scratches as scratch_mod
from tasks.qa.diagnosis import skew as skew_mod
from tasks.qa.diagnosis import specks as specks_mod
from tasks.qa.diagnosis import tone as tone_mod
from tasks.qa.diagnosis.views import Views
from tasks.steps.inpaint import dilate_mask, inpaint

ARCHIVAL_CLEANUP = load_recipe("archival").cleanup
ARCHIVAL_DILATE = ARCHIVAL_CLEANUP.dilate


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
    record("clean:dust_print", dust_print(f))
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
    filled = dilate_mask(mask, ARCHIVAL_DILATE, d.speck_mask)
    err("scratch_recall_filled", (filled & truth).sum() / max(truth.sum(), 1))
    if mask.any():
        err("scratch_precision", (mask & near_truth).sum() / mask.sum())
        err("scratch_precision_filled", (filled & near_truth).sum() / filled.sum())

    # dust
    dusty, dust_truth = samples.scratch_and_dust(clean, 0, 25, seed=idx)
    dd = diagnose(image(dusty))
    n_specks, labels = cv2.connectedComponents(dust_truth.astype(np.uint8))
    # the dust rule's own specks (counted, never masked: see tasks/qa/diagnosis/specks.py)
    gray = cv2.cvtColor(dusty, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    _, specks = specks_mod.dust(specks_mod.residues(gray))
    specks = cv2.dilate(specks, np.ones((3, 3), np.uint8)) > 0
    found = len(set(np.unique(labels[specks & dust_truth])) - {0})
    err("dust_recall", found / max(n_specks - 1, 1))
    err("dust_count_dusty", dd.findings["scratches"]["dust_count"])
    # what the cleanup gets: the scan's mask, where the print is found dusty, grown as inpainted
    record("dust:print", dust_print(dd.findings))
    cleaned = (np.zeros(dust_truth.shape, bool) if dd.scratch_mask is None
               else dilate_mask(dd.scratch_mask, ARCHIVAL_DILATE, dd.speck_mask))
    err("dust_recall_mask", len(set(np.unique(labels[cleaned & dust_truth])) - {0}) / max(n_specks - 1, 1))


def dust_print(findings: dict) -> bool:
    """Dust in the cleanup mask of a print without scratch lines."""
    s = findings["scratches"]
    return s["count"] == 0 and s["opaque_specks"] > 0


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
    record("clean:dust_print", dust_print(f))
    err("dust_count_clean", f["scratches"]["dust_count"])
    rng.uniform(1.5, 4.0), rng.uniform(7, 25), rng.uniform(0, 180)  # run_one's defocus and motion draws
    ns = rng.uniform(5, 30)
    fn = diagnose(image(samples.add_noise(clean, ns, seed=idx))).findings
    record("noise:scratch_fa", fn["scratches"]["count"] >= 1)
    record("noise:dust_fa", dust_print(fn))
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
        views.small_gray(scratch_mod.ANALYSIS_SIDE)
        t = time.perf_counter()
        scratch_mod.assess_scratches(views, 1.0)
        scratch_times.append(time.perf_counter() - t)
    return float(np.median(times)), times, scratch_times


# --- Damage detectors side by side: classical (tasks.qa.diagnosis.scratches) and learned (models.damage)

RESIDUAL_LEVELS = 20  # a drawn-damage pixel still this far (0-255, any channel) off the clean photo
THUMB_MIX = damage_mod.DamageMix(scratches=(1, 2), fibres=(0, 1), specks=(3, 10))
# (case, what is drawn, mix; None: samples.scratch_and_dust, the cases above)
DAMAGE_CASES: tuple[tuple[str, str, damage_mod.DamageMix | None], ...] = (
    ("scratches", "1-5 thin bright near-vertical lines (as above)", None),
    ("dust", "25 dark round specks r 1-2 (as above)", None),
    ("curved", "1-4 curved bright scratches, 1-4 px", damage_mod.CURVED),
    ("dark", "1-4 dark scratches, straight or curved", damage_mod.DARK),
    ("wide", "1-3 scratches 3-4 px wide", damage_mod.WIDE),
    ("fibres", "2-5 dark hairs", damage_mod.FIBRES),
    ("bright_dust", "25 bright irregular specks r 0.5-4", damage_mod.BRIGHT_DUST),
    ("mixed", "scratches, fibres and dust together", damage_mod.MIXED),
    ("thumb", "x4-down thumbnail, a few of each", THUMB_MIX),
)


def further_negatives() -> list[tuple[str, np.ndarray]]:
    """The scratch calibration's 37 further clean images (scikit-image's photographs, edge_cases,
    RNI15) and Set5's bicubic x2/x3/x4 downscales, as RGB uint8."""
    from skimage import data as skdata

    out = []
    for name in ("astronaut", "brick", "camera", "cat", "chelsea", "coffee", "grass", "gravel", "moon",
                 "rocket", "coins", "clock", "text"):
        out.append((f"skimage/{name}", getattr(skdata, name)()))
    paths = [p for p in sorted((DATA / "edge_cases").iterdir()) if p.is_file()]
    paths += sorted((DATA / "real_noisy/RNI15").iterdir())
    out += [(f"{p.parent.name}/{p.name}", decode(p, max_pixels=10**9).pixels) for p in paths]
    out += low_res_sharp()
    return [(name, _rgb8(px)) for name, px in out]


def _rgb8(px: np.ndarray) -> np.ndarray:
    if px.dtype == np.uint16:
        px = (px.astype(np.float32) / 257 + 0.5).astype(np.uint8)
    if px.ndim == 2:
        px = np.dstack([px] * 3)
    return np.ascontiguousarray(px[:, :, :3])


def classical_mask(px: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """What diagnose() hands the cleanup: the scratch lines and a damaged print's opaque specks, and
    those specks (filled as found)."""
    views = Views(image(px))
    _, mask, specks = scratch_mod.assess_scratches(views, noise_mod.noise_sigma(views))
    return (mask if mask is not None else np.zeros(px.shape[:2], bool)), specks


def learned_detector(models_dir: Path):
    from models.damage import DamageDetector
    from models.weights import resolve

    det = DamageDetector(resolve("restorium-damage-unet", models_dir))
    recent: list[tuple[np.ndarray, np.ndarray]] = []  # "both" asks again for the last images seen

    def learned(px: np.ndarray) -> tuple[np.ndarray, None]:
        for seen, mask in recent:
            if seen is px:
                return mask, None
        recent[:] = [*recent[-1:], (px, det.detect(px.astype(np.float32) / 255)[0])]
        return recent[-1][1], None
    return learned


def both_detectors(learned):
    """What the cleanup fills when a recipe names the learned detector (tasks.qa.assessment): the
    classical mask and the learned one together, the classical specks outside it filled as found."""
    def both(px: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        mask, specks = add_learned_mask(*classical_mask(px), learned(px)[0])
        assert mask is not None  # classical_mask gives an array, empty or not
        return mask, specks
    return both


def default_models_dir() -> Path | None:
    local = REPO / "weights"
    if (local / "restorium-damage-unet.pth").is_file():
        return local
    env = __import__("os").environ.get("RESTORIUM_MODELS_DIR")
    return Path(env) if env else None


def damaged(clean: np.ndarray, case: str, mix: damage_mod.DamageMix | None, idx: int,
            rng: np.random.Generator, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    if mix is None:
        count = (int(rng.integers(1, 6)), 0) if case == "scratches" else (0, 25)
        return damage_mod.classic_scratch_and_dust(clean, *count, seed=idx)
    img = clean.astype(np.float32) / 255
    truth = damage_mod.draw_damage(img, rng, mix, scale=scale)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8), truth


class DamageScore:
    """Sums over images per (case, detector): pixel counts for recall and precision, specks found,
    residual damage after the archival cleanup and squared error inside the true mask."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str, str], float] = defaultdict(float)
        self.alarms: dict[tuple[str, str], list[bool]] = defaultdict(list)
        self.seconds: dict[tuple[str, str], list[float]] = defaultdict(list)

    def add(self, case: str, det: str, clean: np.ndarray, px: np.ndarray, truth: np.ndarray,
            found: tuple[np.ndarray, np.ndarray | None], *, residual: bool = True, speck_side: int = 12) -> None:
        """`found`: the detector's mask and the specks of it the cleanup fills as found (or None)."""
        mask, as_found = found
        s = lambda key, v: self.sums.__setitem__((case, det, key), self.sums[(case, det, key)] + float(v))
        near = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        filled = dilate_mask(mask, ARCHIVAL_DILATE, as_found)
        s("truth", truth.sum())
        s("hit", (mask & truth).sum())
        s("mask", mask.sum())
        s("near", (mask & near).sum())
        s("hit_filled", (filled & truth).sum())
        s("filled", filled.sum())
        s("near_filled", (filled & near).sum())
        n, labels, stats, _ = cv2.connectedComponentsWithStats(truth.astype(np.uint8))
        side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
        specks = np.flatnonzero(side[1:] <= speck_side) + 1  # specks (and curled-up fibres), not lines
        found = set(np.unique(labels[cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0]))
        s("specks", len(specks))
        s("specks_found", len(set(specks.tolist()) & found))
        if residual:
            c = clean.astype(np.float32)
            fixed, _ = inpaint(px.astype(np.float32) / 255, mask, method=ARCHIVAL_CLEANUP.method,
                               radius=ARCHIVAL_CLEANUP.radius, dilate=ARCHIVAL_CLEANUP.dilate, footprint=as_found)
            before = np.abs(px.astype(np.float32) - c)[truth]
            after = np.abs(fixed * 255 - c)[truth]
            s("off_before", (before.max(axis=1) > RESIDUAL_LEVELS).sum())
            s("off_after", (after.max(axis=1) > RESIDUAL_LEVELS).sum())
            s("sq_before", (before ** 2).sum())
            s("sq_after", (after ** 2).sum())
            s("values", before.size)

    def get(self, case: str, det: str, key: str) -> float:
        return self.sums.get((case, det, key), 0.0)

    def ratio(self, case: str, det: str, num: str, den: str) -> float:
        d = self.get(case, det, den)
        return self.get(case, det, num) / d if d else float("nan")

    def psnr(self, case: str, det: str, key: str) -> float:
        n = self.get(case, det, "values")
        mse = self.get(case, det, key) / n if n else float("nan")
        return 10 * np.log10(255**2 / mse) if mse > 0 else float("inf")


def run_damage(args: argparse.Namespace) -> None:
    """--only damage: the classical and the learned detector on the same damaged photos, and both
    together (what the cleanup fills when a recipe names the learned one)."""
    from quality import held_out_photographs  # bench/quality.py: the photographs the weights train on

    models_dir = args.models_dir or default_models_dir()
    detectors = {"classical": classical_mask}
    if models_dir is not None and (models_dir / "restorium-damage-unet.pth").is_file():
        detectors["learned"] = learned_detector(models_dir)
        detectors["both"] = both_detectors(detectors["learned"])
    else:
        print(f"no restorium-damage-unet.pth in {models_dir} (--models-dir): classical detector only\n")
    trained = {p.resolve() for p in held_out_photographs()}
    paths = (sorted((DATA / "sr_gt/McMaster").glob("*.tif")) + sorted((DATA / "sr_gt/CBSD68").glob("*.png"))
             + sorted((DATA / "sr_gt/Set5/HR").glob("*.png")))
    # indices as in clean_photos(): the seeds follow the photo, whatever else is run
    photos = [(i, decode(p, max_pixels=10**9).pixels) for i, p in enumerate(paths) if p.resolve() not in trained]
    photos = photos[:: 3 if args.quick else 1]
    score = DamageScore()
    start = time.perf_counter()

    def detect(det: str, case: str, px: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        t = time.perf_counter()
        found = detectors[det](px)
        score.seconds[(case, det)].append(time.perf_counter() - t)
        return found

    for n, (idx, clean) in enumerate(photos):
        rng = np.random.default_rng(5000 + idx)
        thumb = cv2.resize(clean, (clean.shape[1] // 4, clean.shape[0] // 4), interpolation=cv2.INTER_AREA)
        for det in detectors:
            score.alarms[("clean", det)].append(bool(detect(det, "clean", clean)[0].any()))
            score.alarms[("clean thumbnails (x4 down)", det)].append(bool(detect(det, "thumb", thumb)[0].any()))
        for case, _, mix in DAMAGE_CASES:
            px, truth = damaged(thumb if case == "thumb" else clean, case, mix, idx, rng)
            base = thumb if case == "thumb" else clean
            for det in detectors:
                score.add(case, det, base, px, truth, detect(det, case, px))
        if sys.stderr.isatty():
            print(f"\r{n + 1}/{len(photos)} photos", end="", file=sys.stderr, flush=True)
    negatives = further_negatives()
    for name, px in negatives:
        for det in detectors:
            score.alarms[("further negatives", det)].append(bool(detect(det, "negative", px)[0].any()))
    large = large_scan_case(detectors, score)

    dets = list(detectors)
    print(f"\rdamage detectors: {len(photos)} clean photos not trained on (McMaster, CBSD68 outside "
          f"bench/quality.py --held-out, Set5 HR), {len(negatives)} further clean negatives; learned "
          f"weights from {models_dir}; {time.perf_counter() - start:.0f} s\n")
    head = "".join(f"{d:>34s}" for d in dets)
    print(f"  {'case':12s} {'drawn':44s}{head}")
    print(f"  {'':57s}" + "".join(f"{'recall/prec  inpainted r/p  specks':>34s}" for _ in dets))
    for case, what, _ in DAMAGE_CASES:
        cells = []
        for d in dets:
            r, p = score.ratio(case, d, "hit", "truth"), score.ratio(case, d, "near", "mask")
            rf, pf = score.ratio(case, d, "hit_filled", "truth"), score.ratio(case, d, "near_filled", "filled")
            sp = score.ratio(case, d, "specks_found", "specks")
            cells.append(f"{r:6.3f}/{p:5.3f}  {rf:6.3f}/{pf:5.3f}  {sp:6.3f}" if score.get(case, d, "specks")
                         else f"{r:6.3f}/{p:5.3f}  {rf:6.3f}/{pf:5.3f}  {'':6s}")
        print(f"  {case:12s} {what:44s}" + "".join(f"{c:>34s}" for c in cells))
    all_cases = [c for c, _, _ in DAMAGE_CASES]
    for label, cases in (("all cases", all_cases), ("new cases", all_cases[2:])):
        cells = []
        for d in dets:
            tot = {k: sum(score.get(c, d, k) for c in cases) for k in
                   ("hit", "truth", "near", "mask", "hit_filled", "near_filled", "filled", "specks_found", "specks")}
            q = lambda a, b: tot[a] / tot[b] if tot[b] else float("nan")
            cells.append(f"{q('hit', 'truth'):6.3f}/{q('near', 'mask'):5.3f}  {q('hit_filled', 'truth'):6.3f}/"
                         f"{q('near_filled', 'filled'):5.3f}  {q('specks_found', 'specks'):6.3f}")
        print(f"  {label:12s} {'(pooled pixels)':44s}" + "".join(f"{c:>34s}" for c in cells))
    print("  recall: true pixels covered; prec: mask pixels within 1 px of the truth; inpainted: the mask "
          f"grown by the archival dilate ({ARCHIVAL_DILATE} px); specks: true specks touched (within 1 px)")

    print(f"\nResidual damage after the archival cleanup ({ARCHIVAL_CLEANUP.method}, radius "
          f"{ARCHIVAL_CLEANUP.radius}, dilate {ARCHIVAL_DILATE}) with each mask: drawn pixels > "
          f"{RESIDUAL_LEVELS} levels off the clean photo, and PSNR inside the true mask")
    print(f"  {'case':12s} {'before':>18s}" + "".join(f"{d:>30s}" for d in dets))
    for case in all_cases:
        d0 = dets[0]
        before = f"{score.get(case, d0, 'off_before'):8.0f} {score.psnr(case, d0, 'sq_before'):6.2f} dB"
        cells = [f"{score.get(case, d, 'off_after'):8.0f} ({score.ratio(case, d, 'off_after', 'off_before') * 100:5.1f} %) "
                 f"{score.psnr(case, d, 'sq_after'):6.2f} dB" for d in dets]
        print(f"  {case:12s} {before:>18s}" + "".join(f"{c:>30s}" for c in cells))

    print("\nFalse alarms: share of clean images with any damage reported (a non-empty mask)")
    for what in ("clean", "clean thumbnails (x4 down)", "further negatives"):
        cells = [f"{np.mean(score.alarms[(what, d)]) * 100:5.1f} % ({sum(score.alarms[(what, d)])}/"
                 f"{len(score.alarms[(what, d)])})" for d in dets]
        print(f"  {what:30s}" + "".join(f"{c:>22s}" for c in cells) + "   target <= 2 %")
    for d in dets:
        flagged = [name for (name, _), hit in zip(negatives, score.alarms[("further negatives", d)]) if hit]
        print(f"  {d}, further negatives flagged: {', '.join(flagged) or 'none'}")

    print("\nSeconds per image (median): " + ", ".join(
        f"{d} {np.median([t for (c, dd), ts in score.seconds.items() if dd == d and c != 'thumb' for t in ts]):.3f} s"
        for d in dets if d != "both") + " (photos of ~0.15-0.25 MP; both: the two added)")
    print(large)


def large_scan_case(detectors: dict, score: DamageScore) -> str:
    """One 6000x4000 scan (a McMaster photo enlarged) with the mixed damage drawn at x2 size: mask
    recall/precision, a false alarm on the clean scan, and each detector's time."""
    clean = decode(DATA / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels
    big = cv2.resize(clean, (6000, 4000), interpolation=cv2.INTER_CUBIC)
    px, truth = damaged(big, "large", damage_mod.MIXED, 0, np.random.default_rng(77), scale=2.0)
    lines = ["\nLarge scan: 6000x4000 (McMaster 1 enlarged), the mixed damage drawn at x2 size"]
    for det, fn in detectors.items():
        t = time.perf_counter()
        alarm = bool(fn(big)[0].any())
        t_clean = time.perf_counter() - t
        t = time.perf_counter()
        found = fn(px)
        t_damaged = time.perf_counter() - t
        score.add("large", det, big, px, truth, found, residual=False, speck_side=24)
        r, p = score.ratio("large", det, "hit", "truth"), score.ratio("large", det, "near", "mask")
        rf, pf = score.ratio("large", det, "hit_filled", "truth"), score.ratio("large", det, "near_filled", "filled")
        sp = score.ratio("large", det, "specks_found", "specks")
        lines.append(f"  {det:10s} recall/prec {r:5.3f}/{p:5.3f}, inpainted {rf:5.3f}/{pf:5.3f}, specks {sp:5.3f}; "
                     f"clean scan flagged: {alarm}; {t_clean:.1f} s clean, {t_damaged:.1f} s damaged"
                     + (" (the learned masks reused)" if det == "both" else ""))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="every 3rd photo, one speed run")
    ap.add_argument("--calibrate", action="store_true", help="print the calibration-half distributions")
    ap.add_argument("--only", choices=["scratches", "damage"], help="run and print one finding's cases alone; "
                    "damage: the classical and the learned damage detectors side by side")
    ap.add_argument("--models-dir", type=Path, default=None,
                    help="where restorium-damage-unet.pth is (default: weights/ when it holds it, else "
                         "$RESTORIUM_MODELS_DIR)")
    args = ap.parse_args()
    if args.only == "damage":
        run_damage(args)
        return

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
    row("dust (25 dark specks, no scratch): masked", "dust:print", "")
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
    row("dust masked (no scratch)", "clean:dust_print", "target <= 2 %")
    row("JPEG blocking", "clean:jpeg", "")
    row("faded", "clean:faded", "")
    row("colour cast", "clean:cast", "")
    row("skew", "clean:skew", "")
    row("blur on noisy (sigma 5-30) photos", "noise:blur_fa", "")
    row("scratches on noisy photos", "noise:scratch_fa", "")
    row("dust masked on noisy photos", "noise:dust_fa", "")
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
    errs("  in the cleanup mask, as inpainted", "dust_recall_mask", "", None, "")
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
