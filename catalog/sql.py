"""Small SQL helpers shared by the repository modules (dialect-aware insert-or-ignore, chunking,
event times, the catalog's natural keys)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from tasks.records.keys import stable_uuid
from tasks.records.types import AgentInfo

T = TypeVar("T")

# Well under SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 500

WHEN_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # tasks.records.types.utc_now


def chunked(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _insert_ignore_stmt(conn: Connection, table: Table) -> Any:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"insert-or-ignore is not implemented for {dialect}")  # make_engine refuses others


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: a row that collides with any unique key is skipped.

    Every unique key is an arbiter, so a retried or concurrent writer never raises
    IntegrityError; callers re-select by their natural key to learn which row is stored.
    """
    if rows:
        conn.execute(_insert_ignore_stmt(conn, table), rows[0] if len(rows) == 1 else rows)


def insert_ignore_one(conn: Connection, table: Table, row: dict[str, Any]) -> int | None:
    """Insert-or-ignore one row → its new id, or None when an equal row was already stored.

    RETURNING, not rowcount: SQLAlchemy makes a PostgreSQL INSERT return its key, and such a
    statement's rowcount reads -1."""
    stmt = _insert_ignore_stmt(conn, table).returning(table.c.id)
    return conn.execute(stmt, row).scalar_one_or_none()


# Natural keys: the same content or derivation always maps to the same row.

def original_key(sha256: str) -> str:
    return f"original/{sha256}"


def derived_key(role: str, derivation_key: str) -> str:
    return f"{role}/{derivation_key}"


def item_uuid(sha256: str) -> str:
    """One Item per distinct content: deterministic, so concurrent ingests agree."""
    return stable_uuid("item", sha256)


def original_uuid(sha256: str) -> str:
    return stable_uuid("original", sha256)


def agent_key(agent: AgentInfo) -> str:
    """sha256 of the canonical identity (a JSON list: no separator can be ambiguous).

    Details join the identity only when there are some: an agent without details keeps the key
    it had before details existed (no duplicate rows in an older catalog), and two agents that
    differ only in details (another commit, another GPU driver) are two rows, so the catalog
    gives back exactly the agent each event recorded."""
    identity: list[Any] = [agent.kind, agent.name, agent.version or "", agent.architecture or "",
                           agent.weights_sha256 or ""]
    if agent.details:
        identity.append(dict(sorted(agent.details.items())))
    return hashlib.sha256(json.dumps(identity, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


# Event times: StepRecord.when is ISO 8601 UTC text; the catalog stores an aware datetime.

def parse_when(when: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(when)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event time {when!r} is not ISO 8601 (expected e.g. 2026-11-21T22:05:30Z)") from exc
    if value.tzinfo is None:
        raise ValueError(f"event time {when!r} has no time zone (expected e.g. 2026-11-21T22:05:30Z)")
    return value.astimezone(dt.UTC)


def format_when(value: dt.datetime) -> str:
    value = value.astimezone(dt.UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime(WHEN_FORMAT)


def strict_json(value: Any) -> str:
    """JSON for the database: NaN/Infinity refused everywhere (PostgreSQL's json rejects them,
    SQLite would store them), so both databases accept and return the same values."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def unique(values: Iterable[T]) -> list[T]:
    """Distinct values in first-seen order."""
    return list(dict.fromkeys(values))
