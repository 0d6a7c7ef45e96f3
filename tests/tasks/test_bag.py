"""BagIt packages: valid for the bagit library and its command line, never with a changed file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import bagit
import pytest

from tasks.preservation.bag import BagError, BagItem, make_bag, validate_bag
from tasks.records.item_record import EventFacts, FileFacts, ItemRecord

BAGIT_PY = Path(sys.executable).with_name("bagit.py")


def _item(root: Path, name: str) -> ItemRecord:
    files = []
    for role, suffix in (("original", "png"), ("master", "tif"), ("access", "jpg"), ("review", "png")):
        path = root / role / f"{name}.{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{name} {role} bytes".encode())
        files.append(FileFacts(uuid=f"{name}-{role}", role=role, path=str(path),
                               sha256=hashlib.sha256(path.read_bytes()).hexdigest(), size=path.stat().st_size,
                               format={"png": "PNG", "tif": "TIFF", "jpg": "JPEG"}[suffix], width=4, height=3,
                               channels=3, bit_depth=8, has_icc=False, ppi=None, created_at="2026-11-21T22:05:30Z",
                               source_uuid=None if role == "original" else f"{name}-original"))
    events = [EventFacts(f"{name}-ev", "ingestion", "ingest", "2026-11-21T22:05:30Z", "success", "registered",
                         {}, [], [(f"{name}-original", "output")])]
    return ItemRecord(f"{name}-uuid-0000", name, None, "2026-11-21T22:05:30Z", files, events, [])


def test_bag_is_valid_for_the_library_and_the_console_script(tmp_path: Path) -> None:
    items = [BagItem(_item(tmp_path / "archive", n), {"audits": {}}) for n in ("box1 #7", "box2")]
    report = make_bag(items, tmp_path / "bag", bag_info={"Source-Organization": "Test Archive"})

    assert report.payload_files == 2 * (4 + 2)  # four files and premis.xml + provenance.json per item
    bag = bagit.Bag(str(tmp_path / "bag"))
    bag.validate()
    assert set(bag.algorithms) == {"sha256", "sha512"}
    assert bag.info["Source-Organization"] == "Test Archive"
    folder = tmp_path / "bag" / report.items[0]["folder"]
    assert (folder / "master" / "box1 #7.tif").read_bytes() == b"box1 #7 master bytes"
    assert b"premis" in (folder / "metadata" / "premis.xml").read_bytes()
    provenance = json.loads((folder / "metadata" / "provenance.json").read_text())
    assert provenance["item"]["identifier"] == "box1 #7" and len(provenance["bag_files"]) == 4
    result = subprocess.run([str(BAGIT_PY), "--validate", str(tmp_path / "bag")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stderr
    validate_bag(tmp_path / "bag")

    (folder / "access" / "box1 #7.jpg").write_bytes(b"tampered")
    with pytest.raises(BagError, match="not a valid bag"):
        validate_bag(tmp_path / "bag")
    assert subprocess.run([str(BAGIT_PY), "--validate", str(tmp_path / "bag")], capture_output=True).returncode != 0


def test_a_changed_or_missing_file_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    record = _item(tmp_path / "archive", "x")
    Path(record.by_role("master")[0].path).write_bytes(b"changed after cataloguing")
    with pytest.raises(BagError, match=r"master .*x\.tif: sha256 is .* the catalog recorded"):
        make_bag([BagItem(record)], tmp_path / "bag")
    assert not (tmp_path / "bag").exists() and not list(tmp_path.glob(".bag*"))
    record = _item(tmp_path / "archive2", "y")
    Path(record.by_role("original")[0].path).unlink()
    with pytest.raises(BagError, match=r"original .*y\.png: missing"):
        make_bag([BagItem(record)], tmp_path / "bag")


def test_destination_must_be_new_or_empty(tmp_path: Path) -> None:
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "keep.txt").write_text("mine")
    with pytest.raises(BagError, match="already exists"):
        make_bag([BagItem(_item(tmp_path / "a", "z"))], tmp_path / "bag")
    assert (tmp_path / "bag" / "keep.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert make_bag([BagItem(_item(tmp_path / "a", "z"))], tmp_path / "empty").payload_files == 6
