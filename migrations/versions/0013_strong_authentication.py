"""Strong authentication (issue 6): server-side sessions, second factors and recovery codes

user_sessions: one row per login session (the cookie holds a random token, the row its SHA-256), with
the time of its last second-factor check and the one WebAuthn challenge it may answer.
totp_factors (one live per account, a partial unique index), webauthn_credentials and recovery_codes.
Sessions issued before this migration (signed cookies without a token) stop working: everyone logs in
again, and accounts without a second factor enrol one.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 23:30:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_OPEN = "ended_at IS NULL"
_LIVE = "removed_at IS NULL"


def upgrade() -> None:
    op.create_table('user_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('second_factor_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('second_factor_method', sa.String(length=20), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('challenge', sa.String(length=128), nullable=True),
    sa.Column('challenge_purpose', sa.String(length=20), nullable=True),
    sa.Column('challenge_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_reason', sa.String(length=40), nullable=True),
    sa.CheckConstraint('ended_at IS NULL OR ended_reason IS NOT NULL',
                       name=op.f('ck_user_sessions_ended_with_reason')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_user_sessions_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_sessions_token_hash'))
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_user_sessions_account_open', ['account_id'], unique=False,
                              postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))

    op.create_table('totp_factors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_step', sa.BigInteger(), nullable=True),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_totp_factors_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_totp_factors'))
    )
    with op.batch_alter_table('totp_factors', schema=None) as batch_op:
        batch_op.create_index('uq_totp_factors_one_per_account', ['account_id'], unique=True,
                              postgresql_where=sa.text(_LIVE), sqlite_where=sa.text(_LIVE))

    op.create_table('webauthn_credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('credential_id', sa.String(length=1400), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('transports', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('sign_count >= 0', name=op.f('ck_webauthn_credentials_sign_count_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                            name=op.f('fk_webauthn_credentials_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webauthn_credentials')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_webauthn_credentials_credential_id'))
    )
    with op.batch_alter_table('webauthn_credentials', schema=None) as batch_op:
        batch_op.create_index('ix_webauthn_credentials_account', ['account_id'], unique=False)

    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('lookup', sa.String(length=8), nullable=False),
    sa.Column('code_hash', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_recovery_codes_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index('uq_recovery_codes_live_lookup', ['account_id', 'lookup'], unique=True,
                              postgresql_where=sa.text(_LIVE), sqlite_where=sa.text(_LIVE))


def downgrade() -> None:
    op.drop_table('recovery_codes')
    op.drop_table('webauthn_credentials')
    op.drop_table('totp_factors')
    op.drop_table('user_sessions')
