"""Access review campaigns and their items

One open campaign per enterprise (a partial unique index); items keep the target's id without a foreign
key (a mandate's scope row is deleted when its application leaves the mandate) and a snapshot of names.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 18:20:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_OPEN = "status = 'open'"


def upgrade() -> None:
    op.create_table('access_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('started_by_label', sa.String(length=120), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('revoke_unanswered', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('open', 'closed', name='access_review_status', native_enum=False,
                                create_constraint=True, length=32), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report', sa.JSON(), nullable=True),
    sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)",
                       name=op.f('ck_access_reviews_closed_iff_closed_at')),
    sa.CheckConstraint("status = 'open' OR report IS NOT NULL", name=op.f('ck_access_reviews_closed_has_report')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_access_reviews_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['started_by_id'], ['persons.id'], name=op.f('fk_access_reviews_started_by_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_reviews'))
    )
    with op.batch_alter_table('access_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_access_reviews_enterprise', ['enterprise_id', 'started_at'], unique=False)
        batch_op.create_index('ix_access_reviews_due', ['deadline'], unique=False,
                              postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))
        batch_op.create_index('uq_access_reviews_one_open', ['enterprise_id'], unique=True,
                              postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))

    op.create_table('access_review_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('right', 'mandate_scope', name='access_review_item_kind', native_enum=False,
                              create_constraint=True, length=32), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('mandate_id', sa.Integer(), nullable=True),
    sa.Column('application', sa.String(length=40), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.Column('decision', sa.Enum('confirm', 'revoke', name='access_review_decision', native_enum=False,
                                  create_constraint=True, length=32), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('flagged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.Enum('confirmed', 'revoked', 'revoked_at_deadline', 'flagged', 'gone',
                                 name='access_review_outcome', native_enum=False, create_constraint=True,
                                 length=32), nullable=True),
    sa.CheckConstraint("kind <> 'right' OR (person_id IS NOT NULL AND mandate_id IS NULL)",
                       name=op.f('ck_access_review_items_right_has_person')),
    sa.CheckConstraint("kind <> 'mandate_scope' OR (mandate_id IS NOT NULL AND person_id IS NULL)",
                       name=op.f('ck_access_review_items_scope_has_mandate')),
    sa.CheckConstraint("(decision IS NULL) = (decided_at IS NULL)",
                       name=op.f('ck_access_review_items_decided_iff_decided_at')),
    sa.CheckConstraint("decision IS NULL OR flagged_at IS NULL",
                       name=op.f('ck_access_review_items_flagged_only_unanswered')),
    sa.CheckConstraint("outcome IS NULL OR outcome <> 'revoked_at_deadline' OR revoked_at IS NOT NULL",
                       name=op.f('ck_access_review_items_revoked_at_deadline_has_revoked_at')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['persons.id'], name=op.f('fk_access_review_items_decided_by_id_persons')),
    sa.ForeignKeyConstraint(['mandate_id'], ['mandates.id'], name=op.f('fk_access_review_items_mandate_id_mandates')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_access_review_items_person_id_persons')),
    sa.ForeignKeyConstraint(['review_id'], ['access_reviews.id'], name=op.f('fk_access_review_items_review_id_access_reviews')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_review_items')),
    sa.UniqueConstraint('review_id', 'kind', 'target_id', name='uq_access_review_items_target')
    )


def downgrade() -> None:
    op.drop_table('access_review_items')
    with op.batch_alter_table('access_reviews', schema=None) as batch_op:
        batch_op.drop_index('uq_access_reviews_one_open', postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))
        batch_op.drop_index('ix_access_reviews_due', postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))
        batch_op.drop_index('ix_access_reviews_enterprise')
    op.drop_table('access_reviews')
