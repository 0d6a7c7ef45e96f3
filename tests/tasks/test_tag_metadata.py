"""Item metadata and the sampling rate in masters and access copies (tasks.files.tag, tasks.files.xmp,
tasks.files.descriptive), read back by exiftool: the cataloguer's title, creator and rights, and a
2x master that says its 600 ppi are interpolated from a 300 ppi scan."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from tasks.files.atomic import sha256_file
from tasks.files.descriptive import SamplingRate
from tasks.files.tag import write_access, write_master
from tasks.files.xmp import read_sampling_rate, read_source_metadata
from tasks.records.item_metadata import ItemMetadata
from tasks.records.types import UPSCALING, AgentInfo, AuditRecord, StepRecord

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PHOTO = DATA / "old_photos" / "old" / "b.png"
MASTER_UUID = "5a0c3e1f-2b4d-4c6e-8f10-1a2b3c4d5e6f"
ACCESS_UUID = "6b1d4f20-3c5e-4d7f-9021-2b3c4d5e6f70"
ORIGINAL_UUID = "7c2e5031-4d6f-4e80-a132-3c4d5e6f7081"

pytestmark = pytest.mark.skipif(shutil.which("exiftool") is None,
                                reason="exiftool not installed (Debian: apt-get install libimage-exiftool-perl)")

# The scanner's own description, which the cataloguer's sheet must replace.
SCANNER_XMP = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""
 xmlns:dc="http://purl.org/dc/elements/1.1/">
 <dc:title><rdf:Alt><rdf:li xml:lang="x-default">scan 0042</rdf:li>
   <rdf:li xml:lang="de-DE">Scan 0042</rdf:li></rdf:Alt></dc:title>
 <dc:creator><rdf:Seq><rdf:li>Scanner operator</rdf:li></rdf:Seq></dc:creator>
</rdf:Description></rdf:RDF></x:xmpmeta>"""

ITEM = ItemMetadata(
    file="scan.jpg", row=2, identifier="ACC-1931/17", title="Großmutter am Fenster", date="1931-05-02",
    creator="Hans Müller", rights="© Stadtarchiv Beispielstadt, CC BY 4.0",
    dc={"dc.subject": "portrait", "dc.description": "Eine Frau am Fenster, Sommer 1931",
        "dc.format": "gelatin silver print"},
)


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A small crop of a real old photograph, saved as a 300 ppi scan with the scanner's metadata."""
    if not PHOTO.exists():
        pytest.skip(f"test image {PHOTO} is missing (see ../shared/data/DATA.md)")
    with Image.open(PHOTO) as im:
        pixels = np.asarray(im.convert("RGB"))[40:104, 60:156].copy()
    path = tmp_path_factory.mktemp("scan") / "scan.jpg"
    exif = Image.Exif()
    exif[0x013B] = "Scanner operator"  # Artist
    exif[0x8298] = "scanner copyright"  # Copyright
    Image.fromarray(pixels).save(path, "JPEG", quality=95, dpi=(300, 300), exif=exif, xmp=SCANNER_XMP)
    return path, pixels


def record(original: Path) -> AuditRecord:
    sw = AgentInfo("software", "restorium", "0.1.0")
    return AuditRecord(
        master={"uuid": MASTER_UUID},
        original={"uuid": ORIGINAL_UUID, "path": str(original), "sha256": sha256_file(original),
                  "identifier": "ACC-1931/17"},
        derivation_key="f" * 64, recipe={"name": "default", "hash": "a" * 64}, run={"uuid": "run-1"},
        software={"name": "restorium", "version": "0.1.0"}, models=[],
        steps=[StepRecord("8d3f6142-5e70-4f91-b243-4d5e6f708192", UPSCALING, "upscale", "2026-11-21T10:00:00Z",
                          "success", "x2", [sw], {"scale": 2.0})],
    )


def master(tmp_path: Path, scan: tuple[Path, np.ndarray], *, ppi: float, capture_ppi: float,
           item: ItemMetadata | None) -> Path:
    original, pixels = scan
    upscaled = cv2.resize(pixels, None, fx=ppi / capture_ppi, fy=ppi / capture_ppi, interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "master.tif"
    write_master(path, upscaled, None, icc=None, ppi=ppi, capture_ppi=capture_ppi, item=item, compression="deflate",
                 record=record(original), source=read_source_metadata(original), uuid=MASTER_UUID)
    return path


def exiftool(path: Path) -> dict[str, Any]:
    out = subprocess.run(["exiftool", "-j", "-G1", "-a", "-struct", str(path)],
                         capture_output=True, text=True, check=True).stdout
    info: dict[str, Any] = json.loads(out)[0]
    return info


def test_exiftool_reads_the_items_title_creator_rights_and_both_ppi_from_a_2x_master(tmp_path: Path, scan) -> None:
    info = exiftool(master(tmp_path, scan, ppi=600.0, capture_ppi=300.0, item=ITEM))
    # the cataloguer's sheet, in XMP Dublin Core
    assert info["XMP-dc:Title"] == "Großmutter am Fenster"
    assert info["XMP-dc:Creator"] == ["Hans Müller"]
    assert info["XMP-dc:Rights"] == "© Stadtarchiv Beispielstadt, CC BY 4.0"
    assert info["XMP-dc:Identifier"] == "ACC-1931/17"
    assert info["XMP-dc:Date"] == ["1931:05:02"]  # exiftool shows an XMP date in its own form
    assert info["XMP-dc:Subject"] == ["portrait"]
    assert info["XMP-dc:Description"] == "Eine Frau am Fenster, Sommer 1931"
    assert info["XMP-dc:Format"] == "image/tiff"  # the file's MIME type, not the print's format
    assert info["XMP-iptcExt:ArtworkOrObject"] == [{
        "AOSourceInvNo": "ACC-1931/17", "AOTitle": "Großmutter am Fenster", "AOCreator": ["Hans Müller"],
        "AOCopyrightNotice": "© Stadtarchiv Beispielstadt, CC BY 4.0"}]
    # ... in IPTC IIM and EXIF
    assert info["IPTC:ObjectName"] == "Großmutter am Fenster"
    assert info["IPTC:By-line"] == "Hans Müller"
    assert info["IPTC:CopyrightNotice"] == "© Stadtarchiv Beispielstadt, CC BY 4.0"
    assert info["IPTC:Caption-Abstract"] == "Eine Frau am Fenster, Sommer 1931"
    assert info["IFD0:Artist"] == "Hans Müller"
    assert info["IFD0:Copyright"] == "© Stadtarchiv Beispielstadt, CC BY 4.0"
    # the sheet wins over the scanner's own description, in every language and standard
    dump = json.dumps(info, ensure_ascii=False)
    assert "scan 0042" not in dump and "Scan 0042" not in dump
    assert "Scanner operator" not in dump and "scanner copyright" not in dump
    # both sampling rates: the tag says 600 (page size stays the print's), marked interpolated from 300
    assert (info["IFD0:XResolution"], info["IFD0:YResolution"], info["IFD0:ResolutionUnit"]) == (600, 600, "inches")
    assert info["XMP-restorium:CapturePPI"] == 300
    assert info["XMP-restorium:MasterPPI"] == 600
    assert info["XMP-restorium:PpiInterpolated"] is True
    # and still a derivative of the preserved scan
    assert info["XMP-xmpMM:DerivedFrom"]["DocumentID"] == f"xmp.did:{ORIGINAL_UUID}"


def test_the_sampling_rate_reads_back_from_the_xmp(tmp_path: Path, scan) -> None:
    path = master(tmp_path, scan, ppi=600.0, capture_ppi=300.0, item=None)
    assert read_sampling_rate(path) == SamplingRate(capture_ppi=300.0, master_ppi=600.0, interpolated=True)


def test_a_same_size_master_without_a_sheet_claims_no_interpolation(tmp_path: Path, scan) -> None:
    info = exiftool(master(tmp_path, scan, ppi=300.0, capture_ppi=300.0, item=None))
    assert info["IFD0:XResolution"] == 300
    assert info["XMP-restorium:CapturePPI"] == 300 and info["XMP-restorium:MasterPPI"] == 300
    assert not [k for k in info if "Interpolated" in k]
    # no sheet: the scan's own description is carried over as before
    assert info["XMP-dc:Title"] == "scan 0042" and info["IFD0:Artist"] == "Scanner operator"
    assert "XMP-dc:Identifier" not in info and "IPTC:ObjectName" not in info


def test_the_access_copy_carries_the_same_item_fields(tmp_path: Path, scan) -> None:
    original, pixels = scan
    path = tmp_path / "access.jpg"
    written = write_access(path, pixels, None, icc=None, quality=90, long_edge=64, capture_ppi=300.0, item=ITEM,
                           record=record(original), source=read_source_metadata(original), uuid=ACCESS_UUID)
    assert written.width == 64
    info = exiftool(path)
    for key in ("XMP-dc:Title", "XMP-dc:Rights", "XMP-dc:Identifier", "IPTC:ObjectName", "IPTC:By-line",
                "IPTC:CopyrightNotice", "IFD0:Artist"):
        assert info[key] in (ITEM.title, ITEM.creator, ITEM.rights, ITEM.identifier), key
    assert info["XMP-dc:Creator"] == ["Hans Müller"]
    assert info["XMP-dc:Format"] == "image/jpeg"
    # the scan's sampling rate is recorded; the access copy claims no ppi of its own
    assert info["XMP-restorium:CapturePPI"] == 300
    assert "XMP-restorium:MasterPPI" not in info and not [k for k in info if "Interpolated" in k]
    assert "IFD0:XResolution" not in info


def test_iim_fields_are_cut_to_their_limits_while_xmp_keeps_the_whole_value(tmp_path: Path, scan) -> None:
    title = "Großmutter, Tante Käthe und die Kinder vor dem Haus in der Mühlenstraße, Sommer 1931"
    item = ItemMetadata(file="scan.jpg", row=3, identifier="ACC-2", title=title, creator="Ä" * 40)
    info = exiftool(master(tmp_path, scan, ppi=300.0, capture_ppi=300.0, item=item))
    assert info["XMP-dc:Title"] == title and info["XMP-dc:Creator"] == ["Ä" * 40]
    name = info["IPTC:ObjectName"]
    assert title.startswith(name) and len(name.encode()) <= 64 < len(title.encode())
    assert info["IPTC:By-line"] == "Ä" * 16  # 32 bytes, no half character


def test_a_capture_ppi_must_be_positive(tmp_path: Path, scan) -> None:
    original, pixels = scan
    with pytest.raises(ValueError, match="capture_ppi"):
        write_master(tmp_path / "m.tif", pixels, None, icc=None, ppi=600.0, capture_ppi=0.0, compression="none",
                     record=record(original), source=read_source_metadata(original), uuid=MASTER_UUID)
    assert not (tmp_path / "m.tif").exists()
