"""Security officers: appointed and ended with audit records, resting on a direct-authority link (an
enterprise's) or on a portal officer's appointment (the institution's), next to the membership role;
and the decision point's rule on the audit function `beveiligingsaudit`.

The clock stands at 2026-11-02 09:00 UTC."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from access import operations as ops
from access import security_officers as sec
from access.catalogue import ACCESS_MANAGEMENT
from access.clock import today
from access.decision import ANONYMOUS, Subject, decide
from access.errors import Conflict, NotFound, ValidationError
from access.models import LinkKind, Role, SecurityOfficer
from audit.models import AuditRecord
from tests.factories import set_own_credentials
from tests.factories import audit_records, make_local_admin, make_member, person_with_link, subject_of, table_snapshot

AUDIT = sec.SECURITY_AUDIT


@pytest.fixture
def employer(factories):
    return factories.Employer(name="Bakkerij De Gouden Korst")


@pytest.fixture
def other(factories):
    return factories.Employer(name="Garage Lambrecht")


@pytest.fixture
def admin(db_session, employer, ctx):
    return make_local_admin(db_session, employer, ctx, first_name="An", last_name="Peeters")


@pytest.fixture
def ask(db_session, catalogue):
    def ask(subject, enterprise, action="review", application=AUDIT):
        enterprise_id = enterprise if enterprise is None or isinstance(enterprise, int) else enterprise.id
        return decide(db_session, subject, enterprise_id, application, action, catalogue=catalogue)
    return ask


def test_the_function_is_in_the_catalogue(catalogue):
    app = catalogue.get(AUDIT)
    assert app is not None and not app.grantable
    assert app.names == {"nl": "Beveiligingsaudit", "fr": "Audit de sécurité", "en": "Security audit"}
    assert AUDIT not in {a.code for a in catalogue.grantable()}


def test_the_local_admin_appoints_himself_and_keeps_his_role(db_session, admin, employer, ask):
    assert not ask(admin.subject, employer)  # being local administrator is not enough
    set_own_credentials(db_session, admin.person, "an.peeters", "Zonnebloem-Kade-47")
    appointment = sec.appoint_enterprise_officer(db_session, employer, admin.person, by=admin.ctx)
    assert appointment.credential is None  # he has his account already
    assert ops.current_membership(db_session, employer.id, admin.person.id).role is Role.LOCAL_ADMIN
    decision = ask(admin.subject, employer)
    assert decision.allowed
    assert [step.code for step in decision.path] == ["security-officer", "link"]
    assert decision.path_text == [f"security officer of {employer.kbo_display} since 2026-11-02",
                                  f"zaakvoerder of {employer.kbo_display} since {(today() - timedelta(days=365))}"]
    assert ask(admin.subject, employer, "export").allowed


def test_a_user_may_be_security_officer_too_and_a_person_without_role_as_well(db_session, admin, employer, ask):
    user = make_member(db_session, employer, Role.USER, by=admin.ctx)
    sec.appoint_enterprise_officer(db_session, employer, user.person, by=admin.ctx)
    assert ops.current_membership(db_session, employer.id, user.person.id).role is Role.USER
    assert ask(user.subject, employer).allowed
    employee = person_with_link(employer, LinkKind.WERKNEMER)
    appointment = sec.appoint_enterprise_officer(db_session, employer, employee, by=admin.ctx)
    assert appointment.credential is not None  # no account yet: an initial credential, as for a user
    assert ops.current_membership(db_session, employer.id, employee.id) is None
    assert ask(subject_of(employee), employer).allowed


def test_the_appointment_writes_its_audit_record_without_the_credential(db_session, admin, employer):
    employee = person_with_link(employer, LinkKind.WERKNEMER)
    appointment = sec.appoint_enterprise_officer(db_session, employer, employee, by=admin.ctx)
    [entry] = audit_records(db_session, "security_officer.appoint")
    assert (entry.enterprise_id, entry.actor_person_id, entry.outcome) == (employer.id, admin.person.id, "success")
    assert entry.details["before"] is None and entry.details["after"]["security_officer"] is True
    assert entry.details["initial_credential_issued"] is True
    assert appointment.credential.password not in repr(entry.details)
    sec.end_enterprise_officer(db_session, employer, employee, by=admin.ctx)
    [ended] = audit_records(db_session, "security_officer.end")
    assert ended.details["before"]["security_officer"] is True and ended.details["after"] == {
        "security_officer": False}


@pytest.mark.parametrize("kind", [LinkKind.ZELFSTANDIGE_MEDEWERKER, LinkKind.DERDE, LinkKind.DIENSTVERLENER,
                                  LinkKind.TUSSENPERSOON])
def test_only_someone_under_direct_authority_is_appointed(db_session, admin, employer, kind):
    outsider = person_with_link(employer, kind)
    before = table_snapshot(db_session)
    with pytest.raises(ValidationError) as refused:
        sec.appoint_enterprise_officer(db_session, employer, outsider, by=admin.ctx)
    assert refused.value.field == "person_id"
    assert db_session.scalars(select(SecurityOfficer)).all() == []
    assert table_snapshot(db_session) == before


def test_twice_is_refused_and_ending_a_non_officer_too(db_session, admin, employer):
    sec.appoint_enterprise_officer(db_session, employer, admin.person, by=admin.ctx)
    with pytest.raises(Conflict):
        sec.appoint_enterprise_officer(db_session, employer, admin.person, by=admin.ctx)
    other_person = person_with_link(employer)
    with pytest.raises(NotFound):
        sec.end_enterprise_officer(db_session, employer, other_person, by=admin.ctx)


def test_the_database_refuses_two_current_appointments(db_session, admin, employer, factories):
    from sqlalchemy.exc import IntegrityError

    sec.appoint_enterprise_officer(db_session, employer, admin.person, by=admin.ctx)
    with pytest.raises(IntegrityError):
        with db_session.begin_nested():
            db_session.add(SecurityOfficer(enterprise_id=employer.id, person_id=admin.person.id,
                                           started_at=admin.appointment.membership.started_at))
            db_session.flush()


def test_ending_the_appointment_or_the_link_stops_access_at_once(db_session, admin, employer, ask, clock):
    employee = person_with_link(employer, LinkKind.WERKNEMER, end=today() + timedelta(days=3))
    sec.appoint_enterprise_officer(db_session, employer, employee, by=admin.ctx)
    assert ask(subject_of(employee), employer).allowed
    clock.advance(days=4)
    decision = ask(subject_of(employee), employer)
    assert decision.reason.code == "security-officer-no-authority"
    assert decision.reason.params == {"kbo": employer.kbo_display, "day": today().isoformat()}
    clock.advance(days=-4)
    sec.end_enterprise_officer(db_session, employer, employee, by=admin.ctx)
    assert ask(subject_of(employee), employer).reason.code == "not-security-officer"


def test_an_enterprise_officer_is_refused_elsewhere_and_for_the_whole_trail(db_session, admin, employer, other, ask):
    sec.appoint_enterprise_officer(db_session, employer, admin.person, by=admin.ctx)
    elsewhere = ask(admin.subject, other)
    assert (elsewhere.allowed, elsewhere.reason.code) == (False, "not-security-officer")
    assert elsewhere.reason.text == f"not a security officer of {other.kbo_display}"
    everything = ask(admin.subject, None)
    assert (everything.allowed, everything.reason.code) == (False, "not-institution-security-officer")
    assert ask(admin.subject, 987654).reason.code == "unknown-enterprise"


def test_the_institution_officer_reviews_every_enterprise(db_session, ctx, employer, other, ask, factories):
    officer = factories.Person()
    appointment = sec.appoint_institution_officer(db_session, officer, by=ctx)
    assert appointment.credential is not None
    subject = subject_of(officer)
    for enterprise in (employer, other, None):
        decision = ask(subject, enterprise)
        assert decision.allowed
        assert [s.code for s in decision.path] == ["institution-security-officer"]
    [entry] = audit_records(db_session, "security_officer.appoint")
    assert entry.enterprise_id is None and entry.details["scope"] == "institution"
    with pytest.raises(Conflict):
        sec.appoint_institution_officer(db_session, officer, by=ctx)
    sec.end_institution_officer(db_session, officer, by=ctx)
    assert ask(subject, employer).reason.code == "not-security-officer"
    assert ask(subject, None).reason.code == "not-institution-security-officer"


def test_everyone_else_is_refused_with_a_reason(db_session, admin, employer, ask, factories, ctx):
    user = make_member(db_session, employer, Role.USER, by=admin.ctx)
    portal_officer = factories.Person()
    cases = {
        "login-required": ANONYMOUS,
        "not-security-officer": user.subject,
        "machine-no-security-audit": Subject(person_id=None, label="client", client_enterprise_id=employer.id,
                                             scopes=frozenset({AUDIT})),
    }
    for code, subject in cases.items():
        decision = ask(subject, employer)
        assert (decision.allowed, decision.reason.code) == (False, code), code
    not_officer = ask(Subject(person_id=portal_officer.id, label="po", is_portal_officer=True), None)
    assert not_officer.reason.code == "not-institution-security-officer"
    sec.appoint_enterprise_officer(db_session, employer, admin.person, by=admin.ctx)
    assert ask(subject_of(admin.person, disabled=True), employer).reason.code == "account-disabled"
    assert ask(admin.subject, employer, "delete").reason.code == "unknown-action"


def test_only_the_local_admin_manages_security_officers(db_session, admin, employer, ask):
    co = make_member(db_session, employer, Role.CO_ADMIN, by=admin.ctx)
    assert ask(admin.subject, employer, sec.MANAGE_SECURITY_OFFICERS, ACCESS_MANAGEMENT).allowed
    refused = ask(co.subject, employer, sec.MANAGE_SECURITY_OFFICERS, ACCESS_MANAGEMENT)
    assert (refused.allowed, refused.reason.code) == (False, "local-admin-only")


def test_a_providers_staff_never_reviews_the_employers_trail(db_session, employer, ask, factories):
    """No mandate path for the audit function: a staff member of a provider is simply not an officer."""
    from mandates import operations as mops
    from mandates.models import ProviderKind

    firm = factories.Enterprise(name="Boekhoudkantoor Cijfer")
    staff = person_with_link(firm)
    assert ask(subject_of(staff), employer).reason.code == "not-security-officer"


def test_records_never_carry_secrets(db_session, admin, employer, ctx, factories):
    employee = person_with_link(employer)
    appointment = sec.appoint_enterprise_officer(db_session, employer, employee, by=admin.ctx)
    officer = factories.Person()
    institution = sec.appoint_institution_officer(db_session, officer, by=ctx)
    db_session.flush()
    stored = " ".join(repr((r.details, r.reason, r.path)) for r in db_session.scalars(select(AuditRecord)))
    for credential in (appointment.credential, institution.credential):
        assert credential.password not in stored
