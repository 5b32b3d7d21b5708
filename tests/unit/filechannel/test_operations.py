"""The file channel: a signed batch of repertory changes is applied whole, with a receipt and the
certificate in the record history; every kind of bad input is refused with its reason and nothing of
the batch is applied."""
from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from access.decision import Subject
from access.models import Enterprise
from certificates import operations as cops
from certificates.models import FileMessage
from filechannel.operations import MessageRefused, receive_message
from filechannel.registry import Item, MessageType, Registry, default_registry
from filechannel.repertory_changes import NAMESPACE, RepertoryChanges
from repertory.models import RecordChange
from tests.conftest import DEFAULT_NOW
from tests.factories import audit_records, subject_of
from tests.unit.mandates.helpers import Party
from tests.pki import rsa_key
from tests.unit.filechannel.helpers import World, batch, register, repertory_state, sign, sign_b64

CHANNEL_SCOPES = frozenset({"bestandsoverdracht", "directe_wijziging"})


def admin_of(party: Party) -> Subject:
    return subject_of(party.admin.person)


def client_of(party: Party, scopes=CHANNEL_SCOPES) -> Subject:
    """The decision point's subject for an API client of the party (as a bearer token makes it)."""
    return Subject(person_id=None, label="client-1", client_enterprise_id=party.enterprise.id, scopes=scopes)


def send(kit, subject: Subject, content: bytes, signature: bytes, by=None, **kwargs):
    return receive_message(kit.session, content, signature, subject=subject, by=by or kit.ctx,
                           catalogue=kit.catalogue, **kwargs)


def own_batch(world: World, **values) -> bytes:
    kbo = world.employer.enterprise.kbo_number
    return batch(kbo, {"employer": kbo, **(values or {"street": "Nieuwstraat 1", "city": "Brugge",
                                                      "postal_code": "8000"})})


def refused(kit, code: str, call) -> MessageRefused:
    """`call` is refused with `code`; nothing but audit records was written, and the refusal is audited."""
    before = repertory_state(kit.session)
    with pytest.raises(MessageRefused) as caught:
        call()
    assert caught.value.code == code, (caught.value.code, caught.value.message)
    assert repertory_state(kit.session) == before, "a refused message changed the repertory"
    refusal = audit_records(kit.session, "filechannel.refuse")[-1]
    assert refusal.outcome == "failure" and refusal.details["code"] == code
    assert kit.session.info["survive_rollback"]  # the refusal outlives the request's rollback
    return caught.value


# --- accepted ----------------------------------------------------------------------------------


def test_own_batch_is_applied_with_a_receipt_and_the_certificate_in_the_history(kit, world):
    employer = world.employer.enterprise
    content = own_batch(world)
    receipt = send(kit, admin_of(world.employer), content, sign_b64(world.seal, content), by=world.employer.ctx)

    kit.session.expire_all()
    assert (employer.street, employer.city, employer.postal_code) == ("Nieuwstraat 1", "Brugge", "8000")
    change = kit.session.scalars(select(RecordChange).where(RecordChange.enterprise_id == employer.id)).one()
    assert change.source == "file_message" and change.certificate_id == world.certificate.id
    assert change.certificate.fingerprint == world.certificate.fingerprint
    assert change.changed_by_id == world.employer.admin.person.id
    assert change.changes["city"] == {"before": "Gent", "after": "Brugge"}

    message = kit.session.scalars(select(FileMessage)).one()
    assert message.reference == receipt.reference and receipt.reference.startswith("FM-20261102-")
    assert (message.message_type, message.items) == ("repertory-changes", 1)
    assert message.signer_certificate_id == world.certificate.id and message.sender_enterprise_id == employer.id
    assert message.sender_person_id == world.employer.admin.person.id
    assert message.receipt == receipt.receipt
    assert receipt.receipt["sender"] == employer.kbo_number
    assert receipt.receipt["signer"]["fingerprint"] == world.certificate.fingerprint
    assert receipt.receipt["results"] == [{"item": 1, "employer": employer.kbo_number, "record_change_id": change.id,
                                           "changes": change.changes}]

    direct = audit_records(kit.session, "repertory.direct_change")[-1]
    assert direct.details["certificate_id"] == world.certificate.id
    assert direct.details["reference"] == receipt.reference and direct.application == "directe_wijziging"
    assert audit_records(kit.session, "certificate.use")[-1].details["reference"] == receipt.reference
    assert audit_records(kit.session, "filechannel.receive")[-1].details["employers"] == [employer.kbo_number]
    decisions = [(r.application, r.outcome) for r in audit_records(kit.session)
                 if r.action.startswith("decision:")]
    assert decisions[-2:] == [("bestandsoverdracht", "allowed"), ("directe_wijziging", "allowed")]


@pytest.mark.parametrize("how", [
    dict(),                                       # ECDSA with signed attributes
    dict(attributes=False),                       # ECDSA over the file itself
    dict(certificates=False),                     # no certificate in the signature: found among the registered
    dict(rsa=True),                               # RSA PKCS#1 v1.5
    dict(rsa=True, pss=True),                     # RSASSA-PSS
    dict(rsa=True, pss=True, attributes=False),
])
def test_every_supported_signature_form_is_accepted(kit, pki, trust, world, how):
    how = dict(how)
    if how.pop("rsa", False):
        seal, _ = register(kit, pki, trust, world.employer, key=rsa_key())
    else:
        seal = world.seal
    content = own_batch(world, name="Nieuwe Naam BV")
    receipt = send(kit, admin_of(world.employer), content, sign_b64(seal, content, **how))
    assert receipt.receipt["results"][0]["changes"]["name"]["after"] == "Nieuwe Naam BV"


def test_provider_client_sends_one_batch_for_two_client_employers(kit, world):
    first, second = world.employer.enterprise, world.client.enterprise
    content = batch(world.secretariat.enterprise.kbo_number,
                    {"employer": first.kbo_number, "legal_form": "NV"},
                    {"employer": second.kbo_number, "joint_committee": "124.01", "name": "Bouw & Co"},
                    reference="run-2026-11-02")
    receipt = send(kit, client_of(world.secretariat), content,
                   sign_b64(world.secretariat_seal, content, pss=True))
    kit.session.expire_all()
    assert first.legal_form == "NV" and (second.joint_committee, second.name) == ("124.01", "Bouw & Co")
    assert [r["employer"] for r in receipt.receipt["results"]] == [first.kbo_number, second.kbo_number]
    changes = kit.session.scalars(select(RecordChange).where(RecordChange.source == "file_message")).all()
    assert {c.certificate_id for c in changes} == {world.secretariat_certificate.id}
    # The records made for the employers name the provider through which it was done.
    direct = audit_records(kit.session, "repertory.direct_change")[-2:]
    assert {r.provider_enterprise_id for r in direct} == {world.secretariat.enterprise.id}
    assert {r.enterprise_id for r in direct} == {first.id, second.id}


def test_an_accepted_message_is_one_use_of_the_signers_certificate(kit, world):
    """One certificate.use per message, naming its reference; its direct changes write none of their own."""
    first, second = world.employer.enterprise, world.client.enterprise
    content = batch(world.secretariat.enterprise.kbo_number, {"employer": first.kbo_number, "legal_form": "NV"},
                    {"employer": second.kbo_number, "legal_form": "NV"})
    uses_before = len(audit_records(kit.session, "certificate.use"))
    receipt = send(kit, client_of(world.secretariat), content, sign_b64(world.secretariat_seal, content))
    uses = audit_records(kit.session, "certificate.use")[uses_before:]
    assert [use.details for use in uses] == [{
        "certificate_id": world.secretariat_certificate.id, "fingerprint": world.secretariat_certificate.fingerprint,
        "purpose": "file-message", "reference": receipt.reference, "message_type": "repertory-changes",
        "content_sha256": receipt.receipt["content_sha256"]}]
    assert uses[0].enterprise_id == world.secretariat.enterprise.id
    assert uses[0].application == "bestandsoverdracht"


def test_a_refused_message_is_no_use_of_the_certificate(kit, world):
    content = own_batch(world)
    uses_before = len(audit_records(kit.session, "certificate.use"))
    refused(kit, "digest-mismatch", lambda: send(kit, admin_of(world.employer), content.replace(b"Brugge", b"Gent"),
                                                 sign_b64(world.seal, content)))
    assert len(audit_records(kit.session, "certificate.use")) == uses_before


def test_provider_staff_member_assigned_to_the_employer_sends_under_the_mandate(kit, world):
    mandate = kit.session.scalars(select(kit_mandate_model()).where(
        kit_mandate_model().employer_id == world.employer.enterprise.id)).one()
    staff = kit.staff(world.secretariat)
    for application in ("bestandsoverdracht", "directe_wijziging"):
        kit.assign(world.secretariat, mandate, staff, application)
    content = batch(world.secretariat.enterprise.kbo_number,
                    {"employer": world.employer.enterprise.kbo_number, "city": "Aalst", "postal_code": "9300"})
    receipt = send(kit, subject_of(staff), content, sign_b64(world.secretariat_seal, content))
    assert receipt.message.sender_person_id == staff.id
    # ... but not signed with the employer's own certificate: acting under the mandate, the proof must
    # be the provider's (certificates.proof).
    content = batch(world.employer.enterprise.kbo_number,
                    {"employer": world.employer.enterprise.kbo_number, "city": "Ninove", "postal_code": "9400"})
    error = refused(kit, "certificate-not-of-enterprise",
                    lambda: send(kit, subject_of(staff), content, sign_b64(world.seal, content)))
    assert error.status == 403 and error.decision is not None and error.item == 1


def kit_mandate_model():
    from mandates.models import Mandate

    return Mandate


# --- refused, nothing applied ------------------------------------------------------------------


def test_file_altered_after_signing(kit, world):
    content = own_batch(world)
    signature = sign_b64(world.seal, content)
    altered = content.replace(b"Brugge", b"Brussel")
    error = refused(kit, "digest-mismatch", lambda: send(kit, admin_of(world.employer), altered, signature))
    assert error.field == "signature" and error.status == 422
    assert "changed after signing" in error.message


def test_file_altered_after_signing_without_signed_attributes(kit, world):
    content = own_batch(world)
    signature = sign_b64(world.seal, content, attributes=False)
    refused(kit, "signature-invalid",
            lambda: send(kit, admin_of(world.employer), content.replace(b"8000", b"8200"), signature))


def test_signature_made_with_another_key_than_the_certificates(kit, pki, world):
    content = own_batch(world)
    impostor = pki.seal("0999999999").key
    refused(kit, "signature-invalid",
            lambda: send(kit, admin_of(world.employer), content, sign_b64(world.seal, content, key=impostor)))


@pytest.mark.parametrize("signature, code", [
    (b"", "malformed-signature"),
    (b"not base64 at all!", "malformed-signature"),
    (base64.b64encode(b"\x30\x03\x02\x01\x01"), "malformed-signature"),
])
def test_garbage_signature(kit, world, signature, code):
    error = refused(kit, code, lambda: send(kit, admin_of(world.employer), own_batch(world), signature))
    assert error.field == "signature"


def test_signature_by_an_unregistered_certificate(kit, pki, world):
    unregistered = pki.seal(world.employer.enterprise.kbo_number)  # a valid seal, never registered
    content = own_batch(world)
    error = refused(kit, "unknown-signer",
                    lambda: send(kit, admin_of(world.employer), content, sign_b64(unregistered, content)))
    assert error.status == 403 and "not registered" in error.message


def test_unregistered_signer_without_certificate_in_the_signature(kit, pki, world):
    unregistered = pki.seal(world.employer.enterprise.kbo_number)
    content = own_batch(world)
    refused(kit, "unknown-signer", lambda: send(kit, admin_of(world.employer), content,
                                                sign_b64(unregistered, content, certificates=False)))


def test_signature_by_a_revoked_certificate(kit, world):
    cops.revoke_certificate(kit.session, world.certificate, "key compromised", by=kit.ctx)
    content = own_batch(world)
    error = refused(kit, "signer-not-active",
                    lambda: send(kit, admin_of(world.employer), content, sign_b64(world.seal, content)))
    assert "revoked" in error.message and error.status == 403


def test_signature_by_an_expired_certificate(kit, pki, trust, world, clock):
    issued = pki.seal(world.employer.enterprise.kbo_number, valid_until=DEFAULT_NOW + timedelta(days=1))
    cops.register_certificate(kit.session, world.employer.enterprise, issued.pem_with_chain, trust=trust, by=kit.ctx)
    clock.advance(days=2)
    content = own_batch(world)
    error = refused(kit, "signer-not-active",
                    lambda: send(kit, admin_of(world.employer), content, sign_b64(issued, content)))
    assert "expired" in error.message


def test_signature_by_another_enterprises_certificate_not_mandated(kit, world):
    """The employer's own administrator, but the file is signed by an unrelated enterprise's seal."""
    content = batch(world.stranger.enterprise.kbo_number,
                    {"employer": world.employer.enterprise.kbo_number, "city": "Lier", "postal_code": "2500"})
    error = refused(kit, "certificate-not-of-enterprise",
                    lambda: send(kit, admin_of(world.employer), content, sign_b64(world.stranger_seal, content)))
    assert error.decision.reason.code == "certificate-not-of-enterprise"


def test_unrelated_enterprise_sends_for_an_employer(kit, world):
    """The unrelated enterprise's own client and seal: no mandate of the employer."""
    content = batch(world.stranger.enterprise.kbo_number,
                    {"employer": world.employer.enterprise.kbo_number, "city": "Lier", "postal_code": "2500"})
    error = refused(kit, "no-mandate",
                    lambda: send(kit, client_of(world.stranger), content, sign_b64(world.stranger_seal, content)))
    assert world.employer.enterprise.kbo_display in error.message


def test_sender_named_in_the_message_must_be_the_signers_enterprise(kit, world):
    content = batch(world.secretariat.enterprise.kbo_number,
                    {"employer": world.employer.enterprise.kbo_number, "city": "Lier", "postal_code": "2500"})
    refused(kit, "sender-mismatch",
            lambda: send(kit, admin_of(world.employer), content, sign_b64(world.seal, content)))


def test_one_employer_the_sender_may_not_act_for_refuses_the_whole_batch(kit, world):
    mine, theirs = world.employer.enterprise, world.stranger.enterprise
    content = batch(world.secretariat.enterprise.kbo_number,
                    {"employer": mine.kbo_number, "legal_form": "NV"},
                    {"employer": theirs.kbo_number, "legal_form": "NV"})
    error = refused(kit, "no-mandate", lambda: send(kit, client_of(world.secretariat), content,
                                                    sign_b64(world.secretariat_seal, content)))
    assert error.item == 2
    kit.session.expire_all()
    assert mine.legal_form == "BV"  # the allowed employer's change was not applied either


def test_client_token_without_the_direct_change_scope(kit, world):
    content = batch(world.secretariat.enterprise.kbo_number,
                    {"employer": world.employer.enterprise.kbo_number, "legal_form": "NV"})
    refused(kit, "outside-token-scope",
            lambda: send(kit, client_of(world.secretariat, frozenset({"bestandsoverdracht"})), content,
                         sign_b64(world.secretariat_seal, content)))


def test_user_without_the_right(kit, world):
    from tests.factories import make_member
    from access.models import Role

    user = make_member(kit.session, world.employer.enterprise, Role.USER, by=world.employer.ctx)
    content = own_batch(world)
    refused(kit, "no-right", lambda: send(kit, user.subject, content, sign_b64(world.seal, content)))


def test_anonymous_sender(kit, world):
    from access.decision import ANONYMOUS

    content = own_batch(world)
    before, audited = repertory_state(kit.session), len(audit_records(kit.session, "filechannel.refuse"))
    with pytest.raises(MessageRefused) as caught:
        send(kit, ANONYMOUS, content, sign_b64(world.seal, content))
    assert (caught.value.code, caught.value.status) == ("login-required", 401)
    # refused before anything of the file is read: nothing written, not even an audit record
    assert repertory_state(kit.session) == before
    assert len(audit_records(kit.session, "filechannel.refuse")) == audited


def test_schema_error_in_one_item_of_an_otherwise_good_batch(kit, world):
    mine, client = world.employer.enterprise, world.client.enterprise
    content = batch(world.secretariat.enterprise.kbo_number,
                    {"employer": mine.kbo_number, "legal_form": "NV"},
                    {"employer": client.kbo_number, "postal_code": "90000"},
                    {"employer": client.kbo_number, "city": "Gent"})
    error = refused(kit, "schema-invalid", lambda: send(kit, client_of(world.secretariat), content,
                                                        sign_b64(world.secretariat_seal, content)))
    assert error.item == 2 and "PostalCode" in error.message and error.line == content.count(b"\n", 0,
                                                                                            content.index(b"90000")) + 1
    kit.session.expire_all()
    assert mine.legal_form == "BV"


def test_item_that_breaks_a_rule_of_the_record(kit, world):
    """Valid against the schema, but changes nothing: refused by the record's rules before anything is written."""
    mine = world.employer.enterprise
    content = batch(world.secretariat.enterprise.kbo_number,
                    {"employer": mine.kbo_number, "legal_form": "NV"},
                    {"employer": world.client.enterprise.kbo_number, "city": world.client.enterprise.city})
    error = refused(kit, "item-invalid", lambda: send(kit, client_of(world.secretariat), content,
                                                      sign_b64(world.secretariat_seal, content)))
    assert error.item == 2 and "changes nothing" in error.message


def test_unknown_and_duplicate_employers(kit, world):
    from access.validators import make_kbo

    sender = world.secretariat.enterprise.kbo_number
    unknown = batch(sender, {"employer": make_kbo(9_876_543), "city": "Gent"})
    refused(kit, "unknown-employer", lambda: send(kit, client_of(world.secretariat), unknown,
                                                  sign_b64(world.secretariat_seal, unknown)))
    bad_digits = batch(sender, {"employer": "0123456789", "city": "Gent"})
    refused(kit, "invalid-employer", lambda: send(kit, client_of(world.secretariat), bad_digits,
                                                  sign_b64(world.secretariat_seal, bad_digits)))
    kbo = world.employer.enterprise.kbo_number
    twice = batch(sender, {"employer": kbo, "city": "Gent"}, {"employer": kbo, "city": "Lier"})
    refused(kit, "duplicate-employer", lambda: send(kit, client_of(world.secretariat), twice,
                                                    sign_b64(world.secretariat_seal, twice)))


@pytest.mark.parametrize("content", [
    b"<RepertoryChanges xmlns='urn:be:portal:filechannel:repertory-changes:1'><Sender>",
    b"not xml at all",
    b"\xff\xfe<a/>",
])
def test_malformed_xml(kit, world, content):
    error = refused(kit, "malformed-xml",
                    lambda: send(kit, admin_of(world.employer), content, sign_b64(world.seal, content)))
    assert error.field == "content"


def test_external_entity_is_never_resolved(kit, world, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    kbo = world.employer.enterprise.kbo_number
    content = (f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY leak SYSTEM "file://{secret}">]>\n'
               f'<RepertoryChanges xmlns="{NAMESPACE}"><Sender><CompanyID>{kbo}</CompanyID></Sender>'
               f'<Change><Employer><CompanyID>{kbo}</CompanyID></Employer><City>&leak;</City></Change>'
               f'</RepertoryChanges>').encode()
    error = refused(kit, "doctype-forbidden",
                    lambda: send(kit, admin_of(world.employer), content, sign_b64(world.seal, content)))
    assert "TOP-SECRET-VALUE" not in error.message
    assert all("TOP-SECRET-VALUE" not in repr(r.details) for r in audit_records(kit.session))


def test_internal_entity_expansion_is_refused(kit, world):
    kbo = world.employer.enterprise.kbo_number
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 8))
    content = (f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY l0 "lol">{laughs}]>\n'
               f'<RepertoryChanges xmlns="{NAMESPACE}"><Sender><CompanyID>{kbo}</CompanyID></Sender>'
               f'<Change><Employer><CompanyID>{kbo}</CompanyID></Employer><City>&l7;</City></Change>'
               f'</RepertoryChanges>').encode()
    refused(kit, "doctype-forbidden",
            lambda: send(kit, admin_of(world.employer), content, sign_b64(world.seal, content)))


def test_unknown_message_type(kit, world):
    content = b'<?xml version="1.0"?>\n<Dimona xmlns="urn:example:dimona"><Anything/></Dimona>\n'
    error = refused(kit, "unknown-message-type",
                    lambda: send(kit, admin_of(world.employer), content, sign_b64(world.seal, content)))
    assert "RepertoryChanges" in error.message


def test_replayed_message(kit, world):
    content = own_batch(world)
    signature = sign_b64(world.seal, content)
    first = send(kit, admin_of(world.employer), content, signature)
    error = refused(kit, "replayed-message", lambda: send(kit, admin_of(world.employer), content, signature))
    assert first.reference in error.message and error.status == 409
    # A fresh signature of the same file is the same message.
    refused(kit, "replayed-message", lambda: send(kit, admin_of(world.employer), content,
                                                  sign_b64(world.seal, content, attributes=False)))


def test_empty_and_oversized_messages(kit, world):
    refused(kit, "empty-message", lambda: send(kit, admin_of(world.employer), b"", b""))
    huge = b"<a>" + b"x" * (512 * 1024) + b"</a>"
    refused(kit, "message-too-large", lambda: send(kit, admin_of(world.employer), huge, b""))


# --- message types plug in ------------------------------------------------------------------------


class FailingChanges(RepertoryChanges):
    """The repertory type, but applying its second item fails (as a database error would)."""

    def apply(self, session, employer, item: Item, checked, **kwargs):
        if item.number == 2:
            raise RuntimeError("disk full")
        return super().apply(session, employer, item, checked, **kwargs)


def test_a_failure_while_applying_leaves_nothing_of_the_batch(kit, world):
    mine = world.employer.enterprise
    content = batch(world.secretariat.enterprise.kbo_number,
                    {"employer": mine.kbo_number, "legal_form": "NV"},
                    {"employer": world.client.enterprise.kbo_number, "legal_form": "NV"})
    before = repertory_state(kit.session)
    with pytest.raises(RuntimeError):
        send(kit, client_of(world.secretariat), content, sign_b64(world.secretariat_seal, content),
             registry=Registry((FailingChanges(),)))
    assert repertory_state(kit.session) == before
    assert kit.session.get(Enterprise, mine.id).legal_form == "BV"


def test_registry_refuses_two_types_for_one_root_and_a_type_without_schema():
    registry = Registry((RepertoryChanges(),))
    with pytest.raises(ValueError, match="twice"):
        registry.register(RepertoryChanges())

    class Missing(MessageType):
        code, namespace, root, schema = "dimona", "urn:example:dimona", "Dimona", "no-such.xsd"

    with pytest.raises(ValueError, match="no schema"):
        registry.register(Missing())
    assert [t.code for t in default_registry().all()] == ["repertory-changes"]


def test_sign_helper_makes_what_the_channel_verifies(world):
    """The tests' own signatures are detached DER SignedData (a sanity check of the helper)."""
    from asn1crypto import cms as asn1_cms

    info = asn1_cms.ContentInfo.load(sign(world.seal, b"x"))
    assert info["content_type"].native == "signed_data"
    assert info["content"]["encap_content_info"]["content"].native is None
