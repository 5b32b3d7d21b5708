"""Operations on enterprises, persons, links, roles and rights.

Each applies the rules, flushes, and writes its audit record in the same
transaction; none commits. `by` says who acts and from where.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from access.catalogue import Catalogue, Tier
from access.clock import as_utc, today, utcnow
from access.errors import Conflict, DomainError, Forbidden, NotFound, ValidationError
from access.models import (
    DIRECT_AUTHORITY_KINDS,
    Account,
    Enterprise,
    Link,
    LinkKind,
    Membership,
    OutboxMessage,
    Person,
    Right,
    Role,
)
from access.passwords import (
    burn_verification_time,
    check_password_policy,
    hash_password,
    issue_secret,
    verify_password,
)
from access.sessions import end_all_sessions
from access.validators import format_kbo, normalise_insz, normalise_kbo, normalise_rsz
from audit.operations import RequestContext, record, survive

DEFAULT_INITIAL_PASSWORD_DAYS = 14
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$")


def _required(value: str | None, field: str, label: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError("%(label)s is required.", field, label=label)
    if len(value) > max_length:
        raise ValidationError("%(label)s may have at most %(max_length)s characters.", field, label=label,
                              max_length=max_length)
    return value


# --- enterprises -------------------------------------------------------------

ENTERPRISE_FIELDS = ("name", "street", "postal_code", "city", "legal_form", "joint_committee")
_FIELD_LIMITS = {"name": 200, "street": 200, "postal_code": 10, "city": 100, "legal_form": 60, "joint_committee": 20}
_JOINT_COMMITTEE = re.compile(r"^\d{3}(\.\d{2}){0,2}$")


def clean_enterprise_fields(values: dict[str, str | None], *, employer: bool) -> dict[str, str | None]:
    cleaned: dict[str, str | None] = {}
    for name in ENTERPRISE_FIELDS:
        if name == "joint_committee" and not employer:
            if (values.get(name) or "").strip():
                raise ValidationError("Only an employer (with an RSZ number) has a joint committee.", name)
            cleaned[name] = None
            continue
        label = name.replace("_", " ").capitalize()
        cleaned[name] = _required(values.get(name), name, label, _FIELD_LIMITS[name])
    if employer and not _JOINT_COMMITTEE.match(cleaned["joint_committee"] or ""):
        raise ValidationError("A joint committee (paritair comité) is written as 3 digits, e.g. 200 or 124.01.",
                              "joint_committee")
    if not re.fullmatch(r"\d{4}", cleaned["postal_code"] or ""):
        raise ValidationError("A Belgian postal code has 4 digits.", "postal_code")
    return cleaned


def register_enterprise(session: Session, *, kbo: str, rsz_number: str | None = None, by: RequestContext,
                        **fields: str | None) -> Enterprise:
    number = normalise_kbo(kbo)
    rsz = normalise_rsz(rsz_number) if (rsz_number or "").strip() else None
    cleaned = clean_enterprise_fields(fields, employer=rsz is not None)
    existing = session.scalar(select(Enterprise).where(Enterprise.kbo_number == number))
    if existing is not None:
        raise Conflict("Enterprise %(kbo)s is already registered (%(name)s).", "kbo", kbo=format_kbo(number),
                       name=existing.name)
    if rsz and session.scalar(select(Enterprise.id).where(Enterprise.rsz_number == rsz)):
        raise Conflict("RSZ number %(rsz)s is already registered for another enterprise.", "rsz_number", rsz=rsz)
    enterprise = Enterprise(kbo_number=number, rsz_number=rsz, created_at=utcnow(), **cleaned)
    session.add(enterprise)
    session.flush()
    record(session, by, action="enterprise.register", outcome="success", enterprise_id=enterprise.id,
           details={"after": enterprise_snapshot(enterprise)})
    return enterprise


def enterprise_snapshot(enterprise: Enterprise) -> dict[str, str | None]:
    return {"kbo": enterprise.kbo_number, "rsz_number": enterprise.rsz_number,
            **{name: getattr(enterprise, name) for name in ENTERPRISE_FIELDS}}


def get_enterprise(session: Session, enterprise_id: int) -> Enterprise:
    enterprise = session.get(Enterprise, enterprise_id)
    if enterprise is None:
        raise NotFound("Unknown enterprise.", "enterprise")
    return enterprise


def find_enterprise_by_kbo(session: Session, kbo: str, field: str = "kbo") -> Enterprise:
    number = normalise_kbo(kbo, field)
    enterprise = session.scalar(select(Enterprise).where(Enterprise.kbo_number == number))
    if enterprise is None:
        raise NotFound("No enterprise %(kbo)s is registered.", field, kbo=format_kbo(number))
    return enterprise


# --- persons and links -----------------------------------------------------------


def record_person(session: Session, *, insz: str, first_name: str, last_name: str, email: str | None = None,
                  by: RequestContext) -> Person:
    """Return the person with this INSZ, creating him if the portal does not know him yet."""
    number = normalise_insz(insz)
    first = _required(first_name, "first_name", "First name", 100)
    last = _required(last_name, "last_name", "Last name", 100)
    email = (email or "").strip() or None
    if email and (len(email) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email)):
        raise ValidationError("This is not a valid e-mail address.", "email")
    person = session.scalar(select(Person).where(Person.insz == number))
    if person is not None:
        return person
    person = Person(insz=number, first_name=first, last_name=last, email=email, created_at=utcnow())
    session.add(person)
    session.flush()
    record(session, by, action="person.record", outcome="success",
           details={"person_id": person.id, "name": person.full_name}, subject_person_ids=[person.id])
    return person


def add_link(session: Session, enterprise: Enterprise, person: Person, kind: LinkKind | str, start_date: date,
             end_date: date | None = None, *, by: RequestContext) -> Link:
    try:
        kind = LinkKind(kind)
    except ValueError:
        raise ValidationError("Unknown kind of link '%(kind)s'.", "kind", kind=kind) from None
    if end_date is not None and end_date < start_date:
        raise ValidationError("The end date of a link cannot be before its start date.", "end_date")
    link = Link(enterprise_id=enterprise.id, person_id=person.id, kind=kind, start_date=start_date,
                end_date=end_date, created_at=utcnow())
    session.add(link)
    session.flush()
    record(session, by, action="link.add", outcome="success", enterprise_id=enterprise.id,
           details={"person_id": person.id, "person": person.full_name, "after": _link_snapshot(link)},
           subject_person_ids=[person.id])
    return link


def end_link(session: Session, link: Link, end_date: date, *, by: RequestContext) -> Link:
    if end_date < link.start_date:
        raise ValidationError("The end date of a link cannot be before its start date.", "end_date")
    if link.end_date is not None and link.end_date <= end_date:
        raise ValidationError("This link already ends on %(end_date)s.", "end_date", end_date=link.end_date.isoformat())
    before = _link_snapshot(link)
    link.end_date = end_date
    session.flush()
    record(session, by, action="link.end", outcome="success", enterprise_id=link.enterprise_id,
           details={"person_id": link.person_id, "before": before, "after": _link_snapshot(link)},
           subject_person_ids=[link.person_id])
    # A link that has already ended takes the roles resting on it at once: so do the person's sessions
    # (a later end date takes effect through the decision point on that day).
    account = link.person.account
    if end_date < today() and account is not None:
        end_all_sessions(session, account, "link ended", by=by)
    return link


def _link_snapshot(link: Link) -> dict[str, str | None]:
    return {"kind": link.kind.value, "start_date": link.start_date.isoformat(),
            "end_date": link.end_date.isoformat() if link.end_date else None}


def direct_authority_link(session: Session, enterprise_id: int, person_id: int, day: date | None = None) -> Link | None:
    day = day or today()
    return session.scalar(
        select(Link).where(
            Link.enterprise_id == enterprise_id, Link.person_id == person_id,
            Link.kind.in_(DIRECT_AUTHORITY_KINDS), Link.start_date <= day,
            or_(Link.end_date.is_(None), Link.end_date >= day),
        ).order_by(Link.start_date).limit(1)
    )


def require_direct_authority(session: Session, enterprise: Enterprise, person: Person, field: str = "person_id") -> Link:
    day = today()
    link = direct_authority_link(session, enterprise.id, person.id, day)
    if link is not None:
        return link
    kinds = sorted({l.kind.value for l in session.scalars(
        select(Link).where(Link.enterprise_id == enterprise.id, Link.person_id == person.id))})
    why = (f"{person.full_name} has only these links with it: {', '.join(kinds)}" if kinds
           else f"{person.full_name} has no link with it")
    raise ValidationError(
        "%(person)s is not under the direct authority of %(kbo)s on %(day)s "
        "(%(why)s). Only employees, the zaakvoerder, a bestuurder or a vennoot may be local administrator or user; "
        "self-employed collaborators, third parties, providers and intermediaries never.",
        field, person=person.full_name, kbo=enterprise.kbo_display, day=day.isoformat(), why=why,
    )


# --- accounts ----------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCredential:
    """A one-time initial credential, shown once to whoever issued it."""

    user_id: str
    password: str
    expires_at: datetime


def _issue_initial_credential(session: Session, person: Person, days: int) -> IssuedCredential | None:
    """Give the person an account with a fresh initial password, unless he already chose his own."""
    account = person.account
    if account is not None and not account.must_choose_credentials:
        return None
    password = issue_secret(16)
    expires_at = utcnow() + timedelta(days=days)
    if account is None:
        account = Account(person_id=person.id, user_id=_new_user_id(session), created_at=utcnow(),
                          is_portal_officer=False, is_disabled=False, failed_logins=0)
        session.add(account)
        person.account = account
    account.initial_password_hash = hash_password(password)
    account.initial_password_expires_at = expires_at
    session.flush()
    return IssuedCredential(account.user_id, password, expires_at)


def _new_user_id(session: Session) -> str:
    while True:
        candidate = "U" + issue_secret(8).upper()
        if not session.scalar(select(Account.id).where(Account.user_id == candidate)):
            return candidate


def _notify(session: Session, person: Person, kind: str, subject: str, body: str) -> None:
    session.add(OutboxMessage(created_at=utcnow(), kind=kind, recipient_person_id=person.id,
                              recipient_email=person.email, subject=subject, body=body))


def _send_credential(session: Session, person: Person, enterprise: Enterprise, role: str,
                     credential: IssuedCredential | None) -> None:
    if credential is None:
        _notify(session, person, "role-notice", f"You are now {role} of {enterprise.name}",
                f"You were designated {role} of {enterprise.name} ({enterprise.kbo_display}). "
                "Log in with your own user name and password.")
        return
    _notify(session, person, "initial-credential", "Your access to the portal",
            f"You were designated {role} of {enterprise.name} ({enterprise.kbo_display}).\n"
            f"User-id: {credential.user_id}\nInitial password: {credential.password}\n"
            f"It expires on {credential.expires_at:%Y-%m-%d %H:%M} UTC. At your first login you choose "
            "your own user name and password.")


def _flush_or_refuse(session: Session, row: object, refusal: DomainError) -> None:
    """Insert `row`; if a unique index refuses it (a concurrent request got
    there first), undo only that insert and raise `refusal`. The row is added inside the
    savepoint: begin_nested() flushes pending rows before its SAVEPOINT."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise refusal from None


# --- roles -------------------------------------------------------------------------


def current_membership(session: Session, enterprise_id: int, person_id: int) -> Membership | None:
    return session.scalar(select(Membership).where(
        Membership.enterprise_id == enterprise_id, Membership.person_id == person_id,
        Membership.ended_at.is_(None)))


def current_local_admin(session: Session, enterprise_id: int) -> Membership | None:
    return session.scalar(select(Membership).where(
        Membership.enterprise_id == enterprise_id, Membership.role == Role.LOCAL_ADMIN,
        Membership.ended_at.is_(None)))


def _end_membership(session: Session, membership: Membership, by: RequestContext) -> None:
    membership.ended_at = utcnow()
    membership.ended_by_id = by.actor_person_id


def _start_membership(session: Session, enterprise: Enterprise, person: Person, role: Role,
                      by: RequestContext) -> Membership:
    membership = Membership(enterprise_id=enterprise.id, person_id=person.id, role=role,
                            appointed_by_id=by.actor_person_id, started_at=utcnow())
    # The partial unique indexes catch a concurrent appointment.
    _flush_or_refuse(session, membership, Conflict(
        "Someone else changed this enterprise's roles at the same time; reload and try again.", "person_id"))
    return membership


@dataclass(frozen=True)
class Appointment:
    membership: Membership
    credential: IssuedCredential | None


def appoint_local_admin(session: Session, enterprise: Enterprise, person: Person, *, by: RequestContext,
                        initial_password_days: int = DEFAULT_INITIAL_PASSWORD_DAYS) -> Appointment:
    """The institution appoints an enterprise's local administrator."""
    require_direct_authority(session, enterprise, person)
    current = current_local_admin(session, enterprise.id)
    if current is not None and current.person_id == person.id:
        raise Conflict("%(person)s is already the local administrator of %(kbo)s.", "person_id",
                       person=person.full_name, kbo=enterprise.kbo_display)
    if current is not None and direct_authority_link(session, enterprise.id, current.person_id):
        raise Conflict(
            "%(kbo)s already has a local administrator, %(person)s; "
            "he can hand the role over, or his link must end first.", "person_id",
            kbo=enterprise.kbo_display, person=current.person.full_name)
    before = None
    if current is not None:  # his link ended: the role already stopped; close it on record
        before = {"local_admin": current.person.full_name}
        _end_membership(session, current, by)
    own = current_membership(session, enterprise.id, person.id)
    if own is not None:
        _end_membership(session, own, by)
    session.flush()
    membership = _start_membership(session, enterprise, person, Role.LOCAL_ADMIN, by)
    credential = _issue_initial_credential(session, person, initial_password_days)
    _send_credential(session, person, enterprise, "local administrator", credential)
    record(session, by, action="role.appoint_local_admin", outcome="success", enterprise_id=enterprise.id,
           details={"person_id": person.id, "before": before, "after": {"local_admin": person.full_name},
                    "initial_credential_issued": credential is not None}, subject_person_ids=[person.id])
    return Appointment(membership, credential)


def hand_over_local_admin(session: Session, enterprise: Enterprise, successor: Person, *, by: RequestContext,
                          initial_password_days: int = DEFAULT_INITIAL_PASSWORD_DAYS) -> Appointment:
    """The local administrator hands his role to another eligible person; users keep their rights,
    and he stays a user himself."""
    current = current_local_admin(session, enterprise.id)
    if current is None or current.person_id != by.actor_person_id:
        raise ValidationError("Only the current local administrator can hand the role over.", "person_id")
    if successor.id == current.person_id:
        raise ValidationError("Choose another person than yourself.", "person_id")
    require_direct_authority(session, enterprise, successor)
    predecessor = current.person
    _end_membership(session, current, by)
    successor_membership = current_membership(session, enterprise.id, successor.id)
    if successor_membership is not None:
        _end_membership(session, successor_membership, by)
    session.flush()
    membership = _start_membership(session, enterprise, successor, Role.LOCAL_ADMIN, by)
    _start_membership(session, enterprise, predecessor, Role.USER, by)
    credential = _issue_initial_credential(session, successor, initial_password_days)
    _send_credential(session, successor, enterprise, "local administrator", credential)
    record(session, by, action="role.hand_over", outcome="success", enterprise_id=enterprise.id,
           details={"before": {"local_admin": predecessor.full_name},
                    "after": {"local_admin": successor.full_name, predecessor.full_name: "user"}},
           subject_person_ids=[predecessor.id, successor.id])
    return Appointment(membership, credential)


def designate(session: Session, enterprise: Enterprise, person: Person, role: Role, *, by: RequestContext,
              initial_password_days: int = DEFAULT_INITIAL_PASSWORD_DAYS) -> Appointment:
    """Add a user or appoint a co-administrator (the decision point checked who may)."""
    if role is Role.LOCAL_ADMIN:
        raise ValidationError("Use the appointment or hand-over of the local administrator.", "role")
    require_direct_authority(session, enterprise, person)
    existing = current_membership(session, enterprise.id, person.id)
    if existing is not None and existing.role is role:
        raise Conflict("%(person)s is already %(role)s of %(kbo)s.", "person_id", person=person.full_name,
                       role=_role_label(role), kbo=enterprise.kbo_display)
    if existing is not None and existing.role is Role.LOCAL_ADMIN:
        raise Conflict("%(person)s is the local administrator of %(kbo)s.", "person_id", person=person.full_name,
                       kbo=enterprise.kbo_display)
    before = _role_label(existing.role) if existing else None
    if existing is not None:
        _end_membership(session, existing, by)
        session.flush()
    membership = _start_membership(session, enterprise, person, role, by)
    credential = _issue_initial_credential(session, person, initial_password_days)
    _send_credential(session, person, enterprise, _role_label(role), credential)
    record(session, by, action=f"role.designate_{role.value}", outcome="success", enterprise_id=enterprise.id,
           details={"person_id": person.id, "person": person.full_name,
                    "before": {"role": before}, "after": {"role": _role_label(role)},
                    "initial_credential_issued": credential is not None}, subject_person_ids=[person.id])
    return Appointment(membership, credential)


def remove_member(session: Session, enterprise: Enterprise, person: Person, *, by: RequestContext) -> None:
    """End a user's or co-administrator's role; his rights on this enterprise end with it."""
    existing = current_membership(session, enterprise.id, person.id)
    if existing is None:
        raise NotFound("%(person)s has no role in %(kbo)s.", "person_id", person=person.full_name,
                       kbo=enterprise.kbo_display)
    if existing.role is Role.LOCAL_ADMIN:
        raise ValidationError("The local administrator hands his role over; he cannot be removed here.", "person_id")
    _end_membership(session, existing, by)
    revoked = [r.application for r in _current_rights(session, enterprise.id, person.id)]
    for right in _current_rights(session, enterprise.id, person.id):
        right.revoked_at = utcnow()
        right.revoked_by_id = by.actor_person_id
    session.flush()
    record(session, by, action=f"role.remove_{existing.role.value}", outcome="success", enterprise_id=enterprise.id,
           details={"person_id": person.id, "person": person.full_name,
                    "before": {"role": _role_label(existing.role), "rights": revoked},
                    "after": {"role": None, "rights": []}}, subject_person_ids=[person.id])


def membership_action(session: Session, enterprise_id: int, person_id: int, new_role: Role | None) -> str:
    """The access-management action that changing this person's role amounts to.

    Appointing, demoting or removing a co-administrator is the local
    administrator's alone ("manage_co_admins"); anything else about users is
    "manage_users", which co-administrators may do too."""
    current = current_membership(session, enterprise_id, person_id)
    touches_co_admin = new_role is Role.CO_ADMIN or (current is not None and current.role is Role.CO_ADMIN)
    return "manage_co_admins" if touches_co_admin else "manage_users"


def _role_label(role: Role) -> str:
    return {Role.LOCAL_ADMIN: "local administrator", Role.CO_ADMIN: "co-administrator", Role.USER: "user"}[role]


# --- rights ------------------------------------------------------------------------


def _current_rights(session: Session, enterprise_id: int, person_id: int) -> list[Right]:
    return list(session.scalars(select(Right).where(
        Right.enterprise_id == enterprise_id, Right.person_id == person_id, Right.revoked_at.is_(None))))


def _grantable_application(catalogue: Catalogue, enterprise: Enterprise, application: str):
    app = catalogue.get(application)
    if app is None or not app.grantable:
        raise ValidationError("Unknown application '%(application)s'.", "application", application=application)
    if app.tier is Tier.FREE:
        raise ValidationError("%(application)s is freely accessible; no right is needed.", "application",
                              application=app.name('en'))
    if app.employer_only and not enterprise.is_employer:
        raise ValidationError("%(application)s is for employers only.", "application", application=app.name('en'))
    return app


def grant_right(session: Session, enterprise: Enterprise, person: Person, application: str, *,
                catalogue: Catalogue, by: RequestContext) -> Right:
    app = _grantable_application(catalogue, enterprise, application)
    membership = current_membership(session, enterprise.id, person.id)
    if membership is None:
        raise ValidationError(
            "%(person)s is not a user of %(kbo)s; add him as a user first.", "person_id",
            person=person.full_name, kbo=enterprise.kbo_display)
    if any(r.application == app.code for r in _current_rights(session, enterprise.id, person.id)):
        raise Conflict("%(person)s already has the right on %(application)s.", "application",
                       person=person.full_name, application=app.name('en'))
    right = Right(enterprise_id=enterprise.id, person_id=person.id, application=app.code,
                  granted_by_id=by.actor_person_id, granted_at=utcnow())
    _flush_or_refuse(session, right, Conflict("%(person)s already has the right on %(application)s.", "application",
                                              person=person.full_name, application=app.name('en')))
    record(session, by, action="right.grant", outcome="success", enterprise_id=enterprise.id,
           application=app.code, details={"person_id": person.id, "person": person.full_name,
                                          "before": {"right": False}, "after": {"right": True}},
           subject_person_ids=[person.id])
    return right


def revoke_right(session: Session, enterprise: Enterprise, person: Person, application: str, *,
                 by: RequestContext, reason: str | None = None, path: list[str] | None = None) -> Right:
    """`reason` and `path` say, in the audit record, what led to it when it is not the administrator's own
    act on the matrix (an access review: reviews/operations.py)."""
    right = next((r for r in _current_rights(session, enterprise.id, person.id) if r.application == application), None)
    if right is None:
        raise NotFound("%(person)s has no right on '%(application)s' for %(kbo)s.",
                       "application", person=person.full_name, application=application, kbo=enterprise.kbo_display)
    right.revoked_at = utcnow()
    right.revoked_by_id = by.actor_person_id
    session.flush()
    record(session, by, action="right.revoke", outcome="success", enterprise_id=enterprise.id,
           application=application, reason=reason, path=path,
           details={"person_id": person.id, "person": person.full_name,
                    "before": {"right": True}, "after": {"right": False}},
           subject_person_ids=[person.id])
    return right


# --- portal officers ------------------------------------------------------------------


def create_portal_officer(session: Session, *, insz: str, first_name: str, last_name: str, email: str | None,
                          password: str | None, by: RequestContext) -> tuple[Account, IssuedCredential | None]:
    """An institution staff member. With a password he logs in with it; without, he gets an initial one."""
    if password:  # refuse a weak password before anything is written
        check_password_policy(password, [first_name, last_name, insz])
    person = record_person(session, insz=insz, first_name=first_name, last_name=last_name, email=email, by=by)
    account = person.account
    credential = None
    if account is None:
        credential = _issue_initial_credential(session, person, DEFAULT_INITIAL_PASSWORD_DAYS)
        account = person.account
    if password:
        check_password_policy(password, [first_name, last_name, account.user_id])
        account.password_hash = hash_password(password)
        account.username = account.user_id
        account.username_lower = account.user_id.lower()
        account.initial_password_hash = None
        account.initial_password_expires_at = None
        credential = None
    account.is_portal_officer = True
    session.flush()
    record(session, by, action="role.create_portal_officer", outcome="success",
           details={"person_id": person.id, "person": person.full_name, "after": {"portal_officer": True}},
           subject_person_ids=[person.id])
    return account, credential


# --- login ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    base_lock_seconds: int = 60
    max_lock_seconds: int = 900


GENERIC_LOGIN_FAILURE = "The user name or password is wrong, or the account is temporarily locked."


def find_account_by_login(session: Session, login_name: str) -> Account | None:
    name = (login_name or "").strip()
    if not name or len(name) > 64:
        return None
    return session.scalar(select(Account).where(
        or_(Account.username_lower == name.lower(), Account.user_id == name.upper())))


def authenticate(session: Session, login_name: str, password: str, *, by: RequestContext,
                 policy: LoginPolicy = LoginPolicy()) -> Account | None:
    """Check a login. Every outcome is audited; a failure says nothing about why (no enumeration)."""
    account = find_account_by_login(session, login_name)
    label = (login_name or "")[:64]
    now = utcnow()
    if account is None:
        burn_verification_time(password)
        record(session, by.as_actor(None, label), action="login", outcome="failure",
               reason="unknown login name", survive_rollback=True)
        return None
    ctx = by.as_actor(account.person_id, account.login_name)
    if account_locked(account):
        burn_verification_time(password)
        record(session, ctx, action="login", outcome="failure", reason="account temporarily locked",
               survive_rollback=True)
        return None
    ok, how = _check_credential(account, password, now)
    if not ok or account.is_disabled:
        reason = ("account disabled" if ok else how) + count_account_failure(session, account, policy)
        record(session, ctx, action="login", outcome="failure", reason=reason, survive_rollback=True)
        return None
    account.failed_logins = 0
    account.locked_until = None
    account.last_login_at = now
    session.flush()
    record(session, ctx, action="login", outcome="success", reason=how)
    return account


def account_locked(account: Account) -> bool:
    return account.locked_until is not None and as_utc(account.locked_until) > utcnow()


def count_account_failure(session: Session, account: Account, policy: LoginPolicy) -> str:
    """One failed authentication step (a wrong password, code or passkey) on the account: past
    `max_failures` the account is locked, longer after each failure, capped so that an attacker cannot
    keep a real user out for long. The count outlives the refused request's rollback. Returns the note
    for the audit reason ("" or "; locked for N s after M failures")."""
    account.failed_logins += 1
    note = ""
    if account.failed_logins >= policy.max_failures:
        steps = account.failed_logins - policy.max_failures
        seconds = min(policy.base_lock_seconds * (2 ** steps), policy.max_lock_seconds)
        account.locked_until = utcnow() + timedelta(seconds=seconds)
        note = f"; locked for {seconds} s after {account.failed_logins} failures"
    session.flush()
    values = {"failed_logins": account.failed_logins, "locked_until": account.locked_until}
    account_id = account.id
    survive(session, lambda s: s.execute(update(Account).where(Account.id == account_id).values(**values)))
    return note


def _check_credential(account: Account, password: str, now: datetime) -> tuple[bool, str]:
    if account.password_hash is not None:
        return verify_password(account.password_hash, password), "password"
    if account.initial_password_hash is None:
        burn_verification_time(password)
        return False, "no credential"
    matches = verify_password(account.initial_password_hash, password)
    if matches and account.initial_password_expires_at and as_utc(account.initial_password_expires_at) < now:
        return False, "initial password expired"
    return matches, "initial password" if matches else "wrong initial password"


def password_context(session: Session, account: Account, username: str | None = None) -> list[str]:
    """The words a password may not contain: the person's names, his logins, his INSZ, and the names
    and KBO numbers of his enterprises (ASVS 5.0 6.2.11)."""
    person = account.person
    context = [person.first_name, person.last_name, username or account.username or "", account.user_id,
               person.insz]
    for membership in session.scalars(select(Membership).where(Membership.person_id == person.id)):
        context += [membership.enterprise.name, membership.enterprise.kbo_number]
    return context


def change_password(session: Session, account: Account, current: str, new: str, *, by: RequestContext) -> Account:
    """A logged-in person changes his password: he types the current one (a wrong one counts towards
    the lock, like a failed login). No periodic rotation is ever asked."""
    if account.password_hash is None or not verify_password(account.password_hash, current):
        note = count_account_failure(session, account, LoginPolicy())
        record(session, by, action="account.change_password", outcome="failure",
               reason="wrong current password" + note, survive_rollback=True)
        raise ValidationError("The current password is wrong.", "current")
    check_password_policy(new, password_context(session, account))
    if verify_password(account.password_hash, new):
        raise ValidationError("The new password must differ from the current one.", "password")
    account.password_hash = hash_password(new)
    session.flush()
    record(session, by, action="account.change_password", outcome="success",
           subject_person_ids=[account.person_id])
    return account


def choose_credentials(session: Session, account: Account, username: str, password: str, *,
                       by: RequestContext) -> Account:
    """First login: the person replaces the issued user-id and initial password by his own."""
    if not account.must_choose_credentials:
        raise ValidationError("You already chose your user name and password.", "username")
    expires = account.initial_password_expires_at
    if expires is not None and as_utc(expires) < utcnow():
        # The login came just in time; the choice must too.
        raise ValidationError("Your initial password has expired; ask your administrator for a new one.",
                              "password")
    username = (username or "").strip()
    if not USERNAME_PATTERN.match(username):
        raise ValidationError(
            "A user name has 3 to 64 characters: letters, digits, '.', '_', '@' or '-', starting with a letter or digit.",
            "username")
    taken = session.scalar(select(Account.id).where(
        or_(func.lower(Account.username) == username.lower(), Account.user_id == username.upper()),
        Account.id != account.id))
    if taken:
        raise Conflict("This user name is taken; choose another.", "username")
    check_password_policy(password, password_context(session, account, username))
    if verify_password(account.initial_password_hash, password):
        raise ValidationError("Choose a new password, not the initial one.", "password")
    account.username = username
    account.username_lower = username.lower()
    account.password_hash = hash_password(password)
    account.initial_password_hash = None
    account.initial_password_expires_at = None
    session.flush()
    record(session, by, action="account.choose_credentials", outcome="success",
           details={"username": username})
    # The session opened with the issued credential ends; the caller opens a new one.
    end_all_sessions(session, account, "credentials chosen", by=by)
    return account


# --- second factor reset, sessions and disabling (issue 6) ---------------------------------------------


def _account_of(person: Person) -> Account:
    if person.account is None:
        raise NotFound("This person has no account.", "person_id")
    return person.account


def reset_second_factor(session: Session, person: Person, *, by: RequestContext, enterprise: Enterprise | None = None,
                        initial_password_days: int = DEFAULT_INITIAL_PASSWORD_DAYS) -> IssuedCredential:
    """The person lost every second factor. His local administrator (`enterprise` given: the person must be
    one of its users or co-administrators) or a portal officer (no enterprise: anyone, administrators
    included) removes his factors, recovery codes and sessions and issues a new one-time initial credential:
    the person chooses a new password and sets up a new factor before reaching anything. Never a silent
    bypass: the credential goes to the person (outbox), and the act is audited with who did it."""
    account = _account_of(person)
    if enterprise is not None:
        membership = current_membership(session, enterprise.id, person.id)
        if membership is None:
            raise NotFound("This person is not a user of this enterprise.", "person_id")
        if membership.role is Role.LOCAL_ADMIN:
            raise Forbidden("The local administrator's second factor is reset by the portal officers.", "person_id")
    if by.actor_person_id is not None and by.actor_person_id == person.id:
        raise Forbidden("You cannot reset your own second factor; use a recovery code or ask another "
                        "administrator.", "person_id")
    from access.second_factor import remove_all_factors

    remove_all_factors(session, account)
    end_all_sessions(session, account, "second factor reset", by=by)
    account.password_hash = None
    account.failed_logins = 0
    account.locked_until = None
    credential = _issue_initial_credential(session, person, initial_password_days)
    assert credential is not None
    _notify(session, person, "initial-credential", "Your second factor was reset",
            f"Your second factor for the portal was reset by {by.actor_label or 'an administrator'}.\n"
            f"User-id: {credential.user_id}\nInitial password: {credential.password}\n"
            f"It expires on {credential.expires_at:%Y-%m-%d %H:%M} UTC. At your next login you choose a new "
            "password and set up a new second factor. If you did not ask for this, tell your administrator.")
    record(session, by, action="second_factor.reset", outcome="success",
           enterprise_id=enterprise.id if enterprise else None,
           details={"person_id": person.id, "person": person.full_name, "account": account.login_name},
           subject_person_ids=[person.id])
    return credential


def end_sessions_of(session: Session, person: Person, *, by: RequestContext,
                    enterprise: Enterprise | None = None) -> int:
    """An administrator's "end sessions": every session of the person's account ends at once."""
    account = _account_of(person)
    if enterprise is not None and current_membership(session, enterprise.id, person.id) is None:
        raise NotFound("This person is not a user of this enterprise.", "person_id")
    return end_all_sessions(session, account, f"ended by {by.actor_label or 'an administrator'}"[:40], by=by)


def set_account_disabled(session: Session, person: Person, disabled: bool, *, by: RequestContext) -> Account:
    """A portal officer disables (or enables again) an account; disabling ends every session at once."""
    account = _account_of(person)
    if account.is_disabled == disabled:
        raise ValidationError("The account is already %(state)s.", "disabled",
                              state="disabled" if disabled else "enabled")
    if by.actor_person_id == person.id:
        raise Forbidden("You cannot disable your own account.", "person_id")
    account.is_disabled = disabled
    session.flush()
    record(session, by, action="account.disable" if disabled else "account.enable", outcome="success",
           details={"person_id": person.id, "account": account.login_name}, subject_person_ids=[person.id])
    if disabled:
        end_all_sessions(session, account, "account disabled", by=by)
    return account
