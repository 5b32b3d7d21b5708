"""Operations on certificates: register (with every check shown), CSRs, key generation handed over
once, successors, revocation, expiry warnings, revocation re-checks. Like every operation: rules,
flush, audit record in the same transaction, no commit."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from access.clock import as_utc, utcnow
from access.errors import Conflict, NotFound, ValidationError
from access.models import Enterprise
from access.operations import _notify, current_local_admin
from audit.operations import RequestContext, record
from certificates.models import Certificate, CertificateRequest, CertificateState, ExpiryNotice
from certificates.qc import ORGANIZATION_IDENTIFIER
from certificates.validation import (
    Check,
    TrustList,
    fingerprint,
    key_description,
    key_usages,
    organization_identifier,
    parse_certificates,
    validate_certificate,
)

EXPIRY_WARNING_DAYS = (60, 30, 14, 7, 1)
# The decision point's actions on access management that guard certificates and API clients.
MANAGE_CERTIFICATES = "manage_certificates"
MANAGE_API_CLIENTS = "manage_api_clients"
MAX_UPLOAD_BYTES = 64 * 1024


class CertificateRefused(ValidationError):
    """The certificate failed one or more checks; nothing about it is stored (but the refusal is audited)."""

    def __init__(self, checks: list[Check]) -> None:
        failed = [check for check in checks if not check.ok]
        super().__init__("The certificate was refused: %(failed)s.", "certificate",
                         failed=", ".join(check.code for check in failed))
        self.checks = checks


@dataclass
class Registration:
    certificate: Certificate
    checks: list[Check]


def _parse_upload(blob: bytes) -> tuple[x509.Certificate, list[x509.Certificate]]:
    if not blob:
        raise ValidationError("Choose a certificate file (PEM or DER).", "certificate")
    if len(blob) > MAX_UPLOAD_BYTES:
        raise ValidationError("A certificate file is at most 64 KB.", "certificate")
    try:
        certificates = parse_certificates(blob)
    except ValueError:
        raise ValidationError("This is not an X.509 certificate in PEM or DER.", "certificate") from None
    if not certificates:
        raise ValidationError("This is not an X.509 certificate in PEM or DER.", "certificate")
    return certificates[0], certificates[1:]


def certificate_snapshot(certificate: Certificate) -> dict[str, object]:
    return {"fingerprint": certificate.fingerprint, "subject": certificate.subject, "state": certificate.state.value,
            "not_after": certificate.not_after.isoformat(), "predecessor_id": certificate.predecessor_id}


def subject_without_personal_number(name: x509.Name) -> str:
    """The subject of a refused certificate as recorded: without its serialNumber attribute, which on a
    Belgian eID (a personal certificate uploaded by mistake) is the holder's INSZ."""
    return x509.Name([rdn for rdn in name.rdns
                      if not any(attribute.oid == NameOID.SERIAL_NUMBER for attribute in rdn)]).rfc4514_string()


def register_certificate(session: Session, enterprise: Enterprise, blob: bytes, *, trust: TrustList,
                         by: RequestContext, successor_of: Certificate | None = None,
                         now: datetime | None = None) -> Registration:
    """Validate and bind a certificate (the public part, with its chain) to the enterprise."""
    now = now or utcnow()
    cert, chain = _parse_upload(blob)
    validation = validate_certificate(cert, chain, kbo=enterprise.kbo_number, trust=trust, now=now)
    thumbprint = fingerprint(cert)
    bound = session.scalar(select(Certificate).where(Certificate.fingerprint == thumbprint))
    if bound is not None and bound.enterprise_id == enterprise.id:
        raise Conflict("This certificate is already registered for %(kbo)s.", "certificate",
                       kbo=enterprise.kbo_display)
    unique = Check("unique", bound is None,
                   "not bound to another enterprise" if bound is None else "already bound to another enterprise")
    checks = [*validation.checks, unique]
    if successor_of is not None and successor_of.enterprise_id != enterprise.id:
        raise NotFound("Unknown certificate.", "successor_of")
    if successor_of is not None and successor_of.status_on(now, warn_days=0) != "active":
        # A successor overlaps a certificate that still works; after expiry or revocation it is a new one.
        raise Conflict("Only an active certificate can get a successor; this one is %(status)s.", "successor_of",
                       status=successor_of.status_on(now, warn_days=0))
    if not all(check.ok for check in checks):
        record(session, by, action="certificate.refuse", outcome="failure", enterprise_id=enterprise.id,
               reason="; ".join(f"{c.code}: {c.detail}" for c in checks if not c.ok),
               details={"fingerprint": thumbprint, "subject": subject_without_personal_number(cert.subject),
                        "checks": [_check_out(c) for c in checks]},
               survive_rollback=True)
        raise CertificateRefused(checks)

    certificate = Certificate(
        enterprise_id=enterprise.id, fingerprint=thumbprint, der=cert.public_bytes(serialization.Encoding.DER),
        chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain).decode() or None,
        subject=cert.subject.rfc4514_string()[:500], issuer=cert.issuer.rfc4514_string()[:500],
        serial_number=format(cert.serial_number, "x")[:64], organization_identifier=organization_identifier(cert),
        key_description=key_description(cert), usages=", ".join(sorted(key_usages(cert))),
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, state=CertificateState.ACTIVE,
        checks=[_check_out(c) for c in checks], predecessor_id=successor_of.id if successor_of else None,
        registered_by_id=by.actor_person_id, registered_at=now, revocation_checked_at=now)
    session.add(certificate)
    session.flush()
    _fulfil_request(session, enterprise, cert, certificate)
    record(session, by, action="certificate.register", outcome="success", enterprise_id=enterprise.id,
           details={"certificate_id": certificate.id, "after": certificate_snapshot(certificate),
                    "successor_of": successor_of.id if successor_of else None})
    return Registration(certificate, checks)


def _check_out(check: Check) -> dict[str, object]:
    return {"code": check.code, "ok": check.ok, "detail": check.detail}


def _public_key_sha256(public_key) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return digest.finalize().hex()


def _fulfil_request(session: Session, enterprise: Enterprise, cert: x509.Certificate,
                    certificate: Certificate) -> None:
    request = session.scalar(select(CertificateRequest).where(
        CertificateRequest.enterprise_id == enterprise.id, CertificateRequest.fulfilled_by_id.is_(None),
        CertificateRequest.public_key_sha256 == _public_key_sha256(cert.public_key())))
    if request is not None:
        request.fulfilled_by_id = certificate.id
        session.flush()


def get_certificate(session: Session, enterprise: Enterprise, certificate_id: int) -> Certificate:
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or certificate.enterprise_id != enterprise.id:
        raise NotFound("Unknown certificate.", "certificate_id")
    return certificate


def certificates_of(session: Session, enterprise_id: int) -> list[Certificate]:
    return list(session.scalars(select(Certificate).where(Certificate.enterprise_id == enterprise_id)
                                .order_by(Certificate.not_after.desc())))


def certificate_requests_of(session: Session, enterprise_id: int, *, pending_only: bool = False
                            ) -> list[CertificateRequest]:
    """The enterprise's CSRs, newest first; pending: not yet fulfilled by a registered certificate."""
    query = select(CertificateRequest).where(CertificateRequest.enterprise_id == enterprise_id)
    if pending_only:
        query = query.where(CertificateRequest.fulfilled_by_id.is_(None))
    return list(session.scalars(query.order_by(CertificateRequest.created_at.desc(), CertificateRequest.id.desc())))


def expiring_certificates(session: Session, enterprise_id: int, now: datetime, *, days_before: int,
                          days_after: int) -> list[Certificate]:
    """Active certificates of the enterprise expiring within `days_before`, or expired in the last `days_after`."""
    return list(session.scalars(select(Certificate).where(
        Certificate.enterprise_id == enterprise_id, Certificate.state == CertificateState.ACTIVE,
        Certificate.not_after <= now + timedelta(days=days_before),
        Certificate.not_after >= now - timedelta(days=days_after)).order_by(Certificate.not_after)))


def revoke_certificate(session: Session, certificate: Certificate, reason: str | None, *, by: RequestContext,
                       state: CertificateState = CertificateState.REVOKED) -> Certificate:
    """Revoked (or retired after a successor) in the portal: it stops working at once."""
    if certificate.state is not CertificateState.ACTIVE:
        raise Conflict("This certificate is %(status)s already.", "certificate_id", status=certificate.state.value)
    before = certificate_snapshot(certificate)
    certificate.state = state
    certificate.revoked_at, certificate.revoked_by_id = utcnow(), by.actor_person_id
    certificate.revocation_reason = (reason or "").strip()[:200] or None
    session.flush()
    record(session, by, action=f"certificate.{'revoke' if state is CertificateState.REVOKED else 'replace'}",
           outcome="success", enterprise_id=certificate.enterprise_id,
           details={"certificate_id": certificate.id, "before": before, "after": certificate_snapshot(certificate),
                    "reason": certificate.revocation_reason})
    return certificate


def active_successor(session: Session, certificate: Certificate, now: datetime | None = None) -> Certificate | None:
    """A successor of this certificate that works now (registered, active, inside its validity period)."""
    now = now or utcnow()
    return next((s for s in session.scalars(select(Certificate).where(Certificate.predecessor_id == certificate.id,
                                                                       Certificate.state == CertificateState.ACTIVE)
                                            .order_by(Certificate.id)) if s.usable_on(now)), None)


def retire_certificate(session: Session, certificate: Certificate, *, by: RequestContext,
                       now: datetime | None = None) -> Certificate:
    """End the overlap: the predecessor of an active successor is `replaced` and stops working at once
    (its API clients too: bind them to the successor)."""
    successor = active_successor(session, certificate, now)
    if successor is None:
        raise Conflict("Retire a certificate only once its successor is registered and active.", "certificate_id")
    return revoke_certificate(session, certificate, f"replaced by #{successor.id} ({successor.fingerprint[:16]})",
                              by=by, state=CertificateState.REPLACED)


# --- CSRs and keys ---------------------------------------------------------------------------


def upload_csr(session: Session, enterprise: Enterprise, pem: bytes, *, by: RequestContext) -> CertificateRequest:
    """Check a CSR (its signature, key strength, this enterprise's identifier) and keep it."""
    try:
        csr = x509.load_pem_x509_csr(pem) if b"-----BEGIN" in pem else x509.load_der_x509_csr(pem)
    except ValueError:
        raise ValidationError("This is not a certificate signing request (PKCS#10) in PEM or DER.", "csr") from None
    if not csr.is_signature_valid:
        raise ValidationError("The request's signature does not match its key.", "csr")
    identifier = csr.subject.get_attributes_for_oid(x509.ObjectIdentifier(ORGANIZATION_IDENTIFIER))
    expected = {f"NTRBE-{enterprise.kbo_number}", f"VATBE-{enterprise.kbo_number}"}
    if not identifier or str(identifier[0].value) not in expected:
        raise ValidationError("The request's organizationIdentifier must be NTRBE-%(kbo)s or VATBE-%(kbo)s.", "csr",
                              kbo=enterprise.kbo_number)
    _require_strong_key(csr.public_key())
    return _keep_request(session, enterprise, csr, generated=False, by=by)


def _require_strong_key(public_key) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= 2048:
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in ("secp256r1", "secp384r1"):
        return
    raise ValidationError("The key must be RSA of at least 2048 bits or EC P-256/P-384.", "csr")


def _keep_request(session, enterprise, csr, *, generated, by) -> CertificateRequest:
    request = CertificateRequest(
        enterprise_id=enterprise.id, csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
        public_key_sha256=_public_key_sha256(csr.public_key()), subject=csr.subject.rfc4514_string()[:500],
        generated_by_portal=generated, created_by_id=by.actor_person_id, created_at=utcnow())
    session.add(request)
    session.flush()
    record(session, by, action="certificate.csr", outcome="success", enterprise_id=enterprise.id,
           details={"request_id": request.id, "generated_by_portal": generated, "subject": request.subject})
    return request


@dataclass
class GeneratedKey:
    request: CertificateRequest
    filename: str
    content: bytes
    media_type: str


def generate_key_and_csr(session: Session, enterprise: Enterprise, password: str, *, by: RequestContext,
                         form: str = "pkcs12") -> GeneratedKey:
    """For an enterprise without its own tooling: a P-256 key and its CSR. The key is handed over
    once, encrypted with the administrator's password, and the portal keeps no copy."""
    if len(password or "") < 12:
        raise ValidationError("Protect the key with a password of at least 12 characters.", "password")
    if form not in ("pkcs12", "pem"):
        raise ValidationError("Choose PKCS#12 or encrypted PEM.", "form")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, enterprise.name[:64]),
        x509.NameAttribute(x509.ObjectIdentifier(ORGANIZATION_IDENTIFIER), f"NTRBE-{enterprise.kbo_number}"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{enterprise.name[:50]} seal"),
    ])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    request = _keep_request(session, enterprise, csr, generated=True, by=by)
    encryption = serialization.BestAvailableEncryption(password.encode())
    if form == "pkcs12":
        content = pkcs12.serialize_key_and_certificates(f"{enterprise.kbo_number}-seal".encode(), key, None, None,
                                                        encryption)
        return GeneratedKey(request, f"{enterprise.kbo_number}-seal-key.p12", content, "application/x-pkcs12")
    content = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return GeneratedKey(request, f"{enterprise.kbo_number}-seal-key.pem", content, "application/x-pem-file")


def _notify_admin_of(session: Session, enterprise: Enterprise, kind: str, subject: str, body: str) -> None:
    admin = current_local_admin(session, enterprise.id)
    if admin is not None:
        _notify(session, admin.person, kind, subject, body)


# --- lifecycle --------------------------------------------------------------------------------


def send_expiry_warnings(session: Session, *, by: RequestContext, now: datetime | None = None) -> int:
    """Warn the local administrator at 60, 30, 14, 7 and 1 days before expiry (each once)."""
    now = now or utcnow()
    sent = 0
    horizon = now + timedelta(days=max(EXPIRY_WARNING_DAYS))
    for certificate in session.scalars(select(Certificate).where(
            Certificate.state == CertificateState.ACTIVE, Certificate.not_after > now,
            Certificate.not_after <= horizon)):
        days_left = (as_utc(certificate.not_after) - now).days + 1
        due = [d for d in EXPIRY_WARNING_DAYS if days_left <= d]
        if not due:
            continue
        threshold = min(due)
        already = session.scalar(select(ExpiryNotice.id).where(
            ExpiryNotice.certificate_id == certificate.id, ExpiryNotice.days_before == threshold))
        if already:
            continue
        session.add(ExpiryNotice(certificate_id=certificate.id, days_before=threshold, sent_on=now.date()))
        _notify_admin_of(session, certificate.enterprise, "certificate-expiry",
                         f"Certificate expires in {days_left} days",
                         f"The certificate {certificate.subject} of {certificate.enterprise.name} expires on "
                         f"{certificate.not_after:%Y-%m-%d}. Register its successor in the portal.")
        record(session, by, action="certificate.expiry_warning", outcome="success",
               enterprise_id=certificate.enterprise_id,
               details={"certificate_id": certificate.id, "days_before": threshold})
        sent += 1
    session.flush()
    return sent


@dataclass
class RecheckResult:
    checked: int
    revoked: list[Certificate]
    # Status unknown (stale or missing CRL, no OCSP answer): not stamped as checked, audited, and the
    # CLI exits non-zero so that cron reports it; the certificate keeps working until an operator acts.
    undetermined: list[tuple[Certificate, str]] = field(default_factory=list)


def recheck_revocation(session: Session, trust: TrustList, *, by: RequestContext,
                       now: datetime | None = None) -> RecheckResult:
    """Re-check every active certificate against the trust list's current CRLs/OCSP responses."""
    now = now or utcnow()
    revoked, undetermined = [], []
    certificates = list(session.scalars(select(Certificate).where(Certificate.state == CertificateState.ACTIVE)))
    for certificate in certificates:
        cert = x509.load_der_x509_certificate(certificate.der)
        chain = parse_certificates(certificate.chain_pem.encode()) if certificate.chain_pem else []
        validation = validate_certificate(cert, chain, kbo=certificate.enterprise.kbo_number, trust=trust, now=now)
        revocation = next(check for check in validation.checks if check.code == "revocation")
        if revocation.ok:
            certificate.revocation_checked_at = now
        elif revocation.detail.startswith("revoked"):
            certificate.revocation_checked_at = now
            revoke_certificate(session, certificate, f"revoked by its CA ({revocation.detail})"[:200], by=by)
            revoked.append(certificate)
        else:
            undetermined.append((certificate, revocation.detail))
            record(session, by, action="certificate.recheck_failed", outcome="failure",
                   enterprise_id=certificate.enterprise_id, reason=revocation.detail[:500],
                   details={"certificate_id": certificate.id, "fingerprint": certificate.fingerprint})
    session.flush()
    return RecheckResult(len(certificates), revoked, undetermined)
