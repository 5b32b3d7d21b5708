"""Error pages and RFC 9457 problem+json."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from access.errors import DomainError
from portal.gate import AccessDenied, StepUpRequired
from portal.messages import error_text, reason_text, step_text

PROBLEM_BASE = "https://portal.invalid/problems/"


def wants_json() -> bool:
    return request.path.startswith("/api/")


def problem(status: int, code: str, detail: str, *, field: str | None = None, **extra):
    body = {"type": PROBLEM_BASE + code, "title": code.replace("-", " ").capitalize(), "status": status,
            "detail": detail, "instance": request.path}
    if field:
        body["field"] = field
        body["errors"] = [{"field": field, "detail": detail}]
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _referrer_path() -> str | None:
    from urllib.parse import urlsplit

    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def init_app(app: Flask) -> None:
    @app.errorhandler(AccessDenied)
    def _denied(error: AccessDenied):
        decision = error.decision
        status = 401 if decision.reason.code == "login-required" else 403
        if wants_json():
            return problem(status, decision.reason.code, decision.reason.text,
                           application=decision.application, path=decision.path_text)
        if status == 401:
            from portal.auth import unauthorized

            return unauthorized()
        return render_template("errors/denied.html", decision=decision, reason=reason_text(decision.reason),
                               path=[step_text(s) for s in decision.path]), status

    @app.errorhandler(StepUpRequired)
    def _step_up(error: StepUpRequired):
        from flask import url_for

        from portal.urls import safe_local_target

        detail = _("Confirm it is you: this act needs a second-factor check of at most %(minutes)s minutes old.",
                   minutes=app.config["STEP_UP_MINUTES"])
        if wants_json():
            return problem(401, "step-up-required", detail,
                           verify="POST /api/v1/session/second-factor with {\"code\": ...}")
        # Back to the page the form was on (same-origin Referer), or to this page for a GET.
        back = request.full_path if request.method == "GET" else safe_local_target(_referrer_path())
        return render_template("account/step_up_needed.html", message=detail,
                               step_up_url=url_for("account.step_up", next=back)), 401

    @app.errorhandler(DomainError)
    def _domain(error: DomainError):
        # Views normally catch these to re-render their form; this is the fallback.
        if wants_json():
            return problem(error.status, error.code, error_text(error), field=error.field)
        return render_template("errors/generic.html", status=error.status, message=error_text(error)), error.status

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        if wants_json():
            return problem(400, "csrf-failed", "Missing or invalid CSRF token: send it in the X-CSRFToken header "
                                              "(GET /api/v1/session returns one).")
        return render_template("errors/generic.html", status=400,
                               message=_("Your form expired or was not sent from this site. Reload the page and try again.")), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if wants_json():
            return problem(error.code or 500, (error.name or "error").lower().replace(" ", "-"),
                           error.description or "")
        return render_template("errors/generic.html", status=error.code, message=error.description), error.code

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error")
        if wants_json():
            return problem(500, "internal-error", "Something went wrong on our side; nothing was saved.")
        return render_template("errors/generic.html", status=500,
                               message=_("Something went wrong on our side; nothing was saved.")), 500
