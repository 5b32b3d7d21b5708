"""The decorator that puts every gated view and endpoint behind the one decision point."""
from __future__ import annotations

import functools
from typing import Callable

from flask import g

from access.decision import Decision, decide, log_decision
from portal.context import catalogue, current_subject, proof_context, request_context
from portal.database import get_session


class StepUpRequired(Exception):
    """A protected act without a recent second-factor check: rendered as a 401 asking for one."""


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@functools.lru_cache(maxsize=4)
def _protected_acts(path: str | None) -> frozenset[tuple[str, str]]:
    import tomllib
    from pathlib import Path

    from access.catalogue import CONFIG_DIR

    source = Path(path) if path else CONFIG_DIR / "step_up.toml"
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    return frozenset((entry["application"], action) for entry in data.get("protected", [])
                     for action in entry["actions"])


def require_fresh_second_factor() -> None:
    """Raise StepUpRequired unless the logged-in person's session checked a second factor within
    STEP_UP_MINUTES. A person without any factor (not required to have one) has nothing to step up
    with; a machine client proves its certificate instead."""
    from datetime import timedelta

    from flask import current_app
    from flask_login import current_user

    from access import second_factor, sessions

    if g.get("machine_subject") is not None or not current_user.is_authenticated:
        return
    within = timedelta(minutes=current_app.config["STEP_UP_MINUTES"])
    if sessions.second_factor_is_fresh(current_user.user_session, within):
        return
    if not second_factor.status(get_session(), current_user.account).enrolled:
        return
    raise StepUpRequired()


class AccessDenied(Exception):
    """Raised when the decision point refuses; rendered as a 403 page or problem+json with the reason."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason.text)
        self.decision = decision


def check(application: str, action: str, enterprise_id: int | None, *, context: dict | None = None) -> Decision:
    """Ask the decision point, log the answer, and raise if refused. The request's proof for the
    certificate tier (a bearer token's certificate) is passed on; `context` adds to it (a signed file).
    A protected act (config/step_up.toml) also needs a fresh second-factor check."""
    from flask import current_app, request

    session = get_session()
    decision = decide(session, current_subject(), enterprise_id, application, action, catalogue=catalogue(),
                      context={**proof_context(), **(context or {})})
    log_decision(session, request_context(), decision)
    g.decision = decision
    if not decision.allowed:
        raise AccessDenied(decision)
    if request.method in UNSAFE_METHODS and (application, action) in _protected_acts(
            current_app.config.get("STEP_UP_ACTIONS")):
        require_fresh_second_factor()
    return decision


def gated(application: str | Callable[..., str], action: str, enterprise_arg: str | None = "enterprise_id"):
    """Gate a view: `application` is a code or a function of the view arguments;
    the enterprise comes from the view argument `enterprise_arg`."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            code = application(**kwargs) if callable(application) else application
            enterprise_id = kwargs.get(enterprise_arg) if enterprise_arg else None
            check(code, action, enterprise_id)
            return view(*args, **kwargs)

        wrapper.gate = (application, action)  # read by the test that every route is gated
        return wrapper

    return decorator


def public(view):
    """Mark a view that is deliberately not gated (login, language, static help).
    A test asserts that every route is either gated or public."""
    view.public = True
    return view


def self_gated(view):
    """Mark a view that calls `check` itself, because the application or the
    enterprise is only known from the request body or a looked-up record."""
    view.self_gated = True
    return view
