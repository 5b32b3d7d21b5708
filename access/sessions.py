"""Server-side login sessions (issue 6).

The browser's cookie carries a random token; the database keeps only its SHA-256, with the device, the
address, when it was last seen and whether the second factor was checked. A session dies on logout,
after `idle` without a request, `absolute` after it started, or when it is ended: by its owner from the
sessions page, by an administrator's "end sessions", or because the account was disabled or its link
ended. Operations flush and audit; they never commit.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from access.clock import as_utc, utcnow
from access.errors import NotFound
from access.models import Account, UserSession
from audit.operations import RequestContext, record, survive

# A request refreshes `last_seen_at` at most this often: one write per minute, not one per request.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, account: Account, *, by: RequestContext) -> tuple[UserSession, str]:
    """A new session for an account whose password was just checked. Returns the row and the token the
    cookie carries (shown once: only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = UserSession(token_hash=_hash(token), account_id=account.id, created_at=now, last_seen_at=now,
                      ip=(by.ip or None) and by.ip[:45], user_agent=(by.user_agent or None) and by.user_agent[:300])
    session.add(row)
    session.flush()
    return row, token


def expiry_reason(row: UserSession, policy: SessionPolicy, now: datetime) -> str | None:
    if now - as_utc(row.last_seen_at) > policy.idle:
        return "idle timeout"
    if now - as_utc(row.created_at) > policy.absolute:
        return "absolute timeout"
    return None


def find_live(session: Session, token: str, policy: SessionPolicy, *, by: RequestContext) -> UserSession | None:
    """The live session this token opens, or None. A session found past a timeout is ended here
    (and audited), so that the list of sessions tells the truth."""
    if not token or len(token) > 100:
        return None
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _hash(token)))
    if row is None or row.ended_at is not None:
        return None
    by = by.as_actor(row.account.person_id, row.account.login_name)
    if row.account.is_disabled:
        end_session(session, row, "account disabled", by=by, durable=True)
        return None
    reason = expiry_reason(row, policy, utcnow())
    if reason is not None:
        end_session(session, row, reason, by=by, durable=True)
        return None
    return row


def touch(row: UserSession) -> None:
    now = utcnow()
    if now - as_utc(row.last_seen_at) >= TOUCH_EVERY:
        row.last_seen_at = now


def rotate(session: Session, row: UserSession) -> str:
    """A new session id for the same session (after the second factor and at step-up): a token that
    leaked before the check is worth nothing after it."""
    token = secrets.token_urlsafe(32)
    row.token_hash = _hash(token)
    session.flush()
    return token


def mark_second_factor(row: UserSession, method: str) -> None:
    row.second_factor_at = utcnow()
    row.second_factor_method = method


def second_factor_is_fresh(row: UserSession, within: timedelta) -> bool:
    return row.second_factor_at is not None and utcnow() - as_utc(row.second_factor_at) <= within


def end_session(session: Session, row: UserSession, reason: str, *, by: RequestContext,
                durable: bool = False) -> None:
    """`durable`: the end outlives a rollback of the request (a timeout found by a request that is
    then refused must still be recorded)."""
    if row.ended_at is not None:
        return
    row.ended_at = utcnow()
    row.ended_reason = reason[:40]
    session.flush()
    if durable:
        values, row_id = {"ended_at": row.ended_at, "ended_reason": row.ended_reason}, row.id
        survive(session, lambda s: s.execute(update(UserSession).where(UserSession.id == row_id).values(**values)))
    account = row.account
    record(session, by, action="session.end", outcome="success", reason=reason,
           details={"session_id": row.id, "account": account.login_name},
           subject_person_ids=[account.person_id], survive_rollback=durable)


def live_sessions(session: Session, account_id: int) -> list[UserSession]:
    return list(session.scalars(select(UserSession).where(
        UserSession.account_id == account_id, UserSession.ended_at.is_(None)).order_by(UserSession.last_seen_at.desc())))


def end_all_sessions(session: Session, account: Account, reason: str, *, by: RequestContext,
                     keep: UserSession | None = None) -> int:
    """End every live session of the account (but `keep`, the one asking, when given). Returns how many."""
    ended = 0
    for row in live_sessions(session, account.id):
        if keep is not None and row.id == keep.id:
            continue
        row.ended_at = utcnow()
        row.ended_reason = reason[:40]
        ended += 1
    session.flush()
    record(session, by, action="session.end_all", outcome="success", reason=reason,
           details={"account": account.login_name, "ended": ended, "kept_current": keep is not None},
           subject_person_ids=[account.person_id])
    return ended


def end_own_session(session: Session, account: Account, session_id: int, *, by: RequestContext) -> UserSession:
    """A person ends one of his own sessions from the sessions page. Another person's session id is
    'not found' (no oracle)."""
    row = session.get(UserSession, session_id)
    if row is None or row.account_id != account.id or row.ended_at is not None:
        raise NotFound("No such active session of yours.", "session_id")
    end_session(session, row, "ended by its owner", by=by)
    return row


def describe_device(user_agent: str | None) -> str:
    """A short, human name for a browser's user agent ("Firefox on Linux")."""
    agent = user_agent or ""
    browser = next((name for key, name in (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chromium/", "Chromium"),
                                           ("Chrome/", "Chrome"), ("Safari/", "Safari"), ("curl/", "curl"),
                                           ("python", "Python client")) if key.lower() in agent.lower()), None)
    system = next((name for key, name in (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"),
                                          ("iPad", "iPadOS"), ("Mac OS X", "macOS"), ("Linux", "Linux"))
                   if key in agent), None)
    if browser and system:
        return f"{browser} / {system}"
    return browser or system or (agent[:40] if agent else "?")
