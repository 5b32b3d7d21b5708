"""Issue 3 on the HTML pages: service providers and mandates.

The employer's page "who can reach our data and why" and its provider form; the provider's
clients, its decision on a form and its staff assignments; a staff member who picks a client
employer and acts for it (with the banner on every page); the portal officer's providers,
affiliations and mandates. Every refusal is a 4xx with a clear message and writes nothing."""
from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from flask_babel import force_locale, gettext, pgettext
from sqlalchemy import select

from access.validators import format_kbo, make_kbo
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import Mandate, MandateApplication, MandateKind, MandateStatus, Provider, ProviderKind, \
    StaffAssignment
from tests.functional.helpers import NothingWritten, audit_since, last_audit_id, location_path, page

DAY = date(2026, 11, 2)       # the frozen clock's Belgian date
Q4_2026 = date(2026, 10, 1)   # the current quarter
Q1_2027 = date(2027, 1, 1)
CONTRACT_DATE = date(2026, 10, 15)
MANDATE_MODELS = (Provider, Mandate, MandateApplication, StaffAssignment)


# --- helpers -----------------------------------------------------------------------------------


def mandate_rows(session) -> dict[str, list[tuple]]:
    session.expire_all()
    return {model.__tablename__: [tuple(row) for row in session.execute(
        select(model.__table__).order_by(*model.__table__.primary_key.columns))] for model in MANDATE_MODELS}


class NothingWrittenAtAll(NothingWritten):
    """NothingWritten, and not a row of providers, mandates, scopes or staff assignments added or changed."""

    def __enter__(self):
        self.mandates_before = mandate_rows(self.session)
        return super().__enter__()

    def __exit__(self, exc_type, exc, tb):
        super().__exit__(exc_type, exc, tb)
        if exc_type is None:
            assert mandate_rows(self.session) == self.mandates_before, "mandate rows changed"


def form_data(provider_kbo: str, **overrides) -> dict:
    values = {"provider_kbo": provider_kbo, "start_date": Q4_2026.isoformat(), "groups": ["asr", "personeelsbestand"],
              "contract_date": CONTRACT_DATE.isoformat(), "contract_reference": "OVK-2026-17",
              "contract_declared": "y"}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def logged_in(visitor, persona, lang: str = "en"):
    browser = visitor(lang=lang)
    response = browser.login(persona.login)
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def mandate(db_session, mandate_id: int) -> Mandate:
    db_session.expire_all()
    return db_session.get(Mandate, mandate_id)


def assignments(db_session, mandate_id: int) -> set[tuple[int, str]]:
    db_session.expire_all()
    return {(a.person_id, a.application) for a in db_session.scalars(select(StaffAssignment).where(
        StaffAssignment.mandate_id == mandate_id, StaffAssignment.revoked_at.is_(None)))}


def has_csrf(form_element_page, action: str) -> bool:
    """The form posting to `action` carries a CSRF token."""
    inside = False
    for element in form_element_page.elements:
        if element.tag == "form":
            inside = element.attrs.get("action") == action
        elif inside and element.tag == "input" and element.attrs.get("name") == "csrf_token":
            return bool(element.attrs.get("value"))
    return False


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """A dozen personas each need a password hash (their initial and their own password). Hashed
    with argon2id's cheapest parameters here: verification reads the parameters from the hash,
    and the password rules are not what these tests are about (tests/unit/access covers them)."""
    from argon2 import PasswordHasher

    from access import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def scene(world, db_session):
    """An employer (with its local administrator, a co-administrator and a user) affiliated with an
    erkend sociaal secretariaat since 1 October 2026; an accountant and a software bureau, registered
    providers; each provider with a local administrator and a staff member; and a second employer."""
    employer = world.employer("Bakkerij Korst")
    admin = world.local_admin(employer)
    co_admin = world.member(employer, admin, "co_admin")
    clerk = world.member(employer, admin, "user", rights=("dmfa",))

    sec_enterprise = world.employer("Sociaal Secretariaat Loonwerk")
    sec_admin = world.local_admin(sec_enterprise)
    sec_staff = world.member(sec_enterprise, sec_admin, "user")
    acc_enterprise = world.non_employer("Boekhouding Cijfer")
    acc_admin = world.local_admin(acc_enterprise)
    acc_staff = world.member(acc_enterprise, acc_admin, "user")
    bureau_enterprise = world.non_employer("Softwarebureau Byte")
    bureau_admin = world.local_admin(bureau_enterprise)
    stranger = world.non_employer("Eenmanszaak Zonder Mandaat")  # registered, but not a provider

    secretariat = mops.register_provider(db_session, sec_enterprise, ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT,
                                         "300/12", by=world.ctx)
    accountant = mops.register_provider(db_session, acc_enterprise, ProviderKind.ACCOUNTANT, by=world.ctx)
    bureau = mops.register_provider(db_session, bureau_enterprise, ProviderKind.SOFTWARE_BUREAU, by=world.ctx)
    affiliation = mops.record_affiliation(db_session, employer, secretariat, Q4_2026, groups=load_groups(),
                                          by=world.ctx, affiliation_number="AF-1234").affiliation
    other_employer = world.employer("Garage Zuid")
    other_admin = world.local_admin(other_employer)
    world.commit()
    return SimpleNamespace(employer=employer, admin=admin, co_admin=co_admin, clerk=clerk,
                           sec_enterprise=sec_enterprise, sec_admin=sec_admin, sec_staff=sec_staff,
                           acc_enterprise=acc_enterprise, acc_admin=acc_admin, acc_staff=acc_staff,
                           bureau_enterprise=bureau_enterprise, bureau_admin=bureau_admin, stranger=stranger,
                           secretariat=secretariat, accountant=accountant, bureau=bureau, affiliation=affiliation,
                           other_employer=other_employer, other_admin=other_admin)


def assign(world, db_session, scene, staff, application: str, mandate_=None, provider_enterprise=None,
           admin=None):
    """The provider's local administrator assigns `staff` (through the operation)."""
    admin = admin or scene.sec_admin
    mops.assign_staff(db_session, provider_enterprise or scene.sec_enterprise, mandate_ or scene.affiliation,
                      staff.person, application, catalogue=world.catalogue,
                      by=world.ctx.as_actor(admin.person.id, admin.login))
    world.commit()


def accountant_form(world, db_session, scene, *, accept: bool = True, groups=("asr",)) -> Mandate:
    """The employer's provider form for the accountant, filed (and accepted) through the operations."""
    form = mops.file_provider_form(db_session, scene.employer, scene.accountant, Q4_2026, list(groups),
                                   contract_declared=True, contract_date=CONTRACT_DATE, contract_reference="C-1",
                                   groups=load_groups(), by=world.ctx.as_actor(scene.admin.id, scene.admin.login))
    if accept:
        mops.decide_provider_form(db_session, form, scene.acc_enterprise, True,
                                  by=world.ctx.as_actor(scene.acc_admin.id, scene.acc_admin.login))
    world.commit()
    return form


# --- 1. the employer: who can reach our data and why --------------------------------------------


def test_employer_page_shows_own_users_providers_and_recent_provider_activity(scene, world, visitor, db_session):
    assign(world, db_session, scene, scene.sec_staff, "dmfa")
    staff = logged_in(visitor, scene.sec_staff)
    assert staff.get(f"/enterprises/{scene.employer.id}/apps/dmfa").status_code == 200

    browser = logged_in(visitor, scene.admin)
    response = browser.get(f"/enterprises/{scene.employer.id}/providers")
    assert response.status_code == 200
    shown = page(response)
    assert shown.find("h1").text.startswith("Who can reach our data and why")
    # (a) own users and their rights
    own = shown.find("table", data_testid="own-users")
    assert scene.admin.name in own.text and "local administrator" in own.text
    clerk_row = shown.find("tr", data_person=str(scene.clerk.id))
    assert "Multifunctional declaration (DmfA)" in clerk_row.text and "user" in clerk_row.text
    # (b) the secretariat: kind, status, grouped applications, period, affiliation number
    row = shown.find("tr", data_mandate=str(scene.affiliation.id))
    for text in ("Sociaal Secretariaat Loonwerk", scene.sec_enterprise.kbo_display, "erkend sociaal secretariaat",
                 "affiliation", "accepted", "DmfA–Dimona", "ASR (social risks)", "from 2026-10-01", "AF-1234"):
        assert text in row.text, text
    assert "Starters and KBO" not in row.text  # not part of a secretariat's automatic access
    # (c) the staff member who acted for it, and through which provider; the employer's own admin is not listed
    activity = shown.find("table", data_testid="provider-activity")
    staff_row = shown.find("tr", data_person=str(scene.sec_staff.id))
    assert staff_row is not None and "Sociaal Secretariaat Loonwerk" in staff_row.text
    assert scene.admin.name not in activity.text
    # the provider form, with its CSRF token and the declaration quoting the law
    action = f"/enterprises/{scene.employer.id}/providers/forms"
    assert has_csrf(shown, action)
    assert "article 16 of the law of 8 December 1992" in shown.text and "article 28" in shown.text
    starts = [o.attrs["value"] for o in shown.find_all("option") if o.attrs.get("value", "").startswith("20")]
    assert starts == ["2026-10-01", "2027-01-01", "2027-04-01", "2027-07-01", "2027-10-01"]
    assert {i.attrs["value"] for i in shown.find_all("input", name="groups")} == {g.code for g in load_groups().all()}


def test_a_co_administrator_sees_the_page_but_not_the_forms(scene, visitor, db_session):
    browser = logged_in(visitor, scene.co_admin)
    shown = page(browser.get(f"/enterprises/{scene.employer.id}/providers"))
    assert shown.find(data_testid="provider-form") is None
    assert shown.find(data_testid=f"end-{scene.affiliation.id}") is None
    with NothingWrittenAtAll(db_session, audit=[("decision:manage_providers", "denied")]):
        response = browser.post(f"/enterprises/{scene.employer.id}/providers/forms", form_data(
            scene.acc_enterprise.kbo_display))
    assert response.status_code == 403
    assert page(response).testid("deny-reason") == \
        f"Only the local administrator of {scene.employer.kbo_display} may do this."
    # a user of the employer does not even see the page
    clerk = logged_in(visitor, scene.clerk)
    assert clerk.get(f"/enterprises/{scene.employer.id}/providers").status_code == 403


def test_provider_form_filed_accepted_assigned_and_used(scene, visitor, db_session):
    """The whole flow through the pages: the employer files, the provider accepts and assigns,
    the staff member picks the employer and acts for it; every page says for whom."""
    employer = logged_in(visitor, scene.admin)
    response = employer.post(f"/enterprises/{scene.employer.id}/providers/forms",
                             form_data(scene.acc_enterprise.kbo_display))
    assert response.status_code == 302, page(response).text
    assert location_path(response) == f"/enterprises/{scene.employer.id}/providers"
    db_session.expire_all()
    filed = db_session.scalar(select(Mandate).where(Mandate.kind == MandateKind.FORM))
    assert (filed.employer_id, filed.provider_id, filed.status, filed.start_date, filed.contract_reference) == \
        (scene.employer.id, scene.accountant.id, MandateStatus.PENDING, Q4_2026, "OVK-2026-17")
    assert {i.application_group for i in filed.scope} == {"asr", "personeelsbestand"}
    shown = page(employer.get(f"/enterprises/{scene.employer.id}/providers"))
    assert "Boekhouding Cijfer" in shown.find("tr", data_mandate=str(filed.id)).text
    assert "pending" in shown.find("tr", data_mandate=str(filed.id)).text

    # the provider's local administrator sees and accepts it
    provider = logged_in(visitor, scene.acc_admin)
    clients = page(provider.get(f"/enterprises/{scene.acc_enterprise.id}/clients"))
    pending = clients.find("table", data_testid="pending-forms")
    assert "Bakkerij Korst" in pending.text and "OVK-2026-17" in pending.text
    assert has_csrf(clients, f"/enterprises/{scene.acc_enterprise.id}/clients/{filed.id}/accept")
    response = provider.post(f"/enterprises/{scene.acc_enterprise.id}/clients/{filed.id}/accept")
    assert response.status_code == 302
    accepted = mandate(db_session, filed.id)
    assert accepted.status is MandateStatus.ACCEPTED and accepted.effective_from == DAY  # later of both

    # ... and assigns its staff member to ASR for this client
    clients = page(provider.get(f"/enterprises/{scene.acc_enterprise.id}/clients"))
    card = clients.find(data_testid=f"client-{filed.id}")
    assert "Bakkerij Korst" in card.text and scene.acc_staff.name in card.text
    response = provider.post(f"/enterprises/{scene.acc_enterprise.id}/clients/{filed.id}/staff/"
                             f"{scene.acc_staff.id}/asr", {"grant": "1"})
    assert response.status_code == 302
    assert assignments(db_session, filed.id) == {(scene.acc_staff.id, "asr")}
    clients = page(provider.get(f"/enterprises/{scene.acc_enterprise.id}/clients"))
    granted = [b.attrs["data-assign"] for b in clients.find_all("button", cls="granted")]
    assert granted == ["asr"]

    # the staff member: only this employer, and acting for it
    staff = logged_in(visitor, scene.acc_staff)
    listing = page(staff.get("/work-for"))
    rows = listing.find_all("tr", data_employer=str(scene.employer.id))
    assert len(rows) == 1 and "Social risk declaration (ASR)" in rows[0].text
    assert listing.find("tr", data_employer=str(scene.other_employer.id)) is None
    start = last_audit_id(db_session)
    response = staff.post(f"/work-for/{scene.employer.id}")
    assert response.status_code == 302
    assert location_path(response) == f"/enterprises/{scene.employer.id}/work"
    started = [r for r in audit_since(db_session, start) if r.action == "acting_for.start"]
    assert [(r.enterprise_id, r.provider_enterprise_id, r.actor_person_id) for r in started] == \
        [(scene.employer.id, scene.acc_enterprise.id, scene.acc_staff.id)]

    expected = (f"Acting for Bakkerij Korst ({scene.employer.kbo_display}) via Boekhouding Cijfer")
    for path in ("/", f"/enterprises/{scene.employer.id}/work", "/work-for", "/repertory"):
        banner = page(staff.get(path)).find(data_testid="acting-banner")
        assert banner is not None and expected in banner.text, path
    work = page(staff.get(f"/enterprises/{scene.employer.id}/work"))
    assert [a.attrs["data-app"] for a in work.find_all("a") if "data-app" in a.attrs] == ["asr"]
    # opening it: the decision carries the person and the provider
    start = last_audit_id(db_session)
    assert staff.get(f"/enterprises/{scene.employer.id}/apps/asr").status_code == 200
    (decision,) = [r for r in audit_since(db_session, start) if r.action == "decision:open"]
    assert (decision.actor_person_id, decision.enterprise_id, decision.provider_enterprise_id, decision.outcome) == \
        (scene.acc_staff.id, scene.employer.id, scene.acc_enterprise.id, "allowed")

    # stop acting: the banner is gone
    assert staff.post("/work-for/stop").status_code == 302
    assert page(staff.get("/")).find(data_testid="acting-banner") is None


def test_provider_declines_and_employer_withdraws(scene, world, visitor, db_session):
    declined = accountant_form(world, db_session, scene, accept=False)
    provider = logged_in(visitor, scene.acc_admin)
    assert provider.post(f"/enterprises/{scene.acc_enterprise.id}/clients/{declined.id}/decline").status_code == 302
    assert mandate(db_session, declined.id).status is MandateStatus.DECLINED
    # deciding it again is refused, and writes nothing
    with NothingWrittenAtAll(db_session, audit=1):
        response = provider.post(f"/enterprises/{scene.acc_enterprise.id}/clients/{declined.id}/accept")
    assert response.status_code == 409
    assert "no longer pending (it is declined)" in page(response).form_errors[0]

    pending = accountant_form(world, db_session, scene, accept=False)
    employer = logged_in(visitor, scene.admin)
    response = employer.post(f"/enterprises/{scene.employer.id}/providers/{pending.id}/end")
    assert response.status_code == 302
    assert mandate(db_session, pending.id).status is MandateStatus.WITHDRAWN
    assert "withdrawn" in " ".join(page(employer.get(f"/enterprises/{scene.employer.id}/providers")).flashes)


def test_employer_ends_a_relationship_and_staff_lose_access_at_once(scene, world, visitor, db_session, clock):
    assign(world, db_session, scene, scene.sec_staff, "dmfa")
    staff = logged_in(visitor, scene.sec_staff)
    assert staff.post(f"/work-for/{scene.employer.id}").status_code == 302
    assert page(staff.get("/")).find(data_testid="acting-banner") is not None

    employer = logged_in(visitor, scene.admin)
    response = employer.post(f"/enterprises/{scene.employer.id}/providers/{scene.affiliation.id}/end",
                             {"end_date": DAY.isoformat()})
    assert response.status_code == 302, page(response).text
    assert mandate(db_session, scene.affiliation.id).end_date == DAY
    # the last day is inclusive; the day after, no access and no banner (dropped silently)
    assert staff.get(f"/enterprises/{scene.employer.id}/apps/dmfa").status_code == 200
    clock.advance(days=1)
    staff.relogin()  # a day later: a new session (the old one timed out)
    response = staff.get(f"/enterprises/{scene.employer.id}/apps/dmfa")
    assert response.status_code == 403
    assert page(response).testid("deny-reason") == (
        f"Sociaal Secretariaat Loonwerk ({scene.sec_enterprise.kbo_display}) has no mandate of "
        f"{scene.employer.kbo_display} in force on 2026-11-03.")
    home = page(staff.get("/"))
    assert home.find(data_testid="acting-banner") is None
    assert page(staff.get("/work-for")).find(data_testid="no-clients") is not None


# --- refusals on the employer side: 4xx, a message at the field, nothing written ---------------


def test_a_third_provider_is_refused_naming_the_current_one(scene, world, visitor, db_session):
    accountant_form(world, db_session, scene)
    browser = logged_in(visitor, scene.admin)
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"/enterprises/{scene.employer.id}/providers/forms",
                                form_data(scene.bureau_enterprise.kbo_display))
    assert response.status_code == 409
    (error,) = page(response).field_errors("provider_kbo")
    assert "only one other provider" in error
    assert f"Boekhouding Cijfer ({scene.acc_enterprise.kbo_display})" in error


@pytest.mark.parametrize("overrides, field, expected", [
    ({"contract_declared": None}, "contract_declared", "article 16 of the law of 8 December 1992"),
    ({"start_date": "2027-02-01"}, "start_date", "first day of a quarter"),
    ({"start_date": "2026-07-01"}, "start_date", "current quarter or a later one"),
    ({"start_date": "not-a-date"}, "start_date", "Choose the quarter"),
    ({"groups": None}, "groups", "at least one group"),
    ({"groups": ["asr", "everything"]}, "groups", "Unknown group of applications 'everything'"),
    ({"contract_date": None}, "contract_date", "The date of the contract is required"),
    ({"contract_date": "2027-01-01"}, "contract_date", "cannot lie in the future"),
    ({"contract_reference": ""}, "contract_reference", "required"),
])
def test_invalid_provider_forms_are_refused_at_the_field(scene, visitor, db_session, overrides, field, expected):
    browser = logged_in(visitor, scene.admin)
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"/enterprises/{scene.employer.id}/providers/forms",
                                form_data(scene.acc_enterprise.kbo_display, **overrides))
    assert response.status_code == 422
    errors = page(response).field_errors(field)
    assert errors and expected in errors[0], errors


@pytest.mark.parametrize("kbo_of, expected", [
    ("stranger", "is not a registered service provider"),
    ("unknown", "is not a registered service provider"),
    ("garbage", "KBO"),
    ("secretariat", "is already the erkend sociaal secretariaat"),
])
def test_the_provider_must_be_registered(scene, visitor, db_session, kbo_of, expected):
    kbo = {"stranger": scene.stranger.kbo_display, "unknown": format_kbo(make_kbo(9_876_543)),
           "garbage": "12345",
           "secretariat": scene.sec_enterprise.kbo_display}[kbo_of]
    browser = logged_in(visitor, scene.admin)
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"/enterprises/{scene.employer.id}/providers/forms", form_data(kbo))
    assert response.status_code in (409, 422)
    errors = page(response).field_errors("provider_kbo")
    assert errors and expected in errors[0], errors


def test_end_date_before_the_start_date_is_refused(scene, visitor, db_session):
    browser = logged_in(visitor, scene.admin)
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"/enterprises/{scene.employer.id}/providers/{scene.affiliation.id}/end",
                                {"end_date": "2026-09-30"})
    assert response.status_code == 422
    (error,) = page(response).find_all("p", cls="error", data_field="end_date")
    assert "cannot be before the start date (2026-10-01)" in error.text
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"/enterprises/{scene.employer.id}/providers/{scene.affiliation.id}/end", {})
    assert response.status_code == 422
    assert "The end date is required" in page(response).text


def test_another_employers_mandate_is_not_found(scene, visitor, db_session):
    """The other employer's administrator aims at Bakkerij Korst's affiliation from his own page."""
    browser = logged_in(visitor, scene.other_admin)
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"/enterprises/{scene.other_employer.id}/providers/{scene.affiliation.id}/end",
                                {"end_date": DAY.isoformat()})
    assert response.status_code == 404
    assert mandate(db_session, scene.affiliation.id).end_date is None
    # and on the employer's own URL the decision point refuses him
    with NothingWrittenAtAll(db_session, audit=[("decision:manage_providers", "denied")]):
        response = browser.post(f"/enterprises/{scene.employer.id}/providers/{scene.affiliation.id}/end",
                                {"end_date": DAY.isoformat()})
    assert response.status_code == 403


def test_posts_without_csrf_are_refused(scene, visitor, db_session):
    browser = logged_in(visitor, scene.admin)
    with NothingWrittenAtAll(db_session):
        response = browser.post(f"/enterprises/{scene.employer.id}/providers/forms",
                                form_data(scene.acc_enterprise.kbo_display), csrf=False)
    assert response.status_code == 400
    with NothingWrittenAtAll(db_session):
        assert browser.post(f"/work-for/{scene.employer.id}", csrf=False).status_code == 400


# --- the provider side -----------------------------------------------------------------------------


def test_assigning_staff_to_another_providers_client_is_not_found(scene, world, visitor, db_session):
    """The accountant's administrator aims at the secretariat's client: 404, and nothing written."""
    accountant_form(world, db_session, scene)
    browser = logged_in(visitor, scene.acc_admin)
    for path in (f"/enterprises/{scene.acc_enterprise.id}/clients/{scene.affiliation.id}/staff/"
                 f"{scene.acc_staff.id}/dmfa",
                 f"/enterprises/{scene.acc_enterprise.id}/clients/{scene.affiliation.id}/accept"):
        with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
            response = browser.post(path, {"grant": "1"})
        assert response.status_code == 404, path
    # and the secretariat's page is not his: refused by the decision point
    with NothingWrittenAtAll(db_session, audit=[("decision:view", "denied")]):
        assert browser.get(f"/enterprises/{scene.sec_enterprise.id}/clients").status_code == 403


def test_staff_assignment_stays_within_the_mandate(scene, world, visitor, db_session):
    form = accountant_form(world, db_session, scene, groups=("asr",))
    browser = logged_in(visitor, scene.acc_admin)
    base = f"/enterprises/{scene.acc_enterprise.id}/clients/{form.id}/staff"
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"{base}/{scene.acc_staff.id}/dmfa", {"grant": "1"})
    assert response.status_code == 422
    assert "Multifunctional declaration (DmfA) is not within the mandate" in page(response).form_errors[0]
    # a person who is not the provider's staff
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"{base}/{scene.sec_staff.id}/asr", {"grant": "1"})
    assert response.status_code == 422
    assert "is not designated as staff" in page(response).form_errors[0]
    # withdrawing an assignment that does not exist; a missing grant value
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        assert browser.post(f"{base}/{scene.acc_staff.id}/asr", {"grant": "0"}).status_code == 404
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        assert browser.post(f"{base}/{scene.acc_staff.id}/asr").status_code == 422
    # assign, then withdraw
    assert browser.post(f"{base}/{scene.acc_staff.id}/asr", {"grant": "1"}).status_code == 302
    assert assignments(db_session, form.id) == {(scene.acc_staff.id, "asr")}
    assert browser.post(f"{base}/{scene.acc_staff.id}/asr", {"grant": "0"}).status_code == 302
    assert assignments(db_session, form.id) == set()


def test_clients_page_of_an_enterprise_that_is_no_provider(scene, visitor, db_session):
    browser = logged_in(visitor, scene.admin)
    response = browser.get(f"/enterprises/{scene.employer.id}/clients")
    assert response.status_code == 404
    assert "is not registered as a service provider" in page(response).text


def test_only_the_providers_local_administrator_decides_a_form(scene, world, visitor, db_session):
    form = accountant_form(world, db_session, scene, accept=False)
    co_admin = world.member(scene.acc_enterprise, scene.acc_admin, "co_admin")
    browser = logged_in(visitor, co_admin)
    clients = page(browser.get(f"/enterprises/{scene.acc_enterprise.id}/clients"))
    assert clients.find(data_testid=f"accept-{form.id}") is None
    with NothingWrittenAtAll(db_session, audit=[("decision:decide_mandates", "denied")]):
        response = browser.post(f"/enterprises/{scene.acc_enterprise.id}/clients/{form.id}/accept")
    assert response.status_code == 403


# --- the staff member --------------------------------------------------------------------------


def test_staff_member_cannot_act_for_an_employer_that_does_not_mandate_his_provider(scene, world, visitor,
                                                                                      db_session):
    assign(world, db_session, scene, scene.sec_staff, "dmfa")
    staff = logged_in(visitor, scene.sec_staff)
    listing = page(staff.get("/work-for"))
    assert [r.attrs["data-employer"] for r in listing.find_all("tr") if "data-employer" in r.attrs] == \
        [str(scene.employer.id)]
    with NothingWrittenAtAll(db_session, audit=[("decision:act_for", "denied")]):
        response = staff.post(f"/work-for/{scene.other_employer.id}")
    assert response.status_code == 403
    assert page(response).testid("deny-reason") == (
        f"You are not under the direct authority of {scene.other_employer.kbo_display} on {DAY.isoformat()}, "
        "so no role or right in it can be used.")
    assert page(staff.get("/")).find(data_testid="acting-banner") is None
    with NothingWrittenAtAll(db_session, audit=[("decision:list_work", "denied")]):
        assert staff.get(f"/enterprises/{scene.other_employer.id}/work").status_code == 403
    with NothingWrittenAtAll(db_session, audit=[("decision:open", "denied")]):
        assert staff.get(f"/enterprises/{scene.other_employer.id}/apps/dmfa").status_code == 403


def test_staff_member_outside_his_assignment_is_refused_with_the_reason(scene, world, visitor, db_session):
    assign(world, db_session, scene, scene.sec_staff, "dmfa")
    staff = logged_in(visitor, scene.sec_staff)
    provider = f"Sociaal Secretariaat Loonwerk ({scene.sec_enterprise.kbo_display})"
    response = staff.get(f"/enterprises/{scene.employer.id}/apps/asr")
    assert response.status_code == 403
    assert page(response).testid("deny-reason") == \
        f"{provider} has not assigned you to work for {scene.employer.kbo_display} on Social risk declaration (ASR)."
    response = staff.get(f"/enterprises/{scene.employer.id}/apps/kbo_prive_gegevens")
    assert response.status_code == 403
    assert page(response).testid("deny-reason").endswith(
        f" is not within the mandate {scene.employer.kbo_display} gave {provider}.")
    # the employer's access management is never reachable under mandate
    assert staff.get(f"/enterprises/{scene.employer.id}/providers").status_code == 403
    # the path of an allowed page names every step
    work = page(staff.get(f"/enterprises/{scene.employer.id}/work"))
    footer = work.find(data_testid="access-path").text
    for text in (f"{provider} is the erkend sociaal secretariaat of {scene.employer.kbo_display} since 2026-10-01",
                 "Multifunctional declaration (DmfA) within the mandate (group DmfA–Dimona)",
                 f"assigned to {scene.employer.kbo_display} for Multifunctional declaration (DmfA) by "
                 f"{scene.sec_admin.name} on 2026-11-02"):
        assert text in footer, footer


def test_a_former_staff_member_is_dropped_from_the_banner(scene, world, visitor, db_session):
    assign(world, db_session, scene, scene.sec_staff, "dmfa")
    staff = logged_in(visitor, scene.sec_staff)
    assert staff.post(f"/work-for/{scene.employer.id}").status_code == 302
    admin = logged_in(visitor, scene.sec_admin)
    response = admin.post(f"/enterprises/{scene.sec_enterprise.id}/clients/{scene.affiliation.id}/staff/"
                          f"{scene.sec_staff.id}/dmfa", {"grant": "0"})
    assert response.status_code == 302
    assert page(staff.get("/")).find(data_testid="acting-banner") is None
    assert staff.get(f"/enterprises/{scene.employer.id}/apps/dmfa").status_code == 403


def test_dashboard_links(scene, world, visitor, db_session):
    assign(world, db_session, scene, scene.sec_staff, "dmfa")
    staff = page(logged_in(visitor, scene.sec_staff).get("/"))
    card = staff.find(data_testid="work-for")
    assert card is not None and "Bakkerij Korst" in card.text
    assert staff.find("a", href="/work-for") is not None

    employer = page(logged_in(visitor, scene.admin).get("/"))
    assert employer.find("a", href=f"/enterprises/{scene.employer.id}/providers") is not None
    assert employer.find(data_testid="clients-link") is None
    assert employer.find(data_testid="work-for") is None

    provider = page(logged_in(visitor, scene.sec_admin).get("/"))
    assert provider.find("a", href=f"/enterprises/{scene.sec_enterprise.id}/clients") is not None
    # a non-employer provider (the accountant) has no providers of its own
    accountant = page(logged_in(visitor, scene.acc_admin).get("/"))
    assert accountant.find("a", href=f"/enterprises/{scene.acc_enterprise.id}/clients") is not None
    assert accountant.find("a", href=f"/enterprises/{scene.acc_enterprise.id}/providers") is None


def test_work_for_needs_a_login(visitor):
    response = visitor().get("/work-for")
    assert response.status_code == 302 and location_path(response) == "/login"


# --- the portal officer --------------------------------------------------------------------------


def test_officer_registers_providers(scene, world, officer_web, db_session):
    shown = page(officer_web.get("/officer/providers"))
    for name in ("Sociaal Secretariaat Loonwerk", "Boekhouding Cijfer", "Softwarebureau Byte"):
        assert name in shown.find("table", data_testid="providers").text
    assert has_csrf(shown, "/officer/providers")
    newcomer = world.employer("Secretariaat Nieuw")
    response = officer_web.post("/officer/providers", {"kbo": newcomer.kbo_display,
                                                       "kind": "erkend_sociaal_secretariaat",
                                                       "recognition_number": "300/77"})
    assert response.status_code == 302
    db_session.expire_all()
    registered = db_session.scalar(select(Provider).where(Provider.enterprise_id == newcomer.id))
    assert (registered.kind, registered.recognition_number) == (ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/77")

    refusals = [
        ({"kbo": format_kbo(make_kbo(9_876_543)), "kind": "accountant"}, "kbo", "is registered", 422),
        ({"kbo": scene.stranger.kbo_display, "kind": "erkend_sociaal_secretariaat"}, "recognition_number",
         "needs its recognition number", 422),
        ({"kbo": scene.stranger.kbo_display, "kind": "accountant", "recognition_number": "1"},
         "recognition_number", "Only an erkend sociaal secretariaat", 422),
        ({"kbo": scene.stranger.kbo_display, "kind": "notary"}, "kind", "Unknown kind of provider", 422),
        ({"kbo": scene.acc_enterprise.kbo_display, "kind": "accountant"}, "kbo", "already registered", 409),
        ({"kbo": scene.stranger.kbo_display, "kind": "erkend_sociaal_secretariaat", "recognition_number": "300/12"},
         "recognition_number", "belongs to another secretariat", 409),
    ]
    for data, field, expected, status in refusals:
        with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
            response = officer_web.post("/officer/providers", data)
        assert response.status_code == status, data
        errors = page(response).field_errors(field)
        assert errors and expected in errors[0], (data, errors)


def test_officer_records_an_affiliation_and_a_switch_with_warnings(scene, world, officer_web, db_session):
    employer = scene.other_employer
    base = f"/officer/enterprises/{employer.id}"
    shown = page(officer_web.get(base))
    assert has_csrf(shown, f"{base}/affiliations")
    data = {"secretariat_kbo": scene.sec_enterprise.kbo_display, "start_date": "2026-07-01",
            "affiliation_number": "AF-77", "minimum_term_months": "36", "notice_months": "6"}
    # not the first day of a quarter; not a secretariat
    for overrides, field, expected in [({"start_date": "2026-08-01"}, "start_date", "first day of a quarter"),
                                       ({"secretariat_kbo": scene.acc_enterprise.kbo_display}, "secretariat_kbo",
                                        "is not an erkend sociaal secretariaat"),
                                       ({"secretariat_kbo": scene.stranger.kbo_display}, "secretariat_kbo",
                                        "is not a registered service provider"),
                                       ({"minimum_term_months": "500"}, "minimum_term_months", "between 0 and 120")]:
        with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
            response = officer_web.post(f"{base}/affiliations", {**data, **overrides})
        assert response.status_code == 422, overrides
        errors = page(response).field_errors(field)
        assert errors and expected in errors[0], (overrides, errors)
    assert officer_web.post(f"{base}/affiliations", data).status_code == 302
    db_session.expire_all()
    first = db_session.scalar(select(Mandate).where(Mandate.employer_id == employer.id))
    assert (first.start_date, first.affiliation_number, first.minimum_term_months) == (date(2026, 7, 1), "AF-77", 36)

    # a switch to another secretariat on 1 January 2027: the 3-year term and the 6-month notice are not respected
    other = mops.register_provider(db_session, world.employer("Secretariaat Ander"),
                                   ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/55", by=world.ctx)
    world.commit()
    switch = {"secretariat_kbo": other.enterprise.kbo_display, "start_date": "2027-01-01",
              "notice_date": "2026-11-01", "minimum_term_months": "36", "notice_months": "6"}
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = officer_web.post(f"{base}/affiliations", switch)
    assert response.status_code == 422
    warned = page(response).find(data_testid="switch-warnings")
    assert "minimum term of 36 months" in warned.text and "runs until 2029-07-01" in warned.text
    assert "a notice of 6 months ends on 2027-05-01" in warned.text
    assert page(response).find("input", name="acknowledge_warnings") is not None
    response = officer_web.post(f"{base}/affiliations", {**switch, "acknowledge_warnings": "y"})
    assert response.status_code == 302
    assert (mandate(db_session, first.id).end_date, mandate(db_session, first.id).notice_date) == \
        (date(2026, 12, 31), date(2026, 11, 1))
    shown = page(officer_web.get(base))
    assert "Secretariaat Ander" in shown.find("table", data_testid="employer-mandates").text
    # the repertory shows the current secretariat (still the first one until the switch)
    record = page(officer_web.get(f"/repertory/{employer.kbo_number}"))
    assert record.testid("secretariat").startswith(
        f"Sociaal Secretariaat Loonwerk ({scene.sec_enterprise.kbo_display})")


def test_officer_lists_filters_revokes_and_ends_mandates(scene, world, officer_web, db_session):
    form = accountant_form(world, db_session, scene)
    shown = page(officer_web.get("/officer/mandates"))
    assert {r.attrs["data-mandate"] for r in shown.find_all("tr") if "data-mandate" in r.attrs} >= \
        {str(form.id), str(scene.affiliation.id)}
    assert shown.find(data_testid=f"revoke-{form.id}") is not None
    assert shown.find(data_testid=f"revoke-{scene.affiliation.id}") is None  # an affiliation is ended, not revoked
    def listed(status: str) -> dict[str, str]:
        shown = page(officer_web.get(f"/officer/mandates?status={status}"))
        return {r.attrs["data-mandate"]: r.attrs["data-status"]
                for r in shown.find_all("tr") if "data-mandate" in r.attrs}

    accepted = listed("accepted")
    assert {str(form.id), str(scene.affiliation.id)} <= set(accepted) and set(accepted.values()) == {"accepted"}
    assert str(form.id) not in listed("pending") and str(form.id) not in listed("revoked")
    assert officer_web.get("/officer/mandates?status=bogus").status_code == 422

    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = officer_web.post(f"/officer/mandates/{scene.affiliation.id}/revoke")
    assert response.status_code == 422
    assert "is ended, not revoked" in page(response).find("p", data_field=f"mandate-{scene.affiliation.id}").text
    assert officer_web.post(f"/officer/mandates/{form.id}/revoke").status_code == 302
    assert mandate(db_session, form.id).status is MandateStatus.REVOKED
    assert listed("revoked") == {str(form.id): "revoked"}

    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = officer_web.post(f"/officer/mandates/{scene.affiliation.id}/end", {"end_date": "2026-09-01"})
    assert response.status_code == 422
    response = officer_web.post(f"/officer/mandates/{scene.affiliation.id}/end", {"end_date": "2026-12-31"})
    assert response.status_code == 302
    assert mandate(db_session, scene.affiliation.id).end_date == date(2026, 12, 31)
    assert officer_web.post("/officer/mandates/999999/end", {"end_date": "2026-12-31"}).status_code == 404


def test_officer_pages_are_for_officers_only(scene, visitor, db_session):
    browser = logged_in(visitor, scene.admin)
    for path in ("/officer/providers", "/officer/mandates"):
        with NothingWrittenAtAll(db_session, audit=1, outcome="denied"):
            assert browser.get(path).status_code == 403
    with NothingWrittenAtAll(db_session, audit=1, outcome="denied"):
        assert browser.post(f"/officer/mandates/{scene.affiliation.id}/end",
                            {"end_date": "2026-12-31"}).status_code == 403


# --- the repertory and the languages ------------------------------------------------------------


def test_repertory_records_name_the_affiliated_secretariat(scene, visitor):
    anonymous = visitor()
    record = page(anonymous.get(f"/repertory/{scene.employer.kbo_number}"))
    assert record.testid("secretariat") == (f"Sociaal Secretariaat Loonwerk ({scene.sec_enterprise.kbo_display}), "
                                           "recognition number 300/12, since 2026-10-01")
    assert page(anonymous.get(f"/repertory/{scene.other_employer.kbo_number}")).testid("secretariat") == \
        "none recorded"
    secured = page(logged_in(visitor, scene.admin).get(f"/enterprises/{scene.employer.id}/repertory"))
    assert secured.testid("secretariat").startswith("Sociaal Secretariaat Loonwerk")


@pytest.mark.parametrize("lang", ["nl", "fr"])
def test_pages_and_reasons_are_translated(app, scene, world, visitor, db_session, lang):
    assign(world, db_session, scene, scene.sec_staff, "dmfa")
    staff = logged_in(visitor, scene.sec_staff, lang=lang)
    assert staff.post(f"/lang/{lang}", {"next": "/"}).status_code == 302
    response = staff.get(f"/enterprises/{scene.employer.id}/apps/asr")
    assert response.status_code == 403
    provider = f"Sociaal Secretariaat Loonwerk ({scene.sec_enterprise.kbo_display})"
    with app.test_request_context(), force_locale(lang):
        expected = gettext("%(provider)s has not assigned you to work for %(kbo)s on %(application)s.",
                           provider=provider, kbo=scene.employer.kbo_display,
                           application=world.catalogue.get("asr").name(lang))
        banner = gettext("Acting for %(name)s (%(kbo)s) via %(provider)s", name="Bakkerij Korst",
                         kbo=scene.employer.kbo_display, provider="Sociaal Secretariaat Loonwerk")
        title = gettext("Who can reach our data and why")
        accepted = pgettext("mandate status", "accepted")
        refusal = gettext("Declare that a written contract with this provider exists, with the mentions of article 16 "
                          "of the law of 8 December 1992 (today article 28 GDPR): without it no provider may be "
                          "appointed.")
    assert "has not assigned you" not in expected and "written contract" not in refusal  # translated
    assert page(response).testid("deny-reason") == expected
    assert staff.post(f"/work-for/{scene.employer.id}").status_code == 302
    assert banner in page(staff.get("/")).find(data_testid="acting-banner").text
    employer = logged_in(visitor, scene.admin, lang=lang)
    employer.post(f"/lang/{lang}", {"next": "/"})
    shown = page(employer.get(f"/enterprises/{scene.employer.id}/providers"))
    assert shown.find("html").attrs["lang"] == lang
    assert shown.find("h1").text.startswith(title)
    assert accepted in shown.find("tr", data_mandate=str(scene.affiliation.id)).text
    with NothingWrittenAtAll(db_session, audit=1, outcome="allowed"):
        response = employer.post(f"/enterprises/{scene.employer.id}/providers/forms",
                                 form_data(scene.acc_enterprise.kbo_display, contract_declared=None))
    assert page(response).field_errors("contract_declared") == [refusal]
