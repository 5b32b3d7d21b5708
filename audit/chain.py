"""The audit records' hash chain: written at commit time, verified end to end.

Every audit record gets exactly one link in `audit_chain` (audit.models.ChainLink): its place `seq`
(1, 2, 3, ... with no gap), the hash of the previous link (`prev_hash`; 64 zeros for seq 1) and its
own `record_hash`. Editing, deleting, inserting or reordering a record breaks the chain from that
record on; a forger who rewrites the chain from there to its head is caught by the signed
checkpoints (audit/checkpoints.py) that cover it, and the JSON Lines sink (audit/sink.py) keeps a copy
of every link outside the database.

Canonical encoding, version 1 (what an auditor re-implements)
------------------------------------------------------------
record_hash = lowercase hex of SHA-256 over the UTF-8 bytes of the JSON text of

    {"prev_hash": <prev_hash>, "record": {<field>: <value>, ...}, "seq": <seq>, "v": 1}

written with the keys of every object sorted (by code point), no whitespace at all (separators
"," and ":"), non-ASCII characters written as themselves (not \\u escapes), and:

- "record" holds exactly the fields of RECORD_FIELDS (every column of audit_records, `id` included),
  absent values as null;
- integers as decimal integers; strings as JSON strings (json.dumps escaping: \\" \\\\ \\n \\r \\t \\b \\f,
  other control characters as \\u00XX);
- `occurred_at` in UTC as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (always six digits of microseconds; a
  timestamp stored without a zone, as SQLite returns it, is UTC);
- `path` and `details` (JSON columns) as the JSON value read back from the database, objects with
  sorted keys at every depth, numbers as Python's json module writes the value it read (1 stays 1,
  1.5 stays 1.5; non-finite floats, which only SQLite can hold, as NaN / Infinity / -Infinity);
- prev_hash and record_hash are 64 lowercase hex digits; the genesis prev_hash is "0" * 64.

The hash is computed from the values as read back from the database inside the writing transaction,
so that what is hashed is what is stored.

Writing the chain
-----------------
A mapper event remembers the ids of the AuditRecords a session inserts; a `before_commit` session
event (every commit, also the release of a savepoint, so that a test's savepoint commit chains too)
takes the chain lock, reads the last link and appends one link per new record, in id order. The lock
is `pg_advisory_xact_lock(CHAIN_LOCK)` on PostgreSQL (held to the end of the transaction) and the
write lock that BEGIN IMMEDIATE already holds on SQLite (db.py): `seq` is assigned under it, so
concurrent processes never fork the chain or leave a gap, and a rolled-back transaction leaves no
link (its records are gone with it). Survivor records replayed after a rollback (audit/operations.py)
are ordinary inserts followed by a commit: they are chained the same way. Records inserted without
the ORM (a Core insert) are not seen by the hook: `verify` reports them as records outside the chain.

Retention (audit/retention.py) removes expired records that a signed checkpoint covers and keeps
their links; each removed record has a tombstone (audit_purged_records) naming its link and the
purge. `verify` accepts a link without its record only with that tombstone (and still checks its
prev_hash and, through the checkpoint's Merkle root, its record_hash), counts it as purged, and
reports any other missing record as broken.

After the links, the same hook writes the automatic checkpoint when `seq` crosses a multiple of the
configured AUDIT_CHECKPOINT_EVERY (audit/checkpoints.py) and leaves the links for the sink, which
writes them after the commit only (audit/sink.py).
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import func, insert, or_, select, text
from sqlalchemy.orm import Session, object_session
from sqlalchemy import event

from access.clock import utcnow
from audit.models import AuditRecord, ChainLink, Checkpoint, Purge, PurgedRecord, Verification

ENCODING_VERSION = 1
GENESIS_HASH = "0" * 64
# Every column of audit_records in encoding version 1. A new column needs a new encoding version
# (tests/unit/audit/test_chain.py fails until this list and the table agree).
RECORD_FIELDS: tuple[str, ...] = (
    "id", "occurred_at", "actor_person_id", "actor_label", "enterprise_id", "provider_enterprise_id",
    "application", "action", "outcome", "reason", "path", "details", "ip", "user_agent", "request_id",
)
# Any constant shared by every process of the portal; "audit" in ASCII.
CHAIN_LOCK = 0x6175646974

PENDING_KEY = "audit.chain.pending"  # session.info: ids of records inserted, not yet chained
CHAINED_KEY = "audit.chain.chained"  # session.info: links written in this transaction, for the sink
_ID_CHUNK = 500

_records = AuditRecord.__table__
_links = ChainLink.__table__
_tombstones = PurgedRecord.__table__
_purges = Purge.__table__
_RECORD_COLUMNS = [_records.c[name] for name in RECORD_FIELDS]


# --- the canonical encoding -------------------------------------------------------------------

def iso_utc(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def canonical_record(values: Sequence[Any]) -> dict[str, Any]:
    """The "record" object of the encoding, from the values of RECORD_FIELDS in that order."""
    record = dict(zip(RECORD_FIELDS, values))
    if record["occurred_at"] is not None:
        record["occurred_at"] = iso_utc(record["occurred_at"])
    return record


_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def canonical_bytes(record: dict[str, Any], seq: int, prev_hash: str) -> bytes:
    return _encoder.encode({"prev_hash": prev_hash, "record": record, "seq": seq, "v": ENCODING_VERSION}).encode()


def record_hash(record: dict[str, Any], seq: int, prev_hash: str) -> str:
    """The reference implementation: the encoding as documented above, through json's encoder."""
    return hashlib.sha256(canonical_bytes(record, seq, prev_hash)).hexdigest()


# The same text, written directly: the chain writer and verify use this (verify must stream hundreds
# of thousands of records a second); tests/unit/audit/test_encoding.py holds it equal to the reference
# for any values. The record's keys are spelled out in sorted order.
_string = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring  # type: ignore[attr-defined]


def _str(value: Any) -> str:
    return "null" if value is None else _string(value) if type(value) is str else _encoder.encode(value)


def _int(value: Any) -> str:
    return "null" if value is None else str(value) if type(value) is int else _encoder.encode(value)


def _json_value(value: Any) -> str:
    return _encoder.encode(value)


@functools.lru_cache(maxsize=8192)  # decision paths and many details repeat
def _json_text(value: Any) -> str:
    """A JSON column read raw from SQLite: its stored text, or None for SQL NULL. Anything else can
    only be a tampered row (a number or malformed text written around the portal): it is encoded as
    it is, never parsed into a crash, and its hash will not match."""
    if value is None:
        return "null"
    if type(value) is not str:
        return _encoder.encode(value) if isinstance(value, (int, float)) else repr(value)
    try:
        return _encoder.encode(json.loads(value))
    except ValueError:
        return value


def _time(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is str:  # read raw from SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", UTC
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            return f'"{value[:10]}T{value[11:]}Z"'
        value = datetime.fromisoformat(value)
    return f'"{iso_utc(value)}"'


def canonical_text(v: Sequence[Any], seq: int, prev_hash: str, json_text: bool = False) -> str:
    """canonical_bytes(canonical_record(v), seq, prev_hash), decoded, from the values of
    RECORD_FIELDS in that order (typed as SQLAlchemy returns them, or, with json_text, as SQLite
    returns them raw: JSON columns as text, the timestamp as text)."""
    # The common types are written inline (str, int, None): a Python call per field would cost a
    # third of verify's time; anything else goes through the general helpers.
    s, S, I = _string, _str, _int
    j = _json_text if json_text else _json_value
    (record_id, occurred_at, actor_person_id, actor_label, enterprise_id, provider_enterprise_id, application,
     action, outcome, reason, path, details, ip, user_agent, request_id) = v
    return "".join((
        '{"prev_hash":', s(prev_hash) if prev_hash.__class__ is str else S(prev_hash),
        ',"record":{"action":', s(action) if action.__class__ is str else S(action),
        ',"actor_label":', s(actor_label) if actor_label.__class__ is str else S(actor_label),
        ',"actor_person_id":', "null" if actor_person_id is None else I(actor_person_id),
        ',"application":', "null" if application is None else S(application),
        ',"details":', "null" if details is None else j(details),
        ',"enterprise_id":', "null" if enterprise_id is None else I(enterprise_id),
        ',"id":', str(record_id) if record_id.__class__ is int else I(record_id),
        ',"ip":', s(ip) if ip.__class__ is str else S(ip),
        ',"occurred_at":', _time(occurred_at),
        ',"outcome":', s(outcome) if outcome.__class__ is str else S(outcome),
        ',"path":', "null" if path is None else j(path),
        ',"provider_enterprise_id":', "null" if provider_enterprise_id is None else I(provider_enterprise_id),
        ',"reason":', s(reason) if reason.__class__ is str else S(reason),
        ',"request_id":', s(request_id) if request_id.__class__ is str else S(request_id),
        ',"user_agent":', s(user_agent) if user_agent.__class__ is str else S(user_agent),
        '},"seq":', str(seq) if seq.__class__ is int else I(seq), ',"v":', _VERSION_TEXT, "}"))


_VERSION_TEXT = str(ENCODING_VERSION)


def hash_values(values: Sequence[Any], seq: int, prev_hash: str, json_text: bool = False) -> str:
    return hashlib.sha256(canonical_text(values, seq, prev_hash, json_text).encode()).hexdigest()


# --- writing the chain -------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    seq: int
    prev_hash: str
    record_hash: str
    record: dict[str, Any]

    def as_document(self) -> dict[str, Any]:
        """The link as the sink writes it: the hashed object plus its hash."""
        return {"prev_hash": self.prev_hash, "record": self.record, "record_hash": self.record_hash,
                "seq": self.seq, "v": ENCODING_VERSION}


@event.listens_for(AuditRecord, "after_insert")
def _remember_insert(mapper, connection, target: AuditRecord) -> None:  # noqa: ARG001
    session = object_session(target)
    if session is not None:
        session.info.setdefault(PENDING_KEY, []).append(target.id)


@event.listens_for(Session, "before_commit")
def _chain_before_commit(session: Session) -> None:
    chain_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget_on_rollback(session: Session, previous_transaction) -> None:
    """Links written in a transaction that is rolled back are gone: the sink must not see them."""
    if previous_transaction.parent is None:
        session.info.pop(PENDING_KEY, None)
        session.info.pop(CHAINED_KEY, None)
        return
    chained = session.info.get(CHAINED_KEY)
    if chained:
        chained[:] = [(tx, links) for tx, links in chained if not _within(tx, previous_transaction)]


def _within(transaction, ancestor) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def take_chained(session: Session) -> list[Link]:
    """The links written since the last call (after the root commit: the committed ones)."""
    return [link for _, links in session.info.pop(CHAINED_KEY, []) for link in links]


def lock_chain(session: Session) -> None:
    """Serialise chain writers until the end of the transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    # SQLite: the transaction began with BEGIN IMMEDIATE and holds the database's write lock.


def last_link(session: Session) -> tuple[int, str]:
    row = session.execute(select(_links.c.seq, _links.c.record_hash).order_by(_links.c.seq.desc()).limit(1)).first()
    return (row.seq, row.record_hash) if row else (0, GENESIS_HASH)


def chain_pending(session: Session) -> list[Link]:
    """Link the records this session inserted and that are not linked yet; returns the new links."""
    session.flush()
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return []
    rows = _unlinked_rows(session, sorted(set(pending)))
    if not rows:
        return []
    lock_chain(session)
    seq, prev = last_link(session)
    now = utcnow()
    links, values = [], []
    for row in rows:
        seq += 1
        record = canonical_record(row)
        digest = hash_values(row, seq, prev)
        links.append(Link(seq, prev, digest, record))
        values.append({"seq": seq, "record_id": record["id"], "prev_hash": prev, "record_hash": digest,
                       "chained_at": now})
        prev = digest
    session.execute(insert(_links), values)
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(CHAINED_KEY, []).append((transaction, links))

    from audit.checkpoints import checkpoint_if_due
    from audit.settings import settings_of

    checkpoint_if_due(session, settings_of(session), links[0].seq, links[-1].seq)
    return links


def _unlinked_rows(session: Session, ids: list[int]) -> list[Sequence[Any]]:
    rows: list[Sequence[Any]] = []
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start:start + _ID_CHUNK]
        linked = select(_links.c.record_id).where(_links.c.record_id.in_(chunk))
        rows.extend(session.execute(
            select(*_RECORD_COLUMNS).where(_records.c.id.in_(chunk), _records.c.id.not_in(linked))
            .order_by(_records.c.id)).all())
    return rows


def adopt_records_before_the_chain(connection) -> int:
    """Link the records written before the chain existed (migration 0012, for installations that had
    records when 0007 added the chain): the unlinked records with an id below the first chained one
    (all of them while the chain is empty), in id order, after the current head. A record inserted
    around the chain later has a higher id than some link and stays unlinked: verify keeps reporting it.
    Returns how many were linked."""
    first_linked = connection.execute(select(func.min(_links.c.record_id))).scalar()
    unlinked = (select(*_RECORD_COLUMNS)
                .where(~select(_links.c.seq).where(_links.c.record_id == _records.c.id).exists())
                .order_by(_records.c.id))
    if first_linked is not None:
        unlinked = unlinked.where(_records.c.id < first_linked)
    rows = connection.execute(unlinked).all()
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    head = connection.execute(select(_links.c.seq, _links.c.record_hash).order_by(_links.c.seq.desc()).limit(1)).first()
    seq, prev = (head.seq, head.record_hash) if head else (0, GENESIS_HASH)
    now, values = utcnow(), []
    for row in rows:
        seq += 1
        digest = hash_values(row, seq, prev)
        values.append({"seq": seq, "record_id": row[0], "prev_hash": prev, "record_hash": digest, "chained_at": now})
        prev = digest
    connection.execute(insert(_links), values)
    return len(values)


# --- verifying ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One break in the chain. `seq`/`record_id` name the first record it concerns, when known."""

    kind: str  # missing-link, missing-record, edited-link, edited-record, unlinked-record, duplicate-link,
    #            checkpoint-head, checkpoint-root, checkpoint-signature, checkpoint-key, checkpoint-beyond-head,
    #            purge-mismatch, purge-unannounced, purge-out-of-bounds
    message: str
    seq: int | None = None
    record_id: int | None = None
    # Where the walk found it, for the order of the report: a checkpoint's interval is judged at its
    # end, so that a record found broken inside it is named first.
    position: int | None = None

    def __str__(self) -> str:
        where = []
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.record_id is not None:
            where.append(f"record {self.record_id}")
        return f"{', '.join(where) or 'chain'}: {self.message} [{self.kind}]"


@dataclass
class VerifyResult:
    started_at: datetime
    finished_at: datetime | None = None
    records: int = 0  # rows in audit_records
    links: int = 0  # links walked
    checkpoints: int = 0  # checkpoints checked (root, head and, with a key, signature)
    signatures_checked: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS found, in chain order
    problem_count: int = 0
    warnings: list[str] = field(default_factory=list)
    purged: int = 0  # links whose record the retention purge removed (audit/retention.py)

    MAX_PROBLEMS = 100

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_broken(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < self.MAX_PROBLEMS:
            self.problems.append(problem)

    def report(self) -> list[str]:
        lines = [
            f"audit chain: {'INTACT' if self.ok else 'BROKEN'}",
            f"records: {self.records}  links: {self.links}  head: seq {self.head_seq or 0} {self.head_hash or '-'}",
            f"checkpoints checked: {self.checkpoints} (signatures verified: {self.signatures_checked})",
            f"records purged by retention: {self.purged}",
        ]
        lines += [f"warning: {warning}" for warning in self.warnings]
        if not self.ok:
            lines.append(f"first broken: {self.first_broken}")
            lines.append(f"problems: {self.problem_count}")
            lines += [f"  {problem}" for problem in self.problems[1:20]]
            if self.problem_count > 20:
                lines.append(f"  ... and {self.problem_count - 20} more")
        return lines


def verify(session: Session, *, public_keys: Iterable[Any] = (), batch: int = 10_000) -> VerifyResult:
    """Walk the whole chain in seq order (streaming, constant memory), recompute every hash and
    check every link, that every record has exactly one link and every checkpoint's head, Merkle
    root and signature. `public_keys`: Ed25519 public keys to check the signatures with; none
    means the signatures are not checked (a warning, not a failure).

    On PostgreSQL, run it in a REPEATABLE READ transaction so that the walk and the counts see the
    same snapshot while others write (the CLI does); SQLite's transaction is serialised anyway."""
    from audit.checkpoints import CheckpointChecker

    result = VerifyResult(started_at=utcnow())
    checker = CheckpointChecker(session, public_keys, result)
    expected_seq, prev = 1, GENESIS_HASH
    found = 0
    raw_json = session.get_bind().dialect.name == "sqlite"
    tombstones = _Tombstones(session, batch)
    for row in _walk(session, batch):
        seq, record_id, stored_prev, stored_hash, values = row[0], row[1], row[2], row[3], row[4:]
        result.links += 1
        if seq != expected_seq:
            result.add(Problem("missing-link", f"links {expected_seq}..{seq - 1} are missing (records deleted "
                                               f"with their links, or links deleted)", expected_seq, None))
            checker.skip_to(seq)
        if values[0] is None:
            _check_missing_record(result, tombstones, seq, record_id, stored_prev, prev)
            digest = stored_hash
        else:
            found += 1
            if stored_prev != prev:
                result.add(Problem("edited-link", "prev_hash is not the hash of the previous link "
                                                  "(a link edited, inserted or removed before this one)",
                                   seq, record_id))
            digest = hash_values(values, seq, stored_prev, raw_json)
            if digest != stored_hash:
                result.add(Problem("edited-record", "the record does not match its hash (record or link edited)",
                                   seq, record_id))
        checker.add(seq, digest)
        prev, expected_seq = stored_hash, seq + 1
    result.head_seq = expected_seq - 1 if result.links else None
    result.head_hash = prev if result.links else None
    checker.finish(result.head_seq or 0)
    _check_records_are_linked(session, result, found)
    _check_purges(session, result)
    # Chain order (the checkpoints' signatures were checked first of all; records outside the
    # chain come last).
    result.problems.sort(key=_chain_order)
    result.finished_at = utcnow()
    return result


def _check_missing_record(result: VerifyResult, tombstones: "_Tombstones", seq: int, record_id: int,
                          stored_prev: str, prev: str) -> None:
    """A link without its record: lawful only when the retention purge removed the record (its
    tombstone names this very link), and even then the link must still follow the previous one
    (its record hash is still checked by the checkpoint's Merkle root and the next link)."""
    if tombstones.record_at(seq) != record_id:
        result.add(Problem("missing-record", "the link's record is missing (deleted outside the retention purge)",
                           seq, record_id))
        return
    result.purged += 1
    if stored_prev != prev:
        result.add(Problem("edited-link", "prev_hash is not the hash of the previous link "
                                          "(a link edited, inserted or removed before this one)", seq, record_id))


class _Tombstones:
    """The purge's tombstones by seq, read forward in chunks as the walk meets missing records
    (constant memory; no query at all for a chain without missing records)."""

    def __init__(self, session: Session, batch: int) -> None:
        self.session, self.batch = session, batch
        self.chunk: dict[int, int] = {}
        self.loaded_to = 0  # every tombstone with seq < loaded_to is in chunk or passed

    def record_at(self, seq: int) -> int | None:
        if seq >= self.loaded_to:
            rows = self.session.execute(
                select(_tombstones.c.seq, _tombstones.c.record_id).where(_tombstones.c.seq >= seq)
                .order_by(_tombstones.c.seq).limit(self.batch)).all()
            self.chunk = {row.seq: row.record_id for row in rows}
            full = len(rows) == self.batch
            self.loaded_to = rows[-1].seq + 1 if full else 2**63 - 1
        return self.chunk.get(seq)


def _check_purges(session: Session, result: VerifyResult) -> None:
    """Every tombstone's record is gone and every purge removed the count it recorded; every purge is
    announced by its own chained record "audit.purge" (never purged) with the same id, count and
    checkpoint; and every tombstone lies within its purge's seqs and below the checkpoint it names. A
    tombstone or purge row added afterwards to excuse a deletion shows here, unless whoever forged it
    also appended a chained record, which the sink's copy and the next checkpoint expose."""
    tombstoned = session.scalar(select(func.count()).select_from(_tombstones)) or 0
    recorded = session.scalar(select(func.coalesce(func.sum(_purges.c.count), 0))) or 0
    if tombstoned != result.purged or recorded != tombstoned:
        result.add(Problem("purge-mismatch", f"the purges recorded {recorded} removed records, {tombstoned} "
                                             f"tombstones exist and {result.purged} links lack their record "
                                             f"with a tombstone"))
    announced = {}
    for (details,) in session.execute(select(_records.c.details).where(_records.c.action == "audit.purge")):
        if isinstance(details, dict):
            announced[details.get("purge_id")] = (details.get("count"), details.get("covered_to_seq"))
    for purge in session.execute(select(_purges.c.id, _purges.c.count, _purges.c.covered_to_seq)):
        if announced.get(purge.id) != (purge.count, purge.covered_to_seq):
            result.add(Problem("purge-unannounced", f"purge {purge.id} has no chained audit.purge record with its "
                                                    f"count and checkpoint (a purge row added or edited)"))
    out_of_bounds = session.scalar(
        select(func.count()).select_from(_tombstones.join(_purges, _purges.c.id == _tombstones.c.purge_id))
        .where(or_(_purges.c.covered_to_seq.is_(None), _tombstones.c.seq > _purges.c.covered_to_seq,
                   _tombstones.c.seq < _purges.c.seq_from, _tombstones.c.seq > _purges.c.seq_to))) or 0
    if out_of_bounds:
        result.add(Problem("purge-out-of-bounds", f"{out_of_bounds} tombstone(s) outside their purge's seqs or "
                                                  f"above the checkpoint it covered (a record deleted that no "
                                                  f"purge could remove)"))


def _chain_order(problem: Problem) -> tuple[bool, int]:
    position = problem.position if problem.position is not None else problem.seq
    return position is None, position or 0


_WALK = (select(_links.c.seq, _links.c.record_id, _links.c.prev_hash, _links.c.record_hash, *_RECORD_COLUMNS)
         .select_from(_links.outerjoin(_records, _records.c.id == _links.c.record_id))
         .order_by(_links.c.seq))


def _walk(session: Session, batch: int) -> Iterator[Sequence[Any]]:
    """The links joined to their records in seq order, as the driver returns them (no SQLAlchemy
    type processing: that alone would halve verify's speed), a server-side cursor on PostgreSQL."""
    connection = session.connection()
    sql = str(_WALK.compile(dialect=connection.dialect))
    # Per statement: Connection.execution_options() would change the session's connection for good.
    result = connection.exec_driver_sql(sql, execution_options={"yield_per": batch})
    try:
        for partition in result.partitions():
            yield from partition
    finally:
        result.close()


def _check_records_are_linked(session: Session, result: VerifyResult, found: int) -> None:
    result.records = session.scalar(select(func.count()).select_from(_records))
    duplicates = session.execute(
        select(_links.c.record_id, func.min(_links.c.seq), func.count()).group_by(_links.c.record_id)
        .having(func.count() > 1).order_by(func.min(_links.c.seq))).all()
    for record_id, first_seq, _ in duplicates:
        result.add(Problem("duplicate-link", "the record has more than one link", first_seq, record_id))
    if result.records == found - sum(count - 1 for _, _, count in duplicates):
        return
    unlinked = select(_records.c.id).where(~select(_links.c.seq).where(_links.c.record_id == _records.c.id)
                                           .exists()).order_by(_records.c.id)
    count = session.scalar(select(func.count()).select_from(unlinked.subquery()))
    for record_id in session.scalars(unlinked.limit(20)):
        result.add(Problem("unlinked-record", f"the record has no link: inserted outside the chain "
                                              f"({count} such records)", None, record_id))
    result.problem_count += max(0, count - 20)


def record_verification(session: Session, result: VerifyResult, *, by_label: str | None,
                        by_person_id: int | None = None) -> Verification:
    """Keep the result for the verify page (flushes; the caller commits)."""
    first = result.first_broken
    row = Verification(
        started_at=result.started_at, finished_at=result.finished_at or utcnow(), by_label=by_label,
        by_person_id=by_person_id, ok=result.ok, records=result.records, links=result.links,
        checkpoints=result.checkpoints, head_seq=result.head_seq, head_hash=result.head_hash,
        first_broken_seq=first.seq if first else None, first_broken_record_id=first.record_id if first else None,
        problem=str(first) if first else None, warnings=list(result.warnings), purged=result.purged,
    )
    session.add(row)
    session.flush()
    return row


def last_verification(session: Session) -> Verification | None:
    return session.scalars(select(Verification).order_by(Verification.finished_at.desc(), Verification.id.desc())
                           .limit(1)).first()


def checkpoints_in_order(session: Session) -> list[Checkpoint]:
    return list(session.scalars(select(Checkpoint).order_by(Checkpoint.seq_to, Checkpoint.id)))
