"""A committed audit chain of a few thousand records in a database of its own (isolated_db.py), and a
way to tamper with it: inside a transaction that is rolled back, with the append-only triggers (and
the foreign keys, which a real forger would drop too) out of the way."""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from access.clock import FrozenClock, using_clock
from audit.operations import RequestContext, record
from audit.settings import SETTINGS_KEY, AuditSettings
from tests.factories import EnterpriseFactory, PersonFactory, bind_session

START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
SQLITE_TRIGGERS = ("audit_records_no_update", "audit_records_no_delete", "audit_chain_no_update",
                   "audit_chain_no_delete", "audit_checkpoints_no_update", "audit_checkpoints_no_delete")


@dataclass
class ChainDb:
    engine: Engine
    key: Ed25519PrivateKey
    records: int
    checkpoint_every: int
    person_ids: list[int]
    enterprise_ids: list[int]


def settings(key: Ed25519PrivateKey | None, every: int = 0, sink=None, minutes: int = 0) -> AuditSettings:
    return AuditSettings(signing_key=key, checkpoint_every=every, sink=sink, checkpoint_minutes=minutes)


def session_with(engine_or_connection, audit_settings: AuditSettings, **kwargs) -> Session:
    session = Session(bind=engine_or_connection, expire_on_commit=False, **kwargs)
    session.info[SETTINGS_KEY] = audit_settings
    return session


def write_records(session: Session, count: int, *, person_ids: list[int], enterprise_ids: list[int],
                  seed: int = 5, per_commit: int = 50, start: datetime = START) -> None:
    """`count` records through the real record(), `per_commit` per commit, with every column used:
    ids or nulls, non-ASCII text, nested JSON with numbers of both kinds, microsecond timestamps."""
    rng = random.Random(seed)
    clock = FrozenClock(start)
    with using_clock(clock):
        for n in range(count):
            clock.advance(microseconds=rng.randrange(1, 3_000_000))
            ctx = RequestContext(actor_person_id=rng.choice(person_ids + [None]),
                                 actor_label=rng.choice(["an.peeters", "cli", "Zoë Lefèvre", None]),
                                 ip=rng.choice(["192.0.2.7", "2001:db8::1", None]),
                                 user_agent=rng.choice(["Firefox", "curl/8", None]),
                                 request_id=f"req-{n}" if n % 3 else None)
            record(session, ctx, action=rng.choice(["login", "right.grant", "decision", "mandate.accept"]),
                   outcome=rng.choice(["success", "failure", "allowed", "denied", "error"]),
                   enterprise_id=rng.choice(enterprise_ids + [None]),
                   provider_enterprise_id=rng.choice(enterprise_ids + [None, None]),
                   application=rng.choice(["dmfa", "dimona", None]),
                   reason=rng.choice(["why not", "règle « 12 »", None, "line\nbreak \"quoted\""]),
                   path=rng.choice([None, ["person", "link", "right"], []]),
                   details=rng.choice([None, {"b": 1, "a": [1.5, "x", None], "n": {"z": True, "y": 2}}, {},
                                       {"count": n, "ratio": n / 7}]))
            if n % per_commit == per_commit - 1:
                session.commit()
        session.commit()


def build_chain(engine: Engine, key: Ed25519PrivateKey, *, records: int, every: int) -> ChainDb:
    with session_with(engine, settings(key, every)) as session, bind_session(session):
        people = [PersonFactory().id for _ in range(3)]
        enterprises = [EnterpriseFactory().id for _ in range(3)]
        session.commit()
        write_records(session, records, person_ids=people, enterprise_ids=enterprises)
    return ChainDb(engine, key, records, every, people, enterprises)


@contextlib.contextmanager
def tampering(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction, rolled back at the end, where the append-only triggers and the
    foreign keys do not stand in the way."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            if connection.dialect.name == "sqlite":
                for trigger in SQLITE_TRIGGERS:
                    connection.exec_driver_sql(f"DROP TRIGGER {trigger}")  # transactional in SQLite
                connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # checked at a commit that never comes
            else:
                connection.execute(text("SET LOCAL session_replication_role = replica"))  # no triggers, no FKs
            yield connection
        finally:
            transaction.rollback()


def shifted(value: datetime) -> datetime:
    return value + timedelta(microseconds=1)
