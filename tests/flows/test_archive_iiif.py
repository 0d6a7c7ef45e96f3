"""IIIF level-0 tiles made at run time (RESTORIUM_IIIF_BASE_URL): for every master and its scan,
under ARCHIVE/iiif/<item>/<sha256[:16]>, made once per content, catalogued with their sha256."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from catalog import Catalog
from flows.fixity import fixity_check
from flows.restore_batch import restore_batch
from tasks.files.atomic import sha256_file
from tasks.files.iiif_tiles import validate_iiif

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_and_ray")]
BASE = "https://images.example.org/iiif"


def test_masters_and_scans_get_iiif_tiles_once_per_content(tmp_path, shared_data, shared_models):
    scans = tmp_path / "scans"
    scans.mkdir()
    for name, rel in (("a.png", "old_photos/old/a.png"), ("b.png", "old_photos/old/b.png")):
        Image.open(shared_data / rel).convert("RGB").crop((40, 40, 168, 136)).save(scans / name)
    home = tmp_path / "archive"
    settings = {"home": str(home), "models_dir": str(shared_models), "iiif_base_url": BASE}
    stale = home / "iiif" / "x" / ".0123456789abcdef.12ab.partial"  # a killed run's half-written folder
    stale.mkdir(parents=True)
    first = restore_batch(str(scans), settings=settings)
    assert first["counts"]["mastered"] == 2 and not stale.exists()

    url = f"sqlite:///{home / 'catalog.sqlite'}"
    with Catalog.open(url) as catalog:
        records = [catalog.item_record(uuid) for uuid, _ in
                   (catalog.items_named(Path(s["path"]).stem)[0] for s in first["scans"])]
    for record in records:
        assert record is not None
        by_uuid = {f.uuid: f for f in record.files}
        tiles = record.by_role("iiif")
        assert len(tiles) == 2  # the master's and the scan's
        for f in tiles:
            folder = Path(f.path).parent
            assert validate_iiif(folder) == [] and f.sha256 == sha256_file(Path(f.path))
            info = json.loads((folder / "info.json").read_text())
            source = by_uuid[f.source_uuid]
            assert info["id"].startswith(BASE) and (info["width"], info["height"]) == (source.width, source.height)
            assert folder.name == source.sha256[:16] and folder.parent.name == record.uuid
        assert {by_uuid[f.source_uuid].role for f in tiles} == {"master", "original"}

    # Another recipe: a new master gets new tiles; the scan's are kept as they were (made once).
    scan_tiles = next(Path(f.path) for f in records[0].by_role("iiif") if by_uuid_role(records[0], f) == "original")
    before = scan_tiles.stat().st_mtime_ns
    second = restore_batch(str(scans), recipe="portrait", settings=settings)
    assert second["counts"]["mastered"] == 2 and scan_tiles.stat().st_mtime_ns == before
    with Catalog.open(url) as catalog:
        again = catalog.item_record(records[0].uuid)
    assert again is not None and len(again.by_role("iiif")) == 3  # two masters' tiles, one scan's
    report = fixity_check(settings=settings)
    assert report["failed"] == 0 and report["ok"] >= 6, report


def by_uuid_role(record, tiles) -> str:
    return next(f.role for f in record.files if f.uuid == tiles.source_uuid)
