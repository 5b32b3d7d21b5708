"""The review screen's query (audit/queries.py): filter parsing and validation, the query's results
against an oracle written in Python, keyset pagination over ties of occurred_at (both directions), the
scope (an enterprise's officer never sees another enterprise's records, property-based), names next to
ids in one query, streaming, and saved filters."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from access.clock import FrozenClock, as_utc, using_clock
from access.errors import Conflict, NotFound, ValidationError
from access.models import SavedFilter
from audit import queries as q
from audit.models import AuditRecord
from audit.operations import RequestContext
from tests.factories import EmployerFactory, EnterpriseFactory, PersonFactory, audit_records, bind_session

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
BRUSSELS = ZoneInfo("Europe/Brussels")


# --- parsing ---------------------------------------------------------------------------------------------


def refused(data) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        q.parse_filter(data)
    return caught.value


def test_an_empty_filter_and_empty_fields_are_nothing():
    assert q.parse_filter({}) == q.AuditFilter()
    assert q.parse_filter({"from": "", "q": "  ", "outcome": ""}) == q.AuditFilter()


def test_every_field_is_parsed():
    flt = q.parse_filter({"from": "2026-11-01", "until": "2026-11-02T10:30", "actor": "7", "enterprise": "12",
                          "provider": "0412.345.614", "application": "dmfa", "action": "decision:*",
                          "outcome": "denied,failure", "ip": "2001:DB8::1", "q": "50%_off"})
    assert flt.since == datetime(2026, 10, 31, 23, 0, tzinfo=timezone.utc)  # Belgian midnight (CET)
    assert flt.before == datetime(2026, 11, 2, 9, 30, 0, 1, tzinfo=timezone.utc)  # inclusive moment
    assert (flt.actor_person_id, flt.enterprise, flt.provider) == (7, q.EnterpriseRef(id=12),
                                                                   q.EnterpriseRef(kbo="0412345614"))
    assert (flt.application, flt.action, flt.action_prefix, flt.outcomes) == ("dmfa", "decision:", True,
                                                                              ("denied", "failure"))
    assert (flt.ip, flt.text) == ("2001:db8::1", "50%_off")
    assert flt.params["from"] == "2026-11-01" and set(flt.params) == set(q.FILTER_FIELDS)


def test_a_date_until_covers_the_whole_belgian_day():
    flt = q.parse_filter({"until": "2026-07-01"})
    assert flt.before == datetime(2026, 7, 1, 22, 0, tzinfo=timezone.utc)  # midnight CEST of 2 July
    assert q.parse_filter({"from": "2026-11-02T10:00:00Z"}).since == datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("data, field_name", [
    ({"frm": "2026-11-01"}, "frm"),
    ({"password": "x"}, "password"),
    ({"from": "2026-13-01"}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"until": "2026-11-02T25:00"}, "until"),
    ({"from": "2026-11-03", "until": "2026-11-02"}, "until"),
    ({"actor": "abc"}, "actor"),
    ({"actor": "0"}, "actor"),
    ({"actor": str(2**31)}, "actor"),
    ({"enterprise": "0412.345.615"}, "enterprise"),
    ({"enterprise": "bakkerij"}, "enterprise"),
    ({"provider": "-3"}, "provider"),
    ({"application": "DmfA;drop"}, "application"),
    ({"action": "right grant"}, "action"),
    ({"action": "*"}, "action"),
    ({"outcome": "maybe"}, "outcome"),
    ({"outcome": "allowed,nope"}, "outcome"),
    ({"ip": "999.1.1.1"}, "ip"),
    ({"q": "x" * 201}, "q"),
    ({"q": "a\x00b"}, "q"),
    ({"q": ["a", "b"]}, "q"),
    ({"actor": 5}, "actor"),
])
def test_bad_filters_are_refused_naming_the_field(data, field_name):
    error = refused(data)
    assert error.field == field_name
    assert error.status == 422


def test_unknown_kbo_is_refused_when_resolved(db_session, factories):
    enterprise = factories.Employer()
    flt = q.parse_and_resolve(db_session, {"enterprise": enterprise.kbo_display})
    assert flt.enterprise == q.EnterpriseRef(id=enterprise.id, kbo=enterprise.kbo_number)
    with pytest.raises(ValidationError) as caught:
        q.parse_and_resolve(db_session, {"provider": "0412.345.614"})
    assert caught.value.field == "provider"


def test_cursors_round_trip_and_forged_ones_are_refused():
    moment = datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=timezone.utc)
    assert q.decode_cursor(q.encode_cursor(moment, 42)) == (moment, 42)
    for bad in ("", "xyz", "W10", q.encode_cursor(moment, 42)[:-3], "eyJhIjoxfQ"):
        with pytest.raises(ValidationError) as caught:
            q.decode_cursor(bad, "before")
        assert caught.value.field == "before"
    with pytest.raises(ValidationError):
        q.parse_page({"after": q.encode_cursor(moment, 1), "before": q.encode_cursor(moment, 2)})
    with pytest.raises(ValidationError) as caught:
        q.parse_page({"limit": "500"})
    assert caught.value.field == "limit"


def test_the_scope_is_one_enterprise_or_the_institution():
    with pytest.raises(ValueError):
        q.AuditScope(enterprise_id=None)
    with pytest.raises(ValueError):
        q.AuditScope(enterprise_id=3, institution=True)


# --- a trail to query -----------------------------------------------------------------------------------


@dataclass
class Trail:
    employer: object
    other: object
    provider: object
    actor: object
    staff: object
    records: list[AuditRecord]


def add_records(session: Session, rows: list[dict]) -> list[AuditRecord]:
    records = [AuditRecord(**{"action": "test.action", "outcome": "success", **row}) for row in rows]
    session.add_all(records)
    session.flush()
    return records


@pytest.fixture
def trail(db_session, factories) -> Trail:
    employer = factories.Employer(name="Bakkerij De Gouden Korst")
    other = factories.Employer(name="Garage Lambrecht")
    provider = factories.Enterprise(name="Sociaal Secretariaat Zuiderpoort")
    actor = factories.Person(first_name="An", last_name="Peeters")
    staff = factories.Person(first_name="Tom", last_name="Claes")
    base = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
    rows = []
    for n in range(30):
        rows.append(dict(occurred_at=base + timedelta(minutes=n // 4), enterprise_id=employer.id,  # ties of 4
                         actor_person_id=actor.id, actor_label="an.peeters", application="dmfa",
                         action="decision:open", outcome="allowed" if n % 3 else "denied",
                         reason=f"reason {n}" + (" 100% sure" if n == 7 else ""), ip="192.0.2.7", path=["a"]))
    rows.append(dict(occurred_at=base, enterprise_id=employer.id, provider_enterprise_id=provider.id,
                     actor_person_id=staff.id, action="decision:open", outcome="allowed", application="dmfa",
                     reason="via provider", ip="198.51.100.1"))
    rows.append(dict(occurred_at=base, enterprise_id=other.id, actor_person_id=actor.id, action="right.grant",
                     outcome="success", reason="100% other", ip="192.0.2.7"))
    rows.append(dict(occurred_at=base, enterprise_id=None, actor_label="ghost", action="login", outcome="failure",
                     reason="unknown login name", ip="203.0.113.9"))
    return Trail(employer, other, provider, actor, staff, add_records(db_session, rows))


def ids(rows) -> list[int]:
    return [row.record.id for row in rows]


def expected_order(records) -> list[int]:
    return [r.id for r in sorted(records, key=lambda r: (as_utc(r.occurred_at), r.id), reverse=True)]


def test_the_enterprise_scope_holds_its_records_and_its_providers(db_session, trail):
    scope = q.AuditScope.of_enterprise(trail.employer.id)
    rows = list(q.iter_rows(db_session, q.AuditFilter(), scope, yield_per=7))
    assert ids(rows) == expected_order([r for r in trail.records if r.enterprise_id == trail.employer.id])
    via = next(row for row in rows if row.record.provider_enterprise_id is not None)
    assert (via.actor_name, via.enterprise_name, via.provider_name) == (
        "Tom Claes", "Bakkerij De Gouden Korst", "Sociaal Secretariaat Zuiderpoort")
    assert (via.enterprise_kbo, via.provider_kbo) == (trail.employer.kbo_number, trail.provider.kbo_number)
    everything = list(q.iter_rows(db_session, q.AuditFilter(), q.AuditScope.of_institution()))
    assert len(everything) >= len(trail.records)
    # Another enterprise named in the filter does not widen an enterprise's scope.
    other = q.parse_filter({"enterprise": str(trail.other.id)})
    assert list(q.iter_rows(db_session, other, scope)) == []


def test_names_come_in_one_query(db_session, trail, engine):
    statements = []

    def count(conn, cursor, statement, *args):  # noqa: ARG001
        statements.append(statement)

    bind = db_session.connection()
    event.listen(bind.engine, "before_cursor_execute", count)
    try:
        db_session.expunge_all()
        rows = list(q.iter_rows(db_session, q.AuditFilter(), q.AuditScope.of_institution()))
        _ = [(row.actor_name, row.enterprise_name, row.provider_name, row.record.reason) for row in rows]
    finally:
        event.remove(bind.engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements


@pytest.mark.parametrize("data, expect", [
    ({"outcome": "denied"}, lambda r, t: r.outcome == "denied"),
    ({"outcome": "denied,failure"}, lambda r, t: r.outcome in ("denied", "failure")),
    ({"action": "decision:*"}, lambda r, t: r.action.startswith("decision:")),
    ({"action": "right.grant"}, lambda r, t: r.action == "right.grant"),
    ({"ip": "192.0.2.7"}, lambda r, t: r.ip == "192.0.2.7"),
    ({"q": "100%"}, lambda r, t: "100%" in (r.reason or "")),
    ({"q": "REASON 1"}, lambda r, t: "reason 1" in (r.reason or "")),
    ({"q": "_"}, lambda r, t: "_" in (r.reason or "")),
    ({"application": "dmfa"}, lambda r, t: r.application == "dmfa"),
    ({"from": "2026-11-02T09:03", "until": "2026-11-02T09:05"},  # Belgian time: 08:03..08:05 UTC inclusive
     lambda r, t: datetime(2026, 11, 2, 8, 3, tzinfo=timezone.utc) <= as_utc(r.occurred_at)
     <= datetime(2026, 11, 2, 8, 5, tzinfo=timezone.utc)),
])
def test_each_filter_matches_the_oracle(db_session, trail, data, expect):
    flt = q.parse_filter(data)
    rows = list(q.iter_rows(db_session, flt, q.AuditScope.of_institution()))
    mine = [r for r in trail.records if expect(r, trail)]
    assert set(ids(rows)) >= {r.id for r in mine}
    assert all(expect(row.record, trail) for row in rows)


def test_actor_enterprise_and_provider_filters(db_session, trail):
    institution = q.AuditScope.of_institution()
    by_staff = list(q.iter_rows(db_session, q.parse_filter({"actor": str(trail.staff.id)}), institution))
    assert [row.record.reason for row in by_staff] == ["via provider"]
    via = q.parse_and_resolve(db_session, {"provider": trail.provider.kbo_display})
    assert ids(q.iter_rows(db_session, via, institution)) == ids(by_staff)
    for_other = q.parse_and_resolve(db_session, {"enterprise": trail.other.kbo_number})
    assert [row.record.action for row in q.iter_rows(db_session, for_other, institution)] == ["right.grant"]


@pytest.mark.parametrize("limit", [1, 3, 4, 7, 50])
def test_keyset_pages_walk_every_record_once_over_ties_both_ways(db_session, trail, limit):
    scope = q.AuditScope.of_enterprise(trail.employer.id)
    flt = q.AuditFilter()
    expected = expected_order([r for r in trail.records if r.enterprise_id == trail.employer.id])
    pages, cursor = [], None
    while True:
        result = q.page(db_session, flt, scope, after=cursor, limit=limit)
        pages.append(result)
        if result.next_cursor is None:
            break
        cursor = q.decode_cursor(result.next_cursor)
    assert [i for p in pages for i in ids(p.rows)] == expected
    assert pages[0].previous_cursor is None
    assert all(len(p.rows) == limit for p in pages[:-1])
    # and back, from the last page, by `before`
    back, cursor = [pages[-1]], pages[-1].previous_cursor
    while cursor is not None:
        result = q.page(db_session, flt, scope, before=q.decode_cursor(cursor), limit=limit)
        back.append(result)
        cursor = result.previous_cursor
    assert [i for p in reversed(back) for i in ids(p.rows)] == expected
    assert back[-1].rows[0].record.id == expected[0]


def test_an_empty_result_has_no_cursors(db_session, trail):
    result = q.page(db_session, q.parse_filter({"q": "no such words"}), q.AuditScope.of_institution())
    assert (result.rows, result.next_cursor, result.previous_cursor) == ([], None, None)


def test_get_row_respects_the_scope(db_session, trail):
    foreign = next(r for r in trail.records if r.enterprise_id == trail.other.id)
    assert q.get_row(db_session, foreign.id, q.AuditScope.of_enterprise(trail.employer.id)) is None
    assert q.get_row(db_session, foreign.id, q.AuditScope.of_enterprise(trail.other.id)).record.id == foreign.id
    assert q.get_row(db_session, foreign.id, q.AuditScope.of_institution()).enterprise_name == "Garage Lambrecht"


def test_secrets_are_masked_when_shown():
    details = {"person": "An", "password": "x", "nested": [{"access_token": "t", "token_sha256": "h"}],
               "initial_credential_issued": True, "client_secret": "s"}
    assert q.redact(details) == {"person": "An", "password": q.REDACTED,
                                 "nested": [{"access_token": q.REDACTED, "token_sha256": "h"}],
                                 "initial_credential_issued": True, "client_secret": q.REDACTED}
    assert "x" not in q.pretty({"password": "x"})


# --- saved filters ----------------------------------------------------------------------------------------


def test_saved_filters_are_saved_replaced_listed_and_deleted(db_session, factories, ctx):
    person, other = factories.Person(), factories.Person()
    saved = q.save_filter(db_session, person.id, " Denied today ", {"outcome": "denied", "from": "2026-11-02"}, by=ctx)
    assert (saved.name, saved.params) == ("Denied today", {"outcome": "denied", "from": "2026-11-02"})
    again = q.save_filter(db_session, person.id, "Denied today", {"outcome": "denied"}, by=ctx)
    assert again.id == saved.id and again.params == {"outcome": "denied"}
    q.save_filter(db_session, person.id, "All logins", {"action": "login"}, by=ctx)
    assert [s.name for s in q.saved_filters(db_session, person.id)] == ["All logins", "Denied today"]
    assert q.saved_filters(db_session, other.id) == []
    with pytest.raises(NotFound):
        q.delete_filter(db_session, other.id, saved.id, by=ctx)
    q.delete_filter(db_session, person.id, saved.id, by=ctx)
    assert [s.name for s in q.saved_filters(db_session, person.id)] == ["All logins"]
    actions = [r.action for r in audit_records(db_session) if r.action.startswith("audit_filter.")]
    assert actions == ["audit_filter.save", "audit_filter.save", "audit_filter.save", "audit_filter.delete"]


def test_an_invalid_saved_filter_is_refused_and_nothing_is_written(db_session, factories, ctx):
    person = factories.Person()
    for name, data, field_name in (("x", {"from": "bad"}, "from"), ("", {}, "name"), ("y" * 101, {}, "name"),
                                   ("z", {"nope": "1"}, "nope")):
        with pytest.raises(ValidationError) as caught:
            q.save_filter(db_session, person.id, name, data, by=ctx)
        assert caught.value.field == field_name
    assert db_session.scalars(select(SavedFilter)).all() == []


# --- isolation, property-based ----------------------------------------------------------------------------

OUTCOMES = list(q.OUTCOMES)
REASONS = ["allowed", "no right on DmfA", "100% sure", "a_b", "not under the direct authority", None]
IPS = ["192.0.2.7", "198.51.100.1", None]
ACTIONS = ["decision:open", "decision:view", "right.grant", "login", "security_officer.appoint"]


@st.composite
def record_rows(draw):
    return dict(enterprise=draw(st.sampled_from([0, 1, 2, None])), provider=draw(st.sampled_from([None, 2, 1])),
                actor=draw(st.sampled_from([0, 1, None])), minute=draw(st.integers(0, 5)),
                action=draw(st.sampled_from(ACTIONS)), outcome=draw(st.sampled_from(OUTCOMES)),
                reason=draw(st.sampled_from(REASONS)), ip=draw(st.sampled_from(IPS)),
                application=draw(st.sampled_from(["dmfa", "asr", None])))


@st.composite
def filters(draw):
    """A filter in terms of the world's indexes; enterprises by id or by KBO number."""
    chosen = {}
    if draw(st.booleans()):
        chosen["from"] = draw(st.sampled_from(["2026-11-02", "2026-11-02T10:02", "2026-11-02T09:03:00Z"]))
    if draw(st.booleans()):
        chosen["until"] = draw(st.sampled_from(["2026-11-02", "2026-11-02T10:03", "2026-11-03"]))
    for name, options in (("enterprise", [0, 1, 2]), ("provider", [1, 2]), ("actor", [0, 1])):
        if draw(st.booleans()):
            chosen[name] = (draw(st.sampled_from(options)), draw(st.booleans()))
    if draw(st.booleans()):
        chosen["outcome"] = ",".join(draw(st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=3)))
    if draw(st.booleans()):
        chosen["action"] = draw(st.sampled_from(["decision:*", "right.grant", "login", "d*"]))
    if draw(st.booleans()):
        chosen["q"] = draw(st.sampled_from(["%", "_", "RIGHT", "100%", "a_b", "authority"]))
    if draw(st.booleans()):
        chosen["ip"] = draw(st.sampled_from(["192.0.2.7", "198.51.100.1"]))
    if draw(st.booleans()):
        chosen["application"] = draw(st.sampled_from(["dmfa", "asr"]))
    return chosen


def _oracle(record: AuditRecord, data: dict, flt: q.AuditFilter, enterprise_ids, person_ids) -> bool:
    moment = as_utc(record.occurred_at)
    if flt.since is not None and moment < flt.since:
        return False
    if flt.before is not None and moment >= flt.before:
        return False
    if "enterprise" in data and record.enterprise_id != enterprise_ids[data["enterprise"][0]]:
        return False
    if "provider" in data and record.provider_enterprise_id != enterprise_ids[data["provider"][0]]:
        return False
    if "actor" in data and record.actor_person_id != person_ids[data["actor"][0]]:
        return False
    if "outcome" in data and record.outcome not in data["outcome"].split(","):
        return False
    if "action" in data:
        wanted = data["action"]
        if wanted.endswith("*") and not record.action.startswith(wanted[:-1]):
            return False
        if not wanted.endswith("*") and record.action != wanted:
            return False
    if "q" in data and data["q"].lower() not in (record.reason or "").lower():
        return False
    if "ip" in data and record.ip != data["ip"]:
        return False
    if "application" in data and record.application != data["application"]:
        return False
    return True


@given(rows=st.lists(record_rows(), min_size=0, max_size=25), data=filters(),
       viewer=st.sampled_from([0, 1, 2]), limit=st.integers(1, 6))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
def test_an_enterprise_officer_never_sees_another_enterprises_records(engine, rows, data, viewer, limit):
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        with using_clock(FrozenClock(NOW)), bind_session(session):
            enterprises = [EmployerFactory(), EmployerFactory(), EnterpriseFactory()]
            persons = [PersonFactory(), PersonFactory()]
            base = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
            records = add_records(session, [dict(
                occurred_at=base + timedelta(minutes=row["minute"]),
                enterprise_id=enterprises[row["enterprise"]].id if row["enterprise"] is not None else None,
                provider_enterprise_id=enterprises[row["provider"]].id if row["provider"] is not None else None,
                actor_person_id=persons[row["actor"]].id if row["actor"] is not None else None,
                action=row["action"], outcome=row["outcome"], reason=row["reason"], ip=row["ip"],
                application=row["application"]) for row in rows])
            enterprise_ids = [e.id for e in enterprises]
            person_ids = [p.id for p in persons]
            given_data = {}
            for name, value in data.items():
                if name in ("enterprise", "provider"):
                    index, by_kbo = value
                    given_data[name] = enterprises[index].kbo_display if by_kbo else str(enterprise_ids[index])
                elif name == "actor":
                    given_data[name] = str(person_ids[value[0]])
                else:
                    given_data[name] = value
            flt = q.parse_and_resolve(session, given_data)
            scope = q.AuditScope.of_enterprise(enterprise_ids[viewer])
            seen, cursor = [], None
            while True:
                result = q.page(session, flt, scope, after=cursor, limit=limit)
                seen += result.rows
                if result.next_cursor is None:
                    break
                cursor = q.decode_cursor(result.next_cursor)
            # The scope holds, whatever the filter: only the viewer's enterprise.
            assert all(row.record.enterprise_id == enterprise_ids[viewer] for row in seen)
            # And the answer is exactly the oracle's, in keyset order, each record once.
            expected = expected_order([r for r in records if r.enterprise_id == enterprise_ids[viewer]
                                       and _oracle(r, data, flt, enterprise_ids, person_ids)])
            assert ids(seen) == expected, (given_data, viewer)
    finally:
        session.close()
        transaction.rollback()
        connection.close()
