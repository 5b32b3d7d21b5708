"""The certificate tier's condition on the decision point: proof of possession of the private key of
an active qualified certificate of the enterprise, or of the provider acting for it under mandate.

The web layer proves nothing by itself: the proof comes from the channel — an OAuth 2 access token
obtained with a private_key_jwt assertion signed by the certificate's key, or a file whose detached
CMS signature verifies against the certificate — which puts the certificate's id in the decision's
context as `certificate_id`.

Each use of a certificate as such a proof is audit-logged as `certificate.use` (record_use), next to
its registration, refusal, replacement and revocation (certificates.operations)."""
from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.orm import Session

from access.clock import utcnow
from access.steps import Step
from access.validators import format_kbo
from audit.models import AuditRecord
from audit.operations import RequestContext, record
from certificates.models import Certificate

USE_ACTION = "certificate.use"
Purpose = Literal["token", "file-message", "direct-change"]


class ProofOfPossession:
    def check(self, session: Session, decision, context: dict[str, Any]) -> tuple[bool, Step]:
        """(True, a path step naming the certificate) or (False, the reason: exactly what is missing)."""
        certificate_id = context.get("certificate_id")
        if certificate_id is None:
            return False, Step("certificate-required",
                               "requires proof of possession of the private key of a registered qualified "
                               "certificate: use the API with a certificate-bound token, or a signed file")
        certificate = session.get(Certificate, certificate_id)
        owner_id = decision.provider_enterprise_id or decision.enterprise_id
        if certificate is None or certificate.enterprise_id != owner_id:
            return False, Step("certificate-not-of-enterprise",
                               "the certificate that proved possession is not one of the enterprise acting")
        status = certificate.status_on(utcnow(), warn_days=0)
        short = certificate.fingerprint[:16]
        if status != "active":
            return False, Step("certificate-not-active", f"certificate {short} is {status}",
                               {"certificate": short, "status": status})
        kbo = format_kbo(certificate.enterprise.kbo_number)
        # certificate_id: what the operation the proof allows records (e.g. the repertory's history).
        return True, Step("certificate", f"proved possession of the key of certificate {short} of {kbo}",
                          {"certificate": short, "kbo": kbo, "certificate_id": certificate.id})


def record_use(session: Session, by: RequestContext, certificate: Certificate, purpose: Purpose, *,
               enterprise_id: int | None = None, application: str | None = None,
               **reference: Any) -> AuditRecord:
    """Audit one use of `certificate` as proof of possession: a token issued on a client assertion
    signed with its key, a signed file message accepted, a direct change applied.

    `reference` names what the use produced (client_id and token_id, a message reference, a record
    change): never a token or an assertion themselves. `enterprise_id` is the enterprise acted for
    (default: the certificate's own)."""
    return record(session, by, action=USE_ACTION, outcome="success",
                  enterprise_id=enterprise_id if enterprise_id is not None else certificate.enterprise_id,
                  application=application,
                  details={"certificate_id": certificate.id, "fingerprint": certificate.fingerprint,
                           "purpose": purpose, **reference})
