"""The alert rules (audit/alerts.py): each fires on its scenario and stays silent on a normal working day;
a second scan raises nothing twice; the scan is incremental and ignores the alerts' own records; who is
told (outbox) and who sees an alert (scope); acknowledging; the rules file is checked when read."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from access.errors import Conflict, NotFound
from access.models import OutboxMessage
from audit import alerts as al
from audit.models import AuditRecord
from audit.operations import RequestContext, record
from audit.queries import AuditScope
from tests.unit.audit.alert_traffic import DAY, Traffic, belgian, build_world, normal_day

RULES = al.load_rules()
EVENING = belgian(DAY, 20, 0)  # the scan runs after the day's traffic


@pytest.fixture
def traffic(db_session, clock) -> Traffic:
    return Traffic(db_session, clock)


@pytest.fixture
def world(factories, db_session):
    world = build_world(db_session)
    db_session.commit()
    return world


@pytest.fixture
def day(traffic, world):
    normal_day(traffic, world)
    return world


def scan(session, rules=RULES, now=EVENING):
    return al.scan_alerts(session, now, rules)


def all_alerts(session) -> list[al.Alert]:
    session.expire_all()
    return list(session.scalars(select(al.Alert).order_by(al.Alert.id)))


def summary(alerts) -> list[tuple]:
    return sorted(((a.rule, a.enterprise_id, a.key, a.count) for a in alerts), key=repr)


# --- silence on a normal day ---------------------------------------------------------------------------------


def test_a_normal_working_day_raises_no_alert(db_session, traffic, day):
    examined = db_session.scalar(select(func.count()).select_from(AuditRecord))
    result = scan(db_session)
    assert result.created == [] and all_alerts(db_session) == []
    assert result.examined == examined > 200  # the whole day was looked at


# --- each rule on its scenario -------------------------------------------------------------------------------


def _failures(traffic, user, count, *, start, label=None, ip=None):
    for n in range(count):
        traffic.login(start + timedelta(seconds=50 * n), user, ok=False, label=label, ip=ip)
    traffic.commit()


def test_repeated_failed_logins_for_a_known_account_alert_its_enterprise(db_session, traffic, day):
    victim = day.users[4]
    threshold = RULES.failed_logins_account.threshold
    _failures(traffic, victim, threshold, start=belgian(DAY, 11, 0, 5), ip="203.0.113.99")
    result = scan(db_session)
    assert summary(result.created) == [("failed_logins_account", victim.enterprise.id, f"account:{victim.login}",
                                        threshold)]
    alert = result.created[0]
    assert (alert.window_start, alert.window_end) == (belgian(DAY, 11, 0), belgian(DAY, 11, 15))
    assert alert.details["ips"] == ["203.0.113.99"]


def test_wrong_second_factor_codes_after_a_right_password_count_as_failed_logins(db_session, traffic, day):
    """A stolen password, then guessing the authenticator code (issue 6): both steps of a login count."""
    victim = day.users[4]
    start = belgian(DAY, 11, 0, 5)
    traffic.login(start, victim)  # the password was right
    for n in range(RULES.failed_logins_account.threshold):
        traffic._at(start + timedelta(seconds=20 * (n + 1)))
        record(traffic.session, traffic._ctx(victim.person, victim.login, "203.0.113.98"),
               action="second_factor.check", outcome="failure", reason="wrong, reused or expired code")
    traffic.commit()
    created = [a for a in scan(db_session).created if a.rule == "failed_logins_account"]
    assert [(a.key, a.count) for a in created] == [(f"account:{victim.login}", 10)]


def test_failed_logins_one_short_of_the_threshold_raise_nothing(db_session, traffic, day):
    _failures(traffic, day.users[4], RULES.failed_logins_account.threshold - 1, start=belgian(DAY, 11, 0, 5))
    assert scan(db_session).created == []


def test_failed_logins_for_an_unknown_login_name_are_for_the_institution(db_session, traffic, day):
    _failures(traffic, None, RULES.failed_logins_account.threshold, start=belgian(DAY, 11, 0, 5), label="admin",
              ip="203.0.113.50")
    assert summary(scan(db_session).created) == [("failed_logins_account", None, "account:admin", 10)]


def test_failed_logins_from_one_ip_over_many_names_alert_the_institution(db_session, traffic, day):
    threshold = RULES.failed_logins_ip.threshold
    for n in range(threshold):
        traffic.login(belgian(DAY, 14, 15) + timedelta(seconds=20 * n), None, ok=False, label=f"guess{n}",
                      ip="198.51.100.66")
    traffic.commit()
    assert summary(scan(db_session).created) == [("failed_logins_ip", None, "ip:198.51.100.66", threshold)]


def test_a_burst_of_denied_decisions_alerts_the_enterprise_concerned(db_session, traffic, day):
    prober, target = day.users[1], day.enterprises[2]
    for n in range(RULES.denied_burst.threshold):
        traffic.decision(belgian(DAY, 10, 20) + timedelta(seconds=15 * n), prober, target, allowed=False,
                         application=["dmfa", "asr", "dimona"][n % 3])
    traffic.commit()
    created = scan(db_session).created
    assert summary(created) == [("denied_burst", target.id, f"person:{prober.person.id}", 20)]
    assert created[0].details["applications"] == ["asr", "dimona", "dmfa"]


def test_a_staff_member_acting_for_many_employers_in_an_hour_alerts_his_provider(db_session, traffic, day, factories):
    threshold = RULES.staff_many_employers.threshold
    employers = day.clients + [factories.Employer() for _ in range(threshold - len(day.clients))]
    for n, employer in enumerate(employers):
        traffic.decision(belgian(DAY, 16, 0, 30) + timedelta(seconds=120 * n), day.staff, employer,
                         provider=day.provider)
    traffic.commit()
    created = scan(db_session).created
    assert summary(created) == [("staff_many_employers", day.provider.id, f"person:{day.staff.person.id}",
                                 threshold)]
    assert {e["id"] for e in created[0].details["employers"]} == {e.id for e in employers}


def test_access_outside_office_hours_alerts_per_actor_enterprise_and_day(db_session, traffic, day):
    night_owl = day.users[2]
    traffic.login(belgian(DAY, 23, 10), night_owl)
    traffic.decision(belgian(DAY, 23, 12), night_owl)
    traffic.decision(belgian(DAY, 23, 14), night_owl)
    saturday = DAY + timedelta(days=5)
    traffic.login(belgian(saturday, 10, 0), day.users[3])
    traffic.commit()
    created = scan(db_session, now=belgian(saturday, 12, 0)).created
    key, other = f"person:{night_owl.person.id}", f"person:{day.users[3].person.id}"
    assert summary(created) == sorted([("off_hours", None, key, 1), ("off_hours", night_owl.enterprise.id, key, 2),
                                       ("off_hours", None, other, 1)], key=repr)
    monday = next(a for a in created if a.enterprise_id is None and a.key == key)
    assert (monday.window_start, monday.window_end) == (belgian(DAY, 0), belgian(DAY + timedelta(days=1), 0))


def test_a_large_export_alerts_and_a_small_one_does_not(db_session, traffic, day):
    officer = day.officer
    traffic.export(belgian(DAY, 16, 0), officer, rows=RULES.large_export.min_rows - 1, enterprise=day.enterprises[0])
    traffic.export(belgian(DAY, 16, 5), officer, rows=25_000, enterprise=day.enterprises[0])
    traffic.commit()
    created = scan(db_session).created
    assert summary(created) == [("large_export", day.enterprises[0].id, f"person:{officer.person.id}", 1)]
    assert created[0].details["rows"] == 25_000 and created[0].details["format"] == "csv"


def test_a_disabled_rule_stays_silent(db_session, traffic, day):
    _failures(traffic, day.users[4], 12, start=belgian(DAY, 11, 0, 5))
    rules = replace(RULES, failed_logins_account=replace(RULES.failed_logins_account, enabled=False))
    assert scan(db_session, rules).created == []


# --- idempotent, incremental, no loops ----------------------------------------------------------------------------


def test_a_second_scan_raises_nothing_again_and_a_growing_burst_updates_its_alert(db_session, traffic, day):
    victim = day.users[4]
    _failures(traffic, victim, 10, start=belgian(DAY, 11, 0, 5))
    first = scan(db_session)
    db_session.commit()
    outbox = db_session.scalar(select(func.count()).select_from(OutboxMessage))
    assert len(first.created) == 1

    again = scan(db_session)
    assert again.created == [] and again.updated == [] and again.examined == 0  # only the alert's own record is new

    _failures(traffic, victim, 3, start=belgian(DAY, 11, 9))
    later = scan(db_session)
    assert later.created == [] and [a.id for a in later.updated] == [first.created[0].id]
    assert [a.count for a in all_alerts(db_session)] == [13]
    assert db_session.scalar(select(func.count()).select_from(OutboxMessage)) == outbox


def test_the_same_alert_is_refused_by_the_database(db_session, traffic, day):
    _failures(traffic, None, 10, start=belgian(DAY, 11, 0, 5), label="admin")
    alert = scan(db_session).created[0]
    db_session.commit()
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with db_session.begin_nested():
            db_session.add(al.Alert(rule=alert.rule, enterprise_id=None, key=alert.key,
                                    window_start=alert.window_start, window_end=alert.window_end, count=1,
                                    first_record_id=1, last_record_id=1, details={}, created_at=EVENING))
            db_session.flush()


def test_the_scan_only_reads_records_after_its_watermark(db_session, traffic, day):
    scan(db_session)
    mark = db_session.get(al.AlertWatermark, 1)
    assert mark.last_record_id == db_session.scalar(select(func.max(AuditRecord.id)))
    _failures(traffic, None, 3, start=belgian(DAY, 17, 0), label="x")
    assert scan(db_session).examined == 3


def test_a_page_views_scan_stops_after_its_batches_and_the_next_scan_goes_on(db_session, traffic, day):
    scan(db_session)
    _failures(traffic, None, 5, start=belgian(DAY, 17, 0), label="x")
    assert al.scan_alerts(db_session, EVENING, RULES, batch=2, max_batches=1).examined == 2
    assert al.scan_alerts(db_session, EVENING, RULES, batch=2).examined == 3


def test_a_page_views_scan_skips_while_another_scan_holds_the_watermark(database_url, tmp_path, clock):
    """PostgreSQL: the scheduled scan holds the watermark's row lock; a page's scan (wait=False) returns at
    once with nothing examined instead of queueing behind it. (SQLite serialises whole write transactions.)"""
    from sqlalchemy.orm import Session

    from tests.unit.mandates.isolated_db import isolated_engine

    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are a PostgreSQL matter: SQLite serialises writers with BEGIN IMMEDIATE")
    with isolated_engine(database_url, tmp_path, "alertskip") as engine:
        with Session(engine) as session:
            record(session, RequestContext(actor_label="x"), action="login", outcome="failure")
            session.commit()
            al.scan_alerts(session, EVENING, RULES)
            session.commit()
            record(session, RequestContext(actor_label="x"), action="login", outcome="failure")
            session.commit()
        with Session(engine) as holder, Session(engine) as page_view:
            assert al._watermark(holder) is not None  # the scheduled scan's lock
            assert al.scan_alerts(page_view, EVENING, RULES, wait=False).examined == 0
            holder.rollback()
            assert al.scan_alerts(page_view, EVENING, RULES, wait=False).examined == 1


def test_the_alerts_own_records_never_raise_alerts(db_session, traffic, day, clock):
    """Rules that would count the alerts' records (audit.*, at night) still see none of them."""
    _failures(traffic, None, 10, start=belgian(DAY, 11, 0, 5), label="admin")
    greedy = replace(RULES, off_hours=replace(RULES.off_hours, actions=("audit.*",), outcomes=("success",)))
    clock.at = belgian(DAY, 23, 30)  # the alert's audit record is written at night
    first = scan(db_session, greedy, now=clock.at)
    db_session.commit()
    assert [a.rule for a in first.created] == ["failed_logins_account"]
    second = scan(db_session, greedy, now=clock.at)
    assert second.examined == 0 and second.created == []
    records = list(db_session.scalars(select(AuditRecord).where(AuditRecord.action == al.ALERT_ACTION)))
    assert [r.details["alert_id"] for r in records] == [first.created[0].id]


# --- who is told, who sees --------------------------------------------------------------------------------------


def _messages(session, kind="security-alert") -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def test_an_enterprise_alert_is_sent_to_its_officers_and_the_institutions(db_session, traffic, day):
    for n in range(20):
        traffic.decision(belgian(DAY, 10, 20, n), day.users[1], day.enterprises[0], allowed=False)
    traffic.commit()
    alert = scan(db_session).created[0]
    messages = _messages(db_session)
    assert sorted(m.recipient_person_id for m in messages) == sorted([day.officer.person.id,
                                                                       day.institution_officer.id])
    assert all(m.subject == "Security alert: A burst of refused accesses" for m in messages)
    assert f"alert {alert.id}" in messages[0].body and day.enterprises[0].name in messages[0].body


def test_an_institution_alert_is_sent_to_the_institutions_officers_only(db_session, traffic, day):
    _failures(traffic, None, 10, start=belgian(DAY, 11, 0, 5), label="admin")
    scan(db_session)
    assert [m.recipient_person_id for m in _messages(db_session)] == [day.institution_officer.id]


def test_a_login_name_nobody_has_is_not_repeated_in_the_mail(db_session, traffic, day):
    """People type their password into the login name field: the mail does not carry it (the page does)."""
    _failures(traffic, None, 10, start=belgian(DAY, 11, 0, 5), label="Zomer-2026-geheim")
    alert = scan(db_session).created[0]
    (message,) = _messages(db_session)
    assert "Zomer-2026-geheim" not in message.body and "login name no account has" in message.body
    assert "Zomer-2026-geheim" in al.describe(alert)  # on the alerts page, for the institution's officer


def test_an_enterprises_officer_sees_and_acknowledges_only_its_alerts(db_session, traffic, day):
    mine, theirs = day.enterprises[0], day.enterprises[1]
    for enterprise in (mine, theirs):
        for n in range(20):
            traffic.decision(belgian(DAY, 10, 20, n), day.users[1], enterprise, allowed=False)
    _failures(traffic, None, 10, start=belgian(DAY, 11, 0, 5), label="admin")
    traffic.commit()
    created = {(a.rule, a.enterprise_id): a for a in scan(db_session).created}
    own, other, institution = (created["denied_burst", mine.id], created["denied_burst", theirs.id],
                               created["failed_logins_account", None])
    scope = AuditScope.of_enterprise(mine.id)
    assert [a.id for a in al.alerts(db_session, scope)] == [own.id]
    assert al.open_count(db_session, scope) == 1
    assert {a.id for a in al.alerts(db_session, AuditScope.of_institution())} == {own.id, other.id, institution.id}
    for foreign in (other, institution):
        with pytest.raises(NotFound):
            al.acknowledge(db_session, foreign.id, scope, by=RequestContext(actor_person_id=day.officer.person.id))

    by = RequestContext(actor_person_id=day.officer.person.id, actor_label=day.officer.login)
    al.acknowledge(db_session, own.id, scope, by=by)
    assert own.acknowledged_by_id == day.officer.person.id and own.acknowledged_at is not None
    assert al.alerts(db_session, scope) == [] and al.alerts(db_session, scope, state="acknowledged") == [own]
    acknowledged = db_session.scalars(select(AuditRecord).where(AuditRecord.action == al.ACKNOWLEDGE_ACTION)).all()
    assert [(r.enterprise_id, r.details["alert_id"]) for r in acknowledged] == [(mine.id, own.id)]
    with pytest.raises(Conflict):
        al.acknowledge(db_session, own.id, scope, by=by)


def test_review_links_stay_within_what_the_scope_can_see(db_session, traffic, day):
    victim = day.users[4]
    _failures(traffic, victim, 10, start=belgian(DAY, 11, 0, 5))
    alert = scan(db_session).created[0]
    assert al.review_filter(alert, AuditScope.of_enterprise(victim.enterprise.id)) is None  # logins: no enterprise
    params = al.review_filter(alert, AuditScope.of_institution())
    assert params == {"from": "2026-11-02T11:00:00.000000+01:00", "until": "2026-11-02T11:14:59.999999+01:00",
                      "outcome": "failure"}
    from audit.queries import page, parse_filter

    rows = page(db_session, parse_filter(params), AuditScope.of_institution(), limit=50).rows
    assert sorted(r.record.id for r in rows) == list(range(alert.first_record_id, alert.last_record_id + 1))


# --- the rules file ---------------------------------------------------------------------------------------------


def _rules_text(**changes: str) -> str:
    text = al.DEFAULT_RULES.read_text(encoding="utf-8")
    for old, new in changes.items():
        old = old.replace("__", " ")
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize(("old", "new", "message"), [
    ("threshold = 10", "threshold = 0", "[failed_logins_account] threshold must be a whole number from 1"),
    ("threshold = 10", 'threshold = "10"', "[failed_logins_account] threshold must be a whole number"),
    ("window_minutes = 15", "window_minutes = 15\nwindow = 3", "[failed_logins_account] window is not a setting"),
    ("enabled = true", "enabled = 1", "[failed_logins_account] enabled must be true or false"),
    ('mon = ["06:00", "21:00"]', 'mon = ["21:00", "06:00"]', "[off_hours.hours] mon must start before it ends"),
    ('tue = ["06:00", "21:00"]', 'tue = ["6h", "21:00"]', '[off_hours.hours] tue must be ["HH:MM", "HH:MM"]'),
    ("sun = []\n", "", "[off_hours.hours] sun is missing"),
    ('outcomes = ["success", "allowed"]', 'outcomes = ["ok"]', "[off_hours] outcomes must be a non-empty list"),
    ('actions = ["login", "decision:*"]', 'actions = ["*"]', "[off_hours] actions must be a non-empty list"),
    ("[large_export]", "[large_exports]", "[large_exports] is not a rule"),
    ("min_rows = 10000", "min_rows = -5", "[large_export] min_rows must be a whole number"),
    ("[denied_burst]", "[denied_burst\n", "is not valid TOML"),
])
def test_a_wrong_rules_file_is_refused_naming_the_key(tmp_path: Path, old, new, message):
    path = tmp_path / "alerts.toml"
    path.write_text(_rules_text(**{old: new}), encoding="utf-8")
    with pytest.raises(al.AlertConfigError) as refused:
        al.parse_rules(path)
    assert str(path) in str(refused.value) and message in str(refused.value)


def test_a_missing_rule_is_refused(tmp_path: Path):
    text = al.DEFAULT_RULES.read_text(encoding="utf-8")
    path = tmp_path / "alerts.toml"
    path.write_text(text[:text.index("[large_export]")], encoding="utf-8")
    with pytest.raises(al.AlertConfigError, match=r"\[large_export\] is missing"):
        al.parse_rules(path)


def test_the_portal_does_not_start_with_a_wrong_rules_file(tmp_path: Path, database_url):
    from portal import create_app

    path = tmp_path / "alerts.toml"
    path.write_text(_rules_text(**{"window_minutes = 15": "window_minutes = 0"}), encoding="utf-8")
    with pytest.raises(RuntimeError, match="The alert rules are wrong: .*window_minutes must be a whole number"):
        create_app({"TESTING": True, "DATABASE_URL": database_url, "ALERT_RULES": str(path)})
    with pytest.raises(RuntimeError, match="cannot be read"):
        create_app({"TESTING": True, "DATABASE_URL": database_url, "ALERT_RULES": str(tmp_path / "none.toml")})


def test_the_shipped_rules_file_reads_as_documented():
    rules = al.parse_rules(al.DEFAULT_RULES)
    hours = rules.off_hours
    assert hours.outside(belgian(DAY, 5, 59)) and not hours.outside(belgian(DAY, 6, 0))
    assert not hours.outside(belgian(DAY, 20, 59)) and hours.outside(belgian(DAY, 21, 0))
    assert hours.outside(belgian(DAY + timedelta(days=5), 12, 0))  # Saturday
    assert hours.counts("decision:open", "allowed") and not hours.counts("decision:open", "denied")


# --- concurrent scans ------------------------------------------------------------------------------------------


def test_concurrent_scans_raise_each_alert_once(database_url, tmp_path, clock):
    """Two scans at once (the timer and an officer's dashboard), each in its own connection and
    transaction: the watermark's row lock makes them take turns, and the second finds nothing new."""
    import threading

    from sqlalchemy.orm import Session

    from tests.unit.mandates.isolated_db import isolated_engine

    with isolated_engine(database_url, tmp_path, "alertrace") as engine:
        with Session(engine) as session:
            ctx = RequestContext(actor_label="admin", ip="203.0.113.5")
            for n in range(RULES.failed_logins_account.threshold):
                clock.at = belgian(DAY, 11, 0, n)
                record(session, ctx, action="login", outcome="failure", reason="unknown login name")
            session.commit()
        start, results = threading.Barrier(2), []

        def scanner() -> None:
            with Session(engine) as session:
                start.wait(30)
                results.append(len(al.scan_alerts(session, EVENING, RULES).created))
                session.commit()

        threads = [threading.Thread(target=scanner) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(results) == [0, 1]
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(al.Alert)) == 1
            assert session.scalar(select(func.count()).select_from(AuditRecord).where(
                AuditRecord.action == al.ALERT_ACTION)) == 1
