"""A bad RESTORIUM_* setting is a clean exit 2 naming the variable, in every command.

Exit 1 means "some scans failed" to a scheduler: a traceback's exit 1 would hide a typo."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.records.results import ExitCode


@pytest.mark.parametrize("args", [
    ["audit", "{file}"], ["qa", "{file}"], ["demo", "--home", "{tmp}/demo"], ["models", "list"],
    ["schedule", "{tmp}", "--watch", "5"], ["fixity"], ["find", "--model", "x"], ["reprocess", "--pending"],
    ["run", "{tmp}"],
], ids=lambda a: a[0] if a[0] != "models" else "models-list")
def test_a_bad_setting_exits_2_and_names_it(tmp_path, args):
    scan = tmp_path / "scan.png"
    scan.write_bytes(b"not looked at")
    argv = [a.format(file=scan, tmp=tmp_path) for a in args]
    env = {"RESTORIUM_HOME": str(tmp_path / "home"), "RESTORIUM_WORKERS": "two"}
    result = CliRunner().invoke(app, argv, env=env)
    assert result.exit_code == ExitCode.NOT_STARTED, (result.output, result.exception)
    assert "RESTORIUM_WORKERS" in result.output and "'two'" in result.output
    assert "Traceback" not in result.output
