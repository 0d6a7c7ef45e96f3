"""Events and agents: store StepRecords (append-only) and rebuild them exactly."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from catalog.schema import Agent, Event, EventAgent, EventFile
from catalog.sql import agent_key, chunked, format_when, insert_ignore, parse_when, strict_json, unique
from tasks.records.types import AgentInfo, StepRecord


@dataclass
class StepWrite:
    """One StepRecord to store, with the item it concerns and the files it read or wrote."""

    step: StepRecord
    item_id: int
    run_id: int | None
    files: list[tuple[int, str]] = field(default_factory=list)  # (file id, 'input' | 'output')


def check_step(step: StepRecord) -> None:
    """Refuse a malformed step before anything is written (clear message, nothing half-done)."""
    if not step.event_uuid:
        raise ValueError(f"step {step.step!r} ({step.type}) has no event_uuid")
    parse_when(step.when)
    if step.outcome not in ("success", "warning", "failure"):
        raise ValueError(f"step {step.event_uuid} has outcome {step.outcome!r}; expected success, warning or failure")
    try:
        strict_json(step.parameters)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"step {step.event_uuid} ({step.type}) has parameters that are not plain JSON: {exc}") from exc


def upsert_agents(conn: Connection, agents: Iterable[AgentInfo]) -> dict[str, int]:
    """Agent rows by identity key → id, inserting the ones not yet known."""
    by_key = {agent_key(a): a for a in agents}
    if not by_key:
        return {}
    keys = sorted(by_key)  # a fixed order: concurrent writers take row locks alike
    insert_ignore(conn, Agent.__table__, [
        {"key": k, "kind": by_key[k].kind, "name": by_key[k].name, "version": by_key[k].version or "",
         "architecture": by_key[k].architecture or "", "weights_sha256": by_key[k].weights_sha256 or "",
         "details": dict(by_key[k].details) or None}
        for k in keys
    ])
    ids: dict[str, int] = {}
    for part in chunked(keys):
        ids.update(conn.execute(select(Agent.key, Agent.id).where(Agent.key.in_(part))).tuples().all())
    return ids


def event_ids(conn: Connection, uuids: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for part in chunked(uuids):
        ids.update(conn.execute(select(Event.uuid, Event.id).where(Event.uuid.in_(part))).tuples().all())
    return ids


def record_steps(conn: Connection, writes: list[StepWrite]) -> int:
    """Store the steps as Events (in the given order, so ids follow it) with their file and
    agent links. A step whose event uuid is already stored is left untouched: events are
    append-only, and re-recording a retried shard adds nothing. Returns the events inserted."""
    first: dict[str, StepWrite] = {}
    for w in writes:
        first.setdefault(w.step.event_uuid, w)  # the same step twice in one call: the first wins
    writes = list(first.values())
    if not writes:
        return 0
    already = event_ids(conn, [w.step.event_uuid for w in writes])
    fresh = [w for w in writes if w.step.event_uuid not in already]
    if not fresh:
        return 0
    agent_ids = upsert_agents(conn, (a for w in fresh for a in w.step.agents))
    insert_ignore(conn, Event.__table__, [
        {"uuid": w.step.event_uuid, "type": w.step.type, "step": w.step.step,
         "occurred_at": parse_when(w.step.when), "outcome": w.step.outcome, "detail": w.step.detail or "",
         "parameters": w.step.parameters, "item_id": w.item_id, "run_id": w.run_id}
        for w in fresh
    ])
    ids = event_ids(conn, [w.step.event_uuid for w in fresh])
    file_links, agent_links = [], []
    for w in fresh:
        event_id = ids[w.step.event_uuid]
        for file_id, role in unique(w.files):
            file_links.append({"event_id": event_id, "file_id": file_id, "role": role})
        # The same agent twice in one step is kept once, at its first position.
        for position, key in enumerate(unique(agent_key(a) for a in w.step.agents)):
            agent_links.append({"event_id": event_id, "agent_id": agent_ids[key], "position": position})
    insert_ignore(conn, EventFile.__table__, file_links)
    insert_ignore(conn, EventAgent.__table__, agent_links)
    return len(fresh)


def load_steps(conn: Connection, ids: Iterable[int]) -> dict[int, StepRecord]:
    """StepRecords rebuilt from stored events, keyed by event id, in (occurred_at, id) order."""
    ids = unique(ids)
    rows: list[Any] = []
    agents: dict[int, list[AgentInfo]] = defaultdict(list)
    for part in chunked(ids):
        rows.extend(conn.execute(select(Event.__table__).where(Event.id.in_(part))))
        links = conn.execute(
            select(EventAgent.event_id, Agent.kind, Agent.name, Agent.version, Agent.architecture,
                   Agent.weights_sha256, Agent.details)
            .join(Agent, Agent.id == EventAgent.agent_id)
            .where(EventAgent.event_id.in_(part))
            .order_by(EventAgent.event_id, EventAgent.position)
        )
        for event_id, kind, name, version, architecture, weights, details in links:
            agents[event_id].append(AgentInfo(kind=kind, name=name, version=version, architecture=architecture,
                                              weights_sha256=weights, details=dict(details or {})))
    rows.sort(key=lambda row: (row.occurred_at, row.id))
    return {
        row.id: StepRecord(
            event_uuid=row.uuid, type=row.type, step=row.step, when=format_when(row.occurred_at),
            outcome=row.outcome, detail=row.detail, agents=agents.get(row.id, []),
            parameters=dict(row.parameters or {}),
        )
        for row in rows
    }
