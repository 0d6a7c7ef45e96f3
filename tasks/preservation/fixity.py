"""Fixity: re-hash a catalogued file and say whether it is still what the catalog recorded.

No database here: the flow (flows/fixity.py) picks the files and records each result as a
"fixity check" event on that file.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from tasks.files.atomic import sha256_file
from tasks.records.keys import stable_uuid
from tasks.records.types import FIXITY_CHECK, AgentInfo, StepRecord, utc_now

Status = Literal["ok", "mismatch", "missing", "unreadable"]
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy]?)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400, "": 86400}


@dataclass
class FixityResult:
    file_uuid: str
    role: str
    path: str
    item_uuid: str
    expected: str
    actual: str | None
    status: Status
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_file(file_uuid: str, role: str, path: str, expected: str, item_uuid: str = "") -> FixityResult:
    """Re-hash one file (streaming, read-only) and compare with the recorded sha256."""
    p = Path(path)
    if not p.is_file():
        return FixityResult(file_uuid, role, path, item_uuid, expected, None, "missing", f"{path}: no such file")
    try:
        actual = sha256_file(p)
    except OSError as exc:
        return FixityResult(file_uuid, role, path, item_uuid, expected, None, "unreadable", f"{path}: {exc}")
    if actual != expected:
        return FixityResult(file_uuid, role, path, item_uuid, expected, actual, "mismatch",
                            f"{path}: sha256 {actual}, expected {expected}")
    return FixityResult(file_uuid, role, path, item_uuid, expected, actual, "ok")


def fixity_step(result: FixityResult, check_uuid: str, agents: list[AgentInfo], when: str | None = None) -> StepRecord:
    """The event that records one check. Its uuid is per file and per check run, so a retried
    chunk of the same run adds nothing and every later run adds its own event."""
    detail = ("sha256 matches the catalogued value" if result.ok
              else {"mismatch": "sha256 differs from the catalogued value", "missing": "file is missing",
                    "unreadable": "file cannot be read"}[result.status] + f" ({result.reason})")
    return StepRecord(
        event_uuid=stable_uuid("fixity", result.file_uuid, check_uuid), type=FIXITY_CHECK, step="fixity",
        when=when or utc_now(), outcome="success" if result.ok else "failure", detail=detail, agents=agents,
        parameters={"algorithm": "sha256", "expected": result.expected, "actual": result.actual,
                    "status": result.status, "path": result.path, "role": result.role, "check": check_uuid},
    )


def parse_age(text: str) -> dt.timedelta:
    """'180d', '12h', '30m', '2w', '1y' (a bare number is days) → timedelta."""
    m = _AGE.match(text or "")
    if not m:
        raise ValueError(f"age {text!r}: expected a number and a unit, e.g. 180d, 12h, 30m, 2w, 1y")
    return dt.timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])
