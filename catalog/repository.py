"""The catalog's repository API: the only way the rest of restorium reads or writes the catalog.

Writes are idempotent by natural keys (original/<sha256>, master/<derivation_key>, event uuid,
agent identity): a retried shard (Ray may report a failure for work that completed), a re-run
batch or two writers racing add no rows and raise nothing, so running the same batch twice
changes nothing. Each write method is one transaction; the driver calls them, one per shard,
and Ray workers never open the catalog.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.orm import aliased

from catalog import items, provenance
from catalog.db import CatalogError, make_engine, upgrade, write_transaction
from catalog.events import StepWrite, check_step, load_steps, record_steps, upsert_agents
from catalog.schema import (
    ENTRY_OUTCOMES,
    RUN_STATUSES,
    TABLES,
    Event,
    EventFile,
    File,
    FileModel,
    Item,
    Run,
    RunEntry,
    utcnow,
)
from catalog.sql import (
    agent_key,
    chunked,
    derived_key,
    insert_ignore,
    insert_ignore_one,
    item_uuid,
    original_key,
    original_uuid,
    unique,
)
from tasks.records.item_record import ItemRecord
from tasks.records.types import (
    DIGEST,
    INGESTION,
    VALIDATION,
    AgentInfo,
    AuditRecord,
    OriginalFacts,
    ScanOutcome,
    StepRecord,
    WrittenFile,
)

INGEST_TYPES = (INGESTION, DIGEST)


@dataclass(frozen=True)
class IngestedOriginal:
    """An original as the catalog knows it after record_ingest."""

    item_uuid: str
    item_identifier: str
    original_uuid: str
    path: str  # the catalogued path: where this content was first seen
    is_new: bool  # inserted by this call
    steps: list[StepRecord] = field(default_factory=list)  # its stored ingestion + digest events


@dataclass(frozen=True)
class MasterInfo:
    """A master already made for a derivation key (its work can be skipped)."""

    uuid: str
    path: str
    sha256: str
    access_path: str | None


class Catalog:
    """Provenance catalog on SQLite or PostgreSQL. Thread-safe: each call uses its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Catalog:
        """Connect and bring the schema to the latest migration."""
        engine = make_engine(url)
        try:
            if migrate:
                upgrade(engine)
        except Exception:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Runs

    def start_run(self, *, run_uuid: str, scans_dir: str, recipe_name: str, recipe_hash: str,
                  recipe: dict[str, Any], settings: dict[str, Any], software_version: str, host: str) -> None:
        """Record a run as running (a second call with the same uuid changes nothing)."""
        with write_transaction(self.engine) as conn:
            insert_ignore(conn, Run.__table__, [{
                "uuid": run_uuid, "started_at": utcnow(), "status": "running", "scans_dir": scans_dir,
                "recipe_name": recipe_name, "recipe_hash": recipe_hash, "recipe": recipe, "settings": settings,
                "counts": None, "timings": None, "software_version": software_version, "host": host,
            }])

    def finish_run(self, run_uuid: str, *, status: str, counts: dict[str, Any], timings: dict[str, Any]) -> None:
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"finish_run status {status!r}: expected finished, failed or stopped")
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                update(Run).where(Run.uuid == run_uuid)
                .values(status=status, finished_at=utcnow(), counts=counts, timings=timings)
            )
            if result.rowcount == 0:
                raise CatalogError(f"run {run_uuid} is not in the catalog (start_run was never called)")

    def record_run_entries(self, run_uuid: str, entries: Sequence[dict[str, Any]]) -> None:
        """The run's ledger: one row per file found (path, outcome, kind, reason, sha256)."""
        bad = {e["outcome"] for e in entries} - set(ENTRY_OUTCOMES)
        if bad:
            raise ValueError(f"run entry outcomes {sorted(bad)}: expected one of {ENTRY_OUTCOMES}")
        columns = ("path", "outcome", "kind", "reason", "sha256")
        with write_transaction(self.engine) as conn:
            run_id = _run_id(conn, run_uuid)
            if run_id is None:
                raise CatalogError(f"run {run_uuid} is not in the catalog (start_run was never called)")
            for start in range(0, len(entries), 1000):
                conn.execute(RunEntry.__table__.insert(), [
                    {"run_id": run_id, **{c: e.get(c) for c in columns}} for e in entries[start : start + 1000]
                ])

    def known_unread(self, entries: Sequence[tuple[str, str, str | None]]) -> set[tuple[str, str, str | None]]:
        """Which (path, outcome, reason) of files never read (no sha256) an earlier run's ledger
        already holds: a re-run that finds only those has nothing new to record."""
        paths = sorted({path for path, _, _ in entries})
        found: set[tuple[str, str, str | None]] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(paths), 500):
                found |= {tuple(row) for row in conn.execute(
                    select(RunEntry.path, RunEntry.outcome, RunEntry.reason)
                    .where(RunEntry.path.in_(paths[start : start + 500]), RunEntry.sha256.is_(None))
                )}
        return found & set(entries)

    def run_entries(self, run_uuid: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RunEntry.path, RunEntry.outcome, RunEntry.kind, RunEntry.reason, RunEntry.sha256)
                .join(Run, Run.id == RunEntry.run_id).where(Run.uuid == run_uuid).order_by(RunEntry.id)
            ).all()
        return [row._asdict() for row in rows]

    # Ingest

    def record_ingest(self, run_uuid: str | None,
                      entries: Sequence[tuple[OriginalFacts, str, list[StepRecord]]],
                      descriptions: Mapping[str, dict[str, Any]] | None = None) -> dict[str, IngestedOriginal]:
        """Catalog each new original (Item + File + its ingestion and digest events) in one
        transaction; content already catalogued (by sha256) inserts nothing. The first entry
        of a sha256 wins. Returns every entry's original by sha256.

        descriptions: sha256 → the item spreadsheet's row (ItemMetadata.to_dict()). The sheet is the
        cataloguer's latest word: it sets the item's description, title and (when it gives one)
        identifier, on new items and on items catalogued before."""
        first: dict[str, tuple[OriginalFacts, str, list[StepRecord]]] = {}
        for facts, identifier, steps in entries:
            first.setdefault(facts.sha256, (facts, identifier, steps))
        for facts, _identifier, steps in first.values():
            if not facts.sha256:
                raise ValueError(f"{facts.path}: no sha256; ingest must hash the file first")
            for step in steps:
                check_step(step)
        with write_transaction(self.engine) as conn:
            run_id = _run_id(conn, run_uuid)
            known = _file_ids(conn, [original_key(sha) for sha in first])
            writes: list[StepWrite] = []
            new: set[str] = set()
            for sha in sorted(first):  # a fixed order: concurrent writers take row locks alike
                if original_key(sha) in known:
                    continue
                facts, identifier, steps = first[sha]
                inserted = _insert_original(conn, facts, identifier)
                if inserted is None:
                    continue  # another writer catalogued it first: its events stand
                item_id, file_id = inserted
                new.add(sha)
                writes.extend(
                    StepWrite(step, item_id, run_id, [(file_id, "output" if step.type == INGESTION else "input")])
                    for step in steps
                )
            record_steps(conn, writes)
            for sha, description in (descriptions or {}).items():
                if sha in first:
                    _describe_item(conn, sha, description)
            return _originals(conn, list(first), new)

    def known_originals(self, sha256s: Sequence[str]) -> set[str]:
        """The contents already catalogued as originals (so a re-run can tell it has nothing to add)."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for part in chunked(unique(original_key(s) for s in sha256s)):
                found.update(conn.execute(select(File.sha256).where(File.key.in_(part))).scalars())
        return found

    def find_events(self, uuids: Sequence[str]) -> dict[str, str]:
        """Events already recorded, by uuid → their detail (e.g. a QA-gate rejection's reason)."""
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for part in chunked(unique(uuids)):
                found.update((u, d) for u, d in conn.execute(select(Event.uuid, Event.detail).where(Event.uuid.in_(part))))
        return found

    def find_invalid(self, sha256s: Sequence[str], software_version: str,
                     limits: dict[str, int] | None = None) -> dict[str, str]:
        """Originals a failed validation already marked invalid under this software version →
        the reason. A newer software version gets to try again, and a file refused for its size
        under other limits (the event's `limits`) too."""
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for part in chunked(unique(original_key(s) for s in sha256s)):
                rows = conn.execute(
                    select(File.sha256, Event.id, Event.detail, Event.parameters)
                    .join(EventFile, EventFile.file_id == File.id)
                    .join(Event, Event.id == EventFile.event_id)
                    .where(File.key.in_(part), Event.type == VALIDATION, Event.outcome == "failure")
                    .order_by(Event.occurred_at, Event.id)
                ).all()
                steps = load_steps(conn, [r.id for r in rows if "software_version" not in (r.parameters or {})])
                for sha, event_id, detail, parameters in rows:
                    if sha in found:
                        continue
                    if (parameters or {}).get("limits") not in (None, limits):
                        continue
                    version = (parameters or {}).get("software_version")
                    if version is None and event_id in steps:  # fall back to the software agent
                        version = next((a.version for a in steps[event_id].agents if a.kind == "software"), None)
                    if version == software_version:
                        found[sha] = detail
        return found

    # Masters

    def find_masters(self, derivation_keys: Sequence[str]) -> dict[str, MasterInfo]:
        """Masters already catalogued for these derivation keys (work to skip)."""
        keys = unique(derivation_keys)
        masters: dict[str, tuple[str, str, str]] = {}
        access: dict[str, str] = {}
        with self.engine.connect() as conn:
            for part in chunked(keys):
                wanted = [derived_key(role, k) for k in part for role in ("master", "access")]
                rows = conn.execute(
                    select(File.role, File.derivation_key, File.uuid, File.path, File.sha256)
                    .where(File.key.in_(wanted))
                )
                for role, key, uuid, path, sha256 in rows:
                    if role == "master":
                        masters[key] = (uuid, path, sha256)
                    else:
                        access[key] = path
        return {k: MasterInfo(*masters[k], access_path=access.get(k)) for k in keys if k in masters}

    def latest_masters(self, sha256s: Sequence[str]) -> dict[str, MasterInfo]:
        """The newest master made from each of these originals, by any recipe, weights or software
        (what `run --only-new` leaves alone)."""
        newest: dict[str, str] = {}  # original sha256 → derivation key of its newest master
        original, master = aliased(File), aliased(File)
        with self.engine.connect() as conn:
            for part in chunked(unique(original_key(s) for s in sha256s)):
                rows = conn.execute(
                    select(original.sha256, master.derivation_key)
                    .join(master, master.source_file_id == original.id)
                    .where(original.key.in_(part), master.role == "master")
                    .order_by(master.created_at, master.id)
                )
                newest.update((sha, key) for sha, key in rows)
        found = self.find_masters(list(newest.values()))
        return {sha: found[key] for sha, key in newest.items() if key in found}

    def record_outcomes(self, run_uuid: str | None, outcomes: Sequence[ScanOutcome]) -> None:
        """Record a shard's outcomes in one transaction: masters and access copies as Files,
        every step as an Event on the item (input: the original; the last step of a mastered
        scan also outputs the master and access copy). Re-recording adds nothing."""
        for outcome in outcomes:
            _check_outcome(outcome)
        with write_transaction(self.engine) as conn:
            run_id = _run_id(conn, run_uuid)
            originals = _original_rows(conn, [o.original_sha256 for o in outcomes])
            writes: list[StepWrite] = []
            made_with: list[tuple[int, AgentInfo]] = []  # (derived file id, model agent)
            for outcome in sorted(outcomes, key=lambda o: o.derivation_key):
                original = originals.get(outcome.original_sha256)
                if original is None:
                    raise CatalogError(
                        f"outcome {outcome.derivation_key}: original {outcome.original_sha256} was never "
                        "ingested (record_ingest must come first)"
                    )
                item_id, original_id = original
                outputs: list[int] = []
                if outcome.status == "mastered":
                    for written in (outcome.master, outcome.access, outcome.review):
                        if written is not None:
                            outputs.append(_insert_derived(conn, written, outcome, item_id, original_id, run_id))
                    for tiles in outcome.iiif:  # made from the master (outputs[0]) or from the scan
                        source = outputs[0] if tiles.of == "master" else original_id
                        outputs.append(_insert_derived(conn, tiles, outcome, item_id, source, run_id,
                                                       key=f"iiif/{tiles.sha256}"))
                for i, step in enumerate(outcome.steps):
                    files = [(original_id, "input")]
                    if i == len(outcome.steps) - 1:
                        files += [(file_id, "output") for file_id in outputs]
                    writes.append(StepWrite(step, item_id, run_id, files))
                if outcome.status == "mastered" and outputs:
                    models = unique(a for step in outcome.steps if step.outcome != "failure"
                                    for a in step.agents if a.kind == "model")
                    made_with.extend((outputs[0], model) for model in models)  # outputs[0]: the master
            record_steps(conn, writes)
            _link_models(conn, made_with)

    # Queries

    def audit(self, master_path: str | None = None, sha256: str | None = None) -> AuditRecord | None:
        """How a master was made (see catalog.provenance.audit)."""
        with self.engine.connect() as conn:
            return provenance.audit(conn, master_path=master_path, sha256=sha256)

    def run_recipe(self, run_uuid: str) -> dict[str, Any] | None:
        """The recipe a run was asked for (overrides included), its hash and settings."""
        with self.engine.connect() as conn:
            row = conn.execute(select(Run.recipe, Run.recipe_hash, Run.recipe_name, Run.settings,
                                      Run.software_version).where(Run.uuid == run_uuid)).one_or_none()
        return None if row is None else {"recipe": row.recipe, "hash": row.recipe_hash, "name": row.recipe_name,
                                         "settings": row.settings, "software_version": row.software_version}

    # Preservation: whole items, later events, fixity, search (see catalog.items)

    def item_record(self, item_uuid: str) -> ItemRecord | None:
        with self.engine.connect() as conn:
            return items.item_record(conn, item_uuid)

    def item_with_audits(self, item_uuid: str) -> tuple[ItemRecord, dict[str, dict[str, Any]]]:
        """An item's record and, by master uuid, how each of its masters was made (what exports
        hand over beside the files)."""
        record = self.item_record(item_uuid)
        if record is None:
            raise CatalogError(f"item {item_uuid}: not in the catalog")
        audits = {}
        for f in record.by_role("master"):
            audit = self.audit(master_path=f.path, sha256=f.sha256)
            if audit is not None:
                audits[f.uuid] = audit.to_dict()
        return record, audits

    def items_named(self, ref: str) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return items.items_named(conn, ref)

    def list_items(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return items.list_items(conn, limit)

    def run_items(self, run_ref: str) -> list[str] | None:
        with self.engine.connect() as conn:
            return items.run_items(conn, run_ref)

    def file_ref(self, *, path: str | None = None, sha256: str | None = None,
                 roles: Sequence[str] = ("master", "access", "review", "original")) -> items.FileRef | None:
        with self.engine.connect() as conn:
            return items.file_ref(conn, path=path, sha256=sha256, roles=tuple(roles))

    def record_file_events(self, entries: Sequence[tuple[str, StepRecord]]) -> int:
        """Append events about existing files (one transaction); returns how many were new."""
        for _, step in entries:
            check_step(step)
        with write_transaction(self.engine) as conn:
            return items.record_file_events(conn, entries)

    def later_events(self, file_uuid: str) -> list[StepRecord]:
        with self.engine.connect() as conn:
            return items.later_events(conn, file_uuid)

    def fixity_candidates(self, checked_before: dt.datetime | None = None) -> list[items.FileRef]:
        with self.engine.connect() as conn:
            return items.fixity_candidates(conn, checked_before)

    def search_masters(self, **filters: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return items.search_masters(conn, **filters)

    def count_rows(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}

    def run_summary(self, run_uuid: str) -> dict[str, Any]:
        """A run's status and what it recorded: masters made, items that failed, events by outcome."""
        with self.engine.connect() as conn:
            run = conn.execute(select(Run.__table__).where(Run.uuid == run_uuid)).one_or_none()
            if run is None:
                raise CatalogError(f"run {run_uuid} is not in the catalog")
            masters = conn.execute(
                select(func.count()).select_from(File).where(File.run_id == run.id, File.role == "master")
            ).scalar_one()
            failed = conn.execute(
                select(func.count(func.distinct(Event.item_id))).where(Event.run_id == run.id, Event.outcome == "failure")
            ).scalar_one()
            by_outcome = dict(conn.execute(
                select(Event.outcome, func.count()).where(Event.run_id == run.id).group_by(Event.outcome)
            ).tuples().all())
            entries = dict(conn.execute(
                select(RunEntry.outcome, func.count()).where(RunEntry.run_id == run.id).group_by(RunEntry.outcome)
            ).tuples().all())
        return {
            "uuid": run.uuid, "status": run.status, "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at), "counts": run.counts or {}, "timings": run.timings or {},
            "masters": masters, "failed_items": failed, "events": by_outcome, "entries": entries,
        }


# Helpers (module-private): each runs inside the caller's transaction.

def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _run_id(conn: Connection, run_uuid: str | None) -> int | None:
    if run_uuid is None:
        return None
    run_id = conn.execute(select(Run.id).where(Run.uuid == run_uuid)).scalar_one_or_none()
    if run_id is None:
        raise CatalogError(f"run {run_uuid} is not in the catalog (call start_run first)")
    return run_id


def _file_ids(conn: Connection, keys: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for part in chunked(keys):
        ids.update(conn.execute(select(File.key, File.id).where(File.key.in_(part))).tuples().all())
    return ids


def _original_rows(conn: Connection, sha256s: list[str]) -> dict[str, tuple[int, int]]:
    """sha256 → (item id, original file id)."""
    found: dict[str, tuple[int, int]] = {}
    for part in chunked(unique(original_key(s) for s in sha256s)):
        rows = conn.execute(select(File.sha256, File.item_id, File.id).where(File.key.in_(part)))
        found.update((sha, (item_id, file_id)) for sha, item_id, file_id in rows)
    return found


def _describe_item(conn: Connection, sha256: str, description: dict[str, Any]) -> None:
    values: dict[str, Any] = {"description": description, "title": description.get("title")}
    if description.get("identifier"):
        values["identifier"] = description["identifier"]
    conn.execute(update(Item).where(Item.uuid == item_uuid(sha256)).values(**values))


def _insert_original(conn: Connection, facts: OriginalFacts, identifier: str) -> tuple[int, int] | None:
    """Insert the Item and original File of new content → (item id, file id), or None when a
    concurrent writer inserted the File first."""
    uuid = item_uuid(facts.sha256)
    insert_ignore(conn, Item.__table__, [{"uuid": uuid, "identifier": identifier, "title": None}])
    item_id = conn.execute(select(Item.id).where(Item.uuid == uuid)).scalar_one()
    tech = facts.tech
    row = {
        "uuid": original_uuid(facts.sha256), "key": original_key(facts.sha256), "item_id": item_id,
        "role": "original", "path": facts.path, "sha256": facts.sha256, "size": facts.size,
        "format": tech.format if tech else None, "width": tech.width if tech else None,
        "height": tech.height if tech else None, "channels": tech.channels if tech else None,
        "bit_depth": tech.bit_depth if tech else None, "has_icc": tech.has_icc if tech else None,
        "ppi": tech.ppi if tech else None, "orientation": tech.orientation if tech else None,
    }
    file_id = insert_ignore_one(conn, File.__table__, row)
    return None if file_id is None else (item_id, file_id)


def _insert_derived(conn: Connection, written: WrittenFile, outcome: ScanOutcome,
                    item_id: int, original_id: int, run_id: int | None, key: str | None = None) -> int:
    """Insert a master or access File (or find the one already recorded) → its id. `key`: IIIF tiles
    are keyed by content (a scan's tiles serve every master made from it)."""
    key = key or derived_key(written.role, outcome.derivation_key)
    assert outcome.resolved_recipe is not None  # _check_outcome
    insert_ignore(conn, File.__table__, [{
        "uuid": written.uuid, "key": key, "item_id": item_id, "role": written.role, "path": written.path,
        "sha256": written.sha256, "size": written.size, "format": written.format, "width": written.width,
        "height": written.height, "channels": written.channels, "bit_depth": written.bit_depth,
        "has_icc": written.has_icc, "ppi": written.ppi, "orientation": None, "run_id": run_id,
        "source_file_id": original_id, "derivation_key": outcome.derivation_key,
        "recipe_name": outcome.resolved_recipe["name"],
        "recipe_hash": outcome.steps[0].parameters["recipe_hash"],
        "resolved_recipe": outcome.resolved_recipe, "plan_reasons": list(outcome.plan_reasons),
        "pixel_sha256": written.pixel_sha256 or None,
    }])
    file_id = conn.execute(select(File.id).where(File.key == key)).scalar_one_or_none()
    if file_id is None:  # the insert collided on the uuid, not on the key
        raise CatalogError(f"{written.role} {written.path}: uuid {written.uuid} already names another file")
    return file_id


def _link_models(conn: Connection, made_with: list[tuple[int, AgentInfo]]) -> None:
    """file_models rows: which model agents made each master (for `find --model`)."""
    if not made_with:
        return
    ids = upsert_agents(conn, (model for _, model in made_with))
    made_at: dict[int, Any] = {}
    for part in chunked(unique(file_id for file_id, _ in made_with)):
        made_at.update(conn.execute(select(File.id, File.created_at).where(File.id.in_(part))).tuples().all())
    insert_ignore(conn, FileModel.__table__, [
        {"agent_id": ids[agent_key(model)], "file_id": file_id, "created_at": made_at[file_id]}
        for file_id, model in unique(made_with)
    ])


def _check_outcome(outcome: ScanOutcome) -> None:
    """Refuse an outcome that breaks the driver's contract before anything is written."""
    what = f"outcome {outcome.derivation_key or '?'} ({outcome.original_sha256})"
    if not outcome.derivation_key:
        raise ValueError(f"{what}: no derivation_key")
    if not outcome.steps:
        raise ValueError(f"{what}: no steps to record (a failure needs its failed step and reason)")
    for step in outcome.steps:
        check_step(step)
    if outcome.status == "failed":
        return
    if outcome.status != "mastered":
        raise ValueError(f"{what}: status {outcome.status!r}; expected mastered or failed")
    if outcome.master is None or outcome.master.role != "master":
        raise ValueError(f"{what}: a mastered outcome needs its master WrittenFile (role 'master')")
    if outcome.access is not None and outcome.access.role != "access":
        raise ValueError(f"{what}: access copy has role {outcome.access.role!r}")
    if not outcome.resolved_recipe or "name" not in outcome.resolved_recipe:
        raise ValueError(f"{what}: resolved_recipe must carry the recipe's 'name'")
    if "recipe_hash" not in outcome.steps[0].parameters:
        raise ValueError(f"{what}: the first step's parameters must carry 'recipe_hash'")


def _originals(conn: Connection, sha256s: list[str], new: set[str]) -> dict[str, IngestedOriginal]:
    """The catalogued originals of these sha256s, each with its ingestion and digest steps."""
    rows: dict[str, Any] = {}
    links: dict[int, list[int]] = defaultdict(list)  # file id → its ingest event ids
    for part in chunked([original_key(s) for s in sha256s]):
        for row in conn.execute(
            select(File.id, File.uuid, File.sha256, File.path, Item.uuid.label("item_uuid"), Item.identifier)
            .join(Item, Item.id == File.item_id)
            .where(File.key.in_(part))
        ):
            rows[row.sha256] = row
    file_ids = [row.id for row in rows.values()]
    for part in chunked(file_ids):
        for file_id, event_id in conn.execute(
            select(EventFile.file_id, EventFile.event_id)
            .join(Event, Event.id == EventFile.event_id)
            .where(EventFile.file_id.in_(part), Event.type.in_(INGEST_TYPES))
        ):
            links[file_id].append(event_id)
    steps = load_steps(conn, [e for ids in links.values() for e in ids])
    order = {event_id: i for i, event_id in enumerate(steps)}
    result = {}
    for sha, row in rows.items():
        ids = sorted(unique(links[row.id]), key=order.__getitem__)
        result[sha] = IngestedOriginal(
            item_uuid=row.item_uuid, item_identifier=row.identifier, original_uuid=row.uuid, path=row.path,
            is_new=sha in new, steps=[steps[e] for e in ids],
        )
    return result
