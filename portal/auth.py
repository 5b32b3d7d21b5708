"""Flask-Login glue: the logged-in user is an Account, identified together with
its session generation so that a password change or a forced logout ends every
older session."""
from __future__ import annotations

import hashlib
import time

from flask import current_app, redirect, request, session, url_for
from flask_login import UserMixin, logout_user

from access.models import Account
from portal.database import get_session


class LoginUser(UserMixin):
    def __init__(self, account: Account) -> None:
        self.account = account

    def get_id(self) -> str:
        return f"{self.account.id}:{self.account.session_generation}"

    @property
    def is_active(self) -> bool:
        return not self.account.is_disabled


def load_user(user_id: str) -> LoginUser | None:
    try:
        account_id, generation = (int(part) for part in user_id.split(":"))
    except ValueError:
        return None
    account = get_session().get(Account, account_id)
    if account is None or account.session_generation != generation or account.is_disabled:
        return None
    return LoginUser(account)


def unauthorized():
    from portal.errors import problem, wants_json

    if wants_json():
        return problem(401, "login-required", "Log in first.")
    return redirect(url_for("account.login", next=request.full_path if request.method == "GET" else None))


def client_fingerprint() -> str:
    return hashlib.sha256((request.headers.get("User-Agent") or "").encode()).hexdigest()[:32]


def bind_session() -> None:
    """Called at login: the session belongs to this client and starts its absolute lifetime now."""
    session["client"] = client_fingerprint()
    session["started"] = int(time.time())


def guard_session() -> None:
    """Before every request: a logged-in session replayed from another client,
    or older than its absolute lifetime, is ended (the signed cookie alone would
    slide its own expiry forward on every request)."""
    if "_user_id" not in session:
        return
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    started = session.get("started")
    if (session.get("client") != client_fingerprint() or not isinstance(started, int)
            or time.time() - started > lifetime):
        logout_user()
        session.clear()
