"""The demo data set: every role of the access core and of the mandates, built through the real operations.

The three ways of seed 001: Garage Lambrecht uses only its own access (a local administrator);
Brasserie Het Anker entrusts everything to its erkend sociaal secretariaat (no local administrator);
Bakkerij De Gouden Korst does both, and has an accountant as its one other provider."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from access import operations as ops
from access.catalogue import load_catalogue
from access.clock import today, utcnow
from access.models import Account, LinkKind, Person, Role
from access.passwords import hash_password
from access.validators import make_insz, make_kbo, make_rsz
from audit.operations import CLI_CONTEXT
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import ProviderKind

DEMO_PASSWORD = "Zonnebloem-Kade-47"
# The authenticator-app key of every demo account (base32): add it to an app (FreeOTP, Aegis, ...), or
# let `flask --app wsgi demo code` print the current code. Demo data only: real accounts draw their own.
DEMO_TOTP_SECRET = "DEMOPORTALSECONDFACTORKEY2345672"
OFFICER_INSZ = make_insz("750412", 101)
SECURITY_OFFICER_INSZ = make_insz("790923", 77)  # Vera Veilig, the institution's security officer
# The two demo enterprises that get a demo seal certificate (examples/demo_pki.py).
BAKERY_KBO, BAKERY_NAME = make_kbo(4_123_456), "Bakkerij De Gouden Korst"
SECRETARIAT_KBO, SECRETARIAT_NAME = make_kbo(4_444_001), "Sociaal Secretariaat Zuiderpoort"


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
        _load_security_officers(session)  # demo databases loaded before the security officers existed
        enrol_demo_authenticators(session)  # and before the second factor
        return _logins(session)
    catalogue = load_catalogue()
    day = today()
    ops.create_portal_officer(session, insz=OFFICER_INSZ, first_name="Olivia", last_name="Officier",
                              email="olivia@example.invalid", password=None, by=CLI_CONTEXT)
    set_own_credentials(session, session.scalar(select(Person).where(Person.insz == OFFICER_INSZ)), "officer")

    bakery = ops.register_enterprise(
        session, kbo=BAKERY_KBO, rsz_number=make_rsz(1_234_567), name=BAKERY_NAME,
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

    _load_providers(session, bakery, consultancy, frank, catalogue)
    _load_security_officers(session)
    enrol_demo_authenticators(session)
    return _logins(session)


def enrol_demo_authenticators(session: Session) -> None:
    """Every demo account that has its own password gets the demo authenticator app (issue 6: the second
    factor is required at login); the garage's new administrator sets his own up at first login."""
    from access.models import TotpFactor

    for account in session.scalars(select(Account).where(Account.password_hash.is_not(None))):
        if session.scalar(select(TotpFactor.id).where(TotpFactor.account_id == account.id,
                                                      TotpFactor.removed_at.is_(None))) is None:
            session.add(TotpFactor(account_id=account.id, secret=DEMO_TOTP_SECRET, created_at=utcnow(),
                                   confirmed_at=utcnow()))
    session.flush()


def _load_security_officers(session: Session) -> None:
    """An Peeters is also his bakery's security officer (seed 001 allows the local administrator to be
    it) and has started an access review; Vera Veilig is the institution's security officer, appointed
    by the portal officer. Added once."""
    from access import security_officers as sec
    from access.models import Enterprise
    from reviews.operations import start_review

    if session.scalar(select(Person).where(Person.insz == SECURITY_OFFICER_INSZ)) is not None:
        return
    bakery = session.scalar(select(Enterprise).where(Enterprise.kbo_number == BAKERY_KBO))
    an = session.scalar(select(Account).where(Account.username == "an.peeters")).person
    officer = session.scalar(select(Account).where(Account.username == "officer")).person
    as_an = CLI_CONTEXT.as_actor(an.id, "an.peeters")
    sec.appoint_enterprise_officer(session, bakery, an, by=as_an)
    start_review(session, bakery, deadline=today() + timedelta(days=14), revoke_unanswered=False, by=as_an)
    vera = ops.record_person(session, insz=SECURITY_OFFICER_INSZ, first_name="Vera", last_name="Veilig",
                             email="vera@example.invalid", by=CLI_CONTEXT)
    sec.appoint_institution_officer(session, vera, by=CLI_CONTEXT.as_actor(officer.id, "officer"))
    set_own_credentials(session, vera, "vera")


def _load_providers(session: Session, bakery, consultancy, frank, catalogue) -> None:
    """A secretariat with a local administrator and two staff members, an accountant (the
    consultancy), and employers using each of the three ways."""
    groups = load_groups()
    day = today()
    secretariat_enterprise = ops.register_enterprise(
        session, kbo=SECRETARIAT_KBO, rsz_number=make_rsz(3_456_789), name=SECRETARIAT_NAME,
        street="Zuidstationstraat 30", postal_code="9000", city="Gent", legal_form="vzw", joint_committee="218",
        by=CLI_CONTEXT)
    secretariat = mops.register_provider(session, secretariat_enterprise, ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT,
                                         "300/12", by=CLI_CONTEXT)
    sofie = _person(session, secretariat_enterprise, make_insz("830707", 14), "Sofie", "Dewulf", LinkKind.WERKNEMER,
                    date(2014, 9, 1))
    tom = _person(session, secretariat_enterprise, make_insz("910312", 25), "Tom", "Verhaegen", LinkKind.WERKNEMER,
                  date(2019, 3, 1))
    lien = _person(session, secretariat_enterprise, make_insz("960125", 36), "Lien", "Martens", LinkKind.WERKNEMER,
                   date(2023, 10, 1))
    ops.appoint_local_admin(session, secretariat_enterprise, sofie, by=CLI_CONTEXT)
    set_own_credentials(session, sofie, "sofie")
    as_sofie = CLI_CONTEXT.as_actor(sofie.id, "sofie")
    for person, username in ((tom, "tom"), (lien, "lien")):
        ops.designate(session, secretariat_enterprise, person, Role.USER, by=as_sofie)
        set_own_credentials(session, person, username)

    accountant = mops.register_provider(session, consultancy, ProviderKind.ACCOUNTANT, by=CLI_CONTEXT)

    brasserie = ops.register_enterprise(
        session, kbo=make_kbo(4_555_002), rsz_number=make_rsz(4_567_890), name="Brasserie Het Anker",
        street="Vismarkt 7", postal_code="8000", city="Brugge", legal_form="BV", joint_committee="302",
        by=CLI_CONTEXT)
    _person(session, brasserie, make_insz("760229", 47), "Jan", "Anckaert", LinkKind.ZAAKVOERDER, date(2016, 4, 1))

    bakery_affiliation = mops.record_affiliation(session, bakery, secretariat, date(2024, 1, 1), groups=groups,
                                                 affiliation_number="ZP-2024-0113", by=CLI_CONTEXT).affiliation
    brasserie_affiliation = mops.record_affiliation(session, brasserie, secretariat, date(2025, 7, 1), groups=groups,
                                                    affiliation_number="ZP-2025-0702", by=CLI_CONTEXT).affiliation

    # The bakery's local administrator files the form for its accountant; the accountant accepts.
    an = session.scalar(select(Person).where(Person.insz == make_insz("800101", 1)))
    as_an = CLI_CONTEXT.as_actor(an.id, "an.peeters")
    form = mops.file_provider_form(
        session, bakery, accountant, mops.quarter_start(day), ["personeelsbestand", "onderneming_federaal"],
        contract_declared=True, contract_date=day - timedelta(days=40), contract_reference="VM-2026-017",
        groups=groups, by=as_an)
    as_frank = CLI_CONTEXT.as_actor(frank.id, "frank")
    mops.decide_provider_form(session, form, consultancy, True, by=as_frank)

    for mandate, person, applications in (
        (bakery_affiliation, tom, ("dmfa", "asr", "werkgeversrepertorium_beveiligd")),
        (brasserie_affiliation, tom, ("dmfa", "asr", "personeelsbestand")),
        (brasserie_affiliation, lien, ("dmfa", "werkgeversrepertorium_beveiligd", "wijzigingsvoorstellen")),
    ):
        for application in applications:
            mops.assign_staff(session, secretariat_enterprise, mandate, person, application, catalogue=catalogue,
                              by=as_sofie)
    for application in ("personeelsbestand", "kbo_prive_gegevens"):
        mops.assign_staff(session, consultancy, form, frank, application, catalogue=catalogue, by=as_frank)


def _logins(session: Session) -> list[DemoLogin]:
    logins = [
        DemoLogin("officer", "portal officer: registers enterprises, links, local administrators; decides proposals"),
        DemoLogin("an.peeters", "local administrator and security officer of Bakkerij De Gouden Korst (employer): "
                                "audit trail, alerts, an open access review"),
        DemoLogin("vera", "security officer of the institution: every enterprise's audit trail, alerts, the chain's "
                          "verification"),
        DemoLogin("chris", "co-administrator of the bakery"),
        DemoLogin("bart", "user of the bakery: DmfA, secured repertory, change proposals"),
        DemoLogin("eva", "user of the bakery whose employment ends in 30 days"),
        DemoLogin("frank", "zaakvoerder and local administrator of Consultancy Vermeulen (no staff), the bakery's "
                           "accountant: acts for it on the personnel file and its private KBO data"),
        DemoLogin("sofie", "local administrator of Sociaal Secretariaat Zuiderpoort: accepts forms, assigns staff"),
        DemoLogin("tom", "secretariat staff: acts for the bakery and Brasserie Het Anker (DmfA, ASR, ...)"),
        DemoLogin("lien", "secretariat staff: acts for Brasserie Het Anker only"),
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
