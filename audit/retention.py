"""Retention of the audit trail: the purge of expired records, which keeps the chain verifiable.

The retention periods are configured per kind of record (config/retention.toml, validated here). The
purge removes a record when its kind's period has passed AND a signed checkpoint covers it: its link
in audit_chain stays (it holds only hashes), so the chain's prev_hash linkage and the checkpoint's
Merkle root over the interval's record hashes still prove what was there. Per removed record the
purge writes a tombstone (audit_purged_records), per run a row in audit_purges and an audit record
"audit.purge", all in one transaction; `audit verify` accepts a link without its record only when
its tombstone exists (audit/chain.py), and reports every other missing record as broken.

This module is the ONLY code that deletes audit records (and their subject index rows); the database
refuses every other DELETE (migration 0011) and every UPDATE, and
tests/unit/audit/test_retention_only_path.py fails if another module gains such a statement.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import and_, delete, func, insert, literal, not_, or_, select, text
from sqlalchemy.orm import Session

from access.clock import utcnow
from audit.chain import iso_utc, lock_chain
from audit.checkpoints import last_checkpoint_seq
from audit.models import AuditRecord, ChainLink, Purge, PurgedRecord, RecordSubject
from audit.operations import RequestContext, record

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "config" / "retention.toml"
PURGE_ACTION = "audit.purge"
PURGE_SETTING = "portal.audit_purge"  # PostgreSQL: the transaction's authorisation (migration 0011)
_PREFIX = re.compile(r"[a-z0-9_.:-]{1,60}")
_NAME = re.compile(r"[a-z0-9_-]{1,40}")
MAX_YEARS = 100

_records = AuditRecord.__table__
_links = ChainLink.__table__
_purges = Purge.__table__
_tombstones = PurgedRecord.__table__
_subjects = RecordSubject.__table__


class RetentionConfigError(ValueError):
    """The retention file is invalid: the message names the file and the entry."""


# --- the policy ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    years: int = 0
    days: int = 0

    def cutoff(self, now: datetime) -> datetime:
        """Records that occurred before this moment are expired."""
        if self.days:
            return now - timedelta(days=self.days)
        try:
            return now.replace(year=now.year - self.years)
        except ValueError:  # 29 February in a year without one
            return now.replace(year=now.year - self.years, day=28)

    def __str__(self) -> str:
        return f"{self.years} years" if self.years else f"{self.days} days"


@dataclass(frozen=True)
class RecordKind:
    name: str
    prefix: str | None  # None: the default kind (every record no other kind claims)
    period: Period


@dataclass(frozen=True)
class RetentionPolicy:
    kinds: tuple[RecordKind, ...]  # the default kind last

    def kind_of(self, action: str) -> RecordKind:
        """The kind with the longest prefix of the action, else the default (as the purge's SQL does)."""
        matching = [kind for kind in self.kinds if kind.prefix is not None and action.startswith(kind.prefix)]
        return max(matching, key=lambda kind: len(kind.prefix)) if matching else self.kinds[-1]


def load_policy(path: str | Path | None = None) -> RetentionPolicy:
    source = Path(path) if path else DEFAULT_POLICY_FILE
    try:
        with source.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RetentionConfigError(f"{source}: {error}") from error
    return parse_policy(data, str(source))


def parse_policy(data: Mapping[str, Any], source: str = "retention.toml") -> RetentionPolicy:
    _only_keys(data, {"default", "kind"}, source)
    if not isinstance(data.get("default"), dict):
        raise RetentionConfigError(f"{source}: a [default] table with its period is required")
    _only_keys(data["default"], {"years", "days"}, f"{source} [default]")
    kinds = [_parse_kind(entry, f"{source} [[kind]] #{n}") for n, entry in enumerate(data.get("kind", []), 1)]
    for attribute in ("name", "prefix"):
        values = [getattr(kind, attribute) for kind in kinds]
        duplicates = sorted({value for value in values if values.count(value) > 1})
        if duplicates:
            raise RetentionConfigError(f"{source}: duplicate kind {attribute} {', '.join(duplicates)}")
    default = RecordKind("default", None, _parse_period(data["default"], f"{source} [default]"))
    if any(kind.name == default.name for kind in kinds):
        raise RetentionConfigError(f"{source}: the kind name 'default' is reserved")
    return RetentionPolicy(tuple(kinds) + (default,))


def _parse_kind(entry: Any, where: str) -> RecordKind:
    if not isinstance(entry, dict):
        raise RetentionConfigError(f"{where}: not a table")
    _only_keys(entry, {"name", "prefix", "years", "days"}, where)
    name, prefix = entry.get("name"), entry.get("prefix")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RetentionConfigError(f"{where}: name must be 1 to 40 of a-z 0-9 _ -")
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise RetentionConfigError(f"{where} ({name}): prefix must be 1 to 60 of a-z 0-9 _ . : -")
    return RecordKind(name, prefix, _parse_period(entry, f"{where} ({name})"))


def _parse_period(entry: Mapping[str, Any], where: str) -> Period:
    given = {unit: entry[unit] for unit in ("years", "days") if unit in entry}
    if len(given) != 1:
        raise RetentionConfigError(f"{where}: give the period in years or in days (exactly one of them)")
    (unit, value), = given.items()
    limit = MAX_YEARS if unit == "years" else MAX_YEARS * 366
    if type(value) is not int or not 1 <= value <= limit:
        raise RetentionConfigError(f"{where}: {unit} must be a whole number from 1 to {limit}")
    return Period(**{unit: value})


def _only_keys(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise RetentionConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")


# --- the purge -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KindCount:
    kind: RecordKind
    before: datetime
    count: int
    seq_from: int | None
    seq_to: int | None


@dataclass
class PurgeResult:
    at: datetime
    dry_run: bool
    covered_to_seq: int | None  # the last checkpoint's end (None: no checkpoint, nothing purgeable)
    kinds: list[KindCount] = field(default_factory=list)
    purge_id: int | None = None

    @property
    def count(self) -> int:
        return sum(kind.count for kind in self.kinds)

    def report(self) -> list[str]:
        verb = "would purge" if self.dry_run else "purged"
        lines = [f"audit retention ({'dry run, nothing written' if self.dry_run else f'purge {self.purge_id}'}): "
                 f"{verb} {self.count} record(s)"]
        if self.covered_to_seq is None:
            lines.append("no signed checkpoint yet: only records covered by a checkpoint may be purged")
        else:
            lines.append(f"records covered by a signed checkpoint: up to seq {self.covered_to_seq}")
        for entry in self.kinds:
            lines.append(f"  {entry.kind.name} ({entry.kind.prefix or 'every other action'}, {entry.kind.period}): "
                         f"{entry.count} before {iso_utc(entry.before)}")
        return lines


def purge(session: Session, policy: RetentionPolicy, *, by: RequestContext, dry_run: bool = False,
          now: datetime | None = None) -> PurgeResult:
    """Remove the expired records covered by a checkpoint (dry run: only count them). Takes the
    chain lock, so that no checkpoint or link is written meanwhile; flushes, the caller commits."""
    now = now or utcnow()
    lock_chain(session)
    checkpointed = last_checkpoint_seq(session)
    result = PurgeResult(at=now, dry_run=dry_run, covered_to_seq=checkpointed or None)
    conditions = {kind.name: _expired(policy, kind, now) for kind in policy.kinds}
    for kind in policy.kinds:
        expired = _expired_records(conditions[kind.name], checkpointed)
        count, seq_from, seq_to = session.execute(
            select(func.count(), func.min(expired.c.seq), func.max(expired.c.seq))).one()
        result.kinds.append(KindCount(kind, kind.period.cutoff(now), count, seq_from, seq_to))
    if dry_run:
        return result
    result.purge_id = _write_purge(session, result, by)
    if result.count:
        _remove(session, result, or_(*conditions.values()), checkpointed)
    record(session, by, action=PURGE_ACTION, outcome="success",
           reason=f"{result.count} record(s) past their retention period removed",
           details={"purge_id": result.purge_id, "count": result.count, "covered_to_seq": result.covered_to_seq,
                    "kinds": _kinds_document(result)})
    return result


def _expired(policy: RetentionPolicy, kind: RecordKind, now: datetime):
    """This kind's records (its prefix, not a longer prefix of another kind) older than its period."""
    action = _records.c.action
    if kind.prefix is None:
        claimed = [action.startswith(other.prefix, autoescape=True) for other in policy.kinds if other.prefix]
        belongs = not_(or_(*claimed)) if claimed else literal(True)
    else:
        longer = [action.startswith(other.prefix, autoescape=True) for other in policy.kinds
                  if other.prefix and other.prefix != kind.prefix and other.prefix.startswith(kind.prefix)]
        belongs = and_(action.startswith(kind.prefix, autoescape=True), *[not_(cond) for cond in longer])
    return and_(belongs, _records.c.occurred_at < kind.period.cutoff(now))


def _expired_records(condition, checkpointed: int):
    # The purges' own records are never purged: `audit verify` checks each purge against its chained
    # record (audit/chain.py, _check_purges), the proof that the purge ran through the portal.
    return (select(_records.c.id, _links.c.seq)
            .select_from(_records.join(_links, _links.c.record_id == _records.c.id))
            .where(condition, _records.c.action != PURGE_ACTION, _links.c.seq <= checkpointed).subquery())


def _write_purge(session: Session, result: PurgeResult, by: RequestContext) -> int:
    counted = [entry for entry in result.kinds if entry.count]
    return session.execute(insert(_purges).values(
        purged_at=result.at, by_label=by.actor_label, by_person_id=by.actor_person_id,
        covered_to_seq=result.covered_to_seq, count=result.count,
        seq_from=min((entry.seq_from for entry in counted), default=None),
        seq_to=max((entry.seq_to for entry in counted), default=None),
        kinds=_kinds_document(result))).inserted_primary_key[0]


def _kinds_document(result: PurgeResult) -> dict[str, Any]:
    return {entry.kind.name: {"prefix": entry.kind.prefix, "retention": str(entry.kind.period),
                              "before": iso_utc(entry.before), "count": entry.count} for entry in result.kinds}


def _remove(session: Session, result: PurgeResult, expired, checkpointed: int) -> None:
    """Tombstones first (they authorise the DELETE on SQLite), then the subject index and the records
    under the purge's authorisation (PostgreSQL), which is cleared again at once."""
    candidates = _expired_records(expired, checkpointed)
    session.execute(insert(_tombstones).from_select(
        ["record_id", "seq", "purge_id"],
        select(candidates.c.id, candidates.c.seq, literal(result.purge_id))))
    purged_ids = select(_tombstones.c.record_id).where(_tombstones.c.purge_id == result.purge_id)
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.execute(text("SELECT set_config(:name, :value, true)"),
                        {"name": PURGE_SETTING, "value": str(result.purge_id)})
    try:
        session.execute(delete(_subjects).where(_subjects.c.record_id.in_(purged_ids)))
        removed = session.execute(delete(_records).where(_records.c.id.in_(purged_ids))).rowcount
    finally:
        if postgresql:
            session.execute(text("SELECT set_config(:name, '', true)"), {"name": PURGE_SETTING})
    if removed != result.count:  # the chain lock holds: nothing may change between count and delete
        raise RuntimeError(f"the purge counted {result.count} expired records but removed {removed}")
    _forget_removed(session)


def _forget_removed(session: Session) -> None:
    """Records loaded in this session that are gone must not be flushed or read from memory."""
    for obj in [obj for obj in session.identity_map.values() if isinstance(obj, AuditRecord)]:
        session.expunge(obj)


def purges(session: Session, limit: int = 20) -> list[Purge]:
    return list(session.scalars(select(Purge).order_by(Purge.id.desc()).limit(limit)))


def purged_total(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(_tombstones)) or 0

