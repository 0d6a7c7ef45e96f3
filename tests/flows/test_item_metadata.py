"""Item metadata from a spreadsheet, end to end: a real batch with a 5-row sheet, the capture
profile judging the effective ppi from the physical size, the catalog's items, the masters' XMP,
and malformed sheets refused before anything runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms
from typer.testing import CliRunner

from catalog import Catalog
from flows.cli import app
from flows.restore_batch import restore_batch
from flows.run_plan import RunPlanError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_and_ray")]
EXIFTOOL = shutil.which("exiftool")
SOURCES = ["old_photos/old/a.png", "old_photos/old/b.png", "old_photos/old/f.png", "old_photos/old/h.png",
           "sr_gt/McMaster/2.tif"]


def _scans(folder: Path, shared_data: Path) -> Path:
    """Five 16-bit TIFF scans at 400 ppi with an sRGB profile (all FADGI 3-star asks of the file)."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for i, rel in enumerate(SOURCES):
        rgb = np.asarray(Image.open(shared_data / rel).convert("RGB"))[40:160, 40:200]  # 160 x 120
        target = folder / ("box2" if i >= 3 else "box1") / f"scan{i}.tif"
        target.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(target, rgb.astype(np.uint16) * 257, photometric="rgb", resolution=(400, 400),
                         resolutionunit="INCH", extratags=[(34675, "B", len(icc), icc, True)])
    return folder


SHEET = """file,identifier,title,date,creator,rights,width,height,unit,dc.subject
scan0.tif,ms-001,Wedding party,1931,J. Doe,CC BY 4.0,,,,weddings
scan1.tif,ms-002,Harbour at dawn,1948,A. Smith,Public domain,10,7.5,mm,harbours
box1/scan2.tif,ms-003,Family portrait,1925,Unknown,In copyright,4,3,cm,portraits
scan3.tif,ms-004,Street scene,1950,B. Jones,CC0,,,,streets
scan4.tif,ms-005,Garden,1960,C. Brown,CC BY-SA 4.0,,,,gardens
"""


@pytest.fixture(scope="module")
def described(tmp_path_factory, shared_data, shared_models) -> dict:
    root = tmp_path_factory.mktemp("metadata")
    scans = _scans(root / "scans", shared_data)
    sheet = root / "items.csv"
    sheet.write_text(SHEET)
    home = root / "archive"
    summary = restore_batch(str(scans), metadata=str(sheet), settings={
        "home": str(home), "models_dir": str(shared_models), "capture_profile": "fadgi-3star-photo"})
    return {"root": root, "home": home, "summary": summary, "sheet": sheet, "scans": scans,
            "by_name": {Path(s["path"]).name: s for s in summary["scans"]}}


def test_the_physical_size_gives_the_effective_ppi_the_profile_judges(described):
    by_name = described["by_name"]
    # 160 px over 10 mm: 406 ppi, passes 400 (-2 %); over 4 cm: 102 ppi, refused by the QA gate.
    assert by_name["scan1.tif"]["outcome"] == "mastered", by_name["scan1.tif"]
    failed = by_name["scan2.tif"]
    assert failed["outcome"] == "failed" and "effective ppi 101.6" in failed["reason"], failed
    assert all(by_name[f"scan{i}.tif"]["outcome"] == "mastered" for i in (0, 3, 4))


def test_the_sheet_is_on_the_items_in_the_catalog(described):
    result = CliRunner().invoke(app, ["items", "--json", "--home", str(described["home"])])
    assert result.exit_code == 0, result.output
    rows = {r["identifier"]: r for r in json.loads(result.output)}
    assert set(rows) == {"ms-001", "ms-002", "ms-003", "ms-004", "ms-005"}
    assert rows["ms-002"]["title"] == "Harbour at dawn" and rows["ms-002"]["masters"] == 1
    assert rows["ms-003"]["masters"] == 0 and rows["ms-003"]["scans"] == 1
    with Catalog.open(f"sqlite:///{described['home'] / 'catalog.sqlite'}") as catalog:
        (uuid, _), = catalog.items_named("ms-002")
        record = catalog.item_record(uuid)
    assert record is not None and record.metadata is not None
    assert record.metadata["physical"] == {"width": 10.0, "height": 7.5, "unit": "mm"}
    assert record.metadata["dc"] == {"dc.subject": "harbours"} and record.metadata["rights"] == "Public domain"


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed")
def test_exiftool_reads_the_items_fields_and_both_sampling_rates_from_the_master(described):
    master = described["by_name"]["scan0.tif"]["master"]
    tags = json.loads(subprocess.run([EXIFTOOL, "-j", "-XMP-dc:all", "-XMP:CapturePPI", "-XMP:MasterPPI",
                                      "-XMP:PpiInterpolated", "-IFD0:XResolution", master],
                                     capture_output=True, text=True, check=True).stdout)[0]
    assert tags["Title"] == "Wedding party" and tags["Rights"] == "CC BY 4.0"
    assert tags["Creator"] in ("J. Doe", ["J. Doe"]) and tags["Identifier"] == "ms-001"
    # Scanned at 400 ppi, mastered at twice the pixels: 800 ppi in the tags, marked as interpolated.
    width = tifffile.TiffFile(master).pages.first.shape[1]
    assert width == 2 * 160 and tags["XResolution"] == 800
    assert tags["CapturePPI"] == 400 and tags["MasterPPI"] == 800 and tags["PpiInterpolated"] is True


@pytest.mark.parametrize("sheet, says", [
    ("file,title,unit,width,height\nscan0.tif,A,furlong,1,1\n", "row 2"),
    ("file,title\nscan0.tif,A\nscan0.tif,B\n", "row 3"),
    ("file,title\nnot-here.tif,A\n", "not-here.tif"),
])
def test_a_malformed_sheet_stops_the_run_before_it_starts(described, tmp_path, shared_models, sheet, says):
    bad = tmp_path / "bad.csv"
    bad.write_text(sheet)
    home = tmp_path / "archive"
    result = CliRunner().invoke(app, ["run", str(described["scans"]), "--metadata", str(bad), "--home", str(home),
                                      "--models-dir", str(shared_models)])
    assert result.exit_code == 2, result.output
    assert says in result.output and "bad.csv" in " ".join(result.output.split())
    assert not (home / "catalog.sqlite").exists() or not Catalog.open(
        f"sqlite:///{home / 'catalog.sqlite'}").count_rows().get("runs")
    with pytest.raises(RunPlanError, match=says):
        restore_batch(str(described["scans"]), metadata=str(bad), settings={"home": str(home),
                                                                          "models_dir": str(shared_models)})


def test_the_catalogs_premis_states_both_sampling_rates_of_a_master(described):
    from lxml import etree

    from tasks.preservation import premis

    master = described["by_name"]["scan0.tif"]["master"]
    result = CliRunner().invoke(app, ["audit", master, "--format", "premis", "--home", str(described["home"])])
    assert result.exit_code == 0, result.output
    doc = etree.fromstring(result.stdout.encode())
    ns = {"p": premis.PREMIS_NS}
    rates = {}
    for obj in doc.findall("p:object", ns):
        level = obj.findtext("p:preservationLevel/p:preservationLevelValue", namespaces=ns)
        rates[level] = {p.findtext("p:significantPropertiesType", namespaces=ns):
                        p.findtext("p:significantPropertiesValue", namespaces=ns)
                        for p in obj.findall("p:significantProperties", ns)}
    service = rates["service copy (derivative of the scan)"]
    assert service["capture sampling rate (ppi)"].startswith("400")
    assert service["interpolated sampling rate (ppi)"].startswith("800")
    assert "interpolated sampling rate (ppi)" not in rates["preservation (the unaltered scan)"]
