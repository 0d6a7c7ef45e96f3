"""One run plan, built once; one job builder for the batch, reprocessing and reproduction."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.recipe import load_recipe
from config.settings import Settings
from flows.run_plan import JobOriginal, RunPlanError, plan_run
from tasks.records.keys import stable_uuid

ORIGINAL = JobOriginal(path="/scans/box1/a.tif", sha256="ab" * 32, item_uuid="item-1", item_identifier="a",
                       original_uuid="orig-1", catalogued_path="/scans/box1/a.tif")


def test_the_plan_settles_recipe_target_profile_and_weights(tmp_path, shared_models):
    cfg = Settings(home=tmp_path, models_dir=shared_models, capture_profile="fadgi-3star-photo")
    plan = plan_run(cfg, "archival", long_edge=3840)
    assert plan.recipe.upscale.long_edge == 3840 and plan.recipe.hash != load_recipe("archival").hash
    assert plan.capture is not None and plan.capture["name"] == "fadgi-3star-photo"
    assert plan.models.weights[plan.models.upscale_models[0]] and plan.models.precision in ("fp32", "bf16")
    # A reviewer's request carries the recipe itself: the same recipe gives the same plan.
    again = plan_run(cfg, plan.recipe)
    assert again.recipe.hash == plan.recipe.hash and again.models.weights == plan.models.weights


@pytest.mark.parametrize("recipe, overrides, says", [
    ("no-such-preset", {}, "no recipe preset named 'no-such-preset'"),
    ("archival", {"capture_profile": "no-such-profile"}, "no-such-profile"),
    ("archival", {"models_dir": "EMPTY"}, "realesr-general-x4v3"),
])
def test_what_stops_a_run_before_it_starts_is_one_error_saying_why(tmp_path, shared_models, recipe, overrides, says):
    settings = {"home": tmp_path, "models_dir": shared_models, **overrides}
    if settings["models_dir"] == "EMPTY":
        (tmp_path / "empty").mkdir()
        settings["models_dir"] = tmp_path / "empty"
    with pytest.raises(RunPlanError, match=says):
        plan_run(Settings(**settings), recipe)


def test_jobs_for_the_archive_and_for_a_reproduction_come_from_one_builder(tmp_path, shared_models):
    cfg = Settings(home=tmp_path, models_dir=shared_models, capture_profile="access-only")
    plan = plan_run(cfg, "archival")
    key = "k" * 64
    job = plan.job(ORIGINAL, key, "run-1", folder=Path("box1"))
    assert job.master_path == str(cfg.masters_dir / "box1" / f"a.{key[:12]}.tif")
    assert job.access_path == str(cfg.access_dir / "box1" / f"a.{key[:12]}.jpg")
    assert job.review_path == str(cfg.reviews_dir / "box1" / f"a.{key[:12]}.png")
    assert (job.master_uuid, job.access_uuid) == (stable_uuid("master", key), stable_uuid("access", key))
    assert job.capture_profile == plan.capture and job.recipe_hash == plan.recipe.hash
    assert (job.max_pixels, job.max_bytes) == (cfg.max_pixels, cfg.max_decoded_bytes)

    scratch = tmp_path / "scratch"
    again = plan.job(ORIGINAL, key, "run-1", into=scratch, master_uuid="m-1", gate=False)
    assert (again.master_path, again.access_path, again.review_path) == (
        str(scratch / "master.tif"), str(scratch / "access.jpg"), "")
    assert again.master_uuid == "m-1" and again.access_uuid == stable_uuid("reproduce-access", "m-1")
    assert again.capture_profile is None  # the QA gate changes no pixel: a reproduction skips it
    assert again.derivation_key == job.derivation_key and again.recipe == job.recipe
