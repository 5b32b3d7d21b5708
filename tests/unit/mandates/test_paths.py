"""Every branch of the decision point's mandate path (mandates/paths.py and its use in access/decision.py):
no tie with the employer, a lapsed relationship, outside the scope, not assigned, no direct authority with
the provider, allowed (by affiliation and by form), the own path taking precedence, the tier requirement,
the applications never reached under mandate, and the provider carried into the audit trail."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from access import operations as aops
from access.catalogue import ACCESS_MANAGEMENT, PORTAL_ADMINISTRATION
from access.decision import decide, log_decision
from access.models import Link, LinkKind, Role
from audit.models import AuditRecord
from mandates import operations as mops
from mandates.paths import machine_mandate_path, mandate_path
from tests.factories import subject_of
from tests.unit.mandates.helpers import Q1_2027, Q4_2026, TODAY

YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture
def world(kit):
    """Employer E affiliated with secretariat S since 2026-10-01; staff member P of S assigned to E on dmfa."""
    employer, secretariat = kit.employer(name="Bakkerij Peeters"), kit.secretariat(name="Secretariaat Zuid")
    affiliation = kit.affiliate(employer, secretariat, Q4_2026)
    staff = kit.staff(secretariat)
    kit.assign(secretariat, affiliation, staff, "dmfa")
    return employer, secretariat, affiliation, staff


def test_the_complete_path_names_every_step(kit, world):
    employer, secretariat, affiliation, staff = world
    decision = kit.decide(staff, employer, "dmfa")
    assert decision.allowed and decision.reason.code == "allowed"
    assert decision.provider_enterprise_id == secretariat.enterprise.id
    relationship, scope, assignment, link = decision.path
    provider = f"Secretariaat Zuid ({secretariat.enterprise.kbo_display})"
    kbo = employer.enterprise.kbo_display
    assert (relationship.code, relationship.params) == (
        "mandate-affiliation", {"provider": provider, "kbo": kbo, "since": "2026-10-01"})
    assert relationship.text == f"{provider} is the erkend sociaal secretariaat of {kbo} since 2026-10-01"
    assert (scope.code, scope.params) == ("mandate-scope", {"application": "dmfa", "group": "dmfa_dimona"})
    assert (assignment.code, assignment.params) == (
        "staff-assignment", {"kbo": kbo, "application": "dmfa", "by": secretariat.admin.person.full_name,
                             "on": TODAY.isoformat()})
    staff_link = kit.session.scalar(select(Link).where(Link.person_id == staff.id))
    assert (link.code, link.params) == (
        "link", {"kind": "werknemer", "kbo": secretariat.enterprise.kbo_display,
                 "since": staff_link.start_date.isoformat()})


def test_the_path_of_a_provider_form(kit):
    employer, accountant = kit.employer(), kit.provider(name="Boekhouding Noord")
    form = kit.accepted_form(employer, accountant, Q4_2026, ["onderneming_federaal"])
    staff = kit.staff(accountant)
    kit.assign(accountant, form, staff, "kbo_prive_gegevens")
    decision = kit.decide(staff, employer, "kbo_prive_gegevens")
    assert decision.allowed
    assert [step.code for step in decision.path] == ["mandate-form", "mandate-scope", "staff-assignment", "link"]
    assert decision.path[0].params["since"] == TODAY.isoformat()  # accepted today, inside the started quarter
    assert "by form since" in decision.path[0].text
    assert decision.path[1].params == {"application": "kbo_prive_gegevens", "group": "onderneming_federaal"}


def test_outside_the_mandate(kit, world):
    employer, secretariat, _, staff = world
    # The federal portal's applications are not part of a secretariat's automatic access.
    decision = kit.decide(staff, employer, "kbo_prive_gegevens")
    assert (decision.allowed, decision.reason.code, decision.path) == (False, "outside-mandate", ())
    assert decision.reason.params["application"] == "kbo_prive_gegevens"
    assert "Secretariaat Zuid" in decision.reason.text and "not within the mandate" in decision.reason.text
    assert decision.provider_enterprise_id == secretariat.enterprise.id


def test_not_assigned_and_unassigned(kit, db_session, world):
    employer, secretariat, affiliation, staff = world
    assert kit.decide(staff, employer, "asr").reason.code == "not-assigned"
    colleague = kit.staff(secretariat)
    refused = kit.decide(colleague, employer, "dmfa")
    assert (refused.reason.code, refused.provider_enterprise_id) == ("not-assigned", secretariat.enterprise.id)
    mops.unassign_staff(db_session, secretariat.enterprise, affiliation, staff, "dmfa", by=secretariat.ctx)
    assert kit.decide(staff, employer, "dmfa").reason.code == "not-assigned"


@pytest.mark.parametrize("how", ["ended yesterday", "starts tomorrow", "self-employed", "third party"])
def test_no_direct_authority_with_the_provider(kit, db_session, world, how):
    employer, secretariat, affiliation, staff = world
    link = db_session.scalar(select(Link).where(Link.person_id == staff.id))
    if how == "ended yesterday":
        link.end_date = YESTERDAY
    elif how == "starts tomorrow":
        link.start_date = TODAY + timedelta(days=1)
    else:
        link.kind = LinkKind.ZELFSTANDIGE_MEDEWERKER if how == "self-employed" else LinkKind.DERDE
    db_session.flush()
    decision = kit.decide(staff, employer, "dmfa")
    assert (decision.allowed, decision.reason.code) == (False, "no-provider-authority")
    assert decision.reason.params["day"] == TODAY.isoformat()
    assert decision.provider_enterprise_id == secretariat.enterprise.id
    if how == "ended yesterday":
        assert kit.decide(staff, employer, "dmfa", day=YESTERDAY).allowed
    if how == "starts tomorrow":
        assert kit.decide(staff, employer, "dmfa", day=TODAY + timedelta(days=1)).allowed


@pytest.mark.parametrize("how", ["pending", "declined", "withdrawn", "revoked", "ended", "not yet effective"])
def test_a_relationship_not_in_force_is_no_mandate(kit, db_session, how):
    employer, accountant = kit.employer(), kit.provider(name="Boekhouding Oost")
    staff = kit.staff(accountant)
    start = Q1_2027 if how == "not yet effective" else Q4_2026
    form = kit.file(employer, accountant, start, ["asr"])
    if how in ("ended", "not yet effective", "revoked"):
        kit.decide_form(form, accountant)
        kit.assign(accountant, form, staff, "asr")
    if how == "declined":
        kit.decide_form(form, accountant, accept=False)
    elif how == "withdrawn":
        mops.end_mandate(db_session, form, None, by=employer.ctx)
    elif how == "revoked":
        mops.revoke_mandate(db_session, form, by=kit.ctx)
    elif how == "ended":
        mops.end_mandate(db_session, form, YESTERDAY, by=employer.ctx)
    decision = kit.decide(staff, employer, "asr")
    assert (decision.allowed, decision.reason.code, decision.path) == (False, "no-mandate", ())
    assert decision.provider_enterprise_id == accountant.enterprise.id
    assert "Boekhouding Oost" in decision.reason.text and TODAY.isoformat() in decision.reason.text
    assert decision.reason.params["kbo"] == employer.enterprise.kbo_display
    if how == "not yet effective":
        assert kit.decide(staff, employer, "asr", day=Q1_2027).allowed


def test_no_tie_at_all_leaves_the_employers_own_reason(kit, world):
    employer, secretariat, _, staff = world
    # A stranger, a provider's staff member whose provider has no mandate of this employer, and a
    # staff member of a provider of another employer: the employer's own refusal, no provider named.
    other_provider = kit.provider(name="Boekhouding West")
    other_staff = kit.staff(other_provider)
    other_employer = kit.employer()
    kit.accepted_form(other_employer, other_provider, Q4_2026, ["dmfa_dimona"])
    for person in (kit.f.Person(), other_staff):
        decision = kit.decide(person, employer, "dmfa")
        assert (decision.reason.code, decision.provider_enterprise_id) == ("no-direct-authority", None)
        assert "Secretariaat Zuid" not in decision.reason.text
    # And the secretariat's staff member for the other employer: refused, nothing about its provider.
    decision = kit.decide(staff, other_employer, "dmfa")
    assert (decision.allowed, decision.reason.code, decision.provider_enterprise_id) == (
        False, "no-direct-authority", None)
    assert "Boekhouding West" not in decision.reason.text


def test_a_staff_member_no_longer_designated_by_the_provider_has_no_tie(kit, db_session, world):
    employer, secretariat, _, staff = world
    aops.remove_member(db_session, secretariat.enterprise, staff, by=secretariat.ctx)
    decision = kit.decide(staff, employer, "dmfa")
    assert (decision.allowed, decision.reason.code, decision.provider_enterprise_id) == (
        False, "no-direct-authority", None)


def test_the_employers_own_path_comes_first(kit, db_session, world, catalogue):
    employer, secretariat, affiliation, staff = world
    # The staff member is also the employer's own user with a right on asr: his own path, no provider.
    aops.add_link(db_session, employer.enterprise, staff, LinkKind.WERKNEMER, date(2026, 1, 1), by=kit.ctx)
    aops.designate(db_session, employer.enterprise, staff, Role.USER, by=employer.ctx)
    aops.grant_right(db_session, employer.enterprise, staff, "asr", catalogue=catalogue, by=employer.ctx)
    own = kit.decide(staff, employer, "asr")
    assert own.allowed and own.provider_enterprise_id is None and [s.code for s in own.path] == ["right", "link"]
    # Without a right of his own (no-right), the mandate still allows him.
    via = kit.decide(staff, employer, "dmfa")
    assert via.allowed and via.provider_enterprise_id == secretariat.enterprise.id
    assert via.path[0].code == "mandate-affiliation"
    # But a refusal under mandate does not replace the own refusal of one of the employer's own people.
    assert kit.decide(staff, employer, "kbo_prive_gegevens").reason.code == "no-right"


def test_an_employee_not_designated_keeps_his_own_reason(kit, db_session, world):
    employer, secretariat, affiliation, staff = world
    aops.add_link(db_session, employer.enterprise, staff, LinkKind.WERKNEMER, date(2026, 1, 1), by=kit.ctx)
    assert kit.decide(staff, employer, "dmfa").allowed  # not-designated, then the mandate allows
    refused = kit.decide(staff, employer, "asr")
    assert (refused.reason.code, refused.provider_enterprise_id) == ("not-designated", None)


@pytest.mark.parametrize("action", ["use", "manage_users", "manage_providers", "decide_mandates", "assign_staff"])
def test_a_providers_staff_never_manage_the_employers_access(kit, db_session, world, action):
    employer, secretariat, affiliation, staff = world
    # Even assigned on every application of the scope, and as the provider's local administrator.
    for application in affiliation.applications():
        if application != "dmfa":
            kit.assign(secretariat, affiliation, staff, application)
    kit.assign(secretariat, affiliation, secretariat.admin.person, "dmfa")
    for person in (staff, secretariat.admin.person):
        decision = kit.decide(person, employer, ACCESS_MANAGEMENT, action=action)
        assert (decision.allowed, decision.reason.code, decision.provider_enterprise_id) == (
            False, "no-direct-authority", None)
        assert not kit.decide(person, employer, PORTAL_ADMINISTRATION).allowed


def test_the_certificate_tier_still_applies_under_mandate(kit, world):
    employer, secretariat, affiliation, staff = world
    kit.assign(secretariat, affiliation, staff, "directe_wijziging")
    decision = kit.decide(staff, employer, "directe_wijziging")
    assert (decision.allowed, decision.reason.code) == (False, "certificate-required")
    assert [step.code for step in decision.path] == ["mandate-affiliation", "mandate-scope", "staff-assignment", "link"]
    assert decision.provider_enterprise_id == secretariat.enterprise.id


def test_free_applications_need_no_mandate(kit, world):
    employer, _, _, _ = world
    decision = kit.decide(kit.f.Person(), employer, "dimona")
    assert decision.allowed and decision.provider_enterprise_id is None and decision.path[0].code == "free-access"


def test_an_unknown_employer(kit, catalogue, world):
    _, _, _, staff = world
    decision = decide(kit.session, subject_of(staff), 10**9, "dmfa", "use", catalogue=catalogue)
    assert (decision.allowed, decision.reason.code, decision.provider_enterprise_id) == (
        False, "unknown-enterprise", None)


def test_the_furthest_step_of_two_providers_decides(kit, db_session, world):
    """The staff member works for the secretariat and for the employer's other provider."""
    employer, secretariat, affiliation, staff = world
    accountant = kit.provider(name="Boekhouding Noord")
    aops.add_link(db_session, accountant.enterprise, staff, LinkKind.WERKNEMER, date(2026, 1, 1), by=kit.ctx)
    aops.designate(db_session, accountant.enterprise, staff, Role.USER, by=accountant.ctx)
    form = kit.accepted_form(employer, accountant, Q4_2026, ["onderneming_federaal", "asr"])
    # kbo_prive_gegevens: outside the affiliation, inside the form but not assigned -> not-assigned via the form.
    refused = kit.decide(staff, employer, "kbo_prive_gegevens")
    assert (refused.reason.code, refused.provider_enterprise_id) == ("not-assigned", accountant.enterprise.id)
    kit.assign(accountant, form, staff, "kbo_prive_gegevens")
    allowed = kit.decide(staff, employer, "kbo_prive_gegevens")
    assert allowed.allowed and allowed.path[0].code == "mandate-form"
    assert allowed.provider_enterprise_id == accountant.enterprise.id
    # dmfa: allowed through the affiliation only.
    assert kit.decide(staff, employer, "dmfa").provider_enterprise_id == secretariat.enterprise.id
    # asr in both scopes, assigned by the form's provider only; his link with the secretariat then ends.
    kit.assign(accountant, form, staff, "asr")
    db_session.scalar(select(Link).where(Link.person_id == staff.id,
                                         Link.enterprise_id == secretariat.enterprise.id)).end_date = YESTERDAY
    db_session.flush()
    assert kit.decide(staff, employer, "asr").provider_enterprise_id == accountant.enterprise.id
    refused = kit.decide(staff, employer, "dmfa")
    assert (refused.reason.code, refused.provider_enterprise_id) == (
        "no-provider-authority", secretariat.enterprise.id)


def test_the_decision_record_names_the_provider(kit, db_session, world, ctx):
    employer, secretariat, _, staff = world
    for application in ("dmfa", "asr"):
        decision = kit.decide(staff, employer, application)
        log_decision(db_session, ctx.as_actor(staff.id, staff.full_name), decision)
    db_session.flush()
    records = db_session.scalars(select(AuditRecord).where(AuditRecord.action == "decision:use")
                                 .order_by(AuditRecord.id)).all()
    assert [(r.outcome, r.application, r.enterprise_id, r.provider_enterprise_id, r.actor_person_id)
            for r in records] == [
        ("allowed", "dmfa", employer.enterprise.id, secretariat.enterprise.id, staff.id),
        ("denied", "asr", employer.enterprise.id, secretariat.enterprise.id, staff.id)]
    assert records[0].path[0].startswith("Secretariaat Zuid")



def test_mandate_path_is_none_without_any_tie(kit, world):
    """None: the caller's own reason stands. (The decision point does not even ask then: its own
    query knows whether the person works for a provider that has or had a mandate of the employer.)"""
    employer, _, _, _ = world
    other = kit.provider()
    other_staff = kit.staff(other)
    for person in (kit.f.Person(), other_staff):
        assert mandate_path(kit.session, person.id, employer.enterprise.id, "dmfa", TODAY,
                            kbo=employer.enterprise.kbo_display, application_name="DmfA") is None


def test_machine_mandate_path_of_a_providers_own_system(kit, db_session, world):
    """A provider's API client acting for a client: the relationship and the scope, no staff step."""
    employer, secretariat, affiliation, _ = world

    def machine(provider, application, day=TODAY, for_employer=employer):
        return machine_mandate_path(db_session, provider.enterprise.id, for_employer.enterprise.id, application, day,
                                    kbo=for_employer.enterprise.kbo_display, application_name=application)

    allowed = machine(secretariat, "dmfa")
    assert (allowed.allowed, allowed.provider_enterprise_id) == (True, secretariat.enterprise.id)
    assert [(s.code, s.params.get("since"), s.params.get("group")) for s in allowed.path] == [
        ("mandate-affiliation", "2026-10-01", None), ("mandate-scope", None, "dmfa_dimona")]
    outside = machine(secretariat, "kbo_prive_gegevens")
    assert (outside.allowed, outside.reason.code, outside.path) == (False, "outside-mandate", ())
    assert "Secretariaat Zuid" in outside.reason.text
    # Before the start, after the end, and for another provider's client: no mandate.
    assert machine(secretariat, "dmfa", Q4_2026 - timedelta(days=1)).reason.code == "no-mandate"
    other_employer = kit.employer()
    assert machine(secretariat, "dmfa", for_employer=other_employer).reason.code == "no-mandate"
    accountant = kit.provider(name="Boekhouding Noord")
    assert machine(accountant, "dmfa").reason.code == "no-mandate"
    form = kit.accepted_form(employer, accountant, Q4_2026, ["onderneming_federaal"])
    by_form = machine(accountant, "kbo_prive_gegevens")
    assert by_form.allowed and by_form.path[0].code == "mandate-form"
    assert by_form.path[0].params["since"] == TODAY.isoformat()
    mops.end_mandate(db_session, affiliation, YESTERDAY, by=employer.ctx)
    refused = machine(secretariat, "dmfa")
    assert (refused.allowed, refused.reason.code, refused.provider_enterprise_id) == (
        False, "no-mandate", secretariat.enterprise.id)
    mops.revoke_mandate(db_session, form, by=kit.ctx)
    assert machine(accountant, "kbo_prive_gegevens").reason.code == "no-mandate"
