"""At most one other provider next to the erkend sociaal secretariaat, under concurrent requests.

Twenty requests, each with its own connection and session, released together by a barrier, each
filing a provider form for the same employer with a different provider and committing: exactly one
succeeds, nineteen get the Conflict that names the winner, and the database holds exactly one open form.

These tests commit, so they run in a database of their own (see isolated_db.py): on PostgreSQL with
real parallel connections (the employer's row lock serialises them; without it, the partial unique
index still does), on a SQLite file where BEGIN IMMEDIATE serialises the writers."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access.models import Enterprise
from audit.models import AuditRecord
from audit.operations import RequestContext
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import Mandate, MandateApplication, MandateKind, MandateStatus, Provider, ProviderKind
from tests.factories import EmployerFactory, EnterpriseFactory, bind_session
from tests.unit.mandates.isolated_db import backend, isolated_engine

RACERS = 20
Q4_2026, Q1_2027 = date(2026, 10, 1), date(2027, 1, 1)
SETUP = RequestContext(actor_label="setup")


@pytest.fixture
def private_engine(database_url, tmp_path, clock):
    # One connection per racer, all open at once: the pool must not make them queue.
    with isolated_engine(database_url, tmp_path, "concurrency", pool_size=RACERS + 5, max_overflow=0) as engine:
        yield engine


def _setup(engine, kind: ProviderKind) -> tuple[int, list[int]]:
    """Commit an employer affiliated with a secretariat since 2026-10-01, and RACERS providers of `kind`."""
    groups = load_groups()
    with Session(engine) as session, bind_session(session):
        employer = EmployerFactory()
        secretariat = mops.register_provider(session, EnterpriseFactory(employer=True),
                                             ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "100/1", by=SETUP)
        mops.record_affiliation(session, employer, secretariat, Q4_2026, groups=groups, by=SETUP)
        providers = [
            mops.register_provider(session, EnterpriseFactory(employer=True), kind,
                                   f"200/{n}" if kind is ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT else None, by=SETUP)
            for n in range(RACERS)]
        session.commit()
        return employer.id, [provider.id for provider in providers]


def _race(engine, employer_id: int, provider_ids: list[int], act) -> list[tuple[str, int, Exception | None]]:
    """Run act(session, employer, provider, ctx) for every provider at once, each in its own session."""
    barrier = threading.Barrier(len(provider_ids), timeout=60)

    def attempt(n: int, provider_id: int):
        with Session(engine, expire_on_commit=False) as session:
            employer = session.get(Enterprise, employer_id)
            provider = session.get(Provider, provider_id)
            provider.enterprise  # noqa: B018  loaded now, not inside the race
            # End the read transaction before waiting: on SQLite it holds the write lock (BEGIN IMMEDIATE).
            session.commit()
            barrier.wait()
            try:
                act(session, employer, provider, RequestContext(actor_label=f"racer-{n}", request_id=f"race-{n}"))
                session.commit()
                return "won", provider_id, None
            except mops.Conflict as refusal:
                session.rollback()
                return "refused", provider_id, refusal

    with ThreadPoolExecutor(max_workers=len(provider_ids)) as pool:
        futures = [pool.submit(attempt, n, provider_id) for n, provider_id in enumerate(provider_ids)]
        # Anything but a Conflict (a PendingRollbackError, a deadlock, a lock timeout) fails the test here.
        return [future.result(timeout=120) for future in futures]


def _file_form(session, employer, provider, ctx):
    mops.file_provider_form(session, employer, provider, Q1_2027, ["asr"], contract_declared=True,
                            contract_date=date(2026, 10, 15), contract_reference=f"C-{provider.id}",
                            groups=load_groups(), by=ctx)


def _check_one_winner(engine, outcomes) -> Provider:
    winners = [provider_id for outcome, provider_id, _ in outcomes if outcome == "won"]
    assert len(winners) == 1, outcomes
    with Session(engine) as session:
        winner = session.get(Provider, winners[0])
        name, kbo = winner.enterprise.name, winner.enterprise.kbo_display
        refusals = [refusal for outcome, _, refusal in outcomes if outcome == "refused"]
        assert len(refusals) == RACERS - 1
        for refusal in refusals:
            assert refusal.field in ("provider_kbo", "start_date", "secretariat_kbo"), refusal.message
            assert name in refusal.message and kbo in refusal.message, refusal.message
        return winner


def test_twenty_concurrent_provider_forms_one_wins(private_engine):
    employer_id, provider_ids = _setup(private_engine, ProviderKind.ACCOUNTANT)
    outcomes = _race(private_engine, employer_id, provider_ids, _file_form)
    winner = _check_one_winner(private_engine, outcomes)
    with Session(private_engine) as session:
        forms = session.scalars(select(Mandate).where(Mandate.employer_id == employer_id,
                                                      Mandate.kind == MandateKind.FORM)).all()
        assert [(f.provider_id, f.status, f.end_date) for f in forms] == [(winner.id, MandateStatus.PENDING, None)]
        # No scope row of a refused form was left behind.
        affiliation_scope = len([app for g in load_groups().secretariat_defaults() for app in g.applications])
        assert session.scalar(select(func.count()).select_from(MandateApplication)) == (
            affiliation_scope + len(load_groups().get("asr").applications))
        assert sorted(forms[0].applications()) == sorted(load_groups().get("asr").applications)
        filed = session.scalars(select(AuditRecord).where(AuditRecord.action == "mandate.form.file")).all()
        assert [(r.enterprise_id, r.provider_enterprise_id) for r in filed] == [(employer_id, winner.enterprise_id)]


def test_the_unique_index_alone_holds_the_place(private_engine, database_url, monkeypatch):
    """Without the employer's row lock, and with every request past the Python check before any
    inserts, the partial unique index uq_mandates_one_extra_provider is all that stands: it holds."""
    if backend(database_url) != "postgresql":
        pytest.skip("needs PostgreSQL: on SQLite BEGIN IMMEDIATE serialises whole transactions, so requests "
                    "cannot all pass the check before one inserts (the index itself is tested sequentially in "
                    "test_operations.py::test_the_unique_index_refuses_a_form_that_slipped_past_the_check)")
    employer_id, provider_ids = _setup(private_engine, ProviderKind.ACCOUNTANT)
    checked = threading.Barrier(RACERS, timeout=60)
    local = threading.local()
    real_holder = mops._holder_of_extra_place

    def holder_after_everyone_checked(session, employer, start):
        found = real_holder(session, employer, start)
        if not getattr(local, "checked", False):
            local.checked = True
            assert found is None
            checked.wait()  # nobody inserts before all twenty found the place free
        return found

    monkeypatch.setattr(mops, "_lock_employer", lambda session, employer: None)
    monkeypatch.setattr(mops, "_holder_of_extra_place", holder_after_everyone_checked)
    outcomes = _race(private_engine, employer_id, provider_ids, _file_form)
    winner = _check_one_winner(private_engine, outcomes)
    with Session(private_engine) as session:
        assert session.scalar(select(func.count()).select_from(Mandate).where(
            Mandate.employer_id == employer_id, Mandate.kind == MandateKind.FORM)) == 1
        assert session.scalar(select(Mandate.provider_id).where(Mandate.kind == MandateKind.FORM)) == winner.id


def test_twenty_concurrent_affiliations_one_wins(private_engine):
    employer_id, secretariat_ids = _setup(private_engine, ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT)

    def affiliate(session, employer, secretariat, ctx):
        mops.record_affiliation(session, employer, secretariat, Q1_2027, groups=load_groups(), by=ctx,
                                notice_date=date(2026, 6, 1), acknowledge_warnings=True)

    outcomes = _race(private_engine, employer_id, secretariat_ids, affiliate)
    winner = _check_one_winner(private_engine, outcomes)
    with Session(private_engine) as session:
        affiliations = session.scalars(select(Mandate).where(Mandate.employer_id == employer_id)
                                       .order_by(Mandate.start_date)).all()
        assert [(a.start_date, a.end_date) for a in affiliations] == [(Q4_2026, date(2026, 12, 31)), (Q1_2027, None)]
        assert affiliations[1].provider_id == winner.id
