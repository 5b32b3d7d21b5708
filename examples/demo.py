"""The demo data set: every role of the access core, built through the real operations."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from access import operations as ops
from access.catalogue import load_catalogue
from access.clock import today
from access.models import Account, LinkKind, Person, Role
from access.passwords import hash_password
from access.validators import make_insz, make_kbo, make_rsz
from audit.operations import CLI_CONTEXT

DEMO_PASSWORD = "Zonnebloem-Kade-47"
OFFICER_INSZ = make_insz("750412", 101)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    description: str


def set_own_credentials(session: Session, person: Person, username: str, password: str = DEMO_PASSWORD) -> Account:
    """Skip the first-login step (demo accounts, test data): give the person's
    account his own user name and password."""
    account = person.account
    account.username, account.username_lower = username, username.lower()
    account.password_hash = hash_password(password)
    account.initial_password_hash = None
    account.initial_password_expires_at = None
    session.flush()
    return account


def _person(session, enterprise, insz, first, last, kind, start, end=None):
    person = ops.record_person(session, insz=insz, first_name=first, last_name=last,
                               email=f"{first.lower()}@example.invalid", by=CLI_CONTEXT)
    ops.add_link(session, enterprise, person, kind, start, end, by=CLI_CONTEXT)
    return person


def load_demo(session: Session) -> list[DemoLogin]:
    if session.scalar(select(Person).where(Person.insz == OFFICER_INSZ)) is not None:
        return _logins(session)
    catalogue = load_catalogue()
    day = today()
    ops.create_portal_officer(session, insz=OFFICER_INSZ, first_name="Olivia", last_name="Officier",
                              email="olivia@example.invalid", password=None, by=CLI_CONTEXT)
    set_own_credentials(session, session.scalar(select(Person).where(Person.insz == OFFICER_INSZ)), "officer")

    bakery = ops.register_enterprise(
        session, kbo=make_kbo(4_123_456), rsz_number=make_rsz(1_234_567), name="Bakkerij De Gouden Korst",
        street="Kerkstraat 12", postal_code="9000", city="Gent", legal_form="BV", joint_committee="118",
        by=CLI_CONTEXT)
    an = _person(session, bakery, make_insz("800101", 1), "An", "Peeters", LinkKind.ZAAKVOERDER, date(2015, 3, 1))
    bart = _person(session, bakery, make_insz("900215", 23), "Bart", "Janssens", LinkKind.WERKNEMER, date(2019, 9, 1))
    chris = _person(session, bakery, make_insz("870630", 45), "Chris", "Maes", LinkKind.WERKNEMER, date(2018, 1, 15))
    _person(session, bakery, make_insz("821111", 67), "Dirk", "Claes", LinkKind.ZELFSTANDIGE_MEDEWERKER,
            date(2020, 5, 1))
    eva = _person(session, bakery, make_insz("950320", 88), "Eva", "Willems", LinkKind.WERKNEMER, date(2021, 2, 1),
                  day + timedelta(days=30))

    ops.appoint_local_admin(session, bakery, an, by=CLI_CONTEXT)
    set_own_credentials(session, an, "an.peeters")
    as_an = CLI_CONTEXT.as_actor(an.id, "an.peeters")
    for person, role, username in ((bart, Role.USER, "bart"), (chris, Role.CO_ADMIN, "chris"),
                                   (eva, Role.USER, "eva")):
        ops.designate(session, bakery, person, role, by=as_an)
        set_own_credentials(session, person, username)
    for application in ("dmfa", "werkgeversrepertorium_beveiligd", "wijzigingsvoorstellen"):
        ops.grant_right(session, bakery, bart, application, catalogue=catalogue, by=as_an)
    ops.grant_right(session, bakery, eva, "personeelsbestand", catalogue=catalogue, by=as_an)

    consultancy = ops.register_enterprise(
        session, kbo=make_kbo(5_987_654), name="Consultancy Vermeulen", street="Meir 1", postal_code="2000",
        city="Antwerpen", legal_form="BV", by=CLI_CONTEXT)
    frank = _person(session, consultancy, make_insz("780808", 11), "Frank", "Vermeulen", LinkKind.ZAAKVOERDER,
                    date(2012, 6, 1))
    ops.appoint_local_admin(session, consultancy, frank, by=CLI_CONTEXT)
    set_own_credentials(session, frank, "frank")

    garage = ops.register_enterprise(
        session, kbo=make_kbo(6_543_210), rsz_number=make_rsz(2_345_678), name="Garage Lambrecht",
        street="Stationsplein 3", postal_code="8500", city="Kortrijk", legal_form="NV", joint_committee="112",
        by=CLI_CONTEXT)
    gert = _person(session, garage, make_insz("850505", 31), "Gert", "Lambrecht", LinkKind.BESTUURDER,
                   date(2010, 1, 1))
    _person(session, garage, make_insz("990909", 52), "Hilde", "Jacobs", LinkKind.WERKNEMER, date(2022, 4, 1))
    appointment = ops.appoint_local_admin(session, garage, gert, by=CLI_CONTEXT)
    session.info["demo_initial_credential"] = appointment.credential
    return _logins(session)


def _logins(session: Session) -> list[DemoLogin]:
    logins = [
        DemoLogin("officer", "portal officer: registers enterprises, links, local administrators; decides proposals"),
        DemoLogin("an.peeters", "local administrator of Bakkerij De Gouden Korst (employer)"),
        DemoLogin("chris", "co-administrator of the bakery"),
        DemoLogin("bart", "user of the bakery: DmfA, secured repertory, change proposals"),
        DemoLogin("eva", "user of the bakery whose employment ends in 30 days"),
        DemoLogin("frank", "zaakvoerder and local administrator of Consultancy Vermeulen (no staff)"),
    ]
    credential = session.info.get("demo_initial_credential")
    gert = session.scalar(select(Account).join(Person).where(Person.last_name == "Lambrecht"))
    if credential is not None:
        logins.append(DemoLogin(credential.user_id, f"Garage Lambrecht's new local administrator: first login with "
                                                    f"initial password {credential.password}"))
    elif gert is not None and gert.must_choose_credentials:
        logins.append(DemoLogin(gert.user_id, "Garage Lambrecht's new local administrator (initial password was "
                                              "printed at the first demo load)"))
    return logins
