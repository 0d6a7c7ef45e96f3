"""The real flow end to end: Prefect (test harness), local Ray, real compact weights, real images.

Scans are small crops of the real photographs so a CPU run takes seconds; they still go through
every stage and every real component.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from catalog import Catalog
from flows.restore_batch import restore_batch
from tasks.files.xmp import read_provenance

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_and_ray")]


def _counts(summary: dict) -> dict:
    """The outcome counts (flagged masters are counted among the mastered, and on their own)."""
    return {k: v for k, v in summary["counts"].items() if k != "flagged"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def scans(tmp_path: Path, shared_data: Path) -> Path:
    """A folder as a scanning station leaves it: sub-folders, formats, a duplicate, two bad files."""
    folder = tmp_path / "scans"
    (folder / "box2").mkdir(parents=True)
    old = np.asarray(Image.open(shared_data / "old_photos/old_w_scratch/b.png").convert("RGB"))
    Image.fromarray(old[:96, :128]).save(folder / "scratched.png")
    photo = np.asarray(Image.open(shared_data / "old_photos/old/h.png").convert("RGB"))[100:180, 60:160]
    tifffile.imwrite(folder / "box2" / "h16.tif", photo.astype(np.uint16) * 257, photometric="rgb")
    Image.open(shared_data / "edge_cases/wolf_gray.jpg").crop((0, 0, 72, 64)).save(folder / "box2" / "gray.jpg")
    (folder / "box2" / "copy_of_scratched.png").write_bytes((folder / "scratched.png").read_bytes())
    (folder / "empty.tif").touch()
    data = (shared_data / "edge_cases/0014.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    return folder


def _settings(tmp_path: Path, models: Path, **extra) -> dict:
    return {"home": str(tmp_path / "archive"), "models_dir": str(models), "shard_size": 3, **extra}


def _by_name(summary: dict) -> dict[str, dict]:
    return {Path(s["path"]).name: s for s in summary["scans"]}


def test_batch_masters_reports_failures_and_reruns_as_unchanged(tmp_path, scans, shared_models):
    originals = {p: _sha(p) for p in scans.rglob("*") if p.is_file()}
    settings = _settings(tmp_path, shared_models)

    first = restore_batch(str(scans), settings=settings)

    assert _counts(first) == {"scans": 6, "ingested": 5, "mastered": 3, "unchanged": 1, "failed": 2, "skipped": 0}
    scan = _by_name(first)
    assert scan["empty.tif"]["reason"] == "zero-byte file"
    assert "damaged JPEG" in scan["truncated.jpg"]["reason"]
    # discovery is sorted, so box2/copy_of_scratched.png is met first; the same bytes later are not redone
    assert scan["copy_of_scratched.png"]["outcome"] == "mastered"
    assert scan["scratched.png"]["reason"] == f"same content as {scans / 'box2/copy_of_scratched.png'}"
    master16 = Path(scan["h16.tif"]["master"])
    assert master16.parent == tmp_path / "archive/masters/box2"  # the scan's sub-folder is kept
    assert tifffile.imread(master16).dtype == np.uint16
    assert tifffile.imread(scan["gray.jpg"]["master"]).shape == (128, 144)  # exactly 2x, still gray

    with Catalog.open(f"sqlite:///{tmp_path / 'archive/catalog.sqlite'}") as catalog:
        rows = catalog.count_rows()
        for entry in first["scans"]:
            if entry["outcome"] != "mastered":
                continue
            master = Path(entry["master"])
            from_catalog = catalog.audit(master_path=str(master), sha256=_sha(master))
            assert from_catalog is not None
            assert from_catalog.to_dict() == read_provenance(master).to_dict()
            assert [s.step for s in from_catalog.steps][:3] == ["ingest", "digest", "qa"]
            assert from_catalog.steps[-1].step == "tag"
            assert {m.name for m in from_catalog.models} >= {"realesr-general-x4v3"}
    files = sorted(p for p in (tmp_path / "archive").rglob("*") if p.is_file() and "reports" not in p.parts)

    second = restore_batch(str(scans), settings=settings)

    assert _counts(second) == {"scans": 6, "ingested": 0, "mastered": 0, "unchanged": 4, "failed": 2, "skipped": 0}
    with Catalog.open(f"sqlite:///{tmp_path / 'archive/catalog.sqlite'}") as catalog:
        assert catalog.count_rows() == rows  # not one new row, not even a run
    after = sorted(p for p in (tmp_path / "archive").rglob("*") if p.is_file() and "reports" not in p.parts)
    assert after == files
    assert {p: _sha(p) for p in originals} == originals  # originals untouched throughout
    assert not list((tmp_path / "archive").rglob("*.partial"))
    report = json.loads((tmp_path / "archive/reports" / f"run-{first['run_uuid']}.json").read_text())
    assert report["throughput"]["scans_per_hour"] > 0 and report["timings"]["driver_peak_rss_mb"] > 0
    assert (tmp_path / "archive/reports" / f"run-{first['run_uuid']}.html").is_file()
    assert not (tmp_path / "archive/reports" / f"run-{second['run_uuid']}.json").exists()  # nothing changed


def test_scale_and_long_edge_overrides_are_exact_and_recorded(tmp_path, scans, shared_models):
    settings = _settings(tmp_path, shared_models)
    x3 = restore_batch(str(scans / "box2"), scale=3.0, settings=settings)
    master = Path(_by_name(x3)["h16.tif"]["master"])
    assert tifffile.imread(master).shape[:2] == (240, 300)
    record = read_provenance(master)
    assert record.recipe["resolved"]["upscale"]["width"] == 300
    k = restore_batch(str(scans / "box2"), long_edge=250, settings=settings)
    master = Path(_by_name(k)["h16.tif"]["master"])
    assert tifffile.imread(master).shape[:2] == (200, 250)
    assert k["recipe_hash"] != x3["recipe_hash"]  # an override is a different recipe
    assert read_provenance(master).recipe["hash"] == k["recipe_hash"]


def test_only_new_keeps_masters_an_older_recipe_made_and_masters_new_scans(tmp_path, shared_data, shared_models):
    """After an upgrade (a new preset version, new weights or software), `--only-new` masters the
    scans that arrived since and leaves every existing master as it is."""
    folder = tmp_path / "scans"
    folder.mkdir()
    gray = Image.open(shared_data / "edge_cases/wolf_gray.jpg")
    gray.crop((0, 0, 48, 40)).save(folder / "first.png")
    settings = _settings(tmp_path, shared_models)
    before = restore_batch(str(folder), settings=settings)
    gray.crop((48, 0, 96, 40)).save(folder / "second.png")

    kept = restore_batch(str(folder), scale=3.0, settings=settings, only_new=True)

    assert _counts(kept) == {"scans": 2, "ingested": 1, "mastered": 1, "unchanged": 1, "failed": 0, "skipped": 0}
    scan = _by_name(kept)
    assert scan["first.png"]["master"] == _by_name(before)["first.png"]["master"]
    assert "--only-new" in scan["first.png"]["reason"]
    assert tifffile.imread(scan["second.png"]["master"]).shape == (120, 144)  # the new recipe: x3

    again = restore_batch(str(folder), scale=3.0, settings=settings)  # without it: re-mastered at x3
    assert _counts(again)["mastered"] == 1 and _by_name(again)["first.png"]["outcome"] == "mastered"
    newest = restore_batch(str(folder), scale=3.0, settings=settings, only_new=True)
    assert _counts(newest)["mastered"] == 0
    assert _by_name(newest)["first.png"]["master"] == _by_name(again)["first.png"]["master"]


def test_a_scan_in_a_symlinked_sub_folder_keeps_its_sub_folder(tmp_path, shared_data, shared_models):
    """A library mounts a share into the scans folder as a symlink: its scans are found, and their
    masters, access copies and review sheets keep the sub-folder as seen from the scans folder,
    while the catalog records where the original really is."""
    share = tmp_path / "share"
    (share / "negatives").mkdir(parents=True)
    scan = share / "negatives" / "n1.jpg"
    Image.open(shared_data / "edge_cases/wolf_gray.jpg").crop((0, 0, 48, 40)).save(scan)
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "collection").symlink_to(share, target_is_directory=True)
    (folder / "collection" / "negatives" / "again").symlink_to(share, target_is_directory=True)  # a loop

    summary = restore_batch(str(folder), settings=_settings(tmp_path, shared_models))

    assert _counts(summary) == {"scans": 1, "ingested": 1, "mastered": 1, "unchanged": 0, "failed": 0, "skipped": 1}
    loop, entry = summary["scans"]  # the loop is not followed, and the summary says so
    assert loop["outcome"] == "skipped" and "symlink to a folder already listed" in loop["reason"]
    assert loop["path"] == str(folder / "collection/negatives/again")
    assert entry["path"] == str(scan.resolve())
    home = tmp_path / "archive"
    master, access = Path(entry["master"]), Path(entry["access"])
    assert master.parent == home / "masters/collection/negatives" and master.is_file()
    assert access.parent == home / "access/collection/negatives" and access.is_file()
    assert (home / "reviews/collection/negatives" / master.with_suffix(".png").name).is_file()
    with Catalog.open(f"sqlite:///{home / 'catalog.sqlite'}") as catalog:
        assert catalog.audit(master_path=str(master)).original["path"] == str(scan.resolve())


def test_archival_upscales_with_the_fidelity_weights_when_present_else_its_fallback(tmp_path, shared_data,
                                                                                     shared_models):
    """The archival preset names the locally made fidelity weights with realesr-general-x4v3 as its
    fallback: each master records the model that really ran, and making the weights later gives
    new masters (the weights are part of the derivation key), never a silent mix."""
    from models.finetune import FinetuneSettings, train_and_register
    from models.weights import import_weights

    models = tmp_path / "models"
    for name in ("realesr-general-x4v3", "ffdnet_color"):
        import_weights(shared_models / f"{name}.pth", name, models)
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.open(shared_data / "edge_cases/wolf_gray.jpg").crop((0, 0, 48, 40)).save(folder / "wolf.png")
    settings = _settings(tmp_path, models)

    before = restore_batch(str(folder), settings=settings)
    photos = sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[1:3]
    tuned = train_and_register(photos, "realesr-general-x4v3", "restorium-fidelity-x4v3", models,
                               FinetuneSettings(steps=2, batch=2, patch=64))
    after = restore_batch(str(folder), settings=settings)

    assert _counts(before)["mastered"] == 1 and _counts(after)["mastered"] == 1  # re-mastered, not "unchanged"
    old, new = (read_provenance(Path(s["scans"][0]["master"])) for s in (before, after))
    assert old.recipe["resolved"]["upscale"]["model"] == "realesr-general-x4v3"
    assert any("using the recipe's fallback" in r for r in old.recipe["plan_reasons"])
    assert new.recipe["resolved"]["upscale"]["model"] == "restorium-fidelity-x4v3"
    upscale = next(s for s in new.steps if s.step == "upscale")
    assert [(a.name, a.weights_sha256) for a in upscale.agents if a.kind == "model"] == [
        ("restorium-fidelity-x4v3", tuned.sha256)]
    assert old.derivation_key != new.derivation_key


@pytest.mark.postgres
def test_catalog_on_postgresql(tmp_path, scans, shared_models, postgres_url):
    settings = _settings(tmp_path, shared_models, catalog_url=postgres_url)
    first = restore_batch(str(scans / "box2"), settings=settings)
    assert first["counts"]["mastered"] == 3
    with Catalog.open(postgres_url) as catalog:
        rows = catalog.count_rows()
        master = Path(_by_name(first)["h16.tif"]["master"])
        record = catalog.audit(sha256=_sha(master))
        assert record.to_dict() == read_provenance(master).to_dict()
    second = restore_batch(str(scans / "box2"), settings=settings)
    assert second["counts"]["unchanged"] == 3
    with Catalog.open(postgres_url) as catalog:
        assert catalog.count_rows() == rows


def test_qa_gate_near_duplicates_review_sheets_and_qa_report(tmp_path, shared_data, shared_models):
    folder = tmp_path / "gate"
    folder.mkdir()
    photo = Image.open(shared_data / "old_photos/old/f.png").convert("RGB").crop((200, 200, 296, 272))
    photo.save(folder / "print.png")
    photo.save(folder / "print_again.jpg", quality=92)  # the same picture, other bytes: a near-duplicate
    rgb16 = np.asarray(photo).astype(np.uint16) * 257
    tifffile.imwrite(folder / "master_grade.tif", rgb16, photometric="rgb", resolution=(600, 600),
                     resolutionunit="INCH", extratags=[(34675, "B", len(_ICC), _ICC, True)])

    settings = _settings(tmp_path, shared_models, capture_profile="fadgi-3star-photo")
    first = restore_batch(str(folder), settings=settings)

    scan = _by_name(first)
    # FADGI 3-star asks for 16-bit TIFF with a profile: the PNG and JPEG fail the gate, the TIFF passes
    for name in ("print.png", "print_again.jpg"):
        assert scan[name]["outcome"] == "failed" and scan[name]["verdict"] == "fail"
        assert scan[name]["reason"].startswith("QA gate (fadgi-3star-photo)")
    assert scan["master_grade.tif"]["outcome"] == "mastered"
    report = Path(first["qa_report"])
    assert report.is_file() and "fadgi-3star-photo" in report.read_text()
    # the morning run report: HTML with the failures and their reasons, JSON beside it
    run_page = Path(first["report"])
    assert run_page.name == f"run-{first['run_uuid']}.html" and "QA gate (fadgi-3star-photo)" in run_page.read_text()
    recorded = json.loads(run_page.with_suffix(".json").read_text())
    assert recorded["counts"] == first["counts"] and recorded["throughput"]["scans_per_hour"] > 0
    assert sum(w["processed"] for w in recorded["workers"]) == 3  # the QA gate runs in the worker too
    with Catalog.open(f"sqlite:///{tmp_path / 'archive/catalog.sqlite'}") as catalog:
        rows = catalog.count_rows()
        record = catalog.audit(sha256=_sha(Path(scan["master_grade.tif"]["master"])))
    steps = [s.step for s in record.steps]
    assert "fidelity-guard" in steps and steps[-1] == "tag"
    review = tmp_path / "archive/reviews" / Path(scan["master_grade.tif"]["master"]).with_suffix(".png").name
    assert review.is_file() and Image.open(review).size[0] > 2 * 96

    again = restore_batch(str(folder), settings=settings)  # rejected scans stay rejected, nothing added
    assert _counts(again)["failed"] == 2 and _counts(again)["unchanged"] == 1
    with Catalog.open(f"sqlite:///{tmp_path / 'archive/catalog.sqlite'}") as catalog:
        assert catalog.count_rows() == rows

    lenient = restore_batch(str(folder), settings=_settings(tmp_path, shared_models))
    scan = _by_name(lenient)
    flags = scan["print.png"]["flags"] + scan["print_again.jpg"]["flags"]
    assert any(f.startswith("near-duplicate of") for f in flags), flags


_ICC = __import__("PIL.ImageCms", fromlist=["ImageCms"]).ImageCmsProfile(
    __import__("PIL.ImageCms", fromlist=["ImageCms"]).createProfile("sRGB")).tobytes()
