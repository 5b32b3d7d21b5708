"""The command line of issue 3: `flask provider register` and `flask affiliation record|end`. Same
operations as the web, one transaction per command; a refusal prints why, exits 2 and writes nothing."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from access.validators import make_kbo
from audit.models import AuditRecord
from mandates import operations as mops
from mandates.models import Mandate, MandateKind, Provider, ProviderKind
from tests.functional.helpers import audit_since, last_audit_id
from tests.functional.test_mandates_api import GROUPS, Unchanged


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str):
        return runner.invoke(args=list(args))

    return run


@pytest.fixture
def secretariats(world, db_session):
    """Two erkende sociale secretariaten (providers), an accountant and an employer, none affiliated yet."""
    first, second, accountant = world.employer("Secretariaat Een"), world.employer("Secretariaat Twee"), \
        world.non_employer("Boekhouder Drie")
    for enterprise, kind, number in ((first, ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/71"),
                                     (second, ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/72"),
                                     (accountant, ProviderKind.ACCOUNTANT, None)):
        mops.register_provider(db_session, enterprise, kind, number, by=world.ctx)
    world.commit()
    return dict(first=first, second=second, accountant=accountant, employer=world.employer("Garage Motor"))


def _affiliations(db_session, employer) -> list[Mandate]:
    db_session.expire_all()
    return list(db_session.scalars(select(Mandate).where(Mandate.employer_id == employer.id,
                                                         Mandate.kind == MandateKind.AFFILIATION)
                                   .order_by(Mandate.start_date)))


def test_provider_register(cli, world, db_session):
    secretariat, accountant = world.employer("Loonbureau Noord"), world.non_employer("Fiscaal Zuid")
    start = last_audit_id(db_session)
    result = cli("provider", "register", secretariat.kbo_display, "--kind", "erkend_sociaal_secretariaat",
                 "--recognition-number", "300/61")
    assert result.exit_code == 0, result.output
    assert f"Registered {secretariat.kbo_display} Loonbureau Noord as erkend_sociaal_secretariaat " \
           "(recognition number 300/61)" in result.output
    result = cli("provider", "register", accountant.kbo_number, "--kind", "accountant")
    assert result.exit_code == 0, result.output
    db_session.expire_all()
    providers = {p.enterprise_id: p for p in db_session.scalars(select(Provider))}
    assert (providers[secretariat.id].kind, providers[secretariat.id].recognition_number) == \
        (ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/61")
    assert providers[accountant.id].kind is ProviderKind.ACCOUNTANT
    records = [r for r in audit_since(db_session, start) if r.action == "provider.register"]
    assert [(r.enterprise_id, r.actor_label, r.user_agent) for r in records] == \
        [(secretariat.id, "cli", "flask-cli"), (accountant.id, "cli", "flask-cli")]


@pytest.mark.parametrize("args,message", [
    (("--kind", "erkend_sociaal_secretariaat"),
     "Refused (recognition_number): An erkend sociaal secretariaat needs its recognition number."),
    (("--kind", "accountant", "--recognition-number", "300/1"),
     "Refused (recognition_number): Only an erkend sociaal secretariaat has a recognition number."),
    (("--kind", "notaris"), "Invalid value for '--kind'"),
    (("--kind", "accountant", "--kbo", make_kbo(4_960_001)), "Refused (kbo): No enterprise"),
    (("--kind", "accountant", "--kbo", "0123"), "Refused (kbo): A KBO number has 10 digits"),
], ids=["secretariat-without-number", "accountant-with-number", "unknown-kind", "unregistered-kbo", "bad-kbo"])
def test_provider_register_refusals(cli, world, db_session, args, message):
    enterprise = world.non_employer("Nog Geen Dienstverlener")
    kbo = enterprise.kbo_number
    if "--kbo" in args:
        kbo, args = args[-1], args[:-2]
    with Unchanged(db_session):
        result = cli("provider", "register", kbo, *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_provider_registered_twice_is_refused(cli, secretariats, db_session):
    with Unchanged(db_session):
        result = cli("provider", "register", secretariats["accountant"].kbo_number, "--kind", "accountant")
    assert result.exit_code == 2
    assert "Refused (kbo):" in result.output and "is already registered as a service provider" in result.output


def test_affiliation_record_and_switch_with_warnings(cli, secretariats, db_session):
    employer, first, second = secretariats["employer"], secretariats["first"], secretariats["second"]
    result = cli("affiliation", "record", employer.kbo_display, first.kbo_display, "2026-10-01",
                 "--affiliation-number", "AF-9")
    assert result.exit_code == 0, result.output
    assert f"{employer.kbo_display} Garage Motor is affiliated with Secretariaat Een from 2026-10-01" in result.output
    [affiliation] = _affiliations(db_session, employer)
    assert (affiliation.affiliation_number, affiliation.minimum_term_months, affiliation.notice_months,
            affiliation.effective_from) == ("AF-9", 36, 6, date(2026, 10, 1))
    assert sorted(affiliation.applications()) == sorted(a for g in GROUPS.secretariat_defaults()
                                                        for a in g.applications)

    # The switch breaks the minimum term and the notice: the warnings are printed, nothing is written.
    args = ("affiliation", "record", employer.kbo_number, second.kbo_number, "2027-01-01", "--notice-date",
            "2026-11-01")
    with Unchanged(db_session):
        result = cli(*args)
    assert result.exit_code == 2
    assert "Warning: The minimum term of 36 months of the current affiliation (since 2026-10-01) runs until " \
           "2029-10-01." in result.output
    assert "Warning: Notice given on 2026-11-01: a notice of 6 months ends on 2027-05-01" in result.output
    assert "--acknowledge-warnings" in result.output

    result = cli(*args, "--acknowledge-warnings")
    assert result.exit_code == 0, result.output
    assert "Ended the affiliation with Secretariaat Een on 2026-12-31." in result.output
    assert result.output.count("Acknowledged: ") == 2
    old, new = _affiliations(db_session, employer)
    assert (old.end_date, old.notice_date) == (date(2026, 12, 31), date(2026, 11, 1))
    assert (new.provider.enterprise_id, new.start_date, new.end_date) == (second.id, date(2027, 1, 1), None)
    records = db_session.scalars(select(AuditRecord).where(AuditRecord.enterprise_id == employer.id,
                                                           AuditRecord.action.like("mandate.affiliation.%"))
                                 .order_by(AuditRecord.id)).all()
    assert [(r.action, r.actor_label) for r in records] == [
        ("mandate.affiliation.record", "cli"), ("mandate.affiliation.end", "cli"),
        ("mandate.affiliation.record", "cli")]


def test_affiliation_record_refusals(cli, secretariats, world, db_session):
    employer, first, second = secretariats["employer"], secretariats["first"], secretariats["second"]
    assert cli("affiliation", "record", employer.kbo_number, first.kbo_number, "2026-10-01").exit_code == 0
    for args, message in [
            ((employer.kbo_number, second.kbo_number, "2027-02-01"), "Refused (start_date): A provider relationship "
                                                                     "starts on the first day of a quarter"),
            ((employer.kbo_number, second.kbo_number, "2026-10-01"), "Refused (start_date): "
                                                                     f"{employer.kbo_display} is already affiliated"),
            ((employer.kbo_number, secretariats["accountant"].kbo_number, "2027-01-01"),
             "is not an erkend sociaal secretariaat"),
            ((employer.kbo_number, make_kbo(4_960_002), "2027-01-01"),
             "Refused (secretariat_kbo): "),
            ((make_kbo(4_960_003), second.kbo_number, "2027-01-01"), "Refused (employer_kbo): No enterprise"),
            ((world.non_employer("Zonder Personeel").kbo_number, second.kbo_number, "2027-01-01"),
             "is not an employer"),
            ((employer.kbo_number, second.kbo_number, "1 januari"), "Invalid value for 'START_DATE'"),
            ((employer.kbo_number, second.kbo_number, "2027-01-01", "--notice-months", "200"),
             "Invalid value for '--notice-months'"),
    ]:
        with Unchanged(db_session):
            result = cli("affiliation", "record", *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_affiliation_end(cli, secretariats, db_session, clock):
    employer, first = secretariats["employer"], secretariats["first"]
    with Unchanged(db_session):
        result = cli("affiliation", "end", employer.kbo_number, "2026-12-31")
    assert result.exit_code == 2
    assert f"Refused (employer_kbo): {employer.kbo_display} has no open affiliation" in result.output
    assert cli("affiliation", "record", employer.kbo_number, first.kbo_number, "2026-10-01").exit_code == 0
    with Unchanged(db_session):
        result = cli("affiliation", "end", employer.kbo_number, "2026-09-30")
    assert result.exit_code == 2 and "Refused (end_date): The end date cannot be before the start date" in result.output

    result = cli("affiliation", "end", employer.kbo_display, "2026-12-31")
    assert result.exit_code == 0, result.output
    assert f"The affiliation of {employer.kbo_display} with Secretariaat Een ends on 2026-12-31." in result.output
    [affiliation] = _affiliations(db_session, employer)
    assert affiliation.end_date == date(2026, 12, 31)
    assert not affiliation.active_on(date(2027, 1, 1)) and affiliation.active_on(date(2026, 12, 31))
