"""The signed file channel and directe wijziging on the API.

POST /api/v1/files takes a structured message and its detached CMS signature, both base64 in a JSON
body; the signature is the proof of possession, so a logged-in user or an API client may send it
(filechannel.operations asks the decision point per employer named in the message).
POST /api/v1/enterprises/{id}/repertory/direct-changes changes an employer's record at once; the
certificate tier needs the proof from the request itself (a certificate-bound bearer token), so from
a browser session it is refused with certificate-required."""
from __future__ import annotations

import base64
import binascii
from datetime import datetime

from flask_babel import gettext
from pydantic import BaseModel, Field

from access import operations as ops
from access.errors import ValidationError
from certificates.models import Certificate
from filechannel.operations import MAX_MESSAGE_BYTES, MessageRefused, receive_message
from portal.api.registry import api_route
from portal.api.schemas import Input
from portal.context import catalogue, current_subject, request_context
from portal.database import get_session
from portal.errors import problem
from portal.gate import check
from portal.messages import error_text, reason_text
from repertory.models import RecordChange
from repertory.operations import apply_direct_change

DIRECT_CHANGE = "directe_wijziging"
# base64 of the largest message and of a signature, with room for the JSON around them.
FILES_MAX_BODY_BYTES = 1024 * 1024
_B64_MESSAGE = (MAX_MESSAGE_BYTES + 2) // 3 * 4 + 1024


class FileIn(Input):
    content: str = Field(max_length=_B64_MESSAGE + 16 * 1024,
                         description="The message file (XML), base64. The signature covers these exact bytes.")
    signature: str = Field(max_length=96 * 1024,
                           description="Its detached CMS/PKCS#7 SignedData (DER), base64: SHA-256, RSA (PKCS#1 "
                                       "v1.5 or PSS) or ECDSA, by a registered qualified seal certificate.")


class SignerOut(BaseModel):
    fingerprint: str
    subject: str


class FileReceiptOut(BaseModel):
    reference: str
    message_type: str
    received_at: datetime
    content_sha256: str
    sender: str
    signer: SignerOut
    items: int
    results: list[dict]


class DirectChangeIn(Input):
    name: str | None = Field(default=None, max_length=200)
    street: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=10)
    city: str | None = Field(default=None, max_length=100)
    legal_form: str | None = Field(default=None, max_length=60)
    joint_committee: str | None = Field(default=None, max_length=20)


class CertificateRefOut(BaseModel):
    id: int
    fingerprint: str
    subject: str


class DirectChangeOut(BaseModel):
    id: int
    enterprise_id: int
    source: str
    changed_at: datetime
    changes: dict
    certificate: CertificateRefOut


@api_route("/files", "POST", summary="Send a signed structured message (bestandsoverdracht); returns its receipt",
           tag="file channel", gate="self", body=FileIn, response=FileReceiptOut, status=201,
           max_body_bytes=FILES_MAX_BODY_BYTES)
def send_file(payload: FileIn):
    try:
        content = base64.b64decode("".join(payload.content.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("The content is not base64.", "content") from None
    try:
        receipt = receive_message(get_session(), content, payload.signature.encode(), subject=current_subject(),
                                  by=request_context(), catalogue=catalogue())
    except MessageRefused as refusal:
        return _refusal(refusal)
    return FileReceiptOut.model_validate(receipt.receipt)


def _refusal(refusal: MessageRefused):
    """problem+json: the reason's code as type; where in the message (item, line); the decision
    point's reason and path when it refused."""
    extra: dict = {key: value for key, value in (("item", refusal.item), ("line", refusal.line)) if value is not None}
    if refusal.errors:
        extra["errors"] = refusal.errors
    detail = error_text(refusal)
    if refusal.decision is not None:
        decision = refusal.decision
        extra.update(application=decision.application, path=decision.path_text)
        # The decision point's reason in the user's language, as the gate's refusals give it.
        detail = gettext("Item %(item)s, %(kbo)s: %(reason)s") % {
            "item": refusal.item, "kbo": refusal.params["kbo"], "reason": reason_text(decision.reason)}
    return problem(refusal.status, refusal.code, detail, field=refusal.field, **extra)


@api_route("/enterprises/<int:enterprise_id>/repertory/direct-changes", "POST",
           summary="Change an employer's record at once (directe wijziging; needs a certificate-bound token)",
           tag="repertory", gate=DIRECT_CHANGE, body=DirectChangeIn, response=DirectChangeOut, status=201)
def direct_change(enterprise_id: int, payload: DirectChangeIn):
    decision = check(DIRECT_CHANGE, "change", enterprise_id)
    session = get_session()
    certificate = session.get(Certificate, _proved_certificate_id(decision))
    enterprise = ops.get_enterprise(session, enterprise_id)
    change = apply_direct_change(session, enterprise, payload.model_dump(), certificate=certificate,
                                 by=request_context())
    return _change_out(change)


def _proved_certificate_id(decision) -> int:
    """The certificate whose key the request proved: the certificate tier's step of the path."""
    return next(step.params["certificate_id"] for step in decision.path if step.code == "certificate")


def _change_out(change: RecordChange) -> DirectChangeOut:
    certificate = change.certificate
    return DirectChangeOut(id=change.id, enterprise_id=change.enterprise_id, source=change.source,
                           changed_at=change.changed_at, changes=change.changes,
                           certificate=CertificateRefOut(id=certificate.id, fingerprint=certificate.fingerprint,
                                                         subject=certificate.subject))
