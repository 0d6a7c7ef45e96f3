"""The fixity flow: re-hash catalogued files, record one "fixity check" event per file, and
report every mismatch and missing file in one summary.

A Prefect flow so it can be scheduled (e.g. `fixity_check.serve(cron="0 3 * * 0",
parameters={"older_than": "180d"})` against a Prefect server); without a server it runs in
Prefect's ephemeral mode like the batch flow. Prefect tracks chunks of files, not files; each
chunk's events are written in one transaction by this driver.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import Counter
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from catalog.items import FileRef
from catalog.repository import Catalog
from config.settings import Settings
from flows.progress import reporter
from models.agents import machine_agent, software_agent
from tasks.preservation.fixity import FixityResult, check_file, fixity_step, parse_age
from tasks.records.types import utc_now

CHUNK = 256  # files per Prefect task and per catalog transaction


@task(cache_policy=NONE, persist_result=False)
def check_chunk(files: list[FileRef]) -> list[FixityResult]:
    results = []
    for f in files:
        results.append(check_file(f.uuid, f.role, f.path, f.sha256, f.item_uuid))
        reporter().advance(f.path, "unchanged" if results[-1].ok else "failed")
    return results


@task(cache_policy=NONE, persist_result=False)
def record_chunk(catalog: Catalog, check_uuid: str, results: list[FixityResult]) -> int:
    agents = [software_agent(), machine_agent()]
    when = utc_now()
    return catalog.record_file_events([(r.file_uuid, fixity_step(r, check_uuid, agents, when)) for r in results])


@flow(name="fixity-check", persist_result=False, log_prints=False)
def fixity_check(older_than: str | None = None, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check every catalogued file not checked successfully within `older_than` (e.g. '180d';
    None: all files). Returns the summary (see `summary`)."""
    cfg = Settings(**(settings or {}))
    cutoff = dt.datetime.now(dt.UTC) - parse_age(older_than) if older_than else None
    check_uuid = str(uuid.uuid4())
    started = time.perf_counter()
    results: list[FixityResult] = []
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        total = catalog.count_rows()["files"]
        files = catalog.fixity_candidates(cutoff)
        reporter().start(len(files), f"fixity: {len(files)} of {total} files")
        for start in range(0, len(files), CHUNK):
            chunk = check_chunk(files[start:start + CHUNK])
            record_chunk(catalog, check_uuid, chunk)
            results.extend(chunk)
    report = summary(results, total=total, check_uuid=check_uuid, older_than=older_than,
                     seconds=time.perf_counter() - started)
    _publish(report)
    return report


def summary(results: list[FixityResult], *, total: int, check_uuid: str, older_than: str | None,
            seconds: float) -> dict[str, Any]:
    counts = Counter(r.status for r in results)
    return {
        "check": check_uuid, "older_than": older_than, "files": total, "checked": len(results),
        "skipped": total - len(results), "ok": counts["ok"], "mismatch": counts["mismatch"],
        "missing": counts["missing"], "unreadable": counts["unreadable"],
        "failed": len(results) - counts["ok"], "seconds": round(seconds, 3),
        "problems": [r.to_dict() for r in results if not r.ok],
    }


def _publish(report: dict[str, Any]) -> None:
    """One Prefect artifact per run (never one message per file)."""
    lines = [f"# Fixity check {report['check']}",
             f"{report['checked']} of {report['files']} files checked ({report['skipped']} checked recently): "
             f"{report['ok']} ok, {report['mismatch']} changed, {report['missing']} missing, "
             f"{report['unreadable']} unreadable"]
    if report["problems"]:
        lines += ["", "| file | role | status | expected | actual |", "|---|---|---|---|---|"]
        lines += [f"| {p['path']} | {p['role']} | {p['status']} | {p['expected'][:16]} | {(p['actual'] or '-')[:16]} |"
                  for p in report["problems"][:200]]
    try:
        create_markdown_artifact(markdown="\n".join(lines), key=f"fixity-{report['check'][:8]}",
                                 description="fixity check summary")
    except Exception as exc:  # noqa: BLE001 - a convenience: the events in the catalog are the record
        reporter().note(f"could not publish the Prefect fixity artifact: {exc}")
