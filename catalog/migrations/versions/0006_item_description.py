"""items.description: the cataloguer's description of the object a scan shows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

One row of the item spreadsheet (`restorium run --metadata items.csv`): identifier, title, date,
creator, rights, physical size and further Dublin Core fields, as JSON
(tasks.records.item_metadata.ItemMetadata.to_dict()). NULL: no sheet named the item.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both databases (SQLite >= 3.35 drops columns itself): a batch copy of
# `items` would have to drop a table that files and events reference.
def upgrade() -> None:
    op.add_column("items", sa.Column("description", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    op.drop_column("items", "description")
