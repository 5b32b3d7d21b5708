"""The operations of the access core: each refusal raises the right error with the offending field and
writes nothing; each success writes its audit record (with before/after) in the same transaction;
initial passwords and logins."""
from __future__ import annotations

import contextlib
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from access import operations as ops
from access.errors import Conflict, DomainError, NotFound, ValidationError
from access.models import Account, LinkKind, Membership, OutboxMessage, Right, Role
from access.passwords import verify_password
from access.sessions import open_session
from access.validators import make_insz, make_kbo, make_rsz
from audit.models import AuditRecord
from audit.operations import SURVIVORS_KEY, replay_survivors
from tests.factories import (
    audit_records,
    make_local_admin,
    make_member,
    make_user_with_rights,
    person_with_link,
    row_counts,
    set_own_credentials,
    table_snapshot,
)

TODAY = date(2026, 11, 2)
NON_AUTHORITY_KINDS = [LinkKind.ZELFSTANDIGE_MEDEWERKER, LinkKind.DERDE, LinkKind.DIENSTVERLENER,
                       LinkKind.TUSSENPERSOON]
GOOD_PASSWORD = "Zonnebloem-Kade-47"
# The field the operations name when the chosen person is refused (the web form's and the API's name).
PERSON_FIELD = "person_id"


@contextlib.contextmanager
def refused(session, error_class: type[DomainError], field: str):
    """The block must raise exactly `error_class` naming `field`, and leave every table as it was
    (no row added, changed or removed; in particular no audit record)."""
    before = table_snapshot(session)
    audit_before = row_counts(session)["audit_records"]
    with pytest.raises(DomainError) as info:
        yield info
    error = info.value
    assert type(error) is error_class, f"{type(error).__name__}: {error.message}"
    assert error.field == field
    assert error.message and "%(" not in error.message
    assert row_counts(session)["audit_records"] == audit_before
    assert table_snapshot(session) == before


@pytest.fixture
def employer(factories):
    return factories.Employer(kbo_number="0123456749", name="Bakkerij De Gouden Korst")


@pytest.fixture
def admin(db_session, employer, ctx):
    return make_local_admin(db_session, employer, ctx, first_name="An", last_name="Peeters")


def _enterprise_fields(**overrides):
    fields = dict(name="Garage Vermeulen", street="Meir 1", postal_code="2000", city="Antwerpen", legal_form="BV")
    fields.update(overrides)
    return fields


def _only(records):
    assert len(records) == 1, records
    return records[0]


# --- enterprises -----------------------------------------------------------------------------

def test_register_enterprise_writes_it_and_its_audit_record(db_session, clock, ctx):
    enterprise = ops.register_enterprise(db_session, kbo="0123.456.749", by=ctx, **_enterprise_fields())
    assert enterprise.id is not None
    assert enterprise.kbo_number == "0123456749"
    assert not enterprise.is_employer
    record = _only(audit_records(db_session, "enterprise.register"))
    assert record.outcome == "success"
    assert record.enterprise_id == enterprise.id
    assert (record.actor_label, record.ip, record.user_agent, record.request_id) == \
        ("test", "127.0.0.1", "pytest", "test")
    assert record.occurred_at is not None
    assert record.details["after"] == {"kbo": "0123456749", "rsz_number": None, "name": "Garage Vermeulen",
                                       "street": "Meir 1", "postal_code": "2000", "city": "Antwerpen",
                                       "legal_form": "BV", "joint_committee": None}


def test_register_employer(db_session, clock, ctx):
    enterprise = ops.register_enterprise(db_session, kbo="0123456749", rsz_number="000-1234567-49", by=ctx,
                                         **_enterprise_fields(joint_committee="124.01"))
    assert enterprise.is_employer
    assert enterprise.rsz_number == "123456749"
    assert enterprise.joint_committee == "124.01"
    assert _only(audit_records(db_session, "enterprise.register")).details["after"]["rsz_number"] == "123456749"


@pytest.mark.parametrize(("kwargs", "error", "field"), [
    (dict(kbo="0123456748"), ValidationError, "kbo"),
    (dict(kbo="2123456749"), ValidationError, "kbo"),
    (dict(kbo=""), ValidationError, "kbo"),
    (dict(kbo="0123456749", rsz_number="123456748", joint_committee="200"), ValidationError, "rsz_number"),
    (dict(kbo="0123456749", joint_committee="200"), ValidationError, "joint_committee"),
    (dict(kbo="0123456749", rsz_number="123456749"), ValidationError, "joint_committee"),
    (dict(kbo="0123456749", rsz_number="123456749", joint_committee="twee honderd"), ValidationError,
     "joint_committee"),
    (dict(kbo="0123456749", postal_code="20000"), ValidationError, "postal_code"),
    (dict(kbo="0123456749", name="   "), ValidationError, "name"),
    (dict(kbo="0123456749", city="x" * 101), ValidationError, "city"),
])
def test_register_enterprise_refuses_invalid_input(db_session, clock, ctx, kwargs, error, field):
    fields = _enterprise_fields(**{k: v for k, v in kwargs.items() if k not in ("kbo", "rsz_number")})
    with refused(db_session, error, field):
        ops.register_enterprise(db_session, kbo=kwargs["kbo"], rsz_number=kwargs.get("rsz_number"), by=ctx,
                                **fields)


def test_duplicate_enterprise_is_refused_whatever_the_spelling(db_session, clock, ctx, employer):
    with refused(db_session, Conflict, "kbo") as info:
        ops.register_enterprise(db_session, kbo="BE 0123.456.749", by=ctx, **_enterprise_fields())
    assert "0123.456.749" in info.value.message
    assert "Bakkerij De Gouden Korst" in info.value.message


def test_duplicate_rsz_number_is_refused(db_session, clock, ctx, employer):
    with refused(db_session, Conflict, "rsz_number"):
        ops.register_enterprise(db_session, kbo=make_kbo(4_000_001), rsz_number=employer.rsz_number, by=ctx,
                                **_enterprise_fields(joint_committee="200"))


def test_duplicate_rsz_number_written_with_a_leading_zero_is_refused(db_session, clock, ctx):
    ops.register_enterprise(db_session, kbo=make_kbo(4_000_002), rsz_number=make_rsz(123_456), by=ctx,
                            **_enterprise_fields(name="Eerste", joint_committee="200"))
    # "0123456" + check digits and "00123456" + check digits are the same RSZ number.
    with refused(db_session, Conflict, "rsz_number"):
        ops.register_enterprise(db_session, kbo=make_kbo(4_000_003), rsz_number="0" + make_rsz(123_456), by=ctx,
                                **_enterprise_fields(name="Tweede", joint_committee="200"))


def test_find_enterprise_by_kbo(db_session, employer):
    assert ops.find_enterprise_by_kbo(db_session, "0123.456.749") is employer
    with refused(db_session, NotFound, "kbo"):
        ops.find_enterprise_by_kbo(db_session, make_kbo(4_000_004))
    with refused(db_session, ValidationError, "kbo"):
        ops.find_enterprise_by_kbo(db_session, "0123.456.748")


# --- persons and links ---------------------------------------------------------------------------

def test_record_person_writes_the_person_and_an_audit_record(db_session, clock, ctx):
    insz = make_insz("850101", 123)
    person = ops.record_person(db_session, insz="85.01.01-123." + insz[-2:], first_name=" Jan ",
                               last_name="Janssens", email="jan@example.invalid", by=ctx)
    assert (person.insz, person.first_name, person.email) == (insz, "Jan", "jan@example.invalid")
    record = _only(audit_records(db_session, "person.record"))
    assert record.details == {"person_id": person.id, "name": "Jan Janssens", "subject_person_ids": [person.id]}


def test_record_person_returns_the_known_person_without_writing(db_session, clock, ctx, factories):
    known = factories.Person()
    before = table_snapshot(db_session)
    again = ops.record_person(db_session, insz=known.insz, first_name="Other", last_name="Name", by=ctx)
    assert again is known
    assert table_snapshot(db_session) == before


def test_record_person_accepts_a_bis_number(db_session, clock, ctx):
    bis = make_insz("852101", 57)
    assert ops.record_person(db_session, insz=bis, first_name="Ana", last_name="Silva", by=ctx).insz == bis


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(insz="85010112300"), "insz"),
    (dict(insz="8501011"), "insz"),
    (dict(first_name=""), "first_name"),
    (dict(last_name=" "), "last_name"),
    (dict(email="not-an-address"), "email"),
])
def test_record_person_refuses_invalid_input(db_session, clock, ctx, kwargs, field):
    values = dict(insz=make_insz("850101", 124), first_name="Jan", last_name="Janssens", email=None)
    values.update(kwargs)
    with refused(db_session, ValidationError, field):
        ops.record_person(db_session, by=ctx, **values)


def test_add_link_writes_it_and_an_audit_record(db_session, clock, ctx, employer, factories):
    person = factories.Person()
    link = ops.add_link(db_session, employer, person, "werknemer", date(2020, 1, 1), date(2027, 1, 1), by=ctx)
    assert link.kind is LinkKind.WERKNEMER
    record = _only(audit_records(db_session, "link.add"))
    assert record.enterprise_id == employer.id
    assert record.details == {"person_id": person.id, "person": person.full_name,
                              "after": {"kind": "werknemer", "start_date": "2020-01-01", "end_date": "2027-01-01"},
                              "subject_person_ids": [person.id]}


def test_link_with_the_end_before_the_start_is_refused(db_session, clock, ctx, employer, factories):
    person = factories.Person()
    with refused(db_session, ValidationError, "end_date") as info:
        ops.add_link(db_session, employer, person, LinkKind.WERKNEMER, date(2026, 5, 1), date(2026, 4, 30), by=ctx)
    assert "before its start" in info.value.message


def test_link_of_an_unknown_kind_is_refused(db_session, clock, ctx, employer, factories):
    person = factories.Person()
    with refused(db_session, ValidationError, "kind"):
        ops.add_link(db_session, employer, person, "stagiair", date(2026, 5, 1), by=ctx)


def test_end_link_writes_before_and_after(db_session, clock, ctx, employer, factories):
    link = factories.Link(enterprise=employer, start_date=date(2020, 1, 1))
    ops.end_link(db_session, link, date(2026, 12, 31), by=ctx)
    assert link.end_date == date(2026, 12, 31)
    record = _only(audit_records(db_session, "link.end"))
    assert record.details["before"]["end_date"] is None
    assert record.details["after"]["end_date"] == "2026-12-31"
    # It may be brought forward, never pushed back.
    ops.end_link(db_session, link, date(2026, 11, 30), by=ctx)
    with refused(db_session, ValidationError, "end_date"):
        ops.end_link(db_session, link, date(2026, 12, 15), by=ctx)
    with refused(db_session, ValidationError, "end_date"):
        ops.end_link(db_session, link, date(2019, 12, 31), by=ctx)


# --- appointing the local administrator ------------------------------------------------------------

def test_appoint_local_admin_issues_an_initial_credential_and_audits(db_session, clock, ctx, employer):
    person = person_with_link(employer, LinkKind.ZAAKVOERDER, first_name="An", last_name="Peeters",
                              email="an@example.invalid")
    appointment = ops.appoint_local_admin(db_session, employer, person, by=ctx)

    assert appointment.membership.role is Role.LOCAL_ADMIN
    assert appointment.membership.ended_at is None
    credential = appointment.credential
    assert credential is not None
    assert credential.expires_at == clock.now() + timedelta(days=ops.DEFAULT_INITIAL_PASSWORD_DAYS)
    account = person.account
    assert account.user_id == credential.user_id
    assert account.must_choose_credentials
    assert verify_password(account.initial_password_hash, credential.password)
    assert credential.password not in account.initial_password_hash

    mail = db_session.scalars(select(OutboxMessage).where(OutboxMessage.recipient_person_id == person.id)).one()
    assert mail.kind == "initial-credential"
    assert mail.recipient_email == "an@example.invalid"
    assert credential.user_id in mail.body and credential.password in mail.body

    record = _only(audit_records(db_session, "role.appoint_local_admin"))
    assert record.enterprise_id == employer.id
    assert record.details == {"person_id": person.id, "before": None, "after": {"local_admin": "An Peeters"},
                              "initial_credential_issued": True, "subject_person_ids": [person.id]}
    # The audit trail never holds the password.
    assert credential.password not in repr(record.details)


@pytest.mark.parametrize("kind", NON_AUTHORITY_KINDS)
def test_appointing_a_local_admin_without_direct_authority_is_refused(db_session, clock, ctx, employer, kind):
    person = person_with_link(employer, kind)
    with refused(db_session, ValidationError, PERSON_FIELD) as info:
        ops.appoint_local_admin(db_session, employer, person, by=ctx)
    assert "direct authority" in info.value.message
    assert kind.value in info.value.message
    assert "0123.456.749" in info.value.message


@pytest.mark.parametrize(("start", "end"), [
    (None, None),  # no link at all
    (date(2020, 1, 1), TODAY - timedelta(days=1)),  # ended yesterday
    (TODAY + timedelta(days=1), None),  # starts tomorrow
])
def test_appointing_a_local_admin_without_a_current_link_is_refused(db_session, clock, ctx, employer, factories,
                                                                    start, end):
    person = factories.Person() if start is None else person_with_link(employer, start=start, end=end)
    with refused(db_session, ValidationError, PERSON_FIELD):
        ops.appoint_local_admin(db_session, employer, person, by=ctx)


def test_a_second_local_admin_is_refused_while_the_first_is_under_authority(db_session, clock, ctx, employer, admin):
    other = person_with_link(employer, LinkKind.BESTUURDER)
    with refused(db_session, Conflict, PERSON_FIELD) as info:
        ops.appoint_local_admin(db_session, employer, other, by=ctx)
    assert admin.person.full_name in info.value.message
    with refused(db_session, Conflict, PERSON_FIELD):
        ops.appoint_local_admin(db_session, employer, admin.person, by=ctx)


def test_new_local_admin_when_the_old_ones_link_ended(db_session, clock, ctx, employer, admin):
    ops.end_link(db_session, admin.link, TODAY - timedelta(days=1), by=ctx)
    successor = person_with_link(employer, LinkKind.VENNOOT)
    ops.appoint_local_admin(db_session, employer, successor, by=ctx)
    old = db_session.get(Membership, admin.appointment.membership.id)
    assert old.ended_at == clock.now()
    assert ops.current_local_admin(db_session, employer.id).person_id == successor.id
    record = audit_records(db_session, "role.appoint_local_admin")[-1]
    assert record.details["before"] == {"local_admin": "An Peeters"}


def test_appointing_a_user_as_local_admin_ends_his_user_role(db_session, clock, ctx, factories):
    enterprise = factories.Employer()
    first = make_local_admin(db_session, enterprise, ctx)
    user = make_member(db_session, enterprise, Role.USER, by=first.ctx)
    ops.end_link(db_session, first.link, TODAY - timedelta(days=1), by=ctx)
    ops.appoint_local_admin(db_session, enterprise, user.person, by=ctx)
    current = db_session.scalars(select(Membership).where(Membership.person_id == user.person.id,
                                                          Membership.ended_at.is_(None))).all()
    assert [m.role for m in current] == [Role.LOCAL_ADMIN]


def test_a_person_who_chose_his_credentials_gets_no_new_initial_password(db_session, clock, ctx, factories):
    enterprise, other = factories.Employer(), factories.Employer()
    first = make_local_admin(db_session, enterprise, ctx)
    set_own_credentials(db_session, first.person, "an.peeters", GOOD_PASSWORD)
    person_with_link(other, LinkKind.BESTUURDER, person=first.person)
    appointment = ops.appoint_local_admin(db_session, other, first.person, by=ctx)
    assert appointment.credential is None
    assert first.person.account.initial_password_hash is None
    mails = db_session.scalars(select(OutboxMessage).where(OutboxMessage.recipient_person_id == first.person.id)
                               .order_by(OutboxMessage.id)).all()
    assert [m.kind for m in mails] == ["initial-credential", "role-notice"]
    assert audit_records(db_session, "role.appoint_local_admin")[-1].details["initial_credential_issued"] is False


# --- designating users and co-administrators -------------------------------------------------------

def test_designate_user_audits_and_issues_a_credential(db_session, clock, employer, admin):
    person = person_with_link(employer, LinkKind.WERKNEMER)
    appointment = ops.designate(db_session, employer, person, Role.USER, by=admin.ctx)
    assert appointment.membership.role is Role.USER
    assert appointment.membership.appointed_by_id == admin.person.id
    assert appointment.credential is not None
    record = _only(audit_records(db_session, "role.designate_user"))
    assert record.actor_person_id == admin.person.id
    assert record.details == {"person_id": person.id, "person": person.full_name, "before": {"role": None},
                              "after": {"role": "user"}, "initial_credential_issued": True,
                              "subject_person_ids": [person.id]}


def test_promoting_a_user_to_co_admin_keeps_his_rights(db_session, clock, employer, admin, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    appointment = ops.designate(db_session, employer, user.person, Role.CO_ADMIN, by=admin.ctx)
    assert appointment.credential is not None  # he has not chosen his credentials yet: a fresh one
    record = _only(audit_records(db_session, "role.designate_co_admin"))
    assert record.details["before"] == {"role": "user"}
    assert record.details["after"] == {"role": "co-administrator"}
    assert ops.current_membership(db_session, employer.id, user.person.id).role is Role.CO_ADMIN
    rights = db_session.scalars(select(Right.application).where(Right.person_id == user.person.id,
                                                                Right.revoked_at.is_(None))).all()
    assert rights == ["dmfa"]


@pytest.mark.parametrize("kind", NON_AUTHORITY_KINDS)
@pytest.mark.parametrize("role", [Role.USER, Role.CO_ADMIN])
def test_designating_without_direct_authority_is_refused(db_session, clock, employer, admin, kind, role):
    person = person_with_link(employer, kind)
    with refused(db_session, ValidationError, PERSON_FIELD) as info:
        ops.designate(db_session, employer, person, role, by=admin.ctx)
    assert "direct authority" in info.value.message


def test_designating_after_the_link_ended_is_refused(db_session, clock, employer, admin):
    person = person_with_link(employer, LinkKind.WERKNEMER, start=date(2020, 1, 1), end=TODAY - timedelta(days=1))
    with refused(db_session, ValidationError, PERSON_FIELD):
        ops.designate(db_session, employer, person, Role.USER, by=admin.ctx)


def test_designate_refuses_the_local_admin_role_and_duplicates(db_session, clock, employer, admin):
    user = make_member(db_session, employer, Role.USER, by=admin.ctx)
    with refused(db_session, ValidationError, "role"):
        ops.designate(db_session, employer, user.person, Role.LOCAL_ADMIN, by=admin.ctx)
    with refused(db_session, Conflict, PERSON_FIELD):
        ops.designate(db_session, employer, user.person, Role.USER, by=admin.ctx)
    with refused(db_session, Conflict, PERSON_FIELD):
        ops.designate(db_session, employer, admin.person, Role.USER, by=admin.ctx)


def test_remove_member_ends_the_role_and_revokes_the_rights(db_session, clock, employer, admin, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa", "asr"], by=admin.ctx, catalogue=catalogue)
    ops.remove_member(db_session, employer, user.person, by=admin.ctx)
    assert ops.current_membership(db_session, employer.id, user.person.id) is None
    rights = db_session.scalars(select(Right).where(Right.person_id == user.person.id)).all()
    assert rights and all(r.revoked_at is not None and r.revoked_by_id == admin.person.id for r in rights)
    record = _only(audit_records(db_session, "role.remove_user"))
    assert sorted(record.details["before"]["rights"]) == ["asr", "dmfa"]
    assert record.details["before"]["role"] == "user"
    assert record.details["after"] == {"role": None, "rights": []}


def test_remove_member_refusals(db_session, clock, employer, admin, factories):
    stranger = person_with_link(employer, LinkKind.WERKNEMER)
    with refused(db_session, NotFound, PERSON_FIELD):
        ops.remove_member(db_session, employer, stranger, by=admin.ctx)
    with refused(db_session, ValidationError, PERSON_FIELD):
        ops.remove_member(db_session, employer, admin.person, by=admin.ctx)


# --- rights ----------------------------------------------------------------------------------------

def test_grant_and_revoke_right_audit_before_and_after(db_session, clock, employer, admin, catalogue):
    user = make_member(db_session, employer, Role.USER, by=admin.ctx)
    right = ops.grant_right(db_session, employer, user.person, "dmfa", catalogue=catalogue, by=admin.ctx)
    assert (right.application, right.granted_by_id, right.granted_at) == ("dmfa", admin.person.id, clock.now())
    grant = _only(audit_records(db_session, "right.grant"))
    assert (grant.application, grant.enterprise_id, grant.actor_person_id) == ("dmfa", employer.id, admin.person.id)
    assert grant.details == {"person_id": user.person.id, "person": user.person.full_name,
                             "before": {"right": False}, "after": {"right": True},
                             "subject_person_ids": [user.person.id]}

    clock.advance(hours=1)
    ops.revoke_right(db_session, employer, user.person, "dmfa", by=admin.ctx)
    assert right.revoked_at == clock.now()
    assert right.revoked_by_id == admin.person.id
    revoke = _only(audit_records(db_session, "right.revoke"))
    assert revoke.details["before"] == {"right": True} and revoke.details["after"] == {"right": False}
    # Granted again after the revocation: a new right row.
    again = ops.grant_right(db_session, employer, user.person, "dmfa", catalogue=catalogue, by=admin.ctx)
    assert again.id != right.id


@pytest.mark.parametrize("application", ["no_such_application", "toegangsbeheer", "portaalbeheer", "dimona", ""])
def test_granting_an_unknown_free_or_internal_application_is_refused(db_session, clock, employer, admin, catalogue,
                                                                     application):
    user = make_member(db_session, employer, Role.USER, by=admin.ctx)
    with refused(db_session, ValidationError, "application"):
        ops.grant_right(db_session, employer, user.person, application, catalogue=catalogue, by=admin.ctx)


def test_granting_an_employer_only_application_in_a_non_employer_is_refused(db_session, clock, ctx, factories,
                                                                            catalogue):
    enterprise = factories.Enterprise()
    admin = make_local_admin(db_session, enterprise, ctx)
    user = make_member(db_session, enterprise, Role.USER, by=admin.ctx)
    with refused(db_session, ValidationError, "application") as info:
        ops.grant_right(db_session, enterprise, user.person, "dmfa", catalogue=catalogue, by=admin.ctx)
    assert "employers only" in info.value.message
    # A federal application is fine.
    ops.grant_right(db_session, enterprise, user.person, "kbo_prive_gegevens", catalogue=catalogue, by=admin.ctx)


def test_granting_a_right_in_another_enterprise_is_refused(db_session, clock, ctx, employer, admin, factories,
                                                           catalogue):
    other = factories.Employer()
    user = make_member(db_session, employer, Role.USER, by=admin.ctx)
    # He works for the other enterprise too, but is no member of it.
    person_with_link(other, LinkKind.WERKNEMER, person=user.person)
    with refused(db_session, ValidationError, PERSON_FIELD) as info:
        ops.grant_right(db_session, other, user.person, "dmfa", catalogue=catalogue, by=admin.ctx)
    assert "not a user" in info.value.message


def test_granting_to_a_person_without_a_role_is_refused(db_session, clock, employer, admin, catalogue):
    person = person_with_link(employer, LinkKind.WERKNEMER)
    with refused(db_session, ValidationError, PERSON_FIELD):
        ops.grant_right(db_session, employer, person, "dmfa", catalogue=catalogue, by=admin.ctx)


def test_granting_the_same_right_twice_is_refused(db_session, clock, employer, admin, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    with refused(db_session, Conflict, "application"):
        ops.grant_right(db_session, employer, user.person, "dmfa", catalogue=catalogue, by=admin.ctx)


def test_revoking_a_right_he_does_not_have_is_refused(db_session, clock, employer, admin, catalogue):
    user = make_user_with_rights(db_session, employer, ["asr"], by=admin.ctx, catalogue=catalogue)
    with refused(db_session, NotFound, "application"):
        ops.revoke_right(db_session, employer, user.person, "dmfa", by=admin.ctx)


# --- hand-over -------------------------------------------------------------------------------------

def test_hand_over_keeps_rights_and_the_old_local_admin_becomes_a_user(db_session, clock, employer, admin,
                                                                       catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa", "asr"], by=admin.ctx, catalogue=catalogue)
    co = make_member(db_session, employer, Role.CO_ADMIN, by=admin.ctx)
    successor = person_with_link(employer, LinkKind.BESTUURDER, first_name="Geert", last_name="Goossens")
    rights_before = set(db_session.scalars(select(Right.id).where(Right.revoked_at.is_(None))))

    appointment = ops.hand_over_local_admin(db_session, employer, successor, by=admin.ctx)

    assert appointment.membership.role is Role.LOCAL_ADMIN
    assert appointment.credential is not None
    assert ops.current_local_admin(db_session, employer.id).person_id == successor.id
    assert ops.current_membership(db_session, employer.id, admin.person.id).role is Role.USER
    assert ops.current_membership(db_session, employer.id, co.person.id).role is Role.CO_ADMIN
    assert ops.current_membership(db_session, employer.id, user.person.id).role is Role.USER
    assert set(db_session.scalars(select(Right.id).where(Right.revoked_at.is_(None)))) == rights_before
    record = _only(audit_records(db_session, "role.hand_over"))
    assert record.actor_person_id == admin.person.id
    assert record.details == {"before": {"local_admin": "An Peeters"},
                              "after": {"local_admin": "Geert Goossens", "An Peeters": "user"},
                              "subject_person_ids": sorted([admin.person.id, successor.id])}


def test_hand_over_to_the_current_user_replaces_his_user_role(db_session, clock, employer, admin, catalogue):
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    ops.hand_over_local_admin(db_session, employer, user.person, by=admin.ctx)
    current = db_session.scalars(select(Membership).where(Membership.enterprise_id == employer.id,
                                                          Membership.ended_at.is_(None))).all()
    assert sorted((m.person_id, m.role.value) for m in current) == sorted(
        [(user.person.id, "local_admin"), (admin.person.id, "user")])


def test_hand_over_refusals(db_session, clock, ctx, employer, admin):
    co = make_member(db_session, employer, Role.CO_ADMIN, by=admin.ctx)
    eligible = person_with_link(employer, LinkKind.WERKNEMER)
    with refused(db_session, ValidationError, PERSON_FIELD):  # only the local administrator himself
        ops.hand_over_local_admin(db_session, employer, eligible, by=co.ctx)
    with refused(db_session, ValidationError, PERSON_FIELD):  # the institution appoints, it does not hand over
        ops.hand_over_local_admin(db_session, employer, eligible, by=ctx)
    with refused(db_session, ValidationError, PERSON_FIELD):
        ops.hand_over_local_admin(db_session, employer, admin.person, by=admin.ctx)
    for kind in NON_AUTHORITY_KINDS:
        outsider = person_with_link(employer, kind)
        with refused(db_session, ValidationError, PERSON_FIELD):
            ops.hand_over_local_admin(db_session, employer, outsider, by=admin.ctx)


# --- initial password and choosing credentials -----------------------------------------------------

def _login(session, name, password, ctx):
    return ops.authenticate(session, name, password, by=ctx)


def _last_login_record(session) -> AuditRecord:
    return audit_records(session, "login")[-1]


def test_login_with_the_issued_user_id_and_initial_password(db_session, clock, ctx, employer, admin):
    credential = admin.credential
    account = _login(db_session, credential.user_id.lower(), credential.password, ctx)
    assert account is admin.person.account
    assert account.last_login_at == clock.now()
    record = _last_login_record(db_session)
    assert (record.outcome, record.reason, record.actor_person_id) == ("success", "initial password",
                                                                       admin.person.id)


def test_initial_password_expires_after_the_configured_days(db_session, clock, ctx, employer, admin):
    credential = admin.credential
    clock.advance(days=ops.DEFAULT_INITIAL_PASSWORD_DAYS - 1, hours=23)
    assert _login(db_session, credential.user_id, credential.password, ctx) is not None
    clock.advance(hours=1, seconds=1)
    assert _login(db_session, credential.user_id, credential.password, ctx) is None
    record = _last_login_record(db_session)
    assert (record.outcome, record.reason) == ("failure", "initial password expired")


def test_initial_password_days_can_be_shorter(db_session, clock, ctx, employer):
    person = person_with_link(employer, LinkKind.ZAAKVOERDER)
    appointment = ops.appoint_local_admin(db_session, employer, person, by=ctx, initial_password_days=2)
    assert appointment.credential.expires_at == clock.now() + timedelta(days=2)
    clock.advance(days=2, seconds=1)
    assert _login(db_session, appointment.credential.user_id, appointment.credential.password, ctx) is None


def test_choose_credentials_replaces_the_initial_password(db_session, clock, ctx, employer, admin):
    credential = admin.credential
    account = admin.person.account
    first_login, _ = open_session(db_session, account, by=admin.ctx)
    ops.choose_credentials(db_session, account, "an.peeters", GOOD_PASSWORD, by=admin.ctx)

    assert account.username == "an.peeters" and account.username_lower == "an.peeters"
    assert not account.must_choose_credentials
    assert account.initial_password_hash is None and account.initial_password_expires_at is None
    assert first_login.ended_reason == "credentials chosen"  # the caller opens a new session
    assert _only(audit_records(db_session, "account.choose_credentials")).details == {"username": "an.peeters"}
    # The initial password is spent, with the user-id as with the new user name.
    assert _login(db_session, credential.user_id, credential.password, ctx) is None
    assert _login(db_session, "an.peeters", credential.password, ctx) is None
    assert _login(db_session, "AN.Peeters", GOOD_PASSWORD, ctx) is account
    assert _login(db_session, credential.user_id, GOOD_PASSWORD, ctx) is account


def test_reusing_the_initial_password_as_the_new_one_is_refused(db_session, clock, employer, admin):
    with refused(db_session, ValidationError, "password") as info:
        ops.choose_credentials(db_session, admin.person.account, "an.peeters", admin.credential.password,
                               by=admin.ctx)
    assert "initial" in info.value.message


def test_choosing_credentials_twice_is_refused(db_session, clock, employer, admin):
    ops.choose_credentials(db_session, admin.person.account, "an.peeters", GOOD_PASSWORD, by=admin.ctx)
    with refused(db_session, ValidationError, "username"):
        ops.choose_credentials(db_session, admin.person.account, "another.name", "Ander-Wachtwoord-Lang-9",
                               by=admin.ctx)


@pytest.mark.parametrize(("password", "why"), [
    ("Kort-1x", "at least 12"),
    ("x" * 129, "at most 128"),
    ("abababababababab", "too few different"),
    ("azertyuiop12!", "common"),
    ("Password1234", "common"),
    ("1qaz2wsx3edc", "common"),
    ("Peeters-Zonnebloem-9", "name"),         # his last name
    ("zon-an.peeters-bloem", "name"),         # his user name
])
def test_weak_new_passwords_are_refused(db_session, clock, employer, admin, password, why):
    with refused(db_session, ValidationError, "password") as info:
        ops.choose_credentials(db_session, admin.person.account, "an.peeters", password, by=admin.ctx)
    assert why in info.value.message


def test_passwords_containing_the_enterprise_name_kbo_or_insz_are_refused(db_session, clock, employer, admin):
    account = admin.person.account
    for password in ("xx-Bakkerij De Gouden Korst-xx", "kbo0123456749!!", f"mijn-{admin.person.insz}-ww"):
        with refused(db_session, ValidationError, "password"):
            ops.choose_credentials(db_session, account, "an.peeters", password, by=admin.ctx)


@pytest.mark.parametrize("username", ["ab", ".an", "an peeters", "x" * 65, ""])
def test_invalid_user_names_are_refused(db_session, clock, employer, admin, username):
    with refused(db_session, ValidationError, "username"):
        ops.choose_credentials(db_session, admin.person.account, username, GOOD_PASSWORD, by=admin.ctx)


def test_a_taken_user_name_is_refused_case_insensitively(db_session, clock, employer, admin):
    user = make_member(db_session, employer, Role.USER, by=admin.ctx)
    ops.choose_credentials(db_session, admin.person.account, "an.peeters", GOOD_PASSWORD, by=admin.ctx)
    with refused(db_session, Conflict, "username"):
        ops.choose_credentials(db_session, user.person.account, "AN.PEETERS", "Ander-Wachtwoord-Lang-9",
                               by=user.ctx)
    # Nor may anyone take another account's issued user-id as his user name.
    with refused(db_session, Conflict, "username"):
        ops.choose_credentials(db_session, user.person.account, admin.person.account.user_id.lower(),
                               "Ander-Wachtwoord-Lang-9", by=user.ctx)


# --- login failures ---------------------------------------------------------------------------------

@pytest.fixture
def known(db_session, employer, admin):
    """The local administrator, with his own user name and password."""
    set_own_credentials(db_session, admin.person, "an.peeters", GOOD_PASSWORD)
    return admin.person.account


def test_unknown_login_name_is_audited_without_a_person(db_session, clock, ctx, known):
    assert _login(db_session, "nobody.here", GOOD_PASSWORD, ctx) is None
    record = _last_login_record(db_session)
    assert (record.outcome, record.reason) == ("failure", "unknown login name")
    assert record.actor_person_id is None
    assert record.actor_label == "nobody.here"
    assert record.ip == "127.0.0.1"


def test_failures_look_the_same_to_the_caller_whatever_the_cause(db_session, clock, ctx, known):
    unknown = _login(db_session, "nobody.here", GOOD_PASSWORD, ctx)
    wrong = _login(db_session, "an.peeters", "Wrong-Password-123", ctx)
    assert unknown is None and wrong is None
    reasons = [r.reason for r in audit_records(db_session, "login")]
    assert reasons == ["unknown login name", "password"]  # only the audit trail tells them apart
    # The one message shown covers every cause without naming which.
    message = ops.GENERIC_LOGIN_FAILURE.lower()
    assert "user name or password" in message and "locked" in message
    assert "unknown" not in message and "exist" not in message


def test_too_long_login_name_is_treated_as_unknown(db_session, clock, ctx, known):
    assert _login(db_session, "a" * 65, GOOD_PASSWORD, ctx) is None
    record = _last_login_record(db_session)
    assert record.reason == "unknown login name"
    assert len(record.actor_label) == 64


def test_disabled_account_cannot_log_in_even_with_the_right_password(db_session, clock, ctx, known):
    known.is_disabled = True
    db_session.flush()
    assert _login(db_session, "an.peeters", GOOD_PASSWORD, ctx) is None
    assert _last_login_record(db_session).reason == "account disabled"
    assert known.failed_logins == 1


def test_lockout_after_five_failures_grows_and_is_capped(db_session, clock, ctx, known):
    for attempt in range(1, 5):
        assert _login(db_session, "an.peeters", f"Wrong-{attempt}-password", ctx) is None
        assert known.failed_logins == attempt and known.locked_until is None
    assert _login(db_session, "an.peeters", "Wrong-5-password", ctx) is None
    assert known.failed_logins == 5
    assert known.locked_until == clock.now() + timedelta(seconds=60)
    assert "locked for 60 s after 5 failures" in _last_login_record(db_session).reason

    # Locked: even the right password is refused, and the lock is not extended.
    clock.advance(seconds=59)
    assert _login(db_session, "an.peeters", GOOD_PASSWORD, ctx) is None
    assert _last_login_record(db_session).reason == "account temporarily locked"
    assert known.failed_logins == 5

    expected = [120, 240, 480, 900, 900]
    for seconds in expected:
        clock.advance(seconds=3600)
        assert _login(db_session, "an.peeters", "Still-wrong-password", ctx) is None
        assert known.locked_until == clock.now() + timedelta(seconds=seconds)
    assert known.failed_logins == 10

    clock.advance(seconds=901)
    assert _login(db_session, "an.peeters", GOOD_PASSWORD, ctx) is known
    assert known.failed_logins == 0 and known.locked_until is None


def test_a_success_before_the_fifth_failure_resets_the_count(db_session, clock, ctx, known):
    for _ in range(4):
        _login(db_session, "an.peeters", "Wrong-password-x", ctx)
    assert _login(db_session, "an.peeters", GOOD_PASSWORD, ctx) is known
    assert known.failed_logins == 0
    _login(db_session, "an.peeters", "Wrong-password-x", ctx)
    assert known.locked_until is None


def test_failed_login_count_and_audit_survive_the_requests_rollback(db_session, clock, ctx, known):
    db_session.info.pop(SURVIVORS_KEY, None)
    account_id = known.id
    with db_session.begin_nested() as request:
        assert _login(db_session, "an.peeters", "Wrong-password-x", ctx) is None
        survivors = db_session.info.pop(SURVIVORS_KEY)
        request.rollback()
    assert row_counts(db_session)["audit_records"] == len(audit_records(db_session))
    assert audit_records(db_session, "login") == []
    replay_survivors(db_session, survivors)
    db_session.flush()
    db_session.expire_all()
    assert db_session.get(Account, account_id).failed_logins == 1
    record = _only(audit_records(db_session, "login"))
    assert (record.outcome, record.actor_person_id) == ("failure", known.person_id)


# --- portal officers ---------------------------------------------------------------------------------

def test_create_portal_officer_with_a_password(db_session, clock, ctx):
    account, credential = ops.create_portal_officer(
        db_session, insz=make_insz("750412", 101), first_name="Olivia", last_name="Officier", email=None,
        password="Stempel-Kantoor-Brussel-3", by=ctx)
    assert credential is None
    assert account.is_portal_officer
    assert account.username == account.user_id and not account.must_choose_credentials
    assert _login(db_session, account.user_id, "Stempel-Kantoor-Brussel-3", ctx) is account
    record = _only(audit_records(db_session, "role.create_portal_officer"))
    assert record.details["after"] == {"portal_officer": True}


def test_create_portal_officer_without_a_password_gets_an_initial_one(db_session, clock, ctx):
    account, credential = ops.create_portal_officer(
        db_session, insz=make_insz("750412", 102), first_name="Olaf", last_name="Officier", email=None,
        password=None, by=ctx)
    assert credential is not None and account.must_choose_credentials
    assert _login(db_session, credential.user_id, credential.password, ctx) is account


def test_credentials_cannot_be_chosen_once_the_initial_password_has_expired(db_session, clock, ctx, employer, admin):
    # He logged in just before the expiry; the page stayed open past it.
    account = _login(db_session, admin.credential.user_id, admin.credential.password, ctx)
    clock.advance(days=ops.DEFAULT_INITIAL_PASSWORD_DAYS, seconds=1)
    with refused(db_session, ValidationError, "password") as info:
        ops.choose_credentials(db_session, account, "new.admin", GOOD_PASSWORD, by=ctx)
    assert "expired" in info.value.message


def test_a_weak_officer_password_is_refused_before_anything_is_written(db_session, clock, ctx):
    with refused(db_session, ValidationError, "password"):
        ops.create_portal_officer(db_session, insz=make_insz("700202", 9), first_name="Olga", last_name="Officier",
                                  email=None, password="password1234", by=ctx)
