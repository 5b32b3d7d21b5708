"""Certificates bound to enterprises (public part only), pending CSRs, expiry notices sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:10:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('der', sa.LargeBinary(), nullable=False),
    sa.Column('chain_pem', sa.String(), nullable=True),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('serial_number', sa.String(length=64), nullable=False),
    sa.Column('organization_identifier', sa.String(length=40), nullable=False),
    sa.Column('key_description', sa.String(length=40), nullable=False),
    sa.Column('usages', sa.String(length=60), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.Enum('active', 'revoked', 'replaced', name='certificate_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.Column('predecessor_id', sa.Integer(), nullable=True),
    sa.Column('registered_by_id', sa.Integer(), nullable=True),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revocation_reason', sa.String(length=200), nullable=True),
    sa.Column('revocation_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state <> 'revoked' OR revoked_at IS NOT NULL", name=op.f('ck_certificates_revoked_has_time')),
    sa.CheckConstraint('not_after > not_before', name=op.f('ck_certificates_validity_period')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_certificates_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['predecessor_id'], ['certificates.id'], name=op.f('fk_certificates_predecessor_id_certificates')),
    sa.ForeignKeyConstraint(['registered_by_id'], ['persons.id'], name=op.f('fk_certificates_registered_by_id_persons')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['persons.id'], name=op.f('fk_certificates_revoked_by_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificates')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_certificates_fingerprint'))
    )
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.create_index('ix_certificates_enterprise', ['enterprise_id', 'state'], unique=False)

    op.create_table('certificate_expiry_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('days_before', sa.Integer(), nullable=False),
    sa.Column('sent_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_certificate_expiry_notices_certificate_id_certificates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificate_expiry_notices'))
    )
    with op.batch_alter_table('certificate_expiry_notices', schema=None) as batch_op:
        batch_op.create_index('uq_certificate_expiry_notices', ['certificate_id', 'days_before'], unique=True)

    op.create_table('certificate_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('csr_pem', sa.String(), nullable=False),
    sa.Column('public_key_sha256', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('generated_by_portal', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fulfilled_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['persons.id'], name=op.f('fk_certificate_requests_created_by_id_persons')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_certificate_requests_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['fulfilled_by_id'], ['certificates.id'], name=op.f('fk_certificate_requests_fulfilled_by_id_certificates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificate_requests'))
    )
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.create_index('ix_certificate_requests_enterprise', ['enterprise_id'], unique=False)
        batch_op.create_index('ix_certificate_requests_key', ['public_key_sha256'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_certificate_requests_key')
        batch_op.drop_index('ix_certificate_requests_enterprise')

    op.drop_table('certificate_requests')
    with op.batch_alter_table('certificate_expiry_notices', schema=None) as batch_op:
        batch_op.drop_index('uq_certificate_expiry_notices')

    op.drop_table('certificate_expiry_notices')
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_index('ix_certificates_enterprise')

    op.drop_table('certificates')
