"""OCFL export: an item's object gets v1, a new version when its master is superseded, none when
nothing changed; ocfl-py's validator (the library and its console script) passes after each."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import ocfl
import pytest
from PIL import Image

from tasks.preservation.ocfl_export import (
    LAYOUT,
    OcflError,
    OcflItem,
    VersionUser,
    export_items,
    object_id,
    validate_storage_root,
)
from tasks.records.item_record import EventFacts, FileFacts, ItemRecord

OCFL_VALIDATE = Path(sys.executable).with_name("ocfl-validate.py")
USER = VersionUser("A. Archivist", "mailto:archivist@example.org")
ITEM = "5a1b9f0e-1c2d-5e3f-8a4b-6c7d8e9f0a1b"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _facts(uuid: str, role: str, path: Path, fmt: str, key: str | None, recipe: str | None, when: str) -> FileFacts:
    with Image.open(path) as im:
        width, height = im.size
    return FileFacts(uuid=uuid, role=role, path=str(path), sha256=_sha(path), size=path.stat().st_size, format=fmt,
                     width=width, height=height, channels=3, bit_depth=8, has_icc=False, ppi=None, created_at=when,
                     source_uuid=None if role == "original" else "orig-0001", derivation_key=key, recipe_name=recipe,
                     recipe_hash=None if recipe is None else hashlib.sha256(recipe.encode()).hexdigest())


def _audit(master: FileFacts, recipe: str) -> dict:
    return {"master": {"uuid": master.uuid, "sha256": master.sha256},
            "recipe": {"name": recipe, "hash": master.recipe_hash}, "software": {"name": "restorium", "version": "0.1.0"},
            "models": [{"name": "realesr-general-x4v3", "weights_sha256": "ab" * 32}]}


class Archive:
    """A real scan from the shared images, with masters and access copies made from it."""

    def __init__(self, root: Path, shared_data: Path) -> None:
        self.root = root
        (root / "scans").mkdir(parents=True)
        scan = root / "scans" / "wedding 1931.png"
        Image.open(shared_data / "old_photos/old/h.png").convert("RGB").crop((100, 100, 228, 196)).save(scan)
        original = _facts("orig-0001", "original", scan, "PNG", None, None, "2026-11-21T22:05:30Z")
        events = [EventFacts("ev-ingest", "ingestion", "ingest", "2026-11-21T22:05:30Z", "success", "registered",
                             {}, [], [("orig-0001", "output")])]
        self.record = ItemRecord(ITEM, "wedding 1931", None, "2026-11-21T22:05:30Z", [original], events, [])
        self.audits: dict[str, dict] = {}

    def master(self, name: str, recipe: str, scale: int, when: str) -> FileFacts:
        scan = Image.open(self.record.by_role("original")[0].path)
        big = scan.resize((scan.width * scale, scan.height * scale), Image.Resampling.LANCZOS)
        for folder in ("masters", "access"):
            (self.root / folder).mkdir(exist_ok=True)
        tif, jpg = self.root / "masters" / f"{name}.tif", self.root / "access" / f"{name}.jpg"
        big.save(tif, compression="tiff_lzw")
        big.save(jpg, quality=90)
        master = _facts(f"master-{name}", "master", tif, "TIFF", f"key-{name}", recipe, when)
        access = _facts(f"access-{name}", "access", jpg, "JPEG", f"key-{name}", recipe, when)
        self.record.files += [master, access]
        self.record.events.append(EventFacts(f"ev-tag-{name}", "metadata tagging", "tag", when, "success", "tagged",
                                             {}, [], [("orig-0001", "input"), (master.uuid, "output")]))
        self.audits[master.uuid] = _audit(master, recipe)
        return master

    def item(self) -> OcflItem:
        return OcflItem(self.record, dict(self.audits))


def _inventory(root: Path, item_uuid: str = ITEM) -> tuple[Path, ocfl.Inventory]:
    obj_dir = root / ocfl.StorageRoot(root=str(root)).object_path(object_id(item_uuid))
    return obj_dir, ocfl.Object(path=str(obj_dir)).parse_inventory()


def _valid(root: Path) -> None:
    assert validate_storage_root(root) == []
    obj_dir, _ = _inventory(root)
    result = subprocess.run([str(OCFL_VALIDATE), str(obj_dir)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is VALID" in result.stdout + result.stderr


def _extract(root: Path, version: str, dest: Path) -> dict[str, bytes]:
    obj_dir, _ = _inventory(root)
    ocfl.Object().extract(str(obj_dir), version, str(dest))
    return {str(p.relative_to(dest)): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}


def test_two_versions_of_an_item_validate_and_the_first_stays_readable(tmp_path: Path, shared_data: Path) -> None:
    archive = Archive(tmp_path / "archive", shared_data)
    first = archive.master("wedding.aaaa", "archival", 2, "2026-11-21T22:06:00Z")
    root = tmp_path / "ocfl"

    report = export_items([archive.item()], root, user=USER, now="2026-11-22T10:00:00Z")
    assert report.initialised and report.layout == LAYOUT and report.failed == 0
    (result,) = report.objects
    assert (result.status, result.version, result.head) == ("created", "v1", "v1")
    assert result.object_id == f"urn:uuid:{ITEM}" and (root / result.path / "0=ocfl_object_1.1").is_file()
    assert json.loads((root / "ocfl_layout.json").read_text())["extension"] == LAYOUT
    _valid(root)
    _, inventory = _inventory(root)
    v1 = inventory.version("v1")
    assert (v1.created, v1.user_name, v1.user_address) == ("2026-11-22T10:00:00Z", USER.name, USER.address)
    assert "first export of item wedding 1931" in v1.message and "derivative of the scan" in v1.message
    assert sorted(v1.logical_paths) == ["access/wedding_1931.jpg", "metadata/item.json", "metadata/premis.xml",
                                        "original/wedding 1931.png", "service/wedding_1931.tif"]
    state1 = _extract(root, "v1", tmp_path / "v1-now")
    assert state1["service/wedding_1931.tif"] == Path(first.path).read_bytes()
    item1 = json.loads(state1["metadata/item.json"])
    assert item1["derivation"]["preservation_object"] == "original/wedding 1931.png"
    assert item1["derivation"]["service_copy"] == "service/wedding_1931.tif"
    assert "derivative" in item1["derivation"]["statement"] and "preservation object" in item1["derivation"]["statement"]
    assert item1["files"]["service/wedding_1931.tif"]["derived_from"] == "original/wedding 1931.png"
    assert item1["files"]["service/wedding_1931.tif"]["sha256"] == first.sha256
    assert b"premis" in state1["metadata/premis.xml"]

    # the same files again: no version
    again = export_items([archive.item()], root, user=USER, now="2026-11-23T10:00:00Z").objects[0]
    assert (again.status, again.version, again.head) == ("unchanged", None, "v1")

    # a reviewer asked for another recipe: the new master supersedes the first
    archive.record.events.append(EventFacts("ev-request", "reprocessing", "request", "2026-11-24T09:00:00Z", "success",
                                            "reprocess with portrait (preset values) requested by B. Reviewer: faces too soft",
                                            {}, [], [(first.uuid, "input")]))
    second = archive.master("wedding.bbbb", "portrait", 3, "2026-11-24T09:30:00Z")
    archive.record.events.append(EventFacts("ev-done", "reprocessing", "done", "2026-11-24T09:31:00Z", "success",
                                            "remade", {"request": "ev-request", "new_master": {"uuid": second.uuid}},
                                            [], [(first.uuid, "input")]))
    updated = export_items([archive.item()], root, user=USER, now="2026-11-25T10:00:00Z").objects[0]
    assert (updated.status, updated.version, updated.head) == ("updated", "v2", "v2")
    assert "service copy superseded" in updated.message and "which stays in v1" in updated.message
    assert "requested by B. Reviewer: faces too soft" in updated.message
    assert "recipe archival" in updated.message and "-> portrait" in updated.message
    _valid(root)
    _, inventory = _inventory(root)
    assert inventory.version_directories == ["v1", "v2"] and inventory.version("v2").message == updated.message
    state2 = _extract(root, "v2", tmp_path / "v2")
    assert state2["service/wedding_1931.tif"] == Path(second.path).read_bytes()
    assert state2["original/wedding 1931.png"] == state1["original/wedding 1931.png"]
    assert set(state2) == set(state1)  # the superseded master is not in the head, only in v1
    copies = {c["master_uuid"]: c for c in json.loads(state2["metadata/item.json"])["service_copies"]}
    assert copies[first.uuid] == {**copies[first.uuid], "status": "superseded", "first_version": "v1",
                                  "last_version": "v1", "logical_path": "service/wedding_1931.tif"}
    assert copies[second.uuid]["status"] == "current" and copies[second.uuid]["first_version"] == "v2"

    # v1 still holds the first master, byte for byte
    assert _extract(root, "v1", tmp_path / "v1-later") == state1

    third = export_items([archive.item()], root, user=USER, now="2026-11-26T10:00:00Z").objects[0]
    assert (third.status, third.version, third.head) == ("unchanged", None, "v2")
    assert _inventory(root)[1].version_directories == ["v1", "v2"]
    _valid(root)
    assert not list(tmp_path.glob(".ocfl.*"))  # no staging left beside the root


def test_a_new_event_adds_a_metadata_version_that_keeps_the_service_copy(tmp_path: Path, shared_data: Path) -> None:
    archive = Archive(tmp_path / "archive", shared_data)
    master = archive.master("m", "archival", 2, "2026-11-21T22:06:00Z")
    root = tmp_path / "ocfl"
    export_items([archive.item()], root, user=USER)
    archive.record.events.append(EventFacts("ev-approve", "approval", "approve", "2026-11-22T08:00:00Z", "success",
                                            "approved by C", {"decision": "approved"}, [], [(master.uuid, "input")]))
    result = export_items([archive.item()], root, user=USER).objects[0]
    assert (result.status, result.version) == ("updated", "v2")
    assert result.message == "1 new event(s): approval"
    state = _extract(root, "v2", tmp_path / "v2")
    (copy,) = json.loads(state["metadata/item.json"])["service_copies"]
    assert (copy["status"], copy["first_version"]) == ("current", "v1")
    _valid(root)


def test_the_validator_finds_a_changed_file(tmp_path: Path, shared_data: Path) -> None:
    archive = Archive(tmp_path / "archive", shared_data)
    archive.master("m", "archival", 2, "2026-11-21T22:06:00Z")
    root = tmp_path / "ocfl"
    export_items([archive.item()], root, user=USER)
    obj_dir, _ = _inventory(root)
    (obj_dir / "v1/content/service/wedding_1931.tif").write_bytes(b"changed")
    problems = validate_storage_root(root)
    assert len(problems) == 1 and "E092" in problems[0]
    assert subprocess.run([str(OCFL_VALIDATE), str(obj_dir)], capture_output=True).returncode != 0
    # no version goes onto a damaged object: the next one is written, found invalid and taken out
    archive.master("m2", "portrait", 3, "2026-11-22T22:06:00Z")
    result = export_items([archive.item()], root, user=USER).objects[0]
    assert result.status == "failed" and "E092" in result.message
    assert _inventory(root)[1].head == "v1" and not (obj_dir / "v2").exists()


def test_a_changed_source_file_fails_its_item_only_and_leaves_no_trace(tmp_path: Path, shared_data: Path) -> None:
    good = Archive(tmp_path / "a", shared_data)
    good.master("m", "archival", 2, "2026-11-21T22:06:00Z")
    bad = Archive(tmp_path / "b", shared_data)
    bad.record.uuid = "0e0e0e0e-1111-5222-8333-444455556666"
    master = bad.master("m", "archival", 2, "2026-11-21T22:06:00Z")
    Path(master.path).write_bytes(b"changed after cataloguing")
    root = tmp_path / "ocfl"
    report = export_items([bad.item(), good.item()], root, user=USER)
    assert [o.status for o in report.objects] == ["failed", "created"] and report.failed == 1
    assert "sha256 is" in report.objects[0].message and "the catalog recorded" in report.objects[0].message
    assert not (root / report.objects[0].path).exists()
    assert validate_storage_root(root) == []
    assert not list(tmp_path.glob(".ocfl.*"))


def test_a_failed_write_takes_the_half_written_version_out(tmp_path: Path, shared_data: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    archive = Archive(tmp_path / "archive", shared_data)
    archive.master("m1", "archival", 2, "2026-11-21T22:06:00Z")
    root = tmp_path / "ocfl"
    export_items([archive.item()], root, user=USER)
    archive.master("m2", "portrait", 3, "2026-11-22T22:06:00Z")

    def disk_full(self, inventory=None, vdir=""):
        if vdir == "":  # the root inventory, after the version's files and its own inventory
            raise OSError(28, "No space left on device")
        return real(self, inventory, vdir)

    real = ocfl.Object.write_inventory_and_sidecar
    monkeypatch.setattr(ocfl.Object, "write_inventory_and_sidecar", disk_full)
    result = export_items([archive.item()], root, user=USER).objects[0]
    assert result.status == "failed" and "No space left" in result.message
    obj_dir, inventory = _inventory(root)
    assert inventory.head == "v1" and not (obj_dir / "v2").exists()
    _valid(root)
    monkeypatch.undo()
    assert export_items([archive.item()], root, user=USER).objects[0].version == "v2"
    _valid(root)


def test_a_folder_that_is_not_a_storage_root_is_refused(tmp_path: Path, shared_data: Path) -> None:
    archive = Archive(tmp_path / "archive", shared_data)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    with pytest.raises(OcflError, match="not an OCFL storage root"):
        export_items([archive.item()], tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    report = export_items([archive.item()], tmp_path / "empty")  # an item with its scan only
    assert report.initialised and report.objects[0].status == "created"
    assert validate_storage_root(tmp_path / "empty") == []
