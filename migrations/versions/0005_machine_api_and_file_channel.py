"""API clients bound to certificates, used client assertions, access tokens; file-channel messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:30:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_clients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_api_clients_certificate_id_certificates')),
    sa.ForeignKeyConstraint(['created_by_id'], ['persons.id'], name=op.f('fk_api_clients_created_by_id_persons')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_api_clients_enterprise_id_enterprises')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_clients')),
    sa.UniqueConstraint('client_id', name=op.f('uq_api_clients_client_id'))
    )
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.create_index('ix_api_clients_enterprise', ['enterprise_id'], unique=False)

    op.create_table('file_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('message_type', sa.String(length=40), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('sender_enterprise_id', sa.Integer(), nullable=False),
    sa.Column('signer_certificate_id', sa.Integer(), nullable=False),
    sa.Column('sender_person_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('receipt', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['sender_enterprise_id'], ['enterprises.id'], name=op.f('fk_file_messages_sender_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['sender_person_id'], ['persons.id'], name=op.f('fk_file_messages_sender_person_id_persons')),
    sa.ForeignKeyConstraint(['signer_certificate_id'], ['certificates.id'], name=op.f('fk_file_messages_signer_certificate_id_certificates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_messages')),
    sa.UniqueConstraint('content_sha256', name=op.f('uq_file_messages_content_sha256')),
    sa.UniqueConstraint('reference', name=op.f('uq_file_messages_reference'))
    )
    op.create_table('access_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_access_tokens_certificate_id_certificates')),
    sa.ForeignKeyConstraint(['client_id'], ['api_clients.id'], name=op.f('fk_access_tokens_client_id_api_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_tokens')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_access_tokens_token_sha256'))
    )
    op.create_table('used_client_assertions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('jti', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['api_clients.id'], name=op.f('fk_used_client_assertions_client_id_api_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_used_client_assertions'))
    )
    with op.batch_alter_table('used_client_assertions', schema=None) as batch_op:
        batch_op.create_index('uq_used_client_assertions_jti', ['client_id', 'jti'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('used_client_assertions', schema=None) as batch_op:
        batch_op.drop_index('uq_used_client_assertions_jti')

    op.drop_table('used_client_assertions')
    op.drop_table('access_tokens')
    op.drop_table('file_messages')
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_index('ix_api_clients_enterprise')

    op.drop_table('api_clients')
