"""Request and response bodies of the certificates API (certificates of an enterprise and its CSRs)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from certificates.operations import MAX_UPLOAD_BYTES
from portal.api.schemas import CheckOut, Input

# The operation refuses more than MAX_UPLOAD_BYTES with a clear message; the schema leaves room for
# PEM line breaks and base64 so that the operation, not the parser, answers an oversized file.
_TEXT_LIMIT = 2 * MAX_UPLOAD_BYTES
REGISTER_MAX_BODY_BYTES = 3 * MAX_UPLOAD_BYTES


class CertificateIn(Input):
    certificate: str | None = Field(default=None, max_length=_TEXT_LIMIT,
                                    description="The certificate in PEM; it may be followed by its chain "
                                                "(intermediate certificates, PEM). Send this or "
                                                "certificate_der_base64.")
    certificate_der_base64: str | None = Field(default=None, max_length=_TEXT_LIMIT,
                                               description="The certificate in DER, base64 (without its chain).")
    successor_of: int | None = Field(default=None, gt=0, le=2**31 - 1,
                                     description="Register it as the successor of this certificate of the "
                                                 "enterprise (both stay valid during the overlap).")


class RevokeIn(Input):
    reason: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class CertificateRequestIn(Input):
    csr: str = Field(max_length=_TEXT_LIMIT,
                     description="A PKCS#10 certificate signing request in PEM. Its organizationIdentifier must be "
                                 "NTRBE-<KBO> of the enterprise; RSA of at least 2048 bits or EC P-256/P-384.")


class CertificateOut(BaseModel):
    id: int
    enterprise_id: int
    status: str = Field(description="active, expiring (within 60 days), expired, not-yet-valid, revoked or replaced")
    subject: str
    issuer: str
    serial_number: str = Field(description="hexadecimal")
    fingerprint: str = Field(description="SHA-256 thumbprint (hex): the `kid` of an API client's assertions")
    organization_identifier: str
    not_before: datetime
    not_after: datetime
    usages: list[str]
    key: str = Field(description="e.g. EC P-256, RSA 3072")
    predecessor_id: int | None
    successor_ids: list[int]
    registered_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    revocation_checked_at: datetime | None
    checks: list[CheckOut] = Field(description="The checks at registration, each with its outcome")


class CertificateRequestOut(BaseModel):
    id: int
    enterprise_id: int
    subject: str
    public_key_sha256: str
    generated_by_portal: bool
    created_at: datetime
    status: str = Field(description="pending until a certificate for its key is registered, then fulfilled")
    fulfilled_by_id: int | None
    csr_pem: str
