"""Engines for the catalog database (SQLite or PostgreSQL) and migration on open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url

from catalog.sql import strict_json

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# Execution option marking a connection that will write: on SQLite its transaction takes the
# write lock up front (BEGIN IMMEDIATE). A deferred transaction that reads and then writes
# fails at once with "database is locked" when another writer committed in between (WAL
# snapshots cannot be upgraded); an immediate one waits its turn under the busy timeout.
WRITE_OPTION = "restorium_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Serialises concurrent migrations on PostgreSQL (two flows opening a fresh catalog).
_PG_MIGRATION_LOCK = 0x7265_7374_6F72  # "restor"


class CatalogError(RuntimeError):
    """The catalog cannot do what was asked (bad URL, unknown run, original never ingested...)."""


def redacted_url(url: str | URL) -> str:
    """The catalog URL as it may be recorded or shown: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


def normalise_url(url: str | URL) -> URL:
    """Parse a catalog URL; plain postgresql:// (and postgres://) URLs get the psycopg 3 driver."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise CatalogError(f"not a database URL: {url!r} ({exc})") from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise CatalogError(f"unsupported catalog database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for the catalog: SQLite with WAL, foreign keys and a busy timeout, or
    PostgreSQL through psycopg 3."""
    parsed = normalise_url(url)
    kwargs.setdefault("json_serializer", strict_json)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "options" not in parsed.query:
        # Sessions in UTC: psycopg then returns times in datetime.UTC itself, which UTCDateTime
        # passes through as they are (a named zone costs a conversion per value; `find` lists
        # thousands). What is stored does not change: timestamptz is absolute.
        kwargs.setdefault("connect_args", {}).setdefault("options", "-c timezone=UTC")
    return create_engine(parsed, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")  # readers never block the one writer
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed on success, rolled back on any exception."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for the packaged migrations, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the catalog to `revision` (the latest by default) in one transaction.

    SQLite alters a constraint by copying the table (Alembic batch mode); dropping the old copy
    would trip the foreign keys of every row that references it. So, as SQLite's documentation
    prescribes for such changes, foreign keys are off while migrating (it cannot be switched inside
    a transaction) and every reference is checked before the transaction commits."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(connection, on=False)
        try:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                command.upgrade(alembic_config(connection), revision)
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                    raise RuntimeError(f"migrating the catalog broke {len(broken)} references, e.g. {broken[0]}")
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """Outside any transaction, on the driver's connection (SQLAlchemy would begin one first)."""
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
