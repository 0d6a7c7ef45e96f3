"""Embedded provenance: carry-over of the original's metadata, History, and the round trip
record -> XMP -> record (tasks.files.xmp)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyexiv2
import pytest
import tifffile
from PIL import Image, ImageCms

from tasks.files.xmp import (
    DST_ALGORITHMIC,
    DST_WITH_TRAINED_MODEL,
    NS_URI,
    ProvenanceError,
    SourceMetadata,
    action_for,
    embed,
    read_provenance,
    read_source_metadata,
)
from tasks.records.types import (
    DIGEST,
    INGESTION,
    METADATA_TAGGING,
    RESTORATION,
    UPSCALING,
    AgentInfo,
    AuditRecord,
    StepRecord,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

SCANNER_XMP = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""
 xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
 xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
 xmpMM:DocumentID="xmp.did:scanner-doc" xmpMM:InstanceID="xmp.iid:scanner-inst"
 tiff:ImageWidth="64" exif:PixelXDimension="64" crs:Exposure2012="+1.00">
 <xmpMM:History><rdf:Seq><rdf:li stEvt:action="created" stEvt:when="2001-02-03T04:05:06Z"
   stEvt:softwareAgent="EpsonScan 2"/></rdf:Seq></xmpMM:History>
 <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Grandmother, 1931</rdf:li>
   <rdf:li xml:lang="de-DE">Gro\xc3\x9fmutter</rdf:li></rdf:Alt></dc:title>
 <dc:subject><rdf:Bag><rdf:li>portrait</rdf:li><rdf:li>family</rdf:li></rdf:Bag></dc:subject>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


def make_original(path: Path, *, xmp: bytes | None = SCANNER_XMP) -> Path:
    """A small 'scan' JPEG carrying EXIF, an sRGB ICC profile and a scanner's XMP."""
    rng = np.random.default_rng(0)
    exif = Image.Exif()
    exif[0x010F] = "Epson"  # Make
    exif[0x0110] = "Perfection V850 Pro"  # Model
    exif[0x0112] = 1  # Orientation
    exif[0x0131] = "EpsonScan 2"  # Software
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x9003] = "1931:05:02 10:11:12"  # DateTimeOriginal
    exif_ifd[0xA002] = 64  # PixelXDimension: the original's, must not be carried over
    exif_ifd[0xA003] = 48
    extra = {"xmp": xmp} if xmp else {}
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
        path, "JPEG", exif=exif, icc_profile=SRGB, quality=90, **extra)
    return path


def make_record(original: Path, *, master_uuid: str = "0b5c9a7e-1d2f-4e3a-9c8b-7a6f5e4d3c2b") -> AuditRecord:
    software = AgentInfo("software", "restorium", "0.1.0")
    model = AgentInfo("model", "realesr-general-x4v3", "", "SRVGGNetCompact", "c0ffee" * 10 + "abcd")
    steps = [
        StepRecord("11111111-0000-4000-8000-000000000001", INGESTION, "ingest", "2024-05-01T10:00:00Z",
                   "success", "", [software], {"format": "JPEG"}),
        StepRecord("11111111-0000-4000-8000-000000000002", DIGEST, "digest", "2024-05-01T10:00:01Z",
                   "success", "", [software], {"algorithm": "sha256"}),
        StepRecord("11111111-0000-4000-8000-000000000003", RESTORATION, "denoise", "2024-05-02T11:00:00Z",
                   "warning", "σ capped at 15 — «très bruité»", [software],
                   {"method": "nlmeans", "sigma": 15.0, "note": "Größe ü 写真",
                    "nested": {"tiles": [1, 2, {"overlap": 16, "seams": None}], "ok": True}}),
        StepRecord("11111111-0000-4000-8000-000000000004", UPSCALING, "upscale", "2024-05-02T11:00:30Z",
                   "success", "x2", [software, model], {"model": model.name, "scale": 2.0, "tile": 256}),
        StepRecord("11111111-0000-4000-8000-000000000005", METADATA_TAGGING, "tag", "2024-05-02T11:01:00Z",
                   "success", "", [software], {"compression": "deflate"}),
    ]
    return AuditRecord(
        master={"uuid": master_uuid},
        original={"uuid": "22222222-0000-4000-8000-000000000000", "path": str(original),
                  "sha256": hashlib.sha256(original.read_bytes()).hexdigest(),
                  "item_uuid": "33333333-0000-4000-8000-000000000000", "identifier": "ACC-1931/17 «Oma»"},
        derivation_key="d" * 64,
        recipe={"name": "default", "hash": "e" * 64,
                "resolved": {"seed": 0, "upscale": {"model": model.name, "scale": 2.0, "long_edge": None},
                             "denoise": {"method": "nlmeans", "sigma": "auto"}},
                "plan_reasons": ["noise σ 18.2 > 15: denoise capped", "no blur found"]},
        run={"uuid": "44444444-0000-4000-8000-000000000000"},
        software={"name": "restorium", "version": "0.1.0"},
        models=[model],
        steps=steps,
    )


def blank_tiff(path: Path, shape: tuple[int, ...] = (32, 48, 3), dtype: type = np.uint16) -> Path:
    tifffile.imwrite(path, np.zeros(shape, dtype), photometric="rgb" if len(shape) == 3 else "minisblack",
                     metadata=None)
    return path


def expected_from_file(record: AuditRecord, path: Path) -> AuditRecord:
    return dataclasses.replace(record, master={
        "uuid": record.master["uuid"], "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})


def read_xmp(path: Path) -> dict:
    img = pyexiv2.Image(str(path))
    try:
        return img.read_xmp()
    finally:
        img.close()


# --- reading the original -----------------------------------------------------------------------


def test_read_source_metadata_reads_without_touching_the_original(tmp_path: Path) -> None:
    original = make_original(tmp_path / "scan.jpg")
    original.chmod(0o444)  # read-only: any attempt to open it for writing would fail
    before = hashlib.sha256(original.read_bytes()).hexdigest()
    mtime = original.stat().st_mtime_ns

    meta = read_source_metadata(original)

    assert hashlib.sha256(original.read_bytes()).hexdigest() == before
    assert original.stat().st_mtime_ns == mtime
    assert meta.exif["Exif.Image.Make"] == "Epson"
    assert meta.exif["Exif.Photo.DateTimeOriginal"] == "1931:05:02 10:11:12"
    assert meta.icc == SRGB
    assert meta.xmp["Xmp.xmpMM.DocumentID"] == "xmp.did:scanner-doc"
    # a Bag stays a Bag (pyexiv2 would write a plain list back as a Seq)
    assert meta.xmp["Xmp.dc.subject"] == 'type="Bag"'
    assert [meta.xmp["Xmp.dc.subject[1]"], meta.xmp["Xmp.dc.subject[2]"]] == ["portrait", "family"]
    assert meta.xmp["Xmp.dc.title"]['lang="de-DE"'] == "Großmutter"


def test_read_source_metadata_of_files_without_usable_metadata(tmp_path: Path, caplog) -> None:
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + b"\xff" * 64)
    with caplog.at_level(logging.WARNING):
        assert read_source_metadata(garbage) == SourceMetadata()
    assert "garbage.tif" in caplog.text

    png = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(png)
    assert read_source_metadata(png) == SourceMetadata()


@pytest.mark.skipif(not (DATA / "edge_cases").is_dir(), reason="shared test data not present")
def test_read_source_metadata_of_real_files() -> None:
    for path in sorted((DATA / "edge_cases").glob("*.*")):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        meta = read_source_metadata(path)  # must not raise, whatever the file holds
        assert isinstance(meta.exif, dict) and isinstance(meta.xmp, dict)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before


# --- writing and reading back -------------------------------------------------------------------


def test_round_trip_record_to_xmp_and_back(tmp_path: Path) -> None:
    original = make_original(tmp_path / "scan.jpg")
    record = make_record(original)
    master = blank_tiff(tmp_path / "master.tif")

    embed(master, record, read_source_metadata(original))
    back = read_provenance(master)

    assert back.steps == record.steps  # non-ASCII text and nested dicts included
    assert back.steps[2].parameters["nested"] == {"tiles": [1, 2, {"overlap": 16, "seams": None}], "ok": True}
    assert back.original == record.original
    assert back.recipe == record.recipe
    assert back.models == record.models
    assert back.master["path"] == str(master.resolve())
    assert back.master["sha256"] == hashlib.sha256(master.read_bytes()).hexdigest()
    assert back == expected_from_file(record, master)


def test_round_trip_keeps_fields_outside_the_named_properties(tmp_path: Path) -> None:
    original = make_original(tmp_path / "scan.jpg", xmp=None)
    record = make_record(original)
    record.original["identifier"] = None  # not a str: stored as JSON
    record.run["flow_run_id"] = "prefect-123"  # a key with no property of its own
    record.software["git_commit"] = None
    master = blank_tiff(tmp_path / "master.tif")

    embed(master, record, read_source_metadata(original))

    assert read_provenance(master) == expected_from_file(record, master)


def test_history_appends_to_the_originals_and_ignores_foreign_entries(tmp_path: Path) -> None:
    original = make_original(tmp_path / "scan.jpg")
    record = make_record(original)
    master = blank_tiff(tmp_path / "master.tif")
    embed(master, record, read_source_metadata(original))

    xmp = read_xmp(master)
    # the scanner's entry first, untouched, then ours
    assert xmp["Xmp.xmpMM.History[1]/stEvt:action"] == "created"
    assert xmp["Xmp.xmpMM.History[1]/stEvt:softwareAgent"] == "EpsonScan 2"
    ours = [xmp[f"Xmp.xmpMM.History[{n}]/stEvt:action"] for n in range(2, 2 + len(record.steps))]
    assert ours == ["managed", "managed", "filtered", "resized", "saved"]
    assert "Xmp.xmpMM.History[7]/stEvt:action" not in xmp
    step = record.steps[3]
    assert xmp["Xmp.xmpMM.History[5]/stEvt:when"] == step.when
    assert xmp["Xmp.xmpMM.History[5]/stEvt:instanceID"] == f"xmp.iid:{step.event_uuid}"
    assert xmp["Xmp.xmpMM.History[5]/stEvt:softwareAgent"] == "; ".join(a.label() for a in step.agents)
    params = json.loads(xmp["Xmp.xmpMM.History[5]/stEvt:parameters"])
    assert params == {"type": UPSCALING, "step": "upscale", "outcome": "success", "detail": "x2",
                      "agents": [a.to_dict() for a in step.agents], "parameters": step.parameters}
    # a later editor appending its own entry does not confuse the reader
    img = pyexiv2.Image(str(master))
    img.modify_xmp({"Xmp.xmpMM.History[7]/stEvt:action": "saved",
                    "Xmp.xmpMM.History[7]/stEvt:when": "2030-01-01T00:00:00Z",
                    "Xmp.xmpMM.History[7]/stEvt:parameters": "converted from image/tiff to image/jpeg"})
    img.close()
    assert read_provenance(master).steps == record.steps


def test_ids_derived_from_and_digital_source_type(tmp_path: Path) -> None:
    original = make_original(tmp_path / "scan.jpg")
    record = make_record(original)
    master = blank_tiff(tmp_path / "master.tif")
    embed(master, record, read_source_metadata(original))

    xmp = read_xmp(master)
    assert xmp["Xmp.xmpMM.DocumentID"] == f"xmp.did:{record.master['uuid']}"
    assert xmp["Xmp.xmpMM.InstanceID"].startswith("xmp.iid:")
    assert xmp["Xmp.xmpMM.OriginalDocumentID"] == "xmp.did:scanner-doc"  # the original's own id
    assert xmp["Xmp.xmpMM.DerivedFrom/stRef:documentID"] == f"xmp.did:{record.original['uuid']}"
    assert xmp["Xmp.xmpMM.DerivedFrom/stRef:instanceID"] == "xmp.iid:scanner-inst"
    assert xmp["Xmp.xmpMM.DerivedFrom/stRef:filePath"] == str(original)
    assert xmp["Xmp.restorium.originalSha256"] == record.original["sha256"]
    assert xmp["Xmp.restorium.originalPath"] == str(original)
    assert xmp["Xmp.restorium.documentRole"] == "master"
    assert json.loads(xmp["Xmp.restorium.recipe"]) == record.recipe["resolved"]
    assert xmp["Xmp.iptcExt.DigitalSourceType"] == DST_WITH_TRAINED_MODEL
    assert xmp["Xmp.xmp.CreatorTool"] == "restorium 0.1.0"
    assert xmp["Xmp.dc.format"] == "image/tiff"

    # no original XMP: the original's id is ours for it; no model: only algorithmically enhanced
    bare = make_original(tmp_path / "bare.jpg", xmp=None)
    record2 = dataclasses.replace(make_record(bare), models=[])
    master2 = blank_tiff(tmp_path / "master2.tif")
    embed(master2, record2, read_source_metadata(bare))
    xmp2 = read_xmp(master2)
    assert xmp2["Xmp.xmpMM.OriginalDocumentID"] == f"xmp.did:{record2.original['uuid']}"
    assert xmp2["Xmp.iptcExt.DigitalSourceType"] == DST_ALGORITHMIC
    assert xmp2["Xmp.xmpMM.History[1]/stEvt:action"] == "managed"


def test_originals_metadata_carried_over_without_lies(tmp_path: Path) -> None:
    original = make_original(tmp_path / "scan.jpg")
    master = blank_tiff(tmp_path / "master.tif")
    embed(master, make_record(original), read_source_metadata(original))

    img = pyexiv2.Image(str(master))
    exif, xmp = img.read_exif(), img.read_xmp()
    img.close()
    assert exif["Exif.Image.Make"] == "Epson"
    assert exif["Exif.Image.Model"] == "Perfection V850 Pro"
    assert exif["Exif.Photo.DateTimeOriginal"] == "1931:05:02 10:11:12"
    assert exif["Exif.Image.Software"] == "restorium 0.1.0"
    assert exif["Exif.Image.ImageWidth"] == "48"  # the TIFF's own structure, not the original's
    assert "Exif.Photo.PixelXDimension" not in exif
    assert xmp["Xmp.dc.title"] == {'lang="x-default"': "Grandmother, 1931", 'lang="de-DE"': "Großmutter"}
    assert xmp["Xmp.dc.subject"] == ["portrait", "family"]
    for lie in ("Xmp.tiff.ImageWidth", "Xmp.exif.PixelXDimension", "Xmp.crs.Exposure2012"):
        assert lie not in xmp


def test_remastering_a_master_reads_only_the_new_steps(tmp_path: Path) -> None:
    """An original that is itself a restorium master: its history is lineage, not our steps."""
    original = make_original(tmp_path / "scan.jpg")
    first = blank_tiff(tmp_path / "first.tif")
    embed(first, make_record(original), read_source_metadata(original))

    second_record = make_record(first, master_uuid="55555555-0000-4000-8000-000000000000")
    second_record.steps = [dataclasses.replace(s, event_uuid=s.event_uuid.replace("1111", "9999"))
                           for s in second_record.steps[:2]]
    second = blank_tiff(tmp_path / "second.tif")
    embed(second, second_record, read_source_metadata(first))

    assert read_provenance(second) == expected_from_file(second_record, second)
    actions = [v for k, v in read_xmp(second).items() if k.endswith("/stEvt:action")]
    assert len(actions) == 1 + 5 + 2  # scanner, first generation, second generation


def test_access_copy_role_and_jpeg(tmp_path: Path) -> None:
    original = make_original(tmp_path / "scan.jpg")
    record = make_record(original)
    access = tmp_path / "access.jpg"
    Image.new("RGB", (40, 30), "white").save(access, "JPEG", icc_profile=SRGB)

    embed(access, record, read_source_metadata(original), role="access",
          document_uuid="66666666-0000-4000-8000-000000000000")

    xmp = read_xmp(access)
    assert xmp["Xmp.restorium.documentRole"] == "access"
    assert xmp["Xmp.restorium.masterId"] == record.master["uuid"]
    assert xmp["Xmp.xmpMM.DocumentID"] == "xmp.did:66666666-0000-4000-8000-000000000000"
    assert xmp["Xmp.dc.format"] == "image/jpeg"
    with Image.open(access) as im:
        assert im.info["icc_profile"] == SRGB  # exiv2 left the JPEG's profile alone
    assert read_provenance(access).steps == record.steps


def test_original_xmp_too_large_for_a_jpeg_is_dropped_not_the_provenance(tmp_path: Path, caplog) -> None:
    big = SCANNER_XMP.replace(b"Grandmother, 1931", b"x" * 60_000)  # fits alone, not with ours
    original = make_original(tmp_path / "scan.jpg", xmp=big)
    access = tmp_path / "access.jpg"
    Image.new("RGB", (40, 30)).save(access, "JPEG")
    record = make_record(original)

    with caplog.at_level(logging.WARNING):
        embed(access, record, read_source_metadata(original), role="access", document_uuid="a")

    assert "cannot be carried over" in caplog.text
    assert read_provenance(access).steps == record.steps
    assert "Xmp.dc.title" not in read_xmp(access)


def test_extra_keys_are_written(tmp_path: Path) -> None:
    original = make_original(tmp_path / "scan.jpg", xmp=None)
    master = blank_tiff(tmp_path / "master.tif")
    embed(master, make_record(original), read_source_metadata(original),
          extra={"Xmp.dc.rights": {'lang="x-default"': "CC BY 4.0"}, "Exif.Image.Artist": "Studio X"})
    img = pyexiv2.Image(str(master))
    assert img.read_xmp()["Xmp.dc.rights"] == {'lang="x-default"': "CC BY 4.0"}
    assert img.read_exif()["Exif.Image.Artist"] == "Studio X"
    img.close()


def test_no_provenance_is_a_clear_error(tmp_path: Path) -> None:
    plain = blank_tiff(tmp_path / "plain.tif")
    with pytest.raises(ProvenanceError, match=r"plain\.tif.*no restorium provenance"):
        read_provenance(plain)
    missing = tmp_path / "missing.tif"
    with pytest.raises(ProvenanceError, match="missing.tif"):
        read_provenance(missing)


def test_actions_per_event_type() -> None:
    def step(kind: str) -> StepRecord:
        return StepRecord("e", kind, "s", "2024-01-01T00:00:00Z", "success", "", [], {})

    assert action_for(step(INGESTION)) == "managed"
    assert action_for(step(RESTORATION)) == "filtered"
    assert action_for(step(UPSCALING)) == "resized"
    assert action_for(step(METADATA_TAGGING)) == "saved"
    assert action_for(step("something new")) == "edited"


@pytest.mark.skipif(shutil.which("exiftool") is None,
                    reason="exiftool not installed (Debian: apt-get install libimage-exiftool-perl)")
def test_exiftool_reads_history_source_type_and_namespace(tmp_path: Path) -> None:
    original = make_original(tmp_path / "scan.jpg")
    record = make_record(original)
    master = blank_tiff(tmp_path / "master.tif")
    embed(master, record, read_source_metadata(original))

    # exiftool needs no config for an unknown namespace: it names the group after the prefix.
    out = subprocess.run(
        ["exiftool", "-json", "-struct", "-XMP-xmpMM:History", "-XMP-xmpMM:DerivedFrom",
         "-XMP-iptcExt:DigitalSourceType", "-XMP-restorium:all", str(master)],
        capture_output=True, text=True, check=True).stdout
    info = json.loads(out)[0]
    history = info["History"]
    assert [h["Action"] for h in history] == ["created", "managed", "managed", "filtered", "resized", "saved"]
    assert json.loads(history[3]["Parameters"])["parameters"] == record.steps[2].parameters
    assert info["DerivedFrom"]["DocumentID"] == f"xmp.did:{record.original['uuid']}"
    assert info["DigitalSourceType"] == DST_WITH_TRAINED_MODEL
    assert info["DerivationKey"] == record.derivation_key
    assert info["RecipeHash"] == record.recipe["hash"]
    assert NS_URI in subprocess.run(["exiftool", "-XMP", "-b", str(master)],
                                    capture_output=True, text=True, check=True).stdout


def test_a_scans_array_shape_description_is_not_carried_to_the_master(tmp_path: Path) -> None:
    """tifffile writes '{"shape": [h, w, 3]}' into ImageDescription; carried into an x2 master it
    would misdescribe it (tifffile warns "shaped series shape does not match page shape")."""
    import tifffile

    original = tmp_path / "scan.tif"
    tifffile.imwrite(original, np.zeros((16, 24, 3), np.uint8), photometric="rgb")  # default: shape JSON
    assert read_source_metadata(original).exif.get("Exif.Image.ImageDescription", "").startswith('{"shape"')
    master = blank_tiff(tmp_path / "master.tif", (32, 48, 3))
    embed(master, make_record(original), read_source_metadata(original))
    with tifffile.TiffFile(master) as tif:
        assert "shape" not in (tif.pages[0].description or "")
