"""Archivematica transfers: the documented layout, metadata.csv, a premis.xml Archivematica would import
(valid PREMIS 3, every file, event and agent linked), right checksums, the bagged variant, atomic."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import bagit
import numpy as np
import pytest
import tifffile
from lxml import etree
from PIL import Image

from tasks.preservation import archivematica as am
from tasks.preservation import premis
from tasks.records.item_record import AgentFacts, EventFacts, FileFacts, ItemRecord

NS = {"p": premis.PREMIS_NS, "xsi": premis.XSI_NS}
BAGIT_PY = Path(sys.executable).with_name("bagit.py")
SHA256SUM = shutil.which("sha256sum")
AGENTS = [AgentFacts("ag-sw", "software", "restorium", "0.1.0"), AgentFacts("ag-host", "host", "box", "cpu")]


def _facts(uuid: str, role: str, path: Path, fmt: str, when: str, **extra) -> FileFacts:
    return FileFacts(uuid=uuid, role=role, path=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                     size=path.stat().st_size, format=fmt, width=8, height=8, channels=3, bit_depth=8, has_icc=False,
                     ppi=None, created_at=when, **extra)


def _event(uuid: str, type_: str, files: list[tuple[str, str]], agents: list[str] | None = None) -> EventFacts:
    return EventFacts(uuid, type_, type_.split()[0], "2026-11-21T22:06:00Z", "success", f"{type_} done", {"n": 1},
                      ["ag-sw", "ag-host"] if agents is None else agents, files)


def _item(root: Path, photo: Path, name: str, identifier: str, *, masters: int = 1) -> ItemRecord:
    """An item as the catalog records it: a real scan (a JPEG crop of a real photograph), `masters`
    masters (TIFF) with their access copies (JPEG), older first, and a review sheet."""
    folder = root / name
    folder.mkdir(parents=True)
    rgb = np.asarray(Image.open(photo).convert("RGB"))[:48, :64]
    Image.fromarray(rgb).save(folder / "scan.jpg", quality=92)
    files = [_facts(f"{name}-scan", "original", folder / "scan.jpg", "JPEG", "2026-11-21T22:05:00Z")]
    events = [_event(f"{name}-ing", "ingestion", [(f"{name}-scan", "output")]),
              _event(f"{name}-dig", "message digest calculation", [(f"{name}-scan", "input")], agents=[])]
    for n in range(masters):
        up = np.repeat(np.repeat(rgb, 2, 0), 2, 1) // (n + 1)
        tifffile.imwrite(folder / f"master{n}.tif", up.astype(np.uint8))
        Image.fromarray(up.astype(np.uint8)).save(folder / f"access{n}.jpg")
        when = f"2026-11-2{2 + n}T10:00:00Z"
        derived = dict(source_uuid=f"{name}-scan", derivation_key=f"{name}-key{n}", recipe_name="archival",
                       recipe_hash="5" * 64, run_uuid=f"run-{n}", derivation_events=[f"{name}-tag{n}"])
        files += [_facts(f"{name}-m{n}", "master", folder / f"master{n}.tif", "TIFF", when, **derived),
                  _facts(f"{name}-a{n}", "access", folder / f"access{n}.jpg", "JPEG", when, **derived)]
        events += [_event(f"{name}-tag{n}", "metadata tagging",
                          [(f"{name}-scan", "input"), (f"{name}-m{n}", "output"), (f"{name}-a{n}", "output")]),
                   _event(f"{name}-fix{n}", "fixity check", [(f"{name}-m{n}", "input")])]
    Image.fromarray(rgb).save(folder / "review.png")
    files.append(_facts(f"{name}-rev", "review", folder / "review.png", "PNG", "2026-11-25T10:00:00Z"))
    events.append(_event(f"{name}-sheet", "review sheet", [(f"{name}-rev", "output")]))
    return ItemRecord(f"{name}-uuid", identifier, None, "2026-11-21T22:05:00Z", files, events, list(AGENTS))


SHEET = {"file": "scan.jpg", "row": 2, "identifier": "box1 #7", "title": "Wedding, 1931", "date": "1931-05-02",
         "creator": "J. Doe", "rights": "CC0", "physical": {"width": 10, "height": 15, "unit": "cm"},
         "dc": {"dc.subject": "wedding", "dc.relation": "album 3"}}


@pytest.fixture
def items(tmp_path: Path, shared_data: Path) -> list[am.TransferItem]:
    old = shared_data / "old_photos/old"
    first = _item(tmp_path / "archive", old / "h.png", "a", "box1 #7", masters=2)  # one master superseded
    second = _item(tmp_path / "archive", old / "f.png", "b", "box1_7")  # same name once cleaned up
    return [am.TransferItem(first, {"a-m1": {"derivation_key": "a-key1"}}, SHEET), am.TransferItem(second, {}, {})]


def _csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def _sums(transfer: Path) -> dict[str, str]:
    objects = transfer / "objects"
    return {p.relative_to(objects).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(objects.rglob("*")) if p.is_file()}


def test_standard_transfer_layout_and_byte_identical_files(items, tmp_path: Path) -> None:
    report = am.write_transfer(items, tmp_path / "t", submission_docs=[])
    t = tmp_path / "t"
    assert sorted(p.name for p in t.iterdir()) == ["logs", "metadata", "objects"]  # Archivematica's compliance
    assert (t / "metadata/submissionDocumentation").is_dir()
    a, b = items[0].record, items[1].record
    assert sorted(_sums(t)) == ["access/box1_7.jpg", "access/box1_7_b-uuid.jpg", "box1_7.jpg", "box1_7_b-uuid.jpg",
                                "service/box1_7.tif", "service/box1_7_b-uuid.tif"]
    # the scan byte for byte; the newest master and its access copy, never the superseded ones
    assert (t / "objects/box1_7.jpg").read_bytes() == Path(a.file("a-scan").path).read_bytes()
    assert (t / "objects/service/box1_7.tif").read_bytes() == Path(a.file("a-m1").path).read_bytes()
    assert (t / "objects/access/box1_7.jpg").read_bytes() == Path(a.file("a-a1").path).read_bytes()
    assert (t / "objects/box1_7_b-uuid.jpg").read_bytes() == Path(b.file("b-scan").path).read_bytes()
    assert report.items[0]["master_uuid"] == "a-m1" and report.items[0]["superseded"] == ["a-m0"]
    assert report.object_files == 6
    assert any("same identifier" in n and "box1_7_b-uuid" in n for n in report.notes)
    assert any("superseded" in n for n in report.notes)
    readme = (t / "metadata/submissionDocumentation/README.txt").read_text()
    assert "SERVICE COPY, a derivative of the scan" in readme and "box1_7_b-uuid" in readme
    assert (t / "metadata/submissionDocumentation/audit/box1_7.json").is_file()
    assert not list(tmp_path.glob(".t.*"))  # the staging folder was renamed, not left


def test_metadata_csv_is_archivematicas_form(items, tmp_path: Path) -> None:
    am.write_transfer(items, tmp_path / "t")
    rows = _csv(tmp_path / "t/metadata/metadata.csv")
    header, body = rows[0], rows[1:]
    assert header[0] == "filename"
    assert all(h.startswith(("dc.", "dcterms.")) for h in header[1:])
    by_file = {r[0]: {} for r in body}
    for r in body:
        for key, value in zip(header[1:], r[1:], strict=True):
            if value:
                by_file[r[0]].setdefault(key, []).append(value)
    assert set(by_file) == {f"objects/{p}" for p in _sums(tmp_path / "t")}  # every file, objects/ paths
    scan = by_file["objects/box1_7.jpg"]
    assert scan["dc.title"] == ["Wedding, 1931"] and scan["dc.identifier"] == ["box1 #7"]
    assert scan["dc.subject"] == ["wedding"] and scan["dcterms.extent"] == ["10 x 15 cm (the photograph)"]
    assert scan["dc.relation"][0] == "album 3" and "derivative of this scan" in scan["dc.relation"][1]
    service = by_file["objects/service/box1_7.tif"]
    assert service["dc.source"] == ["objects/box1_7.jpg"]
    assert "a-m1" in service["dc.description"][0] and "a derivative, not the preservation object" in \
        service["dc.description"][0] and "newest of 2 masters" in service["dc.description"][0]
    assert by_file["objects/box1_7_b-uuid.jpg"]["dc.identifier"] == ["box1_7"]  # no sheet: the catalog's


def test_premis_is_valid_and_archivematica_would_import_every_event(items, tmp_path: Path) -> None:
    am.write_transfer(items, tmp_path / "t")
    xml = (tmp_path / "t/metadata/premis.xml").read_bytes()
    assert premis.validation_errors(xml) == []
    assert am.import_problems(xml, {f"objects/{p}" for p in _sums(tmp_path / "t")}) == []
    doc = etree.fromstring(xml)
    files = {o.findtext("p:objectIdentifier/p:objectIdentifierValue", namespaces=NS): o
             for o in doc.findall("p:object[@xsi:type='premis:file']", NS)}
    assert set(files) == {"a-scan", "a-m1", "a-a1", "b-scan", "b-m0", "b-a0"}  # no superseded master, no sheet
    assert {o.findtext("p:originalName", namespaces=NS) for o in files.values()} == \
        {f"objects/{p}" for p in _sums(tmp_path / "t")}
    master = files["a-m1"]
    assert master.findtext("p:preservationLevel/p:preservationLevelValue", namespaces=NS) == "service"
    assert "derivative of the scan" in master.findtext("p:preservationLevel/p:preservationLevelRationale",
                                                       namespaces=NS)
    derivation = master.find("p:relationship[p:relationshipSubType='has source']", NS)
    assert derivation.findtext("p:relatedObjectIdentifier/p:relatedObjectIdentifierValue", namespaces=NS) == "a-scan"
    events = {e.findtext("p:eventIdentifier/p:eventIdentifierValue", namespaces=NS): e
              for e in doc.findall("p:event", NS)}
    assert "a-fix0" not in events and "a-sheet" not in events and "a-fix1" in events  # about files that go only
    tag0 = events["a-tag0"]  # the superseded master's making: kept for the scan, its links to others dropped
    assert [v.text for v in tag0.findall("p:linkingObjectIdentifier/p:linkingObjectIdentifierValue", NS)] == ["a-scan"]
    digest = events["a-dig"]  # recorded without an agent: restorium is named as its recorder
    assert digest.findtext("p:linkingAgentIdentifier/p:linkingAgentIdentifierValue", namespaces=NS) == am.RECORDER
    assert {a.findtext("p:agentIdentifier/p:agentIdentifierValue", namespaces=NS) for a in doc.findall("p:agent", NS)} \
        == {"ag-sw", "ag-host", am.RECORDER}


def test_the_import_rules_are_checked(items, tmp_path: Path) -> None:
    am.write_transfer(items[1:], tmp_path / "t")
    xml = (tmp_path / "t/metadata/premis.xml").read_bytes()
    names = {f"objects/{p}" for p in _sums(tmp_path / "t")}
    assert am.import_problems(xml, names) == []
    assert any("is no file of the transfer" in p for p in am.import_problems(xml, names - {"objects/box1_7.jpg"}))
    doc = etree.fromstring(xml)
    event = doc.find("p:event", NS)
    for link in event.findall("p:linkingAgentIdentifier", NS):
        event.remove(link)
    problems = am.import_problems(etree.tostring(doc), names)
    assert any(p.endswith(": no agent") for p in problems)
    doc = etree.fromstring(xml)
    doc.find("p:event/p:linkingObjectIdentifier/p:linkingObjectIdentifierValue", NS).text = "elsewhere"
    assert any("not a file in the document" in p for p in am.import_problems(etree.tostring(doc), names))
    doc = etree.fromstring(xml)
    fmt = doc.find(".//p:object/p:objectCharacteristics/p:format", NS)
    fmt.getparent().remove(fmt)
    assert any("format" in p for p in am.import_problems(etree.tostring(doc), names))  # the schema, first


def test_every_checksum_line_is_right(items, tmp_path: Path) -> None:
    am.write_transfer(items, tmp_path / "t")
    lines = (tmp_path / "t/metadata/checksum.sha256").read_text().splitlines()
    parsed = dict(reversed(re.fullmatch(r"([0-9a-f]{64})  (\S+)", line).groups()) for line in lines)
    assert parsed == _sums(tmp_path / "t")  # one line per file under objects/, each right
    if SHA256SUM:  # what Archivematica runs, where it runs it
        check = subprocess.run([SHA256SUM, "-c", "--strict", "../metadata/checksum.sha256"],
                               cwd=tmp_path / "t/objects", capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_bagged_transfer_validates_with_data_prefixes(items, tmp_path: Path) -> None:
    report = am.write_transfer(items, tmp_path / "b", bag=True)
    bag = bagit.Bag(str(tmp_path / "b"))
    bag.validate()
    result = subprocess.run([str(BAGIT_PY), "--validate", str(tmp_path / "b")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    data = tmp_path / "b/data"
    assert sorted(p.name for p in data.iterdir()) == ["metadata", "objects"]
    assert report.bag
    rows = _csv(data / "metadata/metadata.csv")[1:]
    assert {r[0] for r in rows} == {f"data/objects/{p}" for p in _sums(data)}
    xml = (data / "metadata/premis.xml").read_bytes()
    assert am.import_problems(xml, {f"data/objects/{p}" for p in _sums(data)}) == []
    lines = (data / "metadata/checksum.sha256").read_text().splitlines()
    assert {line.split("  ", 1)[1] for line in lines} == set(_sums(data))  # relative to objects/, as checked there
    (data / "objects/box1_7.jpg").write_bytes(b"changed")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(tmp_path / "b")).validate()


def test_a_changed_file_leaves_nothing_and_dest_must_be_new_or_empty(items, tmp_path: Path) -> None:
    Path(items[1].record.file("b-m0").path).write_bytes(b"changed after cataloguing")
    with pytest.raises(am.TransferError, match=r"master .*master0\.tif: sha256 is .* the catalog recorded"):
        am.write_transfer(items, tmp_path / "t")
    assert not (tmp_path / "t").exists() and not list(tmp_path.glob(".t.*"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full/keep.txt").write_text("mine")
    with pytest.raises(am.TransferError, match="already exists"):
        am.write_transfer(items[:1], tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    assert am.write_transfer(items[:1], tmp_path / "empty").object_files == 3


def test_an_item_without_a_master_goes_with_its_scan_alone(items, tmp_path: Path) -> None:
    record = items[1].record
    record.files = [f for f in record.files if f.role in ("original", "review")]
    record.events = [e for e in record.events if all(record_has(record, u) for u, _ in e.files)]
    report = am.write_transfer([am.TransferItem(record)], tmp_path / "t", submission_docs=[])
    assert list(_sums(tmp_path / "t")) == ["box1_7.jpg"]
    assert any("no master yet" in n for n in report.notes)


def record_has(record: ItemRecord, uuid: str) -> bool:
    return any(f.uuid == uuid for f in record.files)


def test_submission_documents_are_copied_under_plain_names(items, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "run-1.json").write_text('{"run": 1}')
    (docs / "Donor agreement (signed).txt").write_text("yes")
    am.write_transfer(items[:1], tmp_path / "t", submission_docs=[docs / "run-1.json",
                                                                  docs / "Donor agreement (signed).txt"])
    folder = tmp_path / "t/metadata/submissionDocumentation"
    assert (folder / "run-1.json").read_text() == '{"run": 1}'
    assert (folder / "Donor_agreement_signed_.txt").read_text() == "yes"
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in folder.rglob("*"))
