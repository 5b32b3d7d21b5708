"""Registering, refusing, replacing and revoking certificates: what is stored and what is audited."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from audit.models import AuditRecord
from certificates import operations as cops
from certificates.models import Certificate, CertificateRequest, CertificateState, ExpiryNotice
from tests.conftest import DEFAULT_NOW


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_register_binds_the_certificate_and_records_each_check(factories, pki, trust, ctx):
    employer = factories.Employer()
    issued = pki.seal(employer.kbo_number, employer.name)
    registration = cops.register_certificate(factories.session, employer, issued.pem_with_chain, trust=trust, by=ctx)
    certificate = registration.certificate
    assert certificate.state is CertificateState.ACTIVE
    assert certificate.organization_identifier == f"NTRBE-{employer.kbo_number}"
    assert [c["code"] for c in certificate.checks][-1] == "unique"
    assert all(c["ok"] for c in certificate.checks)
    assert certificate.status_on(DEFAULT_NOW) == "active"
    assert certificate.status_on(certificate.not_after.replace(tzinfo=DEFAULT_NOW.tzinfo) - timedelta(days=10)) \
        == "expiring"
    # The same certificate cannot be bound to a second enterprise.
    other = factories.Employer()
    with pytest.raises(cops.CertificateRefused) as refused:
        cops.register_certificate(factories.session, other, issued.pem_with_chain, trust=trust, by=ctx)
    assert {c.code for c in refused.value.checks if not c.ok} >= {"unique", "identity"}


def test_refused_certificate_stores_nothing_but_the_audit_record(factories, pki, trust, ctx):
    employer = factories.Employer()
    issued = pki.seal("0999999999")  # another enterprise's identifier
    certificates, records = _count(factories.session, Certificate), _count(factories.session, AuditRecord)
    with pytest.raises(cops.CertificateRefused) as refused:
        cops.register_certificate(factories.session, employer, issued.pem, trust=trust, by=ctx)
    assert [c.code for c in refused.value.checks if not c.ok] == ["identity"]
    assert _count(factories.session, Certificate) == certificates
    assert _count(factories.session, AuditRecord) == records + 1  # the refusal, kept past the rollback too
    assert factories.session.info["survive_rollback"]


@pytest.mark.parametrize("blob", [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_garbage_is_a_clear_validation_error(factories, trust, ctx, blob):
    with pytest.raises(cops.ValidationError) as refused:
        cops.register_certificate(factories.session, factories.Employer(), blob, trust=trust, by=ctx)
    assert refused.value.field == "certificate"


def test_successor_and_revocation(factories, pki, trust, ctx):
    employer = factories.Employer()
    first = cops.register_certificate(factories.session, employer, pki.seal(employer.kbo_number).pem_with_chain,
                                      trust=trust, by=ctx).certificate
    second = cops.register_certificate(factories.session, employer, pki.seal(employer.kbo_number).pem_with_chain,
                                       trust=trust, by=ctx, successor_of=first).certificate
    assert second.predecessor_id == first.id and first.state is CertificateState.ACTIVE  # overlap: both work
    cops.revoke_certificate(factories.session, first, "key lost", by=ctx)
    assert first.state is CertificateState.REVOKED and not first.usable_on(DEFAULT_NOW)
    with pytest.raises(cops.Conflict):
        cops.revoke_certificate(factories.session, first, None, by=ctx)
    before = factories.session.scalar(select(func.count()).select_from(Certificate))
    with pytest.raises(cops.Conflict) as refused:  # a revoked certificate gets no successor
        cops.register_certificate(factories.session, employer, pki.seal(employer.kbo_number).pem_with_chain,
                                  trust=trust, by=ctx, successor_of=first)
    assert refused.value.field == "successor_of"
    assert factories.session.scalar(select(func.count()).select_from(Certificate)) == before


def test_csr_upload_and_generated_key_are_fulfilled_by_the_certificate(factories, pki, trust, ctx):
    employer = factories.Employer()
    generated = cops.generate_key_and_csr(factories.session, employer, "een lang wachtwoord", by=ctx)
    assert generated.filename.endswith(".p12") and generated.content
    from cryptography.hazmat.primitives.serialization import pkcs12

    key, _, _ = pkcs12.load_key_and_certificates(generated.content, b"een lang wachtwoord")
    issued = pki.seal(employer.kbo_number, key=key)
    certificate = cops.register_certificate(factories.session, employer, issued.pem_with_chain, trust=trust,
                                            by=ctx).certificate
    request = factories.session.get(CertificateRequest, generated.request.id)
    assert request.fulfilled_by_id == certificate.id
    with pytest.raises(cops.ValidationError):
        cops.generate_key_and_csr(factories.session, employer, "short", by=ctx)


def test_expiry_warnings_are_sent_once_per_threshold(factories, pki, trust, ctx):
    employer = factories.Employer()
    issued = pki.seal(employer.kbo_number, valid_until=DEFAULT_NOW + timedelta(days=29, hours=1))
    cops.register_certificate(factories.session, employer, issued.pem_with_chain, trust=trust, by=ctx)
    assert cops.send_expiry_warnings(factories.session, by=ctx, now=DEFAULT_NOW) == 1
    assert cops.send_expiry_warnings(factories.session, by=ctx, now=DEFAULT_NOW) == 0
    assert factories.session.scalar(select(ExpiryNotice.days_before)) == 30
    assert cops.send_expiry_warnings(factories.session, by=ctx, now=DEFAULT_NOW + timedelta(days=23)) == 1  # 7 days


def test_a_refused_certificates_subject_is_recorded_without_its_serial_number():
    """A Belgian eID certificate carries the holder's INSZ as serialNumber: not kept in the audit trail."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from certificates.operations import subject_without_personal_number

    eid = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
                     x509.NameAttribute(NameOID.COMMON_NAME, "An Peeters (Signature)"),
                     x509.NameAttribute(NameOID.SERIAL_NUMBER, "80010100167")])
    assert subject_without_personal_number(eid) == "CN=An Peeters (Signature),C=BE"
