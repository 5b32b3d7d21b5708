"""The first message type: a batch of changes to employers' records in the employer repertory,
applied as directe wijziging (at once, without officer review; the record history names the
certificate that signed the file). Schema: config/schemas/repertory-changes.xsd."""
from __future__ import annotations

from typing import Any

from lxml import etree
from sqlalchemy.orm import Session

from access.models import Enterprise
from audit.operations import RequestContext
from certificates.models import Certificate
from filechannel.registry import Item, MessageType
from repertory.operations import apply_direct_change, check_direct_change

NAMESPACE = "urn:be:portal:filechannel:repertory-changes:1"
# XML element → field of the record (access.operations.ENTERPRISE_FIELDS)
FIELDS = {"Name": "name", "Street": "street", "PostalCode": "postal_code", "City": "city",
          "LegalForm": "legal_form", "JointCommittee": "joint_committee"}


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


class RepertoryChanges(MessageType):
    code = "repertory-changes"
    namespace = NAMESPACE
    root = "RepertoryChanges"
    schema = "repertory-changes.xsd"
    application = "directe_wijziging"
    action = "change"

    def sender_kbo(self, root: etree._Element) -> str:
        return root.findtext(f"{_q('Sender')}/{_q('CompanyID')}").strip()

    def items(self, root: etree._Element) -> list[Item]:
        items = []
        for number, change in enumerate(root.iterchildren(_q("Change")), start=1):
            employer = change.findtext(f"{_q('Employer')}/{_q('CompanyID')}").strip()
            values = {field: change.findtext(_q(element)) for element, field in FIELDS.items()
                      if change.find(_q(element)) is not None}
            items.append(Item(number, change.sourceline, employer, values))
        return items

    def check(self, session: Session, employer: Enterprise, item: Item) -> dict[str, Any]:
        return check_direct_change(employer, item.data)

    def apply(self, session: Session, employer: Enterprise, item: Item, checked: Any, *, certificate: Certificate,
              by: RequestContext, reference: str) -> dict[str, Any]:
        change = apply_direct_change(session, employer, item.data, certificate=certificate, by=by,
                                     source="file_message", reference=reference)
        return {"item": item.number, "employer": employer.kbo_number, "record_change_id": change.id,
                "changes": change.changes}
