#!/usr/bin/env python
"""Throughput and latency of the decision point, against two baselines, in one run.

    .venv/bin/python bench/decisions.py            # 10,000 enterprises, 100,000 persons, 1,000,000 rights
    .venv/bin/python bench/decisions.py --quick    # 1,000 / 10,000 / 100,000
    .venv/bin/python bench/decisions.py --database-url postgresql+psycopg://user@host:port/db

Contenders, all fed the same sample of requests:

  decision   access.decision.decide(session, subject, enterprise_id, application, action,
             catalogue=..., day=DAY): the real decision point, one SQLAlchemy session.
  SELECT     the one indexed SELECT a decision cannot avoid: the current right row of
             (person, enterprise, application) through the partial unique index
             uq_rights_current, executed the same way (ORM select() through the
             SQLAlchemy session), the statement built once with bound parameters.
  SELECT+build
             the same SELECT with the statement built on every call, as decide() builds
             its own query: for reference (what building a statement costs).
  casbin     pycasbin, RBAC with domains, holding the same rights as the database on DAY
             (enterprise = domain; a right = the role "right:<app>" in that domain; the
             local administrator = the role "local_admin[_employer]" in that domain).

Timings are printed, never asserted. See bench/README.md for the figures.

Scenarios are plain functions registered in SCENARIOS; each gets the built Bench
(engine, data set knowledge, casbin enforcer) and returns the measurements it
wants printed. A later scenario (mandates) adds its own data builder to
DATA_BUILDERS and its own entry to SCENARIOS.
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

from sqlalchemy import bindparam, inspect, insert, select  # noqa: E402
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
from migrations.runner import alembic_config, upgrade  # noqa: E402

UTC = timezone.utc
# The benchmark's "today": every decision gets day=DAY and the clock stands still at NOW.
DAY = date(2026, 11, 2)
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

DEFAULT_SIZES = dict(enterprises=10_000, persons=100_000, rights=1_000_000)
QUICK_SIZES = dict(enterprises=1_000, persons=10_000, rights=100_000)

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


# Further data builders (e.g. mandates) append themselves here: fn(conn, ds, rng, args, log).
DATA_BUILDERS: list[Callable[..., None]] = []


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
    expected: str                  # expected reason code of the decision
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
    enforcer: Any
    cases: CaseFactory
    log: Callable[[str], None]


@dataclass
class ScenarioResult:
    title: str
    cases: list[Case]
    measurements: list[Measurement]
    notes: list[str] = field(default_factory=list)
    # Requests whose answer was wrong (reason, baseline disagreement): a run with any is a failed run.
    failures: int = 0


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


# name -> function(bench) -> ScenarioResult. A mandates scenario goes here.
SCENARIOS: dict[str, Callable[[Bench], ScenarioResult]] = {
    "rights": scenario_rights,
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
        if "SELECT" in stats:
            sel = stats["SELECT"]
            within = dec["p50"] <= 3 * sel["p50"] and dec["p99"] <= 3 * sel["p99"]
            out(f"targets: p99 < 1 ms: {'met' if dec['p99'] < 1000 else 'MISSED'} ({dec['p99']:.0f} µs); "
                f"within 3x of the bare SELECT: {'met' if within else 'MISSED'} "
                f"(p50 {dec['p50'] / sel['p50']:.2f}x, p99 {dec['p99'] / sel['p99']:.2f}x)")
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


def explain(bench: Bench, out=print) -> None:
    """Query plans of the bare SELECT and of the decision's facts query on a user-right request."""
    case = next(c for c in bench.cases.draw(random.Random(0), 50) if c.kind == "user-right")
    select_stmt = RIGHT_ROW.params(person_id=case.person_id, enterprise_id=case.enterprise_id,
                                   application=case.application)
    statements = [("bare SELECT", select_stmt)]
    try:  # a private helper of access.decision: may change shape; then only the SELECT's plan
        statements.append(("decision facts query", decision_module._facts_query(
            case.person_id, case.enterprise_id, case.application, DAY)))
    except (AttributeError, TypeError) as exc:
        out(f"(no plan of the decision's query: access.decision._facts_query: {exc})")
    prefix = "EXPLAIN QUERY PLAN " if bench.db.dialect == "sqlite" else "EXPLAIN "
    with bench.db.engine.connect() as conn:
        for title, stmt in statements:
            compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            rows = conn.exec_driver_sql(prefix + str(compiled)).all()
            out(f"plan of the {title}:")
            for row in rows:
                out("  " + (str(row[-1]) if bench.db.dialect == "sqlite" else str(row[0])))
        conn.rollback()


def profile_decisions(bench: Bench, n: int, out=print) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        out("--profile needs pyinstrument: .venv/bin/pip install pyinstrument")
        return
    cases = bench.cases.draw(random.Random(bench.args.seed + 2), n)
    with Session(bench.db.engine) as session:
        fn = decision_contender(bench, session)
        run_timed(fn, cases[: min(500, n)])  # warm up
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for case in cases:
            fn(case)
        profiler.stop()
    out("")
    out(f"== pyinstrument profile of {n:,} decisions ==")
    out(profiler.output_text(unicode=True, color=False, show_all=False))


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
    parser.add_argument("--quick", action="store_true",
                        help="1,000 enterprises / 10,000 persons / 100,000 rights (explicit sizes still win)")
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
                        help="also profile N decisions with pyinstrument and print the call tree")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = lambda line="": print(line, flush=True)  # noqa: E731
    previous_clock = set_clock(FrozenClock(NOW))  # decide() gets day=DAY anyway; nothing else reads it
    catalogue = load_catalogue()
    grantable = catalogue.grantable()
    password_apps = [a.code for a in grantable if a.tier is Tier.PASSWORD]
    certificate_apps = [a.code for a in grantable if a.tier is Tier.CERTIFICATE]
    employer_mask = (1 << len(password_apps)) - 1
    other_mask = sum(1 << i for i, code in enumerate(password_apps) if not catalogue.get(code).employer_only)
    ds = Dataset(args.enterprises, args.persons, password_apps, employer_mask, other_mask, certificate_apps)
    rng = random.Random(args.seed)

    db = open_database(args.database_url)
    failures = 0
    try:
        out(f"decision point benchmark: {db.dialect} {db.engine.url.render_as_string(hide_password=True)}")
        out(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, seed {args.seed}, day {DAY}, "
            f"{'session per decision' if args.session_per_decision else 'one session per contender'}")
        out(f"building {args.enterprises:,} enterprises, {args.persons:,} persons, {args.rights:,} rights ...")
        watch = build_database(db, ds, rng, args, out)
        c = ds.counts
        out(f"data set: {c['enterprises']:,} enterprises ({c['employers']:,} employers), {c['persons']:,} persons, "
            f"{c['links']:,} links ({c['ended links']:,} ended), {c['memberships']:,} memberships "
            f"({c['local admins']:,} local admins, {c['users']:,} users), {c['rights']:,} rights "
            f"({c['revoked rights']:,} revoked) over {len(password_apps)} password-tier applications")
        out(f"build: {watch}")

        enforcer, casbin_counts, casbin_s = build_casbin(ds, catalogue, out)
        out(f"casbin: {casbin_counts['policies']} policies, {casbin_counts['grouping rules']:,} grouping rules, "
            f"loaded in {casbin_s:.1f} s")
        bench = Bench(args, db, ds, catalogue, enforcer, CaseFactory(ds, certificate_apps), out)
        # Everything built so far lives as long as the run: keep it out of the GC's way so that
        # a full collection over a million casbin objects does not land in someone's timing.
        gc.collect()
        gc.freeze()

        if args.explain:
            out("")
            explain(bench, out)
        failures = 0
        for name in args.scenario or list(SCENARIOS):
            result = SCENARIOS[name](bench)
            print_result(result, out)
            failures += result.failures
        if args.profile:
            profile_decisions(bench, args.profile, out)
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
