"""Machine clients at the decision point: token scope, own enterprise or mandate, and proof of possession."""
from __future__ import annotations

from datetime import date

import pytest

from access.decision import Subject, decide
from certificates import operations as cops
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import ProviderKind


def _machine(enterprise, *scopes):
    return Subject(person_id=None, label="client-1", client_enterprise_id=enterprise.id, scopes=frozenset(scopes))


@pytest.fixture
def world(factories, pki, trust, ctx):
    employer = factories.Employer()
    secretariat_enterprise = factories.Enterprise(employer=True)
    secretariat = mops.register_provider(factories.session, secretariat_enterprise,
                                         ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "310/01", by=ctx)
    mops.record_affiliation(factories.session, employer, secretariat, date(2026, 10, 1), groups=load_groups(), by=ctx)
    certificate = cops.register_certificate(factories.session, employer,
                                            pki.seal(employer.kbo_number).pem_with_chain, trust=trust,
                                            by=ctx).certificate
    provider_certificate = cops.register_certificate(
        factories.session, secretariat_enterprise, pki.seal(secretariat_enterprise.kbo_number).pem_with_chain,
        trust=trust, by=ctx).certificate
    return dict(employer=employer, provider=secretariat_enterprise, certificate=certificate,
                provider_certificate=provider_certificate)


def _ask(factories, catalogue, subject, enterprise, application, **context):
    return decide(factories.session, subject, enterprise.id, application, "use", catalogue=catalogue,
                  context=context)


def test_own_enterprise_within_scope(factories, catalogue, world):
    subject = _machine(world["employer"], "dmfa")
    allowed = _ask(factories, catalogue, subject, world["employer"], "dmfa")
    assert allowed.allowed and [s.code for s in allowed.path] == ["client-of-enterprise", "token-scope"]
    assert _ask(factories, catalogue, subject, world["employer"], "asr").reason.code == "outside-token-scope"
    assert _ask(factories, catalogue, subject, world["employer"], "toegangsbeheer").reason.code \
        == "machine-no-access-management"


def test_certificate_tier_needs_a_certificate_of_the_acting_enterprise(factories, catalogue, ctx, world):
    subject = _machine(world["employer"], "directe_wijziging")
    assert _ask(factories, catalogue, subject, world["employer"], "directe_wijziging").reason.code \
        == "certificate-required"
    wrong = _ask(factories, catalogue, subject, world["employer"], "directe_wijziging",
                 certificate_id=world["provider_certificate"].id)
    assert wrong.reason.code == "certificate-not-of-enterprise"
    proved = _ask(factories, catalogue, subject, world["employer"], "directe_wijziging",
                  certificate_id=world["certificate"].id)
    assert proved.allowed and proved.path[-1].code == "certificate"
    cops.revoke_certificate(factories.session, world["certificate"], "test", by=ctx)
    revoked = _ask(factories, catalogue, subject, world["employer"], "directe_wijziging",
                   certificate_id=world["certificate"].id)
    assert (revoked.allowed, revoked.reason.code) == (False, "certificate-not-active")


def test_provider_client_acts_only_under_the_mandate(factories, catalogue, world):
    subject = _machine(world["provider"], "dmfa", "kbo_prive_gegevens", "bestandsoverdracht")
    allowed = _ask(factories, catalogue, subject, world["employer"], "dmfa")
    assert allowed.allowed and allowed.provider_enterprise_id == world["provider"].id
    assert [s.code for s in allowed.path] == ["mandate-affiliation", "mandate-scope", "token-scope"]
    assert _ask(factories, catalogue, subject, world["employer"], "kbo_prive_gegevens").reason.code \
        == "outside-mandate"
    stranger = factories.Employer()
    assert _ask(factories, catalogue, subject, stranger, "dmfa").reason.code == "no-mandate"
    # The certificate tier under mandate: the provider's own certificate proves it.
    signed = _ask(factories, catalogue, subject, world["employer"], "bestandsoverdracht",
                  certificate_id=world["provider_certificate"].id)
    assert signed.allowed, signed.reason
    assert _ask(factories, catalogue, subject, world["employer"], "bestandsoverdracht",
                certificate_id=world["certificate"].id).reason.code == "certificate-not-of-enterprise"
