"""Helpers for the functional tests: a browser-like client, a builder for the
facts a test starts from (through the real operations), an HTML reader and
row counting."""
from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access import operations as ops
from access.catalogue import load_catalogue
from access.clock import today
from access.models import (Account, Enterprise, Link, LinkKind, Membership, OutboxMessage, Person, Right,
                           Role)
from access.models import TotpFactor
from access.passwords import hash_password
from access.validators import make_insz, make_kbo, make_rsz
from audit.models import AuditRecord
from audit.operations import RequestContext
from repertory.models import ChangeProposal, RecordChange
from tests.factories import enrol_totp, next_totp_code

USER_AGENT = "functional-tests/1.0"
CLIENT_IP = "203.0.113.10"
PASSWORD = "Zonnebloem-Kade-47"  # every persona's own password (set directly, not through the policy)
COOKIE = "portal_session"
COOKIE_DOMAIN = "portal.test"

BUSINESS_MODELS = (Enterprise, Person, Link, Account, Membership, Right, OutboxMessage, ChangeProposal,
                   RecordChange)


# --- counting rows ---------------------------------------------------------------


def business_counts(session: Session) -> dict[str, int]:
    session.expire_all()
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in BUSINESS_MODELS}


def row_counts(session: Session, models: tuple = ()) -> dict[str, int]:
    """Rows of the business models and of `models`, by table."""
    counts = business_counts(session)
    counts.update({m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in models})
    return counts


class OnlyAuditWritten:
    """The block writes no row of the business models nor of `models`, and exactly the audit records
    of these (action, outcome)s, in order."""

    def __init__(self, session: Session, *expected: tuple[str, str], models: tuple = ()) -> None:
        self.session, self.expected, self.models = session, list(expected), models

    def __enter__(self) -> "OnlyAuditWritten":
        self.before, self.last = row_counts(self.session, self.models), last_audit_id(self.session)
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is not None:
            return
        assert row_counts(self.session, self.models) == self.before
        self.records = audit_since(self.session, self.last)
        assert [(r.action, r.outcome) for r in self.records] == self.expected


def audit_count(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditRecord))


def audit_since(session: Session, last_id: int) -> list[AuditRecord]:
    session.expire_all()
    return list(session.scalars(select(AuditRecord).where(AuditRecord.id > last_id).order_by(AuditRecord.id)))


def last_audit_id(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.coalesce(func.max(AuditRecord.id), 0)))


class NothingWritten:
    """Context manager: the block writes no business row; `audit` says which audit rows are allowed.

    audit="none": no audit row at all; audit="decisions": only decision records
    (the gate's answer, kept even when the request is refused); an int: exactly
    that many decision records; a list: exactly these (action, outcome) rows."""

    def __init__(self, session: Session, audit: str | int | list[tuple[str, str]] = "none",
                 outcome: str | None = None) -> None:
        self.session, self.audit, self.outcome = session, audit, outcome
        self.new_audit: list[AuditRecord] = []

    def __enter__(self) -> "NothingWritten":
        self.before = business_counts(self.session)
        self.last_audit = last_audit_id(self.session)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return
        after = business_counts(self.session)
        assert after == self.before, f"business rows changed: {self.before} -> {after}"
        self.new_audit = audit_since(self.session, self.last_audit)
        actions = [(r.action, r.outcome) for r in self.new_audit]
        if self.audit == "none":
            assert actions == [], f"unexpected audit rows: {actions}"
        elif isinstance(self.audit, list):
            assert actions == self.audit, f"audit rows {actions}, expected {self.audit}"
        else:
            assert all(a.startswith("decision:") for a, _ in actions), f"non-decision audit rows: {actions}"
            if isinstance(self.audit, int):
                assert len(actions) == self.audit, actions
            if self.outcome is not None:
                assert all(o == self.outcome for _, o in actions), actions


# --- reading HTML ----------------------------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())

    def has_class(self, name: str) -> bool:
        return name in (self.attrs.get("class") or "").split()


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.stack: list[Element] = []

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: (v if v is not None else "") for k, v in attrs})
        self.elements.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.elements.append(Element(tag, {k: (v if v is not None else "") for k, v in attrs}))

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data):
        for element in self.stack:
            element.parts.append(data)


class Page:
    """A parsed HTML response."""

    def __init__(self, body: str | bytes) -> None:
        self.html = body.decode("utf-8") if isinstance(body, bytes) else body
        reader = _Reader()
        reader.feed(self.html)
        reader.close()
        self.elements = reader.elements

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        found = []
        for element in self.elements:
            if tag and element.tag != tag:
                continue
            if cls and not element.has_class(cls):
                continue
            if any(element.attrs.get(name.replace("_", "-")) != value for name, value in attrs.items()):
                continue
            found.append(element)
        return found

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element | None:
        found = self.find_all(tag, cls, **attrs)
        return found[0] if found else None

    def testid(self, value: str) -> str | None:
        element = self.find(data_testid=value)
        return element.text if element else None

    @property
    def text(self) -> str:
        body = self.find("body")
        return body.text if body else " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", self.html)).split())

    def field_errors(self, name: str) -> list[str]:
        return [e.text for e in self.find_all("p", cls="error", data_field=name)]

    @property
    def form_errors(self) -> list[str]:
        return [e.text for e in self.find_all(cls="form-error")]

    @property
    def flashes(self) -> list[str]:
        return [e.text for e in self.find_all("p", cls="flash")]


def page(response) -> Page:
    assert response.mimetype == "text/html", (response.status_code, response.mimetype)
    return Page(response.get_data())


def location_path(response) -> str:
    return urlsplit(response.headers.get("Location", "")).path


# --- the client ------------------------------------------------------------------


class Visitor:
    """One browser: a test client with a fixed user agent, address and language,
    that adds the CSRF token to forms and unsafe API calls."""

    def __init__(self, app, ip: str = CLIENT_IP, lang: str = "en", user_agent: str = USER_AGENT) -> None:
        self.app = app
        self.client = app.test_client()
        self.client.environ_base.update({"HTTP_USER_AGENT": user_agent, "REMOTE_ADDR": ip,
                                         "HTTP_ACCEPT_LANGUAGE": lang})

    # plumbing
    def token(self) -> str:
        response = self.client.get("/api/v1/session")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["csrf_token"]

    def cookie(self) -> str | None:
        cookie = self.client.get_cookie(COOKIE, domain=COOKIE_DOMAIN)
        return cookie.value if cookie else None

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs):
        data = {k: v for k, v in (data or {}).items() if v is not None}
        if csrf:
            data["csrf_token"] = self.token()
        return self.client.post(path, data=data, **kwargs)

    def api(self, method: str, path: str, json: Any = None, *, csrf: bool = True, headers: dict | None = None,
            **kwargs):
        headers = dict(headers or {})
        if csrf and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            headers.setdefault("X-CSRFToken", self.token())
        if json is not None:
            kwargs["json"] = json
        return self.client.open(path, method=method.upper(), headers=headers, **kwargs)

    # logging in
    def db(self) -> Session:
        return self.app.config["DB_SESSION_FACTORY"]()

    def totp_code(self, login_name: str) -> str:
        """The code the person's phone shows now (tests.factories.TEST_TOTP_SECRET)."""
        session = self.db()
        try:
            return next_totp_code(session, ops.find_account_by_login(session, login_name))
        finally:
            if not session.info.get("shared"):  # an app on its own engine: a session of its own, closed
                session.close()

    def login(self, login_name: str, password: str = PASSWORD, *, second_factor: bool = True, path: str = "/login"):
        """Password, then (when the portal asks for it) the authenticator code, like a person."""
        self.last_login = ("html", login_name, password)
        response = self.post(path, {"login": login_name, "password": password})
        if second_factor and response.status_code == 302 and location_path(response) == "/login/verify":
            return self.post(response.headers["Location"], {"code": self.totp_code(login_name)})
        return response

    def api_login(self, login_name: str, password: str = PASSWORD, *, second_factor: bool = True):
        self.last_login = ("api", login_name, password)
        response = self.api("POST", "/api/v1/session", {"login": login_name, "password": password})
        if second_factor and response.status_code == 200 and response.get_json()["second_factor"] == "required":
            return self.api("POST", "/api/v1/session/second-factor", {"code": self.totp_code(login_name)})
        return response

    def relogin(self):
        """Log in again as the last time (after the test clock moved past the session's timeouts)."""
        how, login_name, password = self.last_login
        response = (self.login if how == "html" else self.api_login)(login_name, password)
        assert response.status_code in (200, 302), response.get_data(as_text=True)
        return response

    def verify(self, login_name: str, next_path: str | None = None):
        """A step-up: the second-factor check again, in a logged-in session."""
        path = "/account/step-up" + (f"?next={next_path}" if next_path else "")
        return self.post(path, {"code": self.totp_code(login_name)})

    def api_enrol_totp(self, login_name: str) -> list[str]:
        """Set up an authenticator app through the API; returns the recovery codes."""
        assert self.api("POST", "/api/v1/account/totp").status_code == 201
        response = self.api("POST", "/api/v1/account/totp/confirm", {"code": self.totp_code(login_name)})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["recovery_codes"]

    def enrol_totp(self, login_name: str):
        """Set up an authenticator app through the pages (first login); returns the recovery-code page."""
        response = self.post("/account/security/totp")
        assert response.status_code == 200, response.get_data(as_text=True)
        return self.post("/account/security/totp/confirm", {"code": self.totp_code(login_name)})

    def logout(self):
        return self.post("/logout")


# --- building the facts a test starts from ---------------------------------------

_FIRST = ("Anna", "Bram", "Cato", "Daan", "Emma", "Floor", "Gust", "Hanne", "Ivo", "Jolien", "Kobe", "Lien")
_LAST = ("Aerts", "Bogaert", "Cools", "Dierckx", "Engels", "Fonteyn", "Geerts", "Hermans", "Imbrechts",
         "Jorissen", "Kools", "Lemmens")


@dataclass
class Persona:
    """Someone who can log in: his person row and the login he uses."""

    person: Person
    login: str
    password: str | None = PASSWORD
    credential: ops.IssuedCredential | None = None

    @property
    def id(self) -> int:
        return self.person.id

    @property
    def name(self) -> str:
        return self.person.full_name


class World:
    """Builds enterprises, persons, links and roles through the operations, then commits
    (the request under test shares the session: an uncommitted fact would be rolled back
    with a refused request)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.ctx = RequestContext(actor_label="functional-setup", ip="192.0.2.1", user_agent="setup",
                                  request_id="setup-0001")
        self.catalogue = load_catalogue()
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def commit(self) -> None:
        self.session.commit()

    # enterprises
    def employer(self, name: str | None = None, *, joint_committee: str = "200", **fields) -> Enterprise:
        n = self._next()
        values = dict(name=name or f"Werkgever Proef {n}", street=f"Kerkstraat {n}", postal_code="9000",
                      city="Gent", legal_form="BV", joint_committee=joint_committee)
        values.update(fields)
        enterprise = ops.register_enterprise(self.session, kbo=make_kbo(2_200_000 + n),
                                             rsz_number=make_rsz(3_300_000 + n), by=self.ctx, **values)
        self.commit()
        return enterprise

    def non_employer(self, name: str | None = None, **fields) -> Enterprise:
        n = self._next()
        values = dict(name=name or f"Eenmanszaak Proef {n}", street=f"Markt {n}", postal_code="2000",
                      city="Antwerpen", legal_form="BV")
        values.update(fields)
        enterprise = ops.register_enterprise(self.session, kbo=make_kbo(2_200_000 + n), by=self.ctx, **values)
        self.commit()
        return enterprise

    # persons
    def person(self, enterprise: Enterprise | None = None, kind: str | LinkKind = "werknemer", *,
               start: date | None = None, end: date | None = None, first: str | None = None,
               last: str | None = None, email: str | None = "auto") -> Person:
        n = self._next()
        first = first or _FIRST[n % len(_FIRST)]
        last = last or f"{_LAST[n % len(_LAST)]}"
        person = ops.record_person(self.session, insz=make_insz("850101", 100 + n), first_name=first,
                                   last_name=last, email=f"p{n}@example.invalid" if email == "auto" else email,
                                   by=self.ctx)
        if enterprise is not None:
            self.link(enterprise, person, kind, start=start, end=end)
        self.commit()
        return person

    def link(self, enterprise: Enterprise, person: Person, kind: str | LinkKind = "werknemer", *,
             start: date | None = None, end: date | None = None) -> Link:
        link = ops.add_link(self.session, enterprise, person, kind, start or today() - timedelta(days=365), end,
                            by=self.ctx)
        self.commit()
        return link

    # accounts
    def give_own_credentials(self, person: Person, username: str | None = None,
                             password: str = PASSWORD) -> Persona:
        account = person.account
        username = username or f"user{person.id}"
        account.username, account.username_lower = username, username.lower()
        account.password_hash = hash_password(password)
        account.initial_password_hash = None
        account.initial_password_expires_at = None
        self.session.flush()
        if not self.session.scalar(select(TotpFactor.id).where(TotpFactor.account_id == account.id,
                                                               TotpFactor.removed_at.is_(None))):
            enrol_totp(self.session, account)
        self.commit()
        return Persona(person, username, password)

    def officer(self, password: str = PASSWORD) -> Persona:
        n = self._next()
        account, _ = ops.create_portal_officer(self.session, insz=make_insz("700101", 500 + n), first_name="Olga",
                                               last_name=f"Officier{n}", email=None, password=password,
                                               by=self.ctx)
        enrol_totp(self.session, account)
        self.commit()
        return Persona(account.person, account.user_id, password)

    # roles
    def local_admin(self, enterprise: Enterprise, person: Person | None = None, *, kind: str = "zaakvoerder",
                    own_credentials: bool = True) -> Persona:
        person = person or self.person(enterprise, kind)
        appointment = ops.appoint_local_admin(self.session, enterprise, person, by=self.ctx)
        self.commit()
        if own_credentials:
            persona = self.give_own_credentials(person)
            persona.credential = appointment.credential
            return persona
        return Persona(person, appointment.credential.user_id, None, appointment.credential)

    def member(self, enterprise: Enterprise, admin: Persona, role: str = "user", *, person: Person | None = None,
               kind: str = "werknemer", rights: tuple[str, ...] = (), own_credentials: bool = True) -> Persona:
        person = person or self.person(enterprise, kind)
        by = self.ctx.as_actor(admin.person.id, admin.login)
        appointment = ops.designate(self.session, enterprise, person, Role(role), by=by)
        for application in rights:
            ops.grant_right(self.session, enterprise, person, application, catalogue=self.catalogue, by=by)
        self.commit()
        if own_credentials and person.account.must_choose_credentials:
            persona = self.give_own_credentials(person)
            persona.credential = appointment.credential
            return persona
        if own_credentials:
            return Persona(person, person.account.login_name, PASSWORD)
        return Persona(person, appointment.credential.user_id, None, appointment.credential)

    def grant(self, enterprise: Enterprise, admin: Persona, person: Person, *applications: str) -> None:
        by = self.ctx.as_actor(admin.person.id, admin.login)
        for application in applications:
            ops.grant_right(self.session, enterprise, person, application, catalogue=self.catalogue, by=by)
        self.commit()

    def proposal(self, enterprise: Enterprise, by: Persona, **values) -> ChangeProposal:
        from repertory.operations import propose_change

        proposal = propose_change(self.session, enterprise, values, values.pop("motivation", None),
                                  by=self.ctx.as_actor(by.person.id, by.login))
        self.commit()
        return proposal

    # reading
    def refresh(self, obj):
        self.session.expire_all()
        return self.session.get(type(obj), obj.id)

    def outbox_for(self, person: Person) -> list[OutboxMessage]:
        self.session.expire_all()
        return list(self.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient_person_id == person.id)
                                         .order_by(OutboxMessage.id)))

    def current_role(self, enterprise: Enterprise, person: Person) -> Role | None:
        self.session.expire_all()
        membership = ops.current_membership(self.session, enterprise.id, person.id)
        return membership.role if membership else None

    def current_rights(self, enterprise: Enterprise, person: Person) -> set[str]:
        self.session.expire_all()
        return set(self.session.scalars(select(Right.application).where(
            Right.enterprise_id == enterprise.id, Right.person_id == person.id, Right.revoked_at.is_(None))))


def problem_of(response, status: int, code: str | None = None) -> dict:
    """Assert an RFC 9457 problem answer and return its body."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/problem+json", response.mimetype
    body = response.get_json(force=True)
    for key in ("type", "title", "status", "detail"):
        assert key in body, body
    assert body["status"] == status
    if code is not None:
        assert body["type"].endswith("/" + code), body
    return body


def enterprise_id_from(response) -> int:
    match = re.search(r"/enterprises/(\d+)", response.headers.get("Location", ""))
    assert match, response.headers.get("Location")
    return int(match.group(1))
