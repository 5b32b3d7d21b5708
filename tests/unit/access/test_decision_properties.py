"""Property test of the decision point over random worlds: enterprises (employers or not), persons,
links of every kind with start and end dates around the clock date, memberships (current or ended)
and rights (current or revoked), asked on a random day.

For every subject × enterprise × application asked:
- nobody is ever allowed without a path;
- an allowed decision's path holds on that day, recomputed from the rows alone: a direct-authority link
  active on the day AND (a current local_admin / co_admin membership OR a current membership and an
  unrevoked right on that application), and the path names exactly those facts;
- the certificate tier is never allowed;
- and the answer is the one the rules give (an oracle written from DOMAIN.md, not from the SQL).

Rows are built directly with the factories, so the worlds include what the operations would refuse
(roles on links without direct authority, rights left on ended memberships, ...)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from access.catalogue import ACCESS_MANAGEMENT, PORTAL_ADMINISTRATION, Tier, load_catalogue
from access.clock import FrozenClock, as_utc, using_clock
from access.decision import ANONYMOUS, Subject, decide
from access.models import DIRECT_AUTHORITY_KINDS, LinkKind, Role
from access.validators import format_kbo
from tests.factories import (
    EmployerFactory,
    EnterpriseFactory,
    LinkFactory,
    MembershipFactory,
    PersonFactory,
    RightFactory,
    bind_session,
)

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
TODAY = date(2026, 11, 2)
CATALOGUE = load_catalogue()

# (application, action): an employer-only and a federal password application, a certificate one, a free
# one, access management with an ordinary and the local-admin-only actions, portal administration, and
# an unknown code.
QUESTIONS = [
    ("dmfa", "use"), ("kbo_prive_gegevens", "use"), ("directe_wijziging", "use"), ("dimona", "use"),
    (ACCESS_MANAGEMENT, "manage_users"), (ACCESS_MANAGEMENT, "manage_co_admins"), (ACCESS_MANAGEMENT, "hand_over"),
    (PORTAL_ADMINISTRATION, "use"), ("no_such_application", "use"),
]
# Written out from the issue, not imported: the oracle must not move with the code under test.
LOCAL_ADMIN_ONLY = frozenset({"manage_co_admins", "hand_over"})
GRANTABLE = ["dmfa", "kbo_prive_gegevens", "directe_wijziging"]


@dataclass
class World:
    employers: list[bool]
    persons: list[tuple[bool, bool]]  # (portal officer, disabled)
    links: list[tuple[int, int, LinkKind, int, int | None]]  # enterprise, person, kind, start offset, length
    memberships: list[tuple[int, int, Role, bool, int]]  # enterprise, person, role, ended, started hours ago
    rights: list[tuple[int, int, str, bool, int, int]]  # enterprise, person, application, revoked, grantor,
    #                                                      granted hours ago
    day_offset: int


def hours_ago(max_days: int):
    """How long before NOW (09:00 UTC) a role started or a right was granted: whole days, plus 0 hours or
    10 to 13 hours, i.e. 20:00 to 23:00 UTC the evening before, which is already the next day in Brussels
    in summer (22:00, 23:00) or winter (23:00)."""
    return st.builds(lambda days, hours: days * 24 + hours, st.integers(0, max_days),
                     st.sampled_from([0, 10, 11, 12, 13]))


def rarely():
    """True one time in ten: disabled accounts and portal officers must not drown everything else."""
    return st.integers(0, 9).map(lambda n: n == 9)


@st.composite
def worlds(draw) -> World:
    n_enterprises = draw(st.integers(1, 3))
    n_persons = draw(st.integers(1, 4))
    person = st.integers(0, n_persons - 1)
    links, memberships, rights = [], [], []
    # Facts are drawn per (enterprise, person) pair, so links, roles and rights meet often enough.
    for e in range(n_enterprises):
        for p in range(n_persons):
            links += [(e, p, *link) for link in draw(st.lists(st.tuples(
                st.sampled_from(list(LinkKind)), st.integers(-40, 20), st.one_of(st.none(), st.integers(0, 60))),
                min_size=1, max_size=2))]
            memberships += [(e, p, *membership) for membership in draw(st.lists(st.tuples(
                st.sampled_from(list(Role)), st.booleans(), hours_ago(400)), min_size=1, max_size=2))]
            rights += [(e, p, *right) for right in draw(st.lists(st.tuples(
                st.sampled_from(GRANTABLE), st.integers(0, 2).map(lambda n: n == 2), person, hours_ago(60)),
                min_size=1, max_size=3))]
    return World(
        employers=draw(st.lists(st.booleans(), min_size=n_enterprises, max_size=n_enterprises)),
        persons=draw(st.lists(st.tuples(rarely(), rarely()), min_size=n_persons, max_size=n_persons)),
        links=links, memberships=memberships, rights=rights, day_offset=draw(st.integers(-45, 45)),
    )


@dataclass
class Rows:
    enterprises: list = field(default_factory=list)
    persons: list = field(default_factory=list)
    links: list = field(default_factory=list)
    memberships: list = field(default_factory=list)
    rights: list = field(default_factory=list)


def build(world: World) -> Rows:
    rows = Rows()
    rows.enterprises = [EmployerFactory() if employer else EnterpriseFactory() for employer in world.employers]
    rows.persons = [PersonFactory() for _ in world.persons]
    for e, p, kind, start, length in world.links:
        start_date = TODAY + timedelta(days=start)
        end_date = None if length is None else start_date + timedelta(days=length)
        rows.links.append(LinkFactory(enterprise=rows.enterprises[e], person=rows.persons[p], kind=kind,
                                      start_date=start_date, end_date=end_date))
    current: set[tuple[int, int]] = set()
    local_admin: set[int] = set()
    for e, p, role, ended, hours_ago in world.memberships:
        started = NOW - timedelta(hours=hours_ago)
        # The database allows one current role per person and enterprise, one current local admin per
        # enterprise: what would break those is kept as an ended role.
        if (e, p) in current or (role is Role.LOCAL_ADMIN and e in local_admin):
            ended = True
        if not ended:
            current.add((e, p))
            if role is Role.LOCAL_ADMIN:
                local_admin.add(e)
        rows.memberships.append(MembershipFactory(
            enterprise=rows.enterprises[e], person=rows.persons[p], role=role, started_at=started,
            ended_at=NOW - timedelta(hours=hours_ago // 2) if ended else None))
    current_rights: set[tuple[int, int, str]] = set()
    for e, p, application, revoked, grantor, hours_ago in world.rights:
        if (e, p, application) in current_rights:
            revoked = True
        if not revoked:
            current_rights.add((e, p, application))
        rows.rights.append(RightFactory(
            enterprise=rows.enterprises[e], person=rows.persons[p], application=application,
            granted_by=rows.persons[grantor], granted_at=NOW - timedelta(hours=hours_ago),
            revoked_at=NOW - timedelta(days=1) if revoked else None))
    return rows


def belgian_date(moment: datetime) -> str:
    return as_utc(moment).astimezone(ZoneInfo("Europe/Brussels")).date().isoformat()


def active_links(rows: Rows, enterprise, person, day: date) -> list:
    return [link for link in rows.links
            if link.enterprise_id == enterprise.id and link.person_id == person.id
            and link.kind in DIRECT_AUTHORITY_KINDS
            and link.start_date <= day and (link.end_date is None or day <= link.end_date)]


def current_role(rows: Rows, enterprise, person):
    roles = [m for m in rows.memberships
             if m.enterprise_id == enterprise.id and m.person_id == person.id and m.ended_at is None]
    assert len(roles) <= 1
    return roles[0] if roles else None


def current_right(rows: Rows, enterprise, person, application):
    rights = [r for r in rows.rights if r.enterprise_id == enterprise.id and r.person_id == person.id
              and r.application == application and r.revoked_at is None]
    return rights[0] if rights else None


def expected(rows: Rows, subject: Subject, enterprise, person, application: str, action: str, day: date) -> bool:
    """The rules of DOMAIN.md §1 and §3 and the issue, from the rows."""
    app = CATALOGUE.get(application)
    if app is None:
        return False
    if application == PORTAL_ADMINISTRATION:
        return subject.is_portal_officer and not subject.disabled
    if app.tier is Tier.FREE:  # no login; but an employer-only one is not about a known non-employer
        return not (app.employer_only and enterprise is not None and enterprise.rsz_number is None)
    if subject.anonymous or subject.disabled or enterprise is None:
        return False
    if app.employer_only and enterprise.rsz_number is None:
        return False
    if not active_links(rows, enterprise, person, day):
        return False
    membership = current_role(rows, enterprise, person)
    if membership is None:
        return False
    if application == ACCESS_MANAGEMENT:
        return membership.role is Role.LOCAL_ADMIN or (
            membership.role is Role.CO_ADMIN and action not in LOCAL_ADMIN_ONLY)
    if membership.role is Role.USER and current_right(rows, enterprise, person, application) is None:
        return False
    return app.tier is not Tier.CERTIFICATE


def check_path(rows: Rows, decision, enterprise, person, application: str, day: date) -> None:
    """An allowed decision on a gated application: each step of its path holds on `day`."""
    kbo = format_kbo(enterprise.kbo_number)
    first, link_step = decision.path
    links = active_links(rows, enterprise, person, day)
    assert links, "allowed without a direct-authority link on that day"
    assert link_step.code == "link"
    assert (link_step.params["kind"], link_step.params["since"]) in {
        (link.kind.value, link.start_date.isoformat()) for link in links}
    assert link_step.params["kbo"] == kbo

    membership = current_role(rows, enterprise, person)
    assert membership is not None, "allowed without a current role"
    since = belgian_date(membership.started_at)
    if first.code == "local-admin":
        assert membership.role is Role.LOCAL_ADMIN
        assert first.params == {"kbo": kbo, "since": since}
    elif first.code == "co-admin":
        assert membership.role is Role.CO_ADMIN
        assert first.params == {"kbo": kbo, "since": since}
    else:
        assert first.code == "right"
        assert application != ACCESS_MANAGEMENT
        right = current_right(rows, enterprise, person, application)
        assert right is not None, "allowed on a right that is not there"
        assert first.params == {"application": application, "by": right.granted_by.full_name,
                                "on": belgian_date(right.granted_at)}


@given(world=worlds())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_decisions_are_sound_and_follow_the_rules(engine, world):
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        with using_clock(FrozenClock(NOW)), bind_session(session):
            rows = build(world)
            day = TODAY + timedelta(days=world.day_offset)
            subjects = [(ANONYMOUS, None)] + [
                (Subject(person_id=person.id, label=person.full_name, is_portal_officer=officer, disabled=disabled),
                 person)
                for person, (officer, disabled) in zip(rows.persons, world.persons)]
            missing_id = max(e.id for e in rows.enterprises) + 1000
            targets = [(None, None), (missing_id, None)] + [(e.id, e) for e in rows.enterprises]
            for n, (subject, person) in enumerate(subjects):
                # No enterprise and an unknown one: asked of the anonymous subject and one person only.
                for enterprise_id, enterprise in targets if n < 2 else targets[2:]:
                    for application, action in QUESTIONS:
                        decision = decide(session, subject, enterprise_id, application, action,
                                          catalogue=CATALOGUE, day=day)
                        where = (subject, enterprise_id, application, action, day)
                        if decision.allowed:
                            assert decision.path, where
                            assert decision.reason.code == "allowed", where
                        app = CATALOGUE.get(application)
                        if app is not None and app.tier is Tier.CERTIFICATE:
                            assert not decision.allowed, where
                        if decision.allowed and app.tier is not Tier.FREE and application != PORTAL_ADMINISTRATION:
                            check_path(rows, decision, enterprise, person, application, day)
                        assert decision.allowed == expected(rows, subject, enterprise, person, application, action,
                                                            day), (where, decision.reason, decision.path_text)
    finally:
        session.close()
        transaction.rollback()
        connection.close()
