"""Audit and preservation end to end: real runs (Prefect test harness, local Ray, real weights,
real images), then audit per preset, exiftool, PREMIS, decisions, fixity, reproduce, bags, find.

The scans are small crops of the real photographs so a CPU run takes seconds; they still go
through every stage and every real component.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import bagit
import numpy as np
import pyexiv2
import pytest
import tifffile
from lxml import etree
from PIL import Image, ImageCms
from typer.testing import CliRunner

from catalog import Catalog
from config.recipe import list_presets
from config.settings import Settings
from flows.cli import app
from flows.fixity import fixity_check
from flows.reproduce import ReproduceRefused, reproduce
from flows.restore_batch import restore_batch
from tasks.files.digest import file_pixel_digest
from tasks.files.xmp import read_provenance
from tasks.preservation import premis

pytestmark = pytest.mark.slow

PRESETS = ["archival", "archival-faithful", "portrait", "document", "landscape"]
EXIFTOOL = shutil.which("exiftool")
BAGIT_PY = Path(sys.executable).with_name("bagit.py")
P = {"p": premis.PREMIS_NS, "xsi": premis.XSI_NS}


@pytest.fixture(scope="module", autouse=True)
def prefect_and_ray():
    from prefect.testing.utilities import prefect_test_harness

    from flows.workers import shutdown

    with prefect_test_harness(server_startup_timeout=120):  # 30 s is overrun on a busy 2-core machine
        yield
    shutdown()


def _sha(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _scans(folder: Path, shared_data: Path) -> Path:
    """A JPEG with EXIF, IPTC and an ICC profile, and a 16-bit TIFF with alpha."""
    folder.mkdir(parents=True)
    photo = Image.open(shared_data / "old_photos/old/h.png").convert("RGB").crop((100, 100, 196, 172))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Epson", "Perfection V850 Pro"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo.save(folder / "wedding.jpg", quality=95, icc_profile=icc, exif=exif.tobytes())
    img = pyexiv2.Image(str(folder / "wedding.jpg"))
    img.modify_iptc({"Iptc.Application2.Keywords": ["wedding", "1931"], "Iptc.Application2.Byline": "J. Doe"})
    img.modify_exif({"Exif.Photo.DateTimeOriginal": "1931:05:02 10:11:12"})
    img.close()
    rgb = np.asarray(Image.open(shared_data / "old_photos/old/f.png").convert("RGB"))[200:248, 200:264]
    alpha = np.full(rgb.shape[:2], 65535, np.uint16)
    alpha[:, :8] = 20000
    tifffile.imwrite(folder / "print16.tif", np.dstack([rgb.astype(np.uint16) * 257, alpha]),
                     photometric="rgb", extrasamples=[2])
    return folder


def _settings(home: Path, models: Path, **extra) -> dict:
    return {"home": str(home), "models_dir": str(models), **extra}


@pytest.fixture(scope="module")
def archive(tmp_path_factory, shared_data, shared_models) -> dict:
    """One real batch shared by the read-only tests below (SQLite catalog)."""
    root = tmp_path_factory.mktemp("preservation")
    scans = _scans(root / "scans", shared_data)
    summary = restore_batch(str(scans), settings=_settings(root / "archive", shared_models))
    assert summary["counts"]["mastered"] == 2, summary
    by_name = {Path(s["path"]).name: s for s in summary["scans"]}
    return {"root": root, "home": root / "archive", "url": f"sqlite:///{root / 'archive/catalog.sqlite'}",
            "scans": scans, "summary": summary, "master": Path(by_name["wedding.jpg"]["master"]),
            "master16": Path(by_name["print16.tif"]["master"]), "access": Path(by_name["wedding.jpg"]["access"])}


def _cli(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result


# --- 2. audit: catalog == file, for every preset ---------------------------------------------------

def test_every_preset_is_covered() -> None:
    assert sorted(PRESETS) == sorted(list_presets())


@pytest.mark.parametrize("preset", PRESETS)
def test_audit_from_catalog_equals_audit_from_file_for_every_preset(preset, tmp_path, shared_data, shared_models):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.open(shared_data / "old_photos/old_w_scratch/c.png").convert("RGB").crop((0, 0, 80, 64)).save(
        scans / "photo.png")
    summary = restore_batch(str(scans), recipe=preset, settings=_settings(tmp_path / "archive", shared_models))
    assert summary["counts"]["mastered"] == 1, summary
    entry = summary["scans"][0]
    with Catalog.open(f"sqlite:///{tmp_path / 'archive/catalog.sqlite'}") as catalog:
        for path in (Path(entry["master"]), Path(entry["access"])):
            from_catalog = catalog.audit(master_path=str(path), sha256=_sha(path))
            from_file = read_provenance(path)
            assert from_catalog is not None
            for field in ("master", "original", "derivation_key", "recipe", "run", "software", "models", "steps"):
                assert getattr(from_catalog, field) == getattr(from_file, field), field
            assert from_catalog.to_dict() == from_file.to_dict()
    record = read_provenance(entry["master"])
    assert record.recipe["name"] == preset
    assert record.master["pixel_sha256"] == file_pixel_digest(entry["master"])
    software = [a for s in record.steps for a in s.agents if a.kind == "software"][-1]
    host = [a for s in record.steps for a in s.agents if a.kind == "host"][-1]
    assert software.details.get("git_commit") and host.details.get("cpu") and host.details.get("device")
    assert all(m.details.get("licence") for m in record.models)


# --- 6. embedded metadata, read by exiftool ----------------------------------------------------------

def test_exiftool_reads_the_provenance_and_the_originals_metadata(archive) -> None:
    if EXIFTOOL is None:
        pytest.skip("exiftool is not installed (Debian: apt-get install libimage-exiftool-perl)")
    out = subprocess.run([EXIFTOOL, "-j", "-G1", "-struct", str(archive["master"])], capture_output=True,
                         text=True, check=True)
    tags = json.loads(out.stdout)[0]
    record = read_provenance(archive["master"])
    derived = tags["XMP-xmpMM:DerivedFrom"]
    assert derived["DocumentID"] == f"xmp.did:{record.original['uuid']}"
    assert derived["FilePath"] == str(archive["scans"] / "wedding.jpg")
    history = tags["XMP-xmpMM:History"]
    assert len(history) == len(record.steps)
    assert {h["Action"] for h in history} >= {"managed", "resized", "saved"}
    upscale = next(json.loads(h["Parameters"]) for h in history if h["Action"] == "resized")
    assert upscale["parameters"]["recipe_hash"] == record.recipe["hash"]
    assert all(h["When"] and h["InstanceID"].startswith("xmp.iid:") for h in history)
    assert tags["XMP-iptcExt:DigitalSourceType"].endswith("/compositeWithTrainedAlgorithmicMedia")
    assert tags["XMP-restorium:RecipeHash"] == record.recipe["hash"]
    assert tags["XMP-restorium:DerivationKey"] == record.derivation_key
    assert tags["XMP-restorium:PixelSha256"] == record.master["pixel_sha256"]
    # the original's EXIF, IPTC and ICC profile survive in the master
    assert tags["IFD0:Make"] == "Epson" and tags["IFD0:Model"] == "Perfection V850 Pro"
    assert tags["ExifIFD:DateTimeOriginal"] == "1931:05:02 10:11:12"
    assert [str(k) for k in tags["IPTC:Keywords"]] == ["wedding", "1931"] and tags["IPTC:By-line"] == "J. Doe"
    assert tags["ICC_Profile:ProfileDescription"] == "sRGB built-in"


# --- 2. PREMIS for an item ------------------------------------------------------------------------------

def test_premis_export_validates_and_links_the_master_to_its_original(archive) -> None:
    result = _cli("audit", str(archive["master"]), "--home", str(archive["home"]), "--format", "premis")
    assert result.exit_code == 0, result.output
    xml = result.stdout.encode()
    assert premis.validation_errors(xml) == []
    doc = etree.fromstring(xml)
    files = {o.findtext("p:objectIdentifier/p:objectIdentifierValue", namespaces=P): o
             for o in doc.findall("p:object[@xsi:type='premis:file']", P)}
    record = read_provenance(archive["master"])
    master, original = files[record.master["uuid"]], files[record.original["uuid"]]
    assert master.findtext("p:objectCharacteristics/p:fixity/p:messageDigest", namespaces=P) == _sha(archive["master"])
    assert original.findtext("p:objectCharacteristics/p:fixity/p:messageDigest", namespaces=P) == \
        record.original["sha256"]
    levels = {o.findtext("p:preservationLevel/p:preservationLevelValue", namespaces=P) for o in files.values()}
    # The scan is the preservation object; restorium's master is a derivative ("service" copy) of it.
    assert levels == {"preservation (the unaltered scan)", "service copy (derivative of the scan)", "access copy",
                      "review sheet"}
    rel = next(r for r in master.findall("p:relationship", P)
               if r.findtext("p:relationshipType", namespaces=P) == "derivation")
    assert rel.findtext("p:relatedObjectIdentifier/p:relatedObjectIdentifierValue", namespaces=P) == \
        record.original["uuid"]
    made_by = [e.text for e in rel.findall("p:relatedEventIdentifier/p:relatedEventIdentifierValue", P)]
    assert made_by == [s.event_uuid for s in record.steps if s.type not in ("ingestion", "message digest calculation")]
    events = {e.findtext("p:eventIdentifier/p:eventIdentifierValue", namespaces=P) for e in doc.findall("p:event", P)}
    assert set(made_by) <= events
    agents = doc.findall("p:agent", P)
    assert {a.findtext("p:agentType", namespaces=P) for a in agents} >= {"software", "hardware"}

    as_json = _cli("audit", str(archive["master"]), "--home", str(archive["home"]), "--format", "json")
    data = json.loads(as_json.stdout)
    assert {f["uuid"] for f in data["files"]} == set(files)
    assert next(f for f in data["files"] if f["role"] == "master")["derivation_events"] == made_by


# --- 1. decisions: people as agents, append-only ------------------------------------------------------

def test_approval_and_rejection_are_appended_events_with_a_person(archive) -> None:
    home = str(archive["home"])
    before = read_provenance(archive["master"])
    with Catalog.open(archive["url"]) as catalog:
        audit_before = catalog.audit(sha256=_sha(archive["master"]))
    assert _cli("approve", str(archive["master"]), "--by", "Ada Curator", "--home", home).exit_code == 0
    refused = _cli("reject", str(archive["master"]), "--by", "Bob", "--comment", "  ", "--home", home)
    assert refused.exit_code == 2 and "needs a comment" in refused.stderr
    assert _cli("reject", str(archive["master"]), "--by", "Bob Auditor", "--comment", "skin too smooth",
                "--home", home).exit_code == 0
    assert _cli("approve", str(archive["access"]), "--by", "Ada", "--home", home).exit_code == 2  # masters only
    with Catalog.open(archive["url"]) as catalog:
        later = catalog.later_events(before.master["uuid"])
        assert [(e.type, e.agents[0].kind, e.agents[0].name) for e in later if e.type in ("approval", "rejection")] \
            == [("approval", "person", "Ada Curator"), ("rejection", "person", "Bob Auditor")]
        assert catalog.audit(sha256=_sha(archive["master"])) == audit_before  # how it was made: unchanged
    assert read_provenance(archive["master"]) == before  # the master's bytes are never touched
    text = _cli("audit", str(archive["master"]), "--home", home)
    assert "approval by Ada Curator" in text.stdout and "skin too smooth" in text.stdout


# --- 3. reproduce -------------------------------------------------------------------------------------

def test_reproduced_masters_match_their_recorded_pixels(archive, shared_models) -> None:
    # The settings ask for fp32; reproduce runs the precision the master records (bf16 where the
    # CPU has it: RESTORIUM_PRECISION's default 'auto'), or its pixels could not match.
    cfg = Settings(home=archive["home"], models_dir=shared_models, precision="fp32")
    for master in (archive["master"], archive["master16"]):
        recorded = {s.step: s.parameters for s in read_provenance(master).steps}["upscale"]["precision"]
        report = reproduce(master, cfg)
        assert report["precision"] == recorded, report
        assert report["identical"], report
        assert report["reproduced_pixel_sha256"] == read_provenance(master).master["pixel_sha256"]
        assert report["archived_matches_record"] and report["plan_matches"] and report["same_device_class"]
        assert report["comparison"]["max_abs_diff"] == 0
    with Catalog.open(archive["url"]) as catalog:
        events = [e for e in catalog.later_events(read_provenance(archive["master16"]).master["uuid"])
                  if e.type == "reproduction"]
    assert events and events[-1].outcome == "success" and events[-1].parameters["identical"] is True
    assert not list(archive["home"].rglob("*reproduce*"))  # nothing written into the archive


def test_reproduce_refuses_changed_weights_or_original(archive, shared_models, tmp_path) -> None:
    changed = tmp_path / "models"
    changed.mkdir()
    for f in shared_models.glob("*.pth"):
        (changed / f.name).symlink_to(f)
    (changed / "realesr-general-x4v3.pth").unlink()
    data = bytearray((shared_models / "realesr-general-x4v3.pth").read_bytes())
    data[-1] ^= 1
    (changed / "realesr-general-x4v3.pth").write_bytes(bytes(data))
    with pytest.raises(ReproduceRefused, match="realesr-general-x4v3: the master was made with weights sha256"):
        reproduce(archive["master"], Settings(home=archive["home"], models_dir=changed))
    other = tmp_path / "wedding.jpg"
    other.write_bytes((archive["scans"] / "wedding.jpg").read_bytes() + b"\0")
    with pytest.raises(ReproduceRefused, match="the original changed"):
        reproduce(archive["master"], Settings(home=archive["home"], models_dir=shared_models), original=other)
    result = _cli("reproduce", str(archive["master"]), "--home", str(archive["home"]), "--models-dir", str(changed))
    assert result.exit_code == 2 and "now resolves to" in result.stderr


# --- 5. bags --------------------------------------------------------------------------------------------

def test_a_bag_of_the_batch_validates(archive, tmp_path) -> None:
    dest = tmp_path / "bag"
    result = _cli("export", "bag", "wedding", str(archive["master16"]), str(dest), "--home", str(archive["home"]))
    assert result.exit_code == 0, result.output
    bag = bagit.Bag(str(dest))
    bag.validate()
    assert {"sha256", "sha512"} == set(bag.algorithms)
    payload = sorted(p for p in bag.payload_files())
    for role in ("original", "master", "access", "review"):
        assert sum(f"/{role}/" in p for p in payload) == 2, payload
    assert sum(p.endswith("premis.xml") for p in payload) == 2 and sum(p.endswith("provenance.json") for p in payload) == 2
    for xml in dest.glob("data/*/metadata/premis.xml"):
        assert premis.validation_errors(xml.read_bytes()) == []
    provenance = json.loads(next(dest.glob("data/wedding_*/metadata/provenance.json")).read_text())
    assert list(provenance["audits"].values())[0]["master"]["sha256"] == _sha(archive["master"])
    check = subprocess.run([str(BAGIT_PY), "--validate", str(dest)], capture_output=True, text=True)
    assert check.returncode == 0 and "is valid" in check.stderr
    assert _cli("export", "bag", "no-such-item", str(tmp_path / "bag2"), "--home", str(archive["home"])).exit_code == 2


# --- 7. find -----------------------------------------------------------------------------------------

def test_find_lists_masters_by_model_recipe_and_date(archive) -> None:
    home = str(archive["home"])
    record = read_provenance(archive["master"])
    found = json.loads(_cli("find", "--model", "realesr-general-x4v3", "--recipe-hash", record.recipe["hash"],
                            "--since", "2000-01-01", "--json", "--home", home).stdout)
    assert {r["path"] for r in found} == {str(archive["master"]), str(archive["master16"])}
    weights = record.models[-1].weights_sha256
    assert len(json.loads(_cli("find", "--weights", weights[:12], "--json", "--home", home).stdout)) == 2
    assert json.loads(_cli("find", "--model", "RealESRGAN_x4plus", "--json", "--home", home).stdout) == []
    assert json.loads(_cli("find", "--since", "2999-01-01", "--json", "--home", home).stdout) == []
    assert _cli("find", "--home", home).exit_code == 2


# --- 4. fixity --------------------------------------------------------------------------------------------

def test_fixity_finds_flipped_bits_and_missing_files(tmp_path, shared_data, shared_models) -> None:
    scans = _scans(tmp_path / "scans", shared_data)
    settings = _settings(tmp_path / "archive", shared_models)
    summary = restore_batch(str(scans), settings=settings)
    by_name = {Path(s["path"]).name: s for s in summary["scans"]}

    clean = fixity_check(settings=settings)
    assert clean["failed"] == 0 and clean["checked"] == clean["files"] == 2 * 4  # original, master, access, review
    recent = fixity_check(older_than="1d", settings=settings)
    assert recent["checked"] == 0 and recent["skipped"] == 8

    original, master = scans / "print16.tif", Path(by_name["wedding.jpg"]["master"])
    for path in (original, master):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x10  # one flipped bit
        path.write_bytes(bytes(data))
    Path(by_name["print16.tif"]["access"]).unlink()

    result = _cli("fixity", "--json", "--home", str(tmp_path / "archive"))
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["checked"], report["ok"], report["mismatch"], report["missing"]) == (8, 5, 2, 1)
    problems = {(p["role"], p["status"], Path(p["path"]).name): p for p in report["problems"]}
    assert set(problems) == {("original", "mismatch", "print16.tif"), ("master", "mismatch", master.name),
                             ("access", "missing", Path(by_name["print16.tif"]["access"]).name)}
    changed = problems[("master", "mismatch", master.name)]
    assert changed["expected"] == _catalogued_sha(tmp_path, master) and changed["actual"] == _sha(master)
    # one event per file and per check, append-only; failures are checked again, recent successes not
    again = fixity_check(older_than="1d", settings=settings)
    assert (again["checked"], again["failed"], again["skipped"]) == (3, 3, 5)
    with Catalog.open(f"sqlite:///{tmp_path / 'archive/catalog.sqlite'}") as catalog:
        ref = catalog.file_ref(path=str(master))
        checks = [e for e in catalog.later_events(ref.uuid) if e.type == "fixity check"]
        assert [e.outcome for e in checks] == ["success", "failure", "failure"]
        assert checks[1].parameters["expected"] == ref.sha256 and checks[1].parameters["actual"] == _sha(master)
        assert checks[1].agents[0].kind == "software" and checks[1].agents[1].kind == "host"


def _catalogued_sha(tmp_path: Path, master: Path) -> str:
    with Catalog.open(f"sqlite:///{tmp_path / 'archive/catalog.sqlite'}") as catalog:
        return catalog.file_ref(path=str(master)).sha256


# --- PostgreSQL ---------------------------------------------------------------------------------------------

@pytest.mark.postgres
def test_preservation_on_postgresql(tmp_path, shared_data, shared_models, postgres_url) -> None:
    scans = _scans(tmp_path / "scans", shared_data)
    settings = _settings(tmp_path / "archive", shared_models, catalog_url=postgres_url)
    summary = restore_batch(str(scans), settings=settings)
    assert summary["counts"]["mastered"] == 2
    master = Path(next(s["master"] for s in summary["scans"] if s["path"].endswith("wedding.jpg")))
    with Catalog.open(postgres_url) as catalog:
        record = catalog.audit(sha256=_sha(master))
        assert record.to_dict() == read_provenance(master).to_dict()
        item = catalog.item_record(record.original["item_uuid"])
        assert premis.validation_errors(premis.to_xml(item)) == []
        found = catalog.search_masters(model="realesr-general-x4v3", recipe_hash=record.recipe["hash"])
        assert str(master) in {r["path"] for r in found}
    report = fixity_check(settings=settings)
    assert report["checked"] == 8 and report["failed"] == 0
    master.write_bytes(master.read_bytes()[:-1])
    report = fixity_check(older_than="1d", settings=settings)
    assert (report["checked"], report["mismatch"]) == (0, 0)  # all checked a moment ago
    report = fixity_check(settings=settings)
    assert report["mismatch"] == 1 and report["problems"][0]["path"] == str(master)
