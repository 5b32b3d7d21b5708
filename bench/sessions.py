#!/usr/bin/env python
"""What strong authentication (issue 6) costs per request and per login, against baselines measured in
the same process on the same database.

    .venv/bin/python bench/sessions.py              # 10,000 accounts, 200,000 sessions (half ended)
    .venv/bin/python bench/sessions.py --quick      # 1,000 accounts, 20,000 sessions
    .venv/bin/python bench/sessions.py --database-url postgresql+psycopg://...   (an empty database)

Contenders, each on --lookups requests drawn from the same live sessions:

  account by id (baseline)   session.get(Account, id) in a fresh session: what loading the user cost
                             before issue 6 (the signed cookie carried the account id);
  live session by token      access.sessions.find_live (SHA-256 of the token, unique index, the
                             timeouts, the account) + touch, in a fresh session, then commit;
  TOTP check                 access.second_factor.check_totp with a right code (then the next step),
                             one per call, committed;
  recovery codes             issuing ten (ten argon2id hashes) and using one (one verification).

Figures are printed, never asserted. See bench/README.md.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from access import second_factor, sessions  # noqa: E402
from access.clock import FrozenClock, set_clock  # noqa: E402
from access.models import Account, Person, TotpFactor, UserSession  # noqa: E402
from audit.operations import RequestContext  # noqa: E402
from db import make_engine, make_session_factory  # noqa: E402
from migrations.runner import upgrade  # noqa: E402

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
CTX = RequestContext(actor_label="bench", ip="127.0.0.1", user_agent="bench", request_id="bench")
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def build(engine, accounts: int, rows: int, seed: int) -> list[tuple[int, str]]:
    """Persons, accounts (each with an authenticator app) and sessions, half of them ended; returns
    (account id, token) of the live ones."""
    rng = random.Random(seed)
    live: list[tuple[int, str]] = []
    with engine.begin() as conn:
        conn.execute(insert(Person), [dict(id=n, insz=f"{n:011d}", first_name="P", last_name=f"N{n}",
                                           created_at=NOW) for n in range(1, accounts + 1)])
        conn.execute(insert(Account), [dict(id=n, person_id=n, user_id=f"U{n:09d}", username=f"user{n}",
                                            username_lower=f"user{n}", password_hash="x", is_portal_officer=False,
                                            is_disabled=False, failed_logins=0,
                                            created_at=NOW) for n in range(1, accounts + 1)])
        conn.execute(insert(TotpFactor), [dict(account_id=n, secret=SECRET, created_at=NOW, confirmed_at=NOW)
                                          for n in range(1, accounts + 1)])
        batch = []
        for n in range(rows):
            token = f"bench-token-{n}-{rng.getrandbits(64):016x}"
            account_id = rng.randint(1, accounts)
            ended = n % 2 == 1
            batch.append(dict(token_hash=sessions._hash(token), account_id=account_id, created_at=NOW,
                              last_seen_at=NOW, second_factor_at=NOW, second_factor_method="totp", ip="127.0.0.1",
                              user_agent="bench", ended_at=NOW if ended else None,
                              ended_reason="logout" if ended else None))
            if not ended:
                live.append((account_id, token))
            if len(batch) == 10_000:
                conn.execute(insert(UserSession), batch)
                batch = []
        if batch:
            conn.execute(insert(UserSession), batch)
    return live


def timed(calls: Sequence, run: Callable) -> list[float]:
    samples = []
    for call in calls:
        start = time.perf_counter()
        run(call)
        samples.append(time.perf_counter() - start)
    return samples


def summary(name: str, samples: list[float], baseline: list[float] | None = None) -> str:
    p50, p95 = statistics.median(samples), sorted(samples)[int(len(samples) * 0.95) - 1]
    line = f"  {name:<28} {len(samples) / sum(samples):>10,.0f}/s   p50 {p50 * 1e6:>8,.0f} µs   p95 {p95 * 1e6:>8,.0f} µs"
    if baseline is not None:
        line += f"   x{statistics.median(samples) / statistics.median(baseline):.2f} of the baseline's p50"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--sessions", type=int, default=None, help="session rows, half of them ended")
    parser.add_argument("--quick", action="store_true", help="1,000 accounts, 20,000 sessions")
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--totp-checks", type=int, default=1_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=20261102)
    args = parser.parse_args(argv)
    accounts = args.accounts or (1_000 if args.quick else 10_000)
    rows = args.sessions or (20_000 if args.quick else 200_000)

    clock = FrozenClock(NOW + timedelta(minutes=1))
    previous = set_clock(clock)
    tmp = tempfile.TemporaryDirectory(prefix="portal-bench-sessions-")
    url = args.database_url or f"sqlite:///{tmp.name}/bench.sqlite3"
    engine = make_engine(url)
    try:
        upgrade(engine)
        started = time.perf_counter()
        live = build(engine, accounts, rows, args.seed)
        print(f"data set: {accounts:,} accounts, {rows:,} sessions ({len(live):,} live) on "
              f"{engine.dialect.name}, built in {time.perf_counter() - started:.1f} s")
        factory = make_session_factory(engine)
        rng = random.Random(args.seed + 1)
        picks = [rng.choice(live) for _ in range(args.lookups)]
        policy = sessions.SessionPolicy()

        def by_id(pick):
            with factory() as s:
                assert s.get(Account, pick[0]) is not None
                s.commit()

        def by_token(pick):
            with factory() as s:
                row = sessions.find_live(s, pick[1], policy, by=CTX)
                assert row is not None and row.account_id == pick[0]
                sessions.touch(row)
                s.commit()

        for run in (by_id, by_token):  # warm-up: caches, prepared statements
            timed(picks[:200], run)
        baseline = timed(picks, by_id)
        lookup = timed(picks, by_token)
        print("per request (load the logged-in person):")
        print(summary("account by id (baseline)", baseline))
        print(summary("live session by token", lookup, baseline))

        checks = [rng.randint(1, accounts) for _ in range(args.totp_checks)]

        def totp(account_id):
            clock.advance(seconds=30)  # a new time step for each check: every code is a fresh one
            with factory() as s:
                account = s.get(Account, account_id)
                ok = second_factor.check_totp(s, account, pyotp.TOTP(SECRET).at(clock.at), by=CTX)
                assert ok, account_id
                s.commit()

        print("per login:")
        print(summary("TOTP check", timed(checks, totp)))
        with factory() as s:
            account = s.get(Account, 1)
            started = time.perf_counter()
            codes = second_factor.issue_recovery_codes(s, account, by=CTX)
            issued = time.perf_counter() - started
            started = time.perf_counter()
            assert second_factor.use_recovery_code(s, account, codes[5], by=CTX)
            used = time.perf_counter() - started
            s.rollback()
        print(f"  recovery codes: issuing ten {issued * 1e3:,.0f} ms (ten argon2id hashes), using one "
              f"{used * 1e3:,.0f} ms (one verification)")
        return 0
    finally:
        if args.database_url:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("DROP SCHEMA public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        tmp.cleanup()
        set_clock(previous)


if __name__ == "__main__":
    sys.exit(main())
