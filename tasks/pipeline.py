"""One scan from original to tagged master: decode → QA → plan → denoise → upscale → finish → tag.

Runs inside a model worker (the worker lends its loaded models through a Toolkit) but knows
nothing of Ray, Prefect or the catalog: it returns a ScanOutcome that the driver records.
Every step it applies becomes a StepRecord, embedded in the master's XMP and returned.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import cv2
import numpy as np

from config.recipe import Recipe
from tasks import qa as qa_stage
from tasks.finish import fidelity_blend
from tasks.imageio import DecodedImage, ScanError, decode, from_float, to_float
from tasks.keys import stable_uuid
from tasks.plan import Plan, plan_scan
from tasks.restore import denoise_nlmeans
from tasks.tag import icc_problem, write_access, write_master
from tasks.types import (
    METADATA_TAGGING, QUALITY_ASSESSMENT, RESTORATION, UPSCALING, VALIDATION,
    AgentInfo, AuditRecord, ScanJob, ScanOutcome, StepRecord, utc_now,
)
from tasks.upscale import upscale_alpha, upscale_to
from tasks.xmp import read_source_metadata


class UpscalerLike(Protocol):
    scale: int
    agent: AgentInfo
    last_inference_seconds: float

    def upscale(self, rgb: np.ndarray, tile: int, overlap: int) -> np.ndarray: ...


class DenoiserLike(Protocol):
    agent: AgentInfo
    last_inference_seconds: float

    def denoise(self, rgb: np.ndarray, sigma: float) -> np.ndarray: ...


@dataclass
class Toolkit:
    """What a worker lends the pipeline: loaded models and the agents to credit."""

    upscalers: dict[str, UpscalerLike]
    denoiser: DenoiserLike | None
    software: AgentInfo
    host: AgentInfo


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


def process_scan(job: ScanJob, kit: Toolkit) -> ScanOutcome:
    """Master one scan. Never raises for a bad scan: failures come back as outcomes."""
    run = _Run(job, kit)
    path = Path(job.original_path)
    try:
        with run.timed("decode"):
            image = decode(path, max_pixels=job.max_pixels)
    except (ScanError, OSError) as exc:
        reason = exc.reason if isinstance(exc, ScanError) else f"cannot read: {exc}"
        return _invalid(run, reason)
    try:
        return _master(run, image)
    except Exception as exc:  # one bad scan never stops the batch: report it, go on
        return _error(run, f"{type(exc).__name__}: {exc}")


def _master(run: _Run, image: DecodedImage) -> ScanOutcome:
    job, kit = run.job, run.kit
    recipe = Recipe.model_validate(job.recipe)

    with run.timed("qa"):
        when = utc_now()
        report = qa_stage.assess(image)
        run.add_step(
            QUALITY_ASSESSMENT, "qa", f"verdict {report.verdict}" + "".join(f"; {r}" for r in report.reasons),
            {"verdict": report.verdict, "reasons": report.reasons, "findings": report.findings},
            outcome="warning" if report.verdict == "warn" else "success", when=when,
        )

    upscaler = kit.upscalers.get(recipe.upscale.model)
    if upscaler is None:
        raise RuntimeError(f"model {recipe.upscale.model!r} is not loaded in this worker")
    plan = plan_scan(
        recipe, report.findings, image.width, image.height,
        model_scale=upscaler.scale, denoiser_available=kit.denoiser is not None,
    )
    rgb = to_float(image.pixels)
    if image.is_gray:  # the models take RGB; the master goes back to one channel
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)

    restored = _denoise(run, plan, rgb)
    ai = _upscale(run, plan, recipe, restored, upscaler)

    with run.timed("finish"):
        when = utc_now()
        strength = recipe.finish.fidelity_blend
        master_rgb = fidelity_blend(ai, restored, strength)
        run.add_step(
            RESTORATION, "finish", f"fidelity blend with a Lanczos upscale of the restored scan at {strength}",
            {"fidelity_blend": strength}, when=when,
        )

    return _tag(run, image, recipe, plan, report, master_rgb)


def _denoise(run: _Run, plan: Plan, rgb: np.ndarray) -> np.ndarray:
    if plan.denoise_method == "off":
        return rgb
    with run.timed("denoise"):
        when = utc_now()
        params = {"method": plan.denoise_method, "sigma": plan.denoise_sigma}
        if plan.denoise_method == "ffdnet":
            denoiser = run.kit.denoiser
            out = denoiser.denoise(rgb, plan.denoise_sigma)
            run.timings["model"] = run.timings.get("model", 0.0) + denoiser.last_inference_seconds
            run.add_step(RESTORATION, "denoise", f"FFDNet at noise level {plan.denoise_sigma}", params,
                         model=denoiser.agent, when=when)
        else:
            out = denoise_nlmeans(rgb, plan.denoise_sigma)
            run.add_step(RESTORATION, "denoise", f"non-local means at noise level {plan.denoise_sigma}",
                         params, when=when)
    return out


def _upscale(run: _Run, plan: Plan, recipe: Recipe, rgb: np.ndarray, upscaler: UpscalerLike) -> np.ndarray:
    with run.timed("upscale"):
        when = utc_now()
        tile, overlap = recipe.upscale.tile, recipe.upscale.tile_overlap
        model_seconds = 0.0

        def model(x: np.ndarray) -> np.ndarray:
            nonlocal model_seconds
            out = upscaler.upscale(x, tile, overlap)
            model_seconds += upscaler.last_inference_seconds
            return out

        out = upscale_to(rgb, plan.target_width, plan.target_height, plan.model_passes,
                         model if plan.model_passes else None)
        run.timings["model"] = run.timings.get("model", 0.0) + model_seconds
        h, w = rgb.shape[:2]
        params = {
            "model": plan.upscale_model, "model_scale": upscaler.scale if plan.model_passes else None,
            "passes": plan.model_passes, "input_size": [w, h],
            "output_size": [plan.target_width, plan.target_height],
            "tile": tile, "tile_overlap": overlap,
        }
        detail = (f"{plan.upscale_model} x{upscaler.scale}^{plan.model_passes} to "
                  f"{plan.target_width}x{plan.target_height}" if plan.model_passes
                  else f"kept at {plan.target_width}x{plan.target_height} (no model pass)")
        run.add_step(UPSCALING, "upscale", detail, params,
                     model=upscaler.agent if plan.model_passes else None, when=when)
    return out


def _tag(
    run: _Run, image: DecodedImage, recipe: Recipe, plan: Plan, report: qa_stage.QAReport,
    master_rgb: np.ndarray,
) -> ScanOutcome:
    job, kit = run.job, run.kit
    with run.timed("tag"):
        when = utc_now()
        if image.is_gray:
            master_values = cv2.cvtColor(master_rgb, cv2.COLOR_RGB2GRAY)
        else:
            master_values = master_rgb
        pixels = from_float(master_values, image.bit_depth)
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
    return ScanOutcome(
        derivation_key=job.derivation_key, original_sha256=job.original_sha256, status="mastered",
        qa=report.to_dict(), resolved_recipe=resolved, plan_reasons=plan.reasons,
        steps=run.steps, master=master, access=access, timings=run.timings,
    )


def _invalid(run: _Run, reason: str) -> ScanOutcome:
    """The file itself is bad: deterministic, so keyed by content and software, not by run."""
    job = run.job
    software_version = run.kit.software.version
    step = StepRecord(
        event_uuid=stable_uuid("invalid", job.original_sha256, software_version),
        type=VALIDATION, step="decode", when=utc_now(), outcome="failure", detail=reason,
        agents=[run.kit.software, run.kit.host],
        parameters={"software_version": software_version, "recipe_hash": job.recipe_hash,
                    "derivation_key": job.derivation_key},
    )
    return ScanOutcome(
        derivation_key=job.derivation_key, original_sha256=job.original_sha256, status="failed",
        reason=reason, failure_kind="invalid", steps=[step], timings=run.timings,
    )


def _error(run: _Run, reason: str) -> ScanOutcome:
    """Processing failed (maybe transiently): keyed by run, so the next run retries it."""
    job = run.job
    # Only this run's failure event is recorded: the steps that did succeed keep their
    # derivation ids free for the run that masters the scan (their times must match its XMP).
    qa_done = next((s for s in run.steps if s.type == QUALITY_ASSESSMENT), None)
    step = StepRecord(
        event_uuid=stable_uuid("error", job.run_uuid, job.derivation_key),
        type={"qa": QUALITY_ASSESSMENT, "upscale": UPSCALING, "tag": METADATA_TAGGING}.get(run.stage, RESTORATION),
        step=run.stage, when=utc_now(), outcome="failure", detail=reason,
        agents=[run.kit.software, run.kit.host],
        parameters={"recipe_hash": job.recipe_hash, "derivation_key": job.derivation_key,
                    "qa": qa_done.parameters if qa_done else None},
    )
    return ScanOutcome(
        derivation_key=job.derivation_key, original_sha256=job.original_sha256, status="failed",
        reason=f"{run.stage} failed: {reason}", failure_kind="error", steps=[step], timings=run.timings,
    )
