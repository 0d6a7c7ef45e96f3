"""Running the reviewers' reprocessing requests (`restorium reprocess --pending`).

The queue is the catalog: requests without a `done` event (catalog.review.pending_requests).
Requests with the same recipe share one ordinary run of the batch flow over a temporary folder
of symlinks to their originals, each in the sub-folder its old master has under masters/, so the
new master lands beside the old one (the run keeps a scan's sub-folder as found, not resolved).
The run records everything a nightly run records (a new master with a new
derivation key; the old master is never touched); then a `done` event on the old master names
the request, the run and the new master, or why there is none.

The review app starts this command in the background after a request (one at a time; a request
made while it runs is picked up by a second pass), unless it was started with --queue-only.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from catalog import review
from catalog.repository import Catalog
from config.recipe import Recipe
from config.settings import Settings
from flows.actors import software_agent
from tasks.files.atomic import sha256_file
from tasks.preservation.reprocess import done_step
from tasks.records.results import ScanStatus, StepOutcome
from tasks.records.types import StepRecord


def run_pending(cfg: Settings) -> list[dict[str, Any]]:
    """Handle every pending request (and any queued meanwhile); one result per request."""
    from flows.restore_batch import ArchiveBusy, RunStopped, restore_batch
    from flows.run_plan import plan_run

    results: list[dict[str, Any]] = []
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        while pending := review.pending_requests(catalog):
            groups: dict[str, list[tuple[review.MasterFacts, StepRecord]]] = defaultdict(list)
            for facts, request in pending:
                groups[request.parameters["recipe_hash"]].append((facts, request))
            for group in groups.values():
                with tempfile.TemporaryDirectory(prefix="restorium-reprocess-") as tmp:
                    ready, scans = _stage(cfg, Path(tmp), group)
                    for facts, request, reason in ready:
                        if reason:
                            results.append(_finish(catalog, facts, request, None, None, reason))
                    todo = [(f, r) for f, r, reason in ready if not reason]
                    if not todo:
                        continue
                    try:  # an ordinary run, with the recipe the reviewer asked for
                        plan = plan_run(cfg, Recipe.model_validate(todo[0][1].parameters["recipe"]))
                        summary = restore_batch(str(scans), plan=plan, staged=True)
                    except RunStopped as exc:
                        summary = exc.summary
                    except ArchiveBusy:  # another run holds the archive: the requests stay queued
                        raise
                    except Exception as exc:  # noqa: BLE001 - the run itself failed: every request says why, none is lost
                        for facts, request in todo:
                            results.append(_finish(catalog, facts, request, None, None,
                                                   f"the run failed: {type(exc).__name__}: {exc}"))
                        continue
                    entries = {Path(s["path"]).resolve(): s for s in summary["scans"]}
                    for facts, request in todo:
                        entry = entries.get(Path(facts.original["path"]).resolve())
                        results.append(_finish(catalog, facts, request, summary["run_uuid"], entry, None))
    return results


def _stage(cfg: Settings, tmp: Path, group: list[tuple[review.MasterFacts, StepRecord]]):
    """Symlinks to the originals under tmp/scans/<the old master's sub-folder>/; a reason for each
    request that cannot run (original missing or changed, recipe not the one asked for). Ingest
    resolves the links, so the run records the originals' own paths.

    A request whose link would clash with one staged already (two originals of one name in one
    folder) or whose original is staged already is left out: it stays queued, and run_pending's
    next pass takes it (then the same original and recipe find the master made meanwhile)."""
    scans = tmp / "scans"
    scans.mkdir()
    ready, staged = [], set()
    for facts, request in group:
        original = Path(facts.original.get("path", ""))
        link = scans / _master_folder(cfg, Path(facts.path)) / original.name
        reason = None
        if Recipe.model_validate(request.parameters["recipe"]).hash != request.parameters["recipe_hash"]:
            reason = "the requested recipe no longer validates to its recorded hash"
        elif not original.is_file():
            reason = f"the original {original} is missing"
        elif link.is_symlink() or original.resolve() in staged:
            continue  # next pass
        elif sha256_file(original) != facts.original["sha256"]:
            reason = f"the original {original} changed since it was catalogued (run `restorium fixity`)"
        else:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(original)
            staged.add(original.resolve())
        ready.append((facts, request, reason))
    return ready, scans


def _master_folder(cfg: Settings, master: Path) -> Path:
    """The old master's sub-folder of masters/ (masters/box1/x.tif: box1); none when it lies elsewhere."""
    for folder, top in ((master.parent, cfg.masters_dir), (master.parent.resolve(), cfg.masters_dir.resolve())):
        if folder.is_relative_to(top):
            return folder.relative_to(top)
    return Path()


def _finish(catalog: Catalog, facts: review.MasterFacts, request: StepRecord, run_uuid: str | None,
            entry: dict[str, Any] | None, reason: str | None) -> dict[str, Any]:
    new_master = None
    if reason is None:
        if entry is None:
            reason = "the run did not report this scan"
        elif entry["outcome"] == ScanStatus.FAILED:
            reason = entry.get("reason") or "failed"
        elif not entry.get("master"):
            reason = entry.get("reason") or "no master was made"
        else:
            ref = catalog.file_ref(path=entry["master"], roles=("master",))
            new_master = {"uuid": ref.uuid if ref else None, "path": entry["master"]}
    if new_master:
        detail = f"remade as {new_master['path']} by run {run_uuid}"
    else:
        detail = f"not remade: {reason}"
    step = done_step(request, outcome=StepOutcome.SUCCESS if new_master else StepOutcome.FAILURE, detail=detail, run_uuid=run_uuid,
                     new_master=new_master, software=software_agent())
    catalog.record_file_events([(facts.uuid, step)])
    return {"request": request.event_uuid, "master": facts.uuid, "outcome": step.outcome, "detail": detail,
            "run_uuid": run_uuid, "new_master": new_master}


class Launcher:
    """Starts `restorium reprocess --pending` in the background, one process at a time; a
    request that arrives while it runs gets another pass when it ends."""

    def __init__(self, cfg: Settings, log_dir: Path):
        self.cfg, self.log_dir = cfg, log_dir
        self.lock = threading.Lock()
        self.wanted = False
        self.thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        with self.lock:
            return self.thread is not None

    def kick(self) -> None:
        with self.lock:
            self.wanted = True
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="reprocess-launcher", daemon=True)
                self.thread.start()

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "flows.cli", "reprocess", "--pending", "--home", str(self.cfg.home)]
        if self.cfg.catalog_url:
            cmd += ["--catalog-url", self.cfg.catalog_url]
        return cmd

    def _loop(self) -> None:
        while True:
            with self.lock:
                if not self.wanted:
                    self.thread = None
                    return
                self.wanted = False
            self.log_dir.mkdir(parents=True, exist_ok=True)
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            with open(self.log_dir / f"reprocess-{stamp}.log", "wb") as log:
                subprocess.run(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env=os.environ.copy(), check=False)
