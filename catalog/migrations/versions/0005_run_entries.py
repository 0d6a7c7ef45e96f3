"""run_entries: every file a run found and what became of it (mastered, unchanged, failed, skipped).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Files that could not be read or were not scans (unreadable, symlink loops, text named .tif) have
no content identity and so no Item or File row; this ledger is where the catalog keeps them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.CheckConstraint("outcome IN ('mastered', 'unchanged', 'failed', 'skipped')",
                           name=op.f("ck_run_entries_outcome")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_entries_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_entries")),
    )
    op.create_index(op.f("ix_run_entries_run_id"), "run_entries", ["run_id"])
    op.create_index(op.f("ix_run_entries_sha256"), "run_entries", ["sha256"])


def downgrade() -> None:
    op.drop_index(op.f("ix_run_entries_sha256"), table_name="run_entries")
    op.drop_index(op.f("ix_run_entries_run_id"), table_name="run_entries")
    op.drop_table("run_entries")
