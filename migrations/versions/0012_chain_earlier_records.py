"""Link the audit records written before the chain existed

An installation that had audit records when migration 0007 added the hash chain kept them unlinked,
and `audit verify` reported each as a record outside the chain. This links them once, in id order,
after the current head (audit.chain.adopt_records_before_the_chain): only records older than the
first chained record, so that a record inserted around the chain later is still reported.
A fresh database has none and nothing happens.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 19:20:00
"""
from __future__ import annotations

from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from audit.chain import adopt_records_before_the_chain

    adopted = adopt_records_before_the_chain(op.get_bind())
    if adopted:
        print(f"audit chain: linked {adopted} record(s) written before the chain existed")


def downgrade() -> None:
    # The chain is append-only (triggers refuse deleting links); the links stay and stay valid.
    pass
