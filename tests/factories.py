"""Test data: factory-boy factories for the access models, and helpers that go
through the real operations wherever a rule matters (appointing, designating,
granting).

The factories are bound to one SQLAlchemy session at a time (`bind_session`);
the `factories` fixture below binds them to the test's `db_session`. Any test
package can use it by importing it into its conftest:

    from tests.factories import factories  # noqa: F401  (a pytest fixture)

Factories build rows directly (no rule is checked, no audit record written):
use them for the *facts* a test starts from. Use the helpers (`make_local_admin`,
`make_member`, `make_user_with_rights`) for anything the operations decide.
"""
from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Iterator

import factory
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access import operations as ops
from access.catalogue import Catalogue, load_catalogue
from access.clock import today, utcnow
from access.decision import Subject
from access.models import Account, Enterprise, Link, LinkKind, Membership, OutboxMessage, Person, Right, Role
from access.validators import make_insz, make_kbo, make_rsz
from audit.models import AuditRecord
from audit.operations import RequestContext

# --- session binding ------------------------------------------------------------

_bound: list[Session] = []


def _current_session() -> Session:
    if not _bound:
        raise RuntimeError("factories are not bound to a session: use the `factories` fixture or bind_session()")
    return _bound[-1]


@contextlib.contextmanager
def bind_session(session: Session) -> Iterator[Session]:
    """Bind every factory of this module to `session` for the duration of the block."""
    _bound.append(session)
    try:
        yield session
    finally:
        _bound.remove(session)


class _Base(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _current_session
        sqlalchemy_session_persistence = "flush"


# --- factories --------------------------------------------------------------------

# Number ranges well away from the demo data and from the numbers tests type in.
_KBO_BODY_BASE = 3_100_000
_RSZ_RADIX_BASE = 2_100_000
_FIRST_NAMES = ("An", "Bart", "Chris", "Dirk", "Eva", "Fien", "Geert", "Hilde", "Ilse", "Jan", "Karel", "Lotte")
_LAST_NAMES = ("Peeters", "Janssens", "Maes", "Claes", "Willems", "Goossens", "Wouters", "De Smet", "Dubois",
               "Lambert", "Mertens", "Jacobs")


def _insz(n: int) -> str:
    # A real birth date (1960-01-01 + n // 900 days) and a serial number 1..900.
    born = date(1960, 1, 1) + timedelta(days=n // 900)
    return make_insz(born.strftime("%y%m%d"), n % 900 + 1)


class EnterpriseFactory(_Base):
    """An enterprise without staff; `EnterpriseFactory(employer=True)` (or EmployerFactory) for an employer."""

    class Meta:
        model = Enterprise

    class Params:
        employer = factory.Trait(
            rsz_number=factory.Sequence(lambda n: make_rsz(_RSZ_RADIX_BASE + n)),
            joint_committee="200",
        )

    kbo_number = factory.Sequence(lambda n: make_kbo(_KBO_BODY_BASE + n))
    name = factory.Sequence(lambda n: f"Onderneming {n:04d}")
    street = factory.Sequence(lambda n: f"Kerkstraat {n % 200 + 1}")
    postal_code = "9000"
    city = "Gent"
    legal_form = "BV"
    rsz_number = None
    joint_committee = None
    created_at = factory.LazyFunction(utcnow)


class EmployerFactory(EnterpriseFactory):
    employer = True


class PersonFactory(_Base):
    class Meta:
        model = Person

    insz = factory.Sequence(_insz)
    first_name = factory.Sequence(lambda n: _FIRST_NAMES[n % len(_FIRST_NAMES)])
    last_name = factory.Sequence(lambda n: f"{_LAST_NAMES[n % len(_LAST_NAMES)]}{n}")
    email = factory.LazyAttribute(lambda p: f"{p.first_name.lower()}.{p.insz}@example.invalid")
    created_at = factory.LazyFunction(utcnow)


class LinkFactory(_Base):
    """A werknemer link that started a year ago and has no end, unless told otherwise."""

    class Meta:
        model = Link

    enterprise = factory.SubFactory(EnterpriseFactory)
    person = factory.SubFactory(PersonFactory)
    kind = LinkKind.WERKNEMER
    start_date = factory.LazyFunction(lambda: today() - timedelta(days=365))
    end_date = None
    created_at = factory.LazyFunction(utcnow)


class MembershipFactory(_Base):
    """A role row built directly: no direct-authority check, no audit record, no credential."""

    class Meta:
        model = Membership

    enterprise = factory.SubFactory(EnterpriseFactory)
    person = factory.SubFactory(PersonFactory)
    role = Role.USER
    appointed_by_id = None
    started_at = factory.LazyFunction(utcnow)
    ended_at = None
    ended_by_id = None


class RightFactory(_Base):
    """A right row built directly: no membership check, no audit record."""

    class Meta:
        model = Right

    class Params:
        enterprise = factory.SubFactory(EmployerFactory)  # Right has no relationship to it

    enterprise_id = factory.SelfAttribute("enterprise.id")
    person = factory.SubFactory(PersonFactory)
    application = "dmfa"
    granted_by = factory.SubFactory(PersonFactory)
    granted_at = factory.LazyFunction(utcnow)
    revoked_at = None
    revoked_by_id = None


# --- helpers through the real operations -------------------------------------------


@dataclass
class Member:
    """A person holding a role obtained through the operations."""

    person: Person
    link: Link
    appointment: ops.Appointment
    ctx: RequestContext  # acting as this person

    @property
    def subject(self) -> Subject:
        return subject_of(self.person)

    @property
    def credential(self) -> ops.IssuedCredential | None:
        return self.appointment.credential


def subject_of(person: Person, **overrides) -> Subject:
    """The decision point's subject for a logged-in person."""
    account = person.account
    values = dict(person_id=person.id, label=account.login_name if account else person.full_name,
                  is_portal_officer=bool(account and account.is_portal_officer),
                  disabled=bool(account and account.is_disabled))
    values.update(overrides)
    return Subject(**values)


def acting_as(ctx: RequestContext, person: Person) -> RequestContext:
    return ctx.as_actor(person.id, person.full_name)


def person_with_link(enterprise: Enterprise, kind: LinkKind = LinkKind.WERKNEMER, *, start: date | None = None,
                     end: date | None = None, person: Person | None = None, **person_fields) -> Person:
    """A person (new unless given) with a link of `kind` to `enterprise`."""
    if person is None:
        person = PersonFactory(**person_fields)
    LinkFactory(enterprise=enterprise, person=person, kind=kind,
                start_date=start or today() - timedelta(days=365), end_date=end)
    return person


def _link_of(session: Session, enterprise: Enterprise, person: Person) -> Link:
    return session.scalars(select(Link).where(Link.enterprise_id == enterprise.id, Link.person_id == person.id)
                           .order_by(Link.id.desc())).first()


def make_local_admin(session: Session, enterprise: Enterprise, ctx: RequestContext, *, person: Person | None = None,
                     kind: LinkKind = LinkKind.ZAAKVOERDER, link_end: date | None = None,
                     **person_fields) -> Member:
    """Appoint a local administrator through `appoint_local_admin` (the institution acts with `ctx`).
    A new person gets a direct-authority link of `kind` first; a given person must already have one."""
    if person is None:
        person = person_with_link(enterprise, kind, end=link_end, **person_fields)
    appointment = ops.appoint_local_admin(session, enterprise, person, by=ctx)
    return Member(person, _link_of(session, enterprise, person), appointment, acting_as(ctx, person))


def make_member(session: Session, enterprise: Enterprise, role: Role, *, by: RequestContext,
                person: Person | None = None, kind: LinkKind = LinkKind.WERKNEMER, link_end: date | None = None,
                **person_fields) -> Member:
    """Designate a user or co-administrator through `designate`, acting with `by` (usually an admin's ctx)."""
    if person is None:
        person = person_with_link(enterprise, kind, end=link_end, **person_fields)
    appointment = ops.designate(session, enterprise, person, role, by=by)
    return Member(person, _link_of(session, enterprise, person), appointment, acting_as(by, person))


def make_user_with_rights(session: Session, enterprise: Enterprise, applications: Iterable[str], *,
                          by: RequestContext, catalogue: Catalogue | None = None, person: Person | None = None,
                          **kwargs) -> Member:
    """A user designated by `by`, with a right on each application granted by `by`."""
    catalogue = catalogue or load_catalogue()
    member = make_member(session, enterprise, Role.USER, by=by, person=person, **kwargs)
    for application in applications:
        ops.grant_right(session, enterprise, member.person, application, catalogue=catalogue, by=by)
    return member


from examples.demo import set_own_credentials  # noqa: E402  one helper for demo and tests


# --- looking at the database --------------------------------------------------------

BUSINESS_MODELS = (Enterprise, Person, Link, Account, Membership, Right, OutboxMessage)


def _all_models() -> tuple[type, ...]:
    from repertory.models import ChangeProposal, RecordChange

    return (*BUSINESS_MODELS, ChangeProposal, RecordChange, AuditRecord)


def row_counts(session: Session) -> dict[str, int]:
    """Rows per table (business tables, repertory tables and the audit trail)."""
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in _all_models()}


def table_snapshot(session: Session) -> dict[str, list[tuple]]:
    """Every row of every table, to prove an operation changed nothing at all (not even an update)."""
    session.flush()  # a Core select does not autoflush: pending changes must show
    snapshot = {}
    for model in _all_models():
        table = model.__table__
        rows = session.execute(select(table).order_by(*table.primary_key.columns)).all()
        snapshot[table.name] = [tuple(row) for row in rows]
    return snapshot


def audit_records(session: Session, action: str | None = None) -> list[AuditRecord]:
    stmt = select(AuditRecord).order_by(AuditRecord.id)
    if action is not None:
        stmt = stmt.where(AuditRecord.action == action)
    return list(session.scalars(stmt))


# --- the fixture ---------------------------------------------------------------------

ALL_FACTORIES = (EnterpriseFactory, EmployerFactory, PersonFactory, LinkFactory, MembershipFactory, RightFactory)


@pytest.fixture
def factories(db_session, clock):
    """The factories of this module, bound to the test's session (and read against the frozen clock)."""
    with bind_session(db_session):
        yield types.SimpleNamespace(
            session=db_session,
            Enterprise=EnterpriseFactory,
            Employer=EmployerFactory,
            Person=PersonFactory,
            Link=LinkFactory,
            Membership=MembershipFactory,
            Right=RightFactory,
        )


# --- second factor (issue 6) --------------------------------------------------------------------

# The authenticator-app secret every test account gets (base32). Tests compute codes from it as a
# phone would; unit tests of the factor itself use the secret the portal draws.
TEST_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def enrol_totp(session: Session, account, secret: str = TEST_TOTP_SECRET):
    """A confirmed authenticator app for the account, as if its owner had set it up."""
    from access.clock import utcnow
    from access.models import TotpFactor

    factor = TotpFactor(account_id=account.id, secret=secret, created_at=utcnow(), confirmed_at=utcnow())
    session.add(factor)
    session.flush()
    return factor


def next_totp_code(session: Session, account) -> str:
    """The code a phone would show that the portal will still accept: the earliest step of the allowed
    window (one step either side of now) after the last one used; when the window is spent (a frozen
    clock, several logins), the test clock moves on by one step."""
    import pyotp
    from sqlalchemy import select

    from access.clock import FrozenClock, get_clock, utcnow
    from access.models import TotpFactor
    from access.second_factor import TOTP_STEP_SECONDS

    factor = session.scalar(select(TotpFactor).where(TotpFactor.account_id == account.id,
                                                     TotpFactor.removed_at.is_(None)))
    assert factor is not None, f"{account.login_name} has no authenticator app"
    session.refresh(factor)
    while True:
        now_step = int(utcnow().timestamp()) // TOTP_STEP_SECONDS
        for step in (now_step - 1, now_step, now_step + 1):
            if factor.last_used_step is None or step > factor.last_used_step:
                return pyotp.TOTP(factor.secret).generate_otp(step)
        clock = get_clock()
        assert isinstance(clock, FrozenClock), "TOTP window spent on a real clock"
        clock.advance(seconds=TOTP_STEP_SECONDS)
