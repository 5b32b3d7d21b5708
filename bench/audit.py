#!/usr/bin/env python
"""Throughput of the audit trail's hash chain: appending records and verifying them, against
baselines measured in the same process.

    .venv/bin/python bench/audit.py                 # 1,000,000 records
    .venv/bin/python bench/audit.py --quick         # 20,000 records
    .venv/bin/python bench/audit.py --records 200000 --per-commit 10
    DATABASE_URL=postgresql+psycopg://... .venv/bin/python bench/audit.py --quick   # SQLite, then PostgreSQL

Backends: always a fresh temporary SQLite file; PostgreSQL too when --database-url or DATABASE_URL
is given (two schemas of their own in that database, dropped at the end unless --keep).

Contenders, all fed the same pre-generated records (every column used, as the web writes them):

  append (baseline)  audit.operations.record() through a SQLAlchemy session, a commit every
                     --per-commit records, with the chain's session hooks removed: the inserts alone,
                     into a database of its own;
  append (chain)     the same, with the hooks: each commit takes the chain lock, reads the head, reads
                     its records back and writes their links; an automatic checkpoint every
                     --checkpoint-every links, signed with a key generated for the run;
  per request        both again on --request-records records with one record per commit, as a web
                     request writes them (the commit's own cost dominates);
  verify             audit.chain.verify over the whole chain: every hash recomputed, every link and
                     checkpoint (Merkle root, signature) checked, the records counted;
  SELECT (baseline)  the same rows (links joined to records) streamed by one plain SELECT, as verify
                     reads them (the driver's values), without any checking; for reference also
                     through SQLAlchemy's typed result.
  review queries     the review screen's queries (audit.queries.page, names joined, keyset pages):
                     p50/p95 over --query-runs calls each, against the newest 50 ids by primary key;
  export             the whole trail exported as CSV and JSON Lines through audit.export.write (the
                     web's read-only connection and generators), rows/s against the raw SELECT; the
                     Python heap's peak (tracemalloc) exporting the newest part of the records and all of them.

Targets (issue 5): append >= 5,000 records/s on SQLite, verify >= 200,000 records/s, the review
screen's default query p95 < 100 ms at 1,000,000 records. Timings are
printed, never asserted; a run whose chain does not verify exits with 1. See bench/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy import event, select, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import audit.chain as chain  # noqa: E402
from access.clock import FrozenClock, using_clock  # noqa: E402
from audit.models import AuditRecord, ChainLink  # noqa: E402
from audit.operations import RequestContext, record  # noqa: E402
from audit.settings import SETTINGS_KEY, AuditSettings  # noqa: E402
from db import make_engine, normalise_url  # noqa: E402
from migrations.runner import upgrade  # noqa: E402

START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
TARGET_APPEND = 5_000
TARGET_VERIFY = 200_000
TARGET_REVIEW_P95_MS = 100
# The parties the records name: enterprises acted for (a few large ones, many small ones), the
# providers among them, and the acting persons. Ids 1..N as inserted into a fresh database.
ENTERPRISES = 1_000
PROVIDERS = 20  # enterprises 1..20 are service providers
PERSONS = 2_000


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


# --- the records ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Planned:
    ctx: RequestContext
    kwargs: dict[str, Any]
    step_us: int


def plan_records(n: int, seed: int) -> list[Planned]:
    """Records as the portal writes them: decisions, logins, changes with before/after details."""
    rng = random.Random(seed)
    actions = [("decision:open", "allowed"), ("decision:open", "denied"), ("login", "success"),
               ("login", "failure"), ("right.grant", "success"), ("mandate.accept", "success")]
    planned = []
    for i in range(n):
        action, outcome = rng.choice(actions)
        ctx = RequestContext(actor_label=f"user{rng.randrange(5000)}", ip=f"192.0.2.{rng.randrange(256)}",
                             user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                             request_id=uuid.UUID(int=rng.getrandbits(128)).hex)
        kwargs: dict[str, Any] = {"action": action, "outcome": outcome, "application": rng.choice(["dmfa", "dimona",
                                                                                                  "asr", None])}
        if action.startswith("decision"):
            kwargs["reason"] = "allowed" if outcome == "allowed" else "no right on Multifunctional declaration"
            kwargs["path"] = ["right on Multifunctional declaration (DmfA)", "link werknemer"]
        elif action == "right.grant":
            kwargs["details"] = {"before": None, "after": {"application": "dmfa", "from": "2026-11-02"},
                                 "person": i % 977}
        elif action == "mandate.accept":
            kwargs["details"] = {"mandate": i, "scope": ["dmfa", "dimona"], "provider_kbo": "0123.456.749"}
        # Who for: most records concern an enterprise, a tenth of them done by a provider's staff;
        # the enterprises' sizes are skewed (Pareto), as employers' are.
        if action != "login" or outcome == "success":
            kwargs["enterprise_id"] = min(ENTERPRISES, int(rng.paretovariate(1.2)) + PROVIDERS)
            if rng.random() < 0.1:
                kwargs["provider_enterprise_id"] = rng.randrange(1, PROVIDERS + 1)
        if not (action == "login" and outcome == "failure"):
            ctx = ctx.as_actor(rng.randrange(1, PERSONS + 1), ctx.actor_label)
        planned.append(Planned(ctx, kwargs, rng.randrange(1, 2_000_000)))
    return planned


def insert_parties(engine: Engine) -> None:
    """The enterprises and persons the planned records refer to (foreign keys are on)."""
    from access.models import Enterprise, Person

    now = START
    enterprises = [{"id": i, "kbo_number": f"{200_000_000 + i:010d}", "name": f"Onderneming {i}",
                    "name_folded": f"onderneming {i}", "street": "Kerkstraat 1", "postal_code": "1000",
                    "city": "Brussel", "legal_form": "BV", "rsz_number": None, "joint_committee": None,
                    "created_at": now} for i in range(1, ENTERPRISES + 1)]
    persons = [{"id": i, "insz": f"{80_000_000_000 + i:011d}", "first_name": "Persoon", "last_name": str(i),
                "email": None, "created_at": now} for i in range(1, PERSONS + 1)]
    with engine.begin() as conn:
        conn.execute(Enterprise.__table__.insert(), enterprises)
        conn.execute(Person.__table__.insert(), persons)


# --- the databases -------------------------------------------------------------------------------

@contextlib.contextmanager
def fresh_database(backend: str, url: str | None, label: str, keep: bool, log) -> Iterator[Engine]:
    if backend == "sqlite":
        tmpdir = tempfile.mkdtemp(prefix=f"portal-bench-audit-{label}-")
        engine = make_engine(f"sqlite:///{tmpdir}/bench.sqlite3")
        try:
            upgrade(engine)
            insert_parties(engine)
            yield engine
        finally:
            engine.dispose()
            if keep:
                log(f"kept: {tmpdir}/bench.sqlite3")
            else:
                shutil.rmtree(tmpdir, ignore_errors=True)
        return
    schema = f"bench_audit_{label}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        insert_parties(engine)
        yield engine
    finally:
        engine.dispose()
        if keep:
            log(f"kept: schema {schema}")
        else:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def chain_hooks_removed() -> Iterator[None]:
    """The baseline: the same session, the same inserts, no chain (for this measurement only)."""
    hooks = [(AuditRecord, "after_insert", chain._remember_insert),
             (Session, "before_commit", chain._chain_before_commit)]
    for target, name, fn in hooks:
        event.remove(target, name, fn)
    try:
        yield
    finally:
        for target, name, fn in hooks:
            event.listen(target, name, fn)


def append(engine: Engine, planned: Sequence[Planned], per_commit: int, settings: AuditSettings) -> float:
    clock = FrozenClock(START)
    gc.collect()
    with using_clock(clock), Session(engine, expire_on_commit=False) as session:
        session.info[SETTINGS_KEY] = settings
        began = time.perf_counter()
        for n, item in enumerate(planned, 1):
            clock.advance(microseconds=item.step_us)
            record(session, item.ctx, **item.kwargs)
            if n % per_commit == 0:
                session.commit()
                session.expunge_all()
        session.commit()
        return time.perf_counter() - began


def plain_select(engine: Engine, batch: int, raw: bool) -> tuple[float, int]:
    """The walk's query without the checks: what reading the rows costs, through SQLAlchemy's typed
    result (raw=False) or as the driver returns them (raw=True, as verify reads them)."""
    links, records = ChainLink.__table__, AuditRecord.__table__
    statement = (select(links.c.seq, links.c.record_id, links.c.prev_hash, links.c.record_hash,
                        *[records.c[name] for name in chain.RECORD_FIELDS])
                 .select_from(links.outerjoin(records, records.c.id == links.c.record_id)).order_by(links.c.seq)
                 .execution_options(yield_per=batch))
    gc.collect()
    with Session(engine) as session:
        connection = session.connection()
        began = time.perf_counter()
        if raw:
            result = connection.exec_driver_sql(str(statement.compile(dialect=connection.dialect)),
                                                execution_options={"yield_per": batch})
        else:
            result = connection.execute(statement)
        count = 0
        for partition in result.partitions():
            count += len(partition)
        return time.perf_counter() - began, count


def timed_verify(engine: Engine, key: Ed25519PrivateKey, batch: int) -> tuple[float, chain.VerifyResult]:
    gc.collect()
    with Session(engine) as session:
        began = time.perf_counter()
        result = chain.verify(session, public_keys=[key.public_key()], batch=batch)
        return time.perf_counter() - began, result


# --- the review screen's queries ---------------------------------------------------------------

def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def timed_queries(engine: Engine, make_query: Callable[[Session, random.Random], Any], runs: int,
                  seed: int) -> list[float]:
    """Milliseconds per call of make_query, each run in a fresh session (as a request is)."""
    rng = random.Random(seed)
    times = []
    for _ in range(runs):
        with Session(engine) as session:
            began = time.perf_counter()
            make_query(session, rng)
            times.append((time.perf_counter() - began) * 1000)
    return times


def review_query_latency(engine: Engine, records: int, runs: int, out: Callable[[str], None]) -> bool:
    """The review screen's queries (audit.queries.page: the newest page of 50 with the names joined,
    keyset-paginated) at this size, p50/p95 over `runs` calls each; baseline: the cheapest indexed
    read of 50 records (newest ids, no join, no filter) in the same database.
    Returns whether the default queries (first page, institution and enterprise) meet the target."""
    from audit import queries as q

    busiest = PROVIDERS + 1  # the Pareto draw puts the most records on the first employer

    def enterprise_page(session: Session, rng: random.Random, **fields: str):
        enterprise = busiest if rng.random() < 0.5 else rng.randrange(PROVIDERS + 1, ENTERPRISES + 1)
        flt = q.parse_and_resolve(session, {"enterprise": str(enterprise), **fields})
        return q.page(session, flt, q.AuditScope.of_enterprise(enterprise))

    def second_page(session: Session, rng: random.Random):
        first = q.page(session, q.AuditFilter(), q.AuditScope.of_enterprise(busiest))
        return q.page(session, q.AuditFilter(), q.AuditScope.of_enterprise(busiest),
                      after=q.decode_cursor(first.next_cursor)) if first.next_cursor else first

    def institution(session: Session, rng: random.Random, **fields: str):
        return q.page(session, q.parse_and_resolve(session, fields), q.AuditScope.of_institution())

    last_day = (START + _span(records)).date().isoformat()
    contenders: list[tuple[str, Callable[[Session, random.Random], Any], bool]] = [
        ("baseline: newest 50 ids, no join", lambda s, r: s.execute(
            select(AuditRecord.id).order_by(AuditRecord.id.desc()).limit(50)).all(), False),
        ("institution, default (newest page)", institution, True),
        ("enterprise officer, default (newest page)", enterprise_page, True),
        ("enterprise officer, next page (cursor)", second_page, False),
        ("enterprise, outcome denied, last day", lambda s, r: enterprise_page(
            s, r, outcome="denied", **{"from": last_day}), False),
        ("institution, action decision:*", lambda s, r: institution(s, r, action="decision:*"), False),
        ("institution, actor + IP", lambda s, r: institution(
            s, r, actor=str(r.randrange(1, PERSONS + 1)), ip=f"192.0.2.{r.randrange(256)}"), False),
        ("institution, words in the reason", lambda s, r: institution(s, r, q="Multifunctional"), False),
    ]
    out(f"  review screen queries ({fmt_int(records)} records, {runs} calls each, p50 / p95):")
    met = True
    baseline_p95 = None
    for n, (label, make_query, is_default) in enumerate(contenders):
        timed_queries(engine, make_query, 2, seed=n)  # warm the caches
        times = timed_queries(engine, make_query, runs, seed=n)
        p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
        if baseline_p95 is None:
            baseline_p95 = p95
        verdict = ""
        if is_default:
            verdict = f"; target p95 < {TARGET_REVIEW_P95_MS} ms: {'met' if p95 < TARGET_REVIEW_P95_MS else 'NOT met'}"
            met &= p95 < TARGET_REVIEW_P95_MS
        out(f"    {label + ':':45} {p50:8.2f} / {p95:8.2f} ms ({ratio(p95, baseline_p95)} of the baseline){verdict}")
    return met


def timed_export(engine: Engine, fmt: str, flt_fields: dict[str, str], measure_memory: bool) -> tuple[float, int, int, int]:
    """Export the records matching the filter (institution scope) as the web's stream does: the same
    read-only connection and generators (audit.export.write), into a temporary file. Returns
    (seconds, rows, bytes, peak Python memory in bytes or 0). Memory is traced (tracemalloc) in a
    separate run: tracing slows the export."""
    import tracemalloc

    from audit import export, queries as q

    gc.collect()
    with tempfile.TemporaryFile() as out:
        session = export.read_only_session(engine)
        try:
            flt = q.parse_and_resolve(session, flt_fields)
            if measure_memory:
                tracemalloc.start()
            began = time.perf_counter()
            written = export.write(session, flt, q.AuditScope.of_institution(), fmt, out)
            elapsed = time.perf_counter() - began
            peak = tracemalloc.get_traced_memory()[1] if measure_memory else 0
        finally:
            if measure_memory:
                tracemalloc.stop()
            export.close_read_only_session(session)
    return elapsed, written.rows, written.bytes, peak


def export_figures(engine: Engine, records: int, select_rate: float, out: Callable[[str], None]) -> None:
    """Rows/s of the export (CSV, JSON Lines) of every record, against the raw SELECT's rate; and the
    peak memory of exporting the newest part of the records and all of them (constant memory: about equal)."""
    tenth_from = (START + _span(records) * 0.9).strftime("%Y-%m-%dT%H:%M")
    for fmt in ("csv", "jsonl"):
        elapsed, rows, size, _ = timed_export(engine, fmt, {}, False)
        out(f"  export {fmt:5} (all {fmt_int(rows)} records, {size / 2**20:,.0f} MiB): {fmt_int(rows / elapsed)} rows/s "
            f"({elapsed:.1f} s), {ratio(rows / elapsed, select_rate)} of the raw SELECT")
    _, small_rows, _, small_peak = timed_export(engine, "csv", {"from": tenth_from}, True)
    _, all_rows, _, all_peak = timed_export(engine, "csv", {}, True)
    out(f"  export memory (CSV, Python heap peak): {small_peak / 2**20:.1f} MiB for {fmt_int(small_rows)} rows, "
        f"{all_peak / 2**20:.1f} MiB for {fmt_int(all_rows)} rows ({ratio(all_peak, small_peak)})")


def _span(records: int):
    """How far the planned records' clock runs (mean step 1 s)."""
    from datetime import timedelta

    return timedelta(seconds=records)


# --- the run -------------------------------------------------------------------------------------

def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "-"


def target(value: float, goal: float) -> str:
    return f"target >= {fmt_int(goal)}/s: {'met' if value >= goal else 'NOT met'}"


def run_backend(backend: str, url: str | None, args, planned: list[Planned], out) -> bool:
    key = Ed25519PrivateKey.generate()
    chained = AuditSettings(signing_key=key, checkpoint_every=args.checkpoint_every)
    n = len(planned)
    requests = planned[:args.request_records]
    out(f"\n{backend}: {fmt_int(n)} records, a commit every {args.per_commit}")
    with fresh_database(backend, url, "base", args.keep, out) as base_engine:
        with chain_hooks_removed():
            base_s = append(base_engine, planned, args.per_commit, AuditSettings())
            base_req_s = append(base_engine, requests, 1, AuditSettings())
    with fresh_database(backend, url, "chain", args.keep, out) as engine:
        chain_s = append(engine, planned, args.per_commit, chained)
        chain_req_s = append(engine, requests, 1, chained)
        total = n + len(requests)
        if backend == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        typed_s, selected = plain_select(engine, args.batch, raw=False)
        sel_s, selected = plain_select(engine, args.batch, raw=True)
        verify_s, result = timed_verify(engine, key, args.batch)
        out(f"  append (baseline, no chain): {fmt_int(n / base_s)} records/s ({base_s:.1f} s)")
        out(f"  append (chain):              {fmt_int(n / chain_s)} records/s ({chain_s:.1f} s), "
            f"{ratio(n / chain_s, n / base_s)} of the baseline; {target(n / chain_s, TARGET_APPEND)}")
        out(f"  per request (1 record per commit, {fmt_int(len(requests))} records): baseline "
            f"{fmt_int(len(requests) / base_req_s)}/s, chain {fmt_int(len(requests) / chain_req_s)}/s "
            f"({ratio(base_req_s, chain_req_s)})")
        out(f"  SELECT (baseline, {fmt_int(selected)} rows streamed): {fmt_int(selected / sel_s)} rows/s as the driver "
            f"returns them ({sel_s:.2f} s); {fmt_int(selected / typed_s)} rows/s through SQLAlchemy's typed result")
        out(f"  verify:                      {fmt_int(result.links / verify_s)} records/s ({verify_s:.2f} s), "
            f"{ratio(result.links / verify_s, selected / sel_s)} of the SELECT; {target(result.links / verify_s, TARGET_VERIFY)}")
        out(f"  verify result: {'INTACT' if result.ok else 'BROKEN'}, {fmt_int(result.records)} records, "
            f"{fmt_int(result.links)} links, {result.checkpoints} checkpoints ({result.signatures_checked} signatures)")
        review_query_latency(engine, total, args.query_runs, out)
        export_figures(engine, total, selected / sel_s, out)
        checkpoints = total // args.checkpoint_every if args.checkpoint_every > 0 else 0
        intact = result.ok and result.links == result.records == total and result.checkpoints == checkpoints
        if not intact:
            out("  FAILED: the chain written by the benchmark does not verify as expected")
            for line in result.report():
                out(f"    {line}")
        return intact


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=None, help="records to append (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="20,000 records (an explicit --records wins)")
    parser.add_argument("--per-commit", type=int, default=100, help="records per commit (default 100)")
    parser.add_argument("--request-records", type=int, default=None,
                        help="records appended one per commit (default 2,000; 500 with --quick)")
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10_000, help="rows fetched per round trip when streaming")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL as well (default: DATABASE_URL if it names PostgreSQL)")
    parser.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL run")
    parser.add_argument("--query-runs", type=int, default=100, help="calls per review-screen query (default 100)")
    parser.add_argument("--seed", type=int, default=20261102)
    parser.add_argument("--keep", action="store_true", help="keep the databases (paths/schemas printed)")
    args = parser.parse_args(argv)
    if args.records is None:
        args.records = 20_000 if args.quick else 1_000_000
    if args.request_records is None:
        args.request_records = 500 if args.quick else 2_000
    args.request_records = min(args.request_records, args.records)
    if args.database_url is None and (os.environ.get("DATABASE_URL") or "").startswith("postgres"):
        args.database_url = os.environ["DATABASE_URL"]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = lambda line="": print(line, flush=True)  # noqa: E731
    out(f"audit chain benchmark: python {sys.version.split()[0]}, {os.cpu_count()} cpus, seed {args.seed}, "
        f"checkpoint every {fmt_int(args.checkpoint_every)}")
    planned = plan_records(args.records, args.seed)
    ok = True
    if not args.no_sqlite:
        ok &= run_backend("sqlite", None, args, planned, out)
    if args.database_url:
        ok &= run_backend("postgresql", normalise_url(args.database_url), args, planned, out)
    if not ok:
        out("FAILED: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
