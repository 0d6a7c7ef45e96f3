"""QA of one file on its own, as `restorium qa` shows it: decode, diagnose, capture spec.

The same checks the batch runs before restoring (tasks.steps.pipeline), without touching anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.capture import CaptureProfile
from tasks.files.imageio import decode, inspect
from tasks.files.limits import DEFAULT, Limits
from tasks.qa import assessment as qa_stage
from tasks.qa.capture import check_capture
from tasks.records.failures import ScanError, scan_boundary


def check_file(path: Path, *, profile: CaptureProfile | None, max_pixels: int) -> dict[str, Any]:
    """{path, verdict, reasons, findings, capture}: a file that cannot be decoded fails with why."""
    entry: dict[str, Any] = {"path": str(path), "verdict": "fail", "reasons": [], "findings": {}, "capture": None}
    try:
        with scan_boundary(path):  # `restorium qa` over a hostile folder reports, never crashes
            image = decode(path, max_pixels=max_pixels)
            tech = inspect(path, Limits(max_pixels, max(DEFAULT.max_bytes, max_pixels * 8)))
            report = qa_stage.assess(image)
    except ScanError as exc:
        entry["reasons"] = [exc.reason]
        return entry
    verdict, reasons = report.verdict, list(report.reasons)
    if profile is not None:
        capture = check_capture(tech, image.icc, profile)
        entry["capture"] = capture.to_dict()
        reasons += [r.message for r in capture.problems]
        verdict = max(verdict, capture.verdict, key={"pass": 0, "warn": 1, "fail": 2}.__getitem__)
    entry.update(verdict=verdict, reasons=reasons, findings=report.findings)
    return entry
