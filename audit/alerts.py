"""Alerts for the security officers: rules (config/alerts.toml) evaluated over the audit trail.

Rules
-----
failed_logins_account  failed logins for one login name (known or not) in a window: the password step and
                       the second-factor step (`second_factor.check`: a stolen password guessing codes)
failed_logins_ip       failed logins from one IP address in a window (both steps too)
denied_burst           denied decisions of one actor (person, else login name, else IP) on one enterprise
staff_many_employers   a provider's staff member acting for many distinct employers in a window
off_hours              access (configured actions and outcomes) outside the Belgian office hours of its day
large_export           an export of the audit trail (`audit.export`) of at least min_rows records

Windows are fixed: `window_minutes` long, counted from the Unix epoch (off_hours: the Belgian day; a
large export: the export record itself). An alert is identified by (rule, enterprise, key, window
start); unique indexes make a second alert for the same identity impossible, so a scan run twice, or by
two processes at once, raises each alert once. A later scan that finds more records in the window of an
open alert updates its count instead. The price of fixed windows: a burst split by a window boundary
is counted in two halves (a threshold halved for that case would be noisier on normal days).

Who sees an alert: `enterprise_id` None means the institution's officers only (failed logins by IP or by
an unknown login name, denials or off-hours logins outside any enterprise); otherwise the officers of
that enterprise and the institution's. Failed logins for a known account go to each enterprise the
person is linked with today (his employers' officers know him), else to the institution. A staff
member's many employers go to his provider (it answers for its staff) and the institution.

When scans run
--------------
`flask --app wsgi audit alerts` (a cron job or systemd timer every minute: alerts are written to the
outbox even if no officer is logged in), and again when an officer opens his dashboard or the alerts
page, so that what he sees is current to the last committed record. Both call `scan_alerts`.

The scan is incremental: a watermark (audit_alert_watermark, one row) holds the last *chain position*
(audit_chain.seq) examined, with the last record id for reference. The chain position is used rather
than the record id because links are assigned in commit order under the chain lock (audit/chain.py):
on PostgreSQL a record with a smaller id can commit after one with a larger id, and a watermark on ids
would skip it for ever. A record becomes visible to the scan once its transaction committed. The
watermark row is locked (SELECT ... FOR UPDATE) for the scan, so concurrent scans take turns. The
migration starts the watermark at the chain's head: the history before installation raises nothing.

No loops: records of the alerts themselves (`audit.alert*`) are never counted by any rule.

Each new alert writes one outbox message per officer who may see it and one audit record
(`audit.alert`); acknowledging writes `audit.alert.acknowledge`. No Flask here; nothing commits.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import (JSON, BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, and_,
                        func, or_, select, text)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from access.clock import BRUSSELS, as_utc, utcnow
from access.errors import Conflict, NotFound
from access.models import Enterprise, Link, OutboxMessage, Person
from audit.models import AuditRecord, ChainLink
from audit.operations import RequestContext, record
from db import Base

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_RULES = CONFIG_DIR / "alerts.toml"

ALERT_ACTION = "audit.alert"
ACKNOWLEDGE_ACTION = "audit.alert.acknowledge"
# The scan's own records: never a source of alerts.
ALERT_ACTIONS_PREFIX = "audit.alert"
EXPORT_ACTION = "audit.export"
SYSTEM_CONTEXT = RequestContext(actor_label="audit-alerts", user_agent="audit-alerts")
SCAN_BATCH = 5_000
KEY_LENGTH = 160
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RULE_NAMES = ("failed_logins_account", "failed_logins_ip", "denied_burst", "staff_many_employers", "off_hours",
              "large_export")

_OPEN = "acknowledged_at IS NULL"
_OF_ENTERPRISE = "enterprise_id IS NOT NULL"
_OF_INSTITUTION = "enterprise_id IS NULL"


# --- the models ------------------------------------------------------------------------------------------


class Alert(Base):
    """One rule's finding about one key (an account, an IP, a person) in one window."""

    __tablename__ = "audit_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(40))
    # None: the institution's officers only.
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))  # account:<login>, ip:<address>, person:<id>
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # exclusive
    count: Mapped[int] = mapped_column(Integer)
    # No foreign keys: the retention purge may remove the records an old alert points at.
    first_record_id: Mapped[int] = mapped_column(Integer)
    last_record_id: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    __table_args__ = (
        CheckConstraint("window_end > window_start", name="window"),
        CheckConstraint("count >= 1", name="count_positive"),
        CheckConstraint("first_record_id <= last_record_id", name="record_range"),
        CheckConstraint("acknowledged_at IS NOT NULL OR acknowledged_by_id IS NULL", name="acknowledged_by"),
        # One alert per rule, key and window, for an enterprise or for the institution (NULL is never
        # equal to NULL in a unique index, hence two partial indexes).
        Index("uq_audit_alerts_enterprise_window", "enterprise_id", "rule", "key", "window_start", unique=True,
              postgresql_where=text(_OF_ENTERPRISE), sqlite_where=text(_OF_ENTERPRISE)),
        Index("uq_audit_alerts_institution_window", "rule", "key", "window_start", unique=True,
              postgresql_where=text(_OF_INSTITUTION), sqlite_where=text(_OF_INSTITUTION)),
        # The dashboard's question: the open alerts of an enterprise (or all), newest first.
        Index("ix_audit_alerts_open", "enterprise_id", "id", postgresql_where=text(_OPEN),
              sqlite_where=text(_OPEN)),
    )


class AlertWatermark(Base):
    """Where the last scan stopped: one row (id 1)."""

    __tablename__ = "audit_alert_watermark"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_record_id: Mapped[int | None] = mapped_column(Integer)
    scanned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("last_seq >= 0", name="last_seq_not_negative"),
    )


# --- the rules (config/alerts.toml) -----------------------------------------------------------------------


class AlertConfigError(ValueError):
    """The rules file is wrong: the message names the file and the key."""


@dataclass(frozen=True)
class CountRule:
    """`threshold` matching records (staff_many_employers: distinct employers) in `window_minutes`."""

    name: str
    enabled: bool
    threshold: int
    window_minutes: int

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)


@dataclass(frozen=True)
class OffHoursRule:
    enabled: bool
    threshold: int
    actions: tuple[str, ...]
    outcomes: tuple[str, ...]
    # Monday = 0; None: no office hours that day.
    hours: tuple[tuple[time, time] | None, ...]
    name: str = "off_hours"

    def counts(self, action: str, outcome: str) -> bool:
        return outcome in self.outcomes and any(
            action.startswith(a[:-1]) if a.endswith("*") else action == a for a in self.actions)

    def outside(self, moment: datetime) -> bool:
        local = as_utc(moment).astimezone(BRUSSELS)
        hours = self.hours[local.weekday()]
        return hours is None or not hours[0] <= local.time() < hours[1]


@dataclass(frozen=True)
class ExportRule:
    enabled: bool
    min_rows: int
    name: str = "large_export"


@dataclass(frozen=True)
class AlertRules:
    failed_logins_account: CountRule
    failed_logins_ip: CountRule
    denied_burst: CountRule
    staff_many_employers: CountRule
    off_hours: OffHoursRule
    large_export: ExportRule


_ACTION_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,60}\*?")
_HOUR = re.compile(r"([01]\d|2[0-3]):[0-5]\d|24:00")
_OUTCOMES = ("allowed", "denied", "error", "success", "failure")


class _Section:
    """One rule's table, read key by key: every key must be known and of the right type."""

    def __init__(self, path: Path, name: str, data: Any, known: set[str]) -> None:
        self.path, self.name = path, name
        if not isinstance(data, dict):
            self.fail(None, "must be a table")
        unknown = sorted(set(data) - known)
        if unknown:
            self.fail(unknown[0], "is not a setting of this rule")
        self.data = data

    def fail(self, key: str | None, problem: str):
        where = f"[{self.name}]" + (f" {key}" if key else "")
        raise AlertConfigError(f"{self.path}: {where} {problem}")

    def required(self, key: str) -> Any:
        if key not in self.data:
            self.fail(key, "is missing")
        return self.data[key]

    def flag(self, key: str) -> bool:
        value = self.required(key)
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.required(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"must be a whole number from {low} to {high}")
        return value

    def strings(self, key: str, check: Callable[[str], bool], what: str) -> tuple[str, ...]:
        value = self.required(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and check(v) for v in value):
            self.fail(key, f"must be a non-empty list of {what}")
        return tuple(value)


def _count_rule(path: Path, name: str, data: Any, max_window: int = 24 * 60) -> CountRule:
    section = _Section(path, name, data, {"enabled", "threshold", "window_minutes"})
    return CountRule(name=name, enabled=section.flag("enabled"), threshold=section.integer("threshold", 1, 1_000_000),
                     window_minutes=section.integer("window_minutes", 1, max_window))


def _office_hours(section: _Section) -> tuple[tuple[time, time] | None, ...]:
    hours = _Section(section.path, f"{section.name}.hours", section.required("hours"), set(WEEKDAYS))
    result = []
    for day in WEEKDAYS:
        value = hours.required(day)
        if value == []:
            result.append(None)
            continue
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, str) and _HOUR.fullmatch(v) for v in value)):
            hours.fail(day, 'must be ["HH:MM", "HH:MM"] or [] (no office hours that day)')
        start, end = (time.max if v == "24:00" else time.fromisoformat(v) for v in value)
        if start >= end:
            hours.fail(day, "must start before it ends")
        result.append((start, end))
    return tuple(result)


def _off_hours_rule(path: Path, data: Any) -> OffHoursRule:
    section = _Section(path, "off_hours", data, {"enabled", "threshold", "actions", "outcomes", "hours"})
    return OffHoursRule(
        enabled=section.flag("enabled"), threshold=section.integer("threshold", 1, 1_000_000),
        actions=section.strings("actions", lambda v: bool(_ACTION_PATTERN.fullmatch(v)) and v != "*",
                                "actions (an action, or a prefix ending in *)"),
        outcomes=section.strings("outcomes", lambda v: v in _OUTCOMES, "outcomes (" + ", ".join(_OUTCOMES) + ")"),
        hours=_office_hours(section))


def _export_rule(path: Path, data: Any) -> ExportRule:
    section = _Section(path, "large_export", data, {"enabled", "min_rows"})
    return ExportRule(enabled=section.flag("enabled"), min_rows=section.integer("min_rows", 1, 10**12))


def parse_rules(path: Path) -> AlertRules:
    """Read and check the rules file; AlertConfigError (naming the file and the key) when it is wrong."""
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as error:
        raise AlertConfigError(f"{path}: cannot be read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise AlertConfigError(f"{path}: is not valid TOML ({error})") from None
    unknown = sorted(set(data) - set(RULE_NAMES))
    if unknown:
        raise AlertConfigError(f"{path}: [{unknown[0]}] is not a rule (rules: {', '.join(RULE_NAMES)})")
    missing = [name for name in RULE_NAMES if name not in data]
    if missing:
        raise AlertConfigError(f"{path}: [{missing[0]}] is missing (every rule is configured, enabled or not)")
    return AlertRules(
        failed_logins_account=_count_rule(path, "failed_logins_account", data["failed_logins_account"]),
        failed_logins_ip=_count_rule(path, "failed_logins_ip", data["failed_logins_ip"]),
        denied_burst=_count_rule(path, "denied_burst", data["denied_burst"]),
        staff_many_employers=_count_rule(path, "staff_many_employers", data["staff_many_employers"]),
        off_hours=_off_hours_rule(path, data["off_hours"]),
        large_export=_export_rule(path, data["large_export"]),
    )


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> AlertRules:
    return parse_rules(Path(path) if path else DEFAULT_RULES)


# --- findings: what a rule sees in the new records ----------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """A (rule, enterprise, key, window) whose records must be counted again."""

    rule: str
    enterprise_id: int | None
    key: str
    start: datetime
    end: datetime
    where: tuple = field(compare=False, hash=False, default=())  # SQL conditions selecting its records


@dataclass(frozen=True)
class Finding:
    bucket: Bucket
    count: int
    first_record_id: int
    last_record_id: int
    details: dict[str, Any]


def _fixed_window(moment: datetime, minutes: int) -> tuple[datetime, datetime]:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    size = minutes * 60
    start = epoch + timedelta(seconds=int((as_utc(moment) - epoch).total_seconds()) // size * size)
    return start, start + timedelta(seconds=size)


def _belgian_day(moment: datetime) -> tuple[datetime, datetime]:
    day = as_utc(moment).astimezone(BRUSSELS).date()
    start = datetime.combine(day, time(0), BRUSSELS)
    end = datetime.combine(day + timedelta(days=1), time(0), BRUSSELS)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def actor_key(r: AuditRecord) -> tuple[str, tuple] | None:
    """Who acted, as a key and the SQL condition selecting his records: the person, else the login name
    he used, else the address he came from."""
    a = AuditRecord
    if r.actor_person_id is not None:
        return f"person:{r.actor_person_id}", (a.actor_person_id == r.actor_person_id,)
    if r.actor_label:
        return f"account:{r.actor_label}"[:KEY_LENGTH], (a.actor_person_id.is_(None), a.actor_label == r.actor_label)
    if r.ip:
        return f"ip:{r.ip}", (a.actor_person_id.is_(None), a.actor_label.is_(None), a.ip == r.ip)
    return None


def _enterprise_is(enterprise_id: int | None):
    a = AuditRecord
    return a.enterprise_id.is_(None) if enterprise_id is None else a.enterprise_id == enterprise_id


def _not_alerts():
    return ~AuditRecord.action.startswith(ALERT_ACTIONS_PREFIX)


# The password step and the second-factor step (issue 6) of a login, and a step-up's check.
LOGIN_STEPS = ("login", "second_factor.check")


def _login_failure():
    return and_(AuditRecord.action.in_(LOGIN_STEPS), AuditRecord.outcome == "failure")


def _denied_decision():
    return and_(AuditRecord.action.startswith("decision:"), AuditRecord.outcome == "denied")


def _enterprises_of_person(session: Session, person_id: int, day: date) -> list[int]:
    return sorted(session.scalars(select(Link.enterprise_id).distinct().where(
        Link.person_id == person_id, Link.start_date <= day, or_(Link.end_date.is_(None), Link.end_date >= day))))


def _buckets(session: Session, rules: AlertRules, records: list[AuditRecord], now: datetime) -> set[Bucket]:
    """The windows the new records fall in, per enabled rule (large exports excepted: see _exports)."""
    a = AuditRecord
    found: dict[Bucket, Bucket] = {}

    def add(bucket: Bucket) -> None:
        found.setdefault(bucket, bucket)

    day = as_utc(now).astimezone(BRUSSELS).date()
    person_enterprises: dict[int, list[int]] = {}
    for r in records:
        failed_login = r.action in LOGIN_STEPS and r.outcome == "failure"
        rule = rules.failed_logins_account
        if rule.enabled and failed_login and r.actor_label:
            start, end = _fixed_window(r.occurred_at, rule.window_minutes)
            scopes: list[int | None] = [None]
            if r.actor_person_id is not None:
                if r.actor_person_id not in person_enterprises:
                    person_enterprises[r.actor_person_id] = _enterprises_of_person(session, r.actor_person_id, day)
                scopes = person_enterprises[r.actor_person_id] or [None]
            for enterprise_id in scopes:
                add(Bucket(rule.name, enterprise_id, f"account:{r.actor_label}"[:KEY_LENGTH], start, end,
                           (_login_failure(), a.actor_label == r.actor_label)))
        rule = rules.failed_logins_ip
        if rule.enabled and failed_login and r.ip:
            start, end = _fixed_window(r.occurred_at, rule.window_minutes)
            add(Bucket(rule.name, None, f"ip:{r.ip}", start, end, (_login_failure(), a.ip == r.ip)))
        rule = rules.denied_burst
        actor = actor_key(r)
        if rule.enabled and actor and r.action.startswith("decision:") and r.outcome == "denied":
            start, end = _fixed_window(r.occurred_at, rule.window_minutes)
            add(Bucket(rule.name, r.enterprise_id, actor[0], start, end,
                       (_denied_decision(), _enterprise_is(r.enterprise_id), *actor[1])))
        rule = rules.staff_many_employers
        if (rule.enabled and r.provider_enterprise_id is not None and r.actor_person_id is not None
                and r.enterprise_id is not None):
            start, end = _fixed_window(r.occurred_at, rule.window_minutes)
            add(Bucket(rule.name, r.provider_enterprise_id, f"person:{r.actor_person_id}", start, end,
                       (a.provider_enterprise_id == r.provider_enterprise_id,
                        a.actor_person_id == r.actor_person_id, a.enterprise_id.is_not(None))))
        hours = rules.off_hours
        if hours.enabled and actor and hours.counts(r.action, r.outcome) and hours.outside(r.occurred_at):
            start, end = _belgian_day(r.occurred_at)
            add(Bucket(hours.name, r.enterprise_id, actor[0], start, end,
                       (_enterprise_is(r.enterprise_id), *actor[1])))
    return set(found.values())


def _in_window(bucket: Bucket):
    a = AuditRecord
    return (a.occurred_at >= bucket.start, a.occurred_at < bucket.end, _not_alerts(), *bucket.where)


def _evaluate(session: Session, rules: AlertRules, bucket: Bucket) -> Finding | None:
    """Count the bucket's records (old and new alike) and compare with the rule's threshold."""
    a = AuditRecord
    if bucket.rule == rules.off_hours.name:
        return _evaluate_off_hours(session, rules.off_hours, bucket)
    rule: CountRule = getattr(rules, bucket.rule)
    row = session.execute(select(func.count(), func.min(a.id), func.max(a.id),
                                 func.count(a.enterprise_id.distinct())).where(*_in_window(bucket))).one()
    total, first, last, enterprises = row
    measure = enterprises if bucket.rule == rules.staff_many_employers.name else total
    if not total or measure < rule.threshold:
        return None
    return Finding(bucket, measure, first, last, _details(session, bucket, rule.threshold))


def _evaluate_off_hours(session: Session, rule: OffHoursRule, bucket: Bucket) -> Finding | None:
    a = AuditRecord
    rows = session.execute(select(a.id, a.occurred_at, a.action, a.outcome).where(*_in_window(bucket))
                           .order_by(a.id)).all()
    hits = [row for row in rows if rule.counts(row.action, row.outcome) and rule.outside(row.occurred_at)]
    if len(hits) < rule.threshold:
        return None
    first_moment = as_utc(min(row.occurred_at for row in hits)).astimezone(BRUSSELS)
    return Finding(bucket, len(hits), hits[0].id, hits[-1].id,
                   {"threshold": rule.threshold, "first_access": first_moment.isoformat(timespec="seconds"),
                    "actions": sorted({row.action for row in hits})[:10]})


def _details(session: Session, bucket: Bucket, threshold: int) -> dict[str, Any]:
    """What the officer needs without opening the review screen: addresses, accounts, employers."""
    a = AuditRecord
    details: dict[str, Any] = {"threshold": threshold}
    if bucket.rule in ("failed_logins_account", "failed_logins_ip"):
        details["ips"] = sorted(ip for ip in session.scalars(
            select(a.ip).distinct().where(*_in_window(bucket), a.ip.is_not(None)).limit(20)))
        details["accounts"] = sorted(label for label in session.scalars(
            select(a.actor_label).distinct().where(*_in_window(bucket), a.actor_label.is_not(None)).limit(20)))
    elif bucket.rule == "staff_many_employers":
        details["employers"] = [{"id": eid, "name": name} for eid, name in session.execute(
            select(Enterprise.id, Enterprise.name).where(Enterprise.id.in_(
                select(a.enterprise_id).where(*_in_window(bucket)).distinct())).order_by(Enterprise.id).limit(100))]
    elif bucket.rule == "denied_burst":
        details["applications"] = sorted(app for app in session.scalars(
            select(a.application).distinct().where(*_in_window(bucket), a.application.is_not(None)).limit(20)))
    return details


def _exports(rule: ExportRule, records: list[AuditRecord]) -> list[Finding]:
    """One finding per export record of at least min_rows rows (details written by audit/export.py:
    format, rows, filter, confirmed, cap)."""
    findings = []
    for r in records:
        details = r.details if isinstance(r.details, dict) else {}
        rows = details.get("rows")
        if (not rule.enabled or r.action != EXPORT_ACTION or r.outcome != "success" or isinstance(rows, bool)
                or not isinstance(rows, int) or rows < rule.min_rows):
            continue
        actor = actor_key(r)
        key = actor[0] if actor else f"record:{r.id}"
        moment = as_utc(r.occurred_at)
        bucket = Bucket(rule.name, r.enterprise_id, key, moment, moment + timedelta(microseconds=1))
        findings.append(Finding(bucket, 1, r.id, r.id, {
            "rows": rows, "min_rows": rule.min_rows, "format": details.get("format"),
            "filter": details.get("filter"), "confirmed": details.get("confirmed"), "cap": details.get("cap")}))
    return findings


# --- the scan ------------------------------------------------------------------------------------------------


@dataclass
class ScanResult:
    examined: int = 0
    created: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    last_seq: int = 0


def _watermark(session: Session, *, wait: bool = True) -> AlertWatermark | None:
    """The watermark row, locked for this transaction (created at the chain's head if missing). With
    wait=False, None when another scan holds it (PostgreSQL; SQLite serialises writers anyway)."""
    locked = select(AlertWatermark).where(AlertWatermark.id == 1).with_for_update(skip_locked=not wait)
    mark = session.scalar(locked)
    if mark is not None:
        return mark
    if session.scalar(select(AlertWatermark.id).where(AlertWatermark.id == 1)) is not None:
        return None  # it exists: another scan holds it
    head = session.execute(select(ChainLink.seq, ChainLink.record_id).order_by(ChainLink.seq.desc()).limit(1)).first()
    try:
        with session.begin_nested():
            session.add(AlertWatermark(id=1, last_seq=head.seq if head else 0,
                                       last_record_id=head.record_id if head else None))
            session.flush()
    except IntegrityError:  # a concurrent scan created it first
        pass
    return session.scalar(locked)


def scan_alerts(session: Session, now: datetime, rules: AlertRules, *, by: RequestContext = SYSTEM_CONTEXT,
                batch: int = SCAN_BATCH, wait: bool = True, max_batches: int | None = None) -> ScanResult:
    """Evaluate the records committed since the last scan; create (or update) alerts, write their outbox
    messages and audit records; move the watermark. Flushes, never commits.
    A page's scan passes wait=False (another scan running: nothing to do, the page shows what is there)
    and max_batches (a backlog is the scheduled command's work, not a page view's)."""
    mark = _watermark(session, wait=wait)
    if mark is None:
        return ScanResult()
    result = ScanResult(last_seq=mark.last_seq)
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        rows = session.execute(
            select(AuditRecord, ChainLink.seq).join(ChainLink, ChainLink.record_id == AuditRecord.id)
            .where(ChainLink.seq > mark.last_seq).order_by(ChainLink.seq).limit(batch)).all()
        if not rows:
            break
        records = [r for r, _ in rows if not r.action.startswith(ALERT_ACTIONS_PREFIX)]
        result.examined += len(records)
        findings = [found for bucket in sorted(_buckets(session, rules, records, now), key=_bucket_order)
                    if (found := _evaluate(session, rules, bucket)) is not None]
        findings += _exports(rules.large_export, records)
        for finding in findings:
            _raise(session, finding, now, by, result)
        mark.last_seq = rows[-1].seq
        mark.last_record_id = max(r.id for r, _ in rows)
    mark.scanned_at = now
    session.flush()
    result.last_seq = mark.last_seq
    return result


def _bucket_order(bucket: Bucket) -> tuple:
    return (as_utc(bucket.start), bucket.rule, bucket.enterprise_id or 0, bucket.key)


def _existing(session: Session, bucket: Bucket) -> Alert | None:
    return session.scalar(select(Alert).where(
        Alert.rule == bucket.rule, Alert.key == bucket.key, Alert.window_start == bucket.start,
        Alert.enterprise_id.is_(None) if bucket.enterprise_id is None else Alert.enterprise_id == bucket.enterprise_id))


def _raise(session: Session, finding: Finding, now: datetime, by: RequestContext, result: ScanResult) -> None:
    bucket = finding.bucket
    existing = _existing(session, bucket)
    if existing is not None:
        if finding.count > existing.count or finding.last_record_id > existing.last_record_id:
            existing.count = max(existing.count, finding.count)
            existing.last_record_id = max(existing.last_record_id, finding.last_record_id)
            existing.details = finding.details
            session.flush()
            result.updated.append(existing)
        return
    alert = Alert(rule=bucket.rule, enterprise_id=bucket.enterprise_id, key=bucket.key, window_start=bucket.start,
                  window_end=bucket.end, count=finding.count, first_record_id=finding.first_record_id,
                  last_record_id=finding.last_record_id, details=finding.details, created_at=now)
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:  # a concurrent scan raised the same alert
        return
    _notify_officers(session, alert)
    record(session, by, action=ALERT_ACTION, outcome="success", enterprise_id=alert.enterprise_id,
           reason=describe(alert), details={"alert_id": alert.id, "rule": alert.rule, "key": alert.key,
                                            "count": alert.count, "window_start": _iso(alert.window_start),
                                            "window_end": _iso(alert.window_end),
                                            "first_record_id": alert.first_record_id,
                                            "last_record_id": alert.last_record_id})
    result.created.append(alert)


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat()


# --- telling the officers -------------------------------------------------------------------------------------

RULE_TITLES = {
    "failed_logins_account": "Repeated failed logins for one account",
    "failed_logins_ip": "Repeated failed logins from one IP address",
    "denied_burst": "A burst of refused accesses",
    "staff_many_employers": "A provider's staff member acting for many employers",
    "off_hours": "Access outside office hours",
    "large_export": "A large export of the audit trail",
}


def describe(alert: Alert, *, for_mail: bool = False) -> str:
    """One English sentence (the outbox and the audit record; the web page translates its own). In a
    mail, a login name nobody has is not repeated: people type their password into that field."""
    start = as_utc(alert.window_start).astimezone(BRUSSELS)
    end = as_utc(alert.window_end).astimezone(BRUSSELS)
    if for_mail and alert.key.startswith("account:"):
        return (f"{alert.count} failed logins for a login name no account has, between {start:%Y-%m-%d %H:%M} "
                f"and {end:%H:%M} (the name is shown on the alerts page).")
    subject = alert.key.split(":", 1)[1] if ":" in alert.key else alert.key
    if alert.rule == "large_export":
        return f"{subject} exported {alert.details.get('rows')} audit records on {start:%Y-%m-%d %H:%M}."
    if alert.rule == "staff_many_employers":
        return (f"Person {subject} acted for {alert.count} employers between {start:%Y-%m-%d %H:%M} and "
                f"{end:%H:%M}.")
    if alert.rule == "off_hours":
        return f"{alert.key} accessed the portal {alert.count} time(s) outside office hours on {start:%Y-%m-%d}."
    what = {"failed_logins_account": "failed logins for", "failed_logins_ip": "failed logins from",
            "denied_burst": "refused accesses by"}[alert.rule]
    return f"{alert.count} {what} {alert.key} between {start:%Y-%m-%d %H:%M} and {end:%H:%M}."


def recipients(session: Session, enterprise_id: int | None) -> list[Person]:
    """The officers who may see an alert: its enterprise's (if any) and the institution's."""
    from access.security_officers import current_officers

    officers = current_officers(session, None)
    if enterprise_id is not None:
        officers = current_officers(session, enterprise_id) + officers
    unique: dict[int, Person] = {}
    for officer in officers:
        unique.setdefault(officer.person_id, officer.person)
    return list(unique.values())


def _notify_officers(session: Session, alert: Alert) -> None:
    enterprise = session.get(Enterprise, alert.enterprise_id) if alert.enterprise_id is not None else None
    about = f"{enterprise.name} ({enterprise.kbo_display})" if enterprise is not None else "the institution"
    body = (f"{describe(alert, for_mail=True)}\nScope: {about}.\nRule: {alert.rule}; alert {alert.id}.\n"
            "Open the alerts page of the portal to review the records and acknowledge the alert.")
    for person in recipients(session, alert.enterprise_id):
        session.add(OutboxMessage(created_at=alert.created_at, kind="security-alert", recipient_person_id=person.id,
                                  recipient_email=person.email, subject=f"Security alert: {RULE_TITLES[alert.rule]}",
                                  body=body))
    session.flush()


# --- reading and acknowledging (in a scope from the decision point) ------------------------------------------


def _in_scope(scope) -> tuple:
    """audit.queries.AuditScope: an enterprise's officer sees its alerts only; the institution all."""
    if scope.institution:
        return ()
    if scope.enterprise_id is None:  # unreachable (AuditScope refuses it); never widen the scope
        raise PermissionError("no scope")
    return (Alert.enterprise_id == scope.enterprise_id,)


def alerts(session: Session, scope, *, state: str = "open", limit: int = 100) -> list[Alert]:
    """Newest first; state: open, acknowledged or all."""
    stmt = select(Alert).where(*_in_scope(scope))
    if state == "open":
        stmt = stmt.where(Alert.acknowledged_at.is_(None))
    elif state == "acknowledged":
        stmt = stmt.where(Alert.acknowledged_at.is_not(None))
    elif state != "all":
        raise ValueError(state)
    return list(session.scalars(stmt.order_by(Alert.id.desc()).limit(limit)))


def open_count(session: Session, scope) -> int:
    return session.scalar(select(func.count()).select_from(Alert).where(*_in_scope(scope),
                                                                        Alert.acknowledged_at.is_(None)))


def get_alert(session: Session, alert_id: int, scope) -> Alert:
    alert = session.scalar(select(Alert).where(Alert.id == alert_id, *_in_scope(scope)))
    if alert is None:
        raise NotFound("Unknown alert.", "alert_id")
    return alert


def acknowledge(session: Session, alert_id: int, scope, *, by: RequestContext) -> Alert:
    """The officer has looked at the alert. Once only (Conflict the second time)."""
    alert = get_alert(session, alert_id, scope)
    if alert.acknowledged_at is not None:
        raise Conflict("This alert was already acknowledged.", "alert_id")
    alert.acknowledged_at = utcnow()
    alert.acknowledged_by_id = by.actor_person_id
    session.flush()
    record(session, by, action=ACKNOWLEDGE_ACTION, outcome="success", enterprise_id=alert.enterprise_id,
           details={"alert_id": alert.id, "rule": alert.rule, "key": alert.key,
                    "before": {"acknowledged": False}, "after": {"acknowledged": True}})
    return alert


# --- the review screen's filter for an alert's records ----------------------------------------------------------


def _moment_param(moment: datetime) -> str:
    return as_utc(moment).astimezone(BRUSSELS).isoformat(timespec="microseconds")


def review_filter(alert: Alert, scope) -> dict[str, str] | None:
    """Query parameters of the review screen (audit.queries) showing the alert's records, or None when
    that scope cannot see them (an enterprise's officer does not see logins, which belong to no
    enterprise, nor the records of his provider's staff about its clients)."""
    if not scope.institution and alert.rule in ("failed_logins_account", "staff_many_employers"):
        return None
    params = {"from": _moment_param(alert.window_start),
              "until": _moment_param(as_utc(alert.window_end) - timedelta(microseconds=1))}
    kind, _, value = alert.key.partition(":")
    actor = {"person": {"actor": value}, "ip": {"ip": value}}.get(kind, {})
    # No action filter: the failures of both login steps (and any other failure in the window) show.
    if alert.rule == "failed_logins_account":
        params.update(outcome="failure")
    elif alert.rule == "failed_logins_ip":
        params.update(outcome="failure", ip=value)
    elif alert.rule == "denied_burst":
        params.update(action="decision:*", outcome="denied", **actor)
    elif alert.rule == "staff_many_employers":
        params.update(provider=str(alert.enterprise_id), actor=value)
        return params
    elif alert.rule == "off_hours":
        params.update(actor)
    elif alert.rule == "large_export":
        params.update(action=EXPORT_ACTION, **actor)
    if alert.enterprise_id is not None and alert.rule != "failed_logins_account":  # logins have no enterprise
        params["enterprise"] = str(alert.enterprise_id)
    return params
