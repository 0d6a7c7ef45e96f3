"""A model worker killed with SIGKILL mid-batch is restarted by Ray and its scan retried: the run
still masters every scan once, with nothing half-written and nothing recorded twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow
SCANS = 12


def _worker_pids(home: Path) -> list[int]:
    """Ray actor processes of this run's ScanWorker (found by their title and inherited env)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"ScanWorker" not in cmdline:
                continue
            if f"RESTORIUM_HOME={home}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_a_killed_worker_is_restarted_and_the_batch_completes(tmp_path, shared_data, shared_models):
    scans, home = tmp_path / "scans", tmp_path / "archive"
    scans.mkdir()
    sources = sorted((shared_data / "sr_gt/McMaster").glob("*.tif"))
    for i in range(SCANS):
        Image.open(sources[i]).convert("RGB").crop((0, 0, 96, 72)).save(scans / f"s{i:02d}.png")
    env = {**os.environ, "RESTORIUM_HOME": str(home), "RESTORIUM_MODELS_DIR": str(shared_models),
           "RESTORIUM_SHARD_SIZE": "4", "PREFECT_HOME": str(tmp_path / "prefect")}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", str(scans), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    killed = None
    try:
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            masters = list((home / "masters").rglob("*.tif")) if (home / "masters").is_dir() else []
            pids = _worker_pids(home)
            if masters and pids:  # mid-batch: some masters written, the worker busy with the next
                os.kill(pids[0], signal.SIGKILL)
                killed = pids[0]
            time.sleep(0.2)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed is not None, "the worker was never seen running"
    assert proc.returncode == 0, err[-3000:]
    assert out.strip(), err[-3000:]
    summary = json.loads(out)
    assert summary["counts"]["mastered"] == SCANS and summary["counts"]["failed"] == 0
    assert [w["pid"] for w in summary["workers"]] != [killed]  # a new process took over

    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        masters = db.execute("SELECT count(*), count(DISTINCT key) FROM files WHERE role = 'master'").fetchone()
    finally:
        db.close()
    assert masters == (SCANS, SCANS)  # every scan mastered once: the retried scan was not recorded twice
    assert len(list((home / "masters").rglob("*.tif"))) == SCANS
    assert not list(home.rglob("*.partial"))
