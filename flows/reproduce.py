"""Reproduce a master: re-run its recorded recipe with its recorded model weights on its original,
in this process, into a temporary folder (never over the archive), and compare pixels.

Refuses, before any work, when the original's bytes or the weights' bytes are no longer the
recorded ones (the result could not mean anything). File bytes of two masters always differ (the
XMP carries run ids and times), so the comparison is of pixel digests (tasks.files.digest), with PSNR
and the largest difference when they differ. The check is recorded as a "reproduction" event on
the master (append-only, never part of how the master was made).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.repository import Catalog
from config.recipe import Recipe
from config.settings import Settings
from flows.run_plan import JobOriginal, RunPlan, RunPlanError, plan_run
from models.precision import PrecisionError
from tasks.files.atomic import sha256_file
from tasks.files.digest import compare_pixels, pixel_digest, read_pixels
from tasks.records.keys import derivation_key, stable_uuid
from tasks.records.results import ScanStatus, StepOutcome
from tasks.records.types import DIGEST, INGESTION, REPRODUCTION, AuditRecord, StepRecord, utc_now


class ReproduceRefused(RuntimeError):
    """Reproduction cannot be meaningful (unknown master, changed original or weights ...)."""


@dataclass
class _Recorded:
    record: AuditRecord
    master_uuid: str
    recipe: Recipe
    settings: dict[str, Any]


def reproduce(master: Path, cfg: Settings, *, original: Path | None = None, keep: Path | None = None,
              record_event: bool = True) -> dict[str, Any]:
    """Reproduce `master` and compare; returns the report (see the keys at the end)."""
    master = master.resolve()
    started = time.perf_counter()
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        recorded = _recorded(catalog, master)
    record = recorded.record
    original_path = (original or Path(record.original["path"])).resolve()
    _check_original(original_path, record)
    plan = _check_models(recorded, cfg)
    models = plan.models
    threads, device = _execution(record, cfg)

    from flows.actors import build_toolkit
    from tasks.steps.pipeline import process_scan

    kit, _ = build_toolkit(cfg.models_dir, device, models.upscale_models, models.denoiser,
                           models.face_detector, threads, models.precision, cfg.tile, models.damage_detector)
    with tempfile.TemporaryDirectory(prefix="restorium-reproduce-") as tmp:
        out = Path(keep).resolve() if keep else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        o = record.original
        original_of_job = JobOriginal(
            path=str(original_path), sha256=o["sha256"], item_uuid=o["item_uuid"], item_identifier=o["identifier"],
            original_uuid=o["uuid"], catalogued_path=o["path"],
            prior_steps=tuple(s for s in record.steps if s.type in (INGESTION, DIGEST)))
        job = plan.job(original_of_job, record.derivation_key, record.run["uuid"], into=out,
                       master_uuid=recorded.master_uuid, gate=False)
        outcome = process_scan(job, kit)
        if outcome.status != ScanStatus.MASTERED or outcome.master is None:
            raise ReproduceRefused(f"{master}: the re-run failed: {outcome.reason}")
        reproduced = read_pixels(outcome.master.path)
        archived = read_pixels(master)
    archived_digest = pixel_digest(archived)
    expected = record.master.get("pixel_sha256") or archived_digest
    identical = outcome.master.pixel_sha256 == expected
    recorded_device = _recorded_device(record)
    report = {
        "master": str(master), "master_uuid": recorded.master_uuid, "original": str(original_path),
        "recipe": {"name": recorded.recipe.name, "hash": recorded.recipe.hash},
        "models": models.weights, "precision": models.precision, "device": kit.host.details.get("device", device),
        "recorded_device": recorded_device, "threads": threads,
        "same_device_class": recorded_device.split(":")[0] == kit.host.details.get("device", device).split(":")[0],
        "software_version": kit.software.version, "recorded_software_version": record.software.get("version"),
        "recorded_pixel_sha256": record.master.get("pixel_sha256"),
        "archived_pixel_sha256": archived_digest,
        "archived_matches_record": (record.master.get("pixel_sha256") or archived_digest) == archived_digest,
        "reproduced_pixel_sha256": outcome.master.pixel_sha256,
        "identical": identical,
        "comparison": compare_pixels(archived, reproduced),
        "plan_matches": outcome.resolved_recipe == record.recipe.get("resolved"),
        "kept": str(outcome.master.path) if keep else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if record_event:
        with Catalog.open(cfg.resolved_catalog_url) as catalog:
            catalog.record_file_events([(recorded.master_uuid, _event(report, kit))])
    return report


def _recorded(catalog: Catalog, master: Path) -> _Recorded:
    if not master.is_file():
        raise ReproduceRefused(f"{master}: no such file")
    actual = sha256_file(master)
    ref = catalog.file_ref(path=str(master), sha256=actual, roles=("master", "access"))
    if ref is None:
        raise ReproduceRefused(f"{master}: not a master in the catalog (point --home/--catalog-url at the "
                               "archive that made it)")
    if ref.role != "master":
        raise ReproduceRefused(f"{master}: an access copy; reproduce its master instead (an 8-bit JPEG's "
                               "pixels cannot be compared exactly)")
    record = catalog.audit(master_path=str(master), sha256=actual)
    assert record is not None
    run = catalog.run_recipe(record.run["uuid"]) if record.run.get("uuid") else None
    if run is None:
        raise ReproduceRefused(f"{master}: its run {record.run.get('uuid')} is not in the catalog, so the "
                               "requested recipe is unknown")
    recipe = Recipe.model_validate(run["recipe"])
    if recipe.hash != record.recipe["hash"]:
        raise ReproduceRefused(
            f"{master}: the run's recipe hashes to {recipe.hash} with this software, but the master records "
            f"{record.recipe['hash']}: the recipe format changed since (software "
            f"{record.software.get('version')}); reproduce with that version")
    return _Recorded(record, ref.uuid, recipe, run["settings"] or {})


def _check_original(path: Path, record: AuditRecord) -> None:
    expected = record.original["sha256"]
    if not path.is_file():
        raise ReproduceRefused(f"original {path}: missing; give its new place with --original PATH "
                               f"(sha256 {expected})")
    actual = sha256_file(path)
    if actual != expected:
        raise ReproduceRefused(f"original {path}: sha256 is {actual}, the master was made from {expected}: "
                               "the original changed (run `restorium fixity`), so the recipe cannot be re-checked on it")


def _check_models(recorded: _Recorded, cfg: Settings) -> RunPlan:
    record = recorded.record
    try:  # the QA gate changes no pixel (the master passed it): no capture profile
        plan = plan_run(cfg.model_copy(update={"capture_profile": None}), recorded.recipe,
                        precision=recorded_precision(record))
    except RunPlanError as exc:
        if isinstance(exc.__cause__, PrecisionError):
            raise ReproduceRefused(f"the master's models ran in a precision this device cannot: {exc}") from exc
        raise ReproduceRefused(f"the recipe's model weights are not available: {exc}") from exc
    models = plan.models
    for model in record.models:
        now = models.weights.get(model.name)
        if now is None:
            raise ReproduceRefused(f"model {model.name}: used for the master (weights sha256 "
                                   f"{model.weights_sha256}) but not available in {cfg.models_dir}")
        if now != model.weights_sha256:
            raise ReproduceRefused(f"model {model.name}: the master was made with weights sha256 "
                                   f"{model.weights_sha256}, but {cfg.models_dir} now resolves to {now}; "
                                   "put the recorded file back (or point --models-dir at it)")
    # The derivation key names every model the recipe could use: a model present now but absent
    # then (or the reverse) would change the plan, so it must match too.
    key = derivation_key(record.original["sha256"], recorded.recipe.hash, models.weights,
                         record.software.get("version", ""), models.precision)
    if key != record.derivation_key:
        raise ReproduceRefused(
            f"the models available now ({', '.join(f'{k} {v[:12]}' for k, v in sorted(models.weights.items()))}) "
            f"are not the set the master was made with (its derivation key {record.derivation_key[:12]} "
            f"does not match {key[:12]}); e.g. a denoiser or face model added or removed since")
    return plan


def recorded_precision(record: AuditRecord) -> str:
    """The precision the master's models ran in (their steps record it; fp32 before it was a choice)."""
    for step in record.steps:
        if step.step in ("upscale", "denoise") and step.parameters.get("precision"):
            return str(step.parameters["precision"])
    return "fp32"


def _execution(record: AuditRecord, cfg: Settings) -> tuple[int | None, str]:
    """The thread count the master was made with (CPU results can depend on it) and the device."""
    host = next((a for s in record.steps[::-1] for a in s.agents if a.kind == "host" and a.details), None)
    threads = int(host.details["threads"]) if host and host.details.get("threads", "").isdigit() else None
    return threads, cfg.device


def _recorded_device(record: AuditRecord) -> str:
    host = next((a for s in record.steps[::-1] for a in s.agents if a.kind == "host"), None)
    if host is None:
        return "unknown"
    return host.details.get("device") or (host.version.split(" ", 1)[0] if host.version else "unknown")


def _event(report: dict[str, Any], kit: Any) -> StepRecord:
    cmp = report["comparison"]
    if report["identical"]:
        detail = "re-run of the recorded recipe and weights on the original: pixels bit-identical"
    elif cmp.get("comparable"):
        detail = (f"re-run differs: PSNR {cmp['psnr_db']} dB, max abs difference {cmp['max_abs_diff']:g} "
                  f"of {cmp['peak']:g} ({report['device']} vs recorded {report['recorded_device']})")
    else:
        detail = f"re-run differs: {cmp.get('reason')}"
    when = utc_now()
    params = {k: report[k] for k in ("recipe", "models", "precision", "device", "recorded_device", "threads",
                                      "software_version", "recorded_pixel_sha256", "reproduced_pixel_sha256",
                                      "archived_pixel_sha256", "identical", "plan_matches")}
    params["comparison"] = {k: v for k, v in cmp.items() if k != "reason"}
    return StepRecord(
        event_uuid=stable_uuid("reproduction", report["master_uuid"], when, report["reproduced_pixel_sha256"]),
        type=REPRODUCTION, step="reproduce", when=when, outcome=StepOutcome.SUCCESS if report["identical"] else StepOutcome.WARNING,
        detail=detail, agents=[kit.software, kit.host], parameters=params,
    )
