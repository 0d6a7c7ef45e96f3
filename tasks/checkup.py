"""QA of one file on its own, as `restorium qa` shows it: decode, diagnose, capture spec.

The same checks the batch runs before restoring (tasks.pipeline), without touching anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.capture import CaptureProfile
from tasks import qa as qa_stage
from tasks.capture import check_capture
from tasks.imageio import ScanError, decode, inspect


def check_file(path: Path, *, profile: CaptureProfile | None, max_pixels: int) -> dict[str, Any]:
    """{path, verdict, reasons, findings, capture}: a file that cannot be decoded fails with why."""
    entry: dict[str, Any] = {"path": str(path), "verdict": "fail", "reasons": [], "findings": {}, "capture": None}
    try:
        image = decode(path, max_pixels=max_pixels)
        tech = inspect(path)
    except (ScanError, OSError) as exc:
        entry["reasons"] = [exc.reason if isinstance(exc, ScanError) else f"cannot read: {exc}"]
        return entry
    report = qa_stage.assess(image)
    verdict, reasons = report.verdict, list(report.reasons)
    if profile is not None:
        capture = check_capture(tech, image.icc, profile)
        entry["capture"] = capture.to_dict()
        reasons += [r.message for r in capture.problems]
        verdict = max(verdict, capture.verdict, key={"pass": 0, "warn": 1, "fail": 2}.__getitem__)
    entry.update(verdict=verdict, reasons=reasons, findings=report.findings)
    return entry
