"""Audit: how a master was made, rebuilt from the catalog as a tasks.records.types.AuditRecord.

The same record can be read from the master's own XMP (tasks.files.xmp); the two must compare equal,
so steps come back exactly as recorded: same event uuids, times, parameters, agents in order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from catalog.events import load_steps
from catalog.schema import Event, EventFile, File, Item, Run
from catalog.sql import unique
from tasks.records.types import (
    APPROVAL,
    DIGEST,
    FIXITY_CHECK,
    INGESTION,
    REJECTION,
    REPRODUCTION,
    AgentInfo,
    AuditRecord,
    StepRecord,
)

# Events about a file once it exists: never part of how it was made (and an original may gather
# years of fixity checks, which the audit need not read).
LATER_TYPES = (FIXITY_CHECK, APPROVAL, REJECTION, REPRODUCTION)


def audit(conn: Connection, *, master_path: str | None = None, sha256: str | None = None) -> AuditRecord | None:
    """The AuditRecord of a master (or access copy: both carry the same provenance) found by
    its sha256, the content identity, or else by its catalogued path; None when the catalog
    knows neither. Found by path alone, the record holds the catalogued sha256: a caller that
    hashed the file can tell a changed file from an intact one."""
    if not sha256 and not master_path:
        raise ValueError("audit needs a master's sha256 or its path")
    derived = select(File.__table__).where(File.role.in_(("master", "access"))).order_by(File.id.desc())
    candidates = conn.execute(derived.where(File.sha256 == sha256)).all() if sha256 else []
    if not candidates and master_path:
        candidates = conn.execute(derived.where(File.path == master_path)).all()
    if not candidates:
        return None
    # Identical content catalogued twice: the one at the path asked about, else a master.
    master = min(candidates, key=lambda f: (f.path != master_path, f.role != "master"))

    original = conn.execute(
        select(File.id, File.uuid, File.path, File.sha256, Item.uuid.label("item_uuid"), Item.identifier)
        .join(Item, Item.id == File.item_id)
        .where(File.id == master.source_file_id)
    ).one_or_none()
    if original is None:  # source_file_id is set on every derived file: a broken catalog
        raise LookupError(f"{master.role} {master.uuid} has no source original in the catalog")
    run_uuid = None
    if master.run_id is not None:
        run_uuid = conn.execute(select(Run.uuid).where(Run.id == master.run_id)).scalar_one()

    steps = _ingest_steps(conn, original.id) + _derivation_steps(conn, master, original.id)
    software = next(
        (a for s in steps[::-1] for a in s.agents if a.kind == "software"), None
    )  # the latest software agent: the one that made the master, not an older ingest
    master_facts = {"uuid": master.uuid, "path": master.path, "sha256": master.sha256}
    if master.pixel_sha256:  # masters written since pixel digests exist (the XMP holds it too)
        master_facts["pixel_sha256"] = master.pixel_sha256
    return AuditRecord(
        master=master_facts,
        original={"uuid": original.uuid, "path": original.path, "sha256": original.sha256,
                  "item_uuid": original.item_uuid, "identifier": original.identifier},
        derivation_key=master.derivation_key,
        recipe={"name": master.recipe_name, "hash": master.recipe_hash,
                "resolved": master.resolved_recipe, "plan_reasons": list(master.plan_reasons or [])},
        run={"uuid": run_uuid},
        software={"name": software.name, "version": software.version} if software else {"name": "", "version": ""},
        models=_models(steps),
        steps=steps,
    )


def _ingest_steps(conn: Connection, original_id: int) -> list[StepRecord]:
    ids = conn.execute(
        select(Event.id).join(EventFile, EventFile.event_id == Event.id)
        .where(EventFile.file_id == original_id, Event.type.in_((INGESTION, DIGEST)))
    ).scalars()
    return list(load_steps(conn, ids).values())


def _derivation_steps(conn: Connection, master: Row[Any], original_id: int) -> list[StepRecord]:
    return list(load_steps(conn, derivation_event_ids(conn, master, original_id)).values())


def derivation_event_ids(conn: Connection, master: Row[Any], original_id: int) -> list[int]:
    """The events that made this file: the steps on its original that name its derivation key
    (the driver puts it in every step's parameters), recorded in the file's run, plus any event
    that output the file. Failed attempts (an error in an earlier run, or a validation failure)
    share the derivation key but did not make the file, so they are left out; so are events on
    the file after it was made (fixity checks, approvals), which name no derivation key."""
    rows = conn.execute(
        select(Event.id, Event.type, Event.outcome, Event.run_id, Event.parameters, EventFile.file_id, EventFile.role)
        .join(EventFile, EventFile.event_id == Event.id)
        .where(EventFile.file_id.in_((original_id, master.id)), Event.type.not_in(LATER_TYPES))
    ).all()
    ids = []
    for row in rows:
        if row.file_id == master.id and row.role == "output":
            ids.append(row.id)
        elif (row.file_id == original_id and row.type not in (INGESTION, DIGEST) and row.outcome != "failure"
              and (row.parameters or {}).get("derivation_key") == master.derivation_key
              and (master.run_id is None or row.run_id == master.run_id)):
            ids.append(row.id)
    return unique(ids)


def _models(steps: list[StepRecord]) -> list[AgentInfo]:
    """The distinct model agents, in order of first use."""
    return unique(a for s in steps for a in s.agents if a.kind == "model")
