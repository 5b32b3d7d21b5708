"""The certificate tier's condition on the decision point: proof of possession of the private key of
an active qualified certificate of the enterprise, or of the provider acting for it under mandate.

The web layer proves nothing by itself: the proof comes from the channel — an OAuth 2 access token
obtained with a private_key_jwt assertion signed by the certificate's key, or a file whose detached
CMS signature verifies against the certificate — which puts the certificate's id in the decision's
context as `certificate_id`."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from access.clock import utcnow
from access.steps import Step
from access.validators import format_kbo
from certificates.models import Certificate


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
