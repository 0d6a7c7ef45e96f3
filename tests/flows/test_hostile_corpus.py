"""One batch over the whole hostile corpus (tests/hostile_corpus.py): it completes, every case
ends as it declares, every entry is accounted for, failures are catalogued with their reasons,
and the originals are byte-identical afterwards."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

import hostile_corpus
import numpy as np
import pytest
from PIL import Image

from catalog import Catalog
from config.version import software_version
from flows.restore_batch import restore_batch

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_and_ray")]


def _regular_files(root: Path) -> dict[Path, str]:
    """sha256 of every regular file under root, links and pipes left alone (never followed or opened)."""
    found = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_one_batch_over_the_hostile_corpus_meets_every_expectation(tmp_path, shared_data, shared_models, monkeypatch):
    import tasks.files.ingest as ingest

    photo = np.asarray(Image.open(shared_data / "old_photos/old/h.png").convert("RGB"))[100:140, 60:108].copy()
    root = (tmp_path / "scans").resolve()
    cases = hostile_corpus.build(root, photo, tmp_path / "outside")
    unreadable = {str(root / c.name) for c in cases if c.unreadable}
    real_open = ingest.open_original

    def open_original(path):  # tests run as root, whom chmod 000 does not stop: refuse as the OS would
        if str(path) in unreadable:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path)

    monkeypatch.setattr(ingest, "open_original", open_original)
    before = _regular_files(root)
    home = tmp_path / "archive"

    summary = restore_batch(str(root), scale=2, settings={"home": str(home), "models_dir": str(shared_models)})

    assert summary["stopped"] is None
    entries = {Path(s["path"]).relative_to(root).as_posix(): s for s in summary["scans"]}
    assert set(entries) == {c.name for c in cases}  # every entry under the folder is accounted for
    for case in cases:
        entry = entries[case.name]
        assert entry["outcome"] == case.outcome, f"{case.name}: {entry}"
        said = " | ".join([entry["reason"] or "", *entry.get("notes", []), *entry.get("flags", [])])
        if case.outcome == "failed":
            if case.detail:
                assert entry["kind"] == case.detail, f"{case.name}: {entry}"
            if case.reason:
                assert case.reason in said, f"{case.name}: {said}"
        elif case.detail:
            assert case.detail in said, f"{case.name}: {said}"
        if case.outcome == "mastered":
            assert Path(entry["master"]).is_file()
    counts = summary["counts"]
    assert counts["mastered"] == sum(c.outcome == "mastered" for c in cases)
    assert counts["failed"] == sum(c.outcome == "failed" for c in cases)
    assert counts["skipped"] == sum(c.outcome == "skipped" for c in cases)
    assert _regular_files(root) == before  # the originals are byte-identical

    # every failure that has a content identity is in the catalog with its reason
    failed = [e for e in summary["scans"] if e["outcome"] == "failed" and e["sha256"]]
    with Catalog.open(f"sqlite:///{home / 'catalog.sqlite'}") as catalog:
        recorded = catalog.find_invalid([e["sha256"] for e in failed], software_version(),
                                        {"max_pixels": 400_000_000, "max_bytes": 3_200_000_000})
    for entry in failed:
        assert entry["sha256"] in recorded, entry
    bomb = entries["bombs/png-60000x60000.png"]
    assert recorded[bomb["sha256"]] == bomb["reason"]

    # ... and every entry, read or not, is in the run's ledger with its outcome, kind and reason
    with Catalog.open(f"sqlite:///{home / 'catalog.sqlite'}") as catalog:
        ledger = {Path(e["path"]).relative_to(root).as_posix(): e for e in catalog.run_entries(summary["run_uuid"])}
        assert catalog.run_summary(summary["run_uuid"])["entries"] == {
            k: v for k, v in counts.items() if k in ("mastered", "unchanged", "failed", "skipped") and v}
    assert set(ledger) == set(entries)
    for name, entry in entries.items():
        assert (ledger[name]["outcome"], ledger[name]["kind"], ledger[name]["reason"], ledger[name]["sha256"]) == \
            (entry["outcome"], entry["kind"], entry["reason"], entry["sha256"]), name
    assert any(e["sha256"] is None and e["outcome"] == "failed" for e in ledger.values())  # unreadable
    assert any(e["outcome"] == "skipped" for e in ledger.values())

    # restorium is one agent, whether the driver (ingest) or a worker (the steps) ran the step
    master = next(e["master"] for e in entries.values() if e["outcome"] == "mastered")
    with Catalog.open(f"sqlite:///{home / 'catalog.sqlite'}") as catalog:
        record = catalog.audit(master_path=master)
    software = {repr(a) for step in record.steps for a in step.agents if a.kind == "software"}
    assert len(software) == 1 and {s.step for s in record.steps} >= {"ingest", "upscale"}, software

    # A re-run finds only what it found before: nothing new to record, no new run row.
    again = restore_batch(str(root), scale=2, settings={"home": str(home), "models_dir": str(shared_models)})
    with Catalog.open(f"sqlite:///{home / 'catalog.sqlite'}") as catalog:
        runs = catalog.count_rows()["runs"]
    assert again["counts"]["mastered"] == 0 and runs == 1
