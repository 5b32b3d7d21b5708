"""The demo data set loads through the real operations, twice without harm, and shows what it promises."""
from __future__ import annotations


from sqlalchemy import func, select

from access.catalogue import load_catalogue
from access.decision import decide
from access.models import Enterprise, Person
from audit.models import AuditRecord
from examples.demo import load_demo
from mandates.queries import clients_of_staff
from tests.factories import subject_of


def _person(session, first_name):
    return session.scalar(select(Person).where(Person.first_name == first_name))


def _enterprise(session, name):
    return session.scalar(select(Enterprise).where(Enterprise.name == name))


def test_demo_loads_once_and_each_way_of_seed_001_works(db_session, clock):  # noqa: ARG001 (frozen clock)
    logins = load_demo(db_session)
    assert {"officer", "an.peeters", "sofie", "tom", "lien", "frank"} <= {login.username for login in logins}
    records = db_session.scalar(select(func.count()).select_from(AuditRecord))
    assert load_demo(db_session)  # a second load changes nothing
    assert db_session.scalar(select(func.count()).select_from(AuditRecord)) == records

    catalogue = load_catalogue()
    bakery, brasserie = _enterprise(db_session, "Bakkerij De Gouden Korst"), _enterprise(db_session, "Brasserie Het Anker")
    tom, lien, frank = _person(db_session, "Tom"), _person(db_session, "Lien"), _person(db_session, "Frank")
    assert {c.employer.name for c in clients_of_staff(db_session, tom.id)} == {bakery.name, brasserie.name}
    assert {c.employer.name for c in clients_of_staff(db_session, lien.id)} == {brasserie.name}

    def allowed(person, enterprise, application):
        return decide(db_session, subject_of(person), enterprise.id, application, "open", catalogue=catalogue)

    assert allowed(tom, bakery, "dmfa").allowed
    assert allowed(lien, brasserie, "wijzigingsvoorstellen").allowed
    refused = allowed(lien, bakery, "dmfa")
    assert not refused.allowed and refused.reason.code == "not-assigned"
    assert allowed(frank, bakery, "personeelsbestand").allowed
    assert allowed(frank, bakery, "dmfa").reason.code == "outside-mandate"


def test_the_demo_has_security_officers_and_an_open_access_review(db_session, clock):  # noqa: ARG001
    from access.security_officers import SECURITY_AUDIT
    from reviews.operations import open_review_of

    load_demo(db_session)
    catalogue = load_catalogue()
    bakery, garage = _enterprise(db_session, "Bakkerij De Gouden Korst"), _enterprise(db_session, "Garage Lambrecht")
    an, vera = _person(db_session, "An"), _person(db_session, "Vera")

    def review(person, enterprise):
        return decide(db_session, subject_of(person), enterprise.id if enterprise else None, SECURITY_AUDIT, "review",
                      catalogue=catalogue).allowed

    assert review(an, bakery) and not review(an, garage) and not review(an, None)
    assert review(vera, bakery) and review(vera, garage) and review(vera, None)
    campaign = open_review_of(db_session, bakery.id)
    assert campaign is not None and campaign.items
