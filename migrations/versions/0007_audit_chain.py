"""Tamper evidence: the audit hash chain, signed checkpoints, verification results

audit_records is not touched (no batch copy that would drop its triggers), and no foreign key points
at it: on PostgreSQL a referencing table would make TRUNCATE audit_records fail on the reference
before the append-only trigger speaks, and the retention purge (later) may remove expired records
while keeping their links, whose hashes carry the chain across them; verify reports a link whose
record is missing. The chain's links and the checkpoints are append-only like the records themselves:
database triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL). The verification results
are an ordinary log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:20:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ('audit_chain', 'audit_checkpoints')


def upgrade() -> None:
    op.create_table('audit_chain',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('record_hash', sa.String(length=64), nullable=False),
    sa.Column('chained_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_chain')),
    sa.UniqueConstraint('record_id', name=op.f('uq_audit_chain_record_id'))
    )
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq_from', sa.BigInteger(), nullable=False),
    sa.Column('seq_to', sa.BigInteger(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('merkle_root', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('seq_from >= 1 AND seq_to >= seq_from', name=op.f('ck_audit_checkpoints_interval')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints')),
    sa.UniqueConstraint('seq_to', name=op.f('uq_audit_checkpoints_seq_to'))
    )
    op.create_table('audit_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by_label', sa.String(length=120), nullable=True),
    sa.Column('by_person_id', sa.Integer(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('records', sa.BigInteger(), nullable=False),
    sa.Column('links', sa.BigInteger(), nullable=False),
    sa.Column('checkpoints', sa.Integer(), nullable=False),
    sa.Column('head_seq', sa.BigInteger(), nullable=True),
    sa.Column('head_hash', sa.String(length=64), nullable=True),
    sa.Column('first_broken_seq', sa.BigInteger(), nullable=True),
    sa.Column('first_broken_record_id', sa.Integer(), nullable=True),
    sa.Column('problem', sa.Text(), nullable=True),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['by_person_id'], ['persons.id'], name=op.f('fk_audit_verifications_by_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_verifications'))
    )
    with op.batch_alter_table('audit_verifications', schema=None) as batch_op:
        batch_op.create_index('ix_audit_verifications_finished_at', ['finished_at'], unique=False)
    for table in APPEND_ONLY_TABLES:
        _create_append_only_triggers(table)


def downgrade() -> None:
    for table in APPEND_ONLY_TABLES:
        _drop_append_only_triggers(table)
    with op.batch_alter_table('audit_verifications', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_verifications_finished_at')
    op.drop_table('audit_verifications')
    op.drop_table('audit_checkpoints')
    op.drop_table('audit_chain')


# Same shape as audit_records' triggers (migration 0001). The retention purge of a later issue will
# lift them for expired links only, under its own migration.
def _create_append_only_triggers(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
    else:
        op.execute(f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN RAISE EXCEPTION '{table} is append-only'; END $$")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()")


def _drop_append_only_triggers(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
