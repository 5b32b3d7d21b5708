"""The mandate path of the decision point, step by step: every step is needed, ending any cuts access."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from access.decision import decide
from access.models import Role
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import ProviderKind
from tests.factories import subject_of

Q1_2027 = date(2027, 1, 1)


@pytest.fixture
def groups():
    return load_groups()


@pytest.fixture
def world(factories, ctx, groups, catalogue):
    """A secretariat with one staff member, and an employer affiliated with it from 2026-10-01."""
    employer = factories.Employer()
    secretariat_enterprise = factories.Enterprise(employer=True)
    secretariat = mops.register_provider(factories.session, secretariat_enterprise,
                                         ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/99", by=ctx)
    staff = factories.Person()
    link = factories.Link(enterprise=secretariat_enterprise, person=staff)
    factories.Membership(enterprise=secretariat_enterprise, person=staff, role=Role.USER)
    result = mops.record_affiliation(factories.session, employer, secretariat, date(2026, 10, 1), groups=groups,
                                     by=ctx)
    return dict(employer=employer, provider=secretariat, staff=staff, link=link, mandate=result.affiliation)


def _decide(factories, catalogue, world, application="dmfa", day=None):
    return decide(factories.session, subject_of(world["staff"]), world["employer"].id, application, "open",
                  catalogue=catalogue, day=day)


def test_not_assigned_is_refused_with_the_provider_named(factories, catalogue, world):
    decision = _decide(factories, catalogue, world)
    assert not decision.allowed
    assert decision.reason.code == "not-assigned"
    assert world["provider"].enterprise.name in decision.reason.text
    assert decision.provider_enterprise_id == world["provider"].enterprise_id


def test_complete_path_allows_and_names_every_step(factories, catalogue, ctx, world):
    mops.assign_staff(factories.session, world["provider"].enterprise, world["mandate"], world["staff"], "dmfa",
                      catalogue=catalogue, by=ctx)
    decision = _decide(factories, catalogue, world)
    assert decision.allowed, decision.reason
    assert [step.code for step in decision.path] == ["mandate-affiliation", "mandate-scope", "staff-assignment", "link"]
    assert decision.provider_enterprise_id == world["provider"].enterprise_id
    # Not assigned for another application of the scope; and never the employer's access management.
    assert _decide(factories, catalogue, world, "asr").reason.code == "not-assigned"
    assert _decide(factories, catalogue, world, "toegangsbeheer").reason.code == "no-direct-authority"


def test_outside_scope_and_ended_steps_cut_access(factories, catalogue, ctx, world, clock):
    mops.assign_staff(factories.session, world["provider"].enterprise, world["mandate"], world["staff"], "dmfa",
                      catalogue=catalogue, by=ctx)
    assert _decide(factories, catalogue, world, "kbo_prive_gegevens").reason.code == "outside-mandate"
    # The staff member's link with the provider ends: refused at once.
    world["link"].end_date = date(2026, 11, 1)
    factories.session.flush()
    assert _decide(factories, catalogue, world).reason.code == "no-provider-authority"
    world["link"].end_date = None
    factories.session.flush()
    assert _decide(factories, catalogue, world).allowed
    # The employer ends the affiliation: from the day after the last day, nothing.
    mops.end_mandate(factories.session, world["mandate"], date(2026, 11, 2), by=ctx)
    assert _decide(factories, catalogue, world, day=date(2026, 11, 2)).allowed
    refused = _decide(factories, catalogue, world, day=date(2026, 11, 3))
    assert refused.reason.code == "no-mandate"


def test_switch_of_secretariat_needs_quarter_start_and_warns(factories, ctx, groups, world):
    other = mops.register_provider(factories.session, factories.Enterprise(employer=True),
                                   ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "301/01", by=ctx)
    with pytest.raises(mops.ValidationError) as refused:
        mops.record_affiliation(factories.session, world["employer"], other, date(2027, 2, 1), groups=groups, by=ctx)
    assert refused.value.field == "start_date"
    with pytest.raises(mops.SwitchNeedsConfirmation) as warned:
        mops.record_affiliation(factories.session, world["employer"], other, Q1_2027, groups=groups, by=ctx,
                                notice_date=date(2026, 11, 1))
    assert len(warned.value.warnings) == 2  # minimum term of 3 years, notice of 6 months
    result = mops.record_affiliation(factories.session, world["employer"], other, Q1_2027, groups=groups, by=ctx,
                                     notice_date=date(2026, 11, 1), acknowledge_warnings=True)
    assert result.ended is world["mandate"]
    assert world["mandate"].end_date == Q1_2027 - timedelta(days=1)
    assert world["mandate"].notice_date == date(2026, 11, 1)


def test_one_extra_provider_names_the_current_one(factories, ctx, groups, world):
    employer = world["employer"]
    accountant = mops.register_provider(factories.session, factories.Enterprise(), ProviderKind.ACCOUNTANT, by=ctx)
    bureau = mops.register_provider(factories.session, factories.Enterprise(), ProviderKind.SOFTWARE_BUREAU, by=ctx)
    kwargs = dict(contract_declared=True, contract_date=date(2026, 10, 15), contract_reference="C-1",
                  groups=groups, by=ctx)
    mops.file_provider_form(factories.session, employer, accountant, Q1_2027, ["asr"], **kwargs)
    with pytest.raises(mops.Conflict) as refused:
        mops.file_provider_form(factories.session, employer, bureau, Q1_2027, ["asr"], **kwargs)
    assert accountant.enterprise.name in refused.value.message
    with pytest.raises(mops.ValidationError) as undeclared:
        mops.file_provider_form(factories.session, employer, bureau, Q1_2027, ["asr"],
                                **{**kwargs, "contract_declared": False})
    assert undeclared.value.field == "contract_declared"
