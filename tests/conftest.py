"""Shared fixtures: where the real weights and the real test images are.

The weights and images live beside the project in ../shared (never copied in). A test that
needs them fails loudly when they are missing rather than skipping: CI always has them.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def free_port():
    """A function giving a TCP port free on loopback now (for servers the tests start)."""
    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    assert path.is_dir(), f"test images expected in {path} (../shared/data beside the project)"
    return path


@pytest.fixture(scope="session")
def shared_models() -> Path:
    path = Path(os.environ.get("RESTORIUM_MODELS_DIR") or SHARED / "models")
    assert (path / "realesr-general-x4v3.pth").is_file(), (
        f"real weights expected in {path}: set RESTORIUM_MODELS_DIR or keep ../shared/models beside the project"
    )
    return path


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server on loopback, dropped afterwards.

    Fails (never skips) when the server is unreachable: CI has it.
    """
    name = f"restorium_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is unreachable ({exc}); the postgres tests need it")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:  # users close their catalogs (disposing engines) first; FORCE ends any straggler
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
