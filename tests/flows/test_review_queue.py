"""Reprocessing requests run for real (flows.review.queue.run_pending): Prefect test harness, local
Ray, real weights, tiny crops of real photographs. A new master lands beside the one it replaces,
in the same sub-folder of masters/, however the original was reached."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from catalog import Catalog, review
from config.settings import Settings
from flows.restore_batch import restore_batch
from flows.review.actions import request_reprocess
from flows.review.queue import run_pending
from tasks.files.atomic import sha256_file

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_and_ray")]


def _crop(src: Path, box: tuple[int, int, int, int], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    Image.open(src).convert("RGB").crop(box).save(dest, quality=92)


def test_reprocessed_masters_land_in_the_old_masters_sub_folder(tmp_path, shared_data, shared_models):
    photo = shared_data / "old_photos/old/h.png"
    # day 1: box1 on a real sub-folder, a collection mounted as a symlinked one
    day1, share = tmp_path / "scans-1", tmp_path / "share"
    _crop(photo, (60, 80, 124, 128), day1 / "box1/a.jpg")
    _crop(photo, (200, 80, 264, 128), share / "n.jpg")
    (day1 / "collection").symlink_to(share, target_is_directory=True)
    # day 2: box1 again, another photo under the same name, so both masters sit in masters/box1/
    _crop(photo, (100, 150, 164, 198), tmp_path / "scans-2/box1/a.jpg")
    cfg = Settings(home=tmp_path / "archive", models_dir=shared_models)
    settings = cfg.model_dump(mode="json", exclude_unset=True)
    runs = [restore_batch(str(day1), settings=settings),
            restore_batch(str(tmp_path / "scans-2"), settings=settings)]
    old = {}  # original's real path → its master's path
    for run in runs:
        assert run["counts"]["mastered"] == len(run["scans"]), run
        old.update({s["path"]: Path(s["master"]) for s in run["scans"]})
    masters = cfg.masters_dir
    assert sorted(p.parent.relative_to(masters).as_posix() for p in old.values()) == \
        ["box1", "box1", "collection"]
    old_sha = {p: sha256_file(p) for p in old.values()}

    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        uuids = {catalog.file_ref(path=str(m), roles=("master",)).uuid: m for m in old.values()}
        for uuid in uuids:
            request_reprocess(catalog, uuid, preset="archival", strengths={"finish.fidelity_blend": 0.6},
                              by="Ada Reviewer", comment="too smooth")

    results = run_pending(cfg)

    assert sorted(r["master"] for r in results) == sorted(uuids)
    assert all(r["outcome"] == "success" for r in results), results
    # one recipe, one run; the second a.jpg would clash with the first in the staging folder, so it
    # waits for a second pass (and a second run) rather than landing elsewhere
    assert len({r["run_uuid"] for r in results}) == 2
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        assert review.pending_requests(catalog) == []
        for result in results:
            before = review.master(catalog, result["master"])
            after = review.master(catalog, result["new_master"]["uuid"])
            old_path, new_path = uuids[result["master"]], Path(after.path)
            assert new_path.parent == old_path.parent and new_path != old_path  # beside the old one
            assert new_path.is_file() and result["new_master"]["path"] == after.path
            assert after.original == before.original  # the request's own original, at its real path
            assert before.superseded_by == after.uuid and after.recipe_hash != before.recipe_hash
            access = Path(after.access["path"])
            assert access.parent.relative_to(cfg.access_dir) == old_path.parent.relative_to(masters)
    assert {p: sha256_file(p) for p in old_sha} == old_sha  # the old masters are untouched
