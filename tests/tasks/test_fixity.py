"""Fixity checks of single files and the event each one becomes."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from tasks.preservation.fixity import check_file, fixity_step, parse_age
from tasks.records.types import FIXITY_CHECK, AgentInfo

SOFTWARE = AgentInfo("software", "restorium", "0.1.0")


def test_ok_mismatch_and_missing(tmp_path) -> None:
    path = tmp_path / "master.tif"
    path.write_bytes(b"pixels")
    sha = hashlib.sha256(b"pixels").hexdigest()
    ok = check_file("u1", "master", str(path), sha, "item")
    assert ok.ok and ok.actual == sha
    path.write_bytes(b"pixelz")  # one flipped bit's worth of change
    bad = check_file("u1", "master", str(path), sha, "item")
    assert bad.status == "mismatch" and bad.actual == hashlib.sha256(b"pixelz").hexdigest()
    path.unlink()
    gone = check_file("u1", "master", str(path), sha, "item")
    assert gone.status == "missing" and gone.actual is None and str(path) in gone.reason


def test_each_check_is_one_event_with_expected_and_actual(tmp_path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x")
    result = check_file("file-1", "access", str(path), "0" * 64)
    step = fixity_step(result, "check-1", [SOFTWARE], "2026-11-21T22:05:30Z")
    assert step.type == FIXITY_CHECK and step.outcome == "failure"
    assert step.parameters["expected"] == "0" * 64 and step.parameters["actual"] == hashlib.sha256(b"x").hexdigest()
    assert step.parameters["status"] == "mismatch"
    # the same check run retried: same event; another run: another event
    assert fixity_step(result, "check-1", [SOFTWARE]).event_uuid == step.event_uuid
    assert fixity_step(result, "check-2", [SOFTWARE]).event_uuid != step.event_uuid


def test_ages() -> None:
    assert parse_age("180d") == dt.timedelta(days=180)
    assert parse_age("12h") == dt.timedelta(hours=12)
    assert parse_age("30m") == dt.timedelta(minutes=30)
    assert parse_age("2w") == dt.timedelta(weeks=2)
    assert parse_age("7") == dt.timedelta(days=7)
    with pytest.raises(ValueError, match="180d"):
        parse_age("soon")
