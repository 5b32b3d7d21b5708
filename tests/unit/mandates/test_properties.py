"""Property test of the mandate path over random worlds: providers (secretariats and others), employers,
affiliations and provider forms with random statuses, periods and scopes, staff memberships and links of
every kind with the providers, and staff assignments (current or revoked, inside or outside the scope),
asked on a random day.

Rows are built directly (no operation), so the worlds also hold what the operations would refuse:
assignments outside the scope, on forms that were never accepted, of persons who are not (or no longer)
the provider's staff, links without direct authority. The oracle below recomputes each step from the
generated rows in plain Python, from the issue's text, not from mandates/paths.py:

  active relationship on the day (accepted, effective_from <= day <= end_date)
  -> application within that mandate's scope
  -> a current assignment of the person, by that provider, for that mandate and application
  -> the person's current designation by the provider, on a direct-authority link with it on the day.

(a) a staff member is allowed for an employer exactly when such a complete path exists (the certificate
    tier never), every allowed decision's path names the steps of one complete path, and a refusal gives
    the reason of the step that failed furthest along, naming a provider that got that far;
(b) mandates.queries.clients_of_staff lists exactly the employers (mandates) with a complete path for at
    least one application, with exactly those applications: nobody else's clients."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from access.catalogue import Tier, load_catalogue
from access.clock import FrozenClock, as_utc, using_clock
from access.decision import Subject, decide
from access.models import LinkKind, Role
from access.validators import format_kbo
from mandates.groups import load_groups
from mandates.models import Mandate, MandateApplication, MandateKind, MandateStatus, Provider, ProviderKind, StaffAssignment
from mandates.queries import clients_of_staff
from tests.factories import EmployerFactory, EnterpriseFactory, LinkFactory, MembershipFactory, PersonFactory, bind_session

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
TODAY = date(2026, 11, 2)
CATALOGUE = load_catalogue()
GROUPS = load_groups()
GROUP_CODES = [group.code for group in GROUPS.all()]
QUARTERS = [date(2026, 4, 1), date(2026, 7, 1), date(2026, 10, 1), date(2027, 1, 1), date(2027, 4, 1)]
# Written out from DOMAIN.md, not imported: the oracle must not move with the code under test.
DIRECT_AUTHORITY = {LinkKind.WERKNEMER, LinkKind.ZAAKVOERDER, LinkKind.BESTUURDER, LinkKind.VENNOOT}
# Asked of the decision point: password applications of several groups (two employer-only, one of the
# federal portal that no secretariat gets by default) and a certificate one.
ASKED = ["dmfa", "asr", "personeelsbestand", "kbo_prive_gegevens", "wijzigingsvoorstellen", "directe_wijziging"]
# Assigned: those, and a free and another password application (the client list counts every application).
ASSIGNABLE = ASKED + ["dimona", "vakantiebestand"]


@dataclass
class MandateSpec:
    employer: int
    provider: int
    affiliation: bool
    status: MandateStatus
    start: date
    length: int | None          # days from start to the end date (inclusive), None: open
    delay: int                  # days from start to effective_from, when accepted
    groups: list[str]


@dataclass
class World:
    secretariats: list[bool]                                     # per provider: an erkend sociaal secretariaat?
    n_employers: int
    n_persons: int
    mandates: list[MandateSpec]
    memberships: list[tuple[int, int, Role, bool]]               # provider, person, role, ended
    links: list[tuple[int, int, LinkKind, int, int | None]]      # provider, person, kind, start offset, length
    employer_links: list[tuple[int, int, LinkKind]]              # employer, person, kind without direct authority
    assignments: list[tuple[int, int, str, bool, int | None, int]]  # mandate, person, application, revoked,
    #                                                                 assigner, assigned hours ago
    day_offset: int


def sometimes(one_in: int):
    return st.integers(0, one_in - 1).map(lambda n: n == 0)


@st.composite
def worlds(draw) -> World:
    secretariats = draw(st.lists(st.booleans(), min_size=1, max_size=3))
    n_providers, n_employers, n_persons = len(secretariats), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    mandates = []
    for e in range(n_employers):
        for p in range(n_providers):
            for _ in range(draw(st.integers(0, 2))):
                affiliation = secretariats[p] and draw(st.booleans())
                status = MandateStatus.ACCEPTED if affiliation else draw(st.sampled_from(
                    [MandateStatus.ACCEPTED] * 3 + [MandateStatus.PENDING, MandateStatus.DECLINED,
                                                    MandateStatus.WITHDRAWN, MandateStatus.REVOKED]))
                mandates.append(MandateSpec(
                    e, p, affiliation, status, draw(st.sampled_from(QUARTERS)),
                    draw(st.one_of(st.none(), st.none(), st.integers(0, 270))), draw(st.integers(0, 60)),
                    draw(st.lists(st.sampled_from(GROUP_CODES), min_size=1, max_size=3, unique=True))))
    memberships, links, employer_links, assignments = [], [], [], []
    for p in range(n_providers):
        for person in range(n_persons):
            # Drawn per (provider, person) pair so that roles, links and assignments meet often enough.
            memberships += [(p, person, *m) for m in draw(st.lists(st.tuples(
                st.sampled_from(list(Role)), sometimes(4)), min_size=1, max_size=2))]
            links += [(p, person, *link) for link in draw(st.lists(st.tuples(
                st.sampled_from(list(LinkKind)), st.integers(-400, 60), st.one_of(st.none(), st.integers(0, 300))),
                min_size=1, max_size=2))]
    for e in range(n_employers):
        for person in range(n_persons):
            employer_links += [(e, person, kind) for kind in draw(st.lists(st.sampled_from(
                [LinkKind.ZELFSTANDIGE_MEDEWERKER, LinkKind.DERDE]), max_size=1))]
    for m, spec in enumerate(mandates):
        # Half of the draws from the applications of the mandate's scope, so that complete paths are common.
        in_scope = [app for code in spec.groups for app in GROUPS.get(code).applications if app in ASSIGNABLE]
        for person in range(n_persons):
            assignments += [(m, person, *a) for a in draw(st.lists(st.tuples(
                st.sampled_from(in_scope + ASSIGNABLE if in_scope else ASSIGNABLE), sometimes(3), st.one_of(st.none(), st.integers(0, n_persons - 1)),
                st.builds(lambda days, hours: days * 24 + hours, st.integers(0, 90), st.sampled_from([0, 11, 12]))),
                max_size=3))]
    return World(secretariats, n_employers, n_persons, mandates, memberships, links, employer_links, assignments,
                 draw(st.one_of(st.just(0), st.integers(-220, 220))))


@dataclass
class Rows:
    providers: list = field(default_factory=list)
    employers: list = field(default_factory=list)
    persons: list = field(default_factory=list)
    mandates: list = field(default_factory=list)
    memberships: list = field(default_factory=list)
    links: list = field(default_factory=list)
    assignments: list = field(default_factory=list)


def build(session: Session, world: World) -> Rows:
    rows = Rows()
    for n, secretariat in enumerate(world.secretariats):
        enterprise = EnterpriseFactory(employer=secretariat)
        kind = ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT if secretariat else ProviderKind.ACCOUNTANT
        rows.providers.append(Provider(enterprise=enterprise, kind=kind, registered_at=NOW,
                                       recognition_number=f"900/{n}" if secretariat else None))
    session.add_all(rows.providers)
    rows.employers = [EmployerFactory() for _ in range(world.n_employers)]
    rows.persons = [PersonFactory() for _ in range(world.n_persons)]
    open_form, open_affiliation = set(), set()
    for spec in world.mandates:
        end = None if spec.length is None else spec.start + timedelta(days=spec.length)
        holds = spec.status is MandateStatus.ACCEPTED or (not spec.affiliation and spec.status is MandateStatus.PENDING)
        # The partial unique indexes: one open form holding the place, one open affiliation per employer.
        taken = open_affiliation if spec.affiliation else open_form
        if end is None and holds and spec.employer in taken:
            end = spec.start + timedelta(days=89)
        if end is None and holds:
            taken.add(spec.employer)
        accepted_once = spec.status is MandateStatus.ACCEPTED or (
            spec.status is MandateStatus.REVOKED and spec.delay % 2 == 0)
        mandate = Mandate(
            kind=MandateKind.AFFILIATION if spec.affiliation else MandateKind.FORM,
            employer_id=rows.employers[spec.employer].id, provider=rows.providers[spec.provider], status=spec.status,
            start_date=spec.start, end_date=end,
            effective_from=(spec.start if spec.affiliation else spec.start + timedelta(days=spec.delay))
            if accepted_once else None,
            contract_declared=not spec.affiliation, contract_date=None if spec.affiliation else date(2026, 1, 5),
            contract_reference=None if spec.affiliation else "C", filed_at=NOW,
            scope=[MandateApplication(application_group=code, application=app)
                   for code in spec.groups for app in GROUPS.get(code).applications])
        rows.mandates.append(mandate)
    session.add_all(rows.mandates)
    current, local_admin = set(), set()
    for p, person, role, ended in world.memberships:
        if (p, person) in current or (role is Role.LOCAL_ADMIN and p in local_admin):
            ended = True  # one current role per person, one current local administrator
        if not ended:
            current.add((p, person))
            local_admin |= {p} if role is Role.LOCAL_ADMIN else set()
        rows.memberships.append(MembershipFactory(
            enterprise=rows.providers[p].enterprise, person=rows.persons[person], role=role,
            started_at=NOW - timedelta(days=30), ended_at=NOW - timedelta(days=1) if ended else None))
    for p, person, kind, start, length in world.links:
        start_date = TODAY + timedelta(days=start)
        rows.links.append(LinkFactory(enterprise=rows.providers[p].enterprise, person=rows.persons[person], kind=kind,
                                      start_date=start_date,
                                      end_date=None if length is None else start_date + timedelta(days=length)))
    for e, person, kind in world.employer_links:
        LinkFactory(enterprise=rows.employers[e], person=rows.persons[person], kind=kind)
    session.flush()
    current_assignments = set()
    for m, person, application, revoked, assigner, hours in world.assignments:
        if (m, person, application) in current_assignments:
            revoked = True
        if not revoked:
            current_assignments.add((m, person, application))
        rows.assignments.append(StaffAssignment(
            mandate_id=rows.mandates[m].id, person_id=rows.persons[person].id, application=application,
            assigned_by_id=None if assigner is None else rows.persons[assigner].id,
            assigned_at=NOW - timedelta(hours=hours), revoked_at=NOW if revoked else None))
    session.add_all(rows.assignments)
    session.flush()
    return rows


# --- the oracle -------------------------------------------------------------------------------------


def belgian_date(moment: datetime) -> str:
    return as_utc(moment).astimezone(ZoneInfo("Europe/Brussels")).date().isoformat()


def in_force(mandate, day: date) -> bool:
    return (mandate.status is MandateStatus.ACCEPTED and mandate.effective_from is not None
            and mandate.effective_from <= day and (mandate.end_date is None or day <= mandate.end_date))


def designated(rows: Rows, person, provider) -> bool:
    return any(m.enterprise_id == provider.enterprise_id and m.person_id == person.id and m.ended_at is None
               for m in rows.memberships)


def authority_links(rows: Rows, person, provider, day: date) -> list:
    return [link for link in rows.links
            if link.enterprise_id == provider.enterprise_id and link.person_id == person.id
            and link.kind in DIRECT_AUTHORITY and link.start_date <= day
            and (link.end_date is None or day <= link.end_date)]


def group_in_scope(mandate, application: str) -> str | None:
    return next((item.application_group for item in mandate.scope if item.application == application), None)


def current_assignment(rows: Rows, mandate, person, application: str):
    found = [a for a in rows.assignments if a.mandate_id == mandate.id and a.person_id == person.id
             and a.application == application and a.revoked_at is None]
    assert len(found) <= 1
    return found[0] if found else None


def stage(rows: Rows, mandate, person, application: str, day: date) -> int:
    """How far along the path this (active, designating) mandate gets: 0 outside the scope, 1 not
    assigned, 2 no direct authority with the provider, 3 complete."""
    if group_in_scope(mandate, application) is None:
        return 0
    if current_assignment(rows, mandate, person, application) is None:
        return 1
    return 3 if authority_links(rows, person, mandate.provider, day) else 2


def candidates(rows: Rows, person, employer, day: date) -> list:
    return [m for m in rows.mandates if m.employer_id == employer.id and in_force(m, day)
            and designated(rows, person, m.provider)]


REASONS = {0: "outside-mandate", 1: "not-assigned", 2: "no-provider-authority", 3: "allowed"}


def expected_reason(rows: Rows, person, employer, application: str, day: date) -> tuple[str, set]:
    """The reason of the step that failed furthest along, and the providers that got that far."""
    active = candidates(rows, person, employer, day)
    if not active:
        ever = [m for m in rows.mandates if m.employer_id == employer.id and designated(rows, person, m.provider)]
        if not ever:
            return "no-direct-authority", {None}  # no tie with the employer at all: its own refusal stands
        return "no-mandate", {max(ever, key=lambda m: m.id).provider.enterprise_id}
    best = max(stage(rows, m, person, application, day) for m in active)
    return REASONS[best], {m.provider.enterprise_id for m in active if stage(rows, m, person, application, day) == best}


def complete(rows: Rows, person, employer, application: str, day: date) -> list:
    return [m for m in candidates(rows, person, employer, day) if stage(rows, m, person, application, day) == 3]


def path_matches(rows: Rows, decision, mandate, person, employer, application: str, day: date) -> bool:
    """The decision's path names exactly the steps of this complete path."""
    relationship, scope, assigned, link = decision.path
    provider = mandate.provider.enterprise
    label = f"{provider.name} ({format_kbo(provider.kbo_number)})"
    assignment = current_assignment(rows, mandate, person, application)
    assigner = next((p.full_name for p in rows.persons if p.id == assignment.assigned_by_id), None)
    return (
        decision.provider_enterprise_id == provider.id
        and relationship.code == ("mandate-affiliation" if mandate.kind is MandateKind.AFFILIATION else "mandate-form")
        and relationship.params == {"provider": label, "kbo": format_kbo(employer.kbo_number),
                                    "since": mandate.effective_from.isoformat()}
        and (scope.code, scope.params) == ("mandate-scope", {"application": application,
                                                             "group": group_in_scope(mandate, application)})
        and assigned.code == "staff-assignment"
        and (assigned.params["by"], assigned.params["on"]) == (assigner, belgian_date(assignment.assigned_at))
        and link.code == "link"
        and (link.params["kind"], link.params["since"]) in {
            (l.kind.value, l.start_date.isoformat()) for l in authority_links(rows, person, mandate.provider, day)}
        and link.params["kbo"] == format_kbo(provider.kbo_number)
    )


# --- the properties ----------------------------------------------------------------------------------


@given(world=worlds())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_staff_is_allowed_exactly_along_a_complete_path_and_lists_only_those_clients(engine, world):
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        with using_clock(FrozenClock(NOW)), bind_session(session):
            rows = build(session, world)
            day = TODAY + timedelta(days=world.day_offset)
            for person in rows.persons:
                subject = Subject(person_id=person.id, label=person.full_name)
                for employer in rows.employers:
                    for application in ASKED:
                        decision = decide(session, subject, employer.id, application, "use", catalogue=CATALOGUE,
                                          day=day)
                        where = (person.id, employer.id, application, day, decision.reason, decision.path_text)
                        paths = complete(rows, person, employer, application, day)
                        # (a) never allowed without a complete path, and the path is one of them.
                        if decision.allowed:
                            assert paths, where
                        certificate = CATALOGUE.get(application).tier is Tier.CERTIFICATE
                        assert decision.allowed == (bool(paths) and not certificate), where
                        if paths:
                            assert decision.reason.code == ("certificate-required" if certificate else "allowed"), where
                            assert any(path_matches(rows, decision, m, person, employer, application, day)
                                       for m in paths), where
                        else:
                            code, providers = expected_reason(rows, person, employer, application, day)
                            assert (decision.reason.code, decision.path) == (code, ()), where
                            assert decision.provider_enterprise_id in providers, where
                # (b) the client list: exactly the mandates with a complete path, with those applications.
                expected = {}
                for mandate in rows.mandates:
                    employer = next(e for e in rows.employers if e.id == mandate.employer_id)
                    apps = sorted({a.application for a in rows.assignments if a.mandate_id == mandate.id
                                   and a.person_id == person.id and a.revoked_at is None
                                   and mandate in complete(rows, person, employer, a.application, day)})
                    if apps:
                        expected[mandate.id] = (employer.id, mandate.provider.enterprise_id, tuple(apps))
                listed = {client.mandate.id: (client.employer.id, client.provider_enterprise.id, client.applications)
                          for client in clients_of_staff(session, person.id, day)}
                assert listed == expected, (person.id, day, world)
    finally:
        session.close()
        transaction.rollback()
        connection.close()
