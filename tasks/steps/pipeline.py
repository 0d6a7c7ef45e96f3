"""One scan from original to tagged master, in the practitioners' order:

decode → QA (diagnosis + capture spec: the gate) → plan → tone/colour → dust and scratches →
denoise → deblur → upscale → finish (colour transfer, fidelity blend, faces, grain, sharpening)
→ fidelity guard → tag (master, access copy, review sheet).

Runs inside a model worker (the worker lends its loaded models through a Toolkit) but knows
nothing of Ray, Prefect or the catalog: it returns a ScanOutcome that the driver records.
Every step it applies becomes a StepRecord, embedded in the master's XMP and returned.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import cv2
import numpy as np

from config.capture import CaptureProfile
from config.recipe import Recipe, canonical_json
from tasks.files.imageio import DecodedImage, decode, from_float, inspect, quantize_in_place, to_float
from tasks.files.limits import Limits
from tasks.files.tag import icc_problem, write_access, write_master
from tasks.files.xmp import read_source_metadata
from tasks.qa import assessment as qa_stage
from tasks.qa.capture import CaptureCheck, check_capture
from tasks.records.failures import TOO_LARGE, TRANSIENT, ScanError, scan_boundary
from tasks.records.keys import stable_uuid
from tasks.records.types import (
    METADATA_TAGGING,
    QUALITY_ASSESSMENT,
    RESTORATION,
    UPSCALING,
    VALIDATION,
    AgentInfo,
    AuditRecord,
    ScanJob,
    ScanOutcome,
    StepRecord,
    utc_now,
)
from tasks.reports.review import review_sheet, write_review_sheet
from tasks.steps.deblur import deblur, psf_from_findings
from tasks.steps.faces import blend_by_mask, face_mask
from tasks.steps.fidelity import fidelity_check
from tasks.steps.finish import add_grain, blended_at_scan_size, color_transfer, consistency, fidelity_blend, sharpen
from tasks.steps.inpaint import inpaint
from tasks.steps.plan import Plan, plan_scan
from tasks.steps.restore import aligned_bands, denoise_nlmeans, resize_rows
from tasks.steps.tone import clahe_luminance, levels, white_balance
from tasks.steps.upscale import upscale_alpha, upscale_to


class UpscalerLike(Protocol):
    scale: int
    agent: AgentInfo
    last_inference_seconds: float
    last_execution: dict[str, Any]  # how the last call ran: precision, tile, overlap, batch ...

    def upscale(self, rgb: np.ndarray, tile: int, overlap: int, reduce: int = 1) -> np.ndarray: ...


class DenoiserLike(Protocol):
    agent: AgentInfo
    last_inference_seconds: float
    last_execution: dict[str, Any]

    def denoise(self, rgb: np.ndarray, sigma: float) -> np.ndarray: ...


class FaceFinder(Protocol):
    agent: AgentInfo

    def detect(self, rgb: np.ndarray) -> list: ...


@dataclass
class Toolkit:
    """What a worker lends the pipeline: loaded models and the agents to credit."""

    upscalers: dict[str, UpscalerLike]
    denoiser: DenoiserLike | None
    software: AgentInfo
    host: AgentInfo
    faces: FaceFinder | None = None


@dataclass
class _Run:
    """Book-keeping while one scan is processed."""

    job: ScanJob
    kit: Toolkit
    steps: list[StepRecord] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    models: list[AgentInfo] = field(default_factory=list)
    stage: str = "decode"

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        self.stage = stage
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def add_step(
        self, type_: str, step: str, detail: str, parameters: dict[str, Any],
        model: AgentInfo | None = None, outcome: str = "success", when: str | None = None,
    ) -> StepRecord:
        agents = [self.kit.software] + ([model] if model else []) + [self.kit.host]
        if model and model not in self.models:
            self.models.append(model)
        record = StepRecord(
            event_uuid=stable_uuid(self.job.derivation_key, step),
            type=type_, step=step, when=when or utc_now(), outcome=outcome, detail=detail,
            agents=agents,
            parameters={**parameters, "recipe_hash": self.job.recipe_hash,
                        "derivation_key": self.job.derivation_key},
        )
        self.steps.append(record)
        return record

    def model_time(self, seconds: float) -> None:
        self.timings["model"] = self.timings.get("model", 0.0) + seconds


def process_scan(job: ScanJob, kit: Toolkit) -> ScanOutcome:
    """Master one scan. Never raises for a bad scan: failures come back as outcomes."""
    run = _Run(job, kit)
    path = Path(job.original_path)
    try:
        with run.timed("decode"), scan_boundary(path):  # whatever a decoder raises is this scan's failure
            image = decode(path, max_pixels=job.max_pixels, max_bytes=job.max_bytes)
    except ScanError as exc:
        if exc.kind in TRANSIENT:  # unreadable now or out of memory: the next run tries again
            outcome = _error(run, exc.reason)
        else:
            outcome = _invalid(run, exc.reason, exc.kind)
        outcome.kind = exc.kind
        return outcome
    try:
        if image.notes:  # conversions on reading (CMYK → RGB, 1-bit → 8-bit…) are part of provenance
            run.add_step(VALIDATION, "decode", "; ".join(image.notes), {"notes": image.notes})
        outcome = _master(run, image)
    except Exception as exc:  # noqa: BLE001 - one bad scan never stops the batch: report it, go on
        outcome = _error(run, f"{type(exc).__name__}: {exc}")
    outcome.notes = list(image.notes)
    return outcome


def _master(run: _Run, image: DecodedImage) -> ScanOutcome:
    job, kit = run.job, run.kit
    recipe = Recipe.model_validate(job.recipe)

    with run.timed("qa"):
        when = utc_now()
        report = qa_stage.assess(image)
        capture = _capture(job, image)
        verdict, reasons = _verdict(report, capture)
        params = {"verdict": verdict, "reasons": reasons, "findings": report.findings,
                  "capture": capture.to_dict() if capture else None}
        if verdict == "fail":
            return _rejected(run, params, capture, when)
        run.add_step(QUALITY_ASSESSMENT, "qa", f"verdict {verdict}" + "".join(f"; {r}" for r in reasons),
                     params, outcome="warning" if verdict == "warn" else "success", when=when)

    # The run loaded the recipe's model, or its fallback when the model's weights were missing.
    upscaler = kit.upscalers.get(recipe.upscale.model) or kit.upscalers.get(recipe.upscale.fallback_model or "")
    if upscaler is None:
        raise RuntimeError(f"model {recipe.upscale.model!r} is not loaded in this worker")
    plan = plan_scan(
        recipe, report.findings, image.width, image.height, model_scale=upscaler.scale,
        model_name=upscaler.card.name, model_training=upscaler.card.training,
        denoiser_available=kit.denoiser is not None, problems=report.problems,
        has_mask=report.scratch_mask is not None, face_detector_available=kit.faces is not None,
    )
    # Each step's result replaces the last (no name keeps an earlier one alive: memory).
    restored = _tone(run, plan, _model_input(image))
    restored = _cleanup(run, plan, restored, report.scratch_mask)
    restored = _denoise(run, plan, restored)
    restored = _deblur(run, plan, restored)
    ai = _upscale(run, plan, recipe, restored, upscaler)
    master_rgb, faces, model_result = _finish(run, plan, recipe, ai, restored)
    flags = _guard(run, recipe, master_rgb if model_result is None else model_result, restored,
                   judged="the master" if model_result is None else "the model's result before the consistency step")
    return _tag(run, image, recipe, plan, params, master_rgb, faces, flags)  # consumes master_rgb


def _model_input(image: DecodedImage) -> np.ndarray:
    rgb = to_float(image.pixels)
    if image.is_gray:  # the models take RGB; the master goes back to one channel
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    return rgb


# --- QA gate ---------------------------------------------------------------------------------

def _capture(job: ScanJob, image: DecodedImage) -> CaptureCheck | None:
    if not job.capture_profile:
        return None
    profile = CaptureProfile.model_validate(job.capture_profile)
    limits = Limits(job.max_pixels, job.max_bytes)
    return check_capture(inspect(Path(job.original_path), limits), image.icc, profile)


def _verdict(report: qa_stage.QAReport, capture: CaptureCheck | None) -> tuple[str, list[str]]:
    order = {"pass": 0, "warn": 1, "fail": 2}
    verdict, reasons = report.verdict, list(report.reasons)
    if capture is not None:
        reasons += [r.message for r in capture.problems]
        verdict = max(verdict, capture.verdict, key=order.__getitem__)
    return verdict, reasons


def rejection_uuid(derivation_key: str, capture_profile: dict[str, Any]) -> str:
    """The id of the event that records a QA-gate rejection: the same scan, recipe and profile
    always give the same id, so a re-run knows the answer without redoing it."""
    profile_hash = hashlib.sha256(canonical_json(capture_profile).encode()).hexdigest()
    return stable_uuid("rejected", derivation_key, profile_hash)


def _rejected(run: _Run, params: dict[str, Any], capture: CaptureCheck | None, when: str) -> ScanOutcome:
    """The QA gate failed: the scan does not meet the capture specification (re-scan it)."""
    job = run.job
    reason = f"QA gate ({capture.profile if capture else 'capture spec'}): " + "; ".join(
        r.message for r in (capture.problems if capture else []) if r.verdict == "fail")
    step = StepRecord(
        event_uuid=rejection_uuid(job.derivation_key, job.capture_profile),
        type=QUALITY_ASSESSMENT, step="qa", when=when, outcome="failure", detail=reason,
        agents=[run.kit.software, run.kit.host],
        parameters={**params, "recipe_hash": job.recipe_hash, "derivation_key": job.derivation_key},
    )
    return ScanOutcome(
        derivation_key=job.derivation_key, original_sha256=job.original_sha256, status="failed",
        reason=reason, failure_kind="rejected", qa=params, steps=[step], timings=run.timings,
    )


# --- restoration: clean up before any AI -----------------------------------------------------

def _tone(run: _Run, plan: Plan, rgb: np.ndarray) -> np.ndarray:
    steps = [("levels", levels, plan.levels), ("clahe", clahe_luminance, plan.clahe),
             ("white-balance", white_balance, plan.white_balance)]
    if not any(kwargs for _, _, kwargs in steps):
        return rgb
    with run.timed("tone"):
        for name, fn, kwargs in steps:
            if kwargs:
                when = utc_now()
                rgb, used = fn(rgb, **kwargs)
                run.add_step(RESTORATION, name, _describe(name, used), used, when=when)
    return rgb


def _cleanup(run: _Run, plan: Plan, rgb: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if not plan.inpaint or mask is None:
        return rgb
    with run.timed("cleanup"):
        when = utc_now()
        out, used = inpaint(rgb, mask, **plan.inpaint)
        run.add_step(RESTORATION, "inpaint", "dust and scratches inpainted inside the detected mask", used, when=when)
    return out


def _denoise(run: _Run, plan: Plan, rgb: np.ndarray) -> np.ndarray:
    if plan.denoise_method == "off":
        return rgb
    with run.timed("denoise"):
        when = utc_now()
        params = {"method": plan.denoise_method, "sigma": plan.denoise_sigma}
        if plan.denoise_method == "ffdnet":
            denoiser = run.kit.denoiser
            out = denoiser.denoise(rgb, plan.denoise_sigma)
            run.model_time(denoiser.last_inference_seconds)
            params |= _execution(denoiser.last_execution)
            run.add_step(RESTORATION, "denoise", f"FFDNet at noise level {plan.denoise_sigma}", params,
                         model=denoiser.agent, when=when)
        else:
            out = denoise_nlmeans(rgb, plan.denoise_sigma)
            run.add_step(RESTORATION, "denoise", f"non-local means at noise level {plan.denoise_sigma}",
                         params, when=when)
    return out


def _deblur(run: _Run, plan: Plan, rgb: np.ndarray) -> np.ndarray:
    if not plan.deblur:
        return rgb
    with run.timed("deblur"):
        when = utc_now()
        out, used = deblur(rgb, **plan.deblur)
        run.add_step(RESTORATION, "deblur", f"{plan.deblur['blur'].get('type')} blur deconvolved", used, when=when)
    return out


# --- upscaling, after restoring ---------------------------------------------------------------

def _upscale(run: _Run, plan: Plan, recipe: Recipe, rgb: np.ndarray, upscaler: UpscalerLike) -> np.ndarray:
    with run.timed("upscale"):
        when = utc_now()
        tile, overlap = recipe.upscale.tile, recipe.upscale.tile_overlap
        model_seconds, execution = 0.0, {}

        def model(x: np.ndarray, reduce: int) -> np.ndarray:
            nonlocal model_seconds, execution
            out = upscaler.upscale(x, tile, overlap, reduce)
            model_seconds += upscaler.last_inference_seconds
            execution = _execution(upscaler.last_execution, execution) | {"output_block_mean": reduce}
            return out

        out = upscale_to(rgb, plan.target_width, plan.target_height, plan.model_passes,
                         model if plan.model_passes else None, upscaler.scale)
        run.model_time(model_seconds)
        h, w = rgb.shape[:2]
        params = {
            "model": plan.upscale_model, "model_scale": upscaler.scale if plan.model_passes else None,
            "passes": plan.model_passes, "input_size": [w, h],
            "output_size": [plan.target_width, plan.target_height],
            "tile": tile, "tile_overlap": overlap, **execution,
        }
        detail = (f"{plan.upscale_model} x{upscaler.scale}^{plan.model_passes} to "
                  f"{plan.target_width}x{plan.target_height}" if plan.model_passes
                  else f"kept at {plan.target_width}x{plan.target_height} (no model pass)")
        run.add_step(UPSCALING, "upscale", detail, params,
                     model=upscaler.agent if plan.model_passes else None, when=when)
    return out


# --- finishing, lightly -----------------------------------------------------------------------

def _finish(
    run: _Run, plan: Plan, recipe: Recipe, ai: np.ndarray, restored: np.ndarray,
) -> tuple[np.ndarray, list, np.ndarray | None]:
    """The finished master, the faces found, and (when the consistency step ran) the model's
    result before it, which is what the fidelity guard must judge: the step pulls the master
    back onto the scan and so would hide what the model invented."""
    fin = plan.finish
    faces: list = []
    with run.timed("finish"):
        when = utc_now()
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
        if plan.faces:
            out, faces = _protect_faces(run, plan, out, restored)
        seed = int(hashlib.sha256(f"{recipe.seed}:{run.job.original_sha256}".encode()).hexdigest()[:8], 16)
        out, used["grain"] = add_grain(out, amount=fin["grain"], seed=seed, out=out)
        out, used["sharpen"] = sharpen(out, amount=fin["sharpen"], out=out)
        run.add_step(RESTORATION, "finish",
                     f"colour transfer {fin['color_transfer']}, consistency {used['consistency']['strength'] if used['consistency']['applied'] else 'off'}, "
                     f"fidelity blend {fin['fidelity_blend']}, grain {fin['grain']}, sharpen {fin['sharpen']}",
                     used, when=when)
    return out, faces, judged


def _protect_faces(run: _Run, plan: Plan, out: np.ndarray, restored: np.ndarray) -> tuple[np.ndarray, list]:
    """Inside faces, keep only `ai_share` of the model's result: likeness over enhancement.
    In place, and only in the bands of rows a face reaches."""
    when = utc_now()
    detector = run.kit.faces
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
    run.add_step(RESTORATION, "face-protection", f"{len(faces)} face(s) kept closer to the scan", params,
                 model=detector.agent, when=when)
    return out, faces


def _guard(run: _Run, recipe: Recipe, judged_rgb: np.ndarray, restored: np.ndarray, *, judged: str) -> list[str]:
    """A check against invented detail: shrunk back, what the model made must still look like the scan."""
    with run.timed("guard"):
        when = utc_now()
        result = fidelity_check(judged_rgb, restored, threshold=recipe.guard.ssim_threshold)
        run.add_step(QUALITY_ASSESSMENT, "fidelity-guard",
                     f"SSIM {result.ssim:.3f} of {judged} against the restored scan (threshold {result.threshold})"
                     + ("" if result.passed else f": flagged for review, {result.reason}"),
                     {**result.to_dict(), "judged": judged}, outcome="success" if result.passed else "warning", when=when)
    return [] if result.passed else [f"fidelity guard: {result.reason}"]


# --- tagging --------------------------------------------------------------------------------

def _tag(
    run: _Run, image: DecodedImage, recipe: Recipe, plan: Plan, qa: dict[str, Any],
    master_rgb: np.ndarray, faces: list, flags: list[str],
) -> ScanOutcome:
    job, kit = run.job, run.kit
    with run.timed("tag"):
        when = utc_now()
        master_values = cv2.cvtColor(master_rgb, cv2.COLOR_RGB2GRAY) if image.is_gray else master_rgb
        pixels = quantize_in_place(np.ascontiguousarray(master_values, dtype=np.float32), image.bit_depth)  # float gone
        alpha = None
        if image.alpha is not None:
            alpha = from_float(
                upscale_alpha(to_float(image.alpha), plan.target_width, plan.target_height), image.bit_depth,
            )
        resolved = plan.resolved(recipe)
        # A profile that cannot describe the pixels (say RGB on a grayscale scan) would make the
        # master lie about its colours: it is left out, and the step says why.
        icc_dropped = icc_problem(image.icc, image.is_gray)
        icc = None if icc_dropped else image.icc
        run.add_step(
            METADATA_TAGGING, "tag", "master TIFF and access JPEG written with embedded provenance",
            {"master": {"format": "TIFF", "bit_depth": image.bit_depth,
                        "compression": recipe.output.master_compression},
             "access": {"format": "JPEG", "quality": recipe.output.access_quality,
                        "long_edge": recipe.output.access_long_edge},
             "review_sheet": recipe.output.review_sheet,
             "icc_carried": icc is not None, "icc_dropped": icc_dropped},
            when=when,
        )
        record = AuditRecord(
            master={"uuid": job.master_uuid, "path": job.master_path, "sha256": ""},
            original={"uuid": job.original_uuid, "path": job.catalogued_path or job.original_path,
                      "sha256": job.original_sha256,
                      "item_uuid": job.item_uuid, "identifier": job.item_identifier},
            derivation_key=job.derivation_key,
            recipe={"name": recipe.name, "hash": job.recipe_hash, "resolved": resolved,
                    "plan_reasons": plan.reasons},
            run={"uuid": job.run_uuid},
            software={"name": kit.software.name, "version": kit.software.version},
            models=list(run.models),
            steps=list(job.prior_steps) + run.steps,
        )
        source = read_source_metadata(Path(job.original_path))
        master = write_master(
            Path(job.master_path), pixels, alpha, icc=icc, ppi=image.ppi,
            compression=recipe.output.master_compression, record=record, source=source, uuid=job.master_uuid,
        )
        access = write_access(
            Path(job.access_path), pixels, alpha, icc=icc, quality=recipe.output.access_quality,
            long_edge=recipe.output.access_long_edge, record=record, source=source, uuid=job.access_uuid,
        )
        review = None
        if recipe.output.review_sheet and job.review_path:
            review = _review(job, image, pixels, faces)
    return ScanOutcome(
        derivation_key=job.derivation_key, original_sha256=job.original_sha256, status="mastered",
        qa=qa, resolved_recipe=resolved, plan_reasons=plan.reasons, flags=flags,
        steps=run.steps, master=master, access=access, review=review, timings=run.timings,
    )


def _review(job: ScanJob, image: DecodedImage, master: np.ndarray, faces: list):
    from tasks.files.atomic import sha256_file
    from tasks.records.types import WrittenFile

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
    out = {k: last[k] for k in ("precision", "tile", "tile_overlap", "batch") if k in last}
    redone = int(last.get("fp32_redone_windows", 0)) + int((earlier or {}).get("fp32_redone_windows", 0))
    if redone:
        out["fp32_redone_windows"] = redone
    return out


def _describe(name: str, used: dict[str, Any]) -> str:
    strength = used.get("strength")
    return f"{name} at strength {strength}" if strength is not None else name


# --- failures ---------------------------------------------------------------------------------

def _invalid(run: _Run, reason: str, kind: str = "invalid") -> ScanOutcome:
    """The file itself is bad: deterministic, so keyed by content and software, not by run (a file
    over the size limits also by the limits: raising them tries it again)."""
    job = run.job
    software_version = run.kit.software.version
    limits = {"max_pixels": job.max_pixels, "max_bytes": job.max_bytes} if kind == TOO_LARGE else None
    step = StepRecord(
        event_uuid=stable_uuid("invalid", job.original_sha256, software_version,
                               *([f"{job.max_pixels}:{job.max_bytes}"] if limits else [])),
        type=VALIDATION, step="decode", when=utc_now(), outcome="failure", detail=reason,
        agents=[run.kit.software, run.kit.host],
        parameters={"software_version": software_version, "recipe_hash": job.recipe_hash,
                    "derivation_key": job.derivation_key, "kind": kind,
                    **({"limits": limits} if limits else {})},
    )
    return ScanOutcome(
        derivation_key=job.derivation_key, original_sha256=job.original_sha256, status="failed",
        reason=reason, failure_kind="invalid", qa={"verdict": "fail", "reasons": [reason], "findings": {}},
        steps=[step], timings=run.timings,
    )


# The event type of a stage's failure: the stages that are not restoration say what they are.
_STAGE_EVENT_TYPES = {"decode": VALIDATION, "qa": QUALITY_ASSESSMENT, "guard": QUALITY_ASSESSMENT,
                      "upscale": UPSCALING, "tag": METADATA_TAGGING}


def _error(run: _Run, reason: str) -> ScanOutcome:
    """Processing failed (maybe transiently): keyed by run, so the next run retries it."""
    job = run.job
    # Only this run's failure event is recorded: the steps that did succeed keep their
    # derivation ids free for the run that masters the scan (their times must match its XMP).
    qa_done = next((s for s in run.steps if s.type == QUALITY_ASSESSMENT), None)
    step = StepRecord(
        event_uuid=stable_uuid("error", job.run_uuid, job.derivation_key),
        type=_STAGE_EVENT_TYPES.get(run.stage, RESTORATION),
        step=run.stage, when=utc_now(), outcome="failure", detail=reason,
        agents=[run.kit.software, run.kit.host],
        parameters={"recipe_hash": job.recipe_hash, "derivation_key": job.derivation_key,
                    "qa": qa_done.parameters if qa_done else None},
    )
    return ScanOutcome(
        derivation_key=job.derivation_key, original_sha256=job.original_sha256, status="failed",
        reason=f"{run.stage} failed: {reason}", failure_kind="error",
        qa=qa_done.parameters if qa_done else None, steps=[step], timings=run.timings,
    )
