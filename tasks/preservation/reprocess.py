"""A reviewer's request to remake a master with another preset or changed strengths, as events.

The request is an event on the master it would replace (type `reprocessing`, step `request`);
when a run has handled it, a second event (step `done`) names the request, the run and the new
master. A request without its `done` event is pending: the catalog is the queue. Nothing here
deletes or edits a master: the old one stays, superseded by the newer master of its item.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from config.recipe import Recipe, RecipeError, load_recipe
from tasks.preservation.decisions import person_agent
from tasks.records.keys import stable_uuid
from tasks.records.types import REPROCESSING, AgentInfo, Outcome, StepRecord, utc_now

# The strengths a reviewer may change (recipe field → label). Ranges are the recipe's own.
STRENGTHS = {
    "denoise.auto_fraction": "denoise strength (× measured noise)",
    "deblur.strength": "deblur strength",
    "tone.levels_strength": "levels stretch",
    "finish.fidelity_blend": "fidelity blend (share of the classical upscale)",
    "finish.sharpen": "sharpen",
}


def requested_recipe(preset: str, strengths: dict[str, float], *, scale: float | None = None,
                     long_edge: int | None = None) -> Recipe:
    """The preset with the reviewer's strengths, at the replaced master's size. ValueError
    (with the recipe's own message) for an unknown preset or field, or a value out of range."""
    unknown = sorted(set(strengths) - set(STRENGTHS))
    if unknown:
        raise ValueError(f"cannot change {', '.join(unknown)} (changeable: {', '.join(STRENGTHS)})")
    try:
        data = load_recipe(preset).model_dump(mode="json")
    except RecipeError as exc:
        raise ValueError(str(exc)) from exc
    for name, value in strengths.items():
        section, key = name.split(".")
        data[section][key] = value
    if "finish.fidelity_blend" in strengths:
        # The reviewer's blend is the one applied, whatever the upscaler was trained for.
        data["finish"]["fidelity_model_blend"] = None
    if strengths:
        changes = ", ".join(f"{k}={v:g}" for k, v in sorted(strengths.items()))
        data["description"] = f"{data.get('description', '')} Reviewer's changes: {changes}.".strip()
    try:
        recipe = Recipe.model_validate(data)
        return recipe.with_target(scale=scale, long_edge=long_edge)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid strengths: {errors}") from exc


def request_step(*, master_uuid: str, master_sha256: str, preset: str, strengths: dict[str, float],
                 recipe: Recipe, by: str, comment: str, software: AgentInfo, when: str | None = None) -> StepRecord:
    person = person_agent(by)
    when = when or utc_now()
    comment = comment.strip()
    changes = ", ".join(f"{k}={v:g}" for k, v in sorted(strengths.items())) or "preset values"
    return StepRecord(
        event_uuid=stable_uuid("reprocess-request", master_uuid, person.name, when, recipe.hash),
        type=REPROCESSING, step="request", when=when, outcome="success",
        detail=f"reprocess with {preset} ({changes}) requested by {person.name}" + (f": {comment}" if comment else ""),
        agents=[person, software],
        parameters={"status": "queued", "by": person.name, "comment": comment, "preset": preset,
                    "strengths": dict(sorted(strengths.items())), "recipe": recipe.model_dump(mode="json"),
                    "recipe_hash": recipe.hash, "master_sha256": master_sha256},
    )


def done_step(request: StepRecord, *, outcome: Outcome, detail: str, run_uuid: str | None,
              new_master: dict[str, Any] | None, software: AgentInfo, when: str | None = None) -> StepRecord:
    """What became of a request: the run that handled it and the master it made (or why not)."""
    when = when or utc_now()
    return StepRecord(
        event_uuid=stable_uuid("reprocess-done", request.event_uuid),  # a request is done once
        type=REPROCESSING, step="done", when=when, outcome=outcome, detail=detail, agents=[software],
        parameters={"status": "done" if outcome != "failure" else "failed", "request": request.event_uuid,
                    "run_uuid": run_uuid, "new_master": new_master},
    )
