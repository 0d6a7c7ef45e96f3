"""Review sheets are catalogued files: allow the role 'review'.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "role IN ('original', 'master', 'access')"
_AFTER = "role IN ('original', 'master', 'access', 'review')"


def _replace_check(condition: str) -> None:
    # Batch mode: SQLite cannot alter a constraint in place, so the table is copied.
    with op.batch_alter_table("files", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_files_role"), type_="check")
        batch.create_check_constraint(op.f("ck_files_role"), condition)


def upgrade() -> None:
    _replace_check(_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM files WHERE role = 'review'")  # nothing may keep the new role
    _replace_check(_BEFORE)
