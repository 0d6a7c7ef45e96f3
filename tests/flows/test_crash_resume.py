"""Kill -9 at random moments, resume each time: the end state equals a clean run's.

A batch of 100 small real-image scans is run by the real CLI (Prefect, local Ray, the compact
weights) and killed with SIGKILL — the driver and everything it started — ten times at random
moments, resuming after each kill. Then it is run to the end. Compared with one uninterrupted run
into another archive: the same masters (pixel for pixel: file bytes carry run ids and times by
design), the same catalog rows (items, files by role, events; the killed runs leave their own
run rows), originals unchanged, nothing half-written left, no master on disk the catalog does
not know.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tasks.files.imageio import decode

pytestmark = pytest.mark.slow
SCANS = 100
KILLS = 10


def _make_scans(folder: Path, shared_data: Path) -> None:
    """100 distinct small crops of real photographs, in four sub-folders."""
    sources = sorted((shared_data / "sr_gt/McMaster").glob("*.tif"))
    for i in range(SCANS):
        image = Image.open(sources[i % len(sources)]).convert("RGB")
        step = i // len(sources)
        box = folder / f"box{i // 25}"
        box.mkdir(parents=True, exist_ok=True)
        image.crop((40 * step, 30 * step, 40 * step + 40, 30 * step + 32)).save(box / f"scan{i:03d}.png")


def _run(home: Path, scans: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(scans), "--home", str(home), "--json"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _state(home: Path) -> dict:
    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        files = dict(db.execute("SELECT role, count(*) FROM files GROUP BY role").fetchall())
        catalogued = {Path(p) for (p,) in db.execute("SELECT path FROM files WHERE role = 'master'")}
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("items", "events", "agents")}
        keys = {k for (k,) in db.execute("SELECT key FROM files")}
    finally:
        db.close()
    on_disk = set((home / "masters").rglob("*.tif"))
    pixels = {}
    for path in on_disk:
        image = decode(path, max_pixels=10**8)
        pixels[path.relative_to(home).as_posix()] = hashlib.sha256(
            image.pixels.tobytes() + (b"" if image.alpha is None else image.alpha.tobytes())).hexdigest()
    return {"files": files, "counts": counts, "keys": keys, "pixels": pixels,
            "orphans": on_disk - catalogued, "missing": catalogued - on_disk,
            "partials": [p for p in home.rglob("*.partial")]}


def test_sigkill_ten_times_then_resume_equals_a_clean_run(tmp_path, shared_data, shared_models):
    scans = tmp_path / "scans"
    _make_scans(scans, shared_data)
    originals = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in scans.rglob("*.png")}
    assert len(originals) == SCANS
    env = {**os.environ, "RESTORIUM_MODELS_DIR": str(shared_models), "PREFECT_HOME": str(tmp_path / "prefect"),
           "RESTORIUM_SHARD_SIZE": "8"}

    clean_home = tmp_path / "clean"
    started = time.monotonic()
    assert _run(clean_home, scans, env).wait(timeout=900) == 0
    clean_seconds = time.monotonic() - started

    rng = random.Random(7)
    home = tmp_path / "crashed"
    kills = 0
    for _ in range(KILLS):
        proc = _run(home, scans, env)
        # anywhere from start-up (Prefect, Ray, model loading) to well into the batch
        time.sleep(rng.uniform(2.0, max(4.0, clean_seconds * 0.8)))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= KILLS // 2, "most runs should have been killed mid-way"
    assert _run(home, scans, env).wait(timeout=900) == 0

    clean, crashed = _state(clean_home), _state(home)
    assert crashed["partials"] == [] and crashed["orphans"] == set() and crashed["missing"] == set()
    assert crashed["files"] == clean["files"] == {"original": SCANS, "master": SCANS, "access": SCANS,
                                                  "review": SCANS}
    assert crashed["keys"] == clean["keys"]
    assert crashed["counts"] == clean["counts"]
    assert crashed["pixels"].keys() == clean["pixels"].keys()
    assert crashed["pixels"] == clean["pixels"]  # the same masters, pixel for pixel
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in originals} == originals
