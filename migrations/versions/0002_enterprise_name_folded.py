"""Search enterprises by a case- and accent-folded name

Replaces the lower(name) expression index: lower() folds only ASCII on SQLite
and depends on the collation on PostgreSQL, so "Établissements" was not found
by "établissements".

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from access.validators import fold_for_search

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enterprises") as batch_op:
        batch_op.add_column(sa.Column("name_folded", sa.String(length=200), nullable=True))
    enterprises = sa.table("enterprises", sa.column("id", sa.Integer), sa.column("name", sa.String),
                           sa.column("name_folded", sa.String))
    bind = op.get_bind()
    for row in bind.execute(sa.select(enterprises.c.id, enterprises.c.name)).all():
        bind.execute(enterprises.update().where(enterprises.c.id == row.id)
                     .values(name_folded=fold_for_search(row.name)))
    op.drop_index("ix_enterprises_name_lower", table_name="enterprises")
    with op.batch_alter_table("enterprises") as batch_op:
        batch_op.alter_column("name_folded", existing_type=sa.String(length=200), nullable=False)
        batch_op.create_index("ix_enterprises_name_folded", ["name_folded"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enterprises") as batch_op:
        batch_op.drop_index("ix_enterprises_name_folded")
        batch_op.drop_column("name_folded")
    op.create_index("ix_enterprises_name_lower", "enterprises", [sa.text("lower(name)")])
