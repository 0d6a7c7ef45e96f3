"""One scan from original to tagged master, in the practitioners' order:

decode → QA (diagnosis + capture spec: the gate) → plan → tone/colour → dust and scratches →
denoise → deblur → upscale → finish (colour transfer, fidelity blend, faces, grain, sharpening)
→ fidelity guard → tag (master, access copy, review sheet).

Runs inside a model worker (the worker lends its loaded models through a Toolkit) but knows
nothing of Ray, Prefect or the catalog: it returns a ScanOutcome that the driver records.
Every step is declared once below (tasks.steps.context.StepDef: name, event type, when it
applies) and runs inside the one StepContext, which times it and records it as a StepRecord,
embedded in the master's XMP and returned.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from config.capture import CaptureProfile
from config.recipe import Recipe, canonical_json
from tasks.files.atomic import sha256_file
from tasks.files.imageio import DecodedImage, decode, from_float, inspect, quantize_in_place, to_float
from tasks.files.limits import Limits
from tasks.files.tag import icc_problem, write_access, write_master
from tasks.files.xmp import read_source_metadata
from tasks.qa import assessment as qa_stage
from tasks.qa.capture import CaptureCheck, check_capture
from tasks.records.failures import DISK_FULL, TOO_LARGE, TRANSIENT, ScanError, is_disk_full, scan_boundary
from tasks.records.item_metadata import ItemMetadata
from tasks.records.keys import stable_uuid
from tasks.records.results import FailureKind, ScanStatus, StepOutcome, Verdict
from tasks.records.types import (
    METADATA_TAGGING,
    QUALITY_ASSESSMENT,
    RESTORATION,
    UPSCALING,
    AuditRecord,
    ScanJob,
    ScanOutcome,
    StepRecord,
    WrittenFile,
    utc_now,
)
from tasks.reports.review import review_sheet, write_review_sheet
from tasks.steps.context import DECODE, StepContext, StepDef, Toolkit, UpscalerLike
from tasks.steps.deblur import deblur, psf_from_findings
from tasks.steps.faces import blend_by_mask, face_mask
from tasks.steps.fidelity import fidelity_check
from tasks.steps.finish import add_grain, blended_at_scan_size, color_transfer, consistency, fidelity_blend, sharpen
from tasks.steps.inpaint import inpaint
from tasks.steps.plan import Plan, plan_scan
from tasks.steps.restore import aligned_bands, denoise_nlmeans, resize_rows
from tasks.steps.tone import clahe_luminance, levels, white_balance
from tasks.steps.upscale import self_ensemble, upscale_alpha, upscale_to

__all__ = ["STEPS", "Toolkit", "process_scan", "rejection_uuid"]


# The steps, in the order they run: name, event type, when each applies (a function of the Plan).
QA = StepDef("qa", QUALITY_ASSESSMENT)
LEVELS = StepDef("levels", RESTORATION, lambda plan: bool(plan.levels), stage="tone")
CLAHE = StepDef("clahe", RESTORATION, lambda plan: bool(plan.clahe), stage="tone")
WHITE_BALANCE = StepDef("white-balance", RESTORATION, lambda plan: bool(plan.white_balance), stage="tone")
INPAINT = StepDef("inpaint", RESTORATION, lambda plan: bool(plan.inpaint), stage="cleanup")
DENOISE = StepDef("denoise", RESTORATION, lambda plan: plan.denoise_method != "off")
DEBLUR = StepDef("deblur", RESTORATION, lambda plan: bool(plan.deblur))
UPSCALE = StepDef("upscale", UPSCALING)
FINISH = StepDef("finish", RESTORATION)
FACE_PROTECTION = StepDef("face-protection", RESTORATION, lambda plan: bool(plan.faces), stage="finish")
GUARD = StepDef("fidelity-guard", QUALITY_ASSESSMENT, stage="guard")
TAG = StepDef("tag", METADATA_TAGGING)
STEPS = (QA, LEVELS, CLAHE, WHITE_BALANCE, INPAINT, DENOISE, DEBLUR, UPSCALE, FINISH, FACE_PROTECTION, GUARD, TAG)

# Which tone function each tone step runs, with the plan's keyword arguments for it.
_TONE = ((LEVELS, levels, "levels"), (CLAHE, clahe_luminance, "clahe"),
         (WHITE_BALANCE, white_balance, "white_balance"))


def process_scan(job: ScanJob, kit: Toolkit) -> ScanOutcome:
    """Master one scan. Never raises for a bad scan: failures come back as outcomes."""
    run = StepContext(job, kit)
    path = Path(job.original_path)
    try:
        with run.step(DECODE), scan_boundary(path):  # whatever a decoder raises is this scan's failure
            image = decode(path, max_pixels=job.max_pixels, max_bytes=job.max_bytes)
    except ScanError as exc:
        if exc.kind in TRANSIENT:  # unreadable now or out of memory: the next run tries again
            return _error(run, exc.reason, exc.kind)
        return _invalid(run, exc.reason, exc.kind)
    try:
        if image.notes:  # conversions on reading (CMYK → RGB, 1-bit → 8-bit…) are part of provenance
            run.record(DECODE, utc_now(), "; ".join(image.notes), {"notes": image.notes})
        outcome = _master(run, image)
    except Exception as exc:  # noqa: BLE001 - one bad scan never stops the batch: report it, go on
        outcome = _error(run, f"{type(exc).__name__}: {exc}", DISK_FULL if is_disk_full(exc) else None)
    outcome.notes = list(image.notes)
    return outcome


def _master(run: StepContext, image: DecodedImage) -> ScanOutcome:
    recipe = Recipe.model_validate(run.job.recipe)
    qa = _qa(run, image)
    if qa.verdict == Verdict.FAIL:
        return _rejected(run, qa)
    upscaler = _upscaler(run.kit, recipe)
    plan = plan_scan(
        recipe, qa.report.findings, image.width, image.height, model_scale=upscaler.scale,
        model_name=upscaler.card.name, model_training=upscaler.card.training,
        denoiser_available=run.kit.denoiser is not None, problems=qa.report.problems,
        has_mask=qa.report.scratch_mask is not None, face_detector_available=run.kit.faces is not None,
        chroma_subsampled=image.chroma_subsampled,
    )
    # Each step's result replaces the last (no name keeps an earlier one alive: memory).
    restored = _tone(run, plan, _model_input(image))
    if INPAINT.applies(plan) and qa.report.scratch_mask is not None:
        restored = _inpaint(run, plan, restored, qa.report.scratch_mask, qa.report.speck_mask)
    if DENOISE.applies(plan):
        restored = _denoise(run, plan, restored)
    if DEBLUR.applies(plan):
        restored = _deblur(run, plan, restored)
    ai = _upscale(run, plan, recipe, restored, upscaler)
    master_rgb, faces, model_result = _finish(run, plan, recipe, ai, restored)
    flags = _guard(run, recipe, master_rgb if model_result is None else model_result, restored,
                   judged="the master" if model_result is None else "the model's result before the consistency step",
                   grain_sigma=plan.grain_left_to_model)
    return _tag(run, image, recipe, plan, qa.parameters, master_rgb, faces, flags)  # consumes master_rgb


def _upscaler(kit: Toolkit, recipe: Recipe) -> UpscalerLike:
    """The run loaded the recipe's model, or its fallback when the model's weights were missing."""
    upscaler = kit.upscalers.get(recipe.upscale.model) or kit.upscalers.get(recipe.upscale.fallback_model or "")
    if upscaler is None:
        raise RuntimeError(f"model {recipe.upscale.model!r} is not loaded in this worker")
    return upscaler


def _model_input(image: DecodedImage) -> np.ndarray:
    rgb = to_float(image.pixels)
    if image.is_gray:  # the models take RGB; the master goes back to one channel
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    return rgb


# --- QA gate ---------------------------------------------------------------------------------

@dataclass
class _Gate:
    """The QA gate's result: the diagnosis, the capture check, the verdict and its parameters."""

    report: qa_stage.QAReport
    capture: CaptureCheck | None
    verdict: Verdict
    parameters: dict[str, Any]
    when: str


def _qa(run: StepContext, image: DecodedImage) -> _Gate:
    with run.step(QA) as step:
        damage = _find_damage(run, image)
        report = qa_stage.assess(image, damage)
        capture = _capture(run.job, image)
        verdict = Verdict.worst(report.verdict, *([capture.verdict] if capture else []))
        reasons = list(report.reasons) + ([r.message for r in capture.problems] if capture else [])
        params = {"verdict": str(verdict), "reasons": reasons, "findings": report.findings,
                  "capture": capture.to_dict() if capture else None}
        if damage is not None:
            params["damage_detection"] = {k: v for k, v in damage[1].items() if k not in qa_stage.DAMAGE_FINDINGS}
        if verdict != Verdict.FAIL:
            step.record(f"verdict {verdict}" + "".join(f"; {r}" for r in reasons), params,
                        model=run.kit.damage.agent if run.kit.damage is not None else None,
                        outcome=StepOutcome.WARNING if verdict == Verdict.WARN else StepOutcome.SUCCESS)
    return _Gate(report, capture, verdict, params, step.when)


def _find_damage(run: StepContext, image: DecodedImage) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The learned detector's damage mask and report, where the worker has it (else QA's classical
    detector finds scratches and dust on its own)."""
    if run.kit.damage is None:
        return None
    found = run.kit.damage.detect(_model_input(image))
    run.model_time(run.kit.damage.last_inference_seconds)
    return found


def _capture(job: ScanJob, image: DecodedImage) -> CaptureCheck | None:
    if not job.capture_profile:
        return None
    profile = CaptureProfile.model_validate(job.capture_profile)
    limits = Limits(job.max_pixels, job.max_bytes)
    item = _item(job)  # the object's measured size makes the effective ppi judgeable
    physical = item.physical.long_edge_mm() if item and item.physical else None
    return check_capture(inspect(Path(job.original_path), limits), image.icc, profile,
                         physical_long_edge_mm=physical)


def _item(job: ScanJob) -> ItemMetadata | None:
    return ItemMetadata.from_dict(job.item_metadata) if job.item_metadata else None


def rejection_uuid(derivation_key: str, capture_profile: dict[str, Any] | None) -> str:
    """The id of the event that records a QA-gate rejection: the same scan, recipe and profile
    always give the same id, so a re-run knows the answer without redoing it."""
    profile_hash = hashlib.sha256(canonical_json(capture_profile).encode()).hexdigest()
    return stable_uuid("rejected", derivation_key, profile_hash)


# --- restoration: clean up before any AI -----------------------------------------------------

def _tone(run: StepContext, plan: Plan, rgb: np.ndarray) -> np.ndarray:
    for definition, fn, kwargs_of in _TONE:
        if definition.applies(plan):
            with run.step(definition) as step:
                rgb, used = fn(rgb, **getattr(plan, kwargs_of))
                step.record(_describe(definition.name, used), used)
    return rgb


def _inpaint(run: StepContext, plan: Plan, rgb: np.ndarray, mask: np.ndarray,
             specks: np.ndarray | None) -> np.ndarray:
    assert plan.inpaint is not None  # INPAINT.applies(plan)
    with run.step(INPAINT) as step:
        out, used = inpaint(rgb, mask, **plan.inpaint, footprint=specks)
        step.record("dust and scratches inpainted inside the detected mask", used)
    return out


def _denoise(run: StepContext, plan: Plan, rgb: np.ndarray) -> np.ndarray:
    with run.step(DENOISE) as step:
        params = {"method": plan.denoise_method, "sigma": plan.denoise_sigma}
        if plan.denoise_method == "ffdnet":
            denoiser = run.kit.denoiser
            assert denoiser is not None  # the plan chose ffdnet: the worker has it loaded
            out = denoiser.denoise(rgb, plan.denoise_sigma)
            run.model_time(denoiser.last_inference_seconds)
            params |= _execution(denoiser.last_execution)
            step.record(f"FFDNet at noise level {plan.denoise_sigma}", params, model=denoiser.agent)
        else:
            out = denoise_nlmeans(rgb, plan.denoise_sigma)
            step.record(f"non-local means at noise level {plan.denoise_sigma}", params)
    return out


def _deblur(run: StepContext, plan: Plan, rgb: np.ndarray) -> np.ndarray:
    assert plan.deblur is not None  # DEBLUR.applies(plan)
    with run.step(DEBLUR) as step:
        out, used = deblur(rgb, **plan.deblur)
        step.record(f"{plan.deblur['blur'].get('type')} blur deconvolved", used)
    return out


# --- upscaling, after restoring ---------------------------------------------------------------

def _upscale(run: StepContext, plan: Plan, recipe: Recipe, rgb: np.ndarray, upscaler: UpscalerLike) -> np.ndarray:
    with run.step(UPSCALE) as step:
        tile, overlap = recipe.upscale.tile, recipe.upscale.tile_overlap
        model_seconds = 0.0
        execution: dict[str, Any] = {}

        def model(x: np.ndarray, reduce: int) -> np.ndarray:
            nonlocal model_seconds, execution
            out = upscaler.upscale(x, tile, overlap, reduce)
            model_seconds += upscaler.last_inference_seconds
            execution = _execution(upscaler.last_execution, execution) | {"output_block_mean": reduce}
            return out

        out = upscale_to(rgb, plan.target_width, plan.target_height, plan.model_passes,
                         self_ensemble(model, plan.ensemble_views) if plan.model_passes else None, upscaler.scale)
        run.model_time(model_seconds)
        h, w = rgb.shape[:2]
        params = {
            "model": plan.upscale_model, "model_scale": upscaler.scale if plan.model_passes else None,
            "passes": plan.model_passes, "input_size": [w, h],
            "output_size": [plan.target_width, plan.target_height],
            "tile": tile, "tile_overlap": overlap, **execution,
            **({"ensemble_views": plan.ensemble_views} if plan.ensemble_views > 1 else {}),
        }
        averaged = f" averaged over {plan.ensemble_views} views" if plan.ensemble_views > 1 else ""
        detail = (f"{plan.upscale_model} x{upscaler.scale}^{plan.model_passes}{averaged} to "
                  f"{plan.target_width}x{plan.target_height}" if plan.model_passes
                  else f"kept at {plan.target_width}x{plan.target_height} (no model pass)")
        step.record(detail, params, model=upscaler.agent if plan.model_passes else None)
    return out


# --- finishing, lightly -----------------------------------------------------------------------

def _finish(
    run: StepContext, plan: Plan, recipe: Recipe, ai: np.ndarray, restored: np.ndarray,
) -> tuple[np.ndarray, list, np.ndarray | None]:
    """The finished master, the faces found, and (when the consistency step ran) the model's
    result before it, which is what the fidelity guard must judge: the step pulls the master
    back onto the scan and so would hide what the model invented."""
    fin = plan.finish
    faces: list = []
    with run.step(FINISH) as step:
        used: dict[str, Any] = {}
        # In place, band by band (tasks.steps.finish): the model's output is not needed again, and a
        # 24 MP scan's x2 master is 1.15 GB in float32 — one such array, not five.
        if np.shares_memory(ai, restored):  # no model pass at the scan's size: the same array
            ai = ai.copy()
        out, used["color_transfer"] = color_transfer(ai, restored, strength=fin["color_transfer"], out=ai)
        judged = None
        if fin["consistency"]:  # the guard compares at the scan's size: shrunk now, band by band
            judged = blended_at_scan_size(out, restored, fin["fidelity_blend"])
        psf = psf_from_findings(fin["consistency_blur"]) if fin["consistency_blur"] else None
        out, used["consistency"] = consistency(out, restored, strength=fin["consistency"], psf=psf, out=out)
        out = fidelity_blend(out, restored, fin["fidelity_blend"], out=out)
        used["fidelity_blend"] = fin["fidelity_blend"]
        if FACE_PROTECTION.applies(plan):
            out, faces = _protect_faces(run, plan, out, restored)
        seed = int(hashlib.sha256(f"{recipe.seed}:{run.job.original_sha256}".encode()).hexdigest()[:8], 16)
        out, used["grain"] = add_grain(out, amount=fin["grain"], seed=seed, out=out)
        out, used["sharpen"] = sharpen(out, amount=fin["sharpen"], out=out)
        consistency_used = used["consistency"]["strength"] if used["consistency"]["applied"] else "off"
        step.record(f"colour transfer {fin['color_transfer']}, consistency {consistency_used}, "
                    f"fidelity blend {fin['fidelity_blend']}, grain {fin['grain']}, sharpen {fin['sharpen']}", used)
    return out, faces, judged


def _protect_faces(run: StepContext, plan: Plan, out: np.ndarray, restored: np.ndarray) -> tuple[np.ndarray, list]:
    """Inside faces, keep only `ai_share` of the model's result: likeness over enhancement.
    In place, and only in the bands of rows a face reaches. Part of the finish step's time."""
    when = utc_now()
    detector = run.kit.faces
    assert detector is not None and plan.faces is not None  # FACE_PROTECTION.applies(plan)
    faces = [f for f in detector.detect(restored) if f.score >= plan.faces["score_threshold"]]
    h, w = out.shape[:2]
    sh, sw = restored.shape[:2]
    params = {**plan.faces, "faces": [f.to_dict() for f in faces]}
    if faces:
        scaled = [(round(x * w / sw), round(y * h / sh), round(bw * w / sw), round(bh * h / sh))
                  for x, y, bw, bh in (f.box for f in faces)]
        mask = face_mask((h, w), scaled) * (1.0 - plan.faces["ai_share"])
        for big, small in aligned_bands(h, sh):
            if mask[big].any():
                gentle = resize_rows(restored, w, h, big, small)
                out[big] = blend_by_mask(out[big], gentle, mask[big])
    run.record(FACE_PROTECTION, when, f"{len(faces)} face(s) kept closer to the scan", params, model=detector.agent)
    return out, faces


def _guard(run: StepContext, recipe: Recipe, judged_rgb: np.ndarray, restored: np.ndarray, *, judged: str,
           grain_sigma: float = 0.0) -> list[str]:
    """A check against invented detail: shrunk back, what the model made must still look like the scan
    (less the grain left for the model to remove, when there is some)."""
    with run.step(GUARD) as step:
        result = fidelity_check(judged_rgb, restored, threshold=recipe.guard.ssim_threshold, grain_sigma=grain_sigma)
        against = "the restored scan" + (f" less its grain (sigma {grain_sigma:.1f})" if grain_sigma > 0 else "")
        step.record(f"SSIM {result.ssim:.3f} of {judged} against {against} (threshold {result.threshold})"
                    + ("" if result.passed else f": flagged for review, {result.reason}"),
                    {**result.to_dict(), "judged": judged},
                    outcome=StepOutcome.SUCCESS if result.passed else StepOutcome.WARNING)
    return [] if result.passed else [f"fidelity guard: {result.reason}"]


# --- tagging --------------------------------------------------------------------------------

def _tag(
    run: StepContext, image: DecodedImage, recipe: Recipe, plan: Plan, qa: dict[str, Any],
    master_rgb: np.ndarray, faces: list, flags: list[str],
) -> ScanOutcome:
    job = run.job
    with run.step(TAG) as step:
        master_values = cv2.cvtColor(master_rgb, cv2.COLOR_RGB2GRAY) if image.is_gray else master_rgb
        pixels = quantize_in_place(np.ascontiguousarray(master_values, dtype=np.float32), image.bit_depth)  # float gone
        alpha = None
        if image.alpha is not None:
            alpha = from_float(
                upscale_alpha(to_float(image.alpha), plan.target_width, plan.target_height), image.bit_depth,
            )
        # A profile that cannot describe the pixels (say RGB on a grayscale scan) would make the
        # master lie about its colours: it is left out, and the step says why.
        icc_dropped = icc_problem(image.icc, image.is_gray)
        icc = None if icc_dropped else image.icc
        # The master keeps the original's physical size: its ppi is the scan's times the scale,
        # marked as interpolated, and the scan's own sampling rate goes with it.
        master_ppi = round(image.ppi * plan.target_width / image.width, 3) if image.ppi else None
        item = _item(job)
        step.record("master TIFF and access JPEG written with embedded provenance",
                    _tag_parameters(job, recipe, image, icc_dropped, master_ppi, item))
        resolved = plan.resolved(recipe)
        record = _audit_record(run, recipe, plan, resolved)
        source = read_source_metadata(Path(job.original_path))
        master = write_master(
            Path(job.master_path), pixels, alpha, icc=icc, ppi=master_ppi, capture_ppi=image.ppi, item=item,
            compression=recipe.output.master_compression, record=record, source=source, uuid=job.master_uuid,
        )
        access = write_access(
            Path(job.access_path), pixels, alpha, icc=icc, quality=recipe.output.access_quality,
            long_edge=recipe.output.access_long_edge, record=record, source=source, uuid=job.access_uuid,
            capture_ppi=image.ppi, item=item,
        )
        if job.signing:  # last: any later change to the file, XMP included, would break the signature
            master, access = _sign(job, record, master, access)
        review = None
        if recipe.output.review_sheet and job.review_path:
            review = _review(job, image, pixels, faces)
        iiif = _iiif(job, master) if job.iiif else []
    return ScanOutcome(
        derivation_key=job.derivation_key, original_sha256=job.original_sha256, status=ScanStatus.MASTERED,
        qa=qa, resolved_recipe=resolved, plan_reasons=plan.reasons, flags=flags,
        steps=run.steps, master=master, access=access, review=review, iiif=iiif, timings=run.timings,
    )


def _tag_parameters(
    job: ScanJob, recipe: Recipe, image: DecodedImage, icc_dropped: str | None, master_ppi: float | None,
    item: ItemMetadata | None,
) -> dict[str, Any]:
    return {
        "master": {"format": "TIFF", "bit_depth": image.bit_depth, "compression": recipe.output.master_compression},
        "access": {"format": "JPEG", "quality": recipe.output.access_quality,
                   "long_edge": recipe.output.access_long_edge},
        "review_sheet": recipe.output.review_sheet,
        "icc_carried": image.icc is not None and not icc_dropped, "icc_dropped": icc_dropped,
        "ppi": {"capture": image.ppi, "master": master_ppi,
                "interpolated": bool(master_ppi and master_ppi != image.ppi)},
        "item": item.identifier if item else None,
        "content_credentials": "C2PA, signed after this XMP" if job.signing else None,
    }


def _audit_record(run: StepContext, recipe: Recipe, plan: Plan, resolved: dict[str, Any]) -> AuditRecord:
    """How the master was made, as its XMP carries it (the catalog's record must equal it)."""
    job, kit = run.job, run.kit
    return AuditRecord(
        master={"uuid": job.master_uuid, "path": job.master_path, "sha256": ""},
        original={"uuid": job.original_uuid, "path": job.catalogued_path or job.original_path,
                  "sha256": job.original_sha256, "item_uuid": job.item_uuid, "identifier": job.item_identifier},
        derivation_key=job.derivation_key,
        recipe={"name": recipe.name, "hash": job.recipe_hash, "resolved": resolved, "plan_reasons": plan.reasons},
        run={"uuid": job.run_uuid},
        software={"name": kit.software.name, "version": kit.software.version},
        models=list(run.models),
        steps=list(job.prior_steps) + run.steps,
    )


def _sign(job: ScanJob, record: AuditRecord, master: WrittenFile, access: WrittenFile) -> tuple[WrittenFile, WrittenFile]:
    """Content credentials on both files; the sha256 the catalog records is the signed file's."""
    from tasks.files.content_credentials import sign_written
    from tasks.files.xmp import digital_source_type

    assert job.signing is not None
    identity = _signing_identity(job.signing["cert"] or "", job.signing["key"] or "", job.signing.get("tsa_url"))
    scan, dst = Path(job.original_path), digital_source_type(record)
    return (sign_written(master, record, scan=scan, signing=identity, digital_source_type=dst),
            sign_written(access, record, scan=scan, signing=identity, digital_source_type=dst))


@functools.lru_cache(maxsize=4)
def _signing_identity(cert: str, key: str, tsa_url: str | None) -> Any:
    """Loaded once per worker (and checked by a probe signature), not once per scan."""
    from tasks.files.content_credentials import SigningIdentity

    return SigningIdentity.from_files(Path(cert), Path(key), tsa_url=tsa_url)


def _iiif(job: ScanJob, master: WrittenFile) -> list[WrittenFile]:
    """IIIF level-0 tiles of the master and of its scan under ARCHIVE/iiif/<item>/<sha256[:16]>: named
    by content, so a scan mastered again (another recipe) keeps its tiles, made once."""
    from tasks.files.iiif_tiles import write_iiif

    assert job.iiif is not None
    made = []
    for of, path, sha256 in (("master", master.path, master.sha256),
                             ("original", job.original_path, job.original_sha256)):
        tiles = write_iiif(Path(path), Path(job.iiif["root"]), f"{job.item_uuid}/{sha256[:16]}",
                           base_url=job.iiif["base_url"])
        manifest = tiles.path / "manifest-sha256.txt"  # its sha256 covers every tile: fixity checks it
        made.append(WrittenFile(
            uuid=stable_uuid("iiif", tiles.sha256), role="iiif", path=str(manifest), sha256=tiles.sha256,
            size=manifest.stat().st_size, format="IIIF", width=tiles.width, height=tiles.height, channels=3,
            bit_depth=8, has_icc=False, of=of,
        ))
    return made


def _review(job: ScanJob, image: DecodedImage, master: np.ndarray, faces: list) -> WrittenFile:
    sheet = review_sheet(image.pixels, master, faces=[f.box for f in faces][:3],
                         title=f"{Path(job.original_path).name} → {Path(job.master_path).name}")
    path = Path(job.review_path)
    write_review_sheet(path, sheet)
    return WrittenFile(
        uuid=stable_uuid("review", job.derivation_key), role="review", path=str(path),
        sha256=sha256_file(path), size=path.stat().st_size, format="PNG",
        width=int(sheet.shape[1]), height=int(sheet.shape[0]), channels=3, bit_depth=8, has_icc=False,
    )


def _execution(last: dict[str, Any], earlier: dict[str, Any] | None = None) -> dict[str, Any]:
    """How a model ran, for the step's parameters: the precision (it changes pixels), the tile and
    overlap actually used (the device may choose them; they change no pixel beyond rounding), and
    how many windows fp16 overflowed in and were run again in fp32, summed over the step's passes."""
    out: dict[str, Any] = {k: last[k] for k in ("precision", "tile", "tile_overlap", "batch") if k in last}
    redone = int(last.get("fp32_redone_windows", 0)) + int((earlier or {}).get("fp32_redone_windows", 0))
    if redone:
        out["fp32_redone_windows"] = redone
    return out


def _describe(name: str, used: dict[str, Any]) -> str:
    strength = used.get("strength")
    return f"{name} at strength {strength}" if strength is not None else name


# --- failures: one way to fail a scan -------------------------------------------------------

def _failed(
    run: StepContext, kind: FailureKind, reason: str, *, event_uuid: str, definition: StepDef,
    parameters: dict[str, Any], qa: dict[str, Any] | None, detail: str | None = None,
    when: str | None = None, file_kind: str | None = None,
) -> ScanOutcome:
    """The scan failed: one failure event (the step that failed, its type, why) and the outcome."""
    step = StepRecord(
        event_uuid=event_uuid, type=definition.event_type, step=definition.timing, when=when or utc_now(),
        outcome=StepOutcome.FAILURE, detail=detail or reason, agents=run.agents(),
        parameters={**parameters, **run.keys()},
    )
    return ScanOutcome(
        derivation_key=run.job.derivation_key, original_sha256=run.job.original_sha256, status=ScanStatus.FAILED,
        reason=reason, failure_kind=kind, qa=qa, steps=[step], timings=run.timings, kind=file_kind,
    )


def _invalid(run: StepContext, reason: str, kind: str) -> ScanOutcome:
    """The file itself is bad: deterministic, so keyed by content and software, not by run (a file
    over the size limits also by the limits: raising them tries it again)."""
    job, software_version = run.job, run.kit.software.version
    limits = {"max_pixels": job.max_pixels, "max_bytes": job.max_bytes} if kind == TOO_LARGE else None
    return _failed(
        run, FailureKind.INVALID, reason, definition=DECODE,
        event_uuid=stable_uuid("invalid", job.original_sha256, software_version,
                               *([f"{job.max_pixels}:{job.max_bytes}"] if limits else [])),
        parameters={"software_version": software_version, "kind": kind, **({"limits": limits} if limits else {})},
        qa={"verdict": str(Verdict.FAIL), "reasons": [reason], "findings": {}}, file_kind=kind,
    )


def _rejected(run: StepContext, qa: _Gate) -> ScanOutcome:
    """The QA gate failed: the scan does not meet the capture specification (re-scan it)."""
    capture = qa.capture
    reason = f"QA gate ({capture.profile if capture else 'capture spec'}): " + "; ".join(
        r.message for r in (capture.problems if capture else []) if r.verdict == "fail")
    return _failed(run, FailureKind.REJECTED, reason, definition=QA, when=qa.when,
                   event_uuid=rejection_uuid(run.job.derivation_key, run.job.capture_profile),
                   parameters=qa.parameters, qa=qa.parameters)


def _error(run: StepContext, reason: str, file_kind: str | None = None) -> ScanOutcome:
    """Processing failed (maybe transiently): keyed by run, so the next run retries it.

    Only this run's failure event is recorded: the steps that did succeed keep their derivation
    ids free for the run that masters the scan (their times must match its XMP)."""
    qa_done = next((s for s in run.steps if s.type == QUALITY_ASSESSMENT), None)
    qa = qa_done.parameters if qa_done else None
    return _failed(run, FailureKind.ERROR, f"{run.current.timing} failed: {reason}", detail=reason,
                   definition=run.current, event_uuid=stable_uuid("error", run.job.run_uuid, run.job.derivation_key),
                   parameters={"qa": qa}, qa=qa, file_kind=file_kind)
