"""Every operation of mandates/operations.py: the rules of issue 3, each refusal (with a check that
nothing at all was written), the audit record written in the same transaction, and the outbox notices."""
from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from access import operations as aops
from access.models import Link, LinkKind, OutboxMessage, Role
from mandates import operations as mops
from mandates.models import (
    Mandate,
    MandateApplication,
    MandateKind,
    MandateStatus,
    Provider,
    ProviderKind,
    StaffAssignment,
)
from mandates.queries import clients_of_staff, current_assignments
from tests.unit.mandates.helpers import CONTRACT_DATE, Q1_2027, Q2_2027, Q3_2026, Q4_2026, TODAY, Unchanged

YESTERDAY = TODAY - timedelta(days=1)


def scope_of(mandate: Mandate) -> list[tuple[str, str]]:
    return [(item.application_group, item.application) for item in mandate.scope]


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("day, months, expected", [
    (date(2026, 8, 31), 6, date(2027, 2, 28)),    # no 31 February: the last day of the month
    (date(2027, 8, 31), 6, date(2028, 2, 29)),    # ... which is the 29th in a leap year
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2026, 3, 31), 1, date(2026, 4, 30)),
    (date(2026, 5, 31), 4, date(2026, 9, 30)),
    (date(2026, 11, 15), 2, date(2027, 1, 15)),   # over the year end
    (date(2026, 12, 31), 0, date(2026, 12, 31)),
    (date(2026, 12, 31), 12, date(2027, 12, 31)),
    (date(2026, 10, 1), 36, date(2029, 10, 1)),   # the usual minimum term
    (date(2026, 5, 31), 120, date(2036, 5, 31)),
    (date(2027, 1, 31), -1, date(2026, 12, 31)),
    (date(2026, 3, 31), -1, date(2026, 2, 28)),
])
def test_add_months(day, months, expected):
    assert mops.add_months(day, months) == expected


@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)), months=st.integers(-120, 120))
def test_add_months_keeps_the_day_or_takes_the_last_day_of_the_month(day, months):
    result = mops.add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    assert result.day == min(day.day, calendar.monthrange(result.year, result.month)[1])


@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)))
def test_quarter_start(day):
    start = mops.quarter_start(day)
    assert mops.is_quarter_start(start)
    assert start <= day < mops.add_months(start, 3)
    assert mops.is_quarter_start(day) == (day == start)


@pytest.mark.parametrize("day", [date(2026, 1, 1), date(2026, 4, 1), date(2026, 7, 1), date(2026, 10, 1)])
def test_the_four_quarter_starts(day):
    assert mops.is_quarter_start(day)
    assert not mops.is_quarter_start(day + timedelta(days=1))
    assert not mops.is_quarter_start(day - timedelta(days=1))
    assert not mops.is_quarter_start(mops.add_months(day, 1))


# --- providers --------------------------------------------------------------------------------


def test_register_providers_of_each_kind(kit, ctx, db_session, clock):
    enterprise = kit.f.Enterprise(employer=True)
    secretariat = mops.register_provider(db_session, enterprise, "erkend_sociaal_secretariaat", " 300/17 ", by=ctx)
    assert (secretariat.kind, secretariat.recognition_number, secretariat.is_secretariat) == (
        ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/17", True)
    assert secretariat.registered_at == clock.now()
    [entry] = kit.audit("provider.register")
    assert (entry.enterprise_id, entry.outcome, entry.details) == (
        enterprise.id, "success", {"after": {"kind": "erkend_sociaal_secretariaat", "recognition_number": "300/17"}})
    for kind in (ProviderKind.ACCOUNTANT, ProviderKind.SOFTWARE_BUREAU, ProviderKind.OTHER_INTERMEDIARY):
        other = mops.register_provider(db_session, kit.f.Enterprise(), kind, "  ", by=ctx)
        assert (other.kind, other.recognition_number, other.is_secretariat) == (kind, None, False)
    assert mops.provider_of_enterprise(db_session, enterprise.id) is secretariat
    assert mops.provider_of_enterprise(db_session, kit.f.Enterprise().id) is None


@pytest.mark.parametrize("kind, number, field", [
    ("bakery", None, "kind"),
    (ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, None, "recognition_number"),
    (ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "   ", "recognition_number"),
    (ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300 17", "recognition_number"),
    (ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "3" * 21, "recognition_number"),
    (ProviderKind.ACCOUNTANT, "300/17", "recognition_number"),
    (ProviderKind.OTHER_INTERMEDIARY, "12", "recognition_number"),
])
def test_register_provider_refuses_bad_input(kit, ctx, db_session, kind, number, field):
    enterprise = kit.f.Enterprise()
    with Unchanged(db_session), pytest.raises(mops.ValidationError) as refused:
        mops.register_provider(db_session, enterprise, kind, number, by=ctx)
    assert refused.value.field == field


def test_register_provider_refuses_a_second_registration_and_a_taken_recognition_number(kit, ctx, db_session):
    first = kit.secretariat()
    with Unchanged(db_session), pytest.raises(mops.Conflict) as twice:
        mops.register_provider(db_session, first.enterprise, ProviderKind.ACCOUNTANT, by=ctx)
    assert twice.value.field == "kbo" and first.enterprise.kbo_display in twice.value.message
    another = kit.f.Enterprise()
    with Unchanged(db_session), pytest.raises(mops.Conflict) as taken:
        mops.register_provider(db_session, another, ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT,
                               first.provider.recognition_number, by=ctx)
    assert taken.value.field == "recognition_number"


def test_find_provider_by_kbo(kit, db_session):
    provider = kit.provider()
    kbo = provider.enterprise.kbo_number
    assert mops.find_provider_by_kbo(db_session, kbo) is provider.provider
    assert mops.find_provider_by_kbo(db_session, f" BE {provider.enterprise.kbo_display} ") is provider.provider
    # An enterprise the portal knows but that is not a registered provider, and an unknown number.
    not_a_provider = kit.f.Enterprise()
    with Unchanged(db_session), pytest.raises(mops.NotFound) as refused:
        mops.find_provider_by_kbo(db_session, not_a_provider.kbo_number)
    assert refused.value.field == "provider_kbo"
    assert not_a_provider.kbo_display in refused.value.message and "not a registered" in refused.value.message
    with pytest.raises(mops.NotFound):
        mops.find_provider_by_kbo(db_session, "0123.456.749")
    with pytest.raises(mops.ValidationError) as invalid:
        mops.find_provider_by_kbo(db_session, "0123.456.748", "secretariat_kbo")
    assert invalid.value.field == "secretariat_kbo"
    with pytest.raises(mops.ValidationError):
        mops.find_provider_by_kbo(db_session, "")


def test_get_mandate(kit, db_session):
    mandate = kit.affiliate(kit.employer(), kit.secretariat())
    assert mops.get_mandate(db_session, mandate.id) is mandate
    with pytest.raises(mops.NotFound) as refused:
        mops.get_mandate(db_session, mandate.id + 10_000)
    assert refused.value.field == "mandate_id"


# --- affiliations -------------------------------------------------------------------------------


def test_affiliation_makes_the_secretariat_the_provider_from_its_start(kit, db_session, clock, groups):
    employer, secretariat = kit.employer(), kit.secretariat()
    result = mops.record_affiliation(db_session, employer.enterprise, secretariat.provider, Q4_2026, groups=groups,
                                     affiliation_number=" A-2026-1 ", by=kit.ctx)
    affiliation = result.affiliation
    assert (result.ended, result.warnings) == (None, [])
    assert (affiliation.kind, affiliation.status, affiliation.start_date, affiliation.effective_from,
            affiliation.end_date) == (MandateKind.AFFILIATION, MandateStatus.ACCEPTED, Q4_2026, Q4_2026, None)
    assert (affiliation.affiliation_number, affiliation.minimum_term_months, affiliation.notice_months,
            affiliation.contract_declared) == ("A-2026-1", 36, 6, False)
    # No form: the secretariat's default groups, never the federal portal's applications.
    expected = [(g.code, app) for g in groups.all() if g.secretariat_default for app in g.applications]
    assert scope_of(affiliation) == expected
    assert "kbo_prive_gegevens" not in affiliation.applications()
    [entry] = kit.audit("mandate.affiliation.record")
    assert (entry.enterprise_id, entry.provider_enterprise_id) == (employer.enterprise.id, secretariat.enterprise.id)
    assert entry.details["after"] == mops.mandate_snapshot(affiliation)
    assert entry.details["after"]["status"] == "accepted" and "before" not in entry.details
    assert entry.details["affiliation_number"] == "A-2026-1"
    [notice] = kit.outbox(secretariat.admin.person, "mandate-affiliation")
    assert employer.enterprise.name in notice.body and "2026-10-01" in notice.body
    assert mops.current_affiliation(db_session, employer.enterprise.id) is affiliation
    assert mops.current_affiliation(db_session, employer.enterprise.id, Q4_2026 - timedelta(days=1)) is None
    assert mops.affiliations_of(db_session, employer.enterprise.id) == [affiliation]


def test_affiliation_with_a_secretariat_without_local_administrator_sends_no_mail(kit, db_session):
    employer, secretariat = kit.employer(), kit.secretariat(admin=False)
    affiliation = kit.affiliate(employer, secretariat, Q1_2027, minimum_term_months=None, notice_months=None)
    assert (affiliation.minimum_term_months, affiliation.notice_months) == (None, None)
    assert not db_session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "mandate-affiliation")).all()
    assert kit.audit("mandate.affiliation.record")


def _affiliation_refusals(kit):
    employer, secretariat = kit.employer(), kit.secretariat()
    accountant = kit.provider()
    return {
        "not an employer": (kit.employer(employer=False, rsz_number=None, joint_committee=None), secretariat, Q1_2027,
                            {}, "employer_kbo"),
        "not a secretariat": (employer, accountant, Q1_2027, {}, "secretariat_kbo"),
        "not a quarter start": (employer, secretariat, date(2027, 1, 2), {}, "start_date"),
        "the last day of a quarter": (employer, secretariat, date(2026, 12, 31), {}, "start_date"),
        "the first of another month": (employer, secretariat, date(2027, 2, 1), {}, "start_date"),
        "minimum term too long": (employer, secretariat, Q1_2027, {"minimum_term_months": 121}, "minimum_term_months"),
        "negative notice": (employer, secretariat, Q1_2027, {"notice_months": -1}, "notice_months"),
        "affiliation number too long": (employer, secretariat, Q1_2027, {"affiliation_number": "N" * 41},
                                        "affiliation_number"),
        "notice after the start": (employer, secretariat, Q1_2027, {"notice_date": date(2027, 1, 2)}, "notice_date"),
    }


@pytest.mark.parametrize("case", ["not an employer", "not a secretariat", "not a quarter start",
                                  "the last day of a quarter", "the first of another month", "minimum term too long",
                                  "negative notice", "affiliation number too long", "notice after the start"])
def test_record_affiliation_refuses_bad_input(kit, db_session, case):
    employer, secretariat, start, kwargs, field = _affiliation_refusals(kit)[case]
    with Unchanged(db_session), pytest.raises(mops.ValidationError) as refused:
        kit.affiliate(employer, secretariat, start, **kwargs)
    assert refused.value.field == field


def test_a_second_affiliation_overlapping_the_first_is_refused_naming_it(kit, db_session):
    employer, first, second = kit.employer(), kit.secretariat(), kit.secretariat()
    kit.affiliate(employer, first, Q4_2026)
    # The same start: not a switch but an overlap.
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.affiliate(employer, second, Q4_2026)
    assert refused.value.field == "start_date"
    assert first.enterprise.name in refused.value.message and first.enterprise.kbo_display in refused.value.message
    assert "from 2026-10-01" in refused.value.message


def test_an_affiliation_overlapping_one_that_ends_later_is_refused(kit, db_session):
    employer, first, second = kit.employer(), kit.secretariat(), kit.secretariat()
    current = kit.affiliate(employer, first, Q4_2026)
    mops.end_mandate(db_session, current, date(2027, 6, 30), by=employer.ctx)
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.affiliate(employer, second, Q2_2027)
    assert "until 2027-06-30" in refused.value.message and first.enterprise.name in refused.value.message
    # From the day after its last day the place is free.
    assert kit.affiliate(employer, second, date(2027, 7, 1)).start_date == date(2027, 7, 1)


def test_an_affiliation_before_a_recorded_future_one_is_refused(kit, db_session):
    employer, first, second = kit.employer(), kit.secretariat(), kit.secretariat()
    kit.affiliate(employer, first, Q2_2027)
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.affiliate(employer, second, Q1_2027)
    assert first.enterprise.name in refused.value.message


def test_the_same_secretariat_twice_is_refused(kit, db_session):
    employer, secretariat = kit.employer(), kit.secretariat()
    kit.affiliate(employer, secretariat, Q4_2026)
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.affiliate(employer, secretariat, Q1_2027, acknowledge_warnings=True)
    assert refused.value.field == "secretariat_kbo" and "already affiliated" in refused.value.message


def test_the_employers_other_provider_cannot_also_become_its_secretariat(kit, db_session):
    employer, secretariat = kit.employer(), kit.secretariat()
    kit.file(employer, secretariat, Q1_2027)
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.affiliate(employer, secretariat, Q2_2027)
    assert refused.value.field == "secretariat_kbo" and "by form" in refused.value.message


def test_an_affiliation_that_ended_before_the_new_start_is_no_switch(kit, db_session):
    employer, first, second = kit.employer(), kit.secretariat(), kit.secretariat()
    old = kit.affiliate(employer, first, date(2026, 4, 1))
    mops.end_mandate(db_session, old, YESTERDAY, by=employer.ctx)
    result = mops.record_affiliation(db_session, employer.enterprise, second.provider, Q1_2027, groups=kit.groups,
                                     by=kit.ctx)
    assert (result.ended, result.warnings, old.end_date, old.notice_date) == (None, [], YESTERDAY, None)
    assert mops.current_affiliation(db_session, employer.enterprise.id, date(2026, 12, 1)) is None
    assert mops.current_affiliation(db_session, employer.enterprise.id, Q1_2027) is result.affiliation


def test_switch_ends_the_old_affiliation_the_day_before_and_cuts_its_staff(kit, db_session, clock):
    employer, old_secretariat, new_secretariat = kit.employer(), kit.secretariat(), kit.secretariat()
    old = kit.affiliate(employer, old_secretariat, date(2023, 10, 1))
    old_staff, new_staff = kit.staff(old_secretariat), kit.staff(new_secretariat)
    kit.assign(old_secretariat, old, old_staff, "dmfa")
    result = mops.record_affiliation(db_session, employer.enterprise, new_secretariat.provider, Q1_2027,
                                     groups=kit.groups, by=kit.ctx, notice_date=date(2026, 6, 15))
    new = result.affiliation
    assert result.warnings == [] and result.ended is old
    assert (old.end_date, old.notice_date, old.ended_at, old.status) == (
        date(2026, 12, 31), date(2026, 6, 15), clock.now(), MandateStatus.ACCEPTED)
    assert (new.start_date, new.effective_from, new.end_date) == (Q1_2027, Q1_2027, None)
    # Both records, in this transaction: the end (with its reason and notice date) and the new affiliation.
    [ended] = kit.audit("mandate.affiliation.end")
    assert ended.details["before"]["end_date"] is None and ended.details["after"]["end_date"] == "2026-12-31"
    assert (ended.details["reason"], ended.details["notice_date"]) == ("switch", "2026-06-15")
    assert ended.provider_enterprise_id == old_secretariat.enterprise.id
    assert [r.provider_enterprise_id for r in kit.audit("mandate.affiliation.record")][-1] == new_secretariat.enterprise.id
    # The old secretariat's staff act until its last day, not one day longer.
    assert kit.decide(old_staff, employer, day=date(2026, 12, 31)).allowed
    refused = kit.decide(old_staff, employer, day=Q1_2027)
    assert (refused.allowed, refused.reason.code) == (False, "no-mandate")
    assert refused.provider_enterprise_id == old_secretariat.enterprise.id
    # The new one is the provider from its start; its staff still need an assignment.
    assert kit.decide(new_staff, employer, day=date(2026, 12, 31)).reason.code == "no-mandate"
    assert kit.decide(new_staff, employer, day=Q1_2027).reason.code == "not-assigned"
    kit.assign(new_secretariat, new, new_staff, "dmfa")
    assert kit.decide(new_staff, employer, day=Q1_2027).allowed
    assert mops.current_affiliation(db_session, employer.enterprise.id, date(2026, 12, 31)) is old
    assert mops.current_affiliation(db_session, employer.enterprise.id, Q1_2027) is new
    assert mops.affiliations_of(db_session, employer.enterprise.id) == [old, new]


@pytest.mark.parametrize("old_start, minimum, notice, notice_date, expected", [
    # Started last quarter, notice given yesterday: both terms broken.
    (Q4_2026, 36, 6, date(2026, 11, 1), ["minimum term", "notice"]),
    # Three years done on 2026-10-01; notice of exactly six months (2026-07-01 + 6 months = the new start).
    (date(2023, 10, 1), 36, 6, date(2026, 7, 1), []),
    (date(2023, 10, 1), 36, 6, date(2026, 7, 2), ["notice"]),
    # 31 August + 6 months is 28 February, after the new start of 1 January.
    (date(2023, 10, 1), 36, 6, date(2026, 8, 31), ["notice until 2027-02-28"]),
    # The minimum term ends exactly on the new start; one quarter later it does not.
    (date(2024, 1, 1), 36, 6, date(2026, 6, 1), []),
    (date(2024, 4, 1), 36, 6, date(2026, 6, 1), ["minimum term until 2027-04-01"]),
    (date(2023, 10, 1), 36, 6, None, ["no notice"]),
    (Q4_2026, None, None, None, []),
    (Q4_2026, 0, 0, None, []),
    (Q4_2026, 3, 1, date(2026, 12, 1), []),
])
def test_switch_warnings(kit, db_session, old_start, minimum, notice, notice_date, expected):
    employer, old_secretariat, new_secretariat = kit.employer(), kit.secretariat(), kit.secretariat()
    old = kit.affiliate(employer, old_secretariat, old_start, minimum_term_months=minimum, notice_months=notice)
    texts = [w.text for w in mops.switch_warnings(old, Q1_2027, notice_date)]
    assert len(texts) == len(expected), texts
    for text, what in zip(texts, expected):
        if what.startswith("minimum term"):
            assert f"minimum term of {minimum} months" in text
        elif what.startswith("notice"):
            assert f"notice of {notice} months" in text and notice_date.isoformat() in text
        else:
            assert text == "No date of notice was given for the current affiliation."
        if " until " in what:
            assert what.split(" until ")[1] in text
    if not expected:
        result = mops.record_affiliation(db_session, employer.enterprise, new_secretariat.provider, Q1_2027,
                                         groups=kit.groups, by=kit.ctx, notice_date=notice_date)
        assert result.ended is old and old.end_date == date(2026, 12, 31)
        return
    # Nothing is written until the officer confirms.
    with Unchanged(db_session), pytest.raises(mops.SwitchNeedsConfirmation) as warned:
        mops.record_affiliation(db_session, employer.enterprise, new_secretariat.provider, Q1_2027,
                                groups=kit.groups, by=kit.ctx, notice_date=notice_date)
    assert [w.text for w in warned.value.warnings] == texts
    assert warned.value.field == "acknowledge_warnings"
    assert old.end_date is None
    result = mops.record_affiliation(db_session, employer.enterprise, new_secretariat.provider, Q1_2027,
                                     groups=kit.groups, by=kit.ctx, notice_date=notice_date, acknowledge_warnings=True)
    assert [w.text for w in result.warnings] == texts
    assert (old.end_date, old.notice_date) == (date(2026, 12, 31), notice_date)
    assert kit.audit("mandate.affiliation.record")[-1].details["warnings"] == texts


def test_switching_back_does_not_revive_old_assignments(kit, db_session):
    employer, first, second = kit.employer(), kit.secretariat(), kit.secretariat()
    staff = kit.staff(first)
    original = kit.affiliate(employer, first, date(2023, 10, 1))
    kit.assign(first, original, staff, "dmfa")
    kit.affiliate(employer, second, Q1_2027, notice_date=date(2026, 6, 1))
    back = kit.affiliate(employer, first, Q2_2027, acknowledge_warnings=True)
    assert kit.decide(staff, employer, day=date(2026, 12, 31)).allowed
    assert kit.decide(staff, employer, day=Q1_2027).reason.code == "no-mandate"
    assert kit.decide(staff, employer, day=Q2_2027).reason.code == "not-assigned"
    assert current_assignments(db_session, back.id) == []


# --- the provider form ------------------------------------------------------------------------


def test_file_provider_form(kit, db_session, clock, groups):
    employer, accountant = kit.employer(), kit.provider()
    staff = kit.staff(accountant)
    form = kit.file(employer, accountant, Q1_2027, ["asr", "personeelsbestand", "asr"],
                    contract_reference="  CT-9  ")
    assert (form.kind, form.status, form.start_date, form.effective_from, form.end_date) == (
        MandateKind.FORM, MandateStatus.PENDING, Q1_2027, None, None)
    assert (form.contract_declared, form.contract_date, form.contract_reference) == (True, CONTRACT_DATE, "CT-9")
    assert (form.filed_by_id, form.filed_at) == (employer.admin.person.id, clock.now())
    assert scope_of(form) == [("asr", app) for app in groups.get("asr").applications] + [
        ("personeelsbestand", app) for app in groups.get("personeelsbestand").applications]
    [entry] = kit.audit("mandate.form.file")
    assert (entry.actor_person_id, entry.enterprise_id, entry.provider_enterprise_id) == (
        employer.admin.person.id, employer.enterprise.id, accountant.enterprise.id)
    assert entry.details["after"] == {"kind": "form", "status": "pending", "provider_id": accountant.provider.id,
                                      "start_date": "2027-01-01", "end_date": None, "effective_from": None,
                                      "groups": ["asr", "personeelsbestand"]}
    assert (entry.details["contract_date"], entry.details["contract_reference"]) == ("2026-10-15", "CT-9")
    [notice] = kit.outbox(accountant.admin.person, "mandate-form")
    assert employer.enterprise.name in notice.body and "2027-01-01" in notice.body
    # Filed is not accepted: the provider's staff still have nothing.
    assert kit.decide(staff, employer, "asr", day=Q1_2027).reason.code == "no-mandate"


def test_a_form_may_start_in_the_current_quarter(kit):
    form = kit.file(kit.employer(), kit.provider(), Q4_2026)
    assert form.start_date == Q4_2026


@pytest.mark.parametrize("overrides, field", [
    ({"contract_declared": False}, "contract_declared"),
    ({"contract_declared": "on"}, "contract_declared"),   # only True declares
    ({"contract_declared": 1}, "contract_declared"),
    ({"contract_date": None}, "contract_date"),
    ({"contract_date": TODAY + timedelta(days=1)}, "contract_date"),
    ({"contract_reference": None}, "contract_reference"),
    ({"contract_reference": "   "}, "contract_reference"),
    ({"contract_reference": "R" * 101}, "contract_reference"),
    ({"group_codes": []}, "groups"),
    ({"group_codes": ["asr", "no_such_group"]}, "groups"),
    ({"start": date(2027, 1, 2)}, "start_date"),
    ({"start": date(2027, 3, 1)}, "start_date"),
    ({"start": Q3_2026}, "start_date"),                    # a past quarter
])
def test_file_provider_form_refuses_bad_input(kit, db_session, overrides, field):
    employer, accountant = kit.employer(), kit.provider()
    with Unchanged(db_session), pytest.raises(mops.ValidationError) as refused:
        kit.file(employer, accountant, **overrides)
    assert refused.value.field == field


def test_a_form_without_the_contract_declaration_names_the_law(kit, db_session):
    employer, accountant = kit.employer(), kit.provider()
    with Unchanged(db_session), pytest.raises(mops.ValidationError) as refused:
        kit.file(employer, accountant, contract_declared=False)
    assert "article 16" in refused.value.message and "article 28 GDPR" in refused.value.message


def test_file_provider_form_refuses_a_non_employer_and_an_enterprise_as_its_own_provider(kit, db_session):
    non_employer, accountant = kit.employer(employer=False, rsz_number=None, joint_committee=None), kit.provider()
    with Unchanged(db_session), pytest.raises(mops.ValidationError) as refused:
        kit.file(non_employer, accountant)
    assert refused.value.field == "employer_kbo"
    itself = kit.provider(employer=True)
    with Unchanged(db_session), pytest.raises(mops.ValidationError) as own:
        kit.file(itself, itself)
    assert own.value.field == "provider_kbo"


def test_the_secretariat_needs_no_form(kit, db_session):
    employer, secretariat = kit.employer(), kit.secretariat()
    kit.affiliate(employer, secretariat, Q4_2026)
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.file(employer, secretariat, Q1_2027)
    assert refused.value.field == "provider_kbo" and "needs no form" in refused.value.message


def test_a_third_provider_is_refused_naming_the_current_one(kit, db_session):
    employer = kit.employer()
    secretariat, accountant, bureau = kit.secretariat(), kit.provider(), kit.provider(ProviderKind.SOFTWARE_BUREAU)
    kit.affiliate(employer, secretariat, Q4_2026)
    kit.accepted_form(employer, accountant, Q1_2027)
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.file(employer, bureau, Q2_2027)
    assert refused.value.field == "provider_kbo"
    assert accountant.enterprise.name in refused.value.message
    assert accountant.enterprise.kbo_display in refused.value.message
    assert "only one other provider" in refused.value.message


def test_a_pending_form_holds_the_place_and_one_ended_later_too(kit, db_session):
    employer, accountant, bureau = kit.employer(), kit.provider(), kit.provider(ProviderKind.SOFTWARE_BUREAU)
    pending = kit.file(employer, accountant, Q4_2026)
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.file(employer, bureau, Q1_2027)
    assert accountant.enterprise.name in refused.value.message
    kit.decide_form(pending, accountant)
    mops.end_mandate(db_session, pending, date(2027, 3, 31), by=employer.ctx)
    # Ended on 2027-03-31: the place is taken until then, free from 2027-04-01.
    with Unchanged(db_session), pytest.raises(mops.Conflict):
        kit.file(employer, bureau, Q1_2027)
    assert kit.file(employer, bureau, Q2_2027).status is MandateStatus.PENDING


@pytest.mark.parametrize("how", ["declined", "withdrawn", "revoked"])
def test_a_declined_withdrawn_or_revoked_form_frees_the_place(kit, db_session, how):
    employer, accountant, bureau = kit.employer(), kit.provider(), kit.provider(ProviderKind.SOFTWARE_BUREAU)
    form = kit.file(employer, accountant, Q1_2027)
    if how == "declined":
        kit.decide_form(form, accountant, accept=False)
    elif how == "withdrawn":
        mops.end_mandate(db_session, form, None, by=employer.ctx)
    else:
        mops.revoke_mandate(db_session, form, by=kit.ctx)
    assert form.status.value == how
    assert kit.file(employer, bureau, Q1_2027).status is MandateStatus.PENDING
    # And the same provider may be asked again.
    employer2 = kit.employer()
    again = kit.file(employer2, accountant, Q1_2027)
    kit.decide_form(again, accountant, accept=False)
    assert kit.file(employer2, accountant, Q1_2027).status is MandateStatus.PENDING


def test_the_unique_index_refuses_a_form_that_slipped_past_the_check(kit, db_session, monkeypatch):
    """What a concurrent request sees: the check found no holder, but another request inserted one
    meanwhile. The partial unique index refuses the insert; the refusal still names the holder."""
    employer, accountant, bureau = kit.employer(), kit.provider(), kit.provider(ProviderKind.SOFTWARE_BUREAU)
    kit.file(employer, accountant, Q1_2027)
    real, calls = mops._holder_of_extra_place, []

    def blind_the_first_time(session, emp, start):
        calls.append(start)
        return None if len(calls) == 1 else real(session, emp, start)

    monkeypatch.setattr(mops, "_holder_of_extra_place", blind_the_first_time)
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.file(employer, bureau, Q1_2027)
    assert len(calls) == 2
    assert accountant.enterprise.name in refused.value.message
    # The session is still usable, and nothing of the refused form is left in it.
    assert not [obj for obj in db_session.new if isinstance(obj, (Mandate, MandateApplication))]
    assert kit.file(kit.employer(), bureau, Q1_2027).status is MandateStatus.PENDING


def test_the_unique_index_refuses_a_second_open_affiliation_that_slipped_past_the_check(kit, db_session,
                                                                                      monkeypatch):
    employer, first, second = kit.employer(), kit.secretariat(), kit.secretariat()
    kit.affiliate(employer, first, Q4_2026)
    monkeypatch.setattr(mops, "affiliations_of", lambda session, employer_id: [])
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.affiliate(employer, second, Q1_2027)
    assert refused.value.field == "start_date" and "at the same time" in refused.value.message
    # Only that insert was undone: the transaction goes on.
    assert mops.current_affiliation(db_session, employer.enterprise.id).provider_id == first.provider.id
    assert kit.affiliate(kit.employer(), second, Q1_2027).status is MandateStatus.ACCEPTED


# --- deciding the form ------------------------------------------------------------------------


def test_accepting_before_the_start_gives_access_from_the_start(kit, db_session, clock):
    employer, accountant = kit.employer(), kit.provider()
    staff = kit.staff(accountant)
    form = kit.file(employer, accountant, Q1_2027, ["asr"])
    kit.decide_form(form, accountant)
    assert (form.status, form.effective_from, form.decided_at, form.decided_by_id) == (
        MandateStatus.ACCEPTED, Q1_2027, clock.now(), accountant.admin.person.id)
    [entry] = kit.audit("mandate.form.accept")
    assert entry.details["before"]["status"] == "pending" and entry.details["after"]["status"] == "accepted"
    assert entry.details["after"]["effective_from"] == "2027-01-01"
    assert (entry.enterprise_id, entry.provider_enterprise_id, entry.actor_person_id) == (
        employer.enterprise.id, accountant.enterprise.id, accountant.admin.person.id)
    [notice] = kit.outbox(employer.admin.person, "mandate-form-decided")
    assert "accepted" in notice.body and "2027-01-01" in notice.body
    kit.assign(accountant, form, staff, "asr")
    assert kit.decide(staff, employer, "asr", day=date(2026, 12, 31)).reason.code == "no-mandate"
    assert kit.decide(staff, employer, "asr", day=Q1_2027).allowed


def test_accepting_after_the_start_gives_access_from_the_acceptance(kit, db_session, clock):
    employer, accountant = kit.employer(), kit.provider()
    staff = kit.staff(accountant)
    form = kit.file(employer, accountant, Q1_2027, ["asr"])
    clock.advance(days=105)  # 2027-02-15
    kit.decide_form(form, accountant)
    assert form.effective_from == date(2027, 2, 15)
    kit.assign(accountant, form, staff, "asr")
    assert kit.decide(staff, employer, "asr", day=date(2027, 2, 14)).reason.code == "no-mandate"
    assert kit.decide(staff, employer, "asr").allowed
    since = kit.decide(staff, employer, "asr").path[0]
    assert (since.code, since.params["since"]) == ("mandate-form", "2027-02-15")


def test_accepting_a_form_of_the_current_quarter_gives_access_from_today(kit, db_session):
    employer, accountant = kit.employer(), kit.provider()
    staff = kit.staff(accountant)
    form = kit.accepted_form(employer, accountant, Q4_2026, ["asr"])
    assert form.effective_from == TODAY
    assert [form.active_on(day) for day in (YESTERDAY, TODAY, date(2030, 1, 1))] == [False, True, True]
    mops.end_mandate(db_session, form, date(2027, 3, 31), by=employer.ctx)
    assert [form.active_on(day) for day in (date(2027, 3, 31), Q2_2027)] == [True, False]
    kit.assign(accountant, form, staff, "asr")
    assert kit.decide(staff, employer, "asr", day=YESTERDAY).reason.code == "no-mandate"
    assert kit.decide(staff, employer, "asr").allowed


def test_declining_a_form(kit, db_session):
    employer, accountant = kit.employer(), kit.provider()
    form = kit.file(employer, accountant)
    kit.decide_form(form, accountant, accept=False)
    assert (form.status, form.effective_from) == (MandateStatus.DECLINED, None)
    assert not form.active_on(Q1_2027)
    [entry] = kit.audit("mandate.form.decline")
    assert entry.details["after"]["status"] == "declined"
    [notice] = kit.outbox(employer.admin.person, "mandate-form-decided")
    assert "declined" in notice.body


def test_only_the_provider_of_the_form_decides_it_and_only_once(kit, db_session):
    employer, accountant, bureau, secretariat = (kit.employer(), kit.provider(),
                                                 kit.provider(ProviderKind.SOFTWARE_BUREAU), kit.secretariat())
    form = kit.file(employer, accountant)
    with Unchanged(db_session), pytest.raises(mops.NotFound):
        kit.decide_form(form, bureau)
    affiliation = kit.affiliate(employer, secretariat)
    with Unchanged(db_session), pytest.raises(mops.NotFound):
        kit.decide_form(affiliation, secretariat)
    kit.decide_form(form, accountant)
    for accept in (True, False):
        with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
            kit.decide_form(form, accountant, accept)
        assert "accepted" in refused.value.message


# --- ending, withdrawing, revoking ----------------------------------------------------------


def test_ending_a_pending_form_withdraws_it(kit, db_session, clock):
    employer, accountant = kit.employer(), kit.provider()
    form = kit.file(employer, accountant)
    mops.end_mandate(db_session, form, None, by=employer.ctx)
    assert (form.status, form.end_date, form.ended_at, form.ended_by_id) == (
        MandateStatus.WITHDRAWN, None, clock.now(), employer.admin.person.id)
    [entry] = kit.audit("mandate.form.withdraw")
    assert (entry.details["before"]["status"], entry.details["after"]["status"]) == ("pending", "withdrawn")
    with Unchanged(db_session), pytest.raises(mops.Conflict):
        kit.decide_form(form, accountant)


@pytest.mark.parametrize("kind", ["affiliation", "form"])
def test_ending_cuts_access_from_the_day_after_the_end_date(kit, db_session, clock, kind):
    employer = kit.employer()
    provider = kit.secretariat() if kind == "affiliation" else kit.provider()
    mandate = (kit.affiliate(employer, provider, Q4_2026) if kind == "affiliation"
               else kit.accepted_form(employer, provider, Q4_2026, ["dmfa_dimona"]))
    staff = kit.staff(provider)
    kit.assign(provider, mandate, staff, "dmfa")
    assert kit.decide(staff, employer).allowed
    mops.end_mandate(db_session, mandate, TODAY, by=employer.ctx)
    assert (mandate.end_date, mandate.ended_at, mandate.ended_by_id) == (TODAY, clock.now(), employer.admin.person.id)
    [entry] = kit.audit(f"mandate.{kind}.end")
    assert (entry.details["before"]["end_date"], entry.details["after"]["end_date"]) == (None, TODAY.isoformat())
    assert entry.provider_enterprise_id == provider.enterprise.id
    [notice] = kit.outbox(provider.admin.person, "mandate-ended")
    assert employer.enterprise.name in notice.body and TODAY.isoformat() in notice.body
    assert kit.decide(staff, employer).allowed  # the end date is the last day
    clock.advance(days=1)
    assert kit.decide(staff, employer).reason.code == "no-mandate"
    # Ending at once: yesterday as the last day.
    other_employer = kit.employer()
    second = (kit.affiliate(other_employer, provider, Q4_2026) if kind == "affiliation"
              else kit.accepted_form(other_employer, provider, Q4_2026, ["dmfa_dimona"]))
    kit.assign(provider, second, staff, "dmfa")
    assert kit.decide(staff, other_employer).allowed
    mops.end_mandate(db_session, second, clock.now().date() - timedelta(days=1), by=other_employer.ctx)
    assert kit.decide(staff, other_employer).reason.code == "no-mandate"


def test_an_end_date_may_be_brought_forward_not_pushed_back(kit, db_session):
    employer, accountant = kit.employer(), kit.provider()
    form = kit.accepted_form(employer, accountant, Q1_2027)
    mops.end_mandate(db_session, form, date(2027, 6, 30), by=employer.ctx)
    for later in (date(2027, 6, 30), date(2027, 12, 31)):
        with Unchanged(db_session), pytest.raises(mops.ValidationError) as refused:
            mops.end_mandate(db_session, form, later, by=employer.ctx)
        assert refused.value.field == "end_date" and "already ends on 2027-06-30" in refused.value.message
    mops.end_mandate(db_session, form, date(2027, 3, 31), by=employer.ctx)
    assert form.end_date == date(2027, 3, 31)
    assert [r.details["after"]["end_date"] for r in kit.audit("mandate.form.end")] == ["2027-06-30", "2027-03-31"]


def test_end_mandate_refusals(kit, db_session, clock):
    employer, secretariat, accountant = kit.employer(), kit.secretariat(), kit.provider()
    old = kit.affiliate(employer, secretariat, Q3_2026)
    form = kit.accepted_form(employer, accountant, Q1_2027)
    cases = [
        (form, None, "The end date is required"),
        # An end date before the start date.
        (form, date(2026, 12, 31), "cannot be before the start date (2027-01-01)"),
        (old, date(2026, 6, 30), "cannot be before the start date (2026-07-01)"),
        # Access already used is history.
        (old, date(2026, 10, 31), "cannot lie before yesterday"),
    ]
    for mandate, end, message in cases:
        with Unchanged(db_session), pytest.raises(mops.ValidationError) as refused:
            mops.end_mandate(db_session, mandate, end, by=employer.ctx)
        assert (refused.value.field, message in refused.value.message) == ("end_date", True), refused.value.message


@pytest.mark.parametrize("how", ["declined", "withdrawn", "revoked"])
def test_a_form_that_is_over_cannot_be_ended(kit, db_session, how):
    employer, accountant = kit.employer(), kit.provider()
    form = kit.file(employer, accountant)
    if how == "declined":
        kit.decide_form(form, accountant, accept=False)
    elif how == "withdrawn":
        mops.end_mandate(db_session, form, None, by=employer.ctx)
    else:
        mops.revoke_mandate(db_session, form, by=kit.ctx)
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        mops.end_mandate(db_session, form, date(2027, 3, 31), by=employer.ctx)
    assert refused.value.field == "mandate_id" and how in refused.value.message


@pytest.mark.parametrize("status", ["pending", "accepted"])
def test_revoking_a_form_cuts_access_at_once(kit, db_session, clock, status):
    employer, accountant, bureau = kit.employer(), kit.provider(), kit.provider(ProviderKind.SOFTWARE_BUREAU)
    staff = kit.staff(accountant)
    form = kit.file(employer, accountant, Q4_2026, ["asr"])
    if status == "accepted":
        kit.decide_form(form, accountant)
        kit.assign(accountant, form, staff, "asr")
        assert kit.decide(staff, employer, "asr").allowed
    mops.revoke_mandate(db_session, form, by=kit.ctx)
    assert (form.status, form.ended_at) == (MandateStatus.REVOKED, clock.now())
    assert kit.decide(staff, employer, "asr").reason.code == "no-mandate"
    [entry] = kit.audit("mandate.form.revoke")
    assert (entry.details["before"]["status"], entry.details["after"]["status"]) == (status, "revoked")
    for admin in (employer.admin, accountant.admin):
        [notice] = kit.outbox(admin.person, "mandate-revoked")
        assert employer.enterprise.name in notice.body
    # The place is free again.
    assert kit.file(employer, bureau, Q1_2027).status is MandateStatus.PENDING


def test_revoke_refusals(kit, db_session):
    employer, secretariat, accountant = kit.employer(), kit.secretariat(), kit.provider()
    affiliation = kit.affiliate(employer, secretariat)
    with Unchanged(db_session), pytest.raises(mops.ValidationError) as refused:
        mops.revoke_mandate(db_session, affiliation, by=kit.ctx)
    assert refused.value.field == "mandate_id" and "ended, not revoked" in refused.value.message
    form = kit.file(employer, accountant)
    kit.decide_form(form, accountant, accept=False)
    with Unchanged(db_session), pytest.raises(mops.Conflict):
        mops.revoke_mandate(db_session, form, by=kit.ctx)
    form2 = kit.file(employer, accountant)
    mops.revoke_mandate(db_session, form2, by=kit.ctx)
    with Unchanged(db_session), pytest.raises(mops.Conflict):
        mops.revoke_mandate(db_session, form2, by=kit.ctx)


# --- staff assignments ------------------------------------------------------------------------


@pytest.fixture
def served(kit):
    """An employer affiliated with a secretariat since 2026-10-01, one staff member of the secretariat."""
    employer, secretariat = kit.employer(), kit.secretariat()
    affiliation = kit.affiliate(employer, secretariat, Q4_2026)
    return employer, secretariat, affiliation, kit.staff(secretariat)


def test_assign_staff(kit, db_session, clock, served):
    employer, secretariat, affiliation, staff = served
    assignment = kit.assign(secretariat, affiliation, staff, "dmfa")
    assert (assignment.mandate_id, assignment.person_id, assignment.application, assignment.assigned_by_id,
            assignment.assigned_at, assignment.revoked_at) == (
        affiliation.id, staff.id, "dmfa", secretariat.admin.person.id, clock.now(), None)
    [entry] = kit.audit("mandate.staff.assign")
    assert (entry.actor_person_id, entry.enterprise_id, entry.provider_enterprise_id, entry.application) == (
        secretariat.admin.person.id, employer.enterprise.id, secretariat.enterprise.id, "dmfa")
    assert entry.details == {"mandate_id": affiliation.id, "person_id": staff.id, "person": staff.full_name,
                             "after": {"application": "dmfa", "assigned": True}}
    assert current_assignments(db_session, affiliation.id) == [assignment]
    # A co-administrator of the provider may be assigned too; so may the local administrator himself.
    co_admin = kit.staff(secretariat, Role.CO_ADMIN)
    kit.assign(secretariat, affiliation, co_admin, "asr")
    kit.assign(secretariat, affiliation, secretariat.admin.person, "dmfa")
    assert kit.decide(co_admin, employer, "asr").allowed and kit.decide(secretariat.admin.person, employer).allowed


def test_a_provider_cannot_assign_staff_to_another_providers_client(kit, db_session, served):
    employer, secretariat, affiliation, staff = served
    other = kit.secretariat()
    other_staff = kit.staff(other)
    with Unchanged(db_session), pytest.raises(mops.NotFound) as refused:
        kit.assign(other, affiliation, other_staff, "dmfa")
    # Not even the client's name or number is confirmed.
    assert employer.enterprise.name not in refused.value.message
    assert employer.enterprise.kbo_display not in refused.value.message
    # Nor with the other provider's own staff member... nor with the client's provider's staff.
    with Unchanged(db_session), pytest.raises(mops.NotFound):
        kit.assign(other, affiliation, staff, "dmfa")
    with Unchanged(db_session), pytest.raises(mops.NotFound):
        mops.unassign_staff(db_session, other.enterprise, affiliation, staff, "dmfa", by=other.ctx)


def test_an_application_outside_the_mandate_is_refused(kit, db_session, served):
    employer, secretariat, affiliation, staff = served
    with Unchanged(db_session), pytest.raises(mops.ValidationError) as outside:
        kit.assign(secretariat, affiliation, staff, "kbo_prive_gegevens")
    assert outside.value.field == "application" and "not within the mandate" in outside.value.message
    with Unchanged(db_session), pytest.raises(mops.ValidationError) as unknown:
        kit.assign(secretariat, affiliation, staff, "no_such_application")
    assert unknown.value.field == "application" and "Unknown application" in unknown.value.message
    accountant = kit.provider()
    form, accountant_staff = kit.accepted_form(employer, accountant, Q1_2027, ["asr"]), kit.staff(accountant)
    with Unchanged(db_session), pytest.raises(mops.ValidationError):
        kit.assign(accountant, form, accountant_staff, "dmfa")


def test_only_designated_staff_under_direct_authority_can_be_assigned(kit, db_session, served):
    employer, secretariat, affiliation, staff = served
    outsider = kit.f.Person()  # no link, no role with the secretariat
    linked_only = kit.f.Person()
    kit.f.Link(enterprise=secretariat.enterprise, person=linked_only)  # linked, but never designated
    freelancer = kit.f.Person()  # designated (built directly), but a self-employed collaborator
    kit.f.Link(enterprise=secretariat.enterprise, person=freelancer, kind=LinkKind.ZELFSTANDIGE_MEDEWERKER)
    kit.f.Membership(enterprise=secretariat.enterprise, person=freelancer, role=Role.USER)
    left = kit.staff(secretariat)  # designated, then his link ended yesterday
    db_session.scalar(select(Link).where(Link.person_id == left.id)).end_date = YESTERDAY
    removed = kit.staff(secretariat)  # designated, then removed
    aops.remove_member(db_session, secretariat.enterprise, removed, by=secretariat.ctx)
    employee_of_client = kit.staff(employer)  # the client's own user, not the provider's
    for person, what in [(outsider, "not designated"), (linked_only, "not designated"),
                         (freelancer, "not under the direct authority"), (left, "not under the direct authority"),
                         (removed, "not designated"), (employee_of_client, "not designated")]:
        with Unchanged(db_session), pytest.raises(mops.ValidationError) as refused:
            kit.assign(secretariat, affiliation, person, "dmfa")
        assert refused.value.field == "person_id" and what in refused.value.message, (person, refused.value.message)


def test_staff_is_assigned_only_under_an_accepted_running_mandate(kit, db_session, clock):
    employer, accountant = kit.employer(), kit.provider()
    staff = kit.staff(accountant)
    pending = kit.file(employer, accountant, Q1_2027, ["asr"])
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.assign(accountant, pending, staff, "asr")
    assert refused.value.field == "mandate_id" and "not in force" in refused.value.message
    kit.decide_form(pending, accountant)
    # Accepted but not started yet: the provider may prepare its assignments.
    kit.assign(accountant, pending, staff, "asr")
    mops.end_mandate(db_session, pending, date(2027, 3, 31), by=employer.ctx)
    clock.advance(days=31 + 28 + 31 + 60)  # 2027-04-01
    newcomer = kit.staff(accountant)
    with Unchanged(db_session), pytest.raises(mops.Conflict):
        kit.assign(accountant, pending, newcomer, "asr")
    for how in ("declined", "revoked"):
        form = kit.file(kit.employer(), accountant, Q2_2027, ["asr"])
        if how == "declined":
            kit.decide_form(form, accountant, accept=False)
        else:
            kit.decide_form(form, accountant)
            mops.revoke_mandate(db_session, form, by=kit.ctx)
        with Unchanged(db_session), pytest.raises(mops.Conflict):
            kit.assign(accountant, form, staff, "asr")


def test_a_mandate_ending_today_still_takes_assignments(kit, db_session, served):
    employer, secretariat, affiliation, staff = served
    mops.end_mandate(db_session, affiliation, TODAY, by=employer.ctx)
    kit.assign(secretariat, affiliation, staff, "asr")
    assert kit.decide(staff, employer, "asr").allowed


def test_assigning_twice_is_refused(kit, db_session, served):
    employer, secretariat, affiliation, staff = served
    kit.assign(secretariat, affiliation, staff, "dmfa")
    with Unchanged(db_session), pytest.raises(mops.Conflict) as refused:
        kit.assign(secretariat, affiliation, staff, "dmfa")
    assert refused.value.field == "application" and "already assigned" in refused.value.message


def test_unassign_staff_cuts_access_at_once(kit, db_session, clock, served):
    employer, secretariat, affiliation, staff = served
    kit.assign(secretariat, affiliation, staff, "dmfa")
    assert kit.decide(staff, employer).allowed
    clock.advance(hours=1)
    assignment = mops.unassign_staff(db_session, secretariat.enterprise, affiliation, staff, "dmfa", by=secretariat.ctx)
    assert (assignment.revoked_at, assignment.revoked_by_id) == (clock.now(), secretariat.admin.person.id)
    assert kit.decide(staff, employer).reason.code == "not-assigned"
    [entry] = kit.audit("mandate.staff.unassign")
    assert (entry.enterprise_id, entry.provider_enterprise_id, entry.application) == (
        employer.enterprise.id, secretariat.enterprise.id, "dmfa")
    assert (entry.details["before"], entry.details["after"]) == (
        {"application": "dmfa", "assigned": True}, {"application": "dmfa", "assigned": False})
    assert current_assignments(db_session, affiliation.id) == []
    with Unchanged(db_session), pytest.raises(mops.NotFound) as refused:
        mops.unassign_staff(db_session, secretariat.enterprise, affiliation, staff, "dmfa", by=secretariat.ctx)
    assert refused.value.field == "application"
    # Assigned again: a new row, the old one stays revoked.
    again = kit.assign(secretariat, affiliation, staff, "dmfa")
    assert again.id != assignment.id and assignment.revoked_at is not None
    assert kit.decide(staff, employer).allowed


def test_assignments_do_not_survive_a_new_mandate(kit, db_session, clock):
    employer, accountant = kit.employer(), kit.provider()
    staff = kit.staff(accountant)
    first = kit.accepted_form(employer, accountant, Q4_2026, ["asr"])
    kit.assign(accountant, first, staff, "asr")
    assert [c.employer for c in clients_of_staff(db_session, staff.id)] == [employer.enterprise]
    mops.end_mandate(db_session, first, YESTERDAY, by=employer.ctx)
    assert kit.decide(staff, employer, "asr").reason.code == "no-mandate"
    second = kit.accepted_form(employer, accountant, Q1_2027, ["asr"])
    assert kit.decide(staff, employer, "asr", day=Q1_2027).reason.code == "not-assigned"
    assert clients_of_staff(db_session, staff.id, Q1_2027) == []
    assert current_assignments(db_session, second.id) == []


# --- one transaction ------------------------------------------------------------------------


def test_an_operation_and_its_audit_record_and_notice_roll_back_together(kit, db_session):
    employer, accountant = kit.employer(), kit.provider()
    with Unchanged(db_session):
        with db_session.begin_nested() as work:
            form = kit.file(employer, accountant)
            db_session.flush()
            assert [r.details["mandate_id"] for r in kit.audit("mandate.form.file")] == [form.id]
            assert kit.outbox(accountant.admin.person, "mandate-form")
            work.rollback()
    form = kit.file(employer, accountant)
    assert [r.details["mandate_id"] for r in kit.audit("mandate.form.file")] == [form.id]


# --- what the database itself holds -------------------------------------------------------------


def _raw_mandate(employer, provider, **fields) -> Mandate:
    values = dict(kind=MandateKind.FORM, employer_id=employer.enterprise.id, provider_id=provider.provider.id,
                  status=MandateStatus.PENDING, start_date=Q1_2027, contract_declared=True,
                  contract_date=CONTRACT_DATE, contract_reference="R", filed_at=mops.utcnow())
    values.update(fields)
    return Mandate(**values)


def _refused_by_the_database(session, *rows) -> None:
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.add_all(rows)
            session.flush()


def test_the_database_holds_one_open_other_provider_and_one_open_affiliation(kit, db_session):
    employer, accountant, bureau = kit.employer(), kit.provider(), kit.provider(ProviderKind.SOFTWARE_BUREAU)
    first, second = kit.secretariat(), kit.secretariat()
    db_session.add(_raw_mandate(employer, accountant))
    db_session.flush()
    with Unchanged(db_session):
        _refused_by_the_database(db_session, _raw_mandate(employer, bureau))
        _refused_by_the_database(db_session, _raw_mandate(employer, bureau, status=MandateStatus.ACCEPTED,
                                                          effective_from=Q1_2027))
    # A form over, or one with an end date, is not the open place.
    db_session.add_all([_raw_mandate(employer, bureau, status=MandateStatus.DECLINED),
                        _raw_mandate(employer, bureau, status=MandateStatus.ACCEPTED, effective_from=Q1_2027,
                                     end_date=date(2027, 3, 31))])
    db_session.flush()
    affiliation = dict(kind=MandateKind.AFFILIATION, status=MandateStatus.ACCEPTED, effective_from=Q1_2027,
                       contract_declared=False, contract_date=None, contract_reference=None)
    db_session.add(_raw_mandate(employer, first, **affiliation))
    db_session.flush()
    with Unchanged(db_session):
        _refused_by_the_database(db_session, _raw_mandate(employer, second, **affiliation))


@pytest.mark.parametrize("fields", [
    {"end_date": date(2026, 12, 31)},                                          # end before start
    {"kind": MandateKind.AFFILIATION, "status": MandateStatus.PENDING},        # an affiliation is always accepted
    {"status": MandateStatus.ACCEPTED},                                        # accepted without effective_from
    {"contract_declared": False},                                              # a form declares its contract
    {"contract_date": None},
    {"contract_reference": None},
])
def test_the_check_constraints_of_mandates(kit, db_session, fields):
    employer, accountant = kit.employer(), kit.provider()
    with Unchanged(db_session):
        _refused_by_the_database(db_session, _raw_mandate(employer, accountant, **fields))


def test_the_check_constraint_of_providers_and_the_current_assignment_index(kit, db_session, served):
    employer, secretariat, affiliation, staff = served
    enterprise = kit.f.Enterprise()
    with Unchanged(db_session):
        _refused_by_the_database(db_session, Provider(enterprise_id=enterprise.id, kind=ProviderKind.ACCOUNTANT,
                                                      recognition_number="1", registered_at=mops.utcnow()))
        _refused_by_the_database(db_session, Provider(enterprise_id=enterprise.id,
                                                      kind=ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT,
                                                      registered_at=mops.utcnow()))
    kit.assign(secretariat, affiliation, staff, "dmfa")
    duplicate = dict(mandate_id=affiliation.id, person_id=staff.id, application="dmfa", assigned_at=mops.utcnow())
    with Unchanged(db_session):
        _refused_by_the_database(db_session, StaffAssignment(**duplicate))
    db_session.add(StaffAssignment(**duplicate, revoked_at=mops.utcnow()))
    db_session.flush()
