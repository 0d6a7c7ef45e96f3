"""A clearly broken run stops with one clear message; a full disk is a clean stop."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from catalog import Catalog
from flows.restore_batch import RunStopped, restore_batch

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_and_ray")]


def _scans(folder: Path, shared_data: Path, count: int) -> Path:
    folder.mkdir()
    sources = sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[:count]
    for i, src in enumerate(sources):
        Image.open(src).convert("RGB").crop((0, 0, 48, 40)).save(folder / f"s{i:02d}.png")
    return folder


def test_broken_archive_stops_after_the_first_shard(tmp_path, shared_data, shared_models):
    scans = _scans(tmp_path / "scans", shared_data, 8)
    home = tmp_path / "archive"
    home.mkdir()
    (home / "masters").write_text("not a folder")  # a misconfigured archive: no master can be written
    with pytest.raises(RunStopped) as stopped:
        restore_batch(str(scans), settings={"home": str(home), "models_dir": str(shared_models), "shard_size": 4})
    message = str(stopped.value)
    assert "4 of 4 scans in the first shard failed" in message and "misconfiguration" in message
    summary = stopped.value.summary
    assert summary["counts"]["failed"] == 4 and summary["counts"]["scans"] == 8
    assert len(summary["scans"]) == 4  # the second shard was never started
    with Catalog.open(f"sqlite:///{home / 'catalog.sqlite'}") as catalog:
        assert catalog.run_summary(summary["run_uuid"])["status"] == "stopped"


def test_one_failing_scan_of_a_small_run_is_a_failed_scan_not_a_stop(tmp_path, shared_data, shared_models):
    """A nightly --only-new run finds one new scan, and it fails: exit 1 (a bad scan), not 3."""
    scans = _scans(tmp_path / "scans", shared_data, 1)
    home = tmp_path / "archive"
    home.mkdir()
    (home / "masters").write_text("not a folder")  # this scan's master cannot be written
    summary = restore_batch(str(scans), only_new=True,
                            settings={"home": str(home), "models_dir": str(shared_models)})
    assert summary["stopped"] is None
    assert summary["counts"]["failed"] == 1 and summary["scans"][0]["outcome"] == "failed"


def test_the_budget_is_judged_over_enough_scans_however_small_the_shards(tmp_path, shared_data, shared_models):
    scans = _scans(tmp_path / "scans", shared_data, 6)
    home = tmp_path / "archive"
    home.mkdir()
    (home / "masters").write_text("not a folder")
    with pytest.raises(RunStopped) as stopped:
        restore_batch(str(scans), settings={"home": str(home), "models_dir": str(shared_models), "shard_size": 1,
                                            "failure_budget_sample": 3})
    assert "3 of 3 scans in the first 3 shards failed" in str(stopped.value)
    assert len(stopped.value.summary["scans"]) == 3  # the fourth shard was never started


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_full_disk_is_a_clean_stop(tmp_path, shared_data, shared_models):
    scans = _scans(tmp_path / "scans", shared_data, 6)
    home = tmp_path / "small-disk"
    home.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(home)]).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        settings = {"home": str(home), "models_dir": str(shared_models), "shard_size": 3,
                    "catalog_url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"}
        with pytest.raises(RunStopped) as stopped:
            restore_batch(str(scans), settings=settings)
        assert "disk full" in str(stopped.value)
        assert not list(home.rglob("*.partial"))  # nothing half-written left behind
        summary = stopped.value.summary
        with Catalog.open(settings["catalog_url"]) as catalog:
            assert catalog.run_summary(summary["run_uuid"])["status"] == "stopped"
            for entry in summary["scans"]:
                if entry["outcome"] == "mastered":  # every master the catalog trusts is whole
                    record = catalog.audit(master_path=entry["master"])
                    assert record is not None and Path(entry["master"]).stat().st_size > 0
    finally:
        subprocess.run(["umount", str(home)])


def test_the_cli_says_why_it_stopped_and_exits_3(tmp_path, shared_data, shared_models):
    """What a scheduler sees: exit status 3, the partial summary as JSON, one clear message."""
    import json
    import sys

    scans = _scans(tmp_path / "scans", shared_data, 8)
    home = tmp_path / "archive"
    home.mkdir()
    (home / "masters").write_text("not a folder")
    env = {**os.environ, "RESTORIUM_HOME": str(home), "RESTORIUM_MODELS_DIR": str(shared_models),
           "RESTORIUM_SHARD_SIZE": "4", "PREFECT_HOME": str(tmp_path / "prefect")}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "run", str(scans), "--json"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 3, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert "misconfiguration" in summary["stopped"] and summary["counts"]["failed"] == 4
    assert "run stopped: 4 of 4 scans in the first shard failed" in " ".join(done.stderr.split())


def test_a_second_run_on_a_busy_archive_is_refused_and_touches_nothing(tmp_path):
    """A run started by hand beside the nightly one must not sweep the live run's temporaries."""
    from flows.restore_batch import ArchiveBusy, archive_lock

    home = tmp_path / "archive"
    (home / "masters").mkdir(parents=True)
    live = home / "masters" / ".a.tif.partial"  # being written by the run holding the lock
    live.write_bytes(b"half")
    with archive_lock(home):
        with pytest.raises(ArchiveBusy, match="another restorium run is working on this archive"):
            with archive_lock(home):
                pass
        assert live.exists()
    with archive_lock(home):  # released: the next run takes it
        pass
