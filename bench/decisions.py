#!/usr/bin/env python
"""Throughput and latency of the decision point, against baselines, in one run.

    .venv/bin/python bench/decisions.py            # 10,000 enterprises, 100,000 persons, 1,000,000 rights;
                                                   # 1,000 providers, 100,000 employers
    .venv/bin/python bench/decisions.py --quick    # 1,000 / 10,000 / 100,000; 100 / 10,000
    .venv/bin/python bench/decisions.py --scenario mandates   # only the staff decisions
    .venv/bin/python bench/decisions.py --database-url postgresql+psycopg://user@host:port/db

Two scenarios, each with its own requests and the same contenders:

  rights     an enterprise's own people (links, roles, rights);
  mandates   staff of service providers acting for client employers (affiliations, provider
             forms, scope, staff assignments, the staff member's link with his provider).

Contenders, all fed the same sample of requests:

  decision   access.decision.decide(session, subject, enterprise_id, application, action,
             catalogue=..., day=DAY): the real decision point, one SQLAlchemy session.
  SELECT     the one indexed SELECT a decision cannot avoid, executed the same way (ORM
             select() through the SQLAlchemy session), built once with bound parameters:
             rights: the current right row of (person, enterprise, application) through the
             partial unique index uq_rights_current; mandates: the current staff assignment of
             (person, application) joined to its mandate of the employer, in force on DAY.
  SELECT+build
             the same SELECT with the statement built on every call: for reference (what
             building a statement costs).
  casbin     pycasbin, RBAC with domains, holding the same allowances as the database on DAY
             (rights: enterprise = domain, a right = the role "right:<app>" in that domain, the
             local administrator = the role "local_admin[_employer]"; mandates: client employer
             = domain, each allowance of a complete mandate path = the role "staff:<app>").

Every decision's answer is checked against what the generator built; a run with a wrong
answer exits with 1. Timings are printed, never asserted. See bench/README.md for the figures.

Scenarios are plain functions registered in SCENARIOS; each gets the built Bench
(engine, data set knowledge, casbin enforcers) and returns the measurements it wants
printed. Data builders after the core one are listed in DATA_BUILDERS.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import random
import shutil
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, inspect, insert, or_, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from access.catalogue import ACCESS_MANAGEMENT, Catalogue, Tier, load_catalogue  # noqa: E402
from access.clock import FrozenClock, set_clock  # noqa: E402
from access import decision as decision_module  # noqa: E402
from access.decision import Subject, decide  # noqa: E402
from access.models import Enterprise, Link, LinkKind, Membership, Person, Right, Role  # noqa: E402
from access.validators import make_insz, make_kbo, make_rsz  # noqa: E402

try:  # the search column of enterprises (migration 0002); Core inserts bypass the ORM validator
    from access.validators import fold_for_search  # noqa: E402
except ImportError:  # pragma: no cover - older schema
    fold_for_search = None
from db import make_engine, normalise_url  # noqa: E402
from mandates.groups import load_groups  # noqa: E402
from mandates.models import (  # noqa: E402
    Mandate,
    MandateApplication,
    MandateKind,
    MandateStatus,
    Provider,
    ProviderKind,
    StaffAssignment,
)
from mandates.operations import add_months, quarter_start  # noqa: E402
from migrations.runner import alembic_config, upgrade  # noqa: E402

UTC = timezone.utc
# The benchmark's "today": every decision gets day=DAY and the clock stands still at NOW.
DAY = date(2026, 11, 2)
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

DEFAULT_SIZES = dict(enterprises=10_000, persons=100_000, rights=1_000_000, providers=1_000, employers=100_000)
QUICK_SIZES = dict(enterprises=1_000, persons=10_000, rights=100_000, providers=100, employers=10_000)

# --- shape of the data set --------------------------------------------------------------
EMPLOYER_SHARE = 0.90          # enterprises with an RSZ number (most password apps are employer-only)
LINKS_PER_PERSON = ((1, 0.50), (2, 0.30), (3, 0.15), (4, 0.05))  # werknemer links per person
ENDED_LINK_SHARE = 0.12        # non-admin links that ended before DAY
USER_SHARE = 0.92              # non-admin linked pairs designated USER (the rest: linked, not designated)
REVOKED_SHARE = 0.05           # rights rows that are revoked (history; the rest is current)
CHUNK = 20_000                 # rows per executemany

# --- query mix of the timed run (kind -> share) ---------------------------------------------
MIX = {
    "user-right": 0.70,        # allowed: USER with a current right on a password app
    "local-admin": 0.10,       # allowed: local administrator (password app or access management)
    "no-right": 0.05,          # denied: USER, linked, no right on that app
    "ended-link": 0.04,        # denied: USER whose link ended before DAY
    "unknown-pair": 0.04,      # denied: person and enterprise without any link
    "not-designated": 0.02,    # denied: linked, no role
    "certificate": 0.05,       # denied: certificate-tier app (local admin: certificate-required; user: no-right)
}


# =========================================================================================
# Small helpers
# =========================================================================================

def chunked(rows: Iterable[dict], size: int = CHUNK) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def at(day: date, seconds: int = 9 * 3600) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def weighted_choice(rng: random.Random, table: Sequence[tuple[Any, float]]) -> Any:
    x = rng.random()
    for value, weight in table:
        x -= weight
        if x < 0:
            return value
    return table[-1][0]


class Stopwatch:
    def __init__(self) -> None:
        self.laps: list[tuple[str, float]] = []
        self._t = time.perf_counter()

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        self.laps.append((name, now - self._t))
        self._t = now
        return self.laps[-1][1]

    def __str__(self) -> str:
        total = sum(s for _, s in self.laps)
        return ", ".join(f"{n} {s:.1f} s" for n, s in self.laps) + f"; total {total:.1f} s"


# =========================================================================================
# The data set
# =========================================================================================

@dataclass
class Dataset:
    """What the generator knows about the rows it inserted (to build requests and casbin)."""

    enterprises: int
    persons: int
    password_apps: list[str]                 # grantable password-tier codes; bit i of a mask = app i
    employer_mask: int                       # apps grantable on an employer
    other_mask: int                          # apps grantable on a non-employer
    certificate_apps: list[str]
    employer: bytearray = field(default_factory=bytearray)       # [enterprise_id] -> 0/1
    admin_of: array = field(default_factory=lambda: array("i"))  # [enterprise_id] -> person_id
    # One entry per linked (person, enterprise) pair.
    pair_person: array = field(default_factory=lambda: array("i"))
    pair_enterprise: array = field(default_factory=lambda: array("i"))
    pair_active: bytearray = field(default_factory=bytearray)    # link valid on DAY
    pair_role: bytearray = field(default_factory=bytearray)      # 0 none, 1 user, 2 local admin
    pair_rights: array = field(default_factory=lambda: array("H"))  # bitmask of current rights
    pair_index: dict[int, int] = field(default_factory=dict)   # key(person, enterprise) -> pair
    counts: Counter = field(default_factory=Counter)
    # The providers, their clients and staff (the mandates scenario), when it is built.
    mandates: "MandateWorld | None" = None

    ROLE_NONE, ROLE_USER, ROLE_ADMIN = 0, 1, 2

    def key(self, person_id: int, enterprise_id: int) -> int:
        return person_id * (self.enterprises + 1) + enterprise_id

    def eligible_mask(self, enterprise_id: int) -> int:
        return self.employer_mask if self.employer[enterprise_id] else self.other_mask

    def apps_of(self, mask: int) -> list[str]:
        return [app for i, app in enumerate(self.password_apps) if mask >> i & 1]


FIRST_NAMES = ("An", "Bart", "Chris", "Dirk", "Eva", "Fien", "Geert", "Hilde", "Ilse", "Jan", "Karel", "Lotte")
LAST_NAMES = ("Peeters", "Janssens", "Maes", "Claes", "Willems", "Goossens", "Wouters", "De Smet", "Dubois",
              "Lambert", "Mertens", "Jacobs")
KBO_BODY_BASE = 1_000_000
RSZ_RADIX_BASE = 1_000_000


def bench_insz(n: int) -> str:
    """A valid INSZ from a counter: birth date 1950-01-01 + n // 900 days, serial 1..900."""
    born = date(1950, 1, 1) + timedelta(days=n // 900)
    return make_insz(born.strftime("%y%m%d"), n % 900 + 1)


def build_core(conn, ds: Dataset, rng: random.Random, n_rights: int, log: Callable[[str], None]) -> None:
    """Enterprises, persons, werknemer links, one local admin per enterprise, users, rights."""
    E, P = ds.enterprises, ds.persons
    if P < E:
        raise SystemExit("--persons must be at least --enterprises (every enterprise has a local admin)")

    # Enterprises ------------------------------------------------------------------------
    ds.employer = bytearray(E + 1)
    created = at(DAY - timedelta(days=4000))

    def enterprise_rows():
        folded = "name_folded" in Enterprise.__table__.c
        for e in range(1, E + 1):
            is_employer = rng.random() < EMPLOYER_SHARE
            ds.employer[e] = is_employer
            name = f"Onderneming {e:06d}"
            row = dict(
                id=e, kbo_number=make_kbo(KBO_BODY_BASE + e), name=name,
                street=f"Kerkstraat {e % 200 + 1}", postal_code=f"{1000 + e % 8000}", city="Gent",
                legal_form="BV", rsz_number=make_rsz(RSZ_RADIX_BASE + e) if is_employer else None,
                joint_committee="200" if is_employer else None, created_at=created,
            )
            if folded:
                row["name_folded"] = fold_for_search(name) if fold_for_search else name.casefold()
            yield row

    for batch in chunked(enterprise_rows()):
        conn.execute(insert(Enterprise.__table__), batch)
    ds.counts["enterprises"] = E
    ds.counts["employers"] = sum(ds.employer)

    # Persons ----------------------------------------------------------------------------
    def person_rows():
        for p in range(1, P + 1):
            yield dict(id=p, insz=bench_insz(p), first_name=FIRST_NAMES[p % len(FIRST_NAMES)],
                       last_name=f"{LAST_NAMES[p % len(LAST_NAMES)]}{p}", email=f"person{p}@example.invalid",
                       created_at=created)

    for batch in chunked(person_rows()):
        conn.execute(insert(Person.__table__), batch)
    ds.counts["persons"] = P

    # Links and memberships --------------------------------------------------------------
    # The first person of a random permutation for each enterprise is its local admin: his
    # first link is to that enterprise and is current.
    admins = rng.sample(range(1, P + 1), E)
    ds.admin_of = array("i", [0] * (E + 1))
    admin_enterprise: dict[int, int] = {}
    for e, p in enumerate(admins, start=1):
        ds.admin_of[e] = p
        admin_enterprise[p] = e
    max_links = min(E, max(k for k, _ in LINKS_PER_PERSON))

    link_rows: list[tuple] = []      # (person, enterprise, kind, start, end)
    member_rows: list[tuple] = []    # (person, enterprise, role, started_at, appointed_by)
    for p in range(1, P + 1):
        k = min(weighted_choice(rng, LINKS_PER_PERSON), max_links)
        chosen: list[int] = []
        if p in admin_enterprise:
            chosen.append(admin_enterprise[p])
        while len(chosen) < k:
            e = rng.randint(1, E)
            if e not in chosen:
                chosen.append(e)
        for e in chosen:
            is_admin = admin_enterprise.get(p) == e
            start = DAY - timedelta(days=rng.randint(60, 3650))
            active = is_admin or rng.random() >= ENDED_LINK_SHARE
            end = None if active else start + timedelta(days=rng.randint(0, (DAY - start).days - 1))
            kind = LinkKind.ZAAKVOERDER if is_admin and rng.random() < 0.3 else LinkKind.WERKNEMER
            link_rows.append((p, e, kind, start, end))
            role = ds.ROLE_ADMIN if is_admin else (ds.ROLE_USER if rng.random() < USER_SHARE else ds.ROLE_NONE)
            if role:
                member_start = at(start + timedelta(days=rng.randint(0, 30)), rng.randint(0, 86399))
                member_rows.append((p, e, role, min(member_start, NOW - timedelta(days=1))))
            ds.pair_person.append(p)
            ds.pair_enterprise.append(e)
            ds.pair_active.append(active)
            ds.pair_role.append(role)
            ds.pair_rights.append(0)
            ds.pair_index[ds.key(p, e)] = len(ds.pair_role) - 1

    def link_dicts():
        for p, e, kind, start, end in link_rows:
            yield dict(enterprise_id=e, person_id=p, kind=kind, start_date=start, end_date=end,
                       created_at=at(start))

    for batch in chunked(link_dicts()):
        conn.execute(insert(Link.__table__), batch)
    ds.counts["links"] = len(link_rows)
    ds.counts["ended links"] = sum(1 for row in link_rows if row[4] is not None)

    role_enum = {ds.ROLE_USER: Role.USER, ds.ROLE_ADMIN: Role.LOCAL_ADMIN}
    member_started: dict[int, datetime] = {}

    def member_dicts():
        for p, e, role, started in member_rows:
            member_started[ds.key(p, e)] = started
            yield dict(enterprise_id=e, person_id=p, role=role_enum[role],
                       appointed_by_id=None if role == ds.ROLE_ADMIN else ds.admin_of[e],
                       started_at=started, ended_at=None, ended_by_id=None)

    for batch in chunked(member_dicts()):
        conn.execute(insert(Membership.__table__), batch)
    ds.counts["memberships"] = len(member_rows)
    ds.counts["local admins"] = E
    ds.counts["users"] = len(member_rows) - E
    link_rows.clear()
    member_rows.clear()

    # Rights -----------------------------------------------------------------------------
    # Current rights: a uniform sample (selection sampling) of the (user pair, grantable app)
    # slots; revoked rights: extra history rows on random user slots.
    user_pairs = [i for i in range(len(ds.pair_role)) if ds.pair_role[i] == ds.ROLE_USER]
    slots = sum(bin(ds.eligible_mask(ds.pair_enterprise[i])).count("1") for i in user_pairs)
    n_revoked = int(n_rights * REVOKED_SHARE)
    n_current = n_rights - n_revoked
    if n_current > slots:
        log(f"warning: only {fmt_int(slots)} (user, application) slots for {fmt_int(n_current)} current "
            f"rights; inserting {fmt_int(slots)} current rights")
        n_current = slots
    app_bits = list(enumerate(ds.password_apps))

    def granted_between(key: int) -> tuple[datetime, float]:
        started = member_started[key]
        return started, (NOW - started).total_seconds()

    def right_rows():
        need, left = n_current, slots
        for i in user_pairs:
            if need == 0:
                break
            e, p = ds.pair_enterprise[i], ds.pair_person[i]
            mask = ds.eligible_mask(e)
            started, span = granted_between(ds.key(p, e))
            got = 0
            for bit, app in app_bits:
                if not mask >> bit & 1:
                    continue
                if rng.random() * left < need:
                    need -= 1
                    got |= 1 << bit
                    yield dict(enterprise_id=e, person_id=p, application=app, granted_by_id=ds.admin_of[e],
                               granted_at=started + timedelta(seconds=int(rng.random() * span)),
                               revoked_at=None, revoked_by_id=None)
                left -= 1
            ds.pair_rights[i] = got
        for _ in range(n_revoked):
            i = rng.choice(user_pairs)
            e, p = ds.pair_enterprise[i], ds.pair_person[i]
            app = rng.choice(ds.apps_of(ds.eligible_mask(e)))
            started, span = granted_between(ds.key(p, e))
            granted = started + timedelta(seconds=int(rng.random() * span * 0.5))
            revoked = granted + timedelta(seconds=int(rng.random() * (NOW - granted).total_seconds()))
            yield dict(enterprise_id=e, person_id=p, application=app, granted_by_id=ds.admin_of[e],
                       granted_at=granted, revoked_at=revoked, revoked_by_id=ds.admin_of[e])

    for batch in chunked(right_rows()):
        conn.execute(insert(Right.__table__), batch)
    ds.counts["rights"] = n_current + n_revoked
    ds.counts["revoked rights"] = n_revoked
    ds.counts["current rights"] = n_current


# =========================================================================================
# The mandate data set: providers and their staff, employers, affiliations and forms
# =========================================================================================

# --- shape (see bench/README.md) ---------------------------------------------------------
SECRETARIAT_SHARE = 0.08       # of the providers: erkende sociale secretariaten (at least 2)
OTHER_PROVIDER_KINDS = ((ProviderKind.ACCOUNTANT, 0.65), (ProviderKind.SOFTWARE_BUREAU, 0.25),
                        (ProviderKind.OTHER_INTERMEDIARY, 0.10))
SECRETARIAT_SKEW, OTHER_SKEW = 0.9, 0.7   # client share of the i-th provider ~ 1 / (i + 1) ** skew
SWITCHED_SHARE = 0.08          # employers that left an earlier secretariat (its affiliation ended)
FUTURE_SWITCH_SHARE = 0.01     # employers switching on 2027-01-01: the old one in force, the new one not yet
FORM_SHARE = 0.30              # employers with an accepted provider form in force
FORM_ENDING_SHARE = 0.06       # of those forms: ended by the employer on 2026-12-31 (still in force)
PAST_FORM_SHARE = 0.06         # employers with an earlier form: ended, revoked, declined or withdrawn
PAST_FORM_FATES = (("ended", 0.5), ("revoked", 0.2), ("declined", 0.2), ("withdrawn", 0.1))
PENDING_FORM_SHARE = 0.03      # of the employers without a form in force: one waiting for the provider
FORM_GROUP_SHARE = 0.35        # a form entrusts each group with this probability (at least one)
CLIENTS_PER_STAFF = {True: 60, False: 25}  # secretariat / other provider: staff = clients / this
STAFF_PER_MANDATE = ((1, 0.40), (2, 0.45), (3, 0.15))  # staff members assigned to a client
ASSIGN_GROUP_SHARE = 0.60      # an assigned staff member works on each group of the scope with this probability
STAFF_ACTIVE, STAFF_LINK_ENDED, STAFF_FORMER = 0, 1, 2
STAFF_STATES = ((STAFF_ACTIVE, 0.92), (STAFF_LINK_ENDED, 0.05), (STAFF_FORMER, 0.03))
REVOKED_ASSIGNMENT_SHARE = 0.05  # extra history rows: assignments revoked by the provider
MANDATE_EPOCH = date(2007, 1, 1)   # the mandate world's rows were created from here on
CURRENT_QUARTER = quarter_start(DAY)          # 2026-10-01
NEXT_QUARTER = add_months(CURRENT_QUARTER, 3)  # 2027-01-01

PROVIDER_NAMES = {
    ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT: "Sociaal Secretariaat",
    ProviderKind.ACCOUNTANT: "Boekhoudkantoor",
    ProviderKind.SOFTWARE_BUREAU: "Softwarebureau",
    ProviderKind.OTHER_INTERMEDIARY: "Tussenpersoon",
}


@dataclass
class MandateWorld:
    """What the mandate generator knows about the rows it inserted (to build requests, check
    answers and fill casbin). Mandate and provider ids are the rows' own ids (index 0 unused)."""

    apps: list[str]                          # every application of a group; bit i of a mask = apps[i]
    group_masks: dict[str, int]
    password_mask: int                       # password-tier applications: what the requests ask for
    first_employer: int                      # the employers are first_employer .. first_employer + n - 1
    employers: int
    provider_enterprise: list[int] = field(default_factory=lambda: [0])
    provider_kind: list[ProviderKind | None] = field(default_factory=lambda: [None])
    provider_admin: list[int] = field(default_factory=lambda: [0])
    provider_staff: list[list[int]] = field(default_factory=lambda: [[]])  # the local admin included
    staff_state: dict[int, int] = field(default_factory=dict)
    m_kind: list[MandateKind | None] = field(default_factory=lambda: [None])
    m_employer: array = field(default_factory=lambda: array("i", [0]))
    m_provider: array = field(default_factory=lambda: array("i", [0]))
    m_active: bytearray = field(default_factory=lambda: bytearray(1))  # accepted and in force on DAY
    m_scope: array = field(default_factory=lambda: array("i", [0]))
    employer_mandates: dict[int, list[int]] = field(default_factory=dict)
    ever: set[tuple[int, int]] = field(default_factory=set)          # (employer, provider) with any mandate
    assigned: dict[tuple[int, int], int] = field(default_factory=dict)  # (person, mandate) -> current mask
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.bit_of = {app: i for i, app in enumerate(self.apps)}

    def apps_of(self, mask: int) -> list[str]:
        return [app for i, app in enumerate(self.apps) if mask >> i & 1]

    def has_assignment(self, person_id: int, employer_id: int, application: str) -> bool:
        """A current assignment of the person on the application under a mandate of the employer in force."""
        bit = self.bit_of.get(application, -1)
        return bit >= 0 and any(self.m_active[m] and self.assigned.get((person_id, m), 0) >> bit & 1
                                for m in self.employer_mandates.get(employer_id, ()))


@dataclass(slots=True)
class PlannedMandate:
    id: int
    kind: MandateKind
    employer: int
    provider: int
    status: MandateStatus
    start: date
    end: date | None
    effective_from: date | None
    filed_at: datetime
    filed_by: int | None
    groups: tuple[str, ...]
    decided_at: datetime | None = None
    decided_by: int | None = None
    ended_at: datetime | None = None
    ended_by: int | None = None
    notice_date: date | None = None
    contract_date: date | None = None
    contract_reference: str | None = None
    affiliation_number: str | None = None

    def active_on(self, day: date) -> bool:
        return (self.status is MandateStatus.ACCEPTED and self.effective_from is not None
                and self.effective_from <= day and (self.end is None or self.end >= day))

    def work_window(self) -> tuple[datetime, datetime] | None:
        """When the provider could assign staff to it: from acceptance (a recorded affiliation: from
        its recording) until it ended, was revoked, or now."""
        if self.status is MandateStatus.ACCEPTED:
            lo = self.decided_at or self.filed_at
            hi = at(self.end, 17 * 3600) if self.end is not None else NOW
        elif self.status is MandateStatus.REVOKED and self.effective_from is not None:
            lo, hi = self.decided_at or self.filed_at, self.ended_at
        else:
            return None
        hi = min(hi, NOW - timedelta(minutes=1))
        return (lo, hi) if lo < hi else None


def quarter_starts(first: date, last: date) -> list[date]:
    day, out = quarter_start(first), []
    while day <= last:
        if day >= first:
            out.append(day)
        day = add_months(day, 3)
    return out


def cumulative(weights: Iterable[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def random_moment(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    return lo + timedelta(seconds=int(rng.random() * max(0.0, (hi - lo).total_seconds())))


def scenario_selected(args, name: str) -> bool:
    return not args.scenario or name in args.scenario


def build_mandates(conn, ds: Dataset, rng: random.Random, args, log: Callable[[str], None]) -> None:
    """1,000 providers (some erkende sociale secretariaten) with their staff, 100,000 employers,
    each affiliated with one secretariat, ~30 % with a provider form in force too; staff assigned
    per client and application within the mandate's scope. Rows as the operations of
    mandates.operations would leave them (quarter starts, effective_from, scope rows per group,
    the one-extra-provider rule, assignments bound to the mandate); no audit records (the
    decision point does not read them). Only when the mandates scenario runs."""
    if not scenario_selected(args, "mandates"):
        return
    del rng  # its own generator: the mandate world does not depend on the sizes of the rest
    rng = random.Random(args.seed + 1000)
    NP, NE = args.providers, args.employers
    if NP < 2 or NE < 1:
        raise SystemExit("--providers must be at least 2 and --employers at least 1")
    catalogue, groups = load_catalogue(), load_groups()
    apps = [app for group in groups.all() for app in group.applications]
    world = MandateWorld(
        apps=apps,
        group_masks={g.code: sum(1 << apps.index(a) for a in g.applications) for g in groups.all()},
        password_mask=sum(1 << i for i, a in enumerate(apps) if catalogue.get(a).tier is Tier.PASSWORD),
        first_employer=ds.enterprises + NP + 1, employers=NE)
    ds.mandates = world
    c = world.counts
    secretariat_groups = tuple(g.code for g in groups.secretariat_defaults())
    all_groups = tuple(g.code for g in groups.all())

    # Ids: providers' enterprises follow the core's enterprises, then the employers; persons: the
    # providers' local administrators, the employers' local administrators, then the staff.
    provider_enterprise0, employer0 = ds.enterprises, ds.enterprises + NP
    provider_admin0, employer_admin0, staff0 = ds.persons, ds.persons + NP, ds.persons + NP + NE

    # Providers --------------------------------------------------------------------------
    n_sec = min(NP - 1, max(2, round(NP * SECRETARIAT_SHARE)))
    for i in range(1, NP + 1):
        world.provider_enterprise.append(provider_enterprise0 + i)
        world.provider_kind.append(ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT if i <= n_sec
                                   else weighted_choice(rng, OTHER_PROVIDER_KINDS))
        world.provider_admin.append(provider_admin0 + i)
        world.provider_staff.append([provider_admin0 + i])
    secretariats, others = list(range(1, n_sec + 1)), list(range(n_sec + 1, NP + 1))
    sec_cum = cumulative(1 / (k + 1) ** SECRETARIAT_SKEW for k in range(len(secretariats)))
    other_cum = cumulative(1 / (k + 1) ** OTHER_SKEW for k in range(len(others)))

    def pick(pool: list[int], cum: list[float], unlike: Iterable[int] = ()) -> int | None:
        unlike = set(unlike)
        if unlike and len(pool) <= len(unlike) and all(p in unlike for p in pool):
            return None
        while True:
            choice = rng.choices(pool, cum_weights=cum)[0]
            if choice not in unlike:
                return choice

    # Mandates (planned in memory: staff counts depend on them) --------------------------------
    aff_quarters = quarter_starts(date(2008, 1, 1), CURRENT_QUARTER)
    form_quarters = quarter_starts(date(2015, 1, 1), CURRENT_QUARTER)
    history_quarters = quarter_starts(date(2010, 1, 1), CURRENT_QUARTER)
    plan: list[PlannedMandate] = []

    def add(kind, employer, provider, status, start, end, effective_from, filed_at, filed_by, groups_, **extra):
        m = PlannedMandate(len(plan) + 1, kind, employer, provider, status, start, end, effective_from, filed_at,
                           filed_by, groups_, **extra)
        plan.append(m)
        return m

    def affiliation(employer, secretariat, start, filed_at, **extra):
        return add(MandateKind.AFFILIATION, employer, secretariat, MandateStatus.ACCEPTED, start, extra.pop("end", None),
                   start, filed_at, None, secretariat_groups,
                   affiliation_number=f"{secretariat:03d}-{employer:08d}-{start.year}", **extra)

    def form_groups() -> tuple[str, ...]:
        chosen = tuple(code for code in all_groups if rng.random() < FORM_GROUP_SHARE)
        return chosen or (rng.choice(all_groups),)

    def filed_form(employer, admin, provider, start, filed_day, status, **extra):
        filed_at = at(filed_day, rng.randint(7 * 3600, 19 * 3600))
        contract = filed_day - timedelta(days=rng.randint(0, 90))
        return add(MandateKind.FORM, employer, provider, status, start, extra.pop("end", None),
                   extra.pop("effective_from", None), filed_at, admin, form_groups(), contract_date=contract,
                   contract_reference=f"CT-{contract.year}-{len(plan) + 1:07d}", **extra)

    def decided(filed_at: datetime, horizon: date) -> datetime:
        day = min(filed_at.date() + timedelta(days=rng.randint(0, 14)), horizon)
        return max(filed_at + timedelta(minutes=5), at(day, rng.randint(8 * 3600, 18 * 3600)))

    for j in range(NE):
        e, admin = employer0 + 1 + j, employer_admin0 + 1 + j
        sec = pick(secretariats, sec_cum)
        r = rng.random()
        if r < SWITCHED_SHARE:
            # Left `old` for `sec` on a quarter start at least 3 years later (seed 000).
            old = pick(secretariats, sec_cum, unlike=[sec])
            i0 = rng.randrange(0, len(aff_quarters) - 12)
            s0, s1 = aff_quarters[i0], aff_quarters[rng.randrange(i0 + 12, len(aff_quarters))]
            notice = add_months(s1, -6) - timedelta(days=rng.randint(0, 120))
            recorded = at(min(notice + timedelta(days=rng.randint(1, max(1, (s1 - notice).days - 1))),
                              DAY - timedelta(days=1)), rng.randint(8 * 3600, 17 * 3600))
            affiliation(e, old, s0, at(s0 - timedelta(days=rng.randint(5, 60))), end=s1 - timedelta(days=1),
                        ended_at=recorded, notice_date=notice)
            affiliation(e, sec, s1, recorded)
            c["affiliations ended by a switch"] += 1
        elif r < SWITCHED_SHARE + FUTURE_SWITCH_SHARE:
            # Recorded this autumn: `sec` until 2026-12-31, then `new` from 2027-01-01.
            new = pick(secretariats, sec_cum, unlike=[sec])
            s0 = aff_quarters[rng.randrange(0, len(aff_quarters) - 13)]
            notice = date(2026, 6, 30) - timedelta(days=rng.randint(0, 90))
            recorded = at(DAY - timedelta(days=rng.randint(1, 30)), rng.randint(8 * 3600, 17 * 3600))
            affiliation(e, sec, s0, at(s0 - timedelta(days=rng.randint(5, 60))),
                        end=NEXT_QUARTER - timedelta(days=1), ended_at=recorded, notice_date=notice)
            affiliation(e, new, NEXT_QUARTER, recorded)
            c["affiliations from 2027-01-01 (switch recorded)"] += 1
        else:
            s = rng.choice(aff_quarters)
            affiliation(e, sec, s, at(s - timedelta(days=rng.randint(5, 60))))

        # The one other place: a form in force, and perhaps earlier forms (ids in filing order).
        current = None
        if rng.random() < FORM_SHARE:
            current = (pick(others, other_cum), rng.choice(form_quarters))
        if rng.random() < PAST_FORM_SHARE:
            horizon = (current[1] if current else CURRENT_QUARTER) - timedelta(days=1)
            starts = [q for q in history_quarters if q <= add_months(horizon, -6)]
            past = pick(others, other_cum, unlike=[current[0]] if current else [])
            if starts and past is not None:
                h = rng.choice(starts)
                filed_day = h - timedelta(days=rng.randint(0, 60))
                fate = weighted_choice(rng, PAST_FORM_FATES)
                if fate in ("ended", "revoked"):
                    m = filed_form(e, admin, past, h, filed_day, MandateStatus.ACCEPTED)
                    m.decided_at, m.decided_by = decided(m.filed_at, horizon), world.provider_admin[past]
                    m.effective_from = max(h, m.decided_at.date())
                    last = m.effective_from + timedelta(days=rng.randint(0, max(0, (horizon - m.effective_from).days)))
                    if fate == "ended":
                        m.end = max(last, m.start)
                        m.ended_at = at(max(m.decided_at.date(), m.end - timedelta(days=rng.randint(0, 30))),
                                        rng.randint(8 * 3600, 17 * 3600))
                        m.ended_at = max(m.ended_at, m.decided_at + timedelta(minutes=5))
                    else:
                        m.status = MandateStatus.REVOKED
                        m.ended_at = max(at(last, rng.randint(8 * 3600, 17 * 3600)),
                                         m.decided_at + timedelta(minutes=5))
                elif fate == "declined":
                    m = filed_form(e, admin, past, h, filed_day, MandateStatus.DECLINED)
                    m.decided_at, m.decided_by = decided(m.filed_at, horizon), world.provider_admin[past]
                else:
                    m = filed_form(e, admin, past, h, filed_day, MandateStatus.WITHDRAWN)
                    m.ended_at, m.ended_by = m.filed_at + timedelta(days=rng.randint(1, 14)), admin
                c[f"earlier forms {fate}"] += 1
        if current is not None:
            provider, s = current
            filed_day = min(s + timedelta(days=rng.randint(-80, 40)), DAY - timedelta(days=3))
            m = filed_form(e, admin, provider, s, filed_day, MandateStatus.ACCEPTED)
            m.decided_at = decided(m.filed_at, DAY - timedelta(days=1))
            m.decided_by = world.provider_admin[provider]
            m.effective_from = max(s, m.decided_at.date())
            if rng.random() < FORM_ENDING_SHARE:
                m.end = NEXT_QUARTER - timedelta(days=1)
                m.ended_at = at(DAY - timedelta(days=rng.randint(1, 20)), rng.randint(8 * 3600, 17 * 3600))
                m.ended_by = admin
                c["forms in force ending 2026-12-31"] += 1
        elif rng.random() < PENDING_FORM_SHARE:
            taken = {p.provider for p in plan[-3:] if p.employer == e and p.kind is MandateKind.FORM}
            provider = pick(others, other_cum, unlike=taken)
            if provider is not None:
                filed_day = DAY - timedelta(days=rng.randint(1, 60))
                filed_form(e, admin, provider, rng.choice([CURRENT_QUARTER, NEXT_QUARTER]), filed_day,
                           MandateStatus.PENDING)

    # Staff --------------------------------------------------------------------------------
    clients = Counter(m.provider for m in plan)
    staff_window: dict[int, tuple[datetime, datetime]] = {}   # when he could be assigned
    staff_rows: list[tuple] = []  # (person, provider, role, link kind, link start, link end, member start, member end)
    next_person = staff0
    for i in range(1, NP + 1):
        admin = world.provider_admin[i]
        start = MANDATE_EPOCH + timedelta(days=rng.randint(0, 900))
        member_start = at(start + timedelta(days=rng.randint(0, 30)), rng.randint(0, 86399))
        staff_rows.append((admin, i, Role.LOCAL_ADMIN,
                           LinkKind.ZAAKVOERDER if rng.random() < 0.5 else LinkKind.WERKNEMER,
                           start, None, member_start, None))
        world.staff_state[admin] = STAFF_ACTIVE
        staff_window[admin] = (member_start, NOW)
        secretariat = world.provider_kind[i] is ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT
        n_staff = max(1, math.ceil(clients[i] / CLIENTS_PER_STAFF[secretariat]))
        for k in range(n_staff):
            next_person += 1
            p = next_person
            state = weighted_choice(rng, STAFF_STATES)
            start = MANDATE_EPOCH + timedelta(days=rng.randint(0, (DAY - MANDATE_EPOCH).days - 60))
            member_start = min(at(start + timedelta(days=rng.randint(0, 30)), rng.randint(0, 86399)),
                               NOW - timedelta(days=1))
            link_end = member_end = None
            hi = NOW
            if state != STAFF_ACTIVE:
                first = max(start, member_start.date(), DAY - timedelta(days=730))
                link_end = first + timedelta(days=rng.randint(0, max(0, (DAY - timedelta(days=1) - first).days)))
                hi = at(link_end, 17 * 3600)
                if state == STAFF_FORMER:
                    member_end = min(max(at(link_end + timedelta(days=rng.randint(0, 14)), rng.randint(0, 86399)),
                                         member_start + timedelta(hours=1)), NOW - timedelta(hours=1))
                    hi = min(hi, member_end)
            role = Role.CO_ADMIN if k == 0 and n_staff >= 10 and state == STAFF_ACTIVE else Role.USER
            staff_rows.append((p, i, role, LinkKind.WERKNEMER, start, link_end, member_start, member_end))
            world.provider_staff[i].append(p)
            world.staff_state[p] = state
            staff_window[p] = (member_start, max(hi, member_start + timedelta(minutes=1)))
    # Every kind of request needs its staff member even in a tiny world: the largest
    # secretariat has one whose link ended and one who left.
    states = Counter(world.staff_state.values())
    biggest = max(secretariats, key=lambda s: len(world.provider_staff[s]))
    for state in (STAFF_LINK_ENDED, STAFF_FORMER):
        active = [p for p in world.provider_staff[biggest][1:] if world.staff_state[p] == STAFF_ACTIVE]
        if not states[state] and len(active) > 1:
            p = active[-1]
            row = next(k for k, r in enumerate(staff_rows) if r[0] == p)
            _, prov, _, kind, start, _, member_start, _ = staff_rows[row]
            link_end = DAY - timedelta(days=1)
            member_end = NOW - timedelta(hours=1) if state == STAFF_FORMER else None
            staff_rows[row] = (p, prov, Role.USER, kind, start, link_end, member_start, member_end)
            world.staff_state[p] = state
            staff_window[p] = (member_start, at(link_end, 17 * 3600))

    # Staff assignments ----------------------------------------------------------------------
    assignment_rows: list[tuple] = []  # (mandate, person, app, assigned_by, assigned_at, revoked_by, revoked_at)
    worked: list[tuple[PlannedMandate, tuple[datetime, datetime]]] = []
    for m in plan:
        window = m.work_window()
        if window is None:
            continue
        worked.append((m, window))
        pool = world.provider_staff[m.provider]
        want = min(len(pool), weighted_choice(rng, STAFF_PER_MANDATE))
        tried: set[int] = set()
        for _ in range(8 * want):
            if want == 0:
                break
            p = rng.choice(pool)
            if p in tried:
                continue
            tried.add(p)
            lo, hi = max(window[0], staff_window[p][0]), min(window[1], staff_window[p][1])
            if lo >= hi:
                continue
            want -= 1
            chosen = [g for g in m.groups if rng.random() < ASSIGN_GROUP_SHARE] or [rng.choice(m.groups)]
            assigned_at = random_moment(rng, lo, min(hi, lo + timedelta(days=60)))
            mask = 0
            for g in chosen:
                for app in groups.get(g).applications:
                    mask |= 1 << world.bit_of[app]
                    assignment_rows.append((m.id, p, app, world.provider_admin[m.provider], assigned_at, None, None))
            world.assigned[(p, m.id)] = mask
    n_current = len(assignment_rows)
    for _ in range(int(n_current * REVOKED_ASSIGNMENT_SHARE)):
        m, window = rng.choice(worked)
        p = rng.choice(world.provider_staff[m.provider])
        lo, hi = max(window[0], staff_window[p][0]), min(window[1], staff_window[p][1])
        free = [a for g in m.groups for a in groups.get(g).applications
                if not world.assigned.get((p, m.id), 0) >> world.bit_of[a] & 1]
        if lo >= hi or not free:
            continue
        assigned_at = random_moment(rng, lo, hi)
        revoked_at = random_moment(rng, assigned_at, hi) + timedelta(seconds=1)
        admin = world.provider_admin[m.provider]
        assignment_rows.append((m.id, p, rng.choice(free), admin, assigned_at, admin, revoked_at))

    # What the requests and checks need -------------------------------------------------------
    for m in plan:
        world.m_kind.append(m.kind)
        world.m_employer.append(m.employer)
        world.m_provider.append(m.provider)
        world.m_active.append(m.active_on(DAY))
        world.m_scope.append(sum(world.group_masks[g] for g in m.groups))
        world.employer_mandates.setdefault(m.employer, []).append(m.id)
        world.ever.add((m.employer, m.provider))

    # Rows ---------------------------------------------------------------------------------
    created = at(MANDATE_EPOCH)
    folded = "name_folded" in Enterprise.__table__.c

    def enterprise_rows():
        for i in range(1, NP + 1):
            kind = world.provider_kind[i]
            yield provider_enterprise0 + i, f"{PROVIDER_NAMES[kind]} {i:04d}", "VZW" if i <= n_sec else "BV"
        for j in range(1, NE + 1):
            yield employer0 + j, f"Werkgever {j:06d}", rng.choice(("BV", "NV", "VZW", "CommV"))

    def enterprise_dicts():
        for e, name, legal_form in enterprise_rows():
            row = dict(id=e, kbo_number=make_kbo(KBO_BODY_BASE + e), name=name, street=f"Stationsstraat {e % 300 + 1}",
                       postal_code=f"{1000 + e % 8000}", city="Antwerpen", legal_form=legal_form,
                       rsz_number=make_rsz(RSZ_RADIX_BASE + e), joint_committee=rng.choice(("200", "124", "302", "111")),
                       created_at=created)
            if folded:
                row["name_folded"] = fold_for_search(name) if fold_for_search else name.casefold()
            yield row

    for batch in chunked(enterprise_dicts()):
        conn.execute(insert(Enterprise.__table__), batch)

    employer_admin_rows = []  # (person, employer, link kind, start, member start)
    for j in range(1, NE + 1):
        start = MANDATE_EPOCH + timedelta(days=rng.randint(0, 900))
        employer_admin_rows.append((employer_admin0 + j, employer0 + j,
                                    LinkKind.ZAAKVOERDER if rng.random() < 0.4 else LinkKind.WERKNEMER, start,
                                    at(start + timedelta(days=rng.randint(0, 30)), rng.randint(0, 86399))))

    def person_dicts():
        for p in range(ds.persons + 1, next_person + 1):
            yield dict(id=p, insz=bench_insz(p), first_name=FIRST_NAMES[p % len(FIRST_NAMES)],
                       last_name=f"{LAST_NAMES[p % len(LAST_NAMES)]}{p}", email=f"person{p}@example.invalid",
                       created_at=created)

    for batch in chunked(person_dicts()):
        conn.execute(insert(Person.__table__), batch)

    def link_dicts():
        for p, e, kind, start, _ in employer_admin_rows:
            yield dict(enterprise_id=e, person_id=p, kind=kind, start_date=start, end_date=None, created_at=at(start))
        for p, i, _, kind, start, end, _, _ in staff_rows:
            yield dict(enterprise_id=world.provider_enterprise[i], person_id=p, kind=kind, start_date=start,
                       end_date=end, created_at=at(start))

    for batch in chunked(link_dicts()):
        conn.execute(insert(Link.__table__), batch)

    def membership_dicts():
        for p, e, _, _, started in employer_admin_rows:
            yield dict(enterprise_id=e, person_id=p, role=Role.LOCAL_ADMIN, appointed_by_id=None, started_at=started,
                       ended_at=None, ended_by_id=None)
        for p, i, role, _, _, _, started, ended in staff_rows:
            admin = world.provider_admin[i]
            yield dict(enterprise_id=world.provider_enterprise[i], person_id=p, role=role,
                       appointed_by_id=None if role is Role.LOCAL_ADMIN else admin, started_at=started,
                       ended_at=ended, ended_by_id=admin if ended else None)

    for batch in chunked(membership_dicts()):
        conn.execute(insert(Membership.__table__), batch)

    conn.execute(insert(Provider.__table__), [
        dict(id=i, enterprise_id=world.provider_enterprise[i], kind=world.provider_kind[i],
             recognition_number=f"{300 + i:03d}/{i % 100:02d}" if i <= n_sec else None,
             registered_at=at(MANDATE_EPOCH + timedelta(days=rng.randint(0, 300))), registered_by_id=None)
        for i in range(1, NP + 1)])

    def mandate_dicts():
        for m in plan:
            affiliation_kind = m.kind is MandateKind.AFFILIATION
            yield dict(id=m.id, kind=m.kind, employer_id=m.employer, provider_id=m.provider, status=m.status,
                       start_date=m.start, end_date=m.end, effective_from=m.effective_from,
                       contract_declared=not affiliation_kind, contract_date=m.contract_date,
                       contract_reference=m.contract_reference, affiliation_number=m.affiliation_number,
                       minimum_term_months=36 if affiliation_kind else None,
                       notice_months=6 if affiliation_kind else None, notice_date=m.notice_date,
                       filed_by_id=m.filed_by, filed_at=m.filed_at, decided_by_id=m.decided_by,
                       decided_at=m.decided_at, ended_by_id=m.ended_by, ended_at=m.ended_at)

    for batch in chunked(mandate_dicts()):
        conn.execute(insert(Mandate.__table__), batch)

    def scope_dicts():
        for m in plan:
            for g in m.groups:
                for app in groups.get(g).applications:
                    yield dict(mandate_id=m.id, application_group=g, application=app)

    scope_rows = 0
    for batch in chunked(scope_dicts()):
        conn.execute(insert(MandateApplication.__table__), batch)
        scope_rows += len(batch)

    def assignment_dicts():
        for m, p, app, by, assigned_at, revoked_by, revoked_at in assignment_rows:
            yield dict(mandate_id=m, person_id=p, application=app, assigned_by_id=by, assigned_at=assigned_at,
                       revoked_by_id=revoked_by, revoked_at=revoked_at)

    for batch in chunked(assignment_dicts()):
        conn.execute(insert(StaffAssignment.__table__), batch)

    kinds = Counter(world.provider_kind[1:])
    statuses = Counter((m.kind, m.status) for m in plan)
    c["providers"] = NP
    c["secretariats"] = kinds[ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT]
    c["accountants"] = kinds[ProviderKind.ACCOUNTANT]
    c["software bureaus"] = kinds[ProviderKind.SOFTWARE_BUREAU]
    c["other intermediaries"] = kinds[ProviderKind.OTHER_INTERMEDIARY]
    c["employers"] = NE
    c["mandates"] = len(plan)
    c["affiliations"] = statuses[(MandateKind.AFFILIATION, MandateStatus.ACCEPTED)]
    c["forms"] = sum(v for (k, _), v in statuses.items() if k is MandateKind.FORM)
    c["forms accepted"] = statuses[(MandateKind.FORM, MandateStatus.ACCEPTED)]
    c["forms pending"] = statuses[(MandateKind.FORM, MandateStatus.PENDING)]
    c["mandates in force"] = sum(world.m_active)
    c["forms in force"] = sum(1 for m in plan if m.kind is MandateKind.FORM and world.m_active[m.id])
    c["scope rows"] = scope_rows
    c["staff"] = len(staff_rows) - NP
    c["staff with ended link"] = sum(1 for s in world.staff_state.values() if s == STAFF_LINK_ENDED)
    c["former staff"] = sum(1 for s in world.staff_state.values() if s == STAFF_FORMER)
    c["assignments"] = len(assignment_rows)
    c["revoked assignments"] = len(assignment_rows) - n_current
    ds.counts["mandate persons"] = next_person - ds.persons
    log(f"mandates: {NP:,} providers ({c['secretariats']:,} erkende sociale secretariaten, {c['accountants']:,} "
        f"accountants, {c['software bureaus']:,} software bureaus, {c['other intermediaries']:,} other), "
        f"{NE:,} employers; {len(plan):,} mandates: {c['affiliations']:,} affiliations "
        f"({c['affiliations ended by a switch']:,} ended by a switch, "
        f"{c['affiliations from 2027-01-01 (switch recorded)']:,} starting 2027-01-01), {c['forms']:,} forms "
        f"({c['forms in force']:,} in force, {c['forms in force ending 2026-12-31']:,} of them ending 2026-12-31; "
        f"{c['forms pending']:,} pending; earlier: {c['earlier forms ended']:,} ended, "
        f"{c['earlier forms revoked']:,} revoked, {c['earlier forms declined']:,} declined, "
        f"{c['earlier forms withdrawn']:,} withdrawn); {c['mandates in force']:,} in force on {DAY}")
    log(f"mandates: {scope_rows:,} scope rows; {c['staff']:,} staff members besides the {NP:,} providers' local "
        f"administrators ({c['staff with ended link']:,} with an ended link, {c['former staff']:,} removed); "
        f"{len(assignment_rows):,} staff assignments ({c['revoked assignments']:,} revoked); "
        f"{NE:,} employers' local administrators")


# Data builders after the core, in order: fn(conn, ds, rng, args, log).
DATA_BUILDERS: list[Callable[..., None]] = [build_mandates]


# =========================================================================================
# The database
# =========================================================================================

@dataclass
class Database:
    url: str
    engine: Engine
    tmpdir: str | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def open_database(url: str | None) -> Database:
    tmpdir = None
    if not url:
        tmpdir = tempfile.mkdtemp(prefix="portal-bench-")
        url = f"sqlite:///{tmpdir}/bench.sqlite3"
    url = normalise_url(url)
    engine = make_engine(url)
    existing = inspect(engine).get_table_names()
    if existing:
        engine.dispose()
        raise SystemExit(f"{url}: the database is not empty ({len(existing)} tables); give an empty database")
    return Database(url, engine, tmpdir)


def close_database(db: Database, keep: bool, log: Callable[[str], None]) -> None:
    db.engine.dispose()
    if keep:
        log(f"kept: {db.url}")
        return
    if db.tmpdir:
        shutil.rmtree(db.tmpdir, ignore_errors=True)
    elif db.dialect == "postgresql":
        from alembic import command

        engine = make_engine(db.url)
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()
        log("dropped the benchmark tables (use --keep to keep them)")
    else:
        log(f"left in place (not a temp file): {db.url}")


def build_database(db: Database, ds: Dataset, rng: random.Random, args, log) -> Stopwatch:
    watch = Stopwatch()
    upgrade(db.engine)
    watch.lap("schema")
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            # Bigger page cache for the load only; the pool is disposed before measuring.
            conn.exec_driver_sql("PRAGMA cache_size=-262144")
        build_core(conn, ds, rng, args.rights, log)
        for builder in DATA_BUILDERS:
            builder(conn, ds, rng, args, log)
    watch.lap("insert")
    if db.dialect == "sqlite":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        # VACUUM also sets the visibility map, as autovacuum would on a live database.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    watch.lap("analyze")
    db.engine.dispose()   # measure with fresh connections, as the application opens them
    return watch


# =========================================================================================
# Requests
# =========================================================================================

@dataclass(frozen=True)
class Case:
    kind: str
    person_id: int
    enterprise_id: int
    application: str
    action: str
    expected: Any                  # expected outcome of the decision: its reason code (rights), or more
    subject: Subject
    casbin_request: tuple[str, str, str, str]


def make_case(ds: Dataset, kind: str, p: int, e: int, app: str, action: str, expected: str) -> Case:
    return Case(kind, p, e, app, action, expected, Subject(person_id=p, label=f"person {p}"),
                (f"p{p}", f"e{e}", app, action))


class CaseFactory:
    """Draws requests of each kind of MIX from the data set knowledge."""

    def __init__(self, ds: Dataset, certificate_apps: list[str]) -> None:
        self.ds = ds
        self.certificate_apps = certificate_apps
        n = len(ds.pair_role)
        self.user_with_rights = [i for i in range(n) if ds.pair_role[i] == ds.ROLE_USER and ds.pair_active[i]
                                 and ds.pair_rights[i]]
        self.user_missing_rights = [i for i in range(n) if ds.pair_role[i] == ds.ROLE_USER and ds.pair_active[i]
                                    and ds.pair_rights[i] != ds.eligible_mask(ds.pair_enterprise[i])]
        self.active_users_of_employers = [i for i in range(n) if ds.pair_role[i] == ds.ROLE_USER
                                          and ds.pair_active[i] and ds.employer[ds.pair_enterprise[i]]]
        self.ended = [i for i in range(n) if not ds.pair_active[i] and ds.pair_role[i]]
        self.undesignated = [i for i in range(n) if ds.pair_role[i] == ds.ROLE_NONE and ds.pair_active[i]]
        self.employers = [e for e in range(1, ds.enterprises + 1) if ds.employer[e]]

    def draw(self, rng: random.Random, n: int, mix: dict[str, float] = MIX) -> list[Case]:
        table = list(mix.items())
        return [self.one(rng, weighted_choice(rng, table)) for _ in range(n)]

    def one(self, rng: random.Random, kind: str) -> Case:
        ds = self.ds
        if kind == "user-right":
            i = rng.choice(self.user_with_rights)
            return make_case(ds, kind, ds.pair_person[i], ds.pair_enterprise[i],
                             rng.choice(ds.apps_of(ds.pair_rights[i])), "use", "allowed")
        if kind == "local-admin":
            e = rng.randint(1, ds.enterprises)
            if rng.random() < 0.3:
                return make_case(ds, kind, ds.admin_of[e], e, ACCESS_MANAGEMENT, "manage_users", "allowed")
            return make_case(ds, kind, ds.admin_of[e], e, rng.choice(ds.apps_of(ds.eligible_mask(e))), "use",
                             "allowed")
        if kind == "no-right" and self.user_missing_rights:
            i = rng.choice(self.user_missing_rights)
            missing = ds.eligible_mask(ds.pair_enterprise[i]) & ~ds.pair_rights[i]
            return make_case(ds, kind, ds.pair_person[i], ds.pair_enterprise[i],
                             rng.choice(ds.apps_of(missing)), "use", "no-right")
        if kind == "ended-link" and self.ended:
            i = rng.choice(self.ended)
            mask = ds.pair_rights[i] or ds.eligible_mask(ds.pair_enterprise[i])
            return make_case(ds, kind, ds.pair_person[i], ds.pair_enterprise[i], rng.choice(ds.apps_of(mask)),
                             "use", "no-direct-authority")
        if kind == "not-designated" and self.undesignated:
            i = rng.choice(self.undesignated)
            return make_case(ds, kind, ds.pair_person[i], ds.pair_enterprise[i],
                             rng.choice(ds.apps_of(ds.eligible_mask(ds.pair_enterprise[i]))), "use",
                             "not-designated")
        if kind == "certificate" and self.employers:
            app = rng.choice(self.certificate_apps)
            if rng.random() < 0.5 or not self.active_users_of_employers:
                e = rng.choice(self.employers)
                return make_case(ds, kind, ds.admin_of[e], e, app, "use", "certificate-required")
            i = rng.choice(self.active_users_of_employers)
            return make_case(ds, kind, ds.pair_person[i], ds.pair_enterprise[i], app, "use", "no-right")
        # unknown-pair (and the fallback when a kind has no candidates at this size)
        while True:
            p, e = rng.randint(1, ds.persons), rng.randint(1, ds.enterprises)
            if ds.key(p, e) not in ds.pair_index:
                app = rng.choice(ds.apps_of(ds.eligible_mask(e)))
                return make_case(ds, "unknown-pair", p, e, app, "use", "no-direct-authority")


# =========================================================================================
# Contenders and measurement
# =========================================================================================

@dataclass
class Measurement:
    name: str
    latencies_ns: array                  # wall time of each call, in request order
    cpu_ns: array                        # CPU time of this thread during each call
    outcomes: list[Any]
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after the timed run
    gc: str = ""                             # garbage collections during the timed run

    @property
    def count(self) -> int:
        return len(self.latencies_ns)

    def stats(self, indices: Sequence[int] | None = None, cpu: bool = False) -> dict[str, float]:
        source = self.cpu_ns if cpu else self.latencies_ns
        values = sorted(source if indices is None else [source[i] for i in indices])
        n = len(values)

        def pct(q: float) -> float:
            return values[max(0, math.ceil(q * n) - 1)] / 1000  # µs

        total_s = sum(values) / 1e9
        return dict(count=n, per_s=n / total_s if total_s else 0.0, p50=pct(0.50), p90=pct(0.90),
                    p99=pct(0.99), max=values[-1] / 1000, mean=sum(values) / n / 1000)


class GcWatch:
    """Counts the garbage collector's passes per generation, and their time, during a block."""

    def __enter__(self) -> "GcWatch":
        self.passes = [0, 0, 0]
        self.ns = [0, 0, 0]
        self.worst_ns = 0
        self._start = 0
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
            return
        took = time.perf_counter_ns() - self._start
        generation = info["generation"]
        self.passes[generation] += 1
        self.ns[generation] += took
        self.worst_ns = max(self.worst_ns, took)

    def summary(self) -> str:
        return (f"{self.passes[0]}/{self.passes[1]}/{self.passes[2]} passes (gen 0/1/2), "
                f"{sum(self.ns) / 1e6:.0f} ms in all, full passes {self.ns[2] / 1e6:.0f} ms, "
                f"longest {self.worst_ns / 1e6:.1f} ms")


# A contender: name -> callable(case) whose return value is kept as the outcome.
ContenderFn = Callable[[Case], Any]


def run_timed(fn: ContenderFn, cases: Sequence[Case],
              outcome: Callable[[Any], Any] = lambda out: out) -> tuple[array, array, list[Any]]:
    """Call fn on every case; per call: wall time (perf_counter_ns, what the figures are), and
    this thread's CPU time (thread_time_ns, which a busy machine's waits for a core leave out).

    Only outcome(result) is kept (outside the timed window), e.g. a reason code rather than the
    whole Decision: tens of thousands of kept objects would make the garbage collector's full
    passes, and so the timings, depend on the benchmark's own bookkeeping."""
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    latencies = array("q", bytes(8 * len(cases)))
    cpu = array("q", bytes(8 * len(cases)))
    outcomes: list[Any] = [None] * len(cases)
    for i, case in enumerate(cases):
        c0 = cpu_clock()
        t0 = clock()
        out = fn(case)
        t1 = clock()
        c1 = cpu_clock()
        latencies[i] = t1 - t0
        cpu[i] = c1 - c0
        outcomes[i] = outcome(out)
    return latencies, cpu, outcomes


@dataclass(frozen=True)
class Contender:
    name: str
    make: Callable[["Bench", Session], ContenderFn]   # the callable to time, given a session
    outcome: Callable[[Any], Any]                       # what to keep of each result
    uses_session: bool = True


def decision_contender(bench: "Bench", session: Session) -> ContenderFn:
    catalogue = bench.catalogue

    def call(case: Case):
        return decide(session, case.subject, case.enterprise_id, case.application, case.action,
                      catalogue=catalogue, day=DAY)
    return call


# The bare SELECT: the current right row of (person, enterprise, application) through the
# partial unique index uq_rights_current (WHERE revoked_at IS NULL), an ORM select() executed
# through the session like the decision's own query. The statement is built once, with bound
# parameters: building it is avoidable work, running it is not.
RIGHT_ROW = select(Right.id).where(
    Right.person_id == bindparam("person_id"),
    Right.enterprise_id == bindparam("enterprise_id"),
    Right.application == bindparam("application"),
    Right.revoked_at.is_(None),
)


def select_contender(bench: "Bench", session: Session) -> ContenderFn:  # noqa: ARG001
    def call(case: Case):
        return session.execute(RIGHT_ROW, {"person_id": case.person_id, "enterprise_id": case.enterprise_id,
                                           "application": case.application}).first()
    return call


def select_built_contender(bench: "Bench", session: Session) -> ContenderFn:  # noqa: ARG001
    """The same SELECT with the statement built on every call, as application code usually does
    (and as decide() does with its facts query): shows what building costs."""
    def call(case: Case):
        return session.execute(
            select(Right.id).where(
                Right.person_id == case.person_id,
                Right.enterprise_id == case.enterprise_id,
                Right.application == case.application,
                Right.revoked_at.is_(None),
            )
        ).first()
    return call


def casbin_contender(bench: "Bench", session: Session | None = None) -> ContenderFn:  # noqa: ARG001
    enforce = bench.enforcer.enforce

    def call(case: Case):
        return enforce(*case.casbin_request)
    return call


def session_per_call(bench: "Bench", make: Callable[["Bench", Session], ContenderFn]) -> ContenderFn:
    """A contender that opens (and closes) its own session per call, like a web request."""

    def call(case: Case):
        with Session(bench.db.engine) as session:
            return make(bench, session)(case)
    return call


# =========================================================================================
# casbin
# =========================================================================================

CASBIN_MODEL = """
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj == p.obj && r.act == p.act && g(r.sub, p.sub, r.dom) && (p.dom == "*" || r.dom == p.dom)
"""


def build_casbin(ds: Dataset, catalogue: Catalogue, log) -> tuple[Any, dict[str, int], float]:
    """An RBAC-with-domains enforcer holding the rights and roles in force on DAY.

    Domain = enterprise. Policies are per role for all domains ("*"): "right:<app>" may use
    <app>; the local admin of an employer may use every password app and manage users; the
    local admin of a non-employer only the apps open to non-employers. Grouping rules put a
    person in a role in a domain: one per current right (USER with a link valid on DAY) and
    one per local admin. casbin knows no time: the link check is baked into the snapshot.
    """
    import casbin

    t0 = time.perf_counter()
    model = casbin.Enforcer.new_model(text=CASBIN_MODEL)
    enforcer = casbin.Enforcer(model)
    policies = [[f"right:{app}", "*", app, "use"] for app in ds.password_apps]
    policies += [["local_admin_employer", "*", app, "use"] for app in ds.apps_of(ds.employer_mask)]
    policies += [["local_admin", "*", app, "use"] for app in ds.apps_of(ds.other_mask)]
    policies += [[role, "*", ACCESS_MANAGEMENT, "manage_users"] for role in ("local_admin_employer", "local_admin")]
    enforcer.add_policies(policies)

    rules: list[list[str]] = []
    for e in range(1, ds.enterprises + 1):
        rules.append([f"p{ds.admin_of[e]}", "local_admin_employer" if ds.employer[e] else "local_admin", f"e{e}"])
    for i in range(len(ds.pair_role)):
        if ds.pair_role[i] == ds.ROLE_USER and ds.pair_active[i] and ds.pair_rights[i]:
            p, e = ds.pair_person[i], ds.pair_enterprise[i]
            for app in ds.apps_of(ds.pair_rights[i]):
                rules.append([f"p{p}", f"right:{app}", f"e{e}"])
    enforcer.add_grouping_policies(rules)
    # casbin builds a domain's role manager on the first request in that domain; build them
    # all now so that the timed run measures the steady state, not the first request per domain.
    for e in range(1, ds.enterprises + 1):
        enforcer.get_roles_for_user_in_domain(f"p{ds.admin_of[e]}", f"e{e}")
    counts = {"policies": len(policies), "grouping rules": len(rules)}
    return enforcer, counts, time.perf_counter() - t0


# =========================================================================================
# The bench and its scenarios
# =========================================================================================

@dataclass
class Bench:
    args: argparse.Namespace
    db: Database
    ds: Dataset
    catalogue: Catalogue
    enforcer: Any                      # casbin for the rights scenario (None when it does not run)
    cases: CaseFactory
    log: Callable[[str], None]
    mandate_enforcer: Any = None       # casbin for the mandates scenario
    mandate_cases: "MandateCaseFactory | None" = None


@dataclass
class ScenarioResult:
    title: str
    cases: list[Case]
    measurements: list[Measurement]
    notes: list[str] = field(default_factory=list)
    # Requests whose answer was wrong (reason, baseline disagreement): a run with any is a failed run.
    failures: int = 0
    p99_target_us: float = 1000                 # the target for the decision point's p99
    select_factor_target: float | None = 3      # ... and within this factor of the bare SELECT


def measure_contenders(bench: Bench, cases: list[Case], warmup: list[Case],
                       contenders: Sequence[Contender]) -> list[Measurement]:
    results = []
    for contender in contenders:
        name, make = contender.name, contender.make
        # Fresh connections (and, on SQLite, an empty page cache) for every contender, so
        # that no contender profits from pages its predecessor read on the same requests.
        bench.db.engine.dispose()
        session = Session(bench.db.engine)
        try:
            fn = session_per_call(bench, make) if bench.args.session_per_decision and contender.uses_session \
                else make(bench, session)
            run_timed(fn, warmup, contender.outcome)
            # Whatever exists now (the requests included) outlives the run: freeze it, so that
            # the collector's passes during the run cost what the contender's garbage costs.
            gc.collect()
            gc.freeze()
            load_before = os.getloadavg()[0]
            with GcWatch() as gc_watch:
                latencies, cpu, outcomes = run_timed(fn, cases, contender.outcome)
            results.append(Measurement(name, latencies, cpu, outcomes, (load_before, os.getloadavg()[0]),
                                       gc_watch.summary()))
        finally:
            session.rollback()
            session.close()
    return results


def has_right(ds: Dataset, case: Case) -> bool:
    i = ds.pair_index.get(ds.key(case.person_id, case.enterprise_id))
    if i is None or case.application not in ds.password_apps:
        return False
    return bool(ds.pair_rights[i] >> ds.password_apps.index(case.application) & 1)


def scenario_rights(bench: Bench) -> ScenarioResult:
    """Rights and roles: the mix of MIX, the same requests for the three contenders."""
    rng = random.Random(bench.args.seed + 1)
    warmup = bench.cases.draw(rng, bench.args.warmup)
    cases = bench.cases.draw(rng, bench.args.decisions)
    measurements = measure_contenders(bench, cases, warmup, [
        Contender("decision", decision_contender, lambda decision: decision.reason.code),
        Contender("SELECT", select_contender, lambda row: row is not None),
        Contender("SELECT+build", select_built_contender, lambda row: row is not None),
        Contender("casbin", casbin_contender, bool, uses_session=False),
    ])
    by_name = {m.name: m for m in measurements}
    notes = []

    # Sanity: the decision point gives the reason the generator expects, and casbin agrees
    # on allowed/denied; the bare SELECT finds a row exactly for the user-right requests.
    codes = by_name["decision"].outcomes
    wrong = [(c, code) for c, code in zip(cases, codes) if code != c.expected]
    notes.append(f"decision reasons as expected: {len(cases) - len(wrong):,}/{len(cases):,}")
    for c, code in wrong[:5]:
        notes.append(f"  unexpected: {c.kind} p{c.person_id} e{c.enterprise_id} {c.application}: "
                     f"{code}, expected {c.expected}")
    agree = sum(1 for code, ok in zip(codes, by_name["casbin"].outcomes) if (code == "allowed") == ok)
    notes.append(f"casbin agrees with the decision point (allowed/denied): {agree:,}/{len(cases):,}")
    for name in ("SELECT", "SELECT+build"):
        found = sum(1 for c, got in zip(cases, by_name[name].outcomes) if got == has_right(bench.ds, c))
        notes.append(f"{name} finds a current right row exactly where the data set has one: {found:,}/{len(cases):,}")
    failures = len(wrong) + (len(cases) - agree) + sum(
        1 for name in ("SELECT", "SELECT+build")
        for c, got in zip(cases, by_name[name].outcomes) if got != has_right(bench.ds, c))
    return ScenarioResult("rights and roles", cases, measurements, notes, failures)


# =========================================================================================
# The mandates scenario: staff of providers acting for client employers
# =========================================================================================

# kind -> share of the timed requests; every one is a provider's staff member asking to use a
# password-tier application for an employer.
MANDATE_MIX = {
    "via-affiliation": 0.50,   # allowed: assigned, under the affiliation of his secretariat
    "via-form": 0.20,          # allowed: assigned, under the accepted provider form of his provider
    "not-assigned": 0.08,      # denied: within the mandate, not assigned to him for that application
    "outside-mandate": 0.05,   # denied: the application is not within the mandate
    "link-ended": 0.05,        # denied: assigned, but his link with the provider ended (no-provider-authority)
    "no-mandate": 0.05,        # denied: his provider's mandate ended, was revoked, declined, is pending or not yet in force
    "other-provider": 0.05,    # denied: his provider has no mandate of this employer (no-direct-authority)
    "former-staff": 0.02,      # denied: removed by his provider (membership ended), assignments left (no-direct-authority)
}


def expected_outcome(code: str, first_step: str | None = None, provider_enterprise_id: int | None = None):
    """What the scenario checks of each decision: its reason code, the first step of its path (which
    mandate allowed it) and the provider it names."""
    return (code, first_step, provider_enterprise_id)


def decision_outcome(decision) -> tuple:
    return expected_outcome(decision.reason.code, decision.path[0].code if decision.allowed and decision.path else None,
                            decision.provider_enterprise_id)


class MandateCaseFactory:
    """Draws staff requests of each kind of MANDATE_MIX from the mandate world's knowledge."""

    def __init__(self, world: MandateWorld) -> None:
        self.world = w = world
        self.password_bits = [i for i in range(len(w.apps)) if w.password_mask >> i & 1]
        self.active_staff = {i: [p for p in staff if w.staff_state[p] == STAFF_ACTIVE]
                             for i, staff in enumerate(w.provider_staff) if i}
        self.assigned_pairs: dict[str, list[tuple[int, int]]] = {k: [] for k in (
            "via-affiliation", "via-form", "link-ended", "former-staff")}
        for (p, m), mask in w.assigned.items():
            if not (w.m_active[m] and mask & w.password_mask):
                continue
            state = w.staff_state[p]
            kind = ("via-affiliation" if w.m_kind[m] is MandateKind.AFFILIATION else "via-form") \
                if state == STAFF_ACTIVE else "link-ended" if state == STAFF_LINK_ENDED else "former-staff"
            self.assigned_pairs[kind].append((p, m))
        for pairs in self.assigned_pairs.values():
            pairs.sort()  # dict order is insertion order, but be explicit: reproducible draws
        self.active_mandates = [m for m in range(1, len(w.m_active)) if w.m_active[m]
                                and self.active_staff[w.m_provider[m]]]
        self.partial_scope = [m for m in self.active_mandates if w.m_scope[m] & w.password_mask != w.password_mask]
        # (employer, provider): mandates, none in force on the day, and active staff to ask.
        self.lapsed: list[tuple[int, int]] = []
        for e, ms in sorted(w.employer_mandates.items()):
            live = {w.m_provider[m] for m in ms if w.m_active[m]}
            for provider in sorted({w.m_provider[m] for m in ms} - live):
                if self.active_staff[provider]:
                    self.lapsed.append((e, provider))
        self.providers_with_staff = [i for i, staff in self.active_staff.items() if staff]

    def draw(self, rng: random.Random, n: int, mix: dict[str, float] = MANDATE_MIX) -> list[Case]:
        table = list(mix.items())
        return [self.one(rng, weighted_choice(rng, table)) for _ in range(n)]

    def _case(self, kind: str, p: int, e: int, bit: int, expected: tuple) -> Case:
        app = self.world.apps[bit]
        return Case(kind, p, e, app, "use", expected, Subject(person_id=p, label=f"person {p}"),
                    (f"p{p}", f"e{e}", app, "use"))

    def _bits(self, mask: int) -> list[int]:
        return [i for i in self.password_bits if mask >> i & 1]

    def one(self, rng: random.Random, kind: str) -> Case:
        w = self.world
        pairs = self.assigned_pairs.get(kind)
        if pairs:
            p, m = rng.choice(pairs)
            e, provider = w.m_employer[m], w.m_provider[m]
            bit = rng.choice(self._bits(w.assigned[(p, m)]))
            pe = w.provider_enterprise[provider]
            expected = {
                "via-affiliation": expected_outcome("allowed", "mandate-affiliation", pe),
                "via-form": expected_outcome("allowed", "mandate-form", pe),
                "link-ended": expected_outcome("no-provider-authority", None, pe),
                "former-staff": expected_outcome("no-direct-authority"),
            }[kind]
            return self._case(kind, p, e, bit, expected)
        if kind == "not-assigned" and self.active_mandates:
            for _ in range(100):
                m = rng.choice(self.active_mandates)
                provider = w.m_provider[m]
                p = rng.choice(self.active_staff[provider])
                free = self._bits(w.m_scope[m] & ~w.assigned.get((p, m), 0))
                if free:
                    return self._case(kind, p, w.m_employer[m], rng.choice(free),
                                      expected_outcome("not-assigned", None, w.provider_enterprise[provider]))
        if kind == "outside-mandate" and self.partial_scope:
            m = rng.choice(self.partial_scope)
            provider = w.m_provider[m]
            p = rng.choice(self.active_staff[provider])
            return self._case(kind, p, w.m_employer[m], rng.choice(self._bits(~w.m_scope[m])),
                              expected_outcome("outside-mandate", None, w.provider_enterprise[provider]))
        if kind == "no-mandate" and self.lapsed:
            e, provider = rng.choice(self.lapsed)
            return self._case(kind, rng.choice(self.active_staff[provider]), e, rng.choice(self.password_bits),
                              expected_outcome("no-mandate", None, w.provider_enterprise[provider]))
        # other-provider (and the fallback when a kind has no candidates at this size)
        while True:
            provider = rng.choice(self.providers_with_staff)
            e = w.first_employer + rng.randrange(w.employers)
            if (e, provider) not in w.ever:
                return self._case("other-provider", rng.choice(self.active_staff[provider]), e,
                                  rng.choice(self.password_bits), expected_outcome("no-direct-authority"))


# The bare SELECT of a staff decision: the current assignment of (person, application) joined to
# its mandate of the employer, accepted and in force on the day. Through uq_staff_assignments_current
# or ix_staff_assignments_person and the mandate's primary key (or ix_mandates_employer).
STAFF_ROW = (
    select(StaffAssignment.id)
    .join(Mandate, Mandate.id == StaffAssignment.mandate_id)
    .where(
        StaffAssignment.person_id == bindparam("person_id"),
        StaffAssignment.application == bindparam("application"),
        StaffAssignment.revoked_at.is_(None),
        Mandate.employer_id == bindparam("employer_id"),
        Mandate.status == MandateStatus.ACCEPTED,
        Mandate.effective_from <= bindparam("day"),
        or_(Mandate.end_date.is_(None), Mandate.end_date >= bindparam("day")),
    )
)


def staff_select_contender(bench: "Bench", session: Session) -> ContenderFn:  # noqa: ARG001
    def call(case: Case):
        return session.execute(STAFF_ROW, {"person_id": case.person_id, "employer_id": case.enterprise_id,
                                           "application": case.application, "day": DAY}).first()
    return call


def staff_select_built_contender(bench: "Bench", session: Session) -> ContenderFn:  # noqa: ARG001
    def call(case: Case):
        return session.execute(
            select(StaffAssignment.id)
            .join(Mandate, Mandate.id == StaffAssignment.mandate_id)
            .where(
                StaffAssignment.person_id == case.person_id,
                StaffAssignment.application == case.application,
                StaffAssignment.revoked_at.is_(None),
                Mandate.employer_id == case.enterprise_id,
                Mandate.status == MandateStatus.ACCEPTED,
                Mandate.effective_from <= DAY,
                or_(Mandate.end_date.is_(None), Mandate.end_date >= DAY),
            )
        ).first()
    return call


def mandate_casbin_contender(bench: "Bench", session: Session | None = None) -> ContenderFn:  # noqa: ARG001
    enforce = bench.mandate_enforcer.enforce

    def call(case: Case):
        return enforce(*case.casbin_request)
    return call


def build_mandate_casbin(world: MandateWorld, log) -> tuple[Any, dict[str, int], float]:
    """RBAC with domains holding what the staff may do on DAY, flattened: the domain is the client
    employer; one grouping rule per (staff member, password-tier application, employer) that the
    complete path allows (assignment current, mandate accepted and in force, membership current,
    link under direct authority on the day): the role "staff:<app>" in that domain. casbin knows
    neither time nor the path's steps: both are baked into this snapshot."""
    import casbin

    t0 = time.perf_counter()
    enforcer = casbin.Enforcer(casbin.Enforcer.new_model(text=CASBIN_MODEL))
    password_apps = world.apps_of(world.password_mask)
    policies = [[f"staff:{app}", "*", app, "use"] for app in password_apps]
    enforcer.add_policies(policies)
    bits = [(world.bit_of[app], app) for app in password_apps]
    rules = []
    for (p, m), mask in sorted(world.assigned.items()):
        if world.m_active[m] and world.staff_state[p] == STAFF_ACTIVE:
            e = world.m_employer[m]
            rules.extend([f"p{p}", f"staff:{app}", f"e{e}"] for bit, app in bits if mask >> bit & 1)
    enforcer.add_grouping_policies(rules)
    # Build every client's role manager now (casbin does it on the first request in a domain).
    for e in range(world.first_employer, world.first_employer + world.employers):
        enforcer.get_roles_for_user_in_domain("p0", f"e{e}")
    return enforcer, {"policies": len(policies), "grouping rules": len(rules)}, time.perf_counter() - t0


def scenario_mandates(bench: "Bench") -> ScenarioResult:
    """Staff of providers acting for client employers: the mix of MANDATE_MIX, the same requests
    for the decision point, the bare SELECT of the assignment under a mandate in force, and casbin."""
    world = bench.ds.mandates
    rng = random.Random(bench.args.seed + 11)
    factory = bench.mandate_cases
    warmup = factory.draw(rng, bench.args.warmup)
    cases = factory.draw(rng, bench.args.decisions)
    if bench.args.explain:
        bench.log("")
        explain_mandates(bench, cases, bench.log)
    measurements = measure_contenders(bench, cases, warmup, [
        Contender("decision", decision_contender, decision_outcome),
        Contender("SELECT", staff_select_contender, lambda row: row is not None),
        Contender("SELECT+build", staff_select_built_contender, lambda row: row is not None),
        Contender("casbin", mandate_casbin_contender, bool, uses_session=False),
    ])
    by_name = {m.name: m for m in measurements}
    notes = []
    outcomes = by_name["decision"].outcomes
    wrong = [(c, got) for c, got in zip(cases, outcomes) if got != c.expected]
    notes.append(f"decision reasons as expected: {len(cases) - len(wrong):,}/{len(cases):,}")
    for c, got in wrong[:5]:
        notes.append(f"  unexpected: {c.kind} p{c.person_id} e{c.enterprise_id} {c.application}: {got}, "
                     f"expected {c.expected}")
    agree = sum(1 for got, ok in zip(outcomes, by_name["casbin"].outcomes) if (got[0] == "allowed") == ok)
    notes.append(f"casbin agrees with the decision point (allowed/denied): {agree:,}/{len(cases):,}")
    failures = len(wrong) + len(cases) - agree
    truth = [world.has_assignment(c.person_id, c.enterprise_id, c.application) for c in cases]
    for name in ("SELECT", "SELECT+build"):
        found = sum(1 for t, got in zip(truth, by_name[name].outcomes) if got == t)
        failures += len(cases) - found
        notes.append(f"{name} finds a current assignment under a mandate in force exactly where the data set has "
                     f"one: {found:,}/{len(cases):,}")
    rows = sum(truth)
    allowed = sum(1 for got in outcomes if got[0] == "allowed")
    notes.append(f"the SELECT finds a row for {rows:,} requests, the decision point allows {allowed:,}: the "
                 f"difference are staff whose link with the provider ended or who were removed")
    return ScenarioResult("staff of providers under mandate", cases, measurements, notes, failures,
                          p99_target_us=2000, select_factor_target=None)


# name -> function(bench) -> ScenarioResult.
SCENARIOS: dict[str, Callable[[Bench], ScenarioResult]] = {
    "rights": scenario_rights,
    "mandates": scenario_mandates,
}


# =========================================================================================
# Report
# =========================================================================================

def print_result(result: ScenarioResult, out=print) -> None:
    out("")
    out(f"== scenario: {result.title} ==")
    kinds = Counter(c.kind for c in result.cases)
    out("requests: " + ", ".join(f"{k} {v / len(result.cases):.0%}" for k, v in kinds.most_common()))
    out("")
    out(f"{'contender':<13} {'count':>8} {'per s':>9} {'p50 µs':>9} {'p90 µs':>9} {'p99 µs':>9} {'max µs':>9}")
    stats = {}
    for m in result.measurements:
        s = stats[m.name] = m.stats()
        out(f"{m.name:<13} {s['count']:>8,} {s['per_s']:>9,.0f} {s['p50']:>9.1f} {s['p90']:>9.1f} "
            f"{s['p99']:>9.1f} {s['max']:>9.1f}")
    out("")
    out("CPU time of this thread per call (what is left when waits for a busy core are taken out; "
        "excludes the PostgreSQL server's own work):")
    for m in result.measurements:
        s = m.stats(cpu=True)
        out(f"{m.name:<13} {'':>8} {'':>9} {s['p50']:>9.1f} {s['p90']:>9.1f} {s['p99']:>9.1f} {s['max']:>9.1f}")
    out("")
    dec = stats.get("decision")
    if dec:
        for other in stats:
            if other != "decision":
                o = stats[other]
                out(f"ratio decision/{other:<13} p50 {dec['p50'] / o['p50']:6.2f}x   p99 {dec['p99'] / o['p99']:6.2f}x"
                    f"   throughput {dec['per_s'] / o['per_s']:6.2f}x")
        target = result.p99_target_us
        line = f"targets: p99 < {target / 1000:g} ms: {'met' if dec['p99'] < target else 'MISSED'} ({dec['p99']:.0f} µs)"
        factor = result.select_factor_target
        if "SELECT" in stats and factor is not None:
            sel = stats["SELECT"]
            within = dec["p50"] <= factor * sel["p50"] and dec["p99"] <= factor * sel["p99"]
            line += (f"; within {factor:g}x of the bare SELECT: {'met' if within else 'MISSED'} "
                     f"(p50 {dec['p50'] / sel['p50']:.2f}x, p99 {dec['p99'] / sel['p99']:.2f}x)")
        out(line)
    out("")
    out("decision point by kind of request:")
    others = [m for m in result.measurements if m.name != "decision"]
    out(f"  {'kind':<15} {'count':>7} {'p50 µs':>9} {'p99 µs':>9}" + "".join(f" {m.name + ' p50':>17}" for m in others))
    by_name = {m.name: m for m in result.measurements}
    for kind, _ in Counter(c.kind for c in result.cases).most_common():
        idx = [i for i, c in enumerate(result.cases) if c.kind == kind]
        s = by_name["decision"].stats(idx)
        out(f"  {kind:<15} {s['count']:>7,} {s['p50']:>9.1f} {s['p99']:>9.1f}"
            + "".join(f" {m.stats(idx)['p50']:>17.1f}" for m in others))
    out("")
    out("1-min load average before/after each timed run (2 = both cores busy): " + ", ".join(
        f"{m.name} {m.load[0]:.2f}/{m.load[1]:.2f}" for m in result.measurements))
    out("garbage collector during the timed runs:")
    for m in result.measurements:
        out(f"  {m.name:<13} {m.gc}")
    for note in result.notes:
        out(note)


def print_plans(bench: Bench, statements: list[tuple[str, Any]], out=print) -> None:
    prefix = "EXPLAIN QUERY PLAN " if bench.db.dialect == "sqlite" else "EXPLAIN "
    with bench.db.engine.connect() as conn:
        for title, stmt in statements:
            compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            rows = conn.exec_driver_sql(prefix + str(compiled)).all()
            out(f"plan of the {title}:")
            for row in rows:
                out("  " + (str(row[-1]) if bench.db.dialect == "sqlite" else str(row[0])))
        conn.rollback()


def facts_query_statement(case: Case) -> tuple[str, Any] | None:
    """The decision point's own query (a private name of access.decision: may change shape)."""
    query = getattr(decision_module, "_FACTS_QUERY", None)
    if query is None:
        return None
    return ("decision facts query", query.params(person_id=case.person_id, enterprise_id=case.enterprise_id,
                                                 application=case.application, day=DAY))


def explain(bench: Bench, out=print) -> None:
    """Query plans of the bare SELECT and of the decision's facts query on a user-right request."""
    case = next(c for c in bench.cases.draw(random.Random(0), 50) if c.kind == "user-right")
    statements = [("bare SELECT", RIGHT_ROW.params(person_id=case.person_id, enterprise_id=case.enterprise_id,
                                                   application=case.application))]
    facts = facts_query_statement(case)
    if facts is None:
        out("(no plan of the decision's query: access.decision._FACTS_QUERY is gone)")
    else:
        statements.append(facts)
    print_plans(bench, statements, out)


def explain_mandates(bench: Bench, cases: list[Case], out=print) -> None:
    """Query plans of a staff decision's queries (an allowed request under an affiliation)."""
    case = next((c for c in cases if c.kind == "via-affiliation"), cases[0])
    params = dict(person_id=case.person_id, application=case.application, day=DAY)
    statements = [("bare staff SELECT", STAFF_ROW.params(employer_id=case.enterprise_id, **params))]
    facts = facts_query_statement(case)
    if facts is not None:
        statements.append(facts)
    from mandates import paths as paths_module

    candidates = getattr(paths_module, "_CANDIDATES", None)  # private: may change shape
    if candidates is not None:
        statements.append(("mandate path's candidates query", candidates.params(employer_id=case.enterprise_id,
                                                                                **params)))
    print_plans(bench, statements, out)


def profile_decisions(bench: Bench, cases: list[Case], title: str, out=print) -> None:
    """pyinstrument's call tree when it is installed; otherwise cProfile's top functions."""
    with Session(bench.db.engine) as session:
        fn = decision_contender(bench, session)
        run_timed(fn, cases[: min(500, len(cases))])  # warm up
        try:
            from pyinstrument import Profiler
        except ImportError:
            Profiler = None
        out("")
        if Profiler is not None:
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for case in cases:
                fn(case)
            profiler.stop()
            out(f"== pyinstrument profile of {len(cases):,} decisions ({title}) ==")
            out(profiler.output_text(unicode=True, color=False, show_all=False))
            return
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for case in cases:
            fn(case)
        profiler.disable()
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats("cumulative")
        stats.print_stats(40)
        out(f"== cProfile of {len(cases):,} decisions ({title}; pyinstrument not installed) ==")
        out(buffer.getvalue())


# =========================================================================================
# Main
# =========================================================================================

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enterprises", type=int, help=f"default {DEFAULT_SIZES['enterprises']:,}")
    parser.add_argument("--persons", type=int, help=f"default {DEFAULT_SIZES['persons']:,}")
    parser.add_argument("--rights", type=int, help=f"rights rows, revoked ones included; "
                                                    f"default {DEFAULT_SIZES['rights']:,}")
    parser.add_argument("--providers", type=int, help=f"mandates scenario: service providers; "
                                                       f"default {DEFAULT_SIZES['providers']:,}")
    parser.add_argument("--employers", type=int, help=f"mandates scenario: client employers (besides "
                                                       f"--enterprises); default {DEFAULT_SIZES['employers']:,}")
    parser.add_argument("--quick", action="store_true",
                        help="1,000 enterprises / 10,000 persons / 100,000 rights; 100 providers / 10,000 "
                             "employers (explicit sizes still win)")
    parser.add_argument("--decisions", type=int, default=20_000, help="timed requests per contender (20,000)")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed requests per contender first (2,000)")
    parser.add_argument("--database-url", help="default: a temporary SQLite file; or postgresql+psycopg://... "
                                               "(must be an empty database)")
    parser.add_argument("--seed", type=int, default=20261102)
    parser.add_argument("--keep", action="store_true", help="keep the database (temp file or PostgreSQL tables)")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                        help="run only these scenarios (repeatable; default all)")
    parser.add_argument("--session-per-decision", action="store_true",
                        help="open and close a SQLAlchemy session around every call (as a web request "
                             "does) instead of one session for the whole run")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--profile", type=int, metavar="N", default=0,
                        help="also profile N decisions of each scenario run: pyinstrument's call tree when "
                             "installed, else cProfile's top functions")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def new_dataset(args: argparse.Namespace, catalogue: Catalogue) -> Dataset:
    grantable = catalogue.grantable()
    password_apps = [a.code for a in grantable if a.tier is Tier.PASSWORD]
    certificate_apps = [a.code for a in grantable if a.tier is Tier.CERTIFICATE]
    employer_mask = (1 << len(password_apps)) - 1
    other_mask = sum(1 << i for i, code in enumerate(password_apps) if not catalogue.get(code).employer_only)
    return Dataset(args.enterprises, args.persons, password_apps, employer_mask, other_mask, certificate_apps)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = lambda line="": print(line, flush=True)  # noqa: E731
    previous_clock = set_clock(FrozenClock(NOW))  # decide() gets day=DAY anyway; nothing else reads it
    catalogue = load_catalogue()
    ds = new_dataset(args, catalogue)
    password_apps, certificate_apps = ds.password_apps, ds.certificate_apps
    rng = random.Random(args.seed)

    db = open_database(args.database_url)
    failures = 0
    try:
        out(f"decision point benchmark: {db.dialect} {db.engine.url.render_as_string(hide_password=True)}")
        out(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, seed {args.seed}, day {DAY}, "
            f"{'session per decision' if args.session_per_decision else 'one session per contender'}")
        scenarios = args.scenario or list(SCENARIOS)
        out(f"building {args.enterprises:,} enterprises, {args.persons:,} persons, {args.rights:,} rights"
            + (f"; {args.providers:,} providers, {args.employers:,} employers" if "mandates" in scenarios else "")
            + " ...")
        watch = build_database(db, ds, rng, args, out)
        c = ds.counts
        out(f"data set: {c['enterprises']:,} enterprises ({c['employers']:,} employers), {c['persons']:,} persons, "
            f"{c['links']:,} links ({c['ended links']:,} ended), {c['memberships']:,} memberships "
            f"({c['local admins']:,} local admins, {c['users']:,} users), {c['rights']:,} rights "
            f"({c['revoked rights']:,} revoked) over {len(password_apps)} password-tier applications")
        out(f"build: {watch}")

        bench = Bench(args, db, ds, catalogue, None, CaseFactory(ds, certificate_apps), out)
        if "rights" in scenarios:
            bench.enforcer, casbin_counts, casbin_s = build_casbin(ds, catalogue, out)
            out(f"casbin (rights): {casbin_counts['policies']} policies, {casbin_counts['grouping rules']:,} grouping "
                f"rules, loaded in {casbin_s:.1f} s")
        if "mandates" in scenarios:
            bench.mandate_enforcer, casbin_counts, casbin_s = build_mandate_casbin(ds.mandates, out)
            out(f"casbin (mandates): {casbin_counts['policies']} policies, {casbin_counts['grouping rules']:,} "
                f"grouping rules, loaded in {casbin_s:.1f} s")
            bench.mandate_cases = MandateCaseFactory(ds.mandates)
        # Everything built so far lives as long as the run: keep it out of the GC's way so that
        # a full collection over a million casbin objects does not land in someone's timing.
        gc.collect()
        gc.freeze()

        if args.explain and "rights" in scenarios:
            out("")
            explain(bench, out)
        failures = 0
        for name in scenarios:
            result = SCENARIOS[name](bench)
            print_result(result, out)
            failures += result.failures
        if args.profile and "rights" in scenarios:
            profile_decisions(bench, bench.cases.draw(random.Random(args.seed + 2), args.profile),
                              "rights and roles", out)
        if args.profile and "mandates" in scenarios:
            profile_decisions(bench, bench.mandate_cases.draw(random.Random(args.seed + 12), args.profile),
                              "staff under mandate", out)
    finally:
        close_database(db, args.keep, out)
        set_clock(previous_clock)
        gc.unfreeze()
    if failures:
        out(f"FAILED: {failures:,} requests got a wrong answer")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
