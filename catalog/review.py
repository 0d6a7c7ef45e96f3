"""Queries for the review app (flows/review): masters with what a reviewer decides on — the QA
verdict and findings, the fidelity guard, the latest decision, reprocessing requests, and
whether a newer master of the same item supersedes it — plus runs and pending requests.

Read-only except through Catalog.record_file_events (decisions and requests are events like
any other). Facts are gathered per batch of masters in a few queries, not per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from catalog.events import load_steps
from catalog.repository import Catalog
from catalog.schema import Event, EventFile, File, Item, Run
from catalog.sql import chunked, format_when, unique
from tasks.records.types import APPROVAL, QUALITY_ASSESSMENT, REJECTION, REPROCESSING, StepRecord

_DECISIONS = (APPROVAL, REJECTION)


@dataclass
class MasterFacts:
    """One master as the review pages show it."""

    uuid: str
    path: str
    sha256: str
    width: int | None
    height: int | None
    created_at: str
    recipe_name: str | None
    recipe_hash: str | None
    derivation_key: str | None
    plan_reasons: list[str]
    run_uuid: str | None
    item_uuid: str
    identifier: str
    original: dict[str, Any]  # uuid, path, sha256, width, height
    access: dict[str, Any] | None = None  # uuid, path, sha256
    review: dict[str, Any] | None = None  # the review sheet: uuid, path, sha256
    qa: dict[str, Any] | None = None  # the qa step's parameters: verdict, reasons, findings
    guard: dict[str, Any] | None = None  # fidelity guard: outcome, detail, parameters
    decision: dict[str, Any] | None = None  # the latest: decision, by, when, comment
    requests: list[dict[str, Any]] = field(default_factory=list)  # reprocessing, oldest first
    superseded_by: str | None = None  # uuid of the newest later master of the item

    @property
    def verdict(self) -> str | None:
        return (self.qa or {}).get("verdict")

    @property
    def guard_flagged(self) -> bool:
        return bool(self.guard and self.guard["outcome"] != "success")

    @property
    def status(self) -> str:
        return self.decision["decision"] if self.decision else "undecided"


def masters(catalog: Catalog, *, run: str | None = None, preset: str | None = None,
            uuids: Sequence[str] | None = None) -> list[MasterFacts]:
    """Masters, newest first, optionally of one run (uuid), one recipe name, or given uuids."""
    query = (select(File.__table__, Item.uuid.label("item_uuid"), Item.identifier, Run.uuid.label("run_uuid"))
             .join(Item, Item.id == File.item_id).outerjoin(Run, Run.id == File.run_id)
             .where(File.role == "master").order_by(File.created_at.desc(), File.id.desc()))
    if run:
        query = query.where(Run.uuid == run)
    if preset:
        query = query.where(File.recipe_name == preset)
    with catalog.engine.connect() as conn:
        rows: Sequence[Any]
        if uuids is not None:
            rows = [r for part in chunked(unique(uuids)) for r in conn.execute(query.where(File.uuid.in_(part)))]
        else:
            rows = conn.execute(query).all()
        return _facts(conn, rows)


def master(catalog: Catalog, master_uuid: str) -> MasterFacts | None:
    found = masters(catalog, uuids=[master_uuid])
    return found[0] if found else None


def item_masters(catalog: Catalog, item_uuid: str) -> list[dict[str, Any]]:
    """Every master of an item, oldest first (its versions): uuid, created_at, recipe."""
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            select(File.uuid, File.created_at, File.recipe_name, File.recipe_hash).join(Item, Item.id == File.item_id)
            .where(Item.uuid == item_uuid, File.role == "master").order_by(File.created_at, File.id)).all()
    return [{"uuid": r.uuid, "created_at": format_when(r.created_at), "recipe_name": r.recipe_name,
             "recipe_hash": r.recipe_hash} for r in rows]


def file_facts(catalog: Catalog, file_uuid: str) -> dict[str, Any] | None:
    """A catalogued file by uuid (role, path, sha256), for previews: the URL names a uuid, never a path."""
    with catalog.engine.connect() as conn:
        row = conn.execute(select(File.uuid, File.role, File.path, File.sha256).where(File.uuid == file_uuid)
                           ).one_or_none()
    return None if row is None else dict(row._mapping)


def runs(catalog: Catalog) -> list[dict[str, Any]]:
    """Every run, newest first, as the catalog recorded it."""
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(Run.uuid, Run.started_at, Run.finished_at, Run.status, Run.scans_dir,
                                   Run.recipe_name, Run.recipe_hash, Run.counts, Run.timings)
                            .order_by(Run.started_at.desc(), Run.id.desc())).all()
    return [{**r._mapping, "started_at": format_when(r.started_at),
             "finished_at": format_when(r.finished_at) if r.finished_at else None} for r in rows]


def recipe_names(catalog: Catalog) -> list[str]:
    with catalog.engine.connect() as conn:
        return sorted(n for n in conn.execute(select(File.recipe_name).where(File.role == "master").distinct())
                      .scalars() if n)


def pending_requests(catalog: Catalog) -> list[tuple[MasterFacts, StepRecord]]:
    """Reprocessing requests no run has handled yet, oldest first, with the master each replaces."""
    with catalog.engine.connect() as conn:
        asked = conn.execute(
            select(File.uuid).join(EventFile, EventFile.file_id == File.id).join(Event, Event.id == EventFile.event_id)
            .where(Event.type == REPROCESSING, Event.step == "request").distinct()).scalars().all()
    pending = [(m, r) for m in masters(catalog, uuids=asked) for r in m.requests if r["status"] == "queued"]
    pending.sort(key=lambda pair: (pair[1]["when"], pair[1]["uuid"]))
    with catalog.engine.connect() as conn:
        ids = dict(conn.execute(select(Event.uuid, Event.id).where(
            Event.uuid.in_([r["uuid"] for _, r in pending]))).tuples().all()) if pending else {}
        steps = load_steps(conn, ids.values())
    by_uuid = {s.event_uuid: s for s in steps.values()}
    return [(m, by_uuid[r["uuid"]]) for m, r in pending]


# --- gathering ---------------------------------------------------------------------------------------

def _facts(conn: Connection, rows: Sequence[Any]) -> list[MasterFacts]:
    if not rows:
        return []
    item_ids = unique(r.item_id for r in rows)
    files: list[Any] = []
    events: list[Any] = []
    for part in chunked(item_ids):
        files.extend(conn.execute(select(File.id, File.uuid, File.role, File.path, File.sha256, File.width,
                                         File.height, File.derivation_key, File.item_id, File.created_at)
                                  .where(File.item_id.in_(part))))
        events.extend(conn.execute(
            select(Event.id, Event.uuid, Event.type, Event.step, Event.occurred_at, Event.outcome, Event.detail,
                   Event.parameters, Event.run_id, Event.item_id)
            .where(Event.item_id.in_(part), Event.type.in_((QUALITY_ASSESSMENT, *_DECISIONS, REPROCESSING)))))
    by_id = {f.id: f for f in files}
    derived = {(f.role, f.derivation_key): f for f in files if f.derivation_key}
    masters_of_item: dict[int, list[Any]] = defaultdict(list)
    for f in files:
        if f.role == "master":
            masters_of_item[f.item_id].append(f)
    links: dict[int, list[int]] = defaultdict(list)  # event id → file ids it names as input
    for part in chunked([e.id for e in events if e.type != QUALITY_ASSESSMENT]):
        for event_id, file_id in conn.execute(select(EventFile.event_id, EventFile.file_id).where(
                EventFile.event_id.in_(part), EventFile.role == "input")):
            links[event_id].append(file_id)
    events.sort(key=lambda e: (e.occurred_at, e.id))
    return [_one(r, by_id, derived, masters_of_item, events, links) for r in rows]


def _one(r: Any, by_id: dict[int, Any], derived: dict[tuple[str, str], Any], masters_of_item: dict[int, list[Any]],
         events: list[Any], links: dict[int, list[int]]) -> MasterFacts:
    original = by_id.get(r.source_file_id)
    facts = MasterFacts(
        uuid=r.uuid, path=r.path, sha256=r.sha256, width=r.width, height=r.height,
        created_at=format_when(r.created_at), recipe_name=r.recipe_name, recipe_hash=r.recipe_hash,
        derivation_key=r.derivation_key, plan_reasons=list(r.plan_reasons or []), run_uuid=r.run_uuid,
        item_uuid=r.item_uuid, identifier=r.identifier,
        original=_file(original) if original is not None else {},
    )
    for role in ("access", "review"):
        f = derived.get((role, r.derivation_key))
        setattr(facts, role, _file(f) if f is not None else None)
    done: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.item_id != r.item_id:
            continue
        params = dict(e.parameters or {})
        if e.type == QUALITY_ASSESSMENT:
            if params.get("derivation_key") != r.derivation_key or (r.run_id is not None and e.run_id != r.run_id):
                continue
            if e.step == "qa":
                facts.qa = params
            elif e.step == "fidelity-guard":
                facts.guard = {"outcome": e.outcome, "detail": e.detail, "parameters": params}
        elif r.id in links.get(e.id, ()):
            entry = {"uuid": e.uuid, "when": format_when(e.occurred_at), "outcome": e.outcome, "detail": e.detail,
                     **params}
            if e.type in _DECISIONS:
                facts.decision = entry  # events are in time order: the last one stands
            elif e.step == "request":
                facts.requests.append(entry)
            elif e.step == "done":
                done[params.get("request", "")] = entry
    for request in facts.requests:
        if request["uuid"] in done:
            request["status"] = done[request["uuid"]]["status"]
            request["result"] = done[request["uuid"]]
    later = [m for m in masters_of_item[r.item_id] if (m.created_at, m.id) > (r.created_at, r.id)]
    if later:
        facts.superseded_by = max(later, key=lambda m: (m.created_at, m.id)).uuid
    return facts


def _file(f: Any) -> dict[str, Any]:
    return {"uuid": f.uuid, "path": f.path, "sha256": f.sha256, "width": f.width, "height": f.height}
