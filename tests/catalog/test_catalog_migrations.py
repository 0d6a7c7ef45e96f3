"""The migrations create exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import main as alembic_main
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select, text

from catalog import Catalog, CatalogError
from catalog.db import alembic_config, make_engine, normalise_url, upgrade
from catalog.schema import Base, Item

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "catalog" / "alembic.ini"


def _diff(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrated_schema_equals_metadata(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        assert _diff(engine) == []
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
        upgrade(engine)  # already at head: nothing to do, nothing raised
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == _head()
    finally:
        engine.dispose()


def test_command_line_migrates_the_url_given(db_url: str) -> None:
    alembic_main(["-c", str(ALEMBIC_INI), "-x", f"url={db_url}", "upgrade", "head"])
    engine = make_engine(db_url)
    try:
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_times_come_back_aware_in_utc(catalog: Catalog) -> None:
    local = dt.datetime(2026, 11, 21, 23, 5, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with catalog.engine.begin() as conn:
        conn.execute(insert(Item).values(uuid="u" * 36, identifier="x", created_at=local))
        stored = conn.execute(select(Item.created_at)).scalar_one()
    assert stored == local and stored.tzinfo == dt.UTC and stored.hour == 22


def test_naive_times_are_refused(catalog: Catalog) -> None:
    with pytest.raises(Exception, match="time zone"), catalog.engine.begin() as conn:
        conn.execute(insert(Item).values(uuid="u" * 36, identifier="x", created_at=dt.datetime(2026, 1, 1)))


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "catalog.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert path.is_file()
    finally:
        engine.dispose()


def test_urls_are_normalised() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(CatalogError, match="unsupported"):
        normalise_url("mysql://u@h/db")
    with pytest.raises(CatalogError, match="not a database URL"):
        normalise_url("no url at all")


def test_review_role_migration_keeps_data_and_downgrades(db_url: str) -> None:
    """0001 → 0002 keeps existing rows and admits review sheets; downgrading removes them again."""
    from alembic import command

    from catalog.db import write_transaction
    from catalog.schema import File

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        row = {"uuid": "u-item", "identifier": "scan", "created_at": dt.datetime.now(dt.UTC)}
        with write_transaction(engine) as conn:
            item_id = conn.execute(insert(Item).values(**row).returning(Item.id)).scalar_one()
        upgrade(engine)
        review = {"uuid": "u-review", "key": "review/k", "item_id": item_id, "role": "review", "path": "/r.png",
                  "sha256": "0" * 64, "size": 1, "format": "PNG", "width": 1, "height": 1, "channels": 3,
                  "bit_depth": 8, "has_icc": False, "created_at": dt.datetime.now(dt.UTC)}
        with write_transaction(engine) as conn:
            conn.execute(insert(File).values(**review))
        with engine.connect() as conn:
            assert conn.execute(select(Item.identifier)).scalar_one() == "scan"
            assert conn.execute(select(File.role)).scalar_one() == "review"
        with write_transaction(engine) as conn:
            command.downgrade(alembic_config(conn), "0001")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM files")).scalar_one() == 0
            assert conn.execute(select(Item.identifier)).scalar_one() == "scan"
    finally:
        engine.dispose()
