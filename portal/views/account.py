"""Login (password, then the second factor), logout, the first-login choice of credentials and
the step-up check that protected acts ask for."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from access import second_factor as factors
from access import sessions
from access.errors import DomainError
from access.operations import GENERIC_LOGIN_FAILURE, LoginPolicy, authenticate, choose_credentials
from portal.auth import (address_wait, count_address_failure, end_current_session, renew_session_id,
                         second_factor_required, start_session)
from portal.context import request_context
from portal.database import get_session
from portal.extensions import limiter
from portal.forms import ButtonForm, LoginForm, SecondFactorForm, SetupForm, apply_domain_error
from portal.gate import public
from portal.urls import safe_local_target

bp = Blueprint("account", __name__)

TOO_MANY_ATTEMPTS = "Too many failed attempts from your address. Try again in %(seconds)s seconds."


def login_policy() -> LoginPolicy:
    config = current_app.config
    return LoginPolicy(config["LOGIN_MAX_FAILURES"], config["LOGIN_BASE_LOCK_SECONDS"], config["LOGIN_MAX_LOCK_SECONDS"])


def next_step_after_password(account, target: str | None):
    """Where a session goes once the password is right: its own credentials first, then the second
    factor (enrolment if there is none yet), then where it was going."""
    if account.must_choose_credentials:
        return redirect(url_for("account.setup"))
    # A factor set up is asked for, even by a person the setting does not oblige to have one.
    if factors.status(get_session(), account).enrolled:
        return redirect(url_for("account.verify", next=target))
    if second_factor_required(account):
        return redirect(url_for("security.overview"))
    return redirect(target or url_for("home.index"))


def second_factor_state() -> str:
    user_session = current_user.user_session
    if user_session.second_factor_at is not None:
        return "done"
    account = current_user.account
    if account.must_choose_credentials:
        return "none"
    if factors.status(get_session(), account).enrolled:
        return "required"
    return "enrolment-required" if second_factor_required(account) else "none"


def check_second_factor(account, code: str) -> str | None:
    """The method that accepted the code ("totp" or "recovery_code"), or None. Six digits is an
    authenticator code; anything else is tried as a recovery code."""
    session_, ctx, policy = get_session(), request_context(), login_policy()
    cleaned = (code or "").strip().replace(" ", "")
    if cleaned.isdigit() and len(cleaned) == factors.TOTP_DIGITS:
        method = "totp" if factors.check_totp(session_, account, cleaned, by=ctx, policy=policy) else None
    else:
        method = "recovery_code" if factors.use_recovery_code(session_, account, code, by=ctx,
                                                               policy=policy) else None
    if method is None:
        count_address_failure()
    return method


def complete_second_factor(method: str) -> None:
    """The session passed its second factor: note when (step-up reads it) and give it a new id."""
    sessions.mark_second_factor(current_user.user_session, method)
    renew_session_id(current_user._get_current_object())


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@public
def login():
    form = LoginForm()
    target = safe_local_target(request.args.get("next"))
    if form.validate_on_submit():
        wait = address_wait()
        if wait:
            form.form_errors.append(_(TOO_MANY_ATTEMPTS, seconds=wait))
            return render_template("account/login.html", form=form), 429, {"Retry-After": str(wait)}
        account = authenticate(get_session(), form.login.data, form.password.data, by=request_context(),
                               policy=login_policy())
        if account is not None:
            start_session(account)
            return next_step_after_password(account, target)
        count_address_failure()
        form.form_errors.append(_(GENERIC_LOGIN_FAILURE))
        return render_template("account/login.html", form=form), 401
    status = 422 if request.method == "POST" else 200
    return render_template("account/login.html", form=form), status


@bp.route("/login/verify", methods=["GET", "POST"], endpoint="verify")
@bp.route("/account/step-up", methods=["GET", "POST"], endpoint="step_up")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@login_required
@public
def verify():
    """The second step of a login, and the step-up check of a logged-in session (same form)."""
    account = current_user.account
    target = safe_local_target(request.args.get("next"))
    step_up = current_user.user_session.second_factor_at is not None
    state = factors.status(get_session(), account)
    if not state.enrolled:
        return redirect(url_for("security.overview"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        wait = address_wait()
        if wait:
            form.code.errors = [_(TOO_MANY_ATTEMPTS, seconds=wait)]
            return (render_template("account/verify.html", form=form, state=state, step_up=step_up), 429,
                    {"Retry-After": str(wait)})
        method = check_second_factor(account, form.code.data)
        if method is not None:
            complete_second_factor(method)
            if method == "recovery_code":
                left = factors.status(get_session(), account).recovery_codes_left
                flash(_("You used a recovery code; %(left)s left. Set up a new factor or new codes if you "
                        "lost your device.", left=left), "warning")
            return redirect(target or url_for("home.index"))
        form.code.errors = [_(factors.WRONG_CODE)]
        return render_template("account/verify.html", form=form, state=state, step_up=step_up), 401
    status = 422 if request.method == "POST" else 200
    return render_template("account/verify.html", form=form, state=state, step_up=step_up), status


@bp.route("/logout", methods=["POST"])
@public
def logout():
    if ButtonForm().validate_on_submit():
        end_current_session("logout")
        flash(_("You are logged out."), "info")
    return redirect(url_for("home.index"))


@bp.route("/account/setup", methods=["GET", "POST"])
@login_required
@public
def setup():
    account = current_user.account
    if not account.must_choose_credentials:
        return redirect(url_for("home.index"))
    form = SetupForm()
    if form.validate_on_submit():
        if form.password.data != form.confirm.data:
            form.confirm.errors = [_("The two passwords differ.")]
            return render_template("account/setup.html", form=form), 422
        try:
            choose_credentials(get_session(), account, form.username.data, form.password.data, by=request_context())
        except DomainError as error:
            apply_domain_error(form, error)
            return render_template("account/setup.html", form=form), error.status
        start_session(account)  # the issued-credential session was ended: a new one
        flash(_("Your user name and password are set. From now on, log in with them."), "success")
        return next_step_after_password(account, None)
    return render_template("account/setup.html", form=form), 422 if request.method == "POST" else 200
