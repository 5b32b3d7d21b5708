"""Certificates of an enterprise (or provider) on the API: the local administrator registers and
revokes them and uploads CSRs (the decision point keeps `manage_certificates` for him alone);
his co-administrators may list them. The portal stores the public
part only; every check of a registration comes back with its outcome, and a refused certificate is
answered 422 with the same list and nothing stored (certificates.operations).

Certificate management is access management: a machine (bearer token) is refused by the decision
point ("API clients do not manage access"), like on the API clients. Key generation is deliberately
not offered here: the portal never hands a private key over a machine channel (the HTML page does it,
once, as a password-protected download)."""
from __future__ import annotations

import base64
import binascii
from datetime import datetime

from flask import jsonify

from access import operations as ops
from access.catalogue import ACCESS_MANAGEMENT
from access.clock import as_utc, utcnow
from access.errors import NotFound, ValidationError
from access.models import Enterprise
from certificates import operations as cops
from certificates.models import Certificate, CertificateRequest
from certificates.operations import CertificateRefused
from portal.api import certificate_schemas as c
from portal.api.registry import api_route
from portal.api.schemas import CheckOut
from portal.context import request_context
from portal.database import get_session
from portal.errors import problem
from portal.gate import check
from portal.messages import error_text
from portal.trust import current_trust_list

# The decision point's action for registering and revoking certificates and uploading CSRs (the
# HTML pages ask the same; a local administrator's own act, access.decision.LOCAL_ADMIN_ONLY_ACTIONS);
# listing is "view", like every list of access management.
MANAGE_CERTIFICATES = cops.MANAGE_CERTIFICATES


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite reads the stored UTC moments back naive: answer them the same on every database.
    return as_utc(moment) if moment is not None else None


def _usages(certificate: Certificate) -> list[str]:
    return [usage.strip() for usage in certificate.usages.split(",") if usage.strip()]


def _certificate_out(certificate: Certificate, successor_ids: list[int] | None = None) -> c.CertificateOut:
    return c.CertificateOut(
        id=certificate.id, enterprise_id=certificate.enterprise_id, status=certificate.status_on(utcnow()),
        subject=certificate.subject, issuer=certificate.issuer, serial_number=certificate.serial_number,
        fingerprint=certificate.fingerprint, organization_identifier=certificate.organization_identifier,
        not_before=_utc(certificate.not_before), not_after=_utc(certificate.not_after), usages=_usages(certificate),
        key=certificate.key_description, predecessor_id=certificate.predecessor_id,
        successor_ids=successor_ids or [], registered_at=_utc(certificate.registered_at),
        revoked_at=_utc(certificate.revoked_at), revocation_reason=certificate.revocation_reason,
        revocation_checked_at=_utc(certificate.revocation_checked_at),
        checks=[CheckOut.model_validate(check) for check in certificate.checks])


def _request_out(request: CertificateRequest) -> c.CertificateRequestOut:
    return c.CertificateRequestOut(
        id=request.id, enterprise_id=request.enterprise_id, subject=request.subject,
        public_key_sha256=request.public_key_sha256, generated_by_portal=request.generated_by_portal,
        created_at=_utc(request.created_at), status="pending" if request.fulfilled_by_id is None else "fulfilled",
        fulfilled_by_id=request.fulfilled_by_id, csr_pem=request.csr_pem)


def _enterprise(enterprise_id: int) -> Enterprise:
    return ops.get_enterprise(get_session(), enterprise_id)


# --- certificates -------------------------------------------------------------------------------


@api_route("/enterprises/<int:enterprise_id>/certificates", "GET",
           summary="The enterprise's certificates, with their status and registration checks",
           tag="certificates", gate=ACCESS_MANAGEMENT, response=list[c.CertificateOut])
def certificates_list(enterprise_id: int):
    check(ACCESS_MANAGEMENT, "view", enterprise_id)
    certificates = cops.certificates_of(get_session(), _enterprise(enterprise_id).id)
    successors: dict[int, list[int]] = {}
    for certificate in certificates:
        if certificate.predecessor_id is not None:
            successors.setdefault(certificate.predecessor_id, []).append(certificate.id)
    return jsonify([_certificate_out(cert, sorted(successors.get(cert.id, []))).model_dump(mode="json")
                    for cert in certificates])


@api_route("/enterprises/<int:enterprise_id>/certificates", "POST",
           summary="Register a qualified seal certificate (PEM with its chain, or DER); 422 with every check "
                   "when it is refused",
           tag="certificates", gate=ACCESS_MANAGEMENT, body=c.CertificateIn, response=c.CertificateOut, status=201,
           max_body_bytes=c.REGISTER_MAX_BODY_BYTES)
def certificate_register(enterprise_id: int, payload: c.CertificateIn):
    """Every check is run and returned with its outcome: the chain to a trust anchor of the portal's
    trust list, the validity period, key usage, key strength, no SHA-1, revocation (hard-fail), the
    qcStatements and policy of a qualified seal, the organizationIdentifier of this enterprise, and
    uniqueness. A certificate that fails any of them is refused (422, type certificate-refused, with
    `checks`) and nothing is stored."""
    check(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES, enterprise_id)
    session = get_session()
    enterprise = _enterprise(enterprise_id)
    blob = _certificate_bytes(payload)
    predecessor = _predecessor(enterprise, payload.successor_of)
    try:
        registration = cops.register_certificate(session, enterprise, blob, trust=current_trust_list(),
                                                 by=request_context(), successor_of=predecessor)
    except CertificateRefused as refusal:
        return _refused(refusal)
    return _certificate_out(registration.certificate)


def _certificate_bytes(payload: c.CertificateIn) -> bytes:
    if (payload.certificate is None) == (payload.certificate_der_base64 is None):
        raise ValidationError("Send the certificate either as PEM (certificate) or as DER in base64 "
                              "(certificate_der_base64).", "certificate")
    if payload.certificate is not None:
        return payload.certificate.encode()
    try:
        return base64.b64decode("".join(payload.certificate_der_base64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("The certificate is not base64.", "certificate_der_base64") from None


def _predecessor(enterprise: Enterprise, certificate_id: int | None) -> Certificate | None:
    if certificate_id is None:
        return None
    certificate = get_session().get(Certificate, certificate_id)
    if certificate is None or certificate.enterprise_id != enterprise.id:
        raise NotFound("Unknown certificate.", "successor_of")
    return certificate


def _refused(refusal: CertificateRefused):
    """The refusal's audit record survives the request's rollback (the operation marks it)."""
    return problem(422, "certificate-refused", error_text(refusal), field=refusal.field,
                   checks=[{"code": check.code, "ok": check.ok, "detail": check.detail} for check in refusal.checks])


@api_route("/enterprises/<int:enterprise_id>/certificates/<int:certificate_id>/revoke", "POST",
           summary="Revoke a certificate in the portal: it, its API clients and their tokens stop working at once",
           tag="certificates", gate=ACCESS_MANAGEMENT, body=c.RevokeIn, response=c.CertificateOut)
def certificate_revoke(enterprise_id: int, certificate_id: int, payload: c.RevokeIn):
    check(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES, enterprise_id)
    session = get_session()
    certificate = cops.get_certificate(session, _enterprise(enterprise_id), certificate_id)
    return _certificate_out(cops.revoke_certificate(session, certificate, payload.reason, by=request_context()))


@api_route("/enterprises/<int:enterprise_id>/certificates/<int:certificate_id>/retire", "POST",
           summary="End the overlap with an active successor: the certificate becomes `replaced` and stops working",
           tag="certificates", gate=ACCESS_MANAGEMENT, response=c.CertificateOut)
def certificate_retire(enterprise_id: int, certificate_id: int):
    check(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES, enterprise_id)
    session = get_session()
    certificate = cops.get_certificate(session, _enterprise(enterprise_id), certificate_id)
    return _certificate_out(cops.retire_certificate(session, certificate, by=request_context()))


# --- certificate signing requests -----------------------------------------------------------------


@api_route("/enterprises/<int:enterprise_id>/certificate-requests", "GET",
           summary="The enterprise's certificate signing requests, pending or fulfilled",
           tag="certificates", gate=ACCESS_MANAGEMENT, response=list[c.CertificateRequestOut])
def certificate_requests_list(enterprise_id: int):
    check(ACCESS_MANAGEMENT, "view", enterprise_id)
    session = get_session()
    enterprise = _enterprise(enterprise_id)
    requests = cops.certificate_requests_of(session, enterprise.id)
    return jsonify([_request_out(request).model_dump(mode="json") for request in requests])


@api_route("/enterprises/<int:enterprise_id>/certificate-requests", "POST",
           summary="Upload a CSR (PEM) the enterprise made with its own key; the API never generates keys",
           tag="certificates", gate=ACCESS_MANAGEMENT, body=c.CertificateRequestIn, response=c.CertificateRequestOut,
           status=201)
def certificate_request_upload(enterprise_id: int, payload: c.CertificateRequestIn):
    """The portal checks the request (its signature, the key's strength, this enterprise's
    organizationIdentifier) and keeps it until the certificate for its key is registered.

    Key generation is not offered on the API, on purpose: the portal never hands a private key over a
    machine channel. An enterprise without its own tooling generates its key and CSR on the
    certificates page of the portal, which hands the key over once as a password-protected download
    and keeps no copy."""
    check(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES, enterprise_id)
    request = cops.upload_csr(get_session(), _enterprise(enterprise_id), payload.csr.encode(), by=request_context())
    return _request_out(request)
