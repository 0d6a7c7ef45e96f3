"""One scan through the whole pipeline with the real compact weights, on small real images."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms
from skimage.metrics import peak_signal_noise_ratio

from config.recipe import load_recipe
from config.version import software_version
from models.agents import host_agent
from models.upscaler import Denoiser, Upscaler
from models.weights import resolve
from tasks.files.imageio import decode
from tasks.files.ingest import ingest_file, ingest_steps
from tasks.files.xmp import read_provenance
from tasks.records.keys import derivation_key, stable_uuid
from tasks.records.types import QUALITY_ASSESSMENT, AgentInfo, ScanJob
from tasks.steps.pipeline import Toolkit, process_scan

SOFTWARE = AgentInfo(kind="software", name="restorium", version=software_version())


@pytest.fixture(scope="module")
def kit(shared_models) -> Toolkit:
    return Toolkit(
        upscalers={"realesr-general-x4v3": Upscaler(resolve("realesr-general-x4v3", shared_models))},
        denoiser=Denoiser(resolve("ffdnet_color", shared_models)),
        software=SOFTWARE, host=host_agent("cpu"),
    )


def _job(original: Path, out: Path, recipe_name: str = "archival", **target) -> ScanJob:
    recipe = load_recipe(recipe_name).with_target(**target)
    facts = ingest_file(original)
    key = derivation_key(facts.sha256, recipe.hash, {"m": "x"}, software_version())
    return ScanJob(
        original_path=str(original), original_sha256=facts.sha256,
        item_uuid=stable_uuid("item", facts.sha256), item_identifier=original.stem,
        original_uuid=stable_uuid("original", facts.sha256),
        master_uuid=stable_uuid("master", key), access_uuid=stable_uuid("access", key),
        derivation_key=key, run_uuid="run-1", recipe=recipe.model_dump(mode="json"), recipe_hash=recipe.hash,
        master_path=str(out / "masters" / f"{original.stem}.tif"),
        access_path=str(out / "access" / f"{original.stem}.jpg"),
        review_path=str(out / "reviews" / f"{original.stem}.png"),
        prior_steps=ingest_steps(facts, [SOFTWARE]), max_pixels=10**8,
    )


def _crop(shared_data: Path, rel: str, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(Image.open(shared_data / rel))[box[1]:box[3], box[0]:box[2]]


def test_16bit_tiff_with_profile_becomes_a_16bit_master_with_provenance(tmp_path, shared_data, kit):
    rgb8 = _crop(shared_data, "old_photos/old/a.png", (100, 100, 180, 160))[:, :, :3]
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = tmp_path / "scan16.tif"
    tifffile.imwrite(original, rgb8.astype(np.uint16) * 257, photometric="rgb", resolution=(600, 600),
                     resolutionunit="INCH", extratags=[(34675, "B", len(icc), icc, True)])
    before = hashlib.sha256(original.read_bytes()).hexdigest()

    outcome = process_scan(_job(original, tmp_path), kit)

    assert outcome.status == "mastered", outcome.reason
    master = tifffile.imread(outcome.master.path)
    assert master.dtype == np.uint16 and master.shape == (120, 160, 3)
    with tifffile.TiffFile(outcome.master.path) as tif:
        assert bytes(tif.pages.first.tags[34675].value) == icc
    assert Path(outcome.access.path).is_file() and outcome.access.format == "JPEG"
    order = ["qa", "levels", "clahe", "white-balance", "inpaint", "denoise", "deblur", "upscale",
             "finish", "fidelity-guard", "tag"]
    steps = [s.step for s in outcome.steps]
    assert steps == sorted(steps, key=order.index)  # the practitioners' order, whatever was needed
    assert {"qa", "upscale", "finish", "fidelity-guard", "tag"} <= set(steps)
    assert outcome.review is not None and Path(outcome.review.path).is_file()
    assert outcome.timings["model"] > 0 and outcome.resolved_recipe["upscale"]["width"] == 160
    # the master's XMP alone tells the same story the worker reported
    record = read_provenance(Path(outcome.master.path))
    assert record.steps[2:] == outcome.steps and [s.step for s in record.steps[:2]] == ["ingest", "digest"]
    assert record.original["sha256"] == before and record.recipe["resolved"] == outcome.resolved_recipe
    assert record.master["sha256"] == outcome.master.sha256
    assert hashlib.sha256(original.read_bytes()).hexdigest() == before  # original untouched


def test_master_stays_a_likeness_of_the_scan(tmp_path, shared_data, kit):
    rgb = _crop(shared_data, "sr_gt/McMaster/1.tif", (0, 0, 96, 80))
    original = tmp_path / "clean.png"
    Image.fromarray(rgb).save(original)
    outcome = process_scan(_job(original, tmp_path), kit)
    master = decode(Path(outcome.master.path), max_pixels=10**8).pixels
    back = np.asarray(Image.fromarray(master).resize((96, 80), Image.Resampling.BOX))
    assert peak_signal_noise_ratio(rgb, back) > 28  # faithful: no different image invented


class _InventingUpscaler:
    """The real model, but what it returns is the upscale of another photograph: an invention."""

    def __init__(self, real: Upscaler, other: np.ndarray):
        self.real, self.other = real, other
        self.scale, self.agent, self.card = real.scale, real.agent, real.card
        self.last_inference_seconds = 0.0
        self.last_execution: dict = {}

    def upscale(self, rgb: np.ndarray, tile: int, overlap: int, reduce: int = 1) -> np.ndarray:
        h, w = rgb.shape[:2]
        other = self.other if h <= self.other.shape[0] else np.rot90(self.other)  # a rotated view (self-ensemble)
        out = self.real.upscale(np.ascontiguousarray(other[:h, :w]), tile, overlap, reduce)
        self.last_inference_seconds = self.real.last_inference_seconds
        self.last_execution = self.real.last_execution
        return out


def test_the_guard_judges_what_the_model_made_not_the_consistency_correction(tmp_path, shared_data, kit):
    scan = _crop(shared_data, "sr_gt/McMaster/1.tif", (0, 0, 96, 80))
    other = (np.asarray(Image.open(shared_data / "sr_gt/McMaster/5.tif"))[:80, :96] / 255.0).astype(np.float32)
    original = tmp_path / "scan.png"
    Image.fromarray(scan).save(original)
    real = kit.upscalers["realesr-general-x4v3"]
    inventing = Toolkit(upscalers={"realesr-general-x4v3": _InventingUpscaler(real, other)},
                        denoiser=kit.denoiser, software=kit.software, host=kit.host)
    outcome = process_scan(_job(original, tmp_path), inventing)
    steps = {s.step: s for s in outcome.steps}
    assert steps["finish"].parameters["consistency"]["applied"]
    guard = steps["fidelity-guard"]
    assert guard.parameters["judged"] == "the model's result before the consistency step"
    assert guard.outcome == "warning" and any(f.startswith("fidelity guard") for f in outcome.flags)
    # Consistency alone would have hidden it: shrunk back, the master is the scan again.
    master = decode(Path(outcome.master.path), max_pixels=10**8).pixels
    back = np.asarray(Image.fromarray(master).resize((96, 80), Image.Resampling.BOX))
    print(f"guard SSIM {guard.parameters['ssim']:.3f}; master shrunk vs scan {peak_signal_noise_ratio(scan, back):.1f} dB")
    assert guard.parameters["ssim"] < 0.5 and peak_signal_noise_ratio(scan, back) > 25


class _FidelityCard:
    """The real model presented as the fidelity-trained archival upscaler (its card says so)."""

    def __init__(self, real: Upscaler):
        from dataclasses import replace

        from models.cards import CARDS

        self.real, self.scale, self.agent = real, real.scale, real.agent
        self.card = replace(CARDS["restorium-fidelity-x4v3"])
        self.last_inference_seconds = 0.0
        self.last_execution: dict = {}

    def upscale(self, rgb: np.ndarray, tile: int, overlap: int, reduce: int = 1) -> np.ndarray:
        out = self.real.upscale(rgb, tile, overlap, reduce)
        self.last_inference_seconds = self.real.last_inference_seconds
        self.last_execution = self.real.last_execution
        return out


def test_a_fidelity_trained_upscaler_is_not_pulled_back_onto_the_scan(tmp_path, shared_data, kit):
    original = tmp_path / "scan.png"
    Image.fromarray(_crop(shared_data, "sr_gt/McMaster/1.tif", (0, 0, 96, 80))).save(original)
    tuned = Toolkit(upscalers={"restorium-fidelity-x4v3": _FidelityCard(kit.upscalers["realesr-general-x4v3"])},
                    denoiser=kit.denoiser, software=kit.software, host=kit.host)
    outcome = process_scan(_job(original, tmp_path), tuned)
    assert outcome.status == "mastered", outcome.reason
    steps = {s.step: s for s in outcome.steps}
    finish = steps["finish"].parameters
    assert not finish["consistency"]["applied"] and not finish["color_transfer"]["applied"]
    # the recipe's blend for this model, lighter on a grainy scan (tasks.steps.plan.BLEND_NOISE_HALF)
    full = load_recipe("archival").finish.fidelity_model_blend
    assert 0.5 * full <= finish["fidelity_blend"] <= full
    assert steps["fidelity-guard"].parameters["judged"] == "the master"
    assert any("restorium-fidelity-x4v3 is trained for fidelity" in r for r in outcome.plan_reasons)
    # a scan this small (96 x 80) is upscaled in its 8 flips and rotations, and the record says so
    assert steps["upscale"].parameters["ensemble_views"] == 8
    assert "averaged over 8 views" in steps["upscale"].detail


def test_rgba_keeps_alpha_and_gray_stays_gray(tmp_path, shared_data, kit):
    rgba = _crop(shared_data, "edge_cases/children-alpha.png", (0, 0, 64, 48))
    original = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(original)
    outcome = process_scan(_job(original, tmp_path, scale=3), kit)
    assert outcome.status == "mastered", outcome.reason
    master = tifffile.imread(outcome.master.path)
    assert master.shape == (144, 192, 4)
    assert np.abs(master[::3, ::3, 3].astype(int) - rgba[:, :, 3]).mean() < 12

    gray = tmp_path / "gray.jpg"
    Image.open(shared_data / "edge_cases/wolf_gray.jpg").crop((0, 0, 64, 64)).save(gray)
    outcome = process_scan(_job(gray, tmp_path), kit)
    assert outcome.status == "mastered", outcome.reason
    assert tifffile.imread(outcome.master.path).shape == (128, 128)


def test_bad_scan_fails_with_reason_and_writes_nothing(tmp_path, shared_data, kit):
    data = (shared_data / "edge_cases/0014.jpg").read_bytes()
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[: len(data) // 2])
    outcome = process_scan(_job(bad, tmp_path), kit)
    assert (outcome.status, outcome.failure_kind) == ("failed", "invalid")
    assert "damaged JPEG" in outcome.reason and outcome.steps[0].outcome == "failure"
    assert not (tmp_path / "masters").exists()


def test_processing_error_is_reported_not_raised(tmp_path, shared_data, kit):
    original = tmp_path / "ok.png"
    Image.fromarray(_crop(shared_data, "sr_gt/McMaster/2.tif", (0, 0, 32, 32))).save(original)
    job = _job(original, tmp_path)
    job.recipe = {**job.recipe, "upscale": {**job.recipe["upscale"], "model": "RealESRGAN_x4plus",
                                            "fallback_model": None}}
    outcome = process_scan(job, kit)
    assert (outcome.status, outcome.failure_kind) == ("failed", "error")
    assert "not loaded in this worker" in outcome.reason


def test_nlmeans_fallback_removes_real_noise(shared_data):
    from tasks.files.imageio import to_float
    from tasks.steps.restore import denoise_nlmeans

    clean = to_float(np.asarray(Image.open(shared_data / "sr_gt/McMaster/3.tif").convert("RGB"))[:128, :128])
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 15 / 255, clean.shape), 0, 1).astype(np.float32)
    restored = denoise_nlmeans(noisy, 15.0)
    gain = peak_signal_noise_ratio(clean, restored, data_range=1) - peak_signal_noise_ratio(clean, noisy, data_range=1)
    assert gain > 3.0, f"non-local means gained only {gain:.2f} dB"


def test_portrait_keeps_faces_closer_to_the_scan(tmp_path, shared_data, shared_models, kit):
    from models.faces import FaceDetector

    face_kit = Toolkit(upscalers=kit.upscalers, denoiser=kit.denoiser, software=kit.software, host=kit.host,
                       faces=FaceDetector(resolve("face_detection_yunet", shared_models).path, score_threshold=0.5))
    original = tmp_path / "lincoln.png"
    Image.open(shared_data / "real_lowquality/Lincoln.png").convert("RGB").save(original)
    outcome = process_scan(_job(original, tmp_path, "portrait"), face_kit)
    assert outcome.status == "mastered", outcome.reason
    step = next(s for s in outcome.steps if s.step == "face-protection")
    assert len(step.parameters["faces"]) >= 1 and step.parameters["ai_share"] == 0.4
    assert any(a.name == "face_detection_yunet" and a.weights_sha256 for a in step.agents)


def test_the_models_precision_is_recorded_in_the_steps_and_the_masters_history(tmp_path, shared_data, shared_models):
    """bf16 changes pixels a little, so the upscale and denoise events say it ran, with the tile
    the device chose; the master's XMP history carries the same parameters."""
    import pyexiv2

    bf16 = Toolkit(
        upscalers={"realesr-general-x4v3": Upscaler(resolve("realesr-general-x4v3", shared_models), precision="bf16")},
        denoiser=Denoiser(resolve("ffdnet_color", shared_models), precision="bf16"),
        software=SOFTWARE, host=host_agent("cpu"),
    )
    original = tmp_path / "noisy.png"
    noisy = _crop(shared_data, "old_photos/old/a.png", (100, 100, 196, 172))[:, :, :3].astype(np.float64)
    noisy += np.random.default_rng(0).normal(0, 12, noisy.shape)  # enough grain for FFDNet to run
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(original)
    outcome = process_scan(_job(original, tmp_path), bf16)
    assert outcome.status == "mastered", outcome.reason
    steps = {s.step: s for s in outcome.steps}
    assert steps["upscale"].parameters["precision"] == "bf16"
    assert steps["upscale"].parameters["tile_overlap"] == 0  # exact context: nothing to blend
    assert steps["denoise"].parameters["precision"] == "bf16"
    with pyexiv2.Image(outcome.master.path) as img:
        history = [v for k, v in img.read_xmp().items() if k.endswith("stEvt:parameters")]
    upscale = [json.loads(v) for v in history if '"step":"upscale"' in v]
    assert upscale and upscale[0]["parameters"]["precision"] == "bf16"


def test_a_failure_in_the_guard_is_a_quality_assessment_event(tmp_path, shared_data, kit, monkeypatch):
    import tasks.steps.pipeline as pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("guard broke")

    monkeypatch.setattr(pipeline, "fidelity_check", broken)
    original = tmp_path / "scan.png"
    Image.fromarray(_crop(shared_data, "sr_gt/McMaster/1.tif", (0, 0, 64, 48))).save(original)
    outcome = process_scan(_job(original, tmp_path), kit)
    assert outcome.status == "failed" and "guard failed: RuntimeError: guard broke" in outcome.reason
    assert [(s.step, s.type, s.outcome) for s in outcome.steps] == [("guard", QUALITY_ASSESSMENT, "failure")]


def test_a_full_disk_is_told_by_errno_not_by_the_message(tmp_path, shared_data, kit, monkeypatch):
    import errno

    import tasks.steps.pipeline as pipeline
    from tasks.records.failures import DISK_FULL, is_disk_full

    def full(*args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:  # a writer wrapping the OSError in its own error still counts
            raise RuntimeError("could not write the master") from exc

    monkeypatch.setattr(pipeline, "write_master", full)
    original = tmp_path / "scan.png"
    Image.fromarray(_crop(shared_data, "sr_gt/McMaster/1.tif", (0, 0, 64, 48))).save(original)
    outcome = process_scan(_job(original, tmp_path), kit)
    assert (outcome.status, outcome.failure_kind, outcome.kind) == ("failed", "error", DISK_FULL)
    # A message that merely reads like one (no errno) is not a full disk; EDQUOT (quota) is.
    assert not is_disk_full(OSError("[Errno 28] No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))


def test_every_step_recorded_is_declared_once_with_its_event_type(tmp_path, shared_data, kit):
    """The step contract: what the master's history says matches the declarations, and the run
    report's stages are the declared steps' timings."""
    from tasks.reports.run_report import _STAGES
    from tasks.steps.context import DECODE
    from tasks.steps.pipeline import STEPS

    declared = {d.name: d for d in (DECODE, *STEPS)}
    assert len(declared) == len(STEPS) + 1  # no name declared twice
    original = tmp_path / "faded.png"
    rgb = _crop(shared_data, "old_photos/old/a.png", (100, 100, 196, 172))[:, :, :3]
    Image.fromarray((rgb * 0.5 + 90).astype(np.uint8)).save(original)  # faded: tone steps apply
    outcome = process_scan(_job(original, tmp_path), kit)
    assert outcome.status == "mastered", outcome.reason
    assert {"levels", "upscale", "finish", "fidelity-guard", "tag"} <= {s.step for s in outcome.steps}
    for step in outcome.steps:
        assert step.type == declared[step.step].event_type, step.step
    assert set(outcome.timings) - {"model"} <= {d.timing for d in declared.values()}
    assert list(_STAGES) == list(dict.fromkeys(d.timing for d in declared.values()))
