"""The catalog's tables as SQLAlchemy 2 typed models, portable between SQLite and PostgreSQL.

PREMIS in spirit: Items (intellectual objects) have Files (original, master, access copy);
Events (one per step) link input and output Files and the Agents that performed them; a Run is
one flow run over a batch. Events are append-only: nothing in the code updates or deletes them.

Migrations (catalog/migrations) must create exactly this metadata; a test compares them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints: Alembic needs names to alter them later (and SQLite batch mode to copy them).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

FILE_ROLES = ("original", "master", "access", "review", "iiif")
RUN_STATUSES = ("running", "finished", "failed", "stopped")
OUTCOMES = ("success", "warning", "failure")
LINK_ROLES = ("input", "output")
ENTRY_OUTCOMES = ("mastered", "unchanged", "failed", "skipped")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime, always stored and returned in UTC.

    SQLite has no time zones (it would hand back naive values) and PostgreSQL returns the
    session's zone; normalising here keeps both databases and the XMP in agreement.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: catalog times must carry a time zone")
        value = value.astimezone(dt.UTC)
        # SQLite stores the text as given: drop the offset so all rows sort the same way.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        if value.tzinfo is dt.UTC:  # already (PostgreSQL sessions are set to UTC): no conversion
            return value
        return value.astimezone(dt.UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    # Each model maps one Table (SQLAlchemy types __table__ as any FromClause, e.g. a subquery).
    __table__: ClassVar[Table]
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # none_as_null: a Python None is SQL NULL, not the JSON text 'null'.
    type_annotation_map = {dict[str, Any]: JSON(none_as_null=True), list[Any]: JSON(none_as_null=True)}


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    identifier: Mapped[str] = mapped_column(String(512))  # the scan's file stem; not unique
    title: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The item spreadsheet's row (tasks.records.item_metadata.ItemMetadata.to_dict()); NULL: none.
    description: Mapped[dict[str, Any] | None]


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    scans_dir: Mapped[str] = mapped_column(Text)
    recipe_name: Mapped[str] = mapped_column(String(255))
    recipe_hash: Mapped[str] = mapped_column(String(64))
    recipe: Mapped[dict[str, Any]]
    settings: Mapped[dict[str, Any]]
    counts: Mapped[dict[str, Any] | None]
    timings: Mapped[dict[str, Any] | None]
    software_version: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))


class RunEntry(Base):
    """Every file a run found under its folder and what became of it: mastered, unchanged, or
    failed/skipped with a reason. The ledger behind "every file is accounted for": a file with
    no content identity (unreadable, a symlink loop, not an image) has no Item or File row, so
    this is where the catalog remembers it."""

    __tablename__ = "run_entries"
    __table_args__ = (CheckConstraint(_in("outcome", ENTRY_OUTCOMES), name="outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    path: Mapped[str] = mapped_column(Text)  # as found under the run's folder
    outcome: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(32))  # a failure's kind (tasks.records.failures)
    reason: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)  # NULL: never read


class File(Base):
    __tablename__ = "files"
    __table_args__ = (
        CheckConstraint(_in("role", FILE_ROLES), name="role"),
        # `find`: masters by date, and by recipe hash and date (most selective first).
        Index("ix_files_role_created_at", "role", "created_at"),
        Index("ix_files_role_recipe_hash_created_at", "role", "recipe_hash", "created_at"),
        Index("ix_files_source_file_id", "source_file_id"),  # masters of an original (run --only-new)
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    # "original/<sha256>", "master/<derivation_key>", "access/<derivation_key>": the
    # idempotency key that makes a retried shard or a re-run insert nothing new.
    key: Mapped[str] = mapped_column(String(128), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)  # absolute
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)  # scans over 2 GB exist
    # Technical metadata: NULL for an original whose header could not be read.
    format: Mapped[str | None] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int | None] = mapped_column(Integer)
    bit_depth: Mapped[int | None] = mapped_column(Integer)
    has_icc: Mapped[bool | None] = mapped_column(Boolean)
    ppi: Mapped[float | None] = mapped_column(Float)
    orientation: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Derived files only (master, access): how they were made.
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    source_file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id"))
    derivation_key: Mapped[str | None] = mapped_column(String(64), index=True)
    recipe_name: Mapped[str | None] = mapped_column(String(255))
    recipe_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    resolved_recipe: Mapped[dict[str, Any] | None]
    plan_reasons: Mapped[list[Any] | None]
    # Masters: sha256 of the decoded pixels (tasks.files.digest), the identity `reproduce` compares.
    pixel_sha256: Mapped[str | None] = mapped_column(String(64))


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # sha256 of the canonical identity; the parts are '' rather than NULL so that two equal
    # agents always collide on this key (PostgreSQL treats NULLs as distinct).
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255), index=True)  # `find --model`
    version: Mapped[str] = mapped_column(String(128), default="")
    architecture: Mapped[str] = mapped_column(String(255), default="")
    weights_sha256: Mapped[str] = mapped_column(String(64), default="")
    # AgentInfo.details (git commit, licence, CPU/GPU and driver ...); NULL for none. Part of the
    # key only when present, so rows stored before this column keep their key.
    details: Mapped[dict[str, Any] | None]


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # StepRecord.event_uuid, deterministic: recording the same step twice is a no-op.
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    step: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    parameters: Mapped[dict[str, Any]]
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)


class EventFile(Base):
    __tablename__ = "event_files"
    __table_args__ = (CheckConstraint(_in("role", LINK_ROLES), name="role"),)

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(8), primary_key=True)


class FileModel(Base):
    """Which model agents made a master: written with the master, so `find --model` needs no walk
    through events. The master's creation time is repeated here so that "masters of this model
    since DATE, newest first" is one range of the (agent, created_at) index."""

    __tablename__ = "file_models"
    __table_args__ = (Index("ix_file_models_agent_id_created_at", "agent_id", "created_at"),)

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"), primary_key=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # = files.created_at of the master


class EventAgent(Base):
    __tablename__ = "event_agents"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)  # the agents' order in the StepRecord


TABLES = tuple(Base.metadata.sorted_tables)
