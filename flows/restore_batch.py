"""The batch flow: shard by shard, ingest → triage → master (QA → restore → upscale → tag, on the
workers) → record → summarise; then the run's reports.

Prefect tracks shards (tens of scans), not scans: per-scan state lives in the catalog. Only
this driver writes the catalog, one transaction per shard; Ray workers do the pixels.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import resource
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from catalog.db import redacted_url
from catalog.repository import Catalog
from config.recipe import Recipe
from config.settings import Settings
from config.version import software_version
from flows import workers
from flows.progress import reporter
from flows.run_plan import JobOriginal, RunPlan, check_sheet, plan_run
from flows.summary import RunSummary, ScanEntry
from models.agents import software_agent
from tasks.files.atomic import atomic_write
from tasks.files.ingest import discover_all, identifier_for, ingest_file, ingest_steps
from tasks.files.limits import Limits
from tasks.qa.assessment import thresholds as qa_thresholds
from tasks.qa.diagnosis.phash import NEAR_DUPLICATE_BITS, phash_distance
from tasks.records.failures import DISK_FULL
from tasks.records.item_metadata import ItemMetadata
from tasks.records.keys import derivation_key
from tasks.records.results import FailureKind, ScanStatus, Verdict
from tasks.records.types import OriginalFacts, ScanJob, ScanOutcome
from tasks.reports import run_report
from tasks.reports.qa_report import summarize
from tasks.steps.pipeline import rejection_uuid


@task(cache_policy=NONE, persist_result=False)
def ingest_shard(paths: list[Path], limits: Limits | None = None) -> list[OriginalFacts]:
    return [ingest_file(p, limits or Limits()) for p in paths]


@task(cache_policy=NONE, persist_result=False)
def master_shard(pool: workers.WorkerPool, jobs: list[ScanJob]) -> list[ScanOutcome]:
    outcomes = []
    by_key = {j.derivation_key: j for j in jobs}
    for outcome in pool.map(jobs):
        outcomes.append(outcome)
        reporter().advance(by_key[outcome.derivation_key].original_path, outcome.status)
    return outcomes


@task(cache_policy=NONE, persist_result=False)
def record_shard(catalog: Catalog, run_uuid: str, outcomes: list[ScanOutcome]) -> None:
    catalog.record_outcomes(run_uuid, outcomes)


class RunStopped(RuntimeError):
    """The run stopped early on purpose (failure budget, full disk); `summary` says how far it got."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary


@flow(name="restore-batch", persist_result=False, log_prints=False, validate_parameters=False)
def restore_batch(
    scans_dir: str, recipe: str | Recipe = "archival", scale: float | None = None, long_edge: int | None = None,
    settings: dict[str, Any] | None = None, only_new: bool = False, staged: bool = False,
    plan: RunPlan | None = None, metadata: str | None = None, sign: bool = False,
) -> dict[str, Any]:
    """Master every scan under scans_dir; returns the run summary (flows.summary.RunSummary).

    plan: what the run applies, settled by the caller (the CLI builds it once, so a bad recipe
    stops before Prefect starts); without it, the flow builds it from recipe, scale, long_edge and
    settings (a schedule's deployment passes those), metadata (the item spreadsheet's path) and
    sign (content credentials).

    staged: scans_dir is a folder restorium made of links to catalogued originals (reprocessing),
    whose file links lead out of it by design; a user's folder never is.

    only_new: leave a scan that already has a master in this archive (from any recipe, weights or
    software version) as it is, instead of mastering it again under the current ones.
    """
    plan = plan or plan_run(Settings(**(settings or {})), recipe, scale=scale, long_edge=long_edge,
                            metadata=metadata, sign=sign)
    for note in plan.models.notes:
        reporter().note(note)
    root = Path(scans_dir).expanduser().resolve()
    found = discover_all(root, file_links_out=staged)
    check_sheet(plan, found.scans, root)
    with archive_lock(plan.settings.home):
        swept = sweep_partials(plan.settings.home)
        if swept:
            reporter().note(f"removed {swept} half-written file(s) left by an interrupted run")
        with Catalog.open(plan.settings.resolved_catalog_url) as catalog:
            summary = _run(plan, root, found.scans, catalog, only_new, found.skipped)
        # Every scan is settled, so no writer of this run is left: what remains is a worker's that
        # died mid-write (Ray restarted it and the scan was written again under another name).
        swept = sweep_partials(plan.settings.home)
        if swept:
            reporter().note(f"removed {swept} half-written file(s) left by a worker that died mid-write")
    if summary.stopped:  # the flow run fails (Prefect shows why); the caller still gets the summary
        raise RunStopped(summary.stopped, summary.to_dict())
    return summary.to_dict()


class ArchiveBusy(RuntimeError):
    """Another run holds the archive; nothing was done."""


@contextlib.contextmanager
def archive_lock(home: Path) -> Iterator[None]:
    """One run at a time per archive home: a run sweeps the temporaries it finds at the start, which
    must be a killed run's, never a live one's (a hand-started run beside the nightly one). The
    kernel drops the lock when its process dies, so a killed run never blocks the next."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".run.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchiveBusy(f"{home}: another restorium run is working on this archive; "
                              "run again when it has finished (it resumes, nothing is lost)") from None
        yield


def sweep_partials(home: Path) -> int:
    """Delete temporary files a killed run or worker left beside masters, access copies and reviews.

    They are never served (hidden names ending in .partial, never catalogued); a re-run rewrites
    the files they were becoming."""
    count = 0
    for folder in ("masters", "access", "reviews", "reports", "iiif"):
        for path in (home / folder).rglob(".*.partial") if (home / folder).is_dir() else ():
            if path.is_dir():  # a tile folder being written (tasks.files.iiif_tiles)
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            count += 1
    return count


def _run(
    plan: RunPlan, root: Path, paths: list[Path], catalog: Catalog, only_new: bool = False,
    skipped: list[tuple[Path, str]] | None = None,
) -> RunSummary:
    batch = _Batch(plan, root, catalog, only_new)
    batch.summary.counts["scans"] = len(paths)
    for path, reason in skipped or []:  # every file under the folder is accounted for
        batch.summary.add(ScanEntry(path=str(path), sha256=None, outcome=ScanStatus.SKIPPED, reason=reason))
    reporter().start(len(paths), f"{len(paths)} scans from {root}")
    status = "failed"
    try:
        for start in range(0, len(paths), plan.settings.shard_size):
            batch.shard(paths[start : start + plan.settings.shard_size])
        status = "finished"
    except _Stop as stop:
        batch.summary.stopped, status = str(stop), "stopped"
    finally:
        batch.finish(status)
    return batch.summary


class _Stop(Exception):
    """Stop the batch cleanly after recording what is done."""


@dataclass
class _Ingested:
    """A shard's files that could be read: as found under root, their facts, their catalog rows."""

    paths: list[Path]
    facts: list[OriginalFacts]
    originals: dict[str, Any]  # sha256 → the catalog's original (uuid, item, path, steps, is_new)


class _Batch:
    """State of one run on the driver: the catalog record, the workers, what was seen.

    Each shard goes ingest → triage → master → summarise; the failure budget is judged after."""

    def __init__(self, plan: RunPlan, root: Path, catalog: Catalog, only_new: bool = False):
        self.plan, self.cfg, self.recipe, self.models = plan, plan.settings, plan.recipe, plan.models
        self.root, self.catalog, self.only_new = root, catalog, only_new
        self.run_uuid = str(uuid.uuid4())
        self.summary = RunSummary(self.run_uuid, str(root), self.recipe.name, self.recipe.hash, str(self.cfg.home),
                                  redacted_url(self.cfg.resolved_catalog_url))
        self.software = software_agent()  # the same agent, git commit included, as the workers record
        self.seen: dict[str, str] = {}  # sha256 → first path this run (duplicates are mastered once)
        self.failed: dict[str, tuple[str, str | None]] = {}  # sha256 → why (and kind) its first path failed
        self.recorded = False  # a run that changes nothing leaves no row (re-runs add nothing)
        self.pool: workers.WorkerPool | None = None
        self.started = time.perf_counter()
        self.qa_entries: list[dict[str, Any]] = []  # for the run's QA summary
        self.hashes: dict[str, str] = {}  # perceptual hash → first path: near-duplicates
        self.processed_shards = 0
        # The failure budget: judged once, over the first failure_budget_sample scans processed.
        self.budget_seen, self.budget_judged = 0, False
        self.budget_errors: list[ScanOutcome] = []

    def record_run(self) -> None:
        if self.recorded:
            return
        self.catalog.start_run(
            run_uuid=self.run_uuid, scans_dir=str(self.root), recipe_name=self.recipe.name,
            recipe_hash=self.recipe.hash, recipe=self.recipe.model_dump(mode="json"),
            settings=_recorded_settings(self.cfg), software_version=software_version(),
            host=socket.gethostname(),
        )
        self.recorded = True

    def workers(self) -> workers.WorkerPool:
        """Started on first need: a re-run with nothing to master loads no model."""
        if self.pool is None:
            began = time.perf_counter()
            reporter().note("starting model workers")
            workers.connect(self.cfg)
            self.pool = workers.start_workers(
                self.cfg, self.models.upscale_models, self.models.denoiser, self.models.weights,
                self.models.face_detector, self.models.precision, self.models.damage_detector,
            )
            self.summary.timings["startup_seconds"] = round(time.perf_counter() - began, 3)
        return self.pool

    def finish(self, status: str) -> None:
        timings = self.summary.timings
        timings["wall_seconds"] = round(time.perf_counter() - self.started, 3)
        # Peak resident memory of this driver process (Linux reports KiB): it must stay flat
        # however many scans a run has, since per-scan state lives in the catalog.
        timings["driver_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        if self.pool is not None:
            timings["worker_cpus"] = self.pool.cpus
            try:  # where the work ran and how busy each worker was (the report's utilisation)
                self.summary.workers = self.pool.run_counters()
            except Exception as exc:  # noqa: BLE001 - a dead worker must not hide the run's outcome
                reporter().note(f"could not ask the workers how much they did: {exc}")
        if not self.recorded and self._unaccounted():  # a file never seen before that could not be read
            self.record_run()
        if self.recorded:
            self.catalog.record_run_entries(self.run_uuid, [
                {"path": e.path, "outcome": str(e.outcome), "kind": e.kind, "reason": e.reason, "sha256": e.sha256}
                for e in self.summary.scans
            ])
            try:
                if self.qa_entries:
                    self.summary.qa_report = _qa_report(self.cfg, self.run_uuid, self.qa_entries)
            except OSError as exc:  # a full disk must not hide the run's outcome: the catalog has it
                reporter().note(f"could not write the QA summary: {exc}")
            self.catalog.finish_run(self.run_uuid, status=status, counts=self.summary.counts,
                                    timings=timings)
            try:
                _write_report(self.cfg, self.summary)
            except OSError as exc:
                reporter().note(f"could not write the run report: {exc}")

    def _unaccounted(self) -> bool:
        """Whether the run found files never read (skipped, unreadable) that no earlier run's
        ledger holds with the same outcome and reason: then the run is recorded, so the catalog
        accounts for them; a re-run that finds only what it found before still records nothing."""
        unread = [(e.path, e.outcome, e.reason) for e in self.summary.scans if e.sha256 is None]
        return bool(unread) and len(self.catalog.known_unread(unread)) < len(set(unread))

    # --- one shard: ingest → triage → master → summarise ---------------------------------------

    def shard(self, paths: list[Path]) -> None:
        scans = self._ingest(paths)
        if scans is None:
            return
        entries, jobs = self._triage(scans)
        outcomes = self._master(jobs)
        self._summarise(scans, entries, outcomes)
        self._check_budget(outcomes)

    def _ingest(self, paths: list[Path]) -> _Ingested | None:
        """Hash and record the shard's files; one that cannot be read is a failure with its reason."""
        facts = ingest_shard(paths, self.plan.limits)
        for f in facts:
            if not f.sha256:  # no content identity: nothing to catalog
                self.summary.add(ScanEntry(path=f.path, sha256=None, outcome=ScanStatus.FAILED, reason=f.error,
                                           kind=f.error_kind))
                reporter().advance(f.path, ScanStatus.FAILED)
        read = [(p, f) for p, f in zip(paths, facts, strict=True) if f.sha256]
        if not read:
            return None
        facts = [f for _, f in read]
        if {f.sha256 for f in facts} - self.catalog.known_originals([f.sha256 for f in facts]):
            self.record_run()
        described = {f.sha256: item for p, f in read if (item := self._item(p))}
        originals = self.catalog.record_ingest(
            self.run_uuid if self.recorded else None,
            [(f, (described[f.sha256].identifier if f.sha256 in described else None)
              or identifier_for(Path(f.path)), ingest_steps(f, [self.software])) for f in facts],
            {sha: item.to_dict() for sha, item in described.items()},
        )
        self.summary.counts["ingested"] += sum(
            1 for f in facts if originals[f.sha256].is_new and originals[f.sha256].path == f.path
        )
        return _Ingested([p for p, _ in read], facts, originals)

    def _item(self, scan: Path) -> ItemMetadata | None:
        """The item spreadsheet's row for a scan as found under root, if the run has a sheet."""
        return self.plan.sheet.for_scan(scan, self.root) if self.plan.sheet else None

    def _triage(self, scans: _Ingested) -> tuple[dict[str, ScanEntry], list[ScanJob]]:
        """What each scan needs: nothing (mastered already, a duplicate, known bad or refused by the
        QA gate before), or a job for the workers."""
        shas = [f.sha256 for f in scans.facts]
        keys = {sha: derivation_key(sha, self.recipe.hash, self.models.weights, software_version(),
                                    self.models.precision) for sha in shas}
        masters = self.catalog.find_masters(list(keys.values()))
        earlier = self.catalog.latest_masters(shas) if self.only_new else {}
        invalid = self.catalog.find_invalid(shas, software_version(), self.plan.limits.to_dict())
        rejected = self._rejected_before(keys)
        entries: dict[str, ScanEntry] = {}
        jobs: list[ScanJob] = []
        for scan, f in zip(scans.paths, scans.facts, strict=True):  # scan: as found under root; f.path: resolved
            entry = entries[f.path] = ScanEntry(path=f.path, sha256=f.sha256, outcome=ScanStatus.UNCHANGED)
            key = keys[f.sha256]
            if f.sha256 in self.seen:
                entry.reason = f"same content as {self.seen[f.sha256]}"
            elif key in masters or f.sha256 in earlier:
                master = masters.get(key) or earlier[f.sha256]
                entry.master, entry.access = master.path, master.access_path
                if key not in masters:
                    entry.reason = "already mastered (by another recipe, weights or version; kept: --only-new)"
                if not Path(master.path).is_file():
                    entry.outcome = ScanStatus.FAILED
                    entry.reason = f"catalogued master is missing on disk: {master.path}"
            elif f.sha256 in invalid:
                entry.outcome, entry.reason = ScanStatus.FAILED, invalid[f.sha256]
            elif f.sha256 in rejected:
                entry.outcome, entry.reason, entry.verdict = ScanStatus.FAILED, rejected[f.sha256], Verdict.FAIL
            else:
                jobs.append(self.plan.job(_job_original(f, scans.originals[f.sha256]), key, self.run_uuid,
                                          folder=_folder_under(self.root, scan), item=self._item(scan)))
            self.seen.setdefault(f.sha256, f.path)
            if not jobs or jobs[-1].original_path != f.path:  # decided here: no worker involved
                reporter().advance(f.path, entry.outcome)
        return entries, jobs

    def _rejected_before(self, keys: dict[str, str]) -> dict[str, str]:
        """Scans the QA gate already refused under this very capture profile: sha256 → why."""
        if not self.plan.capture:
            return {}
        by_event = {rejection_uuid(k, self.plan.capture): sha for sha, k in keys.items()}
        return {by_event[u]: detail for u, detail in self.catalog.find_events(list(by_event)).items()}

    def _master(self, jobs: list[ScanJob]) -> list[ScanOutcome]:
        """The workers master the jobs; the catalog records every outcome in one transaction."""
        if not jobs:
            return []
        self.record_run()
        outcomes = master_shard(self.workers(), jobs)
        record_shard(self.catalog, self.run_uuid, outcomes)
        self.processed_shards += 1
        return outcomes

    def _summarise(self, scans: _Ingested, entries: dict[str, ScanEntry], outcomes: list[ScanOutcome]) -> None:
        """Each file's line of the summary, with what its worker reported (a copy of a failed file fails too)."""
        by_sha = {o.original_sha256: o for o in outcomes}
        for f in scans.facts:
            entry = entries[f.path]
            first = self.seen[f.sha256]
            outcome = by_sha.get(f.sha256)
            if outcome is not None and first == f.path:
                self._take(entry, outcome)
            if first != f.path and f.sha256 in self.failed:
                reason, entry.kind = self.failed[f.sha256]
                entry.outcome, entry.reason = ScanStatus.FAILED, f"same content as {first}, which failed: {reason}"
            elif first == f.path and entry.outcome == ScanStatus.FAILED:
                self.failed[f.sha256] = (entry.reason or "failed", entry.kind)
            self.summary.add(entry)

    def _take(self, entry: ScanEntry, outcome: ScanOutcome) -> None:
        timings = self.summary.timings
        entry.outcome, entry.reason = ScanStatus(outcome.status), outcome.reason
        entry.flags = list(outcome.flags) + self._near_duplicate(entry.path, outcome)
        entry.notes, entry.kind = list(outcome.notes), outcome.kind
        if outcome.master:
            entry.master, entry.access = outcome.master.path, outcome.access.path if outcome.access else None
            timings["output_megapixels"] = round(
                timings.get("output_megapixels", 0.0) + outcome.master.width * outcome.master.height / 1e6, 3)
        if outcome.qa:
            entry.verdict = outcome.qa.get("verdict")
            self.qa_entries.append({"path": entry.path, **outcome.qa})
        for stage, seconds in outcome.timings.items():
            timings[stage] = round(timings.get(stage, 0.0) + seconds, 3)

    def _check_budget(self, outcomes: list[ScanOutcome]) -> None:
        """Stop a run that is clearly broken instead of failing thousands of scans one by one."""
        full = [o for o in outcomes if o.kind == DISK_FULL]
        if full:
            raise _Stop(f"disk full while writing ({full[0].reason}); the shard was recorded, nothing "
                        "half-written is trusted; free space and run again to resume")
        if self.budget_judged:
            return
        # Judged once, on the first scans processed, and only when there are enough of them: the
        # one new scan of a nightly --only-new run failing is a bad scan, not a misconfiguration.
        self.budget_seen += len(outcomes)
        self.budget_errors += [o for o in outcomes if o.failure_kind == FailureKind.ERROR]
        if self.budget_seen < self.cfg.failure_budget_sample:
            return
        self.budget_judged = True
        errors, seen = self.budget_errors, self.budget_seen
        if errors and len(errors) / seen > self.cfg.failure_budget:
            where = "the first shard" if self.processed_shards == 1 else f"the first {self.processed_shards} shards"
            reasons = sorted({o.reason or "" for o in errors})[:3]
            raise _Stop(
                f"{len(errors)} of {seen} scans in {where} failed while processing "
                f"(budget {self.cfg.failure_budget:.0%}): this looks like a misconfiguration, not bad scans. "
                "First reasons: " + " | ".join(reasons)
            )

    def _near_duplicate(self, path: str, outcome: ScanOutcome) -> list[str]:
        """Different bytes, same picture (a re-scan, another crop or format): say so once."""
        digest = ((outcome.qa or {}).get("findings") or {}).get("phash")
        if not digest:
            return []
        for other_hash, other in self.hashes.items():
            distance = phash_distance(digest, other_hash)
            if distance <= NEAR_DUPLICATE_BITS:
                return [f"near-duplicate of {other} (perceptual hash distance {distance})"]
        self.hashes[digest] = path
        return []


def _job_original(facts: OriginalFacts, original: Any) -> JobOriginal:
    return JobOriginal(
        path=facts.path, sha256=facts.sha256, item_uuid=original.item_uuid,
        item_identifier=original.item_identifier, original_uuid=original.original_uuid,
        catalogued_path=original.path, prior_steps=tuple(original.steps),
    )


def _folder_under(root: Path, scan: Path) -> Path:
    """The scan's sub-folder as discovered under root, kept under masters/ even when it was reached
    through a symlink (ingest resolves the path, which may then lie outside root)."""
    return scan.parent.relative_to(root) if scan.is_relative_to(root) else Path()


def _recorded_settings(cfg: Settings) -> dict[str, Any]:
    data = cfg.model_dump(mode="json")
    data["catalog_url"] = redacted_url(cfg.resolved_catalog_url)
    return data


def _qa_report(cfg: Settings, run_uuid: str, entries: list[dict[str, Any]]) -> str:
    """The run's QA summary: an HTML page in the archive home and a Prefect markdown artifact."""
    summary = summarize(entries, run=run_uuid, thresholds=qa_thresholds())
    path = summary.write(cfg.reports_dir)
    try:
        create_markdown_artifact(markdown=summary.to_markdown(), key=f"qa-{run_uuid[:8]}",
                                 description=f"QA summary of run {run_uuid}")
    except Exception as exc:  # noqa: BLE001 - an artifact is a convenience: the HTML report is the record
        reporter().note(f"could not publish the Prefect QA artifact: {exc}")
    return str(path)


def _write_report(cfg: Settings, summary: RunSummary) -> None:
    """The run report: JSON and an HTML page in reports/, and a Prefect markdown artifact."""
    data = summary.to_dict()
    data["throughput"] = run_report.throughput(data)
    cfg.reports_dir.mkdir(parents=True, exist_ok=True)
    path = cfg.reports_dir / f"run-{summary.run_uuid}.json"
    atomic_write(path, lambda temp: temp.write_text(json.dumps(data, indent=2)))
    summary.report = str(run_report.write_html(data, cfg.reports_dir))
    try:
        create_markdown_artifact(markdown=run_report.to_markdown(data), key=f"run-{summary.run_uuid[:8]}",
                                 description=f"restorium run {summary.run_uuid}")
    except Exception as exc:  # noqa: BLE001 - the report files are the record; the artifact is a convenience
        reporter().note(f"could not publish the Prefect run artifact: {exc}")
