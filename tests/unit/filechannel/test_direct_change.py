"""Directe wijziging (repertory.operations.apply_direct_change): allowed by the decision point's
certificate tier, applied at once without officer review, the history naming the certificate."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from access.decision import Subject, decide
from access.errors import Conflict, ValidationError
from audit.operations import RequestContext
from certificates import operations as cops
from repertory.models import ChangeProposal, RecordChange
from repertory.operations import apply_direct_change, propose_change, secured_facts
from tests.factories import audit_records, subject_of
from tests.unit.filechannel.helpers import World, repertory_state


def proved(decision) -> int:
    """The certificate the decision point accepted as proof (the certificate tier's step)."""
    return next(step.params["certificate_id"] for step in decision.path if step.code == "certificate")


def test_allowed_with_proof_and_applied_at_once(kit, world: World):
    employer = world.employer.enterprise
    admin = subject_of(world.employer.admin.person)
    without = decide(kit.session, admin, employer.id, "directe_wijziging", "change", catalogue=kit.catalogue)
    assert (without.allowed, without.reason.code) == (False, "certificate-required")
    decision = decide(kit.session, admin, employer.id, "directe_wijziging", "change", catalogue=kit.catalogue,
                      context={"certificate_id": world.certificate.id})
    assert decision.allowed and proved(decision) == world.certificate.id

    change = apply_direct_change(kit.session, employer, {"name": "Snel Gewijzigd BV", "city": ""},
                                 certificate=world.certificate, by=world.employer.ctx)
    assert employer.name == "Snel Gewijzigd BV" and employer.city == "Gent"  # empty keeps the value
    assert change.source == "direct_change" and change.certificate_id == world.certificate.id
    assert change.changed_by_id == world.employer.admin.person.id
    assert kit.session.scalar(select(ChangeProposal.id)) is None  # no proposal, no officer review
    assert secured_facts(kit.session, employer).history[0].certificate.fingerprint == world.certificate.fingerprint
    record = audit_records(kit.session, "repertory.direct_change")[-1]
    assert record.details["certificate_id"] == world.certificate.id
    assert record.details["changes"] == {"name": {"before": change.changes["name"]["before"],
                                                  "after": "Snel Gewijzigd BV"}}


def test_provider_client_under_mandate_with_its_own_certificate(kit, world: World):
    employer = world.employer.enterprise
    client = Subject(person_id=None, label="client-9", client_enterprise_id=world.secretariat.enterprise.id,
                     scopes=frozenset({"directe_wijziging"}))
    decision = decide(kit.session, client, employer.id, "directe_wijziging", "change", catalogue=kit.catalogue,
                      context={"certificate_id": world.secretariat_certificate.id})
    assert decision.allowed and decision.provider_enterprise_id == world.secretariat.enterprise.id
    by = RequestContext(actor_label="client-9", provider_enterprise_id=decision.provider_enterprise_id)
    change = apply_direct_change(kit.session, employer, {"legal_form": "NV"},
                                 certificate=kit.session.get(type(world.certificate), proved(decision)), by=by)
    assert change.certificate_id == world.secretariat_certificate.id and change.changed_by_id is None
    assert audit_records(kit.session, "repertory.direct_change")[-1].provider_enterprise_id \
        == world.secretariat.enterprise.id


def test_a_direct_change_is_audited_as_a_use_of_its_certificate(kit, world: World):
    employer = world.employer.enterprise
    change = apply_direct_change(kit.session, employer, {"legal_form": "NV"}, certificate=world.certificate,
                                 by=world.employer.ctx)
    [use] = audit_records(kit.session, "certificate.use")
    assert use.details == {"certificate_id": world.certificate.id, "fingerprint": world.certificate.fingerprint,
                           "purpose": "direct-change", "record_change_id": change.id}
    assert (use.enterprise_id, use.application, use.actor_person_id) == \
        (employer.id, "directe_wijziging", world.employer.admin.person.id)


def test_a_providers_direct_change_names_the_employer_and_the_provider(kit, world: World):
    employer = world.employer.enterprise
    by = RequestContext(actor_label="client-9", provider_enterprise_id=world.secretariat.enterprise.id)
    apply_direct_change(kit.session, employer, {"legal_form": "NV"}, certificate=world.secretariat_certificate,
                        by=by)
    [use] = audit_records(kit.session, "certificate.use")
    assert use.details["certificate_id"] == world.secretariat_certificate.id
    assert (use.enterprise_id, use.provider_enterprise_id) == (employer.id, world.secretariat.enterprise.id)


def test_a_refused_direct_change_is_no_use(kit, world: World):
    with pytest.raises(ValidationError):
        apply_direct_change(kit.session, world.employer.enterprise, {}, certificate=world.certificate,
                            by=world.employer.ctx)
    assert audit_records(kit.session, "certificate.use") == []


def test_a_certificate_that_does_not_prove_it_is_refused(kit, world: World):
    """Called without the decision point's proof: a certificate of another enterprise, or not active."""
    employer = world.employer.enterprise
    cops.revoke_certificate(kit.session, world.certificate, "lost", by=kit.ctx)
    before = repertory_state(kit.session)
    for certificate in (world.stranger_certificate,
                        world.secretariat_certificate,  # the provider's, but not acting through the provider
                        world.certificate):             # revoked
        with pytest.raises(Conflict):
            apply_direct_change(kit.session, employer, {"legal_form": "NV"}, certificate=certificate,
                                by=world.employer.ctx)
    assert repertory_state(kit.session) == before


@pytest.mark.parametrize("values, field", [
    ({}, "name"),                                   # changes nothing
    ({"postal_code": "90000"}, "postal_code"),
    ({"joint_committee": "12"}, "joint_committee"),
    ({"name": "x" * 201}, "name"),
])
def test_invalid_values_are_refused_and_nothing_written(kit, world: World, values, field):
    before = repertory_state(kit.session)
    with pytest.raises(ValidationError) as refused:
        apply_direct_change(kit.session, world.employer.enterprise, values, certificate=world.certificate,
                            by=world.employer.ctx)
    assert refused.value.field == field
    assert repertory_state(kit.session) == before


def test_a_pending_proposal_goes_stale_after_a_direct_change(kit, world: World):
    """The proposal flow still works next to the direct path: a proposal made before a direct change
    of the same field can no longer be accepted blindly (decide_proposal finds it stale)."""
    from repertory.operations import decide_proposal

    employer = world.employer.enterprise
    proposal = propose_change(kit.session, employer, {"city": "Lier", "postal_code": "2500"}, None,
                              by=world.employer.ctx)
    apply_direct_change(kit.session, employer, {"city": "Mechelen", "postal_code": "2800"},
                        certificate=world.certificate, by=world.employer.ctx)
    with pytest.raises(Conflict):
        decide_proposal(kit.session, proposal, True, None, by=kit.ctx)
    sources = [c.source for c in kit.session.scalars(select(RecordChange).where(
        RecordChange.enterprise_id == employer.id))]
    assert sources == ["direct_change"]
