"""Passkeys and security keys (WebAuthn, with the `webauthn` package).

A ceremony's challenge is kept on the server-side session that asked for it, with a purpose and a
two-minute life, and is cleared by its first answer: an assertion replayed, or answered for another
purpose, is refused. The relying party (host name and origin) is checked by the library; an assertion
whose signature counter does not grow (when the authenticator keeps one) is a cloned key and refused.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from access.clock import as_utc, utcnow
from access.errors import NotFound, ValidationError
from access.models import Account, UserSession, WebAuthnCredential
from access.operations import LoginPolicy, account_locked, count_account_failure
from access.second_factor import passkeys_of, status
from audit.operations import RequestContext, record, survive

CHALLENGE_LIFETIME = timedelta(minutes=2)
REFUSED = "The passkey could not be verified (wrong site, expired or replayed request, or unknown key)."


@dataclass(frozen=True)
class RelyingParty:
    id: str  # the host name, e.g. portal.example.be
    name: str
    origin: str  # e.g. https://portal.example.be


def _remember_challenge(row: UserSession, challenge: bytes, purpose: str) -> None:
    row.challenge = bytes_to_base64url(challenge)
    row.challenge_purpose = purpose
    row.challenge_expires_at = utcnow() + CHALLENGE_LIFETIME


def _take_challenge(row: UserSession, purpose: str) -> bytes | None:
    """The session's pending challenge for this purpose, spent by this call whatever the outcome."""
    challenge, kind, expires = row.challenge, row.challenge_purpose, row.challenge_expires_at
    row.challenge = row.challenge_purpose = row.challenge_expires_at = None
    if not challenge or kind != purpose or expires is None or as_utc(expires) < utcnow():
        return None
    return base64url_to_bytes(challenge)


def _spend_durably(session: Session, row: UserSession) -> None:
    """A refused answer still spends the challenge, even though the refused request is rolled back."""
    row_id = row.id
    survive(session, lambda s: s.execute(update(UserSession).where(UserSession.id == row_id).values(
        challenge=None, challenge_purpose=None, challenge_expires_at=None)))


def registration_options(session: Session, account: Account, row: UserSession, rp: RelyingParty) -> str:
    options = generate_registration_options(
        rp_id=rp.id, rp_name=rp.name, user_name=account.login_name, user_id=f"account-{account.id}".encode(),
        user_display_name=account.person.full_name,
        authenticator_selection=AuthenticatorSelectionCriteria(resident_key=ResidentKeyRequirement.PREFERRED,
                                                               user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(key.credential_id))
                             for key in passkeys_of(session, account)])
    _remember_challenge(row, options.challenge, "register")
    session.flush()
    return options_to_json(options)


def _parse(credential: str | dict) -> dict:
    if isinstance(credential, dict):
        return credential
    try:
        parsed = json.loads(credential)
    except (TypeError, ValueError):
        raise ValidationError(REFUSED, "credential") from None
    if not isinstance(parsed, dict):
        raise ValidationError(REFUSED, "credential")
    return parsed


def register(session: Session, account: Account, row: UserSession, rp: RelyingParty, credential: str | dict,
             name: str, *, by: RequestContext) -> WebAuthnCredential:
    name = (name or "").strip()[:100] or "Passkey"
    challenge = _take_challenge(row, "register")
    try:
        if challenge is None:
            raise InvalidRegistrationResponse("no pending challenge")
        verified = verify_registration_response(credential=_parse(credential), expected_challenge=challenge,
                                                expected_rp_id=rp.id, expected_origin=rp.origin)
    except (InvalidRegistrationResponse, ValidationError, ValueError, KeyError, TypeError) as error:
        _spend_durably(session, row)
        record(session, by, action="second_factor.enrol", outcome="failure", reason=str(error)[:200],
               details={"method": "webauthn"}, survive_rollback=True, subject_person_ids=[account.person_id])
        raise ValidationError(REFUSED, "credential") from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if session.scalar(select(WebAuthnCredential.id).where(WebAuthnCredential.credential_id == credential_id)):
        raise ValidationError("This passkey is already registered.", "credential")
    transports = _parse(credential).get("response", {}).get("transports") or []
    key = WebAuthnCredential(account_id=account.id, credential_id=credential_id,
                             public_key=verified.credential_public_key, sign_count=verified.sign_count, name=name,
                             transports=[str(t)[:20] for t in transports][:8], created_at=utcnow())
    session.add(key)
    session.flush()
    record(session, by, action="second_factor.enrol", outcome="success",
           details={"method": "webauthn", "name": name}, subject_person_ids=[account.person_id])
    return key


def authentication_options(session: Session, account: Account, row: UserSession, rp: RelyingParty) -> str:
    options = generate_authentication_options(
        rp_id=rp.id, user_verification=UserVerificationRequirement.PREFERRED,
        allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(key.credential_id))
                           for key in passkeys_of(session, account)])
    _remember_challenge(row, options.challenge, "authenticate")
    session.flush()
    return options_to_json(options)


def authenticate(session: Session, account: Account, row: UserSession, rp: RelyingParty, credential: str | dict,
                 *, by: RequestContext, policy: LoginPolicy = LoginPolicy()) -> WebAuthnCredential:
    """Check an assertion of one of the account's passkeys. Raises ValidationError (and counts the failure
    towards the account's lock) when it does not hold."""
    challenge = _take_challenge(row, "authenticate")
    key = None
    try:
        if account_locked(account):
            raise InvalidAuthenticationResponse("account temporarily locked")
        if challenge is None:
            raise InvalidAuthenticationResponse("no pending challenge (expired or replayed)")
        parsed = _parse(credential)
        key = session.scalar(select(WebAuthnCredential).where(
            WebAuthnCredential.credential_id == str(parsed.get("id", "")), WebAuthnCredential.account_id == account.id,
            WebAuthnCredential.removed_at.is_(None)))
        if key is None:
            raise InvalidAuthenticationResponse("unknown passkey")
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp.id, expected_origin=rp.origin,
            credential_public_key=key.public_key, credential_current_sign_count=key.sign_count)
    except (InvalidAuthenticationResponse, ValidationError, ValueError, KeyError, TypeError) as error:
        _spend_durably(session, row)
        reason = str(error)[:200] or error.__class__.__name__
        if not account_locked(account):
            reason += count_account_failure(session, account, policy)
        session.flush()
        record(session, by, action="second_factor.check", outcome="failure", reason=reason,
               details={"method": "webauthn"}, survive_rollback=True, subject_person_ids=[account.person_id])
        raise ValidationError(REFUSED, "credential") from None
    key.sign_count = verified.new_sign_count
    key.last_used_at = utcnow()
    account.failed_logins = 0
    account.locked_until = None
    session.flush()
    record(session, by, action="second_factor.check", outcome="success",
           details={"method": "webauthn", "name": key.name}, subject_person_ids=[account.person_id])
    return key


def remove(session: Session, account: Account, credential_row_id: int, *, by: RequestContext) -> None:
    key = session.get(WebAuthnCredential, credential_row_id)
    if key is None or key.account_id != account.id or key.removed_at is not None:
        raise NotFound("No such passkey of yours.", "credential_id")
    current = status(session, account)
    if current.passkeys + (1 if current.totp else 0) <= 1:
        from access.errors import Conflict

        raise Conflict("This is your last second factor: set up another one before removing it.", "credential_id")
    key.removed_at = utcnow()
    session.flush()
    record(session, by, action="second_factor.remove", outcome="success",
           details={"method": "webauthn", "name": key.name}, subject_person_ids=[account.person_id])
