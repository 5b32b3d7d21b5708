"""Receiving a message on the file channel: verify, validate, authorise, then apply all or nothing.

In this order, each step refusing with a clear reason and nothing of the batch applied:
  1. the detached CMS signature verifies over the file's exact bytes (certificates.cms);
  2. the signer's certificate is registered in the portal (by SHA-256 fingerprint) and active;
  3. the file is well-formed XML without a DTD, of a registered message type, valid against its XSD;
  4. it was not received before (FileMessage.content_sha256 is unique);
  5. the sender the message names is the signer's enterprise;
  6. the decision point allows the subject, per employer named in the message, to send it
     (bestandsoverdracht) and to do what it does (the type's application), with the signer's
     certificate as the proof of possession: certificates.proof requires it to be the employer's own,
     or its provider's when the subject acts under that provider's mandate;
  7. every item passes the rules of its type (checked before anything is written);
  8. the items are applied and the FileMessage is stored, in one savepoint, with the receipt; the
     signer's certificate use is audited (certificate.use, purpose "file-message").

A refusal is audited (kept even when the request is rolled back); the decisions are logged as the
gate logs them."""
from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import Any

from asn1crypto import pem
from cryptography import x509
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from access.catalogue import Catalogue
from access.clock import utcnow
from access.decision import Decision, Subject, decide, log_decision
from access.errors import DomainError
from access.models import Enterprise
from access.validators import format_kbo, normalise_kbo
from audit.operations import RequestContext, record
from certificates import cms
from certificates.models import Certificate, FileMessage
from certificates.proof import record_use
from certificates.validation import fingerprint
from filechannel.registry import Item, MessageType, Registry, default_registry
from filechannel.xml import XmlProblem, parse_message, validate

CHANNEL_APPLICATION = "bestandsoverdracht"
CHANNEL_ACTION = "send"
MAX_MESSAGE_BYTES = 512 * 1024
MAX_SCHEMA_ERRORS = 10


class MessageRefused(DomainError):
    """The message is refused; nothing of it is applied. `code` names the reason (problem type);
    `item` and `line` point into the message; `decision` is the decision point's refusal, if that
    is the reason."""

    def __init__(self, code: str, status: int, template: str, field: str | None = "content", *,
                 item: int | None = None, line: int | None = None, decision: Decision | None = None,
                 errors: list[dict[str, Any]] | None = None, **params: object) -> None:
        if item is not None:
            params["item"] = item  # the templates name it too
        super().__init__(template, field, **params)
        self.code, self.status = code, status
        self.item, self.line, self.decision = item, line, decision
        self.errors = errors or []


@dataclass
class Receipt:
    message: FileMessage
    receipt: dict[str, Any]

    @property
    def reference(self) -> str:
        return self.message.reference


@dataclass
class _Context:
    session: Session
    by: RequestContext
    digest: str
    certificate: Certificate | None = None
    message_type: MessageType | None = None

    def refuse(self, error: MessageRefused) -> MessageRefused:
        """Audit the refusal (it outlives the rollback) and hand the error back to be raised."""
        details: dict[str, Any] = {"code": error.code, "content_sha256": self.digest, "item": error.item,
                                   "line": error.line}
        if self.certificate is not None:
            details["certificate_id"] = self.certificate.id
            details["fingerprint"] = self.certificate.fingerprint
        if self.message_type is not None:
            details["message_type"] = self.message_type.code
        record(self.session, self.by, action="filechannel.refuse", outcome="failure",
               enterprise_id=self.certificate.enterprise_id if self.certificate is not None else None,
               application=CHANNEL_APPLICATION, reason=error.message, details=details, survive_rollback=True)
        return error


def receive_message(session: Session, content: bytes, signature_b64: bytes, *, subject: Subject,
                    by: RequestContext, catalogue: Catalogue, registry: Registry | None = None) -> Receipt:
    """Receive a signed message: `content` is the file's bytes, `signature_b64` its detached CMS
    signature (DER, base64; a PEM-armoured one is accepted too). Raises MessageRefused."""
    if subject.anonymous:
        # Nothing of an anonymous file is read (signature, replay lookup, enterprises) and nothing is
        # written: an anonymous client must neither learn about earlier messages nor fill the audit trail.
        raise MessageRefused("login-required", 401, "Log in, or use a bearer token of an API client, to send a file.",
                             None)
    registry = registry or default_registry()
    ctx = _Context(session, by, hashlib.sha256(content or b"").hexdigest())
    if not content:
        raise ctx.refuse(MessageRefused("empty-message", 422, "The message file is empty."))
    if len(content) > MAX_MESSAGE_BYTES:
        raise ctx.refuse(MessageRefused("message-too-large", 413, "A message file is at most %(limit)s KB.",
                                        limit=MAX_MESSAGE_BYTES // 1024))

    ctx.certificate = _signer(ctx, content, signature_b64)
    root, message_type = _parse(ctx, content, registry)
    ctx.message_type = message_type

    earlier = session.scalar(select(FileMessage.reference).where(FileMessage.content_sha256 == ctx.digest))
    if earlier is not None:
        raise ctx.refuse(MessageRefused("replayed-message", 409, "This message was received before (reference "
                                        "%(reference)s); a message is processed once.", reference=earlier))
    sender = message_type.sender_kbo(root)
    if sender != ctx.certificate.enterprise.kbo_number:
        raise ctx.refuse(MessageRefused(
            "sender-mismatch", 403, "The message names sender %(sender)s, but it is signed with a certificate of "
            "%(kbo)s.", sender=_display(sender), kbo=ctx.certificate.enterprise.kbo_display))

    items = message_type.items(root)
    employers = _employers(ctx, items)
    decisions = _authorise(ctx, subject, catalogue, message_type, employers)
    checked = [_check(ctx, message_type, employers[item.number], item) for item in items]
    return _apply(ctx, subject, message_type, items, employers, decisions, checked)


# --- the steps ------------------------------------------------------------------------------


def _signer(ctx: _Context, content: bytes, signature_b64: bytes) -> Certificate:
    """The registered, active certificate whose key made the signature."""
    try:
        der = _decode_signature(signature_b64)
        parsed = cms.parse_detached(der)
        verified = parsed.verify(content, _candidates(ctx.session, parsed.signer_id))
    except cms.CmsError as error:
        if error.code == "signer-not-found":
            raise ctx.refuse(MessageRefused("unknown-signer", 403, "The signer's certificate is not registered in "
                                            "the portal: %(detail)s.", "signature", detail=error.message)) from None
        raise ctx.refuse(MessageRefused(error.code, 422, "The signature is refused: %(detail)s.", "signature",
                                        detail=error.message)) from None
    thumbprint = fingerprint(verified.signer)
    certificate = ctx.session.scalar(select(Certificate).where(Certificate.fingerprint == thumbprint))
    if certificate is None:
        raise ctx.refuse(MessageRefused(
            "unknown-signer", 403, "The file is signed with a certificate that is not registered in the portal "
            "(%(subject)s, SHA-256 %(fingerprint)s): the local administrator registers it first.", "signature",
            subject=verified.signer.subject.rfc4514_string(), fingerprint=thumbprint))
    status = certificate.status_on(utcnow(), warn_days=0)
    if status != "active":
        ctx.certificate = certificate
        raise ctx.refuse(MessageRefused(
            "signer-not-active", 403, "The file is signed with certificate %(fingerprint)s of %(kbo)s, which is "
            "%(state)s.", "signature", fingerprint=thumbprint[:16], kbo=certificate.enterprise.kbo_display,
            state=status))
    return certificate


def _decode_signature(signature_b64: bytes) -> bytes:
    blob = signature_b64 if isinstance(signature_b64, bytes) else str(signature_b64).encode()
    if pem.detect(blob):
        return blob
    try:
        return base64.b64decode(b"".join(blob.split()), validate=True)
    except (binascii.Error, ValueError):
        raise cms.CmsError("malformed-signature", "the signature is not base64") from None


def _candidates(session: Session, signer_id: cms.SignerId) -> list[x509.Certificate]:
    """Registered certificates that may be the signer's, for a signature that carries no certificate."""
    if signer_id.serial_number is None:
        return []
    rows = session.scalars(select(Certificate.der).where(
        Certificate.serial_number == format(signer_id.serial_number, "x")[:64]))
    return [x509.load_der_x509_certificate(der) for der in rows]


def _parse(ctx: _Context, content: bytes, registry: Registry):
    try:
        root = parse_message(content)
    except XmlProblem as problem:
        raise ctx.refuse(MessageRefused(problem.code, 422, "The message is refused: %(detail)s.", line=problem.line,
                                        detail=problem.detail)) from None
    message_type = registry.for_root(root.tag)
    if message_type is None:
        known = ", ".join(f"{t.root} ({t.namespace})" for t in registry.all())
        raise ctx.refuse(MessageRefused("unknown-message-type", 422, "%(root)s is not a message type of the file "
                                        "channel; known: %(known)s.", line=root.sourceline, root=root.tag,
                                        known=known))
    problems = validate(root, message_type.schema_path)
    if problems:
        errors = [{"line": p.line, "item": _item_at(root, p.line), "detail": p.detail}
                  for p in problems[:MAX_SCHEMA_ERRORS]]
        first = errors[0]
        raise ctx.refuse(MessageRefused(
            "schema-invalid", 422, "The message does not follow the %(type)s schema (line %(at)s): %(detail)s",
            item=first["item"], line=first["line"], errors=errors, type=message_type.code, at=first["line"],
            detail=first["detail"]))
    return root, message_type


def _item_at(root, line: int | None) -> int | None:
    """The position (from 1) of the top-level element of the batch that holds `line`, if it is an item."""
    if line is None:
        return None
    found = None
    for number, child in enumerate((c for c in root if isinstance(c.tag, str) and c.tag.endswith("}Change")),
                                   start=1):
        if (child.sourceline or 0) <= line:
            found = number
    return found


def _employers(ctx: _Context, items: list[Item]) -> dict[int, Enterprise]:
    """The enterprise of each item (by item number). An unknown one, or one named twice, refuses."""
    found: dict[int, Enterprise] = {}
    seen: dict[str, int] = {}
    for item in items:
        try:
            number = normalise_kbo(item.employer_kbo)
        except DomainError as error:
            raise ctx.refuse(MessageRefused("invalid-employer", 422, "Item %(item)s: %(detail)s", item=item.number,
                                            line=item.line, detail=error.message)) from None
        if number in seen:
            raise ctx.refuse(MessageRefused(
                "duplicate-employer", 422, "Items %(first)s and %(item)s are both about %(kbo)s: send one change per "
                "employer in a message.", item=item.number, line=item.line, first=seen[number],
                kbo=format_kbo(number)))
        seen[number] = item.number
        enterprise = ctx.session.scalar(select(Enterprise).where(Enterprise.kbo_number == number))
        if enterprise is None:
            raise ctx.refuse(MessageRefused("unknown-employer", 422, "Item %(item)s: no enterprise %(kbo)s is "
                                            "registered.", item=item.number, line=item.line, kbo=format_kbo(number)))
        found[item.number] = enterprise
    return found


def _authorise(ctx: _Context, subject: Subject, catalogue: Catalogue, message_type: MessageType,
               employers: dict[int, Enterprise]) -> dict[int, Decision]:
    """Ask the decision point, per employer, with the signer's certificate as the proof of possession."""
    asks = [(CHANNEL_APPLICATION, CHANNEL_ACTION)]
    if message_type.application and message_type.application != CHANNEL_APPLICATION:
        asks.append((message_type.application, message_type.action))
    decisions: dict[int, Decision] = {}
    for number, enterprise in employers.items():  # one item per employer (see _employers)
        for application, action in asks:
            decision = decide(ctx.session, subject, enterprise.id, application, action, catalogue=catalogue,
                              context={"certificate_id": ctx.certificate.id})
            log_decision(ctx.session, ctx.by, decision)
            if not decision.allowed:
                status = 401 if decision.reason.code == "login-required" else 403
                raise ctx.refuse(MessageRefused(
                    decision.reason.code, status, "Item %(item)s, %(kbo)s: %(reason)s", item=number,
                    decision=decision, kbo=enterprise.kbo_display, reason=decision.reason.text))
            decisions[enterprise.id] = decision
    return decisions


def _check(ctx: _Context, message_type: MessageType, employer: Enterprise, item: Item) -> Any:
    try:
        return message_type.check(ctx.session, employer, item)
    except DomainError as error:
        raise ctx.refuse(MessageRefused(
            "item-invalid", 422, "Item %(item)s, %(kbo)s: %(detail)s", item=item.number, line=item.line,
            errors=[{"item": item.number, "line": item.line, "field": error.field, "detail": error.message}],
            kbo=employer.kbo_display, detail=error.message)) from None


def _apply(ctx: _Context, subject: Subject, message_type: MessageType, items: list[Item],
           employers: dict[int, Enterprise], decisions: dict[int, Decision], checked: list[Any]) -> Receipt:
    session, certificate = ctx.session, ctx.certificate
    now = utcnow()
    reference = f"FM-{now:%Y%m%d}-{secrets.token_hex(5).upper()}"
    try:
        with session.begin_nested():
            message = FileMessage(reference=reference, message_type=message_type.code, content_sha256=ctx.digest,
                                  sender_enterprise_id=certificate.enterprise_id, signer_certificate_id=certificate.id,
                                  sender_person_id=subject.person_id, received_at=now, items=len(items), receipt={})
            session.add(message)
            session.flush()  # a replay racing this one fails here, before anything is applied
            results = []
            for item, prepared in zip(items, checked):
                employer = employers[item.number]
                by = replace(ctx.by, provider_enterprise_id=decisions[employer.id].provider_enterprise_id)
                results.append(message_type.apply(session, employer, item, prepared, certificate=certificate, by=by,
                                                  reference=reference))
            receipt = {
                "reference": reference, "message_type": message_type.code, "received_at": now.isoformat(),
                "content_sha256": ctx.digest, "sender": certificate.enterprise.kbo_number,
                "signer": {"fingerprint": certificate.fingerprint, "subject": certificate.subject},
                "items": len(items), "results": results,
            }
            message.receipt = receipt
            session.flush()
    except IntegrityError:
        raise ctx.refuse(MessageRefused("replayed-message", 409, "This message was received before; a message is "
                                        "processed once.")) from None
    # One use of the signer's certificate for the whole message: its direct changes name the message's
    # reference instead of each writing a use of their own (repertory.operations.apply_direct_change).
    record_use(session, ctx.by, certificate, "file-message", application=CHANNEL_APPLICATION, reference=reference,
               message_type=message_type.code, content_sha256=ctx.digest)
    record(session, ctx.by, action="filechannel.receive", outcome="success", enterprise_id=certificate.enterprise_id,
           application=CHANNEL_APPLICATION,
           details={"reference": reference, "message_type": message_type.code, "items": len(items),
                    "content_sha256": ctx.digest, "employers": [employers[i.number].kbo_number for i in items]})
    return Receipt(message, receipt)


def _display(kbo: str) -> str:
    return format_kbo(kbo) if len(kbo) == 10 and kbo.isdigit() else kbo
