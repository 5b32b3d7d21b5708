"""The benchmark is code too: at a tiny size it must build its data set and get every answer right.

Timings are printed by the script, never asserted here. The benchmark always
uses its own temporary SQLite file (it needs an empty database)."""
from __future__ import annotations

import dataclasses
import random
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import bench.decisions as decisions_bench
from access.catalogue import load_catalogue
from access.errors import Conflict
from audit.operations import RequestContext
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import Mandate, MandateKind, MandateStatus, Provider
from mandates.queries import clients_of_staff

TINY_RIGHTS = ["--enterprises", "30", "--persons", "200", "--rights", "600"]
TINY_MANDATES = TINY_RIGHTS + ["--providers", "12", "--employers", "150"]


def test_tiny_run_gives_every_expected_answer(capsys):
    rc = decisions_bench.main(TINY_RIGHTS + ["--decisions", "300", "--warmup", "20", "--seed", "7",
                                             "--scenario", "rights"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "decision reasons as expected: 300/300" in out
    assert "casbin agrees with the decision point (allowed/denied): 300/300" in out
    assert "scenario: staff of providers" not in out


def test_tiny_mandate_run_gives_every_expected_answer(capsys):
    rc = decisions_bench.main(TINY_MANDATES + ["--decisions", "400", "--warmup", "20", "--seed", "7",
                                               "--scenario", "mandates"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "scenario: rights and roles" not in out
    # Every kind of staff request was drawn (a kind without candidates would fall back to another).
    requests = next(line for line in out.splitlines() if line.startswith("requests: "))
    for kind in decisions_bench.MANDATE_MIX:
        assert f"{kind} " in requests, (kind, requests)
    assert "decision reasons as expected: 400/400" in out
    assert "casbin agrees with the decision point (allowed/denied): 400/400" in out
    assert "SELECT finds a current assignment under a mandate in force exactly where the data set has one: " \
           "400/400" in out
    assert "SELECT+build finds a current assignment under a mandate in force exactly where the data set has " \
           "one: 400/400" in out
    assert "targets: p99 < 2 ms:" in out


def test_a_wrong_expected_answer_fails_the_run(monkeypatch, capsys):
    """The check can fail: when the generator expects another reason, the run fails and says which."""
    real_one = decisions_bench.MandateCaseFactory.one

    def one(self, rng, kind):
        case = real_one(self, rng, kind)
        if case.kind == "not-assigned":
            case = dataclasses.replace(case, expected=decisions_bench.expected_outcome("no-right"))
        return case

    monkeypatch.setattr(decisions_bench.MandateCaseFactory, "one", one)
    rc = decisions_bench.main(TINY_MANDATES + ["--decisions", "200", "--warmup", "10", "--seed", "7",
                                               "--scenario", "mandates"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "unexpected: not-assigned" in out
    assert "FAILED:" in out


@pytest.fixture
def tiny_world():
    """The mandate world of a tiny run, kept open so that the domain's own queries can read it."""
    args = decisions_bench.parse_args(TINY_MANDATES + ["--seed", "11", "--scenario", "mandates"])
    db = decisions_bench.open_database(None)
    ds = decisions_bench.new_dataset(args, load_catalogue())
    try:
        decisions_bench.build_database(db, ds, random.Random(args.seed), args, lambda line="": None)
        yield db, ds.mandates
    finally:
        decisions_bench.close_database(db, False, lambda line="": None)


def test_mandate_rows_read_back_through_the_domain_as_the_generator_meant(tiny_world, clock):
    """The rows are what the operations would have left: the domain's own queries and rules see
    the affiliations, the clients of each staff member and the one-extra-provider place."""
    db, world = tiny_world
    day = decisions_bench.DAY
    with Session(db.engine) as session:
        for e in range(world.first_employer, world.first_employer + world.employers):
            in_force = [m for m in world.employer_mandates[e]
                        if world.m_active[m] and world.m_kind[m] is MandateKind.AFFILIATION]
            assert len(in_force) == 1, e
            affiliation = mops.current_affiliation(session, e, day)
            assert affiliation is not None and affiliation.id == in_force[0]

        checked = 0
        for p, state in world.staff_state.items():
            if state != decisions_bench.STAFF_ACTIVE:
                assert clients_of_staff(session, p, day) == [], p
                continue
            expected = {world.m_employer[m] for (q, m), mask in world.assigned.items()
                        if q == p and mask and world.m_active[m]}
            assert {client.employer.id for client in clients_of_staff(session, p, day)} == expected, p
            checked += bool(expected)
        assert checked > 0

        # An employer whose form is in force with no end date: the real operation refuses a second
        # other provider and names the one it has.
        holder = session.scalar(select(Mandate).where(
            Mandate.kind == MandateKind.FORM, Mandate.status == MandateStatus.ACCEPTED,
            Mandate.end_date.is_(None)).order_by(Mandate.id).limit(1))
        assert holder is not None
        other = session.scalar(select(Provider).where(
            Provider.id != holder.provider_id, Provider.recognition_number.is_(None)).order_by(Provider.id).limit(1))
        with pytest.raises(Conflict) as refused:
            mops.file_provider_form(session, holder.employer, other, date(2027, 1, 1), ["asr"],
                                    contract_declared=True, contract_date=date(2026, 10, 15),
                                    contract_reference="C-1", groups=load_groups(),
                                    by=RequestContext(actor_label="test"))
        assert holder.provider.enterprise.name in refused.value.message
        session.rollback()
