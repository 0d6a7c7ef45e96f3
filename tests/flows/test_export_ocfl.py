"""`restorium export ocfl` end to end: a real batch (Prefect test harness, local Ray, real weights,
real images) exported as OCFL objects; the items mastered again with another recipe and exported
again (v2, the first masters kept in v1); a third export changes nothing. ocfl-py's validator
passes on the storage root after each export."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import ocfl
import pytest
from PIL import Image
from typer.testing import CliRunner

from catalog import Catalog
from flows.cli import app
from flows.restore_batch import restore_batch
from tasks.preservation import premis
from tasks.preservation.ocfl_export import validate_storage_root

pytestmark = pytest.mark.slow

OCFL_VALIDATE = Path(sys.executable).with_name("ocfl-validate.py")


def _sha(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _export(root: Path, home: Path, *refs: str) -> dict:
    result = _cli("export", "ocfl", *refs, str(root), "--home", str(home), "--json",
                  "--by", "A. Archivist", "--address", "mailto:archivist@example.org")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert validate_storage_root(root) == []
    for obj in report["objects"]:
        check = subprocess.run([str(OCFL_VALIDATE), str(root / obj["path"])], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    return report


def _state(root: Path, obj: dict, version: str, dest: Path) -> dict[str, bytes]:
    ocfl.Object().extract(str(root / obj["path"]), version, str(dest))
    return {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def test_two_versions_of_real_items_validate(prefect_and_ray, tmp_path, shared_data, shared_models) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.open(shared_data / "old_photos/old/h.png").convert("RGB").crop((100, 100, 196, 172)).save(scans / "wedding.png")
    Image.open(shared_data / "old_photos/old_w_scratch/c.png").convert("RGB").crop((0, 0, 80, 64)).save(
        scans / "harbour.jpg", quality=92)
    home = tmp_path / "archive"
    settings = {"home": str(home), "models_dir": str(shared_models)}
    first = restore_batch(str(scans), settings=settings)
    assert first["counts"]["mastered"] == 2, first
    masters1 = {Path(s["path"]).stem: Path(s["master"]) for s in first["scans"]}
    with Catalog.open(f"sqlite:///{home / 'catalog.sqlite'}") as catalog:
        uuids = {name: catalog.items_named(name)[0][0] for name in masters1}
    root = tmp_path / "ocfl"

    # v1: one item named by identifier, the other by its master file
    report = _export(root, home, "wedding", str(masters1["harbour"]))
    assert report["initialised"] and report["failed"] == 0
    objects = {o["identifier"]: o for o in report["objects"]}
    assert {n: (o["status"], o["version"]) for n, o in objects.items()} == {"wedding": ("created", "v1"),
                                                                             "harbour": ("created", "v1")}
    assert objects["wedding"]["object_id"] == f"urn:uuid:{uuids['wedding']}"
    v1 = _state(root, objects["wedding"], "v1", tmp_path / "wedding-v1")
    assert sorted(v1) == ["access/wedding.jpg", "metadata/item.json", "metadata/premis.xml", "original/wedding.png",
                          "service/wedding.tif"]
    assert v1["service/wedding.tif"] == masters1["wedding"].read_bytes()
    assert v1["original/wedding.png"] == (scans / "wedding.png").read_bytes()
    assert premis.validation_errors(v1["metadata/premis.xml"]) == []
    item = json.loads(v1["metadata/item.json"])
    assert "is restorium's master: a derivative" in item["derivation"]["statement"]
    assert item["derivation"]["preservation_object"] == "original/wedding.png"
    (master_uuid,) = item["audits"]
    assert item["audits"][master_uuid]["master"]["sha256"] == _sha(masters1["wedding"])
    assert item["audits"][master_uuid]["original"]["sha256"] == _sha(scans / "wedding.png")
    inventory = ocfl.Object(path=str(root / objects["wedding"]["path"])).parse_inventory()
    assert inventory.version("v1").user_name == "A. Archivist"
    assert inventory.version("v1").user_address == "mailto:archivist@example.org"

    # nothing changed in the catalog: no version
    again = _export(root, home, "wedding", "harbour")
    assert [(o["status"], o["head"]) for o in again["objects"]] == [("unchanged", "v1"), ("unchanged", "v1")]

    # mastered again with another recipe: the new masters supersede the first ones
    second = restore_batch(str(scans), recipe="portrait", settings=settings)
    assert second["counts"]["mastered"] == 2, second
    masters2 = {Path(s["path"]).stem: Path(s["master"]) for s in second["scans"]}
    report = _export(root, home, "wedding", "harbour")
    objects = {o["identifier"]: o for o in report["objects"]}
    for name, obj in objects.items():
        assert (obj["status"], obj["version"]) == ("updated", "v2"), obj
        assert "service copy superseded" in obj["message"] and "which stays in v1" in obj["message"]
        assert "recipe archival" in obj["message"] and "-> portrait" in obj["message"]
        v2 = _state(root, obj, "v2", tmp_path / f"{name}-v2")
        assert v2[f"service/{name}.tif"] == masters2[name].read_bytes()
        assert _state(root, obj, "v1", tmp_path / f"{name}-v1-later")[f"service/{name}.tif"] == \
            masters1[name].read_bytes()
        copies = json.loads(v2["metadata/item.json"])["service_copies"]
        assert [(c["status"], c["first_version"], c.get("last_version")) for c in copies] == [
            ("superseded", "v1", "v1"), ("current", "v2", None)]

    # and once more: unchanged, still v2 (text output)
    result = _cli("export", "ocfl", "wedding", "harbour", str(root), "--home", str(home))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("unchanged at v2") == 2
    assert ocfl.Object(path=str(root / objects["wedding"]["path"])).parse_inventory().version_directories == ["v1", "v2"]
    assert validate_storage_root(root) == []

    # refusals: an unknown item, a folder that is not a storage root
    assert _cli("export", "ocfl", "no-such-item", str(root), "--home", str(home)).exit_code == 2
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    refused = _cli("export", "ocfl", "wedding", str(tmp_path / "mine"), "--home", str(home))
    assert refused.exit_code == 2 and "not an OCFL storage root" in refused.output
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
