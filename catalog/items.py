"""Item-level queries and later events: an item's whole record (for PREMIS and bags), resolving
what a user names, fixity candidates, events on existing files, and `find` over masters.

Runs inside the caller's connection; catalog.repository.Catalog exposes it.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, and_, any_, bindparam, exists, func, select
from sqlalchemy.dialects import postgresql

from catalog.events import StepWrite, load_steps, record_steps
from catalog.provenance import derivation_event_ids
from catalog.schema import Agent, Event, EventAgent, EventFile, File, FileModel, Item, Run
from catalog.sql import chunked, format_when, unique
from tasks.records.item_record import AgentFacts, EventFacts, FileFacts, ItemRecord
from tasks.records.keys import stable_uuid
from tasks.records.types import FIXITY_CHECK, StepRecord

_HEX = re.compile(r"^[0-9a-f]{1,64}$")


@dataclass(frozen=True)
class FileRef:
    """A catalogued file as fixity and the later-event commands need it."""

    uuid: str
    role: str
    path: str
    sha256: str
    size: int
    item_uuid: str
    item_identifier: str


def agent_uuid(key: str) -> str:
    return stable_uuid("agent", key)


def _iso(value: dt.datetime | None) -> str:
    return format_when(value) if value is not None else ""


# --- naming items ---------------------------------------------------------------------------

def items_named(conn: Connection, ref: str) -> list[tuple[str, str]]:
    """Items an item uuid or identifier names → [(uuid, identifier)] (identifiers are not unique)."""
    try:
        uuidlib.UUID(ref)
        rows = conn.execute(select(Item.uuid, Item.identifier).where(Item.uuid == ref)).all()
        if rows:
            return [tuple(r) for r in rows]
    except ValueError:
        pass
    return [tuple(r) for r in conn.execute(
        select(Item.uuid, Item.identifier).where(Item.identifier == ref).order_by(Item.id))]


def list_items(conn: Connection, limit: int | None = None) -> list[dict[str, Any]]:
    """Every item, newest first: identifier, title, scans (originals), masters, and the decisions
    (approvals, rejections) on its files."""
    from tasks.records.types import APPROVAL, REJECTION

    def count(role: str) -> Any:
        return (select(func.count(File.id)).where(File.item_id == Item.id, File.role == role)
                .correlate(Item).scalar_subquery())

    def decided(kind: str) -> Any:
        return (select(func.count(Event.id)).where(Event.item_id == Item.id, Event.type == kind)
                .correlate(Item).scalar_subquery())

    query = (select(Item.uuid, Item.identifier, Item.title, Item.created_at, count("original").label("scans"),
                    count("master").label("masters"), decided(APPROVAL).label("approvals"),
                    decided(REJECTION).label("rejections"))
             .order_by(Item.id.desc()).limit(limit))
    return [{"uuid": r.uuid, "identifier": r.identifier, "title": r.title, "created_at": _iso(r.created_at),
             "scans": r.scans, "masters": r.masters, "approvals": r.approvals, "rejections": r.rejections}
            for r in conn.execute(query)]


def run_items(conn: Connection, run_ref: str) -> list[str] | None:
    """The items a run touched (ingested, mastered or failed), oldest first; None when no run, or
    more than one, has this uuid or uuid prefix."""
    runs = conn.execute(select(Run.id).where(Run.uuid.startswith(run_ref, autoescape=True)).limit(2)).all()
    if len(runs) != 1:
        return None
    query = (select(Item.uuid).join(Event, Event.item_id == Item.id).where(Event.run_id == runs[0].id)
             .group_by(Item.id, Item.uuid).order_by(Item.id))
    return [row.uuid for row in conn.execute(query)]


def file_ref(conn: Connection, *, path: str | None = None, sha256: str | None = None,
             roles: Sequence[str] = ("master", "access", "review", "original")) -> FileRef | None:
    """A catalogued file by content (sha256) or else by path; the one at `path` wins a tie."""
    query = (select(File.uuid, File.role, File.path, File.sha256, File.size, Item.uuid.label("item_uuid"),
                    Item.identifier).join(Item, Item.id == File.item_id).where(File.role.in_(roles))
             .order_by(File.id.desc()))
    rows = conn.execute(query.where(File.sha256 == sha256)).all() if sha256 else []
    if not rows and path:
        rows = conn.execute(query.where(File.path == path)).all()
    if not rows:
        return None
    row = min(rows, key=lambda r: (r.path != path, roles.index(r.role)))
    return FileRef(row.uuid, row.role, row.path, row.sha256, row.size, row.item_uuid, row.identifier)


# --- the whole record of an item -------------------------------------------------------------

def item_record(conn: Connection, item_uuid: str) -> ItemRecord | None:
    item = conn.execute(select(Item.__table__).where(Item.uuid == item_uuid)).one_or_none()
    if item is None:
        return None
    files = conn.execute(select(File.__table__).where(File.item_id == item.id).order_by(File.id)).all()
    file_uuid = {f.id: f.uuid for f in files}
    runs = dict(conn.execute(select(Run.id, Run.uuid).where(Run.id.in_({f.run_id for f in files if f.run_id}))).tuples().all())
    event_rows = sorted(conn.execute(select(Event.__table__).where(Event.item_id == item.id)).all(),
                        key=lambda e: (e.occurred_at, e.id))
    event_ids = [e.id for e in event_rows]
    runs.update(conn.execute(select(Run.id, Run.uuid).where(
        Run.id.in_({e.run_id for e in event_rows if e.run_id}))).tuples().all())

    links: dict[int, list[tuple[str, str]]] = defaultdict(list)
    agent_links: dict[int, list[tuple[int, int]]] = defaultdict(list)
    agent_rows: dict[int, Any] = {}
    for part in chunked(event_ids):
        for event_id, file_id, role in conn.execute(
            select(EventFile.event_id, EventFile.file_id, EventFile.role).where(EventFile.event_id.in_(part))
        ):
            if file_id in file_uuid:
                links[event_id].append((file_uuid[file_id], role))
        for event_id, agent_id, position in conn.execute(
            select(EventAgent.event_id, EventAgent.agent_id, EventAgent.position).where(EventAgent.event_id.in_(part))
        ):
            agent_links[event_id].append((position, agent_id))
    wanted = unique(a for pairs in agent_links.values() for _, a in pairs)
    for part in chunked(wanted):
        agent_rows.update((a.id, a) for a in conn.execute(select(Agent.__table__).where(Agent.id.in_(part))))

    uuid_of_event = {e.id: e.uuid for e in event_rows}
    facts_files = []
    for f in files:
        made_by: list[str] = []
        if f.role != "original" and f.source_file_id is not None:
            made_by = [uuid_of_event[i] for i in derivation_event_ids(conn, f, f.source_file_id)
                       if i in uuid_of_event]
        facts_files.append(FileFacts(
            uuid=f.uuid, role=f.role, path=f.path, sha256=f.sha256, size=f.size, format=f.format,
            width=f.width, height=f.height, channels=f.channels, bit_depth=f.bit_depth, has_icc=f.has_icc,
            ppi=f.ppi, created_at=_iso(f.created_at), pixel_sha256=f.pixel_sha256,
            source_uuid=file_uuid.get(f.source_file_id) if f.source_file_id else None,
            derivation_key=f.derivation_key, recipe_name=f.recipe_name, recipe_hash=f.recipe_hash,
            run_uuid=runs.get(f.run_id), derivation_events=sorted(made_by, key=_event_order(event_rows)),
        ))
    events = [
        EventFacts(
            uuid=e.uuid, type=e.type, step=e.step, when=_iso(e.occurred_at), outcome=e.outcome, detail=e.detail,
            parameters=dict(e.parameters or {}),
            agents=[agent_uuid(agent_rows[a].key) for _, a in sorted(agent_links[e.id])],
            files=sorted(links[e.id], key=lambda link: (link[1] != "input", link[0])),
            run_uuid=runs.get(e.run_id),
        )
        for e in event_rows
    ]
    agents = [
        AgentFacts(uuid=agent_uuid(a.key), kind=a.kind, name=a.name, version=a.version,
                   architecture=a.architecture, weights_sha256=a.weights_sha256, details=dict(a.details or {}))
        for a in sorted(agent_rows.values(), key=lambda a: a.id)
    ]
    return ItemRecord(uuid=item.uuid, identifier=item.identifier, title=item.title,
                      created_at=_iso(item.created_at), files=facts_files, events=events, agents=agents,
                      metadata=item.description)


def _event_order(event_rows: Sequence[Any]) -> Any:
    order = {e.uuid: i for i, e in enumerate(event_rows)}
    return lambda u: order.get(u, len(order))


# --- events on files that already exist (fixity checks, approvals, reproductions) -------------

def record_file_events(conn: Connection, entries: Sequence[tuple[str, StepRecord]]) -> int:
    """Append one event per (file uuid, step), linked to that file as its input and to its item.
    Append-only like every event: a uuid already stored is left as it is."""
    uuids = unique(u for u, _ in entries)
    rows: dict[str, tuple[int, int]] = {}
    for part in chunked(uuids):
        rows.update((u, (fid, iid)) for u, fid, iid in conn.execute(
            select(File.uuid, File.id, File.item_id).where(File.uuid.in_(part))))
    missing = [u for u in uuids if u not in rows]
    if missing:
        raise LookupError(f"file {missing[0]} is not in the catalog")
    return record_steps(conn, [StepWrite(step, rows[u][1], None, [(rows[u][0], "input")]) for u, step in entries])


def later_events(conn: Connection, file_uuid: str) -> list[StepRecord]:
    """Events that name this file as input and are not part of its making (checks, decisions)."""
    from catalog.provenance import LATER_TYPES

    ids = conn.execute(
        select(Event.id).join(EventFile, EventFile.event_id == Event.id).join(File, File.id == EventFile.file_id)
        .where(File.uuid == file_uuid, Event.type.in_(LATER_TYPES))
    ).scalars()
    return list(load_steps(conn, ids).values())


def fixity_candidates(conn: Connection, checked_before: dt.datetime | None) -> list[FileRef]:
    """Every catalogued file, less those checked successfully since `checked_before` (None:
    every file). A file whose check failed since then is always included."""
    query = (select(File.uuid, File.role, File.path, File.sha256, File.size, Item.uuid.label("item_uuid"),
                    Item.identifier).join(Item, Item.id == File.item_id).order_by(File.id))
    if checked_before is not None:
        def recent(*outcome: Any) -> Any:
            return exists(select(EventFile.file_id).join(Event, Event.id == EventFile.event_id)
                          .where(EventFile.file_id == File.id, Event.type == FIXITY_CHECK,
                                 Event.occurred_at >= checked_before, *outcome))
        # Skipped: checked successfully in the window and never failed in it (a recent failure
        # is checked again until it is resolved).
        query = query.where(~(recent(Event.outcome == "success") & ~recent(Event.outcome != "success")))
    return [FileRef(*row) for row in conn.execute(query)]


# --- find: masters made with given settings ---------------------------------------------------

def search_masters(conn: Connection, *, model: str | None = None, weights: str | None = None,
                   recipe_hash: str | None = None, since: dt.datetime | None = None,
                   until: dt.datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Masters made with a model (by name and/or weights sha256 prefix), a recipe hash (or a
    prefix of one), in a time window; newest first.

    The query starts from the most selective index: a recipe hash drives through
    ix_files_role_recipe_hash_created_at (the model is then a per-row check on file_models'
    file index); a model alone drives through file_models' (agent, created_at) range; a window
    alone through ix_files_role_created_at."""
    columns = (File.id, File.uuid, File.path, File.sha256, File.created_at, File.recipe_name,
               File.recipe_hash, Item.uuid.label("item_uuid"), Item.identifier)
    # The model agents are few (one per model file ever used): read them once, match here.
    names = {i: (n, w) for i, n, w in conn.execute(
        select(Agent.id, Agent.name, Agent.weights_sha256).where(Agent.kind == "model")).tuples().all()}
    agent_ids: list[int] | None = None
    if model or weights:
        prefix = _hex_prefix(weights, "weights sha256") if weights else ""
        agent_ids = [i for i, (n, w) in names.items() if (not model or n == model) and w.startswith(prefix)]
        if not agent_ids:
            return []
    if agent_ids is not None and not recipe_hash:
        made = FileModel.created_at
        query = (select(*columns).select_from(FileModel).join(File, File.id == FileModel.file_id)
                 .join(Item, Item.id == File.item_id).where(FileModel.agent_id.in_(agent_ids)))
        query = _window(query, made, since, until).order_by(made.desc(), FileModel.file_id.desc())
    else:
        query = select(*columns).join(Item, Item.id == File.item_id).where(File.role == "master")
        if recipe_hash:
            query = query.where(_prefix(File.recipe_hash, recipe_hash, "recipe hash"))
        if agent_ids is not None:
            query = query.where(exists(select(FileModel.file_id).where(
                FileModel.file_id == File.id, FileModel.agent_id.in_(agent_ids))))
        query = _window(query, File.created_at, since, until).order_by(File.created_at.desc(), File.id.desc())
    query = query.limit(limit) if limit else query
    rows = unique(conn.execute(query).tuples().all())  # (one row per matching agent: a master once)
    models: dict[int, list[dict[str, str]]] = defaultdict(list)
    if rows:
        made_with = (select(FileModel.file_id, FileModel.agent_id)
                     .where(_among(conn, FileModel.file_id, [r[0] for r in rows], query))
                     .order_by(FileModel.file_id, FileModel.agent_id))
        for file_id, agent_id in conn.execute(made_with).tuples().all():
            name, sha = names[agent_id]
            models[file_id].append({"name": name, "weights_sha256": sha})
    return [
        {"uuid": uuid, "path": path, "sha256": sha256, "created_at": _iso_utc(created), "recipe_name": recipe_name,
         "recipe_hash": recipe_hash_, "item_uuid": item_uuid, "identifier": identifier,
         "models": models.get(file_id, [])}
        for file_id, uuid, path, sha256, created, recipe_name, recipe_hash_, item_uuid, identifier in rows
    ]


def _among(conn: Connection, column: Any, ids: list[int], query: Any) -> Any:
    """`column` in the files the query found, without a long list of bound ids (each costs
    compiling and parsing): PostgreSQL takes them as one array; SQLite re-runs the query as a
    subquery (PostgreSQL would answer that with a scan of the whole table)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam("found_ids", ids, type_=postgresql.ARRAY(Integer)))
    return column.in_(query.with_only_columns(File.id))


def _iso_utc(value: dt.datetime) -> str:
    """format_when's text for an aware UTC time, without strftime (find may list thousands)."""
    text = value.isoformat()
    return f"{text[:-6]}Z" if text.endswith("+00:00") else format_when(value)


def _window(query: Any, column: Any, since: dt.datetime | None, until: dt.datetime | None) -> Any:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


def _hex_prefix(value: str, what: str) -> str:
    value = value.lower()
    if not _HEX.match(value):
        raise ValueError(f"{what} {value!r} is not hexadecimal")
    return value


def _prefix(column: Any, value: str, what: str) -> Any:
    """Equality for a full sha256, a range for a prefix (a range, unlike LIKE, uses the index
    under any collation: hex digits sort alike in all of them)."""
    value = _hex_prefix(value, what)
    if len(value) == 64:
        return column == value
    return and_(column >= value, column < value + "g")
