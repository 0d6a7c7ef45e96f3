"""record_ingest: one Item and original File per distinct content, idempotent and race-safe."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from catalog import Catalog, CatalogError


def test_new_originals_are_catalogued_with_their_steps(catalog: Catalog, records, run_uuid: str) -> None:
    entries = [records.entry(records.facts(f"scan-{i:03}.tif")) for i in range(3)]
    result = catalog.record_ingest(run_uuid, entries)

    assert set(result) == {facts.sha256 for facts, _, _ in entries}
    for facts, identifier, steps in entries:
        got = result[facts.sha256]
        assert got.is_new and got.path == facts.path and got.item_identifier == identifier
        assert got.steps == steps  # stored and rebuilt exactly, in order
    assert catalog.count_rows() == {"runs": 1, "items": 3, "files": 3, "events": 6, "event_files": 6,
                                    "agents": 2, "event_agents": 12, "file_models": 0, "run_entries": 0}


def test_recording_twice_adds_nothing(catalog: Catalog, records, run_uuid: str) -> None:
    entries = [records.entry(records.facts(f"scan-{i}.tif")) for i in range(4)]
    first = catalog.record_ingest(run_uuid, entries)
    counts = catalog.count_rows()
    # A later run sees the same content, with fresh step times: the earlier events stand.
    later = [records.entry(facts, when="2026-11-22T08:00:00Z") for facts, _, _ in entries]
    second = catalog.record_ingest(records.start_run(catalog), later)

    assert catalog.count_rows() == {**counts, "runs": 2}
    for sha, got in second.items():
        assert not got.is_new
        assert got.steps == first[sha].steps
        assert got.steps[0].when == "2026-11-21T22:05:30Z"
        assert (got.item_uuid, got.original_uuid) == (first[sha].item_uuid, first[sha].original_uuid)


def test_same_content_at_two_paths_is_one_original(catalog: Catalog, records, run_uuid: str) -> None:
    a = records.facts("box1/a.tif", b"same pixels")
    b = records.facts("box2/b.tif", b"same pixels")
    result = catalog.record_ingest(run_uuid, [records.entry(a), records.entry(b)])
    assert list(result) == [a.sha256]
    assert result[a.sha256].path == a.path and result[a.sha256].item_identifier == "a"
    assert catalog.count_rows()["items"] == 1 and catalog.count_rows()["files"] == 1

    # Seen again later at a third path: the catalogued (first) path is reported.
    c = records.facts("box3/c.tif", b"same pixels")
    again = catalog.record_ingest(run_uuid, [records.entry(c)])[c.sha256]
    assert not again.is_new and again.path == a.path
    assert catalog.count_rows()["files"] == 1


def test_unreadable_header_is_catalogued_without_technical_metadata(catalog: Catalog, records,
                                                                   run_uuid: str) -> None:
    bad = records.facts("broken.tif", readable=False)
    result = catalog.record_ingest(run_uuid, [records.entry(bad)])
    assert result[bad.sha256].is_new
    assert catalog.count_rows()["files"] == 1


def test_ingest_without_a_run_and_unknown_runs(catalog: Catalog, records) -> None:
    facts = records.facts("a.tif")
    assert catalog.record_ingest(None, [records.entry(facts)])[facts.sha256].is_new
    with pytest.raises(CatalogError, match="start_run"):
        catalog.record_ingest("no-such-run", [records.entry(records.facts("b.tif"))])
    assert catalog.count_rows()["files"] == 1


def test_malformed_steps_are_refused_before_writing(catalog: Catalog, records, run_uuid: str) -> None:
    facts, identifier, steps = records.entry(records.facts("a.tif"))
    naive = [replace(steps[0], when="2026-11-21T22:05:30"), steps[1]]
    with pytest.raises(ValueError, match="no time zone"):
        catalog.record_ingest(run_uuid, [(facts, identifier, naive)])
    nan = [steps[0], replace(steps[1], parameters={"sigma": float("nan")})]
    with pytest.raises(ValueError, match="not plain JSON"):
        catalog.record_ingest(run_uuid, [(facts, identifier, nan)])
    assert catalog.count_rows()["files"] == 0


def test_two_writers_racing_on_the_same_ingest(db_url: str, records) -> None:
    """Two catalogs (two engines, as two processes would have) record the same batch at once:
    insert-or-ignore means neither raises and nothing is duplicated."""
    entries = [records.entry(records.facts(f"scan-{i:03}.tif")) for i in range(40)]
    with Catalog.open(db_url) as one, Catalog.open(db_url) as two:
        run_uuid = records.start_run(one)
        barrier = threading.Barrier(2)
        results: dict[str, dict] = {}
        errors: list[BaseException] = []

        def record(name: str, cat: Catalog) -> None:
            try:
                barrier.wait()
                results[name] = cat.record_ingest(run_uuid, entries)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=record, args=item) for item in (("one", one), ("two", two))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert one.count_rows() == {"runs": 1, "items": 40, "files": 40, "events": 80, "event_files": 80,
                                    "agents": 2, "event_agents": 160, "file_models": 0, "run_entries": 0}
        for facts, _, steps in entries:
            # Exactly one writer inserted each original; both report the same stored steps.
            assert results["one"][facts.sha256].is_new != results["two"][facts.sha256].is_new
            assert results["one"][facts.sha256].steps == results["two"][facts.sha256].steps == steps
