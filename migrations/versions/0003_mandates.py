"""Service providers, mandates (affiliations and provider forms), their scope, staff assignments;
the provider an audit record was made through.

audit_records gets its column by a plain ALTER TABLE ... ADD COLUMN, not a batch operation:
on SQLite a batch operation copies the table, which would drop its append-only triggers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:21:25
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('providers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('erkend_sociaal_secretariaat', 'accountant', 'software_bureau', 'other_intermediary', name='provider_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('recognition_number', sa.String(length=20), nullable=True),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('registered_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("(kind = 'erkend_sociaal_secretariaat') = (recognition_number IS NOT NULL)", name=op.f('ck_providers_recognition_number_iff_secretariat')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_providers_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['registered_by_id'], ['persons.id'], name=op.f('fk_providers_registered_by_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers')),
    sa.UniqueConstraint('enterprise_id', name=op.f('uq_providers_enterprise_id')),
    sa.UniqueConstraint('recognition_number', name=op.f('uq_providers_recognition_number'))
    )
    op.create_table('mandates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('affiliation', 'form', name='mandate_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('employer_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'accepted', 'declined', 'withdrawn', 'revoked', name='mandate_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('effective_from', sa.Date(), nullable=True),
    sa.Column('contract_declared', sa.Boolean(), nullable=False),
    sa.Column('contract_date', sa.Date(), nullable=True),
    sa.Column('contract_reference', sa.String(length=100), nullable=True),
    sa.Column('affiliation_number', sa.String(length=40), nullable=True),
    sa.Column('minimum_term_months', sa.Integer(), nullable=True),
    sa.Column('notice_months', sa.Integer(), nullable=True),
    sa.Column('notice_date', sa.Date(), nullable=True),
    sa.Column('filed_by_id', sa.Integer(), nullable=True),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by_id', sa.Integer(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind = 'affiliation' OR (contract_declared AND contract_date IS NOT NULL AND contract_reference IS NOT NULL)", name=op.f('ck_mandates_form_declares_contract')),
    sa.CheckConstraint("status <> 'accepted' OR effective_from IS NOT NULL", name=op.f('ck_mandates_accepted_has_effective_from')),
    sa.CheckConstraint("status = 'accepted' OR kind = 'form'", name=op.f('ck_mandates_affiliation_always_accepted')),
    sa.CheckConstraint('end_date IS NULL OR end_date >= start_date', name=op.f('ck_mandates_end_not_before_start')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['persons.id'], name=op.f('fk_mandates_decided_by_id_persons')),
    sa.ForeignKeyConstraint(['employer_id'], ['enterprises.id'], name=op.f('fk_mandates_employer_id_enterprises')),
    sa.ForeignKeyConstraint(['ended_by_id'], ['persons.id'], name=op.f('fk_mandates_ended_by_id_persons')),
    sa.ForeignKeyConstraint(['filed_by_id'], ['persons.id'], name=op.f('fk_mandates_filed_by_id_persons')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_mandates_provider_id_providers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mandates'))
    )
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.create_index('ix_mandates_employer', ['employer_id', 'status'], unique=False)
        batch_op.create_index('ix_mandates_provider', ['provider_id', 'status'], unique=False)
        batch_op.create_index('uq_mandates_one_extra_provider', ['employer_id'], unique=True, postgresql_where=sa.text("kind = 'form' AND status IN ('pending', 'accepted') AND end_date IS NULL"), sqlite_where=sa.text("kind = 'form' AND status IN ('pending', 'accepted') AND end_date IS NULL"))
        batch_op.create_index('uq_mandates_one_open_affiliation', ['employer_id'], unique=True, postgresql_where=sa.text("kind = 'affiliation' AND status = 'accepted' AND end_date IS NULL"), sqlite_where=sa.text("kind = 'affiliation' AND status = 'accepted' AND end_date IS NULL"))

    op.create_table('mandate_applications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mandate_id', sa.Integer(), nullable=False),
    sa.Column('application_group', sa.String(length=40), nullable=False),
    sa.Column('application', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['mandate_id'], ['mandates.id'], name=op.f('fk_mandate_applications_mandate_id_mandates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mandate_applications')),
    sa.UniqueConstraint('mandate_id', 'application', name=op.f('uq_mandate_applications_mandate_id'))
    )
    op.create_table('staff_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mandate_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('application', sa.String(length=40), nullable=False),
    sa.Column('assigned_by_id', sa.Integer(), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assigned_by_id'], ['persons.id'], name=op.f('fk_staff_assignments_assigned_by_id_persons')),
    sa.ForeignKeyConstraint(['mandate_id'], ['mandates.id'], name=op.f('fk_staff_assignments_mandate_id_mandates')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_staff_assignments_person_id_persons')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['persons.id'], name=op.f('fk_staff_assignments_revoked_by_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_assignments'))
    )
    with op.batch_alter_table('staff_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_staff_assignments_person', ['person_id', 'mandate_id'], unique=False)
        batch_op.create_index('uq_staff_assignments_current', ['mandate_id', 'person_id', 'application'], unique=True, postgresql_where=sa.text('revoked_at IS NULL'), sqlite_where=sa.text('revoked_at IS NULL'))

    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with an inline REFERENCES clause (not a table constraint), named as
        # the models name it.
        op.execute("ALTER TABLE audit_records ADD COLUMN provider_enterprise_id INTEGER "
                   "CONSTRAINT fk_audit_records_provider_enterprise_id_enterprises REFERENCES enterprises (id)")
    else:
        op.add_column("audit_records", sa.Column("provider_enterprise_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_audit_records_provider_enterprise_id_enterprises"), "audit_records",
                              "enterprises", ["provider_enterprise_id"], ["id"])
    op.create_index("ix_audit_records_provider_occurred", "audit_records",
                    ["provider_enterprise_id", "occurred_at"], unique=False)



def downgrade() -> None:
    op.drop_index("ix_audit_records_provider_occurred", table_name="audit_records")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column with a REFERENCES clause: copy the table, and put the
        # append-only triggers (which the copy drops) back.
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_records_no_{verb.lower()}")
        with op.batch_alter_table("audit_records") as batch_op:
            batch_op.drop_column("provider_enterprise_id")
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_records_no_{verb.lower()} BEFORE {verb} ON audit_records "
                       "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END")
    else:
        op.drop_constraint(op.f("fk_audit_records_provider_enterprise_id_enterprises"), "audit_records",
                           type_="foreignkey")
        op.drop_column("audit_records", "provider_enterprise_id")

    with op.batch_alter_table('staff_assignments', schema=None) as batch_op:
        batch_op.drop_index('uq_staff_assignments_current', postgresql_where=sa.text('revoked_at IS NULL'), sqlite_where=sa.text('revoked_at IS NULL'))
        batch_op.drop_index('ix_staff_assignments_person')

    op.drop_table('staff_assignments')
    op.drop_table('mandate_applications')
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.drop_index('uq_mandates_one_open_affiliation', postgresql_where=sa.text("kind = 'affiliation' AND status = 'accepted' AND end_date IS NULL"), sqlite_where=sa.text("kind = 'affiliation' AND status = 'accepted' AND end_date IS NULL"))
        batch_op.drop_index('uq_mandates_one_extra_provider', postgresql_where=sa.text("kind = 'form' AND status IN ('pending', 'accepted') AND end_date IS NULL"), sqlite_where=sa.text("kind = 'form' AND status IN ('pending', 'accepted') AND end_date IS NULL"))
        batch_op.drop_index('ix_mandates_provider')
        batch_op.drop_index('ix_mandates_employer')

    op.drop_table('mandates')
    op.drop_table('providers')
