"""Flask-Login glue. The signed cookie carries the token of a server-side session (access/sessions.py):
the session can be listed, ended and timed out on the server, whatever the browser keeps."""
from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import current_app, g, redirect, request, session, url_for
from flask_login import UserMixin, login_user, logout_user

from access import second_factor, sessions
from access.models import Account, UserSession
from portal.database import get_session


class LoginUser(UserMixin):
    def __init__(self, account: Account, user_session: UserSession, token: str) -> None:
        self.account = account
        self.user_session = user_session
        self.token = token

    def get_id(self) -> str:
        return self.token

    @property
    def is_active(self) -> bool:
        return not self.account.is_disabled


def session_policy() -> sessions.SessionPolicy:
    config = current_app.config
    return sessions.SessionPolicy(idle=timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
                                  absolute=timedelta(hours=config["SESSION_ABSOLUTE_HOURS"]))


def load_user(token: str) -> LoginUser | None:
    from portal.context import base_context

    row = sessions.find_live(get_session(), token, session_policy(), by=base_context())
    if row is None:
        return None
    sessions.touch(row)
    return LoginUser(row.account, row, token)


def unauthorized():
    from portal.errors import problem, wants_json

    if wants_json():
        return problem(401, "login-required", "Log in first.")
    return redirect(url_for("account.login", next=request.full_path if request.method == "GET" else None))


def client_fingerprint() -> str:
    return hashlib.sha256((request.headers.get("User-Agent") or "").encode()).hexdigest()[:32]


def start_session(account: Account) -> UserSession:
    """A fresh session at login (nothing from before survives: session fixation), recorded on the server."""
    from flask_login import current_user

    from portal.context import base_context

    if current_user.is_authenticated:  # a login over a live session (another account, or again) ends it
        sessions.end_session(get_session(), current_user.user_session, "replaced by a new login", by=base_context())
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    row, token = sessions.open_session(get_session(), account, by=base_context())
    login_user(LoginUser(account, row, token))
    session.permanent = True
    session["client"] = client_fingerprint()
    return row


def renew_session_id(user: LoginUser) -> None:
    """A new session id after the second factor or a step-up; the server-side session stays the same."""
    token = sessions.rotate(get_session(), user.user_session)
    user.token = token
    session["_user_id"] = token
    session.modified = True


def end_current_session(reason: str = "logout") -> None:
    from flask_login import current_user

    from portal.context import request_context

    if current_user.is_authenticated:
        sessions.end_session(get_session(), current_user.user_session, reason, by=request_context())
    logout_user()
    session.clear()


def address_policy():
    from access.throttle import AddressPolicy

    config = current_app.config
    return AddressPolicy(free=config["LOGIN_IP_FREE_FAILURES"], base_seconds=config["LOGIN_IP_BASE_SECONDS"],
                         cap_seconds=config["LOGIN_IP_MAX_SECONDS"])


def address_wait() -> int:
    """Seconds this request's address must still wait after too many failed attempts (0: none).
    A refusal for that reason is audited (it survives the refused request)."""
    from access import throttle
    from audit.operations import record
    from portal.context import base_context

    seconds = throttle.seconds_blocked(get_session(), request.remote_addr)
    if seconds:
        record(get_session(), base_context(), action="login", outcome="failure",
               reason=f"address throttled for {seconds} s more", survive_rollback=True)
    return seconds


def count_address_failure() -> None:
    from access import throttle

    throttle.count_failure(get_session(), request.remote_addr, address_policy())


def second_factor_required(account: Account) -> bool:
    return second_factor.needs_second_factor(get_session(), account,
                                             for_everyone=current_app.config["SECOND_FACTOR_FOR_EVERYONE"])


def guard_session() -> None:
    """Before every request: a session cookie replayed from another client is refused (the server-side
    session is ended too: its token has leaked)."""
    if "_user_id" not in session:
        return
    if session.get("client") != client_fingerprint():
        from portal.context import base_context

        row = sessions.find_live(get_session(), session.get("_user_id"), session_policy(), by=base_context())
        if row is not None:
            sessions.end_session(get_session(), row, "cookie used by another client", by=base_context(), durable=True)
        logout_user()
        session.clear()
        g.pop("_login_user", None)
