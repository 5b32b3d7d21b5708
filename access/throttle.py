"""Throttling failed authentication per address (issue 6).

Per account, access/operations.authenticate and access/second_factor lock the account briefly after five
failures (doubling, capped at 15 minutes). That alone lets one address try a few passwords on each of
thousands of accounts; this module slows the address itself. The first `free` failures of a window
(an hour since the first one) cost nothing: people mistype. Each failure after them blocks the address
for `base` seconds, doubling, up to `cap`; while blocked it is refused before any password is checked.
Only failures count, and a window without failures for an hour starts afresh, so a busy office behind
one NAT address is not slowed by its own successful logins, and an attacker cannot keep an address
blocked for longer than the cap after he stops.

The counts must outlive the refused request's rollback: they are replayed after it (audit.survive).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from access.clock import as_utc, utcnow
from access.models import LoginThrottle
from audit.operations import survive


@dataclass(frozen=True)
class AddressPolicy:
    free: int = 20
    window: timedelta = timedelta(hours=1)
    base_seconds: int = 30
    cap_seconds: int = 3600


def seconds_blocked(session: Session, address: str | None, now: datetime | None = None) -> int:
    """How long this address must still wait before it may try again (0: it may try now)."""
    if not address:
        return 0
    row = session.scalar(select(LoginThrottle).where(LoginThrottle.address == address[:45]))
    if row is None or row.blocked_until is None:
        return 0
    left = (as_utc(row.blocked_until) - (now or utcnow())).total_seconds()
    return max(0, math.ceil(left))


def _apply_failure(row: LoginThrottle, policy: AddressPolicy, now: datetime) -> None:
    if now - as_utc(row.last_failure_at) > policy.window:
        row.failures, row.window_start, row.blocked_until = 0, now, None
    row.failures += 1
    row.last_failure_at = now
    over = row.failures - policy.free
    if over > 0:
        row.blocked_until = now + timedelta(seconds=min(policy.base_seconds * 2 ** min(over - 1, 20),
                                                        policy.cap_seconds))


def count_failure(session: Session, address: str | None, policy: AddressPolicy = AddressPolicy()) -> int:
    """Count one failed attempt from the address; returns the seconds it is now blocked (0 if not)."""
    if not address:
        return 0
    address, now = address[:45], utcnow()

    def apply(s: Session) -> None:
        row = s.scalar(select(LoginThrottle).where(LoginThrottle.address == address))
        if row is None:
            row = LoginThrottle(address=address, failures=0, window_start=now, last_failure_at=now)
            try:
                with s.begin_nested():
                    s.add(row)
            except IntegrityError:  # another request of the same address created it first
                row = s.scalar(select(LoginThrottle).where(LoginThrottle.address == address))
        _apply_failure(row, policy, now)
        s.flush()

    apply(session)
    survive(session, apply)
    return seconds_blocked(session, address, now)
