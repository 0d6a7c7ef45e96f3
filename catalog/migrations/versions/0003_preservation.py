"""Preservation: agent details, master pixel digests, the models that made each file, indexes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

- agents.details (JSON, NULL for none): git commit, model licence, CPU/GPU and driver. Existing
  rows keep their key (details are hashed into it only when present), so nothing is duplicated.
- files.pixel_sha256: a master's pixel digest (`reproduce` compares pixels, not bytes).
- file_models (agent, file, created_at): the models that made each master, backfilled here from
  the events that name the master's derivation key, so `find --model` is one index range.
- ix_agents_name, ix_files_role_created_at and ix_files_role_recipe_hash_created_at for `find`.
"""

import json
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("details", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("files", sa.Column("pixel_sha256", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_agents_name"), "agents", ["name"])
    op.create_index("ix_files_role_created_at", "files", ["role", "created_at"])
    op.create_index("ix_files_role_recipe_hash_created_at", "files", ["role", "recipe_hash", "created_at"])
    op.create_table(
        "file_models",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_file_models_agent_id_agents")),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_file_models_file_id_files")),
        sa.PrimaryKeyConstraint("agent_id", "file_id", name=op.f("pk_file_models")),
    )
    op.create_index(op.f("ix_file_models_file_id"), "file_models", ["file_id"])
    op.create_index("ix_file_models_agent_id_created_at", "file_models", ["agent_id", "created_at"])
    _backfill_file_models()


def _backfill_file_models() -> None:
    """Link each master to the model agents of the successful events of its derivation (same
    derivation key in the parameters, same run when the master names one)."""
    conn = op.get_bind()
    events = sa.table("events", sa.column("id"), sa.column("parameters", sa.JSON()), sa.column("run_id"),
                      sa.column("outcome"))
    links = sa.table("event_agents", sa.column("event_id"), sa.column("agent_id"))
    agents = sa.table("agents", sa.column("id"), sa.column("kind"))
    files = sa.table("files", sa.column("id"), sa.column("role"), sa.column("derivation_key"), sa.column("run_id"),
                     sa.column("created_at"))
    used: dict[str, set[tuple[int, int | None]]] = defaultdict(set)  # derivation key → (agent, run)
    rows = conn.execute(
        sa.select(events.c.parameters, events.c.run_id, links.c.agent_id)
        .select_from(events.join(links, links.c.event_id == events.c.id)
                     .join(agents, agents.c.id == links.c.agent_id))
        .where(agents.c.kind == "model", events.c.outcome != "failure")
    )
    for parameters, run_id, agent_id in rows:
        if isinstance(parameters, str):
            parameters = json.loads(parameters)
        key = (parameters or {}).get("derivation_key")
        if key:
            used[key].add((agent_id, run_id))
    if not used:
        return
    made: dict[tuple[int, int], object] = {}
    for file_id, key, run_id, created_at in conn.execute(
        sa.select(files.c.id, files.c.derivation_key, files.c.run_id, files.c.created_at)
        .where(files.c.role == "master", files.c.derivation_key.is_not(None))
    ):
        for agent_id, event_run in used.get(key, ()):
            if run_id is None or event_run == run_id:
                made[(agent_id, file_id)] = created_at
    table = sa.table("file_models", sa.column("agent_id"), sa.column("file_id"), sa.column("created_at"))
    rows_out = [{"agent_id": a, "file_id": f, "created_at": t} for (a, f), t in sorted(made.items())]
    for start in range(0, len(rows_out), 500):
        conn.execute(table.insert(), rows_out[start:start + 500])


def downgrade() -> None:
    op.drop_index("ix_file_models_agent_id_created_at", table_name="file_models")
    op.drop_index(op.f("ix_file_models_file_id"), table_name="file_models")
    op.drop_table("file_models")
    op.drop_index("ix_files_role_recipe_hash_created_at", table_name="files")
    op.drop_index("ix_files_role_created_at", table_name="files")
    op.drop_index(op.f("ix_agents_name"), table_name="agents")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("pixel_sha256")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("details")
