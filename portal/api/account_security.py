"""The person's own security settings through the API (gate "login": any logged-in person, for
himself only): second factors, recovery codes, sessions and the password. Same operations and the
same step-up rule as the web pages (portal/views/security.py)."""
from __future__ import annotations

import functools

from flask import current_app, g, request
from flask_login import current_user

from access import second_factor as factors
from access import sessions, webauthn_factor
from access.clock import as_utc
from access.errors import ValidationError
from access.operations import change_password as change_password_op
from portal.api import schemas as s
from portal.api.registry import api_route
from portal.auth import second_factor_required
from portal.context import request_context
from portal.database import get_session
from portal.errors import problem
from portal.gate import require_fresh_second_factor


def person_only(view):
    """A 401 problem unless a person is logged in with a session (machine clients have none)."""
    @functools.wraps(view)
    def wrapper(**kwargs):
        if g.get("machine_subject") is not None or not current_user.is_authenticated:
            return problem(401, "login-required", "Log in first (a person's session, not a machine's token).")
        return view(**kwargs)

    return wrapper


def _factors_out() -> s.FactorsOut:
    state = factors.status(get_session(), current_user.account)
    return s.FactorsOut(totp=state.totp, passkeys=state.passkeys, recovery_codes_left=state.recovery_codes_left,
                        required=second_factor_required(current_user.account))


def _first_factor_done() -> list[str]:
    from portal.views.account import complete_second_factor

    if current_user.user_session.second_factor_at is None:
        complete_second_factor("enrolment")
    if factors.status(get_session(), current_user.account).recovery_codes_left == 0:
        return factors.issue_recovery_codes(get_session(), current_user.account, by=request_context())
    return []


@api_route("/account/factors", "GET", summary="My second factors", tag="account", gate="login",
           response=s.FactorsOut)
@person_only
def factors_info():
    return _factors_out()


@api_route("/account/totp", "POST", summary="Start setting up an authenticator app (TOTP): the secret",
           tag="account", gate="login", response=s.TotpStartOut, status=201)
@person_only
def totp_start():
    require_fresh_second_factor()
    account = current_user.account
    factor = factors.start_totp_enrolment(get_session(), account, by=request_context())
    return s.TotpStartOut(secret=factor.secret, otpauth_uri=factors.provisioning_uri(
        factor, account, current_app.config["TOTP_ISSUER"]))


@api_route("/account/totp/confirm", "POST", summary="Confirm the authenticator app with a first code; the "
           "first factor of an account also gives its ten recovery codes", tag="account", gate="login",
           body=s.SecondFactorIn, response=s.TotpConfirmOut)
@person_only
def totp_confirm(payload: s.SecondFactorIn):
    factors.confirm_totp(get_session(), current_user.account, payload.code, by=request_context())
    return s.TotpConfirmOut(recovery_codes=_first_factor_done())


@api_route("/account/totp", "DELETE", summary="Remove the authenticator app (not the last factor)",
           tag="account", gate="login", status=204)
@person_only
def totp_remove():
    require_fresh_second_factor()
    factors.remove_totp(get_session(), current_user.account, by=request_context())
    return "", 204


@api_route("/account/recovery-codes", "POST", summary="Ten new recovery codes (the old ones stop working)",
           tag="account", gate="login", response=s.RecoveryCodesOut, status=201)
@person_only
def recovery_codes():
    if not factors.status(get_session(), current_user.account).enrolled:
        return problem(409, "no-second-factor", "Set up a second factor first.")
    require_fresh_second_factor()
    return s.RecoveryCodesOut(recovery_codes=factors.issue_recovery_codes(get_session(), current_user.account,
                                                                          by=request_context()))


@api_route("/account/sessions", "GET", summary="My active sessions", tag="account", gate="login",
           response=list[s.SessionRowOut])
@person_only
def session_list():
    current_id = current_user.user_session.id
    return [s.SessionRowOut(id=row.id, device=sessions.describe_device(row.user_agent), ip=row.ip,
                            created_at=as_utc(row.created_at), last_seen_at=as_utc(row.last_seen_at),
                            current=row.id == current_id)
            .model_dump(mode="json") for row in sessions.live_sessions(get_session(), current_user.account.id)]


@api_route("/account/sessions/<int:session_id>", "DELETE", summary="End one of my sessions", tag="account",
           gate="login", status=204)
@person_only
def session_end(session_id: int):
    require_fresh_second_factor()
    sessions.end_own_session(get_session(), current_user.account, session_id, by=request_context())
    return "", 204


@api_route("/account/password", "POST", summary="Change my password (the current one is needed)",
           tag="account", gate="login", body=s.PasswordChangeIn, status=204)
@person_only
def change_password(payload: s.PasswordChangeIn):
    require_fresh_second_factor()
    change_password_op(get_session(), current_user.account, payload.current, payload.password, by=request_context())
    if payload.end_other_sessions:
        sessions.end_all_sessions(get_session(), current_user.account, "password changed", by=request_context(),
                                  keep=current_user.user_session)
    return "", 204


@api_route("/account/passkeys/options", "POST", summary="WebAuthn registration options for a new passkey",
           tag="account", gate="login")
@person_only
def passkey_register_options():
    from portal.views.security import relying_party

    if factors.status(get_session(), current_user.account).enrolled:
        require_fresh_second_factor()
    options = webauthn_factor.registration_options(get_session(), current_user.account, current_user.user_session,
                                                   relying_party())
    return current_app.response_class(options, mimetype="application/json")


@api_route("/account/passkeys", "POST", summary="Register a passkey: the browser's attestation "
           "({\"credential\": ..., \"name\": ...})", tag="account", gate="login", response=s.TotpConfirmOut,
           status=201)
@person_only
def passkey_register():
    from portal.views.security import relying_party

    first = not factors.status(get_session(), current_user.account).enrolled
    if not first:
        require_fresh_second_factor()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError("Send a JSON object with the credential.", "credential")
    webauthn_factor.register(get_session(), current_user.account, current_user.user_session, relying_party(),
                             body.get("credential"), str(body.get("name") or ""), by=request_context())
    return s.TotpConfirmOut(recovery_codes=_first_factor_done() if first else [])
