"""Fidelity of restorium's masters against ground truth, beside bicubic and the Real-ESRGAN CLI path.

Clean photographs from ../shared/data (the 18 McMaster, every sixth of CBSD68: 30) are degraded the way old scans
are — downscaled x4 (area), then optionally blurred, noised, JPEG-compressed, scratched, or all
of it — and brought back to the clean size three ways, in one run:

  bicubic      cv2.resize(INTER_CUBIC) x4
  cli          RealESRGANer with realesr-general-x4v3, outscale 4 (the Real-ESRGAN CLI path:
               inference_realesrgan.py -n realesr-general-x4v3 -s 4, tile 0)
  restorium    the whole pipeline (tasks.steps.pipeline.process_scan: QA, plan, restoration steps,
               upscale, finish) with a recipe (default: the archival preset) at --scale 4; the
               archival upscaler is restorium-fidelity-x4v3 where RESTORIUM_MODELS_DIR holds it
               (`make weights`, part of `make install`, trained on the CBSD68 photographs listed by --held-out,
               none of which is scored here), else its fallback realesr-general-x4v3. The header
               names the one that ran.

--validation scores 7 other clean photographs instead (Set5's HR images, baboon and comic from
edge_cases/tests_gt), never trained on: a recipe change tuned on the 30 is checked there.

PSNR (dB) and SSIM against the clean image, on RGB 0-255 with a 4 px border cut, per
degradation and on average. Targets (issue "Faithful masters"): restorium ≥ bicubic + 1.5 dB
PSNR and ≥ cli + 0.05 SSIM on average, and better than both on every row (issue 22).

Usage: python bench/quality.py [--quick] [--recipe NAME|FILE] [--images N] [--validation] [--held-out]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tasks.records.types import ScanOutcome

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
BORDER = 4


def _cbsd68() -> list[Path]:
    return sorted((SHARED / "data/sr_gt/CBSD68").glob("*.png"))


def held_out_photographs() -> list[Path]:
    """The CBSD68 photographs this benchmark never scores: what the fidelity weights may be trained on
    (`make weights`)."""
    scored = set(_cbsd68()[::6])
    return [p for p in _cbsd68() if p not in scored]


def validation_photographs() -> list[Path]:
    """Clean photographs neither scored nor trained on (--validation)."""
    return (sorted((SHARED / "data/sr_gt/Set5/HR").glob("*.png"))
            + sorted((SHARED / "data/edge_cases/tests_gt").glob("*.png")))


def default_models_dir() -> Path:
    """RESTORIUM_MODELS_DIR; else the project's weights/ once `make install` made the archival models
    there (a fresh clone's default install); else the shared weights alone."""
    if os.environ.get("RESTORIUM_MODELS_DIR"):
        return Path(os.environ["RESTORIUM_MODELS_DIR"])
    made = REPO / "weights"
    return made if (made / "restorium-fidelity-x4v3.pth").exists() else SHARED / "models"


def _clean_images(limit: int, validation: bool = False) -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    if validation:
        files = validation_photographs()
    else:
        files = sorted((SHARED / "data/sr_gt/McMaster").glob("*.tif")) + _cbsd68()[::6]
    picked = files[: limit] if limit else files
    out = []
    for path in picked:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = (rgb.shape[0] // 4) * 4, (rgb.shape[1] // 4) * 4
        out.append((path.name, np.ascontiguousarray(rgb[:h, :w])))
    return out


def _degradations(clean: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Low-resolution scans with the clean image as ground truth (x4 smaller)."""
    import cv2

    from tasks.demo import samples

    h, w = clean.shape[:2]
    small = cv2.resize(clean, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    blurred = samples.defocus_blur(small, 1.0)
    noisy = samples.add_noise(small, 10.0, seed=seed)
    jpeg = samples.jpeg_roundtrip(small, 50)
    scratched, _ = samples.scratch_and_dust(small, scratches=3, dust=15, seed=seed)
    old = samples.degrade(clean, samples.Degradation(downscale=4.0, blur_sigma=0.8, fade=0.15, warm_cast=0.04,
                                                    noise_sigma=6.0, jpeg_quality=75, scratches=2, dust=10), seed)
    return {"x4": small, "x4+blur": blurred, "x4+noise": noisy, "x4+jpeg": jpeg, "x4+scratches": scratched,
            "x4+old-scan": old}


def _metrics(result: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = result[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    b = truth[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    return (peak_signal_noise_ratio(b, a, data_range=255),
            structural_similarity(b, a, data_range=255, channel_axis=2))


class _Restorium:
    """The real pipeline on one in-memory scan (written to a temporary PNG, mastered, read back)."""

    def __init__(self, models_dir: Path, recipe_name: str, workdir: Path, precision: str = "auto"):
        import torch

        from config.recipe import load_recipe
        from config.version import software_version
        from models.agents import host_agent
        from models.faces import FaceDetector
        from models.precision import resolve_precision
        from models.upscaler import Denoiser, Upscaler
        from models.weights import WeightsNotFoundError, resolve
        from tasks.records.types import AgentInfo
        from tasks.steps.pipeline import Toolkit

        torch.set_num_threads(os.cpu_count() or 1)
        self.recipe = load_recipe(recipe_name).with_target(scale=4)
        self.workdir = workdir
        faces = None
        if self.recipe.faces.enabled:
            weights = resolve("face_detection_yunet", models_dir)
            faces = FaceDetector(weights.path, score_threshold=0.5)
        try:
            upscaler = resolve(self.recipe.upscale.model, models_dir)
        except WeightsNotFoundError:
            if self.recipe.upscale.fallback_model is None:
                raise
            upscaler = resolve(self.recipe.upscale.fallback_model, models_dir)
        self.precision = resolve_precision(precision, torch.device("cpu"))
        self.model = f"{upscaler.card.name} ({upscaler.sha256[:12]}), {self.precision}"
        damage = None
        if self.recipe.cleanup.detector:
            try:
                from models.damage import DamageDetector

                damage = DamageDetector(resolve(self.recipe.cleanup.detector, models_dir), precision=self.precision)
                self.model += f"; damage: {damage.card.name} ({damage.weights.sha256[:12]})"
            except WeightsNotFoundError:
                self.model += "; damage: the classical detector (no learned weights)"
        self.kit = Toolkit(
            upscalers={upscaler.card.name: Upscaler(upscaler, precision=self.precision)},
            denoiser=Denoiser(resolve("ffdnet_color", models_dir), precision=self.precision),
            software=AgentInfo(kind="software", name="restorium", version=software_version()),
            host=host_agent("cpu"), faces=faces, damage=damage,
        )
        self.count = 0

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        from PIL import Image

        from tasks.files.imageio import decode

        path = self.workdir / f"scan{self.count + 1}.png"
        Image.fromarray(lr).save(path)
        outcome = self.process(path)
        self.last_plan = outcome.plan_reasons
        return decode(Path(outcome.master.path), max_pixels=10**9).pixels

    def process(self, path: Path) -> ScanOutcome:
        """Master one scan file with the real pipeline (raises unless it was mastered)."""
        from tasks.files.ingest import ingest_file
        from tasks.records.keys import derivation_key, stable_uuid
        from tasks.records.types import ScanJob
        from tasks.steps.pipeline import process_scan

        self.count += 1
        facts = ingest_file(path)
        key = derivation_key(facts.sha256, self.recipe.hash, {}, "bench")
        job = ScanJob(
            original_path=str(path), original_sha256=facts.sha256, item_uuid=stable_uuid("i", key),
            item_identifier=path.stem, original_uuid=stable_uuid("o", key), master_uuid=stable_uuid("m", key),
            access_uuid=stable_uuid("a", key), derivation_key=key, run_uuid="bench",
            recipe=self.recipe.model_dump(mode="json"), recipe_hash=self.recipe.hash,
            master_path=str(self.workdir / f"m{self.count}.tif"), access_path=str(self.workdir / f"a{self.count}.jpg"),
        )
        outcome = process_scan(job, self.kit)
        if outcome.status != "mastered":
            raise RuntimeError(f"{path.name} was not mastered: {outcome.reason}")
        return outcome


class _Cli:
    """The Real-ESRGAN CLI's path for real photos: realesr-general-x4v3, outscale 4, no tiles."""

    def __init__(self, models_dir: Path):
        import torch

        from models.torch_compat import ensure_basicsr_importable

        ensure_basicsr_importable()
        from realesrgan import RealESRGANer
        from realesrgan.archs.srvgg_arch import SRVGGNetCompact

        net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type="prelu")
        self.upsampler = RealESRGANer(scale=4, model_path=str(models_dir / "realesr-general-x4v3.pth"), model=net,
                                      tile=0, tile_pad=10, pre_pad=0, half=False, device=torch.device("cpu"))

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        import cv2

        out, _ = self.upsampler.enhance(cv2.cvtColor(lr, cv2.COLOR_RGB2BGR), outscale=4)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def _bicubic(lr: np.ndarray) -> np.ndarray:
    import cv2

    h, w = lr.shape[:2]
    return np.clip(cv2.resize(lr.astype(np.float32), (w * 4, h * 4), interpolation=cv2.INTER_CUBIC), 0, 255
                   ).round().astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="6 images instead of all 30")
    ap.add_argument("--images", type=int, default=0, help="use the first N images (0 = all)")
    ap.add_argument("--recipe", default="archival", help="a preset name or a recipe .yaml file")
    ap.add_argument("--validation", action="store_true", help="score the 7 validation photographs instead")
    ap.add_argument("--held-out", action="store_true",
                    help="list the CBSD68 photographs the benchmark never scores (training photographs), and exit")
    ap.add_argument("--precision", default="auto", help="the models' precision (as RESTORIUM_PRECISION)")
    args = ap.parse_args()
    if args.held_out:
        print("\n".join(str(p) for p in held_out_photographs()))
        return
    models_dir = default_models_dir()
    images = _clean_images(6 if args.quick else args.images, args.validation)
    if not images:  # else every target would read "met" over no rows at all
        sys.exit(f"no photographs found under {SHARED / 'data'}: ../shared must lie beside the project")

    with tempfile.TemporaryDirectory(prefix="restorium-quality-") as tmp:
        restorium = _Restorium(models_dir, args.recipe, Path(tmp), args.precision)
        methods = {"bicubic": _bicubic, "cli": _Cli(models_dir), "restorium": restorium}
        scores: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        seconds: dict[str, float] = defaultdict(float)
        started = time.perf_counter()
        for index, (name, clean) in enumerate(images):
            for degradation, lr in _degradations(clean, seed=index).items():
                for method, run in methods.items():
                    t = time.perf_counter()
                    out = run(lr)
                    seconds[method] += time.perf_counter() - t
                    assert out.shape == clean.shape, (method, out.shape, clean.shape)
                    scores[(degradation, method)].append(_metrics(out, clean))
            print(f"  {index + 1}/{len(images)} {name} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    degradations = list(dict.fromkeys(d for d, _ in scores))
    names = list(methods)
    print(f"{len(images)} clean images, recipe {args.recipe!r} (upscaler {restorium.model}); "
          f"PSNR dB / SSIM vs ground truth (border {BORDER} px)\n")
    header = f"{'degradation':<14}" + "".join(f"{m:>22}" for m in names) + f"{'Δ vs bicubic':>14}{'Δ SSIM vs cli':>15}"
    print(header)
    print("-" * len(header))
    means = {}
    for d in degradations + ["average"]:
        row = {}
        for m in names:
            values = [v for dd in (degradations if d == "average" else [d]) for v in scores[(dd, m)]]
            row[m] = (float(np.mean([v[0] for v in values])), float(np.mean([v[1] for v in values])))
        means[d] = row
        cells = "".join(f"{row[m][0]:>13.2f} / {row[m][1]:.4f}" for m in names)
        print(f"{d:<14}{cells}{row['restorium'][0] - row['bicubic'][0]:>+14.2f}"
              f"{row['restorium'][1] - row['cli'][1]:>+15.4f}")
    avg = means["average"]
    print("\nseconds: " + ", ".join(f"{m} {seconds[m]:.1f}" for m in names))
    checks = [
        ("restorium ≥ bicubic + 1.5 dB PSNR on average", avg["restorium"][0] >= avg["bicubic"][0] + 1.5),
        ("restorium ≥ cli + 0.05 SSIM on average", avg["restorium"][1] >= avg["cli"][1] + 0.05),
    ]
    behind = [d for d in degradations
              if not all(means[d]["restorium"][i] > means[d][m][i] for m in ("bicubic", "cli") for i in (0, 1))]
    checks.append(("restorium better than both on every row (PSNR and SSIM)"
                   + (f": not on {', '.join(behind)}" if behind else ""), not behind))
    for text, ok in checks:
        print(f"  [{'met' if ok else 'NOT met'}] {text}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
