"""Request-derived facts every view needs: the subject, the request context for audit, the catalogue."""
from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, g, request
from flask_login import current_user

from access.catalogue import Catalogue, load_catalogue
from access.decision import ANONYMOUS, Subject
from audit.operations import RequestContext


def request_id() -> str:
    if "request_id" not in g:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() and incoming.isprintable() \
            else uuid.uuid4().hex
    return g.request_id


def current_subject() -> Subject:
    """The machine client of a bearer request (portal.oauth checked its token before the view),
    else the logged-in account, else anonymous."""
    machine = g.get("machine_subject")
    if machine is not None:
        return machine
    if not current_user.is_authenticated:
        return ANONYMOUS
    account = current_user.account
    return Subject(person_id=account.person_id, label=account.login_name,
                   is_portal_officer=account.is_portal_officer, disabled=account.is_disabled)


def proof_context() -> dict[str, Any]:
    """What the request proves to the decision point's certificate tier: the certificate whose key
    signed the assertion of a bearer token. A browser session proves no possession of a key."""
    return dict(g.get("proof_context") or {})


def base_context() -> RequestContext:
    """Where the request comes from, before knowing who sends it (used while loading the session)."""
    return RequestContext(ip=request.remote_addr, user_agent=request.headers.get("User-Agent"),
                          request_id=request_id())


def request_context() -> RequestContext:
    subject = current_subject()
    return RequestContext(
        actor_person_id=subject.person_id,
        actor_label=subject.label if not subject.anonymous else None,
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
        request_id=request_id(),
        # A staff member allowed under mandate: every record of this request names his provider too.
        provider_enterprise_id=getattr(g.get("decision"), "provider_enterprise_id", None),
    )


def catalogue() -> Catalogue:
    return load_catalogue(current_app.config.get("CATALOGUE_PATH"))
