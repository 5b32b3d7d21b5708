"""The security officers' alerts and the alert scan's watermark

audit_alerts: one row per rule, enterprise (NULL: the institution), key and window; two partial unique
indexes make a second alert for the same identity impossible (NULLs never collide in a plain unique
index). audit_alert_watermark: one row, the last chain position (audit_chain.seq) the scan examined;
it starts at the chain's current head, so the history before this migration raises no alerts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 18:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_OF_ENTERPRISE = "enterprise_id IS NOT NULL"
_OF_INSTITUTION = "enterprise_id IS NULL"
_OPEN = "acknowledged_at IS NULL"


def upgrade() -> None:
    op.create_table('audit_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=True),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_record_id', sa.Integer(), nullable=False),
    sa.Column('last_record_id', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('window_end > window_start', name=op.f('ck_audit_alerts_window')),
    sa.CheckConstraint('count >= 1', name=op.f('ck_audit_alerts_count_positive')),
    sa.CheckConstraint('first_record_id <= last_record_id', name=op.f('ck_audit_alerts_record_range')),
    sa.CheckConstraint('acknowledged_at IS NOT NULL OR acknowledged_by_id IS NULL',
                       name=op.f('ck_audit_alerts_acknowledged_by')),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['persons.id'],
                            name=op.f('fk_audit_alerts_acknowledged_by_id_persons')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'],
                            name=op.f('fk_audit_alerts_enterprise_id_enterprises')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_alerts'))
    )
    with op.batch_alter_table('audit_alerts', schema=None) as batch_op:
        batch_op.create_index('uq_audit_alerts_enterprise_window', ['enterprise_id', 'rule', 'key', 'window_start'],
                              unique=True, postgresql_where=sa.text(_OF_ENTERPRISE),
                              sqlite_where=sa.text(_OF_ENTERPRISE))
        batch_op.create_index('uq_audit_alerts_institution_window', ['rule', 'key', 'window_start'], unique=True,
                              postgresql_where=sa.text(_OF_INSTITUTION), sqlite_where=sa.text(_OF_INSTITUTION))
        batch_op.create_index('ix_audit_alerts_open', ['enterprise_id', 'id'], unique=False,
                              postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))

    watermark = op.create_table('audit_alert_watermark',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_record_id', sa.Integer(), nullable=True),
    sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_alert_watermark_single_row')),
    sa.CheckConstraint('last_seq >= 0', name=op.f('ck_audit_alert_watermark_last_seq_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_alert_watermark'))
    )
    head = op.get_bind().execute(sa.text(
        "SELECT seq, record_id FROM audit_chain ORDER BY seq DESC LIMIT 1")).first()
    op.bulk_insert(watermark, [{"id": 1, "last_seq": head[0] if head else 0,
                                "last_record_id": head[1] if head else None, "scanned_at": None}])


def downgrade() -> None:
    op.drop_table('audit_alert_watermark')
    with op.batch_alter_table('audit_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_alerts_open', postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))
        batch_op.drop_index('uq_audit_alerts_institution_window', postgresql_where=sa.text(_OF_INSTITUTION),
                            sqlite_where=sa.text(_OF_INSTITUTION))
        batch_op.drop_index('uq_audit_alerts_enterprise_window', postgresql_where=sa.text(_OF_ENTERPRISE),
                            sqlite_where=sa.text(_OF_ENTERPRISE))
    op.drop_table('audit_alerts')
