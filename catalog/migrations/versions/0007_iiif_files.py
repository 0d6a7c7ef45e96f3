"""IIIF derivatives are catalogued files: allow the role 'iiif'.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

A master's and its scan's IIIF level-0 tiles (RESTORIUM_IIIF_BASE_URL) are recorded as one file
each: the tile folder's manifest-sha256.txt, whose sha256 changes with any byte of any tile.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "role IN ('original', 'master', 'access', 'review')"
_AFTER = "role IN ('original', 'master', 'access', 'review', 'iiif')"


def _replace_check(condition: str) -> None:
    # Batch mode: SQLite cannot alter a constraint in place, so the table is copied (catalog.db.upgrade
    # turns foreign keys off meanwhile and checks every reference before committing).
    with op.batch_alter_table("files", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_files_role"), type_="check")
        batch.create_check_constraint(op.f("ck_files_role"), condition)


def upgrade() -> None:
    _replace_check(_AFTER)


def downgrade() -> None:
    for table in ("event_files", "file_models"):
        op.execute(f"DELETE FROM {table} WHERE file_id IN (SELECT id FROM files WHERE role = 'iiif')")
    op.execute("DELETE FROM files WHERE role = 'iiif'")  # nothing may keep the new role
    _replace_check(_BEFORE)
