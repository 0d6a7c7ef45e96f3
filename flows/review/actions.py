"""What a reviewer's buttons record: the same events `restorium approve/reject` record (built by
tasks.preservation.decisions, appended by Catalog.record_file_events), and reprocessing requests.

A decision names the master's bytes: the file is hashed first and a decision about a file that
changed since it was catalogued is refused, as on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catalog import review
from catalog.repository import Catalog
from flows.actors import software_agent
from tasks.files.atomic import sha256_file
from tasks.preservation.decisions import decision_step
from tasks.preservation.reprocess import STRENGTHS, request_step, requested_recipe
from tasks.records.types import StepRecord


class Refused(ValueError):
    """An action that cannot be recorded; the message says why (shown to the reviewer)."""


def _current_bytes(facts: review.MasterFacts) -> str:
    path = Path(facts.path)
    if not path.is_file():
        raise Refused(f"the master {path} is missing on disk (run `restorium fixity`)")
    actual = sha256_file(path)
    if actual != facts.sha256:
        raise Refused(f"the master's sha256 {actual} differs from the catalogued {facts.sha256}: the file changed "
                      "since it was made; a decision about other bytes would not hold (run `restorium fixity`)")
    return actual


def record_decision(catalog: Catalog, master_uuid: str, master_sha256: str, decision: str, *, by: str,
                    comment: str) -> StepRecord:
    """Append an approval or rejection of the master's verified bytes (the web page and
    `restorium approve/reject` both come here). ValueError: no name, or a rejection without a comment."""
    step = decision_step(decision, master_uuid=master_uuid, master_sha256=master_sha256, by=by, comment=comment,
                         software=software_agent())
    catalog.record_file_events([(master_uuid, step)])
    return step


def decide(catalog: Catalog, master_uuid: str, decision: str, *, by: str, comment: str) -> StepRecord:
    facts = review.master(catalog, master_uuid)
    if facts is None:
        raise Refused(f"no master {master_uuid} in the catalog")
    actual = _current_bytes(facts)
    try:
        return record_decision(catalog, facts.uuid, actual, decision, by=by, comment=comment)
    except ValueError as exc:
        raise Refused(str(exc).replace(" (--by NAME)", "").replace(" (--comment TEXT)", "")) from exc


def parse_strengths(form: dict[str, Any]) -> dict[str, float]:
    """The strength fields the reviewer filled in (blank: keep the preset's value)."""
    values: dict[str, float] = {}
    for name in STRENGTHS:
        text = str(form.get(name) or "").strip()
        if text:
            try:
                values[name] = float(text)
            except ValueError:
                raise Refused(f"{STRENGTHS[name]}: {text!r} is not a number") from None
    return values


def request_reprocess(catalog: Catalog, master_uuid: str, *, preset: str, strengths: dict[str, float], by: str,
                      comment: str) -> StepRecord:
    """Queue a new master of the item with `preset` and `strengths`, at this master's size."""
    facts = review.master(catalog, master_uuid)
    if facts is None:
        raise Refused(f"no master {master_uuid} in the catalog")
    if facts.superseded_by:
        raise Refused(f"a newer master of this item exists ({facts.superseded_by}): review that one")
    if any(r["status"] == "queued" for r in facts.requests):
        raise Refused("a reprocessing request for this master is already queued")
    target = ((catalog.run_recipe(facts.run_uuid) or {}).get("recipe") or {}).get("upscale", {}) \
        if facts.run_uuid else {}
    try:
        recipe = requested_recipe(preset, strengths, scale=target.get("scale"), long_edge=target.get("long_edge"))
    except ValueError as exc:
        raise Refused(str(exc)) from exc
    if recipe.hash == facts.recipe_hash:
        raise Refused("that is the very recipe that made this master: choose another preset or change a strength")
    try:
        step = request_step(master_uuid=facts.uuid, master_sha256=facts.sha256, preset=preset, strengths=strengths,
                            recipe=recipe, by=by, comment=comment, software=software_agent())
    except ValueError as exc:
        raise Refused(str(exc).replace(" (--by NAME)", "")) from exc
    catalog.record_file_events([(facts.uuid, step)])
    return step
