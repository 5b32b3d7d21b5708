"""Security officers, saved filters, and the review screen's indexes on audit_records

The review screen reads audit_records newest first by keyset (occurred_at DESC, id DESC), for the whole
trail (the institution's officer) or for one enterprise (its officer). The indexes on occurred_at and
(enterprise_id, occurred_at) become (occurred_at, id) and (enterprise_id, occurred_at, id), so that a
page is read straight off an index on PostgreSQL too (SQLite appends the rowid to every index anyway).
Plain CREATE/DROP INDEX: audit_records is never copied (its append-only triggers stay).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 15:40:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_CURRENT = "ended_at IS NULL AND enterprise_id IS NOT NULL"
_CURRENT_INSTITUTION = "ended_at IS NULL AND enterprise_id IS NULL"


def upgrade() -> None:
    op.create_table('security_officers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('appointed_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['appointed_by_id'], ['persons.id'], name=op.f('fk_security_officers_appointed_by_id_persons')),
    sa.ForeignKeyConstraint(['ended_by_id'], ['persons.id'], name=op.f('fk_security_officers_ended_by_id_persons')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_security_officers_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_security_officers_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_security_officers'))
    )
    with op.batch_alter_table('security_officers', schema=None) as batch_op:
        batch_op.create_index('ix_security_officers_person', ['person_id'], unique=False)
        batch_op.create_index('uq_security_officers_current', ['enterprise_id', 'person_id'], unique=True,
                              postgresql_where=sa.text(_CURRENT), sqlite_where=sa.text(_CURRENT))
        batch_op.create_index('uq_security_officers_current_institution', ['person_id'], unique=True,
                              postgresql_where=sa.text(_CURRENT_INSTITUTION),
                              sqlite_where=sa.text(_CURRENT_INSTITUTION))

    op.create_table('saved_filters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_saved_filters_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_filters'))
    )
    with op.batch_alter_table('saved_filters', schema=None) as batch_op:
        batch_op.create_index('uq_saved_filters_person_kind_name', ['person_id', 'kind', 'name'], unique=True)

    op.create_index('ix_audit_records_occurred_id', 'audit_records', ['occurred_at', 'id'], unique=False)
    op.create_index('ix_audit_records_enterprise_occurred_id', 'audit_records',
                    ['enterprise_id', 'occurred_at', 'id'], unique=False)
    op.drop_index('ix_audit_records_occurred_at', table_name='audit_records')
    op.drop_index('ix_audit_records_enterprise_occurred', table_name='audit_records')


def downgrade() -> None:
    op.create_index('ix_audit_records_enterprise_occurred', 'audit_records', ['enterprise_id', 'occurred_at'],
                    unique=False)
    op.create_index('ix_audit_records_occurred_at', 'audit_records', ['occurred_at'], unique=False)
    op.drop_index('ix_audit_records_enterprise_occurred_id', table_name='audit_records')
    op.drop_index('ix_audit_records_occurred_id', table_name='audit_records')

    with op.batch_alter_table('saved_filters', schema=None) as batch_op:
        batch_op.drop_index('uq_saved_filters_person_kind_name')
    op.drop_table('saved_filters')

    with op.batch_alter_table('security_officers', schema=None) as batch_op:
        batch_op.drop_index('uq_security_officers_current_institution',
                            postgresql_where=sa.text(_CURRENT_INSTITUTION),
                            sqlite_where=sa.text(_CURRENT_INSTITUTION))
        batch_op.drop_index('uq_security_officers_current', postgresql_where=sa.text(_CURRENT),
                            sqlite_where=sa.text(_CURRENT))
        batch_op.drop_index('ix_security_officers_person')
    op.drop_table('security_officers')
