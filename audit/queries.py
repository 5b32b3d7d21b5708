"""Reading the audit trail for review: a validated filter, a keyset-paginated query in a scope, saved
filters.

The filter comes from a dict of strings (query parameters, a saved filter):

    from, until    a date (YYYY-MM-DD, a whole Belgian day) or a moment (YYYY-MM-DDTHH:MM[:SS], Belgian
                   time unless it carries an offset); `from` is inclusive, `until` too
    actor          the acting person's id
    enterprise     the enterprise acted for: its id, or its KBO number (0412.345.614 or 10 digits)
    provider       the service provider whose staff acted, likewise
    application    an application or function code
    action         an action (`right.grant`), or a prefix ending in `*` (`decision:*`)
    outcome        allowed, denied, error, success or failure; several separated by commas
    ip             an IPv4 or IPv6 address
    q              words in the reason (case-insensitive, wildcards taken literally)

Unknown fields and bad values are refused with a ValidationError naming the field.

Order: occurred_at DESC, id DESC, paginated by keyset (a cursor token naming the boundary row, never
OFFSET): the indexes (occurred_at, id) and (enterprise_id, occurred_at, id) serve the default queries
of the institution and of an enterprise. The scope is part of every query: an enterprise's officer
only ever gets rows with enterprise_id = his enterprise (which includes what its providers' staff did
for it: those records carry the employer's id, and the provider in provider_enterprise_id).

Names come with the ids in the same query (outer joins), never one query per row.
No Flask here.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator, Mapping

from sqlalchemy import Select, exists, literal, select, tuple_
from sqlalchemy.orm import Session, aliased

from access.clock import BRUSSELS, as_utc, utcnow
from access.errors import Conflict, NotFound, ValidationError
from access.models import Enterprise, Person, SavedFilter
from access.validators import format_kbo
from audit.models import AuditRecord
from audit.operations import RequestContext, record

FILTER_FIELDS = ("from", "until", "actor", "enterprise", "provider", "application", "action", "outcome", "ip", "q")
OUTCOMES = ("allowed", "denied", "error", "success", "failure")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_ID = 2**31 - 1
SAVED_FILTER_KIND = "audit"
MAX_SAVED_FILTERS = 100

_APPLICATION = re.compile(r"[a-z0-9_]{1,40}")
_ACTION = re.compile(r"[A-Za-z0-9_.:\-]{1,60}")
_KBO = re.compile(r"[01]\d{3}\.?\d{3}\.?\d{3}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")


# --- the filter ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnterpriseRef:
    """An enterprise named in a filter: by id, or by KBO number until resolved."""

    id: int | None = None
    kbo: str | None = None


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None  # inclusive, UTC
    before: datetime | None = None  # exclusive, UTC
    actor_person_id: int | None = None
    enterprise: EnterpriseRef | None = None
    provider: EnterpriseRef | None = None
    application: str | None = None
    action: str | None = None
    action_prefix: bool = False
    outcomes: tuple[str, ...] = ()
    ip: str | None = None
    text: str | None = None
    # The fields as given (stripped, non-empty): for links, the form and saved filters.
    params: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def enterprise_id(self) -> int | None:
        return self.enterprise.id if self.enterprise else None


def _single(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValidationError("The filter field '%(name)s' may be given only once.", name, name=name)
        value = value[0]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("The filter field '%(name)s' must be text.", name, name=name)
    if len(value) > 200:
        raise ValidationError("The filter field '%(name)s' may have at most 200 characters.", name, name=name)
    if any(ord(ch) < 32 for ch in value):
        raise ValidationError("The filter field '%(name)s' contains control characters.", name, name=name)
    return value.strip()


def _moment(value: str, name: str, *, end: bool) -> datetime:
    """A date (a whole Belgian day) or a moment; returns the bound in UTC (`end`: exclusive)."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = date.fromisoformat(value)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), BRUSSELS).astimezone(timezone.utc)
        if _MOMENT.fullmatch(value):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=BRUSSELS)
            moment = moment.astimezone(timezone.utc)
            return moment + timedelta(microseconds=1) if end else moment
    except (ValueError, OverflowError):
        pass
    raise ValidationError("'%(value)s' is not a date (YYYY-MM-DD) or a moment (YYYY-MM-DDTHH:MM).", name,
                          value=value[:40])


def _positive_id(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) <= MAX_ID:
        raise ValidationError("'%(value)s' is not an id.", name, value=value[:40])
    return int(value)


def _enterprise_ref(value: str, name: str) -> EnterpriseRef:
    compact = value.replace(" ", "")
    if _KBO.fullmatch(compact):
        digits = compact.replace(".", "")
        if int(digits[8:]) != 97 - int(digits[:8]) % 97:
            raise ValidationError("%(value)s is not a valid KBO number.", name, value=value[:40])
        return EnterpriseRef(kbo=digits)
    if not value.isdigit():
        raise ValidationError("'%(value)s' is neither an enterprise id nor a KBO number.", name, value=value[:40])
    return EnterpriseRef(id=_positive_id(value, name))


def parse_filter(data: Mapping[str, Any]) -> AuditFilter:
    """Validate a filter given as strings; refuse unknown fields and bad values (ValidationError, with
    the field). Empty fields are ignored."""
    unknown = sorted(set(data) - set(FILTER_FIELDS))
    if unknown:
        raise ValidationError("Unknown filter field '%(name)s'.", unknown[0], name=unknown[0][:40])
    params = {name: _single(data, name) for name in FILTER_FIELDS if name in data}
    params = {name: value for name, value in params.items() if value}
    values: dict[str, Any] = {}
    if "from" in params:
        values["since"] = _moment(params["from"], "from", end=False)
    if "until" in params:
        values["before"] = _moment(params["until"], "until", end=True)
        if "since" in values and values["before"] <= values["since"]:
            raise ValidationError("The end of the period comes before its start.", "until")
    if "actor" in params:
        values["actor_person_id"] = _positive_id(params["actor"], "actor")
    if "enterprise" in params:
        values["enterprise"] = _enterprise_ref(params["enterprise"], "enterprise")
    if "provider" in params:
        values["provider"] = _enterprise_ref(params["provider"], "provider")
    if "application" in params:
        if not _APPLICATION.fullmatch(params["application"]):
            raise ValidationError("'%(value)s' is not an application code.", "application",
                                  value=params["application"][:40])
        values["application"] = params["application"]
    if "action" in params:
        action = params["action"]
        prefix = action.endswith("*")
        if not _ACTION.fullmatch(action[:-1] if prefix else action):
            raise ValidationError("'%(value)s' is not an action (e.g. right.grant, or decision:* for a prefix).",
                                  "action", value=action[:40])
        values["action"], values["action_prefix"] = (action[:-1] if prefix else action), prefix
    if "outcome" in params:
        outcomes = tuple(dict.fromkeys(part.strip() for part in params["outcome"].split(",") if part.strip()))
        wrong = [o for o in outcomes if o not in OUTCOMES]
        if wrong or not outcomes:
            raise ValidationError("Unknown outcome '%(value)s': use allowed, denied, error, success or failure.",
                                  "outcome", value=(wrong or [params["outcome"]])[0][:40])
        values["outcomes"] = outcomes
    if "ip" in params:
        try:
            values["ip"] = str(ipaddress.ip_address(params["ip"]))
        except ValueError:
            raise ValidationError("'%(value)s' is not an IP address.", "ip", value=params["ip"][:40]) from None
    if "q" in params:
        values["text"] = params["q"]
    return AuditFilter(params=params, **values)


def resolve(session: Session, flt: AuditFilter) -> AuditFilter:
    """The filter with enterprises named by KBO number replaced by their ids (unknown: ValidationError)."""
    from dataclasses import replace

    changes = {}
    for name, attribute in (("enterprise", "enterprise"), ("provider", "provider")):
        ref = getattr(flt, attribute)
        if ref is not None and ref.id is None:
            found = session.scalar(select(Enterprise.id).where(Enterprise.kbo_number == ref.kbo))
            if found is None:
                raise ValidationError("No enterprise %(kbo)s is registered.", name, kbo=format_kbo(ref.kbo))
            changes[attribute] = EnterpriseRef(id=found, kbo=ref.kbo)
    return replace(flt, **changes) if changes else flt


def parse_and_resolve(session: Session, data: Mapping[str, Any]) -> AuditFilter:
    return resolve(session, parse_filter(data))


# --- the scope ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditScope:
    """What a reviewer may see: one enterprise's records, or (the institution) all of them. Built from
    the decision point's answer, never from the filter alone."""

    enterprise_id: int | None
    institution: bool = False

    def __post_init__(self) -> None:
        if self.institution == (self.enterprise_id is not None):
            raise ValueError("a scope is either the institution or one enterprise")

    @classmethod
    def of_enterprise(cls, enterprise_id: int) -> "AuditScope":
        return cls(enterprise_id=enterprise_id)

    @classmethod
    def of_institution(cls) -> "AuditScope":
        return cls(enterprise_id=None, institution=True)

    @classmethod
    def from_decision(cls, decision) -> "AuditScope":
        """The scope an allowed decision on the audit function grants (access.decision.Decision)."""
        if not decision.allowed:
            raise PermissionError("the decision point refused")
        if decision.enterprise_id is None:
            return cls.of_institution()
        return cls.of_enterprise(decision.enterprise_id)


# --- the query ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    """A record with the names next to its ids."""

    record: AuditRecord
    actor_name: str | None
    enterprise_name: str | None
    enterprise_kbo: str | None
    provider_name: str | None
    provider_kbo: str | None

    @property
    def occurred_at(self) -> datetime:
        return as_utc(self.record.occurred_at)

    @property
    def cursor(self) -> str:
        return encode_cursor(self.occurred_at, self.record.id)


_actor = aliased(Person, name="actor")
_enterprise = aliased(Enterprise, name="acted_for")
_provider = aliased(Enterprise, name="provider")


def _conditions(flt: AuditFilter, scope: AuditScope) -> list:
    r = AuditRecord
    conditions = []
    if not scope.institution:
        if scope.enterprise_id is None:  # unreachable (AuditScope refuses it); never widen the scope
            raise PermissionError("no scope")
        conditions.append(r.enterprise_id == scope.enterprise_id)
    if flt.since is not None:
        conditions.append(r.occurred_at >= _bound(flt.since))
    if flt.before is not None:
        conditions.append(r.occurred_at < _bound(flt.before))
    if flt.actor_person_id is not None:
        conditions.append(r.actor_person_id == flt.actor_person_id)
    for ref, column in ((flt.enterprise, r.enterprise_id), (flt.provider, r.provider_enterprise_id)):
        if ref is not None:
            conditions.append(column == ref.id if ref.id is not None else column == select(Enterprise.id).where(
                Enterprise.kbo_number == ref.kbo).scalar_subquery())
    if flt.application is not None:
        conditions.append(r.application == flt.application)
    if flt.action is not None:
        conditions.append(r.action.like(_escape_like(flt.action) + "%", escape="\\") if flt.action_prefix
                          else r.action == flt.action)
    if flt.outcomes:
        conditions.append(r.outcome.in_(flt.outcomes))
    if flt.ip is not None:
        conditions.append(r.ip == flt.ip)
    if flt.text:
        conditions.append(r.reason.ilike("%" + _escape_like(flt.text) + "%", escape="\\"))
    return conditions


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _bound(moment: datetime) -> datetime:
    """A moment as stored: UTC (SQLite keeps the wall-clock digits, so they must be UTC's)."""
    return moment.astimezone(timezone.utc)


def build_query(flt: AuditFilter, scope: AuditScope) -> Select:
    """The records in scope matching the filter, newest first, with the names; no limit."""
    r = AuditRecord
    return (
        select(r, (_actor.first_name + " " + _actor.last_name).label("actor_name"),
               _enterprise.name.label("enterprise_name"), _enterprise.kbo_number.label("enterprise_kbo"),
               _provider.name.label("provider_name"), _provider.kbo_number.label("provider_kbo"))
        .outerjoin(_actor, _actor.id == r.actor_person_id)
        .outerjoin(_enterprise, _enterprise.id == r.enterprise_id)
        .outerjoin(_provider, _provider.id == r.provider_enterprise_id)
        .where(*_conditions(flt, scope))
        .order_by(r.occurred_at.desc(), r.id.desc())
    )


def _row(result_row) -> AuditRow:
    record_, actor_name, enterprise_name, enterprise_kbo, provider_name, provider_kbo = result_row
    return AuditRow(record_, actor_name, enterprise_name, enterprise_kbo, provider_name, provider_kbo)


# cursors: base64url of JSON [ISO-8601 UTC moment with microseconds, id]


def encode_cursor(moment: datetime, record_id: int) -> str:
    raw = json.dumps([as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), record_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, field_name: str = "after") -> tuple[datetime, int]:
    try:
        if len(token) > 200:
            raise ValueError
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        moment_text, record_id = json.loads(raw)
        moment = datetime.strptime(moment_text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        if not isinstance(record_id, int) or isinstance(record_id, bool) or not 0 < record_id <= MAX_ID:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("This page cursor is not valid; start again from the first page.",
                              field_name) from None
    return moment, record_id


def _key(moment: datetime, record_id: int):
    return tuple_(literal(_bound(moment), AuditRecord.occurred_at.type), literal(record_id, AuditRecord.id.type))


_ORDER = tuple_(AuditRecord.occurred_at, AuditRecord.id)


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    next_cursor: str | None  # older records: pass as `after`
    previous_cursor: str | None  # newer records: pass as `before`


def parse_page(data: Mapping[str, Any], *, max_size: int = MAX_PAGE_SIZE) -> dict[str, Any]:
    """The paging parameters (`after`, `before` cursors, `limit`) of a request."""
    result: dict[str, Any] = {"after": None, "before": None, "limit": PAGE_SIZE}
    for name in ("after", "before"):
        if name in data and _single(data, name):
            result[name] = decode_cursor(_single(data, name), name)
    if result["after"] and result["before"]:
        raise ValidationError("Give either 'after' or 'before', not both.", "before")
    if "limit" in data and _single(data, "limit"):
        value = _single(data, "limit")
        if not value.isdigit() or not 1 <= int(value) <= max_size:
            raise ValidationError("'limit' is a number from 1 to %(max)s.", "limit", max=max_size)
        result["limit"] = int(value)
    return result


def page(session: Session, flt: AuditFilter, scope: AuditScope, *, after: tuple[datetime, int] | None = None,
         before: tuple[datetime, int] | None = None, limit: int = PAGE_SIZE) -> AuditPage:
    """One page of records, newest first. `after`: the page of older records following that row;
    `before`: the page of newer records preceding it. Neither: the newest page."""
    if after is not None and before is not None:
        raise ValueError("after or before, not both")
    stmt = build_query(flt, scope)
    if before is not None:
        stmt = stmt.where(_ORDER > _key(*before)).order_by(None).order_by(
            AuditRecord.occurred_at.asc(), AuditRecord.id.asc())
    elif after is not None:
        stmt = stmt.where(_ORDER < _key(*after))
    rows = [_row(row) for row in session.execute(stmt.limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    if before is not None:
        rows.reverse()
    if not rows:
        return AuditPage([], None, None)
    conditions = _conditions(flt, scope)
    first, last = rows[0], rows[-1]

    def exists_beyond(comparison) -> bool:
        return bool(session.scalar(select(exists().where(*conditions, comparison))))

    if before is not None:
        newer, older = more, exists_beyond(_ORDER < _key(last.occurred_at, last.record.id))
    else:
        older = more
        newer = after is not None and exists_beyond(_ORDER > _key(first.occurred_at, first.record.id))
    return AuditPage(rows, last.cursor if older else None, first.cursor if newer else None)


def iter_rows(session: Session, flt: AuditFilter, scope: AuditScope, *, yield_per: int = 1000) -> Iterator[AuditRow]:
    """Every matching record in scope, newest first, streamed in batches (a server-side cursor on
    PostgreSQL): constant memory, for the export."""
    result = session.execute(build_query(flt, scope).execution_options(yield_per=yield_per))
    try:
        for row in result:
            yield _row(row)
    finally:
        result.close()


def get_row(session: Session, record_id: int, scope: AuditScope) -> AuditRow | None:
    """One record with its names, if it exists and lies in the scope."""
    row = session.execute(build_query(AuditFilter(), scope).where(AuditRecord.id == record_id)).first()
    return _row(row) if row is not None else None


# --- presenting ------------------------------------------------------------------------------------------

# Defence in depth: no operation stores a secret in a record (initial passwords, tokens and codes are
# never passed to record()); should a key of this kind ever appear, it is masked when shown.
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|credential_value|private_key|otp|pin|"
                         r"verification_code|auth_code|authorization_code|assertion)$", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: (REDACTED if isinstance(key, str) and _SECRET_KEY.search(key) and not isinstance(item, bool)
                      else redact(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def pretty(value: Any) -> str:
    return json.dumps(redact(value), indent=2, sort_keys=True, ensure_ascii=False, default=str)


# --- saved filters ------------------------------------------------------------------------------------------


def saved_filters(session: Session, person_id: int) -> list[SavedFilter]:
    return list(session.scalars(select(SavedFilter).where(
        SavedFilter.person_id == person_id, SavedFilter.kind == SAVED_FILTER_KIND).order_by(SavedFilter.name)))


def save_filter(session: Session, person_id: int, name: str, data: Mapping[str, Any], *,
                by: RequestContext) -> SavedFilter:
    """Save the filter (validated again) under a name; the same name replaces the person's earlier one."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the filter a name.", "name")
    if len(name) > 100:
        raise ValidationError("A filter's name may have at most 100 characters.", "name")
    params = parse_filter(data).params
    existing = session.scalar(select(SavedFilter).where(
        SavedFilter.person_id == person_id, SavedFilter.kind == SAVED_FILTER_KIND, SavedFilter.name == name))
    before = dict(existing.params) if existing is not None else None
    if existing is None:
        count = len(saved_filters(session, person_id))
        if count >= MAX_SAVED_FILTERS:
            raise Conflict("You have %(count)s saved filters, the most there may be; delete one first.", "name",
                           count=count)
        existing = SavedFilter(person_id=person_id, kind=SAVED_FILTER_KIND, name=name, params=params,
                               created_at=utcnow())
        try:
            with session.begin_nested():
                session.add(existing)
                session.flush()
        except Exception as error:  # a concurrent save under the same name
            from sqlalchemy.exc import IntegrityError

            if isinstance(error, IntegrityError):
                raise Conflict("You already have a filter named %(name)s.", "name", name=name) from None
            raise
    else:
        existing.params = params
        session.flush()
    record(session, by, action="audit_filter.save", outcome="success",
           details={"name": name, "before": before, "after": params})
    return existing


def delete_filter(session: Session, person_id: int, filter_id: int, *, by: RequestContext) -> None:
    saved = session.get(SavedFilter, filter_id)
    if saved is None or saved.person_id != person_id or saved.kind != SAVED_FILTER_KIND:
        raise NotFound("Unknown saved filter.", "filter_id")
    before = {"name": saved.name, "params": dict(saved.params)}
    session.delete(saved)
    session.flush()
    record(session, by, action="audit_filter.delete", outcome="success", details={"before": before, "after": None})


def get_saved_filter(session: Session, person_id: int, filter_id: int) -> SavedFilter:
    saved = session.get(SavedFilter, filter_id)
    if saved is None or saved.person_id != person_id or saved.kind != SAVED_FILTER_KIND:
        raise NotFound("Unknown saved filter.", "filter_id")
    return saved
