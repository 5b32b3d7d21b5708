"""Login, logout and the first-login choice of credentials."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from access.errors import DomainError
from access.operations import GENERIC_LOGIN_FAILURE, LoginPolicy, authenticate, choose_credentials, end_sessions
from portal.auth import LoginUser, bind_session
from portal.context import request_context
from portal.database import get_session
from portal.extensions import limiter
from portal.forms import ButtonForm, LoginForm, SetupForm, apply_domain_error
from portal.gate import public
from portal.urls import safe_local_target

bp = Blueprint("account", __name__)


def login_policy() -> LoginPolicy:
    config = current_app.config
    return LoginPolicy(config["LOGIN_MAX_FAILURES"], config["LOGIN_BASE_LOCK_SECONDS"], config["LOGIN_MAX_LOCK_SECONDS"])


def start_session(account) -> None:
    """A fresh session at login: nothing from before survives (session fixation)."""
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    login_user(LoginUser(account))
    session.permanent = True
    bind_session()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@public
def login():
    form = LoginForm()
    if form.validate_on_submit():
        account = authenticate(get_session(), form.login.data, form.password.data, by=request_context(),
                               policy=login_policy())
        if account is not None:
            start_session(account)
            if account.must_choose_credentials:
                return redirect(url_for("account.setup"))
            return redirect(safe_local_target(request.args.get("next")) or url_for("home.index"))
        form.form_errors.append(_(GENERIC_LOGIN_FAILURE))
        return render_template("account/login.html", form=form), 401
    status = 422 if request.method == "POST" else 200
    return render_template("account/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@public
def logout():
    if ButtonForm().validate_on_submit():
        if current_user.is_authenticated:
            end_sessions(get_session(), current_user.account, by=request_context())
        logout_user()
        session.clear()
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
        start_session(account)  # new generation: a new session
        flash(_("Your user name and password are set. From now on, log in with them."), "success")
        return redirect(url_for("home.index"))
    return render_template("account/setup.html", form=form), 422 if request.method == "POST" else 200
