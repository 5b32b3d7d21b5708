"""The audit trail: append-only records of logins, changes and access decisions."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String,
                        Text)
from sqlalchemy.orm import Mapped, mapped_column

from db import Base


class AuditRecord(Base):
    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Who did it: the person (if known) and the login name he used or tried.
    actor_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    actor_label: Mapped[str | None] = mapped_column(String(120))
    # For whom: the enterprise whose data or access management was touched.
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    # Through whom: the service provider whose staff member acted for that enterprise under mandate.
    provider_enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    application: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(20))  # allowed, denied, success, failure, error
    reason: Mapped[str | None] = mapped_column(Text)
    path: Mapped[list | None] = mapped_column(JSON)
    details: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        # The review screen's keyset order (occurred_at DESC, id DESC), whole trail and per enterprise
        # (audit/queries.py; migration 0008 replaced the indexes on occurred_at alone).
        Index("ix_audit_records_occurred_id", "occurred_at", "id"),
        Index("ix_audit_records_enterprise_occurred_id", "enterprise_id", "occurred_at", "id"),
        Index("ix_audit_records_actor_occurred", "actor_person_id", "occurred_at"),
        Index("ix_audit_records_provider_occurred", "provider_enterprise_id", "occurred_at"),
    )


class ChainLink(Base):
    """One record's place in the hash chain (audit/chain.py). Append-only, like the records: the
    links are a table of their own so that the records keep their shape and the chain can be
    written, under a lock, at commit time when the order of concurrent writers is known."""

    __tablename__ = "audit_chain"

    # Contiguous from 1, assigned under the chain lock: no gaps, no forks.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # No foreign key (see migration 0007): verify checks that every link has its record.
    record_id: Mapped[int] = mapped_column(Integer, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))
    chained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Checkpoint(Base):
    """A signed statement of the chain's state at seq_to: its head hash and the Merkle root of the
    record hashes of seq_from..seq_to (audit/checkpoints.py). Append-only."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq_from: Mapped[int] = mapped_column(BigInteger)
    seq_to: Mapped[int] = mapped_column(BigInteger, unique=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    merkle_root: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))  # Ed25519, hex
    key_id: Mapped[str] = mapped_column(String(64))  # SHA-256 of the raw public key, hex
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("seq_from >= 1 AND seq_to >= seq_from", name="interval"),
    )


class Verification(Base):
    """The result of one run of `audit verify`, kept for the verify page."""

    __tablename__ = "audit_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by_label: Mapped[str | None] = mapped_column(String(120))
    by_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    ok: Mapped[bool] = mapped_column(Boolean)
    records: Mapped[int] = mapped_column(BigInteger)
    links: Mapped[int] = mapped_column(BigInteger)
    checkpoints: Mapped[int] = mapped_column(Integer)
    head_seq: Mapped[int | None] = mapped_column(BigInteger)
    head_hash: Mapped[str | None] = mapped_column(String(64))
    first_broken_seq: Mapped[int | None] = mapped_column(BigInteger)
    first_broken_record_id: Mapped[int | None] = mapped_column(Integer)
    problem: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list] = mapped_column(JSON)
    # Links whose record the retention purge removed (migration 0011; None: verified before it).
    purged: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_audit_verifications_finished_at", "finished_at"),
    )


class Purge(Base):
    """One run of the retention purge (audit/retention.py): when, by whom, up to which signed
    checkpoint, and how many records of each kind it removed with which cut-off. Append-only: it is
    the proof that the links without a record lost them lawfully."""

    __tablename__ = "audit_purges"

    id: Mapped[int] = mapped_column(primary_key=True)
    purged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by_label: Mapped[str | None] = mapped_column(String(120))
    by_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    # Only records at or below the last checkpoint's seq_to are purged (None: no checkpoint yet).
    covered_to_seq: Mapped[int | None] = mapped_column(BigInteger)
    seq_from: Mapped[int | None] = mapped_column(BigInteger)  # lowest and highest seq purged
    seq_to: Mapped[int | None] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(BigInteger)
    # {kind: {"prefix": ..., "retention": "5 years", "before": "...Z", "count": n}}
    kinds: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (
        CheckConstraint("count >= 0", name="count"),
    )


class PurgedRecord(Base):
    """The tombstone of one purged record: its link stays in audit_chain (hashes only), and this row
    says which purge removed the record. Written by the purge in the transaction that deletes the
    record; the database lets an audit record be deleted only when its tombstone exists."""

    __tablename__ = "audit_purged_records"

    record_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    purge_id: Mapped[int] = mapped_column(ForeignKey("audit_purges.id"), index=True)


class RecordSubject(Base):
    """Whom a record is about (a person): the index of the data subject view (audit/subjects.py),
    mirrored from the record's details["subject_person_ids"] (which the chain covers) in the same
    transaction. No foreign key to audit_records (see migration 0007); removed with its record by the
    retention purge only."""

    __tablename__ = "audit_record_subjects"

    record_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)

    __table_args__ = (
        Index("ix_audit_record_subjects_person_record", "person_id", "record_id"),
    )
