"""The read-only views of mandates/queries.py: whose mandates, which clients a staff member may pick
(those and nobody else's), who is provider staff, and which provider staff acted for an employer."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from access import operations as aops
from access.decision import log_decision
from access.clock import as_utc
from access.models import Link, Role
from mandates import operations as mops
from mandates.models import MandateStatus, ProviderKind
from mandates.queries import (
    all_mandates,
    clients_of_staff,
    current_assignments,
    current_assignments_by_mandate,
    is_provider_staff,
    mandates_of_employer,
    mandates_of_provider,
    providers,
    recent_provider_activity,
)
from tests.unit.mandates.helpers import Q1_2027, Q2_2027, Q4_2026, TODAY


def test_mandates_of_employer_and_of_provider_and_all(kit, db_session):
    employer, other_employer = kit.employer(), kit.employer()
    secretariat, accountant = kit.secretariat(), kit.provider()
    affiliation = kit.affiliate(employer, secretariat, Q4_2026)
    declined = kit.file(employer, accountant, Q1_2027)
    kit.decide_form(declined, accountant, accept=False)
    form = kit.file(employer, accountant, Q2_2027)
    elsewhere = kit.accepted_form(other_employer, accountant, Q1_2027)
    assert mandates_of_employer(db_session, employer.enterprise.id) == [form, declined, affiliation]
    assert mandates_of_employer(db_session, other_employer.enterprise.id) == [elsewhere]
    assert set(mandates_of_provider(db_session, accountant.enterprise.id)) == {declined, form, elsewhere}
    assert mandates_of_provider(db_session, secretariat.enterprise.id) == [affiliation]
    assert mandates_of_provider(db_session, employer.enterprise.id) == []
    everything = all_mandates(db_session)
    assert set(everything) == {affiliation, declined, form, elsewhere}
    assert all_mandates(db_session, MandateStatus.PENDING) == [form]
    assert all_mandates(db_session, MandateStatus.DECLINED) == [declined]
    assert len(all_mandates(db_session, limit=2)) == 2


def test_providers_by_name(kit, db_session):
    zulu = kit.provider(name="Zulu Boekhouding")
    alfa = kit.secretariat(name="Alfa Secretariaat")
    assert providers(db_session) == [alfa.provider, zulu.provider]


def test_current_assignments(kit, db_session):
    employer, secretariat = kit.employer(), kit.secretariat()
    affiliation = kit.affiliate(employer, secretariat)
    first, second = kit.staff(secretariat), kit.staff(secretariat)
    kept = [kit.assign(secretariat, affiliation, first, "dmfa"), kit.assign(secretariat, affiliation, second, "asr")]
    kit.assign(secretariat, affiliation, first, "asr")
    mops.unassign_staff(db_session, secretariat.enterprise, affiliation, first, "asr", by=secretariat.ctx)
    assert current_assignments(db_session, affiliation.id) == kept
    other = kit.affiliate(kit.employer(), secretariat)
    elsewhere = kit.assign(secretariat, other, second, "dmfa")
    assert current_assignments_by_mandate(db_session, [affiliation.id, other.id]) == {
        affiliation.id: kept, other.id: [elsewhere]}
    assert current_assignments_by_mandate(db_session, [other.id]) == {other.id: [elsewhere]}
    assert current_assignments_by_mandate(db_session, []) == {}


def test_clients_of_staff_are_his_providers_clients_he_is_assigned_to(kit, db_session, clock):
    secretariat, accountant = kit.secretariat(), kit.provider()
    bakery = kit.employer(name="Bakkerij Aerts")
    garage = kit.employer(name="Garage Zeeman")
    unassigned = kit.employer(name="Apotheek Claes")
    strangers = kit.employer(name="Brouwerij Dierckx")  # another provider's client
    staff = kit.staff(secretariat)
    aops.add_link(db_session, accountant.enterprise, staff, "werknemer", date(2026, 1, 1), by=kit.ctx)
    aops.designate(db_session, accountant.enterprise, staff, Role.USER, by=accountant.ctx)
    garage_affiliation = kit.affiliate(garage, secretariat)
    bakery_affiliation = kit.affiliate(bakery, secretariat)
    kit.affiliate(unassigned, secretariat)
    bakery_form = kit.accepted_form(bakery, accountant, Q4_2026, ["onderneming_federaal"])
    kit.affiliate(strangers, kit.secretariat())
    kit.assign(secretariat, garage_affiliation, staff, "dmfa")
    kit.assign(secretariat, bakery_affiliation, staff, "personeelsbestand")
    kit.assign(secretariat, bakery_affiliation, staff, "asr")
    kit.assign(accountant, bakery_form, staff, "kbo_prive_gegevens")
    clients = clients_of_staff(db_session, staff.id)
    assert [(c.employer.name, c.provider_enterprise, c.applications) for c in clients] in (
        # The bakery twice, once per mandate (the order of those two is not defined), then the garage.
        [("Bakkerij Aerts", secretariat.enterprise, ("asr", "personeelsbestand")),
         ("Bakkerij Aerts", accountant.enterprise, ("kbo_prive_gegevens",)),
         ("Garage Zeeman", secretariat.enterprise, ("dmfa",))],
        [("Bakkerij Aerts", accountant.enterprise, ("kbo_prive_gegevens",)),
         ("Bakkerij Aerts", secretariat.enterprise, ("asr", "personeelsbestand")),
         ("Garage Zeeman", secretariat.enterprise, ("dmfa",))])
    assert {c.mandate.id for c in clients} == {garage_affiliation.id, bakery_affiliation.id, bakery_form.id}
    # His designation by the accountant ends: its client goes, the secretariat's stay.
    aops.remove_member(db_session, accountant.enterprise, staff, by=accountant.ctx)
    assert {c.mandate.id for c in clients_of_staff(db_session, staff.id)} == {garage_affiliation.id,
                                                                             bakery_affiliation.id}
    # His link with the secretariat ends yesterday: nothing at all.
    db_session.scalar(select(Link).where(Link.person_id == staff.id,
                                         Link.enterprise_id == secretariat.enterprise.id)).end_date = (
        TODAY - timedelta(days=1))
    db_session.flush()
    assert clients_of_staff(db_session, staff.id) == []
    assert [c.employer.name for c in clients_of_staff(db_session, staff.id, TODAY - timedelta(days=1))] == [
        "Bakkerij Aerts", "Garage Zeeman"]
    assert clients_of_staff(db_session, None) == []


def test_clients_of_staff_follow_the_mandate_period(kit, db_session):
    employer, accountant = kit.employer(), kit.provider()
    staff = kit.staff(accountant)
    form = kit.accepted_form(employer, accountant, Q1_2027, ["asr"])
    kit.assign(accountant, form, staff, "asr")
    assert clients_of_staff(db_session, staff.id) == []  # not started yet
    assert [c.mandate for c in clients_of_staff(db_session, staff.id, Q1_2027)] == [form]
    mops.end_mandate(db_session, form, date(2027, 3, 31), by=employer.ctx)
    assert [c.mandate for c in clients_of_staff(db_session, staff.id, date(2027, 3, 31))] == [form]
    assert clients_of_staff(db_session, staff.id, Q2_2027) == []


def test_is_provider_staff(kit, db_session):
    employer, accountant = kit.employer(), kit.provider()
    staff = kit.staff(accountant)
    assert is_provider_staff(db_session, staff.id)
    assert is_provider_staff(db_session, accountant.admin.person.id)
    assert not is_provider_staff(db_session, employer.admin.person.id)  # an employer's, not a provider's
    assert not is_provider_staff(db_session, kit.f.Person().id)
    assert not is_provider_staff(db_session, None)
    aops.remove_member(db_session, accountant.enterprise, staff, by=accountant.ctx)
    assert not is_provider_staff(db_session, staff.id)


def test_recent_provider_activity_is_what_provider_staff_did_for_the_employer(kit, db_session, clock, ctx):
    employer, other_employer = kit.employer(), kit.employer()
    secretariat, accountant = kit.secretariat(name="Secretariaat Oost"), kit.provider(ProviderKind.ACCOUNTANT)
    affiliation = kit.affiliate(employer, secretariat)
    other_affiliation = kit.affiliate(other_employer, secretariat)
    first, second = kit.staff(secretariat), kit.staff(secretariat)
    for person in (first, second):
        kit.assign(secretariat, affiliation, person, "dmfa")
        kit.assign(secretariat, other_affiliation, person, "dmfa")
    form = kit.accepted_form(employer, accountant, Q4_2026, ["asr"])  # managing a mandate is not acting for it
    assert recent_provider_activity(db_session, employer.enterprise.id) == []

    def acts(person, for_employer, application="dmfa"):
        decision = kit.decide(person, for_employer, application)
        log_decision(db_session, ctx.as_actor(person.id, person.full_name), decision)
        db_session.flush()

    acts(first, employer)
    clock.advance(days=100)
    acts(second, employer)
    clock.advance(hours=1)
    acts(second, employer)
    acts(second, employer, "asr")  # refused: not assigned; still an attempt through the provider
    acts(first, other_employer)
    acts(employer.admin.person, employer)  # the employer's own administrator: not provider staff
    activity = recent_provider_activity(db_session, employer.enterprise.id)
    # The first staff member acted 100 days ago: outside the 90 days.
    assert [(a.provider, a.person_id, a.person, a.actions, as_utc(a.last_at)) for a in activity] == [
        (secretariat.enterprise, second.id, second.full_name, 3, clock.now())]
    assert [a.person_id for a in recent_provider_activity(db_session, employer.enterprise.id, days=101)] == [
        second.id, first.id]
    assert [a.person_id for a in recent_provider_activity(db_session, other_employer.enterprise.id)] == [first.id]
    assert form.status is MandateStatus.ACCEPTED
