"""The run summary: one entry per file found, the counts, timings and where the reports are.

What the CLI prints (table or --json), the run report shows and the catalog's run ledger keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.records.results import ScanStatus


@dataclass
class ScanEntry:
    """One line of the run summary (the CLI's table and --json)."""

    path: str
    sha256: str | None
    outcome: ScanStatus  # skipped: not a scan, never read (see reason)
    master: str | None = None
    access: str | None = None
    reason: str | None = None
    verdict: str | None = None  # QA verdict when QA ran this run: pass | warn | fail
    flags: list[str] = field(default_factory=list)  # why a person should look at the master
    notes: list[str] = field(default_factory=list)  # what reading the scan changed (CMYK → RGB…)
    kind: str | None = None  # a failure's kind (tasks.records.failures): invalid, too-large, unreadable…


@dataclass
class RunSummary:
    run_uuid: str
    scans_dir: str
    recipe: str
    recipe_hash: str
    home: str
    catalog: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("scans", "ingested", *(status.value for status in ScanStatus), "flagged"), 0))
    qa_report: str | None = None  # the run's QA summary (HTML) when QA ran
    report: str | None = None  # the run report (HTML; JSON beside it)
    stopped: str | None = None  # why the run stopped early, if it did
    workers: list[dict[str, Any]] = field(default_factory=list)  # node, device, scans, busy time
    timings: dict[str, float] = field(default_factory=dict)
    scans: list[ScanEntry] = field(default_factory=list)

    def add(self, entry: ScanEntry) -> None:
        self.scans.append(entry)
        self.counts[entry.outcome] += 1
        self.counts["flagged"] += bool(entry.flags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_uuid": self.run_uuid, "scans_dir": self.scans_dir, "recipe": self.recipe,
            "recipe_hash": self.recipe_hash, "home": self.home, "catalog": self.catalog,
            "counts": self.counts, "timings": self.timings, "qa_report": self.qa_report, "report": self.report,
            "stopped": self.stopped, "workers": self.workers,
            "scans": [vars(s) for s in self.scans],
        }
