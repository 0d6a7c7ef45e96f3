"""Reprocessing requests (tasks.preservation.reprocess): the recipe a reviewer asks for, and its events."""

from __future__ import annotations

import pytest

from config.recipe import load_recipe
from tasks.preservation.reprocess import done_step, request_step, requested_recipe
from tasks.records.types import REPROCESSING, AgentInfo

SOFTWARE = AgentInfo(kind="software", name="restorium", version="test")


def test_strengths_change_the_recipe_and_its_hash_and_the_size_is_kept() -> None:
    preset = load_recipe("portrait")
    recipe = requested_recipe("portrait", {"finish.fidelity_blend": 0.6, "denoise.auto_fraction": 0.5}, scale=3.0)
    assert recipe.finish.fidelity_blend == 0.6 and recipe.denoise.auto_fraction == 0.5
    assert recipe.upscale.scale == 3.0 and recipe.name == "portrait"
    assert recipe.hash != preset.hash
    assert "Reviewer's changes" in recipe.description
    assert requested_recipe("portrait", {}).hash == preset.hash  # nothing changed: the preset itself



def test_a_reviewers_blend_is_applied_whatever_the_upscaler_was_trained_for() -> None:
    from tasks.steps.plan import plan_scan

    assert load_recipe("archival").finish.fidelity_model_blend == 0.2  # the preset's lighter blend
    recipe = requested_recipe("archival", {"finish.fidelity_blend": 0.5})
    assert recipe.finish.fidelity_model_blend is None
    plan = plan_scan(recipe, {"noise_sigma": 0.5}, 100, 80, model_scale=4, denoiser_available=True,
                     model_name="restorium-fidelity-x4v3", model_training="fidelity")
    assert plan.finish["fidelity_blend"] == 0.5
@pytest.mark.parametrize(("preset", "strengths", "message"), [
    ("no-such-preset", {}, "no recipe preset named"),
    ("archival", {"finish.fidelity_blend": 7.0}, "finish.fidelity_blend"),
    ("archival", {"upscale.model": 1.0}, "cannot change upscale.model"),
])
def test_bad_requests_are_refused_with_the_reason(preset, strengths, message) -> None:
    with pytest.raises(ValueError, match=message):
        requested_recipe(preset, strengths)


def test_a_request_and_its_end_are_events_with_the_person() -> None:
    recipe = requested_recipe("archival", {"finish.sharpen": 0.2})
    step = request_step(master_uuid="m", master_sha256="a" * 64, preset="archival", strengths={"finish.sharpen": 0.2},
                        recipe=recipe, by="  Ada   Reviewer ", comment=" too soft ", software=SOFTWARE)
    assert (step.type, step.step, step.parameters["status"]) == (REPROCESSING, "request", "queued")
    assert [a.name for a in step.agents if a.kind == "person"] == ["Ada Reviewer"]
    assert step.parameters["recipe_hash"] == recipe.hash and step.parameters["comment"] == "too soft"
    with pytest.raises(ValueError, match="name of the person"):
        request_step(master_uuid="m", master_sha256="a" * 64, preset="archival", strengths={}, recipe=recipe,
                     by=" ", comment="", software=SOFTWARE)
    done = done_step(step, outcome="success", detail="remade", run_uuid="r", new_master={"uuid": "n", "path": "p"},
                     software=SOFTWARE)
    assert done.parameters["request"] == step.event_uuid and done.parameters["status"] == "done"
    assert done_step(step, outcome="failure", detail="x", run_uuid=None, new_master=None,
                     software=SOFTWARE).event_uuid == done.event_uuid  # a request ends once
