"""Security headers on every response and the first-login gate."""
from __future__ import annotations

from flask import Flask, request

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # the step-up page returns to the form it interrupted
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}


def init_app(app: Flask) -> None:
    @app.after_request
    def _headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            # Pages show personal data: never cache them.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.before_request
    def _refuse_nul_characters():
        """No query parameter or form field of the portal means a NUL character, and PostgreSQL text
        cannot hold one: refuse it at the door (4xx naming the field) instead of failing in the driver."""
        from flask import abort
        from werkzeug.datastructures import MultiDict

        from portal.errors import problem, wants_json

        form = request.form if request.mimetype != "application/json" else MultiDict()
        for name, values in (*request.args.lists(), *form.lists()):
            if "\x00" in name or any("\x00" in value for value in values):
                field = name.replace("\x00", "")
                detail = f"{field}: text may not contain the NUL character."
                if wants_json():
                    return problem(422, "invalid-input", detail, field=field)
                abort(400, detail)
        return None

    @app.before_request
    def _first_login_gate():
        """Until the issued credentials are replaced, the account reaches nothing else."""
        from flask_login import current_user

        from portal.errors import problem, wants_json

        if not current_user.is_authenticated or not current_user.account.must_choose_credentials:
            return None
        if request.endpoint in {"account.setup", "account.logout", "static", "home.set_language",
                                "api.session_info", "api.choose_credentials", "api.logout", "api.openapi"}:
            return None
        if wants_json():
            return problem(403, "credentials-not-chosen",
                           "Choose your own user name and password first (POST /api/v1/account/credentials).")
        from flask import redirect, url_for

        return redirect(url_for("account.setup"))

    app.before_request(second_factor_gate)


# Endpoints a session may reach before its second factor: checking it, or setting a first one up.
_VERIFYING = frozenset({"account.verify", "account.step_up", "account.logout", "account.setup", "static",
                        "home.set_language", "api.choose_credentials",
                        "security.passkey_login_options", "security.passkey_login_verify",
                        "api.session_info", "api.logout", "api.openapi", "api.second_factor"})
_ENROLLING = frozenset({"account.logout", "account.setup", "static", "home.set_language", "security.overview",
                        "api.choose_credentials",
                        "security.totp_start", "security.totp_confirm", "security.passkey_register_options",
                        "security.passkey_register", "security.first_recovery_codes",
                        "api.session_info", "api.logout", "api.openapi", "api.totp_start", "api.totp_confirm",
                        "api.passkey_register_options", "api.passkey_register"})


def second_factor_gate():
    """Until the session has passed its second factor, it reaches only the second-factor step; an
    account that has none yet reaches only the enrolment (issue 6)."""
    from flask import redirect, url_for
    from flask_login import current_user

    from access import second_factor
    from portal.auth import second_factor_required
    from portal.database import get_session
    from portal.errors import problem, wants_json

    if not current_user.is_authenticated or current_user.account.must_choose_credentials:
        return None
    if current_user.user_session.second_factor_at is not None:
        return None
    # A factor set up is asked for, even by a person the setting does not oblige to have one.
    enrolled = second_factor.status(get_session(), current_user.account).enrolled
    if not enrolled and not second_factor_required(current_user.account):
        return None
    if request.endpoint in (_VERIFYING if enrolled else _ENROLLING):
        from flask import g

        g.second_factor_pending = True  # the header then offers only logging out
        return None
    if wants_json():
        if enrolled:
            return problem(401, "second-factor-required",
                           "Send the code of your authenticator app or a recovery code "
                           "(POST /api/v1/session/second-factor).")
        return problem(403, "second-factor-enrolment-required",
                       "Set up a second factor first (POST /api/v1/account/totp).")
    if enrolled:
        return redirect(url_for("account.verify", next=request.full_path if request.method == "GET" else None))
    return redirect(url_for("security.overview"))
