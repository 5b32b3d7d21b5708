"""Audit traffic for the alert tests: records written through audit.operations.record at chosen Belgian
moments (the frozen clock is moved to each), and a realistic normal working day that no rule may fire on.

Records are the shapes the portal writes: `login` success/failure (no enterprise; an unknown login name
has no person), `decision:<action>` allowed/denied on an enterprise (with provider_enterprise_id when a
provider's staff member acts for a client), `audit.export` with {"format", "rows", "filter",
"confirmed", "cap"} (the contract of audit/export.py)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy.orm import Session

from access.clock import BRUSSELS, FrozenClock
from access.models import Enterprise, Person, SecurityOfficer
from audit.operations import RequestContext, record
from tests.factories import EmployerFactory, EnterpriseFactory, LinkFactory, PersonFactory

# Monday 2 November 2026, as the suite's frozen clock.
DAY = date(2026, 11, 2)


def belgian(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), BRUSSELS).astimezone(timezone.utc)


@dataclass
class User:
    person: Person
    login: str
    enterprise: Enterprise
    ip: str


@dataclass
class Traffic:
    session: Session
    clock: FrozenClock
    written: int = 0

    def _ctx(self, person: Person | None, label: str | None, ip: str | None,
             provider: Enterprise | None = None) -> RequestContext:
        return RequestContext(actor_person_id=person.id if person else None, actor_label=label, ip=ip,
                              user_agent="Mozilla/5.0", request_id=f"req-{self.written:06d}",
                              provider_enterprise_id=provider.id if provider else None)

    def _at(self, moment: datetime) -> None:
        self.clock.at = moment
        self.written += 1

    def login(self, moment: datetime, user: User | None = None, *, ok: bool = True, label: str | None = None,
              ip: str | None = None) -> None:
        self._at(moment)
        ctx = self._ctx(user.person if user else None, label or user.login, ip or (user.ip if user else None))
        record(self.session, ctx, action="login", outcome="success" if ok else "failure",
               reason="password" if ok else ("wrong password" if user else "unknown login name"))

    def decision(self, moment: datetime, user: User, enterprise: Enterprise | None = None, *, allowed: bool = True,
                 application: str = "dmfa", action: str = "open", provider: Enterprise | None = None) -> None:
        self._at(moment)
        record(self.session, self._ctx(user.person, user.login, user.ip, provider), action=f"decision:{action}",
               outcome="allowed" if allowed else "denied", enterprise_id=(enterprise or user.enterprise).id,
               application=application, reason="allowed" if allowed else "no right", path=["subject", "right"])

    def export(self, moment: datetime, user: User, rows: int, enterprise: Enterprise | None = None) -> None:
        self._at(moment)
        record(self.session, self._ctx(user.person, user.login, user.ip), action="audit.export", outcome="success",
               enterprise_id=enterprise.id if enterprise else None,
               details={"format": "csv", "rows": rows, "filter": {"from": "2026-10-01"}, "confirmed": False,
                        "cap": 100_000})

    def commit(self) -> None:
        self.session.commit()  # releases the test's savepoint: the records are chained


@dataclass
class World:
    enterprises: list[Enterprise]
    users: list[User]
    provider: Enterprise
    staff: User
    clients: list[Enterprise]
    officer: User  # the security officer of enterprises[0] (and a user of it)
    institution_officer: Person
    extra: dict = field(default_factory=dict)


def build_world(session: Session, *, users_per_enterprise: int = 12, clients: int = 4) -> World:
    enterprises = [EmployerFactory() for _ in range(3)]
    users = []
    for n in range(users_per_enterprise * len(enterprises)):
        enterprise = enterprises[n % len(enterprises)]
        person = PersonFactory()
        LinkFactory(enterprise=enterprise, person=person)
        users.append(User(person, f"user{person.id}", enterprise, f"192.0.2.{10 + n % 3 * 20 + n % 7}"))
    provider = EnterpriseFactory(name="Sociaal Secretariaat Noord")
    staff_person = PersonFactory()
    LinkFactory(enterprise=provider, person=staff_person)
    client_list = [EmployerFactory() for _ in range(clients)]
    staff = User(staff_person, f"user{staff_person.id}", provider, "198.51.100.20")
    officer = users[0]
    institution_officer = PersonFactory(first_name="Ines", last_name="Instituut")
    session.add_all([
        SecurityOfficer(enterprise_id=enterprises[0].id, person_id=officer.person.id, started_at=belgian(DAY, 7)),
        SecurityOfficer(enterprise_id=None, person_id=institution_officer.id, started_at=belgian(DAY, 7)),
    ])
    session.flush()
    return World(enterprises, users, provider, staff, client_list, officer, institution_officer)


def normal_day(traffic: Traffic, world: World, day: date = DAY, seed: int = 5) -> None:
    """Dozens of users logging in during office hours (a few mistype their password once), allowed
    decisions and the odd refusal, one staff member working for a few clients, a small export."""
    rng = random.Random(seed)
    for n, user in enumerate(world.users):
        start = belgian(day, 7, 30) + timedelta(minutes=rng.randrange(0, 9 * 60))
        if n % 9 == 4:  # an occasional single failed login, then the right password
            traffic.login(start - timedelta(seconds=40), user, ok=False)
        traffic.login(start, user)
        for k in range(rng.randrange(3, 9)):
            traffic.decision(start + timedelta(minutes=2 + 3 * k), user,
                             application=rng.choice(["dmfa", "dimona", "personeelsbestand"]))
        if n % 11 == 3:  # a click on an application without a right
            traffic.decision(start + timedelta(minutes=40), user, allowed=False, application="asr")
        if rng.random() < 0.3:  # back after lunch
            traffic.login(belgian(day, 13, 30) + timedelta(minutes=rng.randrange(0, 120)), user)
    staff = world.staff
    traffic.login(belgian(day, 8, 5), staff)
    for k, client in enumerate(world.clients):
        for j in range(5):
            traffic.decision(belgian(day, 8 + k, 10 + 7 * j), staff, client, application="dmfa",
                             provider=world.provider)
    traffic.export(belgian(day, 15, 45), world.officer, rows=240, enterprise=world.enterprises[0])
    traffic.commit()
