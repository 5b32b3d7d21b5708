"""The second factor (issue 6): an authenticator app (TOTP, RFC 6238), passkeys (access/webauthn_factor.py)
and ten single-use recovery codes; who must use one; and the reset when every factor is lost.

TOTP codes are single-use: `last_used_step` keeps the time step of the last accepted code, and only a
later step is accepted again (one step of clock drift either way). Failed checks count towards the
account's growing lock like failed passwords. Recovery codes are stored with argon2id (ASVS 5.0 6.5.2).
"""
from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from access.clock import utcnow
from access.errors import Conflict, ValidationError
from access.models import (
    Account,
    Membership,
    RecoveryCode,
    Role,
    SecurityOfficer,
    TotpFactor,
    WebAuthnCredential,
)
from access.operations import LoginPolicy, account_locked, count_account_failure
from access.passwords import hash_password, verify_password
from audit.operations import RequestContext, record

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
RECOVERY_CODE_COUNT = 10
# Recovery codes: three groups of four from an alphabet without look-alikes (about 59 bits).
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_CODE_PATTERN = re.compile(r"^\d{6}$")
WRONG_CODE = "The code is wrong, already used or expired."


@dataclass(frozen=True)
class FactorStatus:
    totp: bool
    passkeys: int
    recovery_codes_left: int

    @property
    def enrolled(self) -> bool:
        return self.totp or self.passkeys > 0


# --- who needs one ------------------------------------------------------------------------------


def holds_sensitive_role(session: Session, account: Account) -> bool:
    """Local administrators, co-administrators, portal officers, security officers and provider staff
    need a second factor at every login, whatever the setting for plain users."""
    if account.is_portal_officer:
        return True
    person_id = account.person_id
    if session.scalar(select(Membership.id).where(
            Membership.person_id == person_id, Membership.ended_at.is_(None),
            Membership.role.in_([Role.LOCAL_ADMIN, Role.CO_ADMIN])).limit(1)):
        return True
    if session.scalar(select(SecurityOfficer.id).where(
            SecurityOfficer.person_id == person_id, SecurityOfficer.ended_at.is_(None)).limit(1)):
        return True
    from mandates.models import StaffAssignment

    return session.scalar(select(StaffAssignment.id).where(
        StaffAssignment.person_id == person_id, StaffAssignment.revoked_at.is_(None)).limit(1)) is not None


def needs_second_factor(session: Session, account: Account, *, for_everyone: bool) -> bool:
    return for_everyone or holds_sensitive_role(session, account)


def status(session: Session, account: Account) -> FactorStatus:
    totp = session.scalar(select(TotpFactor).where(TotpFactor.account_id == account.id,
                                                   TotpFactor.removed_at.is_(None),
                                                   TotpFactor.confirmed_at.is_not(None))) is not None
    passkeys = len(list(session.scalars(select(WebAuthnCredential.id).where(
        WebAuthnCredential.account_id == account.id, WebAuthnCredential.removed_at.is_(None)))))
    codes = len(list(session.scalars(select(RecoveryCode.id).where(
        RecoveryCode.account_id == account.id, RecoveryCode.removed_at.is_(None), RecoveryCode.used_at.is_(None)))))
    return FactorStatus(totp, passkeys, codes)


# --- TOTP -----------------------------------------------------------------------------------------


def _live_totp(session: Session, account: Account) -> TotpFactor | None:
    return session.scalar(select(TotpFactor).where(TotpFactor.account_id == account.id,
                                                   TotpFactor.removed_at.is_(None)))


def pending_totp(session: Session, account: Account) -> TotpFactor | None:
    """The authenticator app being set up (secret shown, no code typed yet)."""
    factor = _live_totp(session, account)
    return factor if factor is not None and factor.confirmed_at is None else None


def passkeys_of(session: Session, account: Account) -> list[WebAuthnCredential]:
    return list(session.scalars(select(WebAuthnCredential).where(
        WebAuthnCredential.account_id == account.id, WebAuthnCredential.removed_at.is_(None))
        .order_by(WebAuthnCredential.created_at)))


def provisioning_uri(factor: TotpFactor, account: Account, issuer: str) -> str:
    return pyotp.TOTP(factor.secret).provisioning_uri(name=account.login_name, issuer_name=issuer)


def start_totp_enrolment(session: Session, account: Account, *, by: RequestContext) -> TotpFactor:
    """A new secret for the authenticator app, unconfirmed until a first code from it is typed.
    An unconfirmed one left from before is replaced; a confirmed one must be removed first."""
    existing = _live_totp(session, account)
    if existing is not None and existing.confirmed_at is not None:
        raise Conflict("An authenticator app is already set up; remove it first to set up another.", "totp")
    now = utcnow()
    if existing is not None:
        existing.removed_at = now
        session.flush()
    factor = TotpFactor(account_id=account.id, secret=pyotp.random_base32(length=32), created_at=now)
    session.add(factor)
    session.flush()
    return factor


def _current_step() -> int:
    return int(utcnow().timestamp()) // TOTP_STEP_SECONDS


def _matching_step(factor: TotpFactor, code: str) -> int | None:
    """The time step (now, or one either side for clock drift) whose code this is, if it is later than
    the last step accepted: a code is never accepted twice."""
    code = (code or "").strip().replace(" ", "")
    if not _CODE_PATTERN.match(code):
        return None
    totp = pyotp.TOTP(factor.secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
    step = _current_step()
    for candidate in (step - 1, step, step + 1):
        if factor.last_used_step is not None and candidate <= factor.last_used_step:
            continue
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def confirm_totp(session: Session, account: Account, code: str, *, by: RequestContext) -> TotpFactor:
    factor = _live_totp(session, account)
    if factor is None or factor.confirmed_at is not None:
        raise ValidationError("Start setting up an authenticator app first.", "code")
    step = _matching_step(factor, code)
    if step is None:
        record(session, by, action="second_factor.enrol", outcome="failure", reason="wrong code",
               details={"method": "totp"}, survive_rollback=True, subject_person_ids=[account.person_id])
        raise ValidationError("The code does not match; type the code your app shows now.", "code")
    factor.confirmed_at = utcnow()
    factor.last_used_step = step
    session.flush()
    record(session, by, action="second_factor.enrol", outcome="success", details={"method": "totp"},
           subject_person_ids=[account.person_id])
    return factor


def remove_totp(session: Session, account: Account, *, by: RequestContext) -> None:
    factor = _live_totp(session, account)
    if factor is None:
        raise ValidationError("No authenticator app is set up.", "totp")
    _refuse_removing_last_factor(session, account, keep_passkeys=True)
    factor.removed_at = utcnow()
    session.flush()
    record(session, by, action="second_factor.remove", outcome="success", details={"method": "totp"},
           subject_person_ids=[account.person_id])


def _refuse_removing_last_factor(session: Session, account: Account, *, keep_passkeys: bool = False,
                                 keep_totp: bool = False) -> None:
    current = status(session, account)
    others = (current.passkeys if keep_passkeys else 0) + (1 if keep_totp and current.totp else 0)
    if others == 0:
        raise Conflict("This is your last second factor: set up another one before removing it.", "factor")


# --- checking a second factor at login or step-up ----------------------------------------------------


def check_totp(session: Session, account: Account, code: str, *, by: RequestContext,
               policy: LoginPolicy = LoginPolicy()) -> bool:
    factor = _live_totp(session, account)
    locked = account_locked(account)
    step = None
    if factor is not None and factor.confirmed_at is not None and not locked:
        step = _matching_step(factor, code)
    if step is None:
        # While locked, nothing is checked and the lock does not grow (the owner gets back in soon).
        reason = "account temporarily locked" if locked else \
            "wrong, reused or expired code" + count_account_failure(session, account, policy)
        record(session, by, action="second_factor.check", outcome="failure", reason=reason,
               details={"method": "totp"}, survive_rollback=True, subject_person_ids=[account.person_id])
        return False
    factor.last_used_step = step
    account.failed_logins = 0
    account.locked_until = None
    session.flush()
    record(session, by, action="second_factor.check", outcome="success", details={"method": "totp"},
           subject_person_ids=[account.person_id])
    return True


# --- recovery codes -------------------------------------------------------------------------------


def _normalise_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]", "", (code or "").lower())


def issue_recovery_codes(session: Session, account: Account, *, by: RequestContext) -> list[str]:
    """Ten new single-use codes, replacing any earlier set. Returned once, for the person to keep; only
    their argon2id hashes are stored."""
    now = utcnow()
    session.execute(update(RecoveryCode).where(RecoveryCode.account_id == account.id,
                                               RecoveryCode.removed_at.is_(None)).values(removed_at=now))
    codes: list[str] = []
    lookups: set[str] = set()
    while len(codes) < RECOVERY_CODE_COUNT:
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
        if raw[:4] in lookups:
            continue
        lookups.add(raw[:4])
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
        session.add(RecoveryCode(account_id=account.id, lookup=raw[:4], code_hash=hash_password(raw),
                                 created_at=now))
    session.flush()
    record(session, by, action="recovery_codes.issue", outcome="success", details={"count": len(codes)},
           subject_person_ids=[account.person_id])
    return codes


def use_recovery_code(session: Session, account: Account, code: str, *, by: RequestContext,
                      policy: LoginPolicy = LoginPolicy()) -> bool:
    raw = _normalise_recovery_code(code)
    locked = account_locked(account)
    row = None
    if len(raw) == 12 and not locked:
        row = session.scalar(select(RecoveryCode).where(
            RecoveryCode.account_id == account.id, RecoveryCode.lookup == raw[:4],
            RecoveryCode.removed_at.is_(None), RecoveryCode.used_at.is_(None)))
    if row is None or not verify_password(row.code_hash, raw):
        reason = "account temporarily locked" if locked else \
            "wrong or used recovery code" + count_account_failure(session, account, policy)
        record(session, by, action="second_factor.check", outcome="failure", reason=reason,
               details={"method": "recovery_code"}, survive_rollback=True, subject_person_ids=[account.person_id])
        return False
    row.used_at = utcnow()
    account.failed_logins = 0
    account.locked_until = None
    session.flush()
    left = status(session, account).recovery_codes_left
    record(session, by, action="second_factor.check", outcome="success",
           details={"method": "recovery_code", "codes_left": left}, subject_person_ids=[account.person_id])
    return True


# --- lost every factor ------------------------------------------------------------------------------


def remove_all_factors(session: Session, account: Account) -> None:
    """Every factor and recovery code of the account stops working (the reset; the caller audits)."""
    now = utcnow()
    for model in (TotpFactor, WebAuthnCredential, RecoveryCode):
        for row in session.scalars(select(model).where(model.account_id == account.id, model.removed_at.is_(None))):
            row.removed_at = now
    session.flush()
