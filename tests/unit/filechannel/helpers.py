"""Making what a sender sends on the file channel (a batch of repertory changes, XML, and its
detached CMS signature, made with cryptography's PKCS7SignatureBuilder and the test PKI's keys), the
world of parties the tests start from, and a snapshot of what the channel could write."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import select
from sqlalchemy.orm import Session

from access.models import Enterprise
from certificates import operations as cops
from certificates.models import Certificate, FileMessage
from filechannel.repertory_changes import FIELDS, NAMESPACE
from repertory.models import ChangeProposal, RecordChange
from tests.pki import Issued
from tests.unit.mandates.helpers import Party

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def sign(issued: Issued, content: bytes, *, attributes: bool = True, pss: bool = False, certificates: bool = True,
         binary: bool = True, key=None, hash_algorithm=None) -> bytes:
    """A detached CMS signature (DER) of `content` by `issued` (its key unless `key` is given)."""
    options = [pkcs7.PKCS7Options.DetachedSignature]
    if binary:
        options.append(pkcs7.PKCS7Options.Binary)  # sign the exact bytes, not S/MIME's CRLF text form
    if not attributes:
        options.append(pkcs7.PKCS7Options.NoAttributes)
    if not certificates:
        options.append(pkcs7.PKCS7Options.NoCerts)
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    extra = {"rsa_padding": PSS} if pss else {}
    builder = builder.add_signer(issued.certificate, key or issued.key, hash_algorithm or hashes.SHA256(), **extra)
    return builder.sign(serialization.Encoding.DER, options)


def sign_b64(issued: Issued, content: bytes, **kwargs) -> bytes:
    return base64.b64encode(sign(issued, content, **kwargs))


def batch(sender_kbo: str, *changes: dict, reference: str | None = None) -> bytes:
    """A repertory-changes message: each change is {"employer": kbo, field: value, ...}."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<RepertoryChanges xmlns="{NAMESPACE}">',
             f"  <Sender><CompanyID>{sender_kbo}</CompanyID></Sender>"]
    if reference:
        lines.append(f"  <SenderReference>{escape(reference)}</SenderReference>")
    for change in changes:
        lines.append("  <Change>")
        lines.append(f"    <Employer><CompanyID>{change['employer']}</CompanyID></Employer>")
        for element, field in FIELDS.items():
            if field in change:
                lines.append(f"    <{element}>{escape(change[field])}</{element}>")
        lines.append("  </Change>")
    lines.append("</RepertoryChanges>")
    return ("\n".join(lines) + "\n").encode()


def repertory_state(session: Session) -> dict[str, list[tuple]]:
    """Every row the file channel could write (besides the audit trail): enterprises, the record
    history, proposals, certificates and received messages."""
    session.flush()
    state = {}
    for model in (Enterprise, RecordChange, ChangeProposal, Certificate, FileMessage):
        table = model.__table__
        state[table.name] = [tuple(row) for row in session.execute(
            select(table).order_by(*table.primary_key.columns)).all()]
    return state


@dataclass
class World:
    employer: Party          # an employer with its own local administrator and certificate
    seal: Issued
    certificate: Certificate
    secretariat: Party       # its erkend sociaal secretariaat (affiliation: the default groups)
    secretariat_seal: Issued
    secretariat_certificate: Certificate
    client: Party            # a second client employer of the secretariat
    stranger: Party          # an employer unrelated to the others, with its own certificate
    stranger_seal: Issued
    stranger_certificate: Certificate


def register(kit, pki, trust, party: Party, key=None) -> tuple[Issued, Certificate]:
    issued = pki.seal(party.enterprise.kbo_number, party.enterprise.name, key=key)
    certificate = cops.register_certificate(kit.session, party.enterprise, issued.pem_with_chain, trust=trust,
                                            by=kit.ctx).certificate
    return issued, certificate
