"""Directe wijziging: the record history names the certificate that proved a direct change

record_changes is copied by the batch operation on SQLite; it has no triggers to lose.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('record_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('certificate_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_record_changes_certificate_id_certificates'), 'certificates',
                                    ['certificate_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('record_changes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_record_changes_certificate_id_certificates'), type_='foreignkey')
        batch_op.drop_column('certificate_id')
