"""IIIF Presentation 3.0 manifests and run collections: read back by iiif-prezi3 (its validation
passes) and checked canvas by canvas against a real level-0 site that libvips wrote from real
images (a scan and its x4 master from ../shared/data)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pyvips
from iiif_prezi3 import AnnotationBody, Collection, Manifest

from tasks.preservation.iiif_manifest import (
    MASTER_LABEL,
    SCAN_LABEL,
    IiifError,
    ImageRef,
    item_manifest,
    manifest_path,
    manifest_problems,
    parse_back,
    rights_uri,
    run_collection,
    site_problems,
)
from tasks.records.item_metadata import ItemMetadata, PhysicalSize
from tasks.records.item_record import EventFacts, FileFacts, ItemRecord

BASE = "http://localhost:8000/archive"
ITEM = "5f0c8a52-3d0e-4f7e-9c59-2b1d9f6a7e01"
RUN = "0b7e5d8c-61a4-4e55-8a3b-9d2c1f0e4a77"
AUDIT = f"{BASE}/audit/{ITEM}.json"


def _facts(path: Path, uuid: str, role: str, **extra: Any) -> FileFacts:
    image = pyvips.Image.new_from_file(str(path))
    return FileFacts(uuid=uuid, role=role, path=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                     size=path.stat().st_size, format="PNG", width=image.width, height=image.height,
                     channels=image.bands, bit_depth=8, has_icc=False, ppi=None,
                     created_at="2026-11-21T22:06:00Z", **extra)


def _record(shared_data: Path, rights: str | None = "CC BY 4.0") -> ItemRecord:
    scan = _facts(shared_data / "edge_cases" / "tests_lq" / "comic.png", "f-scan", "original")
    master = _facts(shared_data / "edge_cases" / "tests_gt" / "comic.png", "f-master", "master",
                    source_uuid="f-scan", derivation_key="k" * 64, recipe_name="archival", recipe_hash="5" * 64,
                    run_uuid=RUN, derivation_events=["e-up"])
    metadata = ItemMetadata(file="comic.png", row=2, identifier="box1-0007", title="The comic strip", date="1952",
                            creator="Studio Lenz", rights=rights, physical=PhysicalSize(9.0, 13.5, "cm"),
                            dc={"dc.subject": "comics"}).to_dict()
    events = [EventFacts("e-up", "upscaling", "upscale", "2026-11-21T22:06:00Z", "success", "x4", {"scale": 4},
                         [], [("f-scan", "input"), ("f-master", "output")], RUN)]
    return ItemRecord(ITEM, "box1-0007", None, "2026-11-21T22:05:30Z", [scan, master], events, [], metadata)


@pytest.fixture
def site(tmp_path: Path, shared_data: Path) -> tuple[Path, dict[str, ImageRef]]:
    """A static level-0 site as libvips writes it (IIIF Image 3 tiles + info.json) for the scan and
    the master, and the ImageRefs read from its info.json files."""
    record = _record(shared_data)
    folder = tmp_path / "site" / "iiif" / ITEM
    folder.mkdir(parents=True)
    images = {}
    for f in record.files:
        pyvips.Image.new_from_file(f.path).dzsave(str(folder / f.uuid), layout="iiif3", id=f"{BASE}/iiif/{ITEM}",
                                                  tile_size=256, overlap=0, suffix=".jpg")
        images[f.uuid] = ImageRef.from_info_json(json.loads((folder / f.uuid / "info.json").read_text()))
    return tmp_path / "site", images


def test_the_manifest_parses_back_and_every_canvas_and_image_service_checks_out(
        site: tuple[Path, dict[str, ImageRef]], shared_data: Path) -> None:
    root, images = site
    data = item_manifest(_record(shared_data), images, base_url=BASE, audit_url=AUDIT)
    data = json.loads(json.dumps(data))  # what a viewer reads
    manifest = parse_back(data)
    assert isinstance(manifest, Manifest)
    assert manifest.id == f"{BASE}/{manifest_path(_record(shared_data))}" == f"{BASE}/manifests/{ITEM}.json"
    assert manifest_problems(data) == []
    assert site_problems(data, base_url=BASE, root=root) == []

    canvases = manifest.items
    assert [c.label for c in canvases] == [{"en": [SCAN_LABEL]}, {"en": [MASTER_LABEL]}]
    assert "derivative of the scan" in MASTER_LABEL
    assert [(c.width, c.height) for c in canvases] == [(60, 90), (240, 360)]  # the real images' sizes
    for canvas, uuid in zip(canvases, ["f-scan", "f-master"]):
        painting = [a for page in canvas.items for a in page.items if a.motivation == "painting"]
        assert len(painting) == 1
        assert painting[0].target == canvas.id
        body = painting[0].body
        assert isinstance(body, AnnotationBody) and body.type == "Image" and body.format == "image/jpeg"
        [service] = body.service
        assert (service.id, service.type, service.profile) == (f"{BASE}/iiif/{ITEM}/{uuid}", "ImageService3", "level0")
    # libvips lists no `sizes`: the scan fits one 256 px tile, so its full size is offered; the
    # master does only at half size (scale factor 2), the largest full-region image a level-0
    # client may ask for
    scan_body, master_body = (c.items[0].items[0].body for c in canvases)
    assert scan_body.id == f"{BASE}/iiif/{ITEM}/f-scan/full/60,90/0/default.jpg"
    assert master_body.id == f"{BASE}/iiif/{ITEM}/f-master/full/120,180/0/default.jpg"
    assert (master_body.width, master_body.height) == (120, 180)
    assert (root / "iiif" / ITEM / "f-master" / "full" / "120,180" / "0" / "default.jpg").is_file()


def test_a_listed_full_size_is_the_image_a_canvas_shows(shared_data: Path) -> None:
    refs = {"f-scan": ImageRef(f"{BASE}/iiif/s", 60, 90, ((30, 45), (60, 90))),
            "f-master": ImageRef(f"{BASE}/iiif/m", 240, 360, ((60, 90), (120, 180), (240, 360)))}
    data = item_manifest(_record(shared_data), refs, base_url=BASE, audit_url=None)
    assert manifest_problems(data) == []
    body = data["items"][1]["items"][0]["items"][0]["body"]
    assert (body["id"], body["width"], body["height"]) == (f"{BASE}/iiif/m/full/240,360/0/default.jpg", 240, 360)
    assert data["thumbnail"][0]["id"] == f"{BASE}/iiif/m/full/240,360/0/default.jpg"  # the smallest >= 256 px
    assert "seeAlso" not in data


def test_labels_metadata_rights_and_the_link_to_the_audit_record(
        site: tuple[Path, dict[str, ImageRef]], shared_data: Path) -> None:
    data = item_manifest(_record(shared_data), site[1], base_url=BASE + "/", audit_url=AUDIT)
    assert data["@context"] == "http://iiif.io/api/presentation/3/context.json"
    assert data["label"] == {"none": ["The comic strip"]}
    meta = {m["label"]["en"][0]: m["value"]["none"][0] for m in data["metadata"]}
    assert {k: meta[k] for k in ("Title", "Creator", "Date", "Identifier", "Rights", "Subject", "Catalog item")} == {
        "Title": "The comic strip", "Creator": "Studio Lenz", "Date": "1952", "Identifier": "box1-0007",
        "Rights": "CC BY 4.0", "Subject": "comics", "Catalog item": ITEM}
    assert meta["Physical size"] == "9 × 13.5 cm"
    assert data["rights"] == "http://creativecommons.org/licenses/by/4.0/"
    assert "requiredStatement" not in data
    assert data["seeAlso"] == [{"id": AUDIT, "type": "Dataset", "format": "application/json",
                                "label": data["seeAlso"][0]["label"]}]
    assert "audit" in data["seeAlso"][0]["label"]["en"][0].lower()
    master_meta = {m["label"]["en"][0]: m["value"]["none"][0] for m in data["items"][1]["metadata"]}
    assert master_meta["Derived from"] == "scan f-scan"
    assert master_meta["SHA-256"] == _record(shared_data).file("f-master").sha256
    assert "derivative" in data["summary"]["en"][0]
    assert item_manifest(_record(shared_data), site[1], base_url=BASE, audit_url=AUDIT) == data  # deterministic


def test_rights_text_that_names_no_known_licence_is_shown_not_guessed(
        site: tuple[Path, dict[str, ImageRef]], shared_data: Path) -> None:
    text = "© Stadtarchiv Lenz; reproduction by permission only"
    data = item_manifest(_record(shared_data, rights=text), site[1], base_url=BASE, audit_url=AUDIT)
    assert "rights" not in data
    assert data["requiredStatement"] == {"label": {"en": ["Rights"]}, "value": {"none": [text]}}
    assert manifest_problems(data) == []
    no_rights = item_manifest(_record(shared_data, rights=None), site[1], base_url=BASE, audit_url=None)
    assert "rights" not in no_rights and "requiredStatement" not in no_rights


@pytest.mark.parametrize(("text", "uri"), [
    ("CC BY 4.0", "http://creativecommons.org/licenses/by/4.0/"),
    ("cc-by-sa-4.0", "http://creativecommons.org/licenses/by-sa/4.0/"),
    ("Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 International",
     "http://creativecommons.org/licenses/by-nc-nd/4.0/"),
    ("CC BY 3.0 Unported", "http://creativecommons.org/licenses/by/3.0/"),
    ("CC0", "http://creativecommons.org/publicdomain/zero/1.0/"),
    ("CC0 1.0 Universal", "http://creativecommons.org/publicdomain/zero/1.0/"),
    ("Public domain", "http://creativecommons.org/publicdomain/mark/1.0/"),
    ("In copyright", "http://rightsstatements.org/vocab/InC/1.0/"),
    ("In Copyright - Educational Use Permitted", "http://rightsstatements.org/vocab/InC-EDU/1.0/"),
    ("No Copyright - United States", "http://rightsstatements.org/vocab/NoC-US/1.0/"),
    ("Copyright Not Evaluated", "http://rightsstatements.org/vocab/CNE/1.0/"),
    ("https://creativecommons.org/licenses/by-nc/4.0/deed.de", "http://creativecommons.org/licenses/by-nc/4.0/"),
    ("https://rightsstatements.org/page/InC/1.0/?language=en", "http://rightsstatements.org/vocab/InC/1.0/"),
    ("CC BY", None),  # which version? the terms differ: not guessed
    ("CC BY-ND-SA 4.0", None),  # no such licence
    ("https://creativecommons.org/licenses/mine/4.0/", None),
    ("All rights reserved", None),
    ("", None),
    (None, None),
])
def test_licence_names_map_to_the_uris_iiif_accepts(text: str | None, uri: str | None) -> None:
    assert rights_uri(text) == uri


def test_a_run_collection_lists_its_manifests(site: tuple[Path, dict[str, ImageRef]], shared_data: Path) -> None:
    first = item_manifest(_record(shared_data), site[1], base_url=BASE, audit_url=AUDIT)
    listed = [(first["id"], "The comic strip"), (f"{BASE}/manifests/other.json", "box1-0008")]
    data = json.loads(json.dumps(run_collection(RUN, listed, base_url=BASE)))
    collection = parse_back(data)
    assert isinstance(collection, Collection)
    assert collection.id == f"{BASE}/collections/run-{RUN}.json"
    assert [(m.id, m.type, m.label) for m in collection.items] == [
        (first["id"], "Manifest", {"none": ["The comic strip"]}), (f"{BASE}/manifests/other.json", "Manifest",
                                                                    {"none": ["box1-0008"]})]
    assert RUN in data["label"]["en"][0]


def test_the_checks_catch_what_is_wrong(site: tuple[Path, dict[str, ImageRef]], shared_data: Path) -> None:
    root, images = site
    good = item_manifest(_record(shared_data), images, base_url=BASE, audit_url=AUDIT)

    def broken(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        data = copy.deepcopy(good)
        change(data)
        return data

    body = lambda d, i=1: d["items"][i]["items"][0]["items"][0]["body"]
    with pytest.raises(IiifError, match="not kept by the IIIF model: /seeAlsoo"):
        parse_back(broken(lambda d: d.update(seeAlsoo=d.pop("seeAlso"))))  # a property IIIF does not have
    with pytest.raises(IiifError, match="does not validate"):
        parse_back(broken(lambda d: d["items"][0].update(width="wide")))
    with pytest.raises(IiifError, match="does not validate"):
        parse_back(broken(lambda d: d.pop("label")))  # a manifest must have a label
    assert any("ImageService3 level0" in p for p in manifest_problems(
        broken(lambda d: body(d)["service"][0].update(profile="level2"))))
    assert any("2 painting annotations" in p for p in manifest_problems(
        broken(lambda d: d["items"][0]["items"][0]["items"].append(d["items"][0]["items"][0]["items"][0]))))
    assert any("not a CC or RightsStatements.org URI" in p for p in manifest_problems(
        broken(lambda d: d.update(rights="https://creativecommons.org/licenses/by/4.0/"))))
    assert any("targets" in p for p in manifest_problems(
        broken(lambda d: d["items"][1]["items"][0]["items"][0].update(target=d["items"][0]["id"]))))

    assert any("does not offer the painted size" in p for p in site_problems(
        broken(lambda d: body(d).update(id=body(d)["id"].replace("120,180", "240,360"), width=240, height=360)),
        base_url=BASE, root=root))
    (root / "iiif" / ITEM / "f-master" / "full" / "120,180" / "0" / "default.jpg").unlink()
    (root / "iiif" / ITEM / "f-scan" / "info.json").unlink()
    problems = site_problems(good, base_url=BASE, root=root)
    assert any("f-master/full/120,180/0/default.jpg is not in" in p for p in problems)
    assert any("f-scan/info.json is not in" in p for p in problems)


def test_what_the_manifest_cannot_be_made_from(site: tuple[Path, dict[str, ImageRef]], shared_data: Path) -> None:
    record, images = _record(shared_data), site[1]
    with pytest.raises(IiifError, match="no image service for its master f-master"):
        item_manifest(record, {"f-scan": images["f-scan"]}, base_url=BASE, audit_url=None)
    with pytest.raises(IiifError, match="base URL"):
        item_manifest(record, images, base_url="archive/iiif", audit_url=None)
    with pytest.raises(IiifError, match="lists no sizes"):
        item_manifest(record, {**images, "f-master": ImageRef(f"{BASE}/iiif/m", 240, 360)}, base_url=BASE,
                      audit_url=None)
    record.files = [f for f in record.files if f.role != "original"]
    with pytest.raises(IiifError, match="no scan for master f-master"):
        item_manifest(record, images, base_url=BASE, audit_url=None)


def test_an_item_without_a_master_shows_its_scan_and_a_newer_master_supersedes(
        site: tuple[Path, dict[str, ImageRef]], shared_data: Path) -> None:
    record, images = _record(shared_data), site[1]
    scan_only = ItemRecord(**{**record.__dict__, "files": [record.file("f-scan")]})
    data = item_manifest(scan_only, {"f-scan": images["f-scan"]}, base_url=BASE, audit_url=None)
    assert [c["label"]["en"][0] for c in data["items"]] == [SCAN_LABEL]
    assert manifest_problems(data) == []

    newer = FileFacts(**{**record.file("f-master").__dict__, "uuid": "f-master-2", "created_at": "2027-01-02T00:00:00Z"})
    record.files.append(newer)
    data = item_manifest(record, {**images, "f-master-2": images["f-master"]}, base_url=BASE, audit_url=None)
    assert {m["label"]["en"][0]: m["value"]["none"][0] for m in data["items"][1]["metadata"]}["File"] == "f-master-2"
