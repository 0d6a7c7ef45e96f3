"""`restorium export archivematica` end to end: real runs (Prefect test harness, local Ray, real weights,
real images) master two scans, one of them twice; the export is then checked the way Archivematica
reads it: layout, metadata.csv, premis.xml (PREMIS 3 schema and the import rules), checksum.sha256,
and the bagged variant with bagit.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import bagit
import pytest
from lxml import etree
from PIL import Image
from typer.testing import CliRunner

from flows.cli import app
from flows.restore_batch import restore_batch
from tasks.preservation import archivematica as am
from tasks.preservation import premis

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_and_ray")]
NS = {"p": premis.PREMIS_NS, "xsi": premis.XSI_NS}


def _sha(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def archive(tmp_path_factory, shared_data: Path, shared_models: Path) -> dict:
    """Two small crops of real photographs mastered by one run; the wedding mastered again by a
    second run with another recipe, so its first master is superseded."""
    root = tmp_path_factory.mktemp("archivematica")
    scans = root / "scans"
    scans.mkdir()
    Image.open(shared_data / "old_photos/old/h.png").convert("RGB").crop((100, 100, 196, 172)).save(
        scans / "wedding.jpg", quality=95)
    Image.open(shared_data / "old_photos/old_w_scratch/c.png").convert("RGB").crop((0, 0, 80, 64)).save(
        scans / "harbour.png")
    sheet = root / "items.csv"
    sheet.write_text(SHEET)
    settings = {"home": str(root / "archive"), "models_dir": str(shared_models)}
    first = restore_batch(str(scans), metadata=str(sheet), settings=settings)
    assert first["counts"]["mastered"] == 2, first
    again = root / "again"
    again.mkdir()
    shutil.copy2(scans / "wedding.jpg", again / "wedding.jpg")
    second = restore_batch(str(again), recipe="portrait", settings=settings)
    assert second["counts"]["mastered"] == 1, second
    by_name = {Path(s["path"]).name: s for s in first["scans"]}
    return {"root": root, "home": root / "archive", "scans": scans, "first": first, "second": second,
            "wedding": by_name["wedding.jpg"], "harbour": by_name["harbour.png"], "newest": second["scans"][0]}


SHEET = """file,identifier,title,date,creator,rights,width,height,unit,dc.subject
wedding.jpg,ph-1931.07,Wedding party,1931,J. Doe,CC BY 4.0,9,6,cm,weddings
harbour.png,ph-1948.02,Harbour at dawn,1948,A. Smith,Public domain,,,,harbours
"""


def _cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _objects(root: Path) -> dict[str, str]:
    objects = root / "objects"
    return {p.relative_to(objects).as_posix(): _sha(p) for p in sorted(objects.rglob("*")) if p.is_file()}


def _rows(path: Path) -> tuple[list[str], dict[str, dict[str, list[str]]]]:
    header, *body = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    rows: dict[str, dict[str, list[str]]] = {}
    for row in body:
        cells = rows.setdefault(row[0], {})
        for key, value in zip(header[1:], row[1:], strict=True):
            if value:
                cells.setdefault(key, []).append(value)
    return header, rows


def _check_transfer(root: Path, prefix: str) -> dict[str, str]:
    """What Archivematica checks of a transfer rooted at `root` (its data/ in a bag)."""
    sums = _objects(root)
    lines = (root / "metadata/checksum.sha256").read_text().splitlines()
    assert sorted(lines) == sorted(f"{sha}  {path}" for path, sha in sums.items())  # each line right, one per file
    if shutil.which("sha256sum"):  # what Archivematica runs, in objects/
        check = subprocess.run(["sha256sum", "-c", "--strict", "../metadata/checksum.sha256"], cwd=root / "objects",
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    header, rows = _rows(root / "metadata/metadata.csv")
    assert header[0] == "filename" and all(h.startswith(("dc.", "dcterms.")) for h in header[1:])
    assert set(rows) == {f"{prefix}objects/{p}" for p in sums}
    xml = (root / "metadata/premis.xml").read_bytes()
    doc = etree.fromstring(xml)
    schema = etree.XMLSchema(etree.parse(str(premis.SCHEMA_FILE)))  # the shipped PREMIS 3 schema
    assert schema.validate(doc), schema.error_log
    assert am.import_problems(xml, {f"{prefix}objects/{p}" for p in sums}) == []
    names = {o.findtext("p:originalName", namespaces=NS) for o in doc.findall("p:object[@xsi:type='premis:file']", NS)}
    assert names == {f"{prefix}objects/{p}" for p in sums}
    return sums


def test_items_export_to_an_archivematica_standard_transfer(archive, tmp_path: Path) -> None:
    dest = tmp_path / "transfer"
    result = _cli("export", "archivematica", "ph-1931.07", archive["harbour"]["master"], str(dest),
                  "--home", str(archive["home"]))
    assert result.exit_code == 0, result.output
    assert "superseded" in result.output
    assert sorted(p.name for p in dest.iterdir()) == ["logs", "metadata", "objects"]
    sums = _check_transfer(dest, "")
    # named by the sheet's identifiers, cleaned up for Archivematica (no dot: it pairs copies by "name.")
    assert sorted(sums) == ["access/ph-1931_07.jpg", "access/ph-1948_02.jpg", "ph-1931_07.jpg", "ph-1948_02.png",
                            "service/ph-1931_07.tif", "service/ph-1948_02.tif"]
    # the scans byte for byte as the user gave them; the wedding's newest master (the second run's)
    assert sums["ph-1931_07.jpg"] == _sha(archive["scans"] / "wedding.jpg")
    assert sums["ph-1948_02.png"] == _sha(archive["scans"] / "harbour.png")
    assert sums["service/ph-1931_07.tif"] == _sha(archive["newest"]["master"]) != _sha(archive["wedding"]["master"])
    assert sums["access/ph-1931_07.jpg"] == _sha(archive["newest"]["access"])
    assert sums["service/ph-1948_02.tif"] == _sha(archive["harbour"]["master"])

    _, rows = _rows(dest / "metadata/metadata.csv")
    scan = rows["objects/ph-1931_07.jpg"]  # the spreadsheet's Dublin Core
    assert scan["dc.identifier"] == ["ph-1931.07"] and scan["dc.title"] == ["Wedding party"]
    assert scan["dc.date"] == ["1931"] and scan["dc.creator"] == ["J. Doe"] and scan["dc.rights"] == ["CC BY 4.0"]
    assert scan["dc.subject"] == ["weddings"] and scan["dcterms.extent"] == ["9 x 6 cm (the photograph)"]
    assert any("derivative of this scan" in v for v in scan["dc.relation"])
    service = rows["objects/service/ph-1931_07.tif"]
    assert service["dc.source"] == ["objects/ph-1931_07.jpg"]
    assert "portrait" in service["dc.description"][0] and "newest of 2 masters" in service["dc.description"][0]
    doc = etree.fromstring((dest / "metadata/premis.xml").read_bytes())
    levels = {o.findtext("p:originalName", namespaces=NS):
              o.findtext("p:preservationLevel/p:preservationLevelValue", namespaces=NS)
              for o in doc.findall("p:object[@xsi:type='premis:file']", NS)}
    assert levels["objects/service/ph-1931_07.tif"] == "service" and levels["objects/ph-1931_07.jpg"] == "original"

    docs = dest / "metadata/submissionDocumentation"
    runs = {archive["first"]["run_uuid"], archive["second"]["run_uuid"]}  # the runs that made what goes
    assert {p.name for p in docs.glob("run-*")} == {f"run-{r}.{ext}" for r in runs for ext in ("json", "html")}
    audit = json.loads((docs / "audit/ph-1931_07.json").read_text())
    assert {a["master"]["sha256"] for a in audit.values()} == {sums["service/ph-1931_07.tif"],
                                                               sums["access/ph-1931_07.jpg"]}
    assert "SERVICE COPY, a derivative of the scan" in (docs / "README.txt").read_text()
    manifest = json.loads((docs / "restorium-transfer.json").read_text())
    wedding = next(i for i in manifest["items"] if i["identifier"] == "ph-1931.07")
    assert len(wedding["superseded"]) == 1 and wedding["master_uuid"] not in wedding["superseded"]


def test_a_run_exports_as_a_bag_that_bagit_validates(archive, tmp_path: Path) -> None:
    dest = tmp_path / "bag"
    result = _cli("export", "archivematica", "--run", archive["first"]["run_uuid"], str(dest), "--bag", "--json",
                  "--home", str(archive["home"]))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["bag"] and sorted(i["identifier"] for i in report["items"]) == ["ph-1931.07", "ph-1948.02"]
    bagit.Bag(str(dest)).validate()
    check = subprocess.run([sys.executable, "-m", "bagit", "--validate", str(dest)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert sorted(p.name for p in (dest / "data").iterdir()) == ["metadata", "objects"]
    sums = _check_transfer(dest / "data", "data/")
    assert sums["ph-1931_07.jpg"] == _sha(archive["scans"] / "wedding.jpg")
    _, rows = _rows(dest / "data/metadata/metadata.csv")
    assert rows["data/objects/ph-1948_02.png"]["dc.title"] == ["Harbour at dawn"]


def test_refusals_write_nothing(archive, tmp_path: Path) -> None:
    home = str(archive["home"])
    assert _cli("export", "archivematica", "no-such-item", str(tmp_path / "a"), "--home", home).exit_code == 2
    assert _cli("export", "archivematica", "--run", "00000000-0000-4000-8000-000000000000", str(tmp_path / "a"),
                "--home", home).exit_code == 2
    assert not (tmp_path / "a").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full/keep.txt").write_text("mine")
    result = _cli("export", "archivematica", "ph-1931.07", str(tmp_path / "full"), "--home", home)
    assert result.exit_code == 2 and [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".*.partial"))
