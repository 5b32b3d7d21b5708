"""Retention of audit records (the purge and its tombstones) and the data subjects' index

The retention purge (audit/retention.py) removes expired audit records but keeps their links in
audit_chain (hashes only), so that the chain and the signed checkpoints still verify. It writes, in
the same transaction as the DELETE:
- audit_purges: one row per purge (when, by whom, up to which checkpoint, per kind the cut-off and
  the count); append-only;
- audit_purged_records: one tombstone per removed record (record_id, seq, purge_id); append-only.

The database lets the purge, and nothing else, delete an audit record:
- SQLite: audit_records_no_delete (same name as migration 0001's) now refuses the DELETE of a record
  *without a tombstone*. Tombstones are only written by the purge, in the transaction that deletes
  their records, and cannot be written afterwards for a record that is still there without verify
  reporting it (a tombstone whose record exists is a problem). SQLite triggers cannot see a
  connection's temporary state, so the tombstone is the authorisation.
- PostgreSQL: the statement trigger audit_records_append_only (same name as 0001's) still refuses
  UPDATE and TRUNCATE always, and DELETE unless the transaction has set
  `SET LOCAL portal.audit_purge = '<id>'` to the id of an existing purge row (the purge sets it, deletes,
  and clears it again). A statement trigger sees no rows: verify is what proves that every record
  missing from a link was tombstoned by a recorded purge.
UPDATE stays refused on both backends in every case.

audit_record_subjects (audit/subjects.py) indexes whom a record is about (persons), mirrored from the
record's details; append-only under the same rule as audit_records (removed with its record by the
purge only). No foreign key to audit_records (see 0007).

audit_verifications gains `purged`: the links whose record the purge removed, for the verify page.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 18:10:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

STRICTLY_APPEND_ONLY = ('audit_purges', 'audit_purged_records')
RECORDS_MESSAGE = 'audit records are append-only'
SUBJECTS_MESSAGE = 'audit_record_subjects is append-only'


def upgrade() -> None:
    op.create_table('audit_purges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by_label', sa.String(length=120), nullable=True),
    sa.Column('by_person_id', sa.Integer(), nullable=True),
    sa.Column('covered_to_seq', sa.BigInteger(), nullable=True),
    sa.Column('seq_from', sa.BigInteger(), nullable=True),
    sa.Column('seq_to', sa.BigInteger(), nullable=True),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('kinds', sa.JSON(), nullable=False),
    sa.CheckConstraint('count >= 0', name=op.f('ck_audit_purges_count')),
    sa.ForeignKeyConstraint(['by_person_id'], ['persons.id'], name=op.f('fk_audit_purges_by_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_purges'))
    )
    op.create_table('audit_purged_records',
    sa.Column('record_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('purge_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['purge_id'], ['audit_purges.id'], name=op.f('fk_audit_purged_records_purge_id_audit_purges')),
    sa.PrimaryKeyConstraint('record_id', name=op.f('pk_audit_purged_records')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_purged_records_seq'))
    )
    with op.batch_alter_table('audit_purged_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_purged_records_purge_id'), ['purge_id'], unique=False)
    op.create_table('audit_record_subjects',
    sa.Column('record_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_audit_record_subjects_person_id_persons')),
    sa.PrimaryKeyConstraint('record_id', 'person_id', name=op.f('pk_audit_record_subjects'))
    )
    with op.batch_alter_table('audit_record_subjects', schema=None) as batch_op:
        batch_op.create_index('ix_audit_record_subjects_person_record', ['person_id', 'record_id'], unique=False)
    # Plain ADD COLUMN (no batch copy): a nullable column needs none.
    op.add_column('audit_verifications', sa.Column('purged', sa.BigInteger(), nullable=True))

    for table in STRICTLY_APPEND_ONLY:
        _create_append_only_triggers(table)
    if _sqlite():
        _sqlite_purge_only('audit_records', 'id', RECORDS_MESSAGE)
        _sqlite_purge_only('audit_record_subjects', 'record_id', SUBJECTS_MESSAGE, with_update=True)
    else:
        _postgresql_purge_only()


def downgrade() -> None:
    if _sqlite():
        op.execute("DROP TRIGGER IF EXISTS audit_record_subjects_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_record_subjects_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_delete")
        op.execute(f"CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records "
                   f"BEGIN SELECT RAISE(ABORT, '{RECORDS_MESSAGE}'); END")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_record_subjects_append_only ON audit_record_subjects")
        op.execute("DROP FUNCTION IF EXISTS audit_record_subjects_append_only()")
        # 0001's function again: no exception for the purge.
        op.execute("CREATE OR REPLACE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN RAISE EXCEPTION '{RECORDS_MESSAGE}'; END $$")
        op.execute("DROP FUNCTION IF EXISTS audit_purge_authorised()")
    for table in STRICTLY_APPEND_ONLY:
        _drop_append_only_triggers(table)
    op.drop_column('audit_verifications', 'purged')
    with op.batch_alter_table('audit_record_subjects', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_record_subjects_person_record')
    op.drop_table('audit_record_subjects')
    with op.batch_alter_table('audit_purged_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_purged_records_purge_id'))
    op.drop_table('audit_purged_records')
    op.drop_table('audit_purges')


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _sqlite_purge_only(table: str, record_column: str, message: str, with_update: bool = False) -> None:
    """DELETE only of a row whose record has a tombstone (written by the purge in this transaction)."""
    if with_update:
        op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
    op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
               f"WHEN NOT EXISTS (SELECT 1 FROM audit_purged_records WHERE record_id = OLD.{record_column}) "
               f"BEGIN SELECT RAISE(ABORT, '{message} (only the retention purge removes expired records)'); END")


def _postgresql_purge_only() -> None:
    """DELETE only inside the purge's transaction: `portal.audit_purge` names a recorded purge."""
    op.execute("CREATE FUNCTION audit_purge_authorised() RETURNS boolean LANGUAGE plpgsql AS $$ "
               "DECLARE purge text := current_setting('portal.audit_purge', true); "
               "BEGIN IF purge IS NULL OR purge !~ '^[0-9]{1,9}$' THEN RETURN false; END IF; "
               "RETURN EXISTS (SELECT 1 FROM audit_purges WHERE id = purge::integer); END $$")
    for table, function, message in (('audit_records', 'audit_records_append_only', RECORDS_MESSAGE),
                                     ('audit_record_subjects', 'audit_record_subjects_append_only',
                                      SUBJECTS_MESSAGE)):
        op.execute(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN IF TG_OP = 'DELETE' AND audit_purge_authorised() THEN RETURN NULL; END IF; "
                   f"RAISE EXCEPTION '{message}'; END $$")
    # audit_records keeps 0001's trigger (now calling the function above); the subjects get theirs.
    op.execute("CREATE TRIGGER audit_record_subjects_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
               "ON audit_record_subjects FOR EACH STATEMENT EXECUTE FUNCTION audit_record_subjects_append_only()")


# As in migration 0007.
def _create_append_only_triggers(table: str) -> None:
    if _sqlite():
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
    else:
        op.execute(f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN RAISE EXCEPTION '{table} is append-only'; END $$")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()")


def _drop_append_only_triggers(table: str) -> None:
    if _sqlite():
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
