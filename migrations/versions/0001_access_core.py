"""access core

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:43:00.118320

Also hand-written: the expression index on lower(name) (autogenerate cannot
reflect it on SQLite) and the triggers that make audit_records append-only.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('enterprises',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kbo_number', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('street', sa.String(length=200), nullable=False),
    sa.Column('postal_code', sa.String(length=10), nullable=False),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('legal_form', sa.String(length=60), nullable=False),
    sa.Column('rsz_number', sa.String(length=10), nullable=True),
    sa.Column('joint_committee', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(rsz_number IS NULL) = (joint_committee IS NULL)', name=op.f('ck_enterprises_employer_fields_together')),
    sa.CheckConstraint('length(kbo_number) = 10', name=op.f('ck_enterprises_kbo_ten_digits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises')),
    sa.UniqueConstraint('kbo_number', name=op.f('uq_enterprises_kbo_number')),
    sa.UniqueConstraint('rsz_number', name=op.f('uq_enterprises_rsz_number'))
    )
    op.create_table('persons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('insz', sa.String(length=11), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_persons')),
    sa.UniqueConstraint('insz', name=op.f('uq_persons_insz'))
    )
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=20), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('username_lower', sa.String(length=64), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('initial_password_hash', sa.String(length=200), nullable=True),
    sa.Column('initial_password_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('is_portal_officer', sa.Boolean(), nullable=False),
    sa.Column('is_disabled', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('session_generation', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('password_hash IS NOT NULL OR initial_password_hash IS NOT NULL', name=op.f('ck_accounts_has_a_credential')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_accounts_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('person_id', name=op.f('uq_accounts_person_id')),
    sa.UniqueConstraint('user_id', name=op.f('uq_accounts_user_id')),
    sa.UniqueConstraint('username_lower', name=op.f('uq_accounts_username_lower'))
    )
    op.create_table('audit_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_person_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=120), nullable=True),
    sa.Column('enterprise_id', sa.Integer(), nullable=True),
    sa.Column('application', sa.String(length=40), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('path', sa.JSON(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['actor_person_id'], ['persons.id'], name=op.f('fk_audit_records_actor_person_id_persons')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_audit_records_enterprise_id_enterprises')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_records'))
    )
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.create_index('ix_audit_records_actor_occurred', ['actor_person_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_audit_records_enterprise_occurred', ['enterprise_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_audit_records_occurred_at', ['occurred_at'], unique=False)

    op.create_table('change_proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('proposed_by_id', sa.Integer(), nullable=False),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('motivation', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'accepted', 'rejected', name='proposal_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['persons.id'], name=op.f('fk_change_proposals_decided_by_id_persons')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_change_proposals_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['persons.id'], name=op.f('fk_change_proposals_proposed_by_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_proposals'))
    )
    with op.batch_alter_table('change_proposals', schema=None) as batch_op:
        batch_op.create_index('ix_change_proposals_enterprise', ['enterprise_id', 'proposed_at'], unique=False)
        batch_op.create_index('ix_change_proposals_status', ['status'], unique=False)

    op.create_table('links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('werknemer', 'zaakvoerder', 'bestuurder', 'vennoot', 'zelfstandige_medewerker', 'derde', 'dienstverlener', 'tussenpersoon', name='link_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('end_date IS NULL OR end_date >= start_date', name=op.f('ck_links_end_not_before_start')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_links_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_links_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_links'))
    )
    with op.batch_alter_table('links', schema=None) as batch_op:
        batch_op.create_index('ix_links_enterprise', ['enterprise_id'], unique=False)
        batch_op.create_index('ix_links_person_enterprise', ['person_id', 'enterprise_id'], unique=False)

    op.create_table('memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('local_admin', 'co_admin', 'user', name='membership_role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('appointed_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['appointed_by_id'], ['persons.id'], name=op.f('fk_memberships_appointed_by_id_persons')),
    sa.ForeignKeyConstraint(['ended_by_id'], ['persons.id'], name=op.f('fk_memberships_ended_by_id_persons')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_memberships_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_memberships_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships'))
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index('ix_memberships_person', ['person_id'], unique=False)
        batch_op.create_index('uq_memberships_current_person', ['enterprise_id', 'person_id'], unique=True, postgresql_where=sa.text('ended_at IS NULL'), sqlite_where=sa.text('ended_at IS NULL'))
        batch_op.create_index('uq_memberships_one_local_admin', ['enterprise_id'], unique=True, postgresql_where=sa.text("ended_at IS NULL AND role = 'local_admin'"), sqlite_where=sa.text("ended_at IS NULL AND role = 'local_admin'"))

    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('recipient_person_id', sa.Integer(), nullable=True),
    sa.Column('recipient_email', sa.String(length=254), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['recipient_person_id'], ['persons.id'], name=op.f('fk_outbox_messages_recipient_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_unsent', ['id'], unique=False, postgresql_where=sa.text('sent_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL'))

    op.create_table('rights',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('application', sa.String(length=40), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_rights_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['granted_by_id'], ['persons.id'], name=op.f('fk_rights_granted_by_id_persons')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_rights_person_id_persons')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['persons.id'], name=op.f('fk_rights_revoked_by_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rights'))
    )
    with op.batch_alter_table('rights', schema=None) as batch_op:
        batch_op.create_index('ix_rights_enterprise', ['enterprise_id'], unique=False)
        batch_op.create_index('uq_rights_current', ['person_id', 'enterprise_id', 'application'], unique=True, postgresql_where=sa.text('revoked_at IS NULL'), sqlite_where=sa.text('revoked_at IS NULL'))

    op.create_table('record_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['persons.id'], name=op.f('fk_record_changes_changed_by_id_persons')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_record_changes_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['proposal_id'], ['change_proposals.id'], name=op.f('fk_record_changes_proposal_id_change_proposals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_changes'))
    )
    with op.batch_alter_table('record_changes', schema=None) as batch_op:
        batch_op.create_index('ix_record_changes_enterprise', ['enterprise_id', 'changed_at'], unique=False)


    op.create_index("ix_enterprises_name_lower", "enterprises", [sa.text("lower(name)")])
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index("ix_enterprises_name_lower", table_name="enterprises")
    with op.batch_alter_table('record_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_record_changes_enterprise')

    op.drop_table('record_changes')
    with op.batch_alter_table('rights', schema=None) as batch_op:
        batch_op.drop_index('uq_rights_current', postgresql_where=sa.text('revoked_at IS NULL'), sqlite_where=sa.text('revoked_at IS NULL'))
        batch_op.drop_index('ix_rights_enterprise')

    op.drop_table('rights')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unsent', postgresql_where=sa.text('sent_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL'))

    op.drop_table('outbox_messages')
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('uq_memberships_one_local_admin', postgresql_where=sa.text("ended_at IS NULL AND role = 'local_admin'"), sqlite_where=sa.text("ended_at IS NULL AND role = 'local_admin'"))
        batch_op.drop_index('uq_memberships_current_person', postgresql_where=sa.text('ended_at IS NULL'), sqlite_where=sa.text('ended_at IS NULL'))
        batch_op.drop_index('ix_memberships_person')

    op.drop_table('memberships')
    with op.batch_alter_table('links', schema=None) as batch_op:
        batch_op.drop_index('ix_links_person_enterprise')
        batch_op.drop_index('ix_links_enterprise')

    op.drop_table('links')
    with op.batch_alter_table('change_proposals', schema=None) as batch_op:
        batch_op.drop_index('ix_change_proposals_status')
        batch_op.drop_index('ix_change_proposals_enterprise')

    op.drop_table('change_proposals')
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_records_occurred_at')
        batch_op.drop_index('ix_audit_records_enterprise_occurred')
        batch_op.drop_index('ix_audit_records_actor_occurred')

    op.drop_table('audit_records')
    op.drop_table('accounts')
    op.drop_table('persons')
    op.drop_table('enterprises')


# Audit records are append-only: the database itself refuses UPDATE and DELETE,
# whatever code path tries (the retention purge of a later issue will lift this
# for expired records only, under its own migration).
def _create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_records_no_{verb.lower()} BEFORE {verb} ON audit_records "
                "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit records are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_records "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()"
        )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records")
        op.execute("DROP FUNCTION IF EXISTS audit_records_append_only()")
