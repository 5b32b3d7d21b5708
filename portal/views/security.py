"""A person's own security settings: the second factors (authenticator app, passkeys), recovery codes,
the password, and the list of his sessions. Changes need a fresh second-factor check (step-up) once a
factor exists; the first enrolment, right after the first login, is what makes one exist."""
from __future__ import annotations

import segno
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from access import second_factor as factors
from access import sessions, webauthn_factor
from access.errors import DomainError
from access.operations import change_password
from portal.auth import second_factor_required
from portal.context import request_context
from portal.database import get_session
from portal.extensions import limiter
from portal.forms import ButtonForm, PasswordChangeForm, TotpConfirmForm, apply_domain_error
from portal.gate import public, require_fresh_second_factor
from portal.messages import error_text
from portal.views.account import complete_second_factor

bp = Blueprint("security", __name__)


@bp.context_processor
def _helpers():
    from access.clock import BRUSSELS, as_utc

    # Times as the person reads them: Belgian time (the database keeps UTC).
    return {"moment": lambda value: as_utc(value).astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M") if value else ""}


def _state():
    return factors.status(get_session(), current_user.account)


def _after_first_factor():
    """The first factor of the account was just set up: this session passed it, and the person gets
    his recovery codes now (shown once)."""
    if current_user.user_session.second_factor_at is None:
        complete_second_factor("enrolment")
    if _state().recovery_codes_left == 0:
        codes = factors.issue_recovery_codes(get_session(), current_user.account, by=request_context())
        return render_template("account/recovery_codes.html", codes=codes, first=True)
    return redirect(url_for("security.overview"))


@bp.route("/account/security")
@login_required
@public
def overview():
    state = _state()
    others = len(sessions.live_sessions(get_session(), current_user.account.id)) - 1
    offer = session.pop("factors_changed", False) and others > 0
    return render_template("account/security.html", state=state, form=ButtonForm(),
                           required=second_factor_required(current_user.account),
                           passkeys=factors.passkeys_of(get_session(), current_user.account),
                           offer_end_sessions=offer, other_sessions=others)


def _factors_changed() -> None:
    """ASVS 5.0 7.4.3: after a change of factors the next page offers to end the other sessions."""
    session["factors_changed"] = True


@bp.route("/account/security/totp", methods=["POST"])
@login_required
@public
def totp_start():
    if not ButtonForm().validate_on_submit():
        abort(400)
    require_fresh_second_factor()
    account = current_user.account
    try:
        factor = factors.start_totp_enrolment(get_session(), account, by=request_context())
    except DomainError as error:
        flash(error_text(error), "error")
        return redirect(url_for("security.overview"))
    return _totp_setup_page(factor, TotpConfirmForm())


def _totp_setup_page(factor, form, status: int = 200):
    uri = factors.provisioning_uri(factor, current_user.account, current_app.config["TOTP_ISSUER"])
    qr = segno.make(uri, error="m").svg_data_uri(scale=5)
    return render_template("account/totp_setup.html", form=form, qr=qr, secret=factor.secret, uri=uri), status


@bp.route("/account/security/totp/confirm", methods=["POST"])
@login_required
@public
def totp_confirm():
    form = TotpConfirmForm()
    account = current_user.account
    pending = factors.pending_totp(get_session(), account)
    if pending is None:
        flash(_("Start setting up an authenticator app first."), "error")
        return redirect(url_for("security.overview"))
    if not form.validate_on_submit():
        return _totp_setup_page(pending, form, 422)
    try:
        factors.confirm_totp(get_session(), account, form.code.data, by=request_context())
    except DomainError as error:
        apply_domain_error(form, error)
        return _totp_setup_page(pending, form, error.status)
    flash(_("Your authenticator app is set up."), "success")
    _factors_changed()
    return _after_first_factor()


@bp.route("/account/security/totp/remove", methods=["POST"])
@login_required
@public
def totp_remove():
    if not ButtonForm().validate_on_submit():
        abort(400)
    require_fresh_second_factor()
    try:
        factors.remove_totp(get_session(), current_user.account, by=request_context())
    except DomainError as error:
        flash(error_text(error), "error")
        return redirect(url_for("security.overview"))
    flash(_("The authenticator app is removed."), "success")
    _factors_changed()
    return redirect(url_for("security.overview"))


@bp.route("/account/security/recovery-codes", methods=["POST"])
@login_required
@public
def recovery_codes():
    if not ButtonForm().validate_on_submit():
        abort(400)
    if not _state().enrolled:
        flash(_("Set up an authenticator app or a passkey first."), "error")
        return redirect(url_for("security.overview"))
    require_fresh_second_factor()
    codes = factors.issue_recovery_codes(get_session(), current_user.account, by=request_context())
    _factors_changed()
    return render_template("account/recovery_codes.html", codes=codes, first=False)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@public
def password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        require_fresh_second_factor()
        if form.password.data != form.confirm.data:
            form.confirm.errors = [_("The two passwords differ.")]
            return render_template("account/password.html", form=form), 422
        try:
            change_password(get_session(), current_user.account, form.current.data, form.password.data,
                            by=request_context())
        except DomainError as error:
            apply_domain_error(form, error)
            return render_template("account/password.html", form=form), error.status
        if form.end_other_sessions.data:
            sessions.end_all_sessions(get_session(), current_user.account, "password changed",
                                      by=request_context(), keep=current_user.user_session)
        flash(_("Your password is changed."), "success")
        return redirect(url_for("security.session_list"))
    return render_template("account/password.html", form=form), 422 if request.method == "POST" else 200


@bp.route("/account/sessions")
@login_required
@public
def session_list():
    rows = sessions.live_sessions(get_session(), current_user.account.id)
    return render_template("account/sessions.html", rows=rows, current=current_user.user_session,
                           describe=sessions.describe_device, form=ButtonForm())


@bp.route("/account/sessions/<int:session_id>/end", methods=["POST"])
@login_required
@public
def session_end(session_id: int):
    if not ButtonForm().validate_on_submit():
        abort(400)
    if session_id == current_user.user_session.id:
        flash(_("To end this session, log out."), "error")
        return redirect(url_for("security.session_list"))
    require_fresh_second_factor()  # ASVS 5.0 7.5.2: ending sessions after authenticating again
    try:
        sessions.end_own_session(get_session(), current_user.account, session_id, by=request_context())
    except DomainError:
        abort(404)
    flash(_("The session is ended."), "success")
    return redirect(url_for("security.session_list"))


@bp.route("/account/sessions/end-others", methods=["POST"])
@login_required
@public
def session_end_others():
    if not ButtonForm().validate_on_submit():
        abort(400)
    require_fresh_second_factor()
    count = sessions.end_all_sessions(get_session(), current_user.account, "ended by its owner",
                                      by=request_context(), keep=current_user.user_session)
    flash(_("%(count)s other sessions ended.", count=count), "success")
    return redirect(url_for("security.session_list"))


# --- passkeys (JSON endpoints used by static/webauthn.js) ----------------------------------------


def relying_party() -> webauthn_factor.RelyingParty:
    """The relying party the browser sees: configured, or this request's host (the host name, without
    port, is the RP id; the origin is scheme://host[:port])."""
    config = current_app.config
    origin = config["WEBAUTHN_ORIGIN"] or request.host_url.rstrip("/")
    rp_id = config["WEBAUTHN_RP_ID"] or request.host.split(":")[0]
    return webauthn_factor.RelyingParty(rp_id, config["TOTP_ISSUER"], origin)


def _json_refusal(error: DomainError):
    from portal.errors import problem

    return problem(error.status, error.code, error_text(error), field=error.field)


@bp.route("/account/security/passkeys/options", methods=["POST"])
@login_required
@public
def passkey_register_options():
    if _state().enrolled:
        require_fresh_second_factor()
    options = webauthn_factor.registration_options(get_session(), current_user.account, current_user.user_session,
                                                   relying_party())
    return current_app.response_class(options, mimetype="application/json")


@bp.route("/account/security/passkeys", methods=["POST"])
@login_required
@public
def passkey_register():
    first = not _state().enrolled
    if not first:
        require_fresh_second_factor()
    body = request.get_json(silent=True) or {}
    try:
        webauthn_factor.register(get_session(), current_user.account, current_user.user_session, relying_party(),
                                 body.get("credential"), str(body.get("name") or ""), by=request_context())
    except DomainError as error:
        return _json_refusal(error)
    if first:
        complete_second_factor("webauthn")
        if _state().recovery_codes_left == 0:
            return {"next": url_for("security.first_recovery_codes")}
    _factors_changed()
    return {"next": url_for("security.overview")}


@bp.route("/account/security/recovery-codes/first", methods=["GET"])
@login_required
@public
def first_recovery_codes():
    """After a first passkey (set up in the browser's script): the codes, once; later visits go on."""
    if _state().recovery_codes_left > 0 or not _state().enrolled:
        return redirect(url_for("security.overview"))
    codes = factors.issue_recovery_codes(get_session(), current_user.account, by=request_context())
    return render_template("account/recovery_codes.html", codes=codes, first=True)


@bp.route("/account/security/passkeys/<int:credential_id>/remove", methods=["POST"])
@login_required
@public
def passkey_remove(credential_id: int):
    if not ButtonForm().validate_on_submit():
        abort(400)
    require_fresh_second_factor()
    try:
        webauthn_factor.remove(get_session(), current_user.account, credential_id, by=request_context())
    except DomainError as error:
        flash(error_text(error), "error")
        return redirect(url_for("security.overview"))
    flash(_("The passkey is removed."), "success")
    _factors_changed()
    return redirect(url_for("security.overview"))


@bp.route("/login/passkey/options", methods=["POST"])
@login_required
@public
def passkey_login_options():
    options = webauthn_factor.authentication_options(get_session(), current_user.account,
                                                     current_user.user_session, relying_party())
    return current_app.response_class(options, mimetype="application/json")


@bp.route("/login/passkey", methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
@login_required
@public
def passkey_login_verify():
    from portal.urls import safe_local_target
    from portal.views.account import login_policy

    from portal.auth import address_wait, count_address_failure
    from portal.errors import problem
    from portal.views.account import TOO_MANY_ATTEMPTS

    wait = address_wait()
    if wait:
        response = problem(429, "too-many-attempts", _(TOO_MANY_ATTEMPTS, seconds=wait))
        response.headers["Retry-After"] = str(wait)
        return response
    body = request.get_json(silent=True) or {}
    try:
        webauthn_factor.authenticate(get_session(), current_user.account, current_user.user_session, relying_party(),
                                     body.get("credential"), by=request_context(), policy=login_policy())
    except DomainError as error:
        count_address_failure()
        return _json_refusal(error)
    complete_second_factor("webauthn")
    return {"next": safe_local_target(str(body.get("next") or "")) or url_for("home.index")}
