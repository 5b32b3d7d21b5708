"""The decision point on access reviews: the action access_review on access management (toegangsbeheer) is
the enterprise's administrators' and its own security officers'; revoking stays the administrators' act
(manage_rights, manage_providers). Nobody else: not a user, not the institution's security officer, not a
provider's staff, not an API client."""
from __future__ import annotations

from datetime import timedelta

import pytest

from access import security_officers as sec
from access.catalogue import ACCESS_MANAGEMENT
from access.clock import today
from access.decision import Subject, decide
from access.models import LinkKind
from tests.factories import person_with_link, subject_of
from tests.unit.reviews.conftest import World

REVIEW = sec.ACCESS_REVIEW


@pytest.fixture
def ask(db_session, catalogue, world: World):
    def ask(subject: Subject, action: str = REVIEW, enterprise=None):
        enterprise_id = (enterprise or world.employer.enterprise).id
        return decide(db_session, subject, enterprise_id, ACCESS_MANAGEMENT, action, catalogue=catalogue)
    return ask


def test_the_administrators_review_and_revoke(ask, world):
    for member, code in ((world.admin, "local-admin"), (world.co_admin, "co-admin")):
        decision = ask(member.subject)
        assert decision.allowed and decision.path[0].code == code
        assert ask(member.subject, "manage_rights").allowed
    assert ask(world.admin.subject, "manage_providers").allowed
    assert ask(world.co_admin.subject, "manage_providers").reason.code == "local-admin-only"


def test_the_enterprises_own_security_officer_reviews_but_does_not_revoke(db_session, ask, world):
    officer = person_with_link(world.employer.enterprise, LinkKind.WERKNEMER)
    assert ask(subject_of(officer)).reason.code == "not-designated"
    sec.appoint_enterprise_officer(db_session, world.employer.enterprise, officer, by=world.admin.ctx)
    decision = ask(subject_of(officer))
    assert decision.allowed
    assert [step.code for step in decision.path] == ["security-officer", "link"]
    assert ask(subject_of(officer), "manage_rights").reason.code == "not-designated"
    assert ask(subject_of(officer), "manage_providers").reason.code == "not-designated"
    assert not ask(subject_of(officer), "view").allowed  # only the review, not the rest of access management


def test_a_user_who_is_also_officer_reviews(db_session, ask, world):
    assert ask(world.alice.subject).reason.code == "not-an-administrator"
    sec.appoint_enterprise_officer(db_session, world.employer.enterprise, world.alice.person, by=world.admin.ctx)
    assert ask(world.alice.subject).allowed
    assert ask(world.alice.subject, "manage_rights").reason.code == "not-an-administrator"


def test_an_officer_of_another_enterprise_or_without_link_or_of_the_institution_does_not(db_session, kit,
                                                                                         factories, ask, world):
    other = kit.employer()
    stranger = person_with_link(other.enterprise, LinkKind.WERKNEMER)
    sec.appoint_enterprise_officer(db_session, other.enterprise, stranger, by=other.admin.ctx)
    assert ask(subject_of(stranger)).reason.code == "no-direct-authority"
    assert ask(subject_of(stranger), enterprise=other.enterprise).allowed

    leaving = person_with_link(world.employer.enterprise, LinkKind.WERKNEMER, end=today() + timedelta(days=3))
    sec.appoint_enterprise_officer(db_session, world.employer.enterprise, leaving, by=world.admin.ctx)
    assert ask(subject_of(leaving)).allowed
    assert not decide(db_session, subject_of(leaving), world.employer.enterprise.id, ACCESS_MANAGEMENT, REVIEW,
                      catalogue=kit.catalogue, day=today() + timedelta(days=4)).allowed  # his link ended

    institution = factories.Person()
    sec.appoint_institution_officer(db_session, institution, by=world.admin.ctx)
    assert sec.audit_access(db_session, institution.id, world.employer.enterprise.id, today()).allowed
    assert ask(subject_of(institution)).reason.code == "no-direct-authority"


def test_provider_staff_and_api_clients_never_review_a_clients_access(db_session, kit, ask, world):
    staff = kit.staff(world.provider)
    kit.assign(world.provider, world.form, staff, "asr")
    assert kit.decide(staff, world.employer, "asr").allowed  # he works for the client...
    assert not ask(subject_of(staff)).allowed                # ...but never on its access management
    machine = Subject(person_id=None, label="client", client_enterprise_id=world.employer.enterprise.id,
                      scopes=frozenset({ACCESS_MANAGEMENT}))
    assert ask(machine).reason.code == "machine-no-access-management"
