"""record_outcomes, find_masters, find_invalid and audit."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from catalog import Catalog, CatalogError, MasterInfo
from tasks.records.types import AuditRecord, ScanOutcome


def _ingest(catalog: Catalog, records, run_uuid: str, *names: str):
    facts = [records.facts(n) for n in names]
    result = catalog.record_ingest(run_uuid, [records.entry(f) for f in facts])
    return facts, result


def _expected_audit(records, facts, ingested, outcome: ScanOutcome, run_uuid: str) -> AuditRecord:
    """What the master's XMP says: built from the same inputs the driver wrote into it."""
    original = ingested[facts.sha256]
    return AuditRecord(
        master={"uuid": outcome.master.uuid, "path": outcome.master.path, "sha256": outcome.master.sha256},
        original={"uuid": original.original_uuid, "path": facts.path, "sha256": facts.sha256,
                  "item_uuid": original.item_uuid, "identifier": Path(facts.path).stem},
        derivation_key=outcome.derivation_key,
        recipe={"name": "archival", "hash": records.RECIPE_HASH, "resolved": outcome.resolved_recipe,
                "plan_reasons": outcome.plan_reasons},
        run={"uuid": run_uuid},
        software={"name": "restorium", "version": records.SOFTWARE.version},
        models=[records.DENOISER, records.MODEL],
        steps=original.steps + outcome.steps,
    )


def test_mastered_outcomes_are_recorded_once_and_audited(catalog: Catalog, records, run_uuid: str) -> None:
    facts, ingested = _ingest(catalog, records, run_uuid, "a.tif", "b.tif")
    outcomes = [records.mastered(f, run_uuid) for f in facts]
    catalog.record_outcomes(run_uuid, outcomes)
    counts = catalog.count_rows()
    assert counts["files"] == 2 + 4 and counts["events"] == 4 + 10
    assert counts["agents"] == 4  # software, host, two models: shared, not repeated per event

    catalog.record_outcomes(run_uuid, outcomes)  # a retried shard
    catalog.record_outcomes(run_uuid, outcomes[:1])
    assert catalog.count_rows() == counts

    for f, outcome in zip(facts, outcomes, strict=True):
        expected = _expected_audit(records, f, ingested, outcome, run_uuid)
        by_sha = catalog.audit(sha256=outcome.master.sha256)
        assert by_sha == expected
        assert by_sha.to_dict() == expected.to_dict()
        assert catalog.audit(master_path=outcome.master.path) == expected
        assert [s.type for s in by_sha.steps][:2] == ["ingestion", "message digest calculation"]


def test_audit_keeps_ingest_first_and_step_order(catalog: Catalog, records, run_uuid: str) -> None:
    """Ingested in an earlier run; all derivation steps in the same second keep their order."""
    (facts,), ingested = _ingest(catalog, records, run_uuid, "a.tif")
    later_run = records.start_run(catalog)
    outcome = records.mastered(facts, later_run, when="2026-12-01T09:00:00Z")
    catalog.record_outcomes(later_run, [outcome])
    audit = catalog.audit(sha256=outcome.master.sha256)
    assert audit.run == {"uuid": later_run}
    assert audit.steps == ingested[facts.sha256].steps + outcome.steps
    assert [s.step for s in audit.steps] == ["ingest", "digest", "qa", "restore", "upscale", "finish", "tag"]


def test_audit_of_an_access_copy_and_of_a_changed_master(catalog: Catalog, records, run_uuid: str) -> None:
    (facts,), ingested = _ingest(catalog, records, run_uuid, "a.tif")
    outcome = records.mastered(facts, run_uuid)
    catalog.record_outcomes(run_uuid, [outcome])
    expected = _expected_audit(records, facts, ingested, outcome, run_uuid)

    access = outcome.access
    assert catalog.audit(sha256=access.sha256) == replace(
        expected, master={"uuid": access.uuid, "path": access.path, "sha256": access.sha256})
    # The master's bytes changed (its sha256 is unknown): found by path, with the catalogued
    # sha256, so the caller sees the difference.
    assert catalog.audit(master_path=outcome.master.path, sha256="f" * 64) == expected
    assert catalog.audit(sha256="f" * 64) is None


def test_failed_attempt_before_mastering_is_not_part_of_the_audit(catalog: Catalog, records,
                                                                  run_uuid: str) -> None:
    (facts,), ingested = _ingest(catalog, records, run_uuid, "a.tif")
    catalog.record_outcomes(run_uuid, [records.failed(facts, run_uuid, invalid=False)])  # e.g. out of memory
    retry_run = records.start_run(catalog)
    outcome = records.mastered(facts, retry_run)
    catalog.record_outcomes(retry_run, [outcome])
    audit = catalog.audit(sha256=outcome.master.sha256)
    assert audit == _expected_audit(records, facts, ingested, outcome, retry_run)
    assert all(s.outcome != "failure" for s in audit.steps)


def test_audit_of_unknown_master(catalog: Catalog) -> None:
    assert catalog.audit(sha256="0" * 64) is None
    assert catalog.audit(master_path="/nowhere.tif") is None
    with pytest.raises(ValueError, match="sha256 or its path"):
        catalog.audit()


def test_find_masters(catalog: Catalog, records, run_uuid: str) -> None:
    facts, _ = _ingest(catalog, records, run_uuid, "a.tif", "b.tif")
    outcome = records.mastered(facts[0], run_uuid)
    catalog.record_outcomes(run_uuid, [outcome])
    missing = records.derivation(facts[1])
    found = catalog.find_masters([outcome.derivation_key, missing])
    assert found == {outcome.derivation_key: MasterInfo(uuid=outcome.master.uuid, path=outcome.master.path,
                                                        sha256=outcome.master.sha256,
                                                        access_path=outcome.access.path)}
    assert catalog.find_masters([]) == {}


def test_failed_outcomes_keep_their_reason(catalog: Catalog, records, run_uuid: str) -> None:
    facts, _ = _ingest(catalog, records, run_uuid, "bad.tif", "oom.tif", "good.tif")
    invalid = records.failed(facts[0], run_uuid, invalid=True)
    error = records.failed(facts[1], run_uuid, invalid=False)
    mastered = records.mastered(facts[2], run_uuid)
    catalog.record_outcomes(run_uuid, [invalid, error, mastered])
    catalog.record_outcomes(run_uuid, [invalid, error])
    assert catalog.count_rows()["events"] == 6 + 2 + 5

    shas = [f.sha256 for f in facts]
    assert catalog.find_invalid(shas, records.SOFTWARE.version) == {facts[0].sha256: "not a TIFF header"}
    assert catalog.find_invalid(shas, "0.2.0") == {}  # a newer version gets to try again
    assert catalog.find_masters([invalid.derivation_key, error.derivation_key]) == {}

    summary = catalog.run_summary(run_uuid)
    assert summary["masters"] == 1 and summary["failed_items"] == 2
    assert summary["events"] == {"success": 6 + 5, "failure": 2}


def test_invalid_found_by_software_agent_when_not_in_parameters(catalog: Catalog, records, run_uuid: str) -> None:
    (facts,), _ = _ingest(catalog, records, run_uuid, "bad.tif")
    outcome = records.failed(facts, run_uuid, software_version="0.3.0")
    step = outcome.steps[0]
    outcome.steps = [replace(step, parameters={k: v for k, v in step.parameters.items() if k != "software_version"})]
    catalog.record_outcomes(run_uuid, [outcome])
    assert catalog.find_invalid([facts.sha256], "0.3.0") == {facts.sha256: "not a TIFF header"}
    assert catalog.find_invalid([facts.sha256], "0.1.0") == {}


def test_bad_outcomes_write_nothing(catalog: Catalog, records, run_uuid: str) -> None:
    (facts,), _ = _ingest(catalog, records, run_uuid, "a.tif")
    counts = catalog.count_rows()
    good = records.mastered(facts, run_uuid)
    stranger = records.mastered(records.facts("never-ingested.tif"), run_uuid)
    with pytest.raises(CatalogError, match="never ingested"):
        catalog.record_outcomes(run_uuid, [good, stranger])
    no_hash = records.mastered(facts, run_uuid)
    no_hash.steps[0] = replace(no_hash.steps[0], parameters={})
    with pytest.raises(ValueError, match="recipe_hash"):
        catalog.record_outcomes(run_uuid, [no_hash])
    with pytest.raises(ValueError, match="master WrittenFile"):
        catalog.record_outcomes(run_uuid, [replace(good, master=None)])
    with pytest.raises(CatalogError, match="start_run"):
        catalog.record_outcomes("no-such-run", [good])
    assert catalog.count_rows() == counts


def test_two_writers_racing_on_the_same_shard(db_url: str, records) -> None:
    with Catalog.open(db_url) as one, Catalog.open(db_url) as two:
        run_uuid = records.start_run(one)
        facts = [records.facts(f"scan-{i:02}.tif") for i in range(20)]
        one.record_ingest(run_uuid, [records.entry(f) for f in facts])
        outcomes = [records.mastered(f, run_uuid) for f in facts]
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def record(cat: Catalog) -> None:
            try:
                barrier.wait()
                cat.record_outcomes(run_uuid, outcomes)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=record, args=(cat,)) for cat in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        counts = one.count_rows()
        assert counts["files"] == 20 * 3 and counts["events"] == 20 * (2 + 5)
        assert one.audit(sha256=outcomes[0].master.sha256).steps[2:] == outcomes[0].steps


def test_runs_start_and_finish(catalog: Catalog, records) -> None:
    run_uuid = records.start_run(catalog)
    records.start_run(catalog, run_uuid)  # starting the same run again changes nothing
    assert catalog.count_rows()["runs"] == 1
    assert catalog.run_summary(run_uuid)["status"] == "running"
    catalog.finish_run(run_uuid, status="finished", counts={"mastered": 3}, timings={"total": 12.5})
    summary = catalog.run_summary(run_uuid)
    assert summary["status"] == "finished" and summary["counts"] == {"mastered": 3}
    assert summary["timings"] == {"total": 12.5} and summary["finished_at"]
    with pytest.raises(ValueError, match="expected finished"):
        catalog.finish_run(run_uuid, status="done", counts={}, timings={})
    with pytest.raises(CatalogError, match="not in the catalog"):
        catalog.finish_run("no-such-run", status="failed", counts={}, timings={})


def test_the_run_ledger_holds_every_entry_and_knows_unread_files_seen_before(catalog: Catalog, records) -> None:
    run_uuid = records.start_run(catalog)
    entries = [
        {"path": "/scans/a.tif", "outcome": "mastered", "kind": None, "reason": None, "sha256": "a" * 64},
        {"path": "/scans/locked.tif", "outcome": "failed", "kind": "unreadable",
         "reason": "/scans/locked.tif: permission denied", "sha256": None},
        {"path": "/scans/notes.txt", "outcome": "skipped", "kind": None, "reason": "not an image", "sha256": None},
    ]
    catalog.record_run_entries(run_uuid, entries)
    assert catalog.run_entries(run_uuid) == entries
    assert catalog.run_summary(run_uuid)["entries"] == {"mastered": 1, "failed": 1, "skipped": 1}
    seen = ("/scans/notes.txt", "skipped", "not an image")
    assert catalog.known_unread([seen, ("/scans/notes.txt", "skipped", "another reason"),
                                 ("/scans/new.txt", "skipped", "not an image")]) == {seen}
    with pytest.raises(ValueError, match="outcomes"):
        catalog.record_run_entries(run_uuid, [{**entries[0], "outcome": "lost"}])
    with pytest.raises(CatalogError, match="not in the catalog"):
        catalog.record_run_entries("no-such-run", entries)
