"""Every branch of `access.decision.decide`, with the reason and the path it gives.

The clock stands at 2026-11-02 09:00 UTC (10:00 in Brussels) unless a test moves it."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from access import operations as ops
from access.catalogue import ACCESS_MANAGEMENT, PORTAL_ADMINISTRATION
from access.clock import today
from access.decision import ANONYMOUS, LOCAL_ADMIN_ONLY_ACTIONS, Subject, decide, log_decision
from access.models import LinkKind, Role
from audit.models import AuditRecord
from tests.factories import (
    make_local_admin,
    make_member,
    make_user_with_rights,
    person_with_link,
    subject_of,
)

KBO = "0123456749"
KBO_SHOWN = "0123.456.749"
TODAY = date(2026, 11, 2)


@pytest.fixture
def employer(factories):
    return factories.Employer(kbo_number=KBO, name="Bakkerij De Gouden Korst")


@pytest.fixture
def admin(db_session, employer, ctx):
    """An Peeters, zaakvoerder since 2025-11-02, appointed by the institution today."""
    return make_local_admin(db_session, employer, ctx, first_name="An", last_name="Peeters")


@pytest.fixture
def ask(db_session, catalogue):
    def ask(subject, enterprise, application, action="use", **kwargs):
        enterprise_id = enterprise if enterprise is None or isinstance(enterprise, int) else enterprise.id
        return decide(db_session, subject, enterprise_id, application, action, catalogue=catalogue, **kwargs)
    return ask


def test_the_clock_is_where_these_tests_expect_it(clock):
    assert today() == TODAY


# --- before any database fact ------------------------------------------------------------

def test_unknown_application_is_denied_even_for_the_local_admin(ask, admin, employer):
    decision = ask(admin.subject, employer, "no_such_application")
    assert not decision.allowed
    assert decision.reason.code == "unknown-application"
    assert "no_such_application" in decision.reason.text
    assert decision.path == ()


def test_portal_administration_only_for_portal_officers(ask, factories, admin, employer):
    officer = Subject(person_id=factories.Person().id, label="officer", is_portal_officer=True)
    allowed = ask(officer, None, PORTAL_ADMINISTRATION)
    assert allowed.allowed
    assert allowed.reason.code == "allowed"
    assert [s.code for s in allowed.path] == ["portal-officer"]
    assert allowed.path_text == ["portal officer of the institution"]

    # The local administrator of an enterprise is no portal officer.
    denied = ask(admin.subject, employer, PORTAL_ADMINISTRATION)
    assert not denied.allowed and denied.reason.code == "not-portal-officer"
    assert not ask(ANONYMOUS, None, PORTAL_ADMINISTRATION).allowed


def test_disabled_portal_officer_is_denied_portal_administration(ask, factories):
    officer = Subject(person_id=factories.Person().id, label="officer", is_portal_officer=True, disabled=True)
    decision = ask(officer, None, PORTAL_ADMINISTRATION)
    assert not decision.allowed
    assert decision.reason.code == "not-portal-officer"


@pytest.mark.parametrize("application", ["dimona", "gotot", "werkmeldingen", "inhoudingsplicht_30bis",
                                         "werkgeversrepertorium"])
def test_free_tier_needs_no_login(ask, application):
    decision = ask(ANONYMOUS, None, application)
    assert decision.allowed
    assert [s.code for s in decision.path] == ["free-access"]
    assert decision.path_text == ["free access: no login needed"]


def test_free_employer_only_application_needs_no_login_for_an_employer(ask, employer):
    decision = ask(ANONYMOUS, employer, "dimona")
    assert decision.allowed
    assert [s.code for s in decision.path] == ["free-access"]


def test_free_employer_only_application_refused_for_a_non_employer(ask, factories):
    enterprise = factories.Enterprise(kbo_number="1000000021")
    decision = ask(ANONYMOUS, enterprise, "dimona")
    assert not decision.allowed
    assert decision.reason.code == "employers-only"
    assert "1000.000.021" in decision.reason.text


@pytest.mark.parametrize("application", ["dmfa", "kbo_prive_gegevens", "directe_wijziging", ACCESS_MANAGEMENT])
def test_anonymous_is_asked_to_log_in(ask, employer, application):
    decision = ask(ANONYMOUS, employer, application)
    assert not decision.allowed
    assert decision.reason.code == "login-required"
    assert decision.path == ()


def test_disabled_account_is_denied_even_as_local_admin(ask, admin, employer, db_session):
    assert ask(admin.subject, employer, "dmfa").allowed
    admin.person.account.is_disabled = True
    db_session.flush()
    decision = ask(subject_of(admin.person), employer, "dmfa")
    assert not decision.allowed
    assert decision.reason.code == "account-disabled"


def test_no_enterprise_chosen(ask, admin):
    decision = ask(admin.subject, None, "dmfa")
    assert not decision.allowed
    assert decision.reason.code == "no-enterprise"


def test_unknown_enterprise(ask, admin, employer):
    decision = ask(admin.subject, employer.id + 10_000, "dmfa")
    assert not decision.allowed
    assert decision.reason.code == "unknown-enterprise"
    assert decision.enterprise_id == employer.id + 10_000


# --- employer-only applications -------------------------------------------------------------

def test_employer_only_application_refused_for_a_non_employer(ask, db_session, factories, ctx):
    enterprise = factories.Enterprise(kbo_number="1000000021")
    admin = make_local_admin(db_session, enterprise, ctx)
    decision = ask(admin.subject, enterprise, "dmfa")
    assert not decision.allowed
    assert decision.reason.code == "employers-only"
    assert "1000.000.021" in decision.reason.text and "employers only" in decision.reason.text
    # Federal applications are for every enterprise.
    assert ask(admin.subject, enterprise, "kbo_prive_gegevens").allowed
    assert ask(admin.subject, enterprise, "unieke_aangifte_starters").allowed


# --- direct authority -------------------------------------------------------------------------

def test_no_link_at_all_means_no_direct_authority(ask, factories, employer):
    stranger = factories.Person()
    decision = ask(subject_of(stranger), employer, "dmfa")
    assert not decision.allowed
    assert decision.reason.code == "no-direct-authority"
    assert decision.reason.text == f"not under the direct authority of {KBO_SHOWN} on 2026-11-02"


@pytest.mark.parametrize("kind", [LinkKind.ZELFSTANDIGE_MEDEWERKER, LinkKind.DERDE, LinkKind.DIENSTVERLENER,
                                  LinkKind.TUSSENPERSOON])
def test_links_without_direct_authority_reach_nothing_even_with_a_role_and_a_right(ask, factories, employer, kind):
    # Built directly: the operations would never give such a person a role.
    person = person_with_link(employer, kind)
    factories.Membership(enterprise=employer, person=person, role=Role.LOCAL_ADMIN)
    factories.Right(enterprise=employer, person=person, application="dmfa")
    for application in ("dmfa", ACCESS_MANAGEMENT):
        decision = ask(subject_of(person), employer, application)
        assert not decision.allowed
        assert decision.reason.code == "no-direct-authority"


@pytest.mark.parametrize("kind", [LinkKind.WERKNEMER, LinkKind.ZAAKVOERDER, LinkKind.BESTUURDER, LinkKind.VENNOOT])
def test_each_direct_authority_kind_qualifies(ask, factories, employer, kind):
    person = person_with_link(employer, kind)
    factories.Membership(enterprise=employer, person=person, role=Role.CO_ADMIN)
    decision = ask(subject_of(person), employer, "dmfa")
    assert decision.allowed
    assert decision.path[1].code == "link"
    assert decision.path[1].params["kind"] == kind.value


def test_link_ending_tomorrow_allows_today_and_stops_after(ask, clock, db_session, employer, admin, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue,
                                 link_end=TODAY + timedelta(days=1))
    assert ask(user.subject, employer, "dmfa").allowed
    clock.advance(days=1)  # the end date itself is still covered
    assert ask(user.subject, employer, "dmfa").allowed
    clock.advance(days=1)
    decision = ask(user.subject, employer, "dmfa")
    assert not decision.allowed
    assert decision.reason.code == "no-direct-authority"
    assert "2026-11-04" in decision.reason.text


def test_local_admin_whose_link_ends_loses_everything_at_once(ask, clock, db_session, employer, admin, ctx):
    ops.end_link(db_session, admin.link, TODAY, by=ctx)
    assert ask(admin.subject, employer, ACCESS_MANAGEMENT, "manage_users").allowed
    clock.advance(days=1)
    for application, action in (("dmfa", "use"), (ACCESS_MANAGEMENT, "manage_users"),
                                (ACCESS_MANAGEMENT, "hand_over")):
        decision = ask(admin.subject, employer, application, action)
        assert not decision.allowed
        assert decision.reason.code == "no-direct-authority"


def test_link_ended_in_the_past_stops_access_immediately(ask, db_session, employer, admin, ctx, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    ops.end_link(db_session, user.link, TODAY - timedelta(days=1), by=ctx)
    assert ask(user.subject, employer, "dmfa").reason.code == "no-direct-authority"


def test_link_not_started_yet(ask, clock, factories, employer):
    person = person_with_link(employer, LinkKind.WERKNEMER, start=TODAY + timedelta(days=3))
    factories.Membership(enterprise=employer, person=person, role=Role.CO_ADMIN)
    assert ask(subject_of(person), employer, "dmfa").reason.code == "no-direct-authority"
    clock.advance(days=3)
    assert ask(subject_of(person), employer, "dmfa").allowed


def test_the_link_date_is_the_belgian_date(ask, clock, db_session, employer, admin, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue,
                                 link_end=TODAY)
    clock.at = datetime(2026, 11, 2, 22, 30, tzinfo=timezone.utc)  # 23:30 in Brussels, still 2 November
    assert ask(user.subject, employer, "dmfa").allowed
    clock.at = datetime(2026, 11, 2, 23, 30, tzinfo=timezone.utc)  # 00:30 on 3 November in Brussels
    assert ask(user.subject, employer, "dmfa").reason.code == "no-direct-authority"


def test_explicit_day_is_used_instead_of_the_clock(ask, db_session, employer, admin, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue,
                                 link_end=TODAY + timedelta(days=5))
    assert ask(user.subject, employer, "dmfa", day=TODAY + timedelta(days=5)).allowed
    assert not ask(user.subject, employer, "dmfa", day=TODAY + timedelta(days=6)).allowed


def test_link_with_another_enterprise_does_not_count(ask, factories, db_session, employer, ctx):
    other = factories.Employer()
    person = person_with_link(other, LinkKind.WERKNEMER)
    factories.Membership(enterprise=employer, person=person, role=Role.CO_ADMIN)
    assert ask(subject_of(person), employer, "dmfa").reason.code == "no-direct-authority"


# --- role ---------------------------------------------------------------------------------

def test_direct_authority_without_a_role(ask, factories, employer):
    person = person_with_link(employer, LinkKind.WERKNEMER)
    decision = ask(subject_of(person), employer, "dmfa")
    assert not decision.allowed
    assert decision.reason.code == "not-designated"
    assert KBO_SHOWN in decision.reason.text


def test_ended_membership_is_no_role(ask, db_session, employer, admin, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    assert ask(user.subject, employer, "dmfa").allowed
    ops.remove_member(db_session, employer, user.person, by=admin.ctx)
    decision = ask(user.subject, employer, "dmfa")
    assert not decision.allowed
    assert decision.reason.code == "not-designated"


def test_membership_ended_but_right_left_unrevoked_still_denies(ask, clock, db_session, factories, employer):
    # Even if a right row was (wrongly) left behind, an ended role stops it.
    person = person_with_link(employer, LinkKind.WERKNEMER)
    factories.Membership(enterprise=employer, person=person, role=Role.USER, ended_at=clock.now())
    factories.Right(enterprise=employer, person=person, application="dmfa")
    assert ask(subject_of(person), employer, "dmfa").reason.code == "not-designated"


# --- access management (toegangsbeheer) ----------------------------------------------------------

@pytest.mark.parametrize("action", ["view", "manage_users", "manage_rights", *sorted(LOCAL_ADMIN_ONLY_ACTIONS)])
def test_local_admin_may_do_every_access_management_action(ask, admin, employer, action):
    decision = ask(admin.subject, employer, ACCESS_MANAGEMENT, action)
    assert decision.allowed
    assert [s.code for s in decision.path] == ["local-admin", "link"]
    assert decision.path_text == [f"local administrator of {KBO_SHOWN} since 2026-11-02",
                                  f"zaakvoerder of {KBO_SHOWN} since 2025-11-02"]


@pytest.mark.parametrize("action", ["view", "manage_users", "manage_rights"])
def test_co_admin_may_manage_users_and_rights(ask, db_session, admin, employer, action):
    co = make_member(db_session, employer, Role.CO_ADMIN, by=admin.ctx)
    decision = ask(co.subject, employer, ACCESS_MANAGEMENT, action)
    assert decision.allowed
    assert decision.path[0].code == "co-admin"
    assert decision.path_text[0] == f"co-administrator of {KBO_SHOWN} since 2026-11-02"


@pytest.mark.parametrize("action", sorted(LOCAL_ADMIN_ONLY_ACTIONS))
def test_co_admin_may_not_manage_co_admins_or_hand_over(ask, db_session, admin, employer, action):
    co = make_member(db_session, employer, Role.CO_ADMIN, by=admin.ctx)
    decision = ask(co.subject, employer, ACCESS_MANAGEMENT, action)
    assert not decision.allowed
    assert decision.reason.code == "local-admin-only"
    assert decision.reason.text == f"only the local administrator of {KBO_SHOWN} may do this"


def test_local_admin_only_actions_are_the_documented_ones():
    assert LOCAL_ADMIN_ONLY_ACTIONS == {"manage_co_admins", "hand_over", "manage_providers", "decide_mandates",
                                        "manage_certificates", "manage_security_officers", "access_review_auto_revoke",
                                        "reset_second_factor"}


def test_user_is_no_administrator_even_with_rights(ask, db_session, admin, employer, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    decision = ask(user.subject, employer, ACCESS_MANAGEMENT, "view")
    assert not decision.allowed
    assert decision.reason.code == "not-an-administrator"


# --- applications by role and right ------------------------------------------------------------

@pytest.mark.parametrize("application", ["personeelsbestand", "dmfa", "wijzigingsvoorstellen", "asr",
                                         "consultatie_werkmeldingen", "tijdelijke_werkloosheid", "vakantiebestand",
                                         "werkgeversrepertorium_beveiligd", "unieke_aangifte_starters",
                                         "kbo_prive_gegevens"])
def test_local_admin_reaches_every_password_application_without_a_grant(ask, db_session, admin, employer,
                                                                         application):
    decision = ask(admin.subject, employer, application)
    assert decision.allowed
    assert decision.path_text == [f"local administrator of {KBO_SHOWN} since 2026-11-02",
                                  f"zaakvoerder of {KBO_SHOWN} since 2025-11-02"]
    assert db_session.scalar(select(AuditRecord.id).where(AuditRecord.action == "right.grant")) is None


def test_co_admin_reaches_applications_without_a_grant(ask, db_session, admin, employer):
    co = make_member(db_session, employer, Role.CO_ADMIN, by=admin.ctx)
    decision = ask(co.subject, employer, "vakantiebestand")
    assert decision.allowed
    assert decision.path[0].code == "co-admin"


def test_user_needs_a_right_and_the_path_names_who_granted_it_and_when(ask, clock, db_session, admin, employer,
                                                                       catalogue):
    user = make_member(db_session, employer, Role.USER, by=admin.ctx, link_end=None)
    denied = ask(user.subject, employer, "dmfa")
    assert not denied.allowed
    assert denied.reason.code == "no-right"
    assert denied.reason.text == f"no right on Multifunctional declaration (DmfA) for {KBO_SHOWN}"

    clock.advance(days=1)
    ops.grant_right(db_session, employer, user.person, "dmfa", catalogue=catalogue, by=admin.ctx)
    clock.advance(days=1)
    allowed = ask(user.subject, employer, "dmfa")
    assert allowed.allowed
    assert allowed.reason.code == "allowed"
    assert [s.code for s in allowed.path] == ["right", "link"]
    assert allowed.path_text[0] == "right on Multifunctional declaration (DmfA) granted by An Peeters on 2026-11-03"
    assert allowed.path[0].params == {"application": "dmfa", "by": "An Peeters", "on": "2026-11-03"}
    assert allowed.path_text[1] == f"werknemer of {KBO_SHOWN} since 2025-11-02"


def test_a_right_on_one_application_does_not_open_another(ask, db_session, admin, employer, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    assert ask(user.subject, employer, "dmfa").allowed
    assert ask(user.subject, employer, "asr").reason.code == "no-right"


def test_revoked_right_is_denied_at_once(ask, db_session, admin, employer, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa", "asr"], by=admin.ctx, catalogue=catalogue)
    ops.revoke_right(db_session, employer, user.person, "dmfa", by=admin.ctx)
    assert ask(user.subject, employer, "dmfa").reason.code == "no-right"
    assert ask(user.subject, employer, "asr").allowed


def test_a_right_in_another_enterprise_does_not_count(ask, db_session, factories, admin, employer, ctx, catalogue):
    other = factories.Employer()
    other_admin = make_local_admin(db_session, other, ctx)
    user = make_user_with_rights(db_session, employer, [], by=admin.ctx, catalogue=catalogue)
    # The same person is also a user of the other employer, with a right on DmfA there.
    person_with_link(other, LinkKind.WERKNEMER, person=user.person)
    make_user_with_rights(db_session, other, ["dmfa"], by=other_admin.ctx, catalogue=catalogue, person=user.person)
    assert ask(user.subject, other, "dmfa").allowed
    assert ask(user.subject, employer, "dmfa").reason.code == "no-right"
    # And the other enterprise's local administrator has nothing in this one.
    assert ask(other_admin.subject, employer, "dmfa").reason.code == "no-direct-authority"


def test_the_grant_date_in_the_path_is_the_belgian_date(ask, clock, db_session, admin, employer, catalogue):
    # 23:30 UTC on 2 November is 00:30 on 3 November in Brussels: the user sees Belgian dates.
    clock.at = datetime(2026, 11, 2, 23, 30, tzinfo=timezone.utc)
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    decision = ask(user.subject, employer, "dmfa")
    assert decision.allowed
    assert decision.path[0].params["on"] == "2026-11-03"


# --- certificate tier -----------------------------------------------------------------------

@pytest.mark.parametrize("application", ["directe_wijziging", "bestandsoverdracht"])
def test_certificate_tier_refused_with_its_reason_even_for_the_local_admin(ask, admin, employer, application):
    decision = ask(admin.subject, employer, application)
    assert not decision.allowed
    assert decision.reason.code == "certificate-required"
    assert decision.reason.text.startswith("requires proof of possession of the private key of a registered qualified certificate")
    # The path that would have allowed it is kept, to show what is missing.
    assert [s.code for s in decision.path] == ["local-admin", "link"]


def test_certificate_tier_refused_for_a_user_with_the_right(ask, db_session, admin, employer, catalogue):
    user = make_user_with_rights(db_session, employer, ["directe_wijziging"], by=admin.ctx, catalogue=catalogue)
    decision = ask(user.subject, employer, "directe_wijziging")
    assert not decision.allowed
    assert decision.reason.text.startswith("requires proof of possession of the private key of a registered qualified certificate")


def test_certificate_tier_without_a_role_is_refused_for_that_reason_first(ask, factories, employer):
    person = person_with_link(employer, LinkKind.WERKNEMER)
    assert ask(subject_of(person), employer, "directe_wijziging").reason.code == "not-designated"


# --- hand-over --------------------------------------------------------------------------------

def test_after_hand_over_the_successor_administers_and_the_predecessor_is_a_user(ask, db_session, admin, employer,
                                                                                 catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    successor = person_with_link(employer, LinkKind.BESTUURDER)
    ops.hand_over_local_admin(db_session, employer, successor, by=admin.ctx)

    assert ask(subject_of(successor), employer, ACCESS_MANAGEMENT, "hand_over").allowed
    assert ask(subject_of(successor), employer, ACCESS_MANAGEMENT, "hand_over").path[0].code == "local-admin"
    assert ask(admin.subject, employer, ACCESS_MANAGEMENT, "view").reason.code == "not-an-administrator"
    assert ask(admin.subject, employer, "dmfa").reason.code == "no-right"
    assert ask(user.subject, employer, "dmfa").allowed


# --- the audit trail of decisions --------------------------------------------------------------

def test_log_decision_appends_the_decision_with_reason_and_path(ask, db_session, admin, employer, ctx):
    decision = ask(admin.subject, employer, "dmfa")
    log_decision(db_session, admin.ctx, decision)
    denied = ask(ANONYMOUS, employer, "asr")
    log_decision(db_session, ctx, denied)
    db_session.flush()
    rows = db_session.scalars(select(AuditRecord).where(AuditRecord.action == "decision:use")
                              .order_by(AuditRecord.id)).all()
    assert [(r.outcome, r.application, r.enterprise_id) for r in rows] == [
        ("allowed", "dmfa", employer.id), ("denied", "asr", employer.id)]
    assert rows[0].path == decision.path_text
    assert rows[0].reason == "allowed"
    assert rows[0].actor_person_id == admin.person.id
    assert rows[1].reason == "log in to use this application"


def test_log_decision_on_an_unknown_enterprise_keeps_the_id_in_the_details(ask, db_session, admin, employer):
    decision = ask(admin.subject, employer.id + 10_000, "dmfa")
    log_decision(db_session, admin.ctx, decision)
    db_session.flush()
    row = db_session.scalars(select(AuditRecord).where(AuditRecord.action == "decision:use")).one()
    assert row.enterprise_id is None
    assert row.details == {"enterprise_id": employer.id + 10_000}
    assert row.outcome == "denied"
