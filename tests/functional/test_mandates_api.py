"""Issue 3 through the JSON API: the officer registers providers and affiliations, the employer files
and ends provider forms and sees who can reach its data, the provider accepts forms and assigns its
staff, and a staff member acts for a client employer along the mandate path only. Every refusal of
the issue answers 4xx problem+json and writes nothing."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from access.validators import format_kbo, make_kbo
from audit.models import AuditRecord
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import Mandate, MandateApplication, MandateStatus, Provider, ProviderKind, StaffAssignment
from tests.functional.helpers import NothingWritten, Persona, audit_since, last_audit_id, problem_of

# The clock fixture stands on Monday 2026-11-02: the current quarter started on 2026-10-01.
Q4_2026, Q1_2027 = date(2026, 10, 1), date(2027, 1, 1)
CONTRACT = {"contract_declared": True, "contract_date": "2026-10-15", "contract_reference": "CT-2026-17"}
GROUPS = load_groups()
MANDATE_TABLES = (Provider, Mandate, MandateApplication, StaffAssignment)


class Unchanged(NothingWritten):
    """NothingWritten, and not a row of the mandate tables added, changed or removed either."""

    def _mandate_rows(self):
        self.session.expire_all()
        return {model.__tablename__: [tuple(row) for row in self.session.execute(
            select(model.__table__).order_by(*model.__table__.primary_key.columns)).all()]
            for model in MANDATE_TABLES}

    def __enter__(self) -> "Unchanged":
        self.mandate_rows = self._mandate_rows()
        return super().__enter__()

    def __exit__(self, exc_type, exc, tb) -> None:
        super().__exit__(exc_type, exc, tb)
        if exc_type is None:
            assert self._mandate_rows() == self.mandate_rows, "a refusal changed the mandate tables"


class Scene:
    """Providers, their administrators and staff, and mandates, made through the operations."""

    def __init__(self, world, visitor) -> None:
        self.world, self.visitor, self.session = world, visitor, world.session

    def provider(self, name: str, kind: ProviderKind = ProviderKind.ACCOUNTANT, number: str | None = None):
        enterprise = self.world.employer(name) if kind is ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT \
            else self.world.non_employer(name)
        provider = mops.register_provider(self.session, enterprise, kind, number, by=self.world.ctx)
        self.world.commit()
        return provider, self.world.local_admin(enterprise)

    def staff(self, provider: Provider, admin: Persona, **kwargs) -> Persona:
        return self.world.member(provider.enterprise, admin, **kwargs)

    def affiliate(self, employer, secretariat: Provider, start: date = Q4_2026, **kwargs) -> Mandate:
        result = mops.record_affiliation(self.session, employer, secretariat, start, groups=GROUPS,
                                         by=self.world.ctx, **kwargs)
        self.world.commit()
        return result.affiliation

    def form(self, employer, admin: Persona, provider: Provider, start: date = Q4_2026, groups=("asr",),
             accept: bool | None = None, provider_admin: Persona | None = None) -> Mandate:
        mandate = mops.file_provider_form(self.session, employer, provider, start, list(groups),
                                          contract_declared=True, contract_date=date(2026, 10, 15),
                                          contract_reference="CT-1", groups=GROUPS, by=self.as_(admin))
        if accept is not None:
            mops.decide_provider_form(self.session, mandate, provider.enterprise, accept, by=self.as_(provider_admin))
        self.world.commit()
        return mandate

    def assign(self, provider: Provider, admin: Persona, mandate: Mandate, staff: Persona, *applications: str):
        for application in applications:
            mops.assign_staff(self.session, provider.enterprise, mandate, staff.person, application,
                              catalogue=self.world.catalogue, by=self.as_(admin))
        self.world.commit()

    def as_(self, persona: Persona):
        return self.world.ctx.as_actor(persona.person.id, persona.login)

    def api(self, persona: Persona):
        browser = self.visitor()
        response = browser.api_login(persona.login, persona.password)
        assert response.status_code == 200, response.get_data(as_text=True)
        return browser

    def mandate(self, mandate_id: int) -> Mandate:
        self.session.expire_all()
        return self.session.get(Mandate, mandate_id)


@pytest.fixture
def scene(world, visitor):
    return Scene(world, visitor)


@pytest.fixture
def shop(scene, world):
    """An employer affiliated with an erkend sociaal secretariaat since 2026-10-01; the secretariat has
    a local administrator and a staff member; an accountant and a software bureau are registered too."""
    employer = world.employer("Bakkerij Korst")
    admin = world.local_admin(employer)
    secretariat, secretariat_admin = scene.provider("Sociaal Secretariaat Loon",
                                                    ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/17")
    accountant, accountant_admin = scene.provider("Boekhouding Cijfer")
    bureau, bureau_admin = scene.provider("Softwarehuis Bit", ProviderKind.SOFTWARE_BUREAU)
    affiliation = scene.affiliate(employer, secretariat, affiliation_number="AF-0042")
    return dict(employer=employer, admin=admin, secretariat=secretariat, secretariat_admin=secretariat_admin,
                staff=scene.staff(secretariat, secretariat_admin), affiliation=affiliation,
                accountant=accountant, accountant_admin=accountant_admin,
                accountant_staff=scene.staff(accountant, accountant_admin),
                bureau=bureau, bureau_admin=bureau_admin)


def _records(db_session, start: int, action: str) -> list[AuditRecord]:
    return [r for r in audit_since(db_session, start) if r.action == action]


# --- the officer: providers -------------------------------------------------------------------


def test_officer_registers_providers_and_lists_them(world, officer_api, db_session):
    secretariat, accountant = world.employer("Secretariaat Plus"), world.non_employer("Cijfers en Co")
    start = last_audit_id(db_session)
    response = officer_api.api("POST", "/api/v1/providers", {"kbo": secretariat.kbo_display,
                                                             "kind": "erkend_sociaal_secretariaat",
                                                             "recognition_number": "300/55"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["kind"], body["recognition_number"]) == ("erkend_sociaal_secretariaat", "300/55")
    assert body["enterprise"] == {"id": secretariat.id, "kbo": secretariat.kbo_number, "name": "Secretariaat Plus"}
    response = officer_api.api("POST", "/api/v1/providers", {"kbo": accountant.kbo_number, "kind": "accountant"})
    assert response.status_code == 201 and response.get_json()["recognition_number"] is None

    listed = officer_api.api("GET", "/api/v1/providers").get_json()
    assert [(p["enterprise"]["name"], p["kind"]) for p in listed] == \
        [("Cijfers en Co", "accountant"), ("Secretariaat Plus", "erkend_sociaal_secretariaat")]
    registered = _records(db_session, start, "provider.register")
    assert [r.enterprise_id for r in registered] == [secretariat.id, accountant.id]
    assert registered[0].details["after"] == {"kind": "erkend_sociaal_secretariaat", "recognition_number": "300/55"}


PROVIDER_REFUSALS = [  # (id, body overrides, status, field, detail fragment)
    ("secretariat-without-number", {"kind": "erkend_sociaal_secretariaat"}, 422, "recognition_number",
     "needs its recognition number"),
    ("accountant-with-number", {"recognition_number": "300/99"}, 422, "recognition_number",
     "Only an erkend sociaal secretariaat has a recognition number"),
    ("unknown-kind", {"kind": "notaris"}, 422, "kind", "Input should be"),
    ("kbo-check-digits", {"kbo": make_kbo(4_950_001)[:-2] + "00"}, 422, "kbo", "fails the check digits"),
    ("kbo-not-registered", {"kbo": make_kbo(4_950_001)}, 404, "kbo",
     f"No enterprise {format_kbo(make_kbo(4_950_001))} is registered."),
    ("already-a-provider", {"kbo": "accountant"}, 409, "kbo", "is already registered as a service provider"),
    ("control-characters", {"recognition_number": "300\x0117", "kind": "erkend_sociaal_secretariaat"}, 422,
     "recognition_number", "String should match pattern"),
]


@pytest.mark.parametrize("overrides,status,field,fragment", [r[1:] for r in PROVIDER_REFUSALS],
                         ids=[r[0] for r in PROVIDER_REFUSALS])
def test_provider_registration_refusals(world, officer_api, db_session, overrides, status, field, fragment):
    accountant = world.non_employer("Al Boekhouder")
    mops.register_provider(db_session, accountant, ProviderKind.ACCOUNTANT, by=world.ctx)
    world.commit()
    body = {"kbo": world.non_employer("Nog Geen Dienstverlener").kbo_number, "kind": "accountant", **overrides}
    if body["kbo"] == "accountant":
        body["kbo"] = accountant.kbo_number
    # Bodies refused by their schema never reach the gate: no decision record either.
    audit = "none" if field == "kind" or "pattern" in fragment else 1
    with Unchanged(db_session, audit=audit, outcome="allowed"):
        response = officer_api.api("POST", "/api/v1/providers", body)
    problem = problem_of(response, status)
    assert problem["field"] == field and fragment in problem["detail"], problem


def test_only_officers_register_providers_and_affiliations(shop, scene, db_session):
    admin = scene.api(shop["admin"])
    with Unchanged(db_session, audit=1, outcome="denied"):
        response = admin.api("POST", "/api/v1/providers", {"kbo": shop["employer"].kbo_number, "kind": "accountant"})
    assert problem_of(response, 403, "not-portal-officer")["detail"] == "only portal officers may do this"
    for method, path, body in [
            ("GET", "/api/v1/providers", None), ("GET", "/api/v1/mandates", None),
            ("POST", f"/api/v1/enterprises/{shop['employer'].id}/affiliations",
             {"secretariat_kbo": shop["secretariat"].enterprise.kbo_number, "start_date": "2027-01-01"}),
            ("POST", f"/api/v1/mandates/{shop['affiliation'].id}/end", {"end_date": "2026-12-31"}),
            ("POST", f"/api/v1/mandates/{shop['affiliation'].id}/revoke", None)]:
        with Unchanged(db_session, audit=1, outcome="denied"):
            problem_of(admin.api(method, path, body), 403, "not-portal-officer")


# --- the officer: affiliations ----------------------------------------------------------------


def test_officer_records_an_affiliation_and_the_secretariat_is_the_provider(scene, world, officer_api, db_session):
    employer = world.employer("Slagerij Vlees")
    secretariat, secretariat_admin = scene.provider("Secretariaat Oost", ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT,
                                                    "300/21")
    start = last_audit_id(db_session)
    response = officer_api.api("POST", f"/api/v1/enterprises/{employer.id}/affiliations", {
        "secretariat_kbo": secretariat.enterprise.kbo_display, "start_date": "2027-01-01",
        "affiliation_number": "AF-77"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["ended"], body["warnings"]) == (None, [])
    affiliation = body["affiliation"]
    assert (affiliation["kind"], affiliation["status"], affiliation["start_date"], affiliation["effective_from"],
            affiliation["end_date"]) == ("affiliation", "accepted", "2027-01-01", "2027-01-01", None)
    assert affiliation["provider"]["id"] == secretariat.enterprise_id and affiliation["employer"]["id"] == employer.id
    assert (affiliation["affiliation_number"], affiliation["minimum_term_months"], affiliation["notice_months"]) == \
        ("AF-77", 36, 6)
    # The secretariat gets the default groups automatically, without a form.
    assert {g["code"] for g in affiliation["groups"]} == {g.code for g in GROUPS.secretariat_defaults()}
    assert "dmfa" in affiliation["applications"] and "kbo_prive_gegevens" not in affiliation["applications"]
    assert affiliation["active_today"] is False  # it starts next quarter
    [recorded] = _records(db_session, start, "mandate.affiliation.record")
    assert (recorded.enterprise_id, recorded.provider_enterprise_id) == (employer.id, secretariat.enterprise_id)
    assert [m.kind for m in world.outbox_for(secretariat_admin.person)][-1] == "mandate-affiliation"


def test_switch_that_breaks_the_terms_is_refused_until_acknowledged(shop, scene, officer_api, db_session):
    other, _ = scene.provider("Secretariaat Nieuw", ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/31")
    employer, first = shop["employer"], shop["affiliation"]
    body = {"secretariat_kbo": other.enterprise.kbo_number, "start_date": "2027-01-01", "notice_date": "2026-11-01"}
    path = f"/api/v1/enterprises/{employer.id}/affiliations"
    with Unchanged(db_session, audit=1, outcome="allowed"):
        response = officer_api.api("POST", path, body)
    problem = problem_of(response, 422, "confirmation-required")
    assert problem["field"] == "acknowledge_warnings"
    assert len(problem["warnings"]) == 2
    assert "minimum term of 36 months" in problem["warnings"][0] and "2029-10-01" in problem["warnings"][0]
    assert "a notice of 6 months ends on 2027-05-01" in problem["warnings"][1]

    response = officer_api.api("POST", path, dict(body, acknowledge_warnings=True))
    assert response.status_code == 201, response.get_json()
    result = response.get_json()
    assert result["warnings"] == problem["warnings"]
    assert result["ended"]["id"] == first.id
    assert (result["ended"]["end_date"], result["ended"]["notice_date"]) == ("2026-12-31", "2026-11-01")
    assert result["affiliation"]["provider"]["id"] == other.enterprise_id
    assert scene.mandate(first.id).end_date == date(2026, 12, 31)


def test_switch_within_the_terms_needs_no_confirmation(shop, scene, officer_api):
    other, _ = scene.provider("Secretariaat Vrij", ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/32")
    # An affiliation recorded without contract terms: leaving it warns about nothing.
    free = scene.world.employer("Vrije Werkgever")
    scene.affiliate(free, shop["secretariat"], minimum_term_months=None, notice_months=None)
    response = officer_api.api("POST", f"/api/v1/enterprises/{free.id}/affiliations",
                               {"secretariat_kbo": other.enterprise.kbo_number, "start_date": "2027-04-01",
                                "minimum_term_months": None, "notice_months": 3})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["warnings"] == [] and response.get_json()["ended"]["end_date"] == "2027-03-31"
    assert response.get_json()["affiliation"]["minimum_term_months"] is None


def _affiliation_refusals(shop, scene, world):
    accountant, secretariat = shop["accountant"], shop["secretariat"]
    other, _ = scene.provider("Secretariaat Twee", ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "300/41")
    return [  # (id, employer, body, status, field, fragment)
        ("not-a-quarter-start", shop["employer"], {"secretariat_kbo": other.enterprise.kbo_number,
                                                   "start_date": "2027-02-01"}, 422, "start_date",
         "first day of a quarter"),
        ("overlapping-erkend-affiliation", shop["employer"], {"secretariat_kbo": other.enterprise.kbo_number,
                                                              "start_date": "2026-10-01"}, 409, "start_date",
         f"is already affiliated with Sociaal Secretariaat Loon ({secretariat.enterprise.kbo_display}) from "
         "2026-10-01; affiliations with an erkend sociaal secretariaat cannot overlap."),
        ("same-secretariat-again", shop["employer"], {"secretariat_kbo": secretariat.enterprise.kbo_number,
                                                      "start_date": "2027-01-01"}, 409, "secretariat_kbo",
         "is already affiliated with Sociaal Secretariaat Loon"),
        ("not-a-secretariat", shop["employer"], {"secretariat_kbo": accountant.enterprise.kbo_number,
                                                 "start_date": "2027-01-01"}, 422, "secretariat_kbo",
         "is not an erkend sociaal secretariaat"),
        ("unregistered-secretariat", shop["employer"], {"secretariat_kbo": make_kbo(4_950_002),
                                                        "start_date": "2027-01-01"}, 404, "secretariat_kbo",
         "is not a registered service provider"),
        ("not-an-employer", world.non_employer("Geen Personeel"), {"secretariat_kbo": other.enterprise.kbo_number,
                                                                  "start_date": "2027-01-01"}, 422, "employer_kbo",
         "is not an employer"),
        ("notice-after-start", world.employer("Later Opgezegd"), {
            "secretariat_kbo": other.enterprise.kbo_number, "start_date": "2027-01-01", "notice_date": "2027-01-02"},
         422, "notice_date", "cannot be given after"),
        ("term-out-of-range", shop["employer"], {"secretariat_kbo": other.enterprise.kbo_number,
                                                 "start_date": "2027-01-01", "minimum_term_months": 121}, 422,
         "minimum_term_months", "less than or equal to 120"),
        ("acknowledge-as-a-string", shop["employer"], {"secretariat_kbo": other.enterprise.kbo_number,
                                                       "start_date": "2027-01-01", "acknowledge_warnings": "yes"},
         422, "acknowledge_warnings", "valid boolean"),
        ("date-not-a-date", shop["employer"], {"secretariat_kbo": other.enterprise.kbo_number,
                                               "start_date": "next quarter"}, 422, "start_date", "valid date"),
    ]


def test_affiliation_refusals(shop, scene, world, officer_api, db_session):
    for name, employer, body, status, field, fragment in _affiliation_refusals(shop, scene, world):
        schema_refusal = field in ("minimum_term_months", "acknowledge_warnings") or fragment == "valid date"
        with Unchanged(db_session, audit="none" if schema_refusal else 1, outcome="allowed"):
            response = officer_api.api("POST", f"/api/v1/enterprises/{employer.id}/affiliations", body)
        problem = problem_of(response, status)
        assert (problem["field"], fragment in problem["detail"]) == (field, True), (name, problem)


# --- the officer: all mandates, revoke, end -------------------------------------------------------------


def test_officer_lists_revokes_and_ends_mandates(shop, scene, officer_api, db_session):
    employer, accountant = shop["employer"], shop["accountant"]
    form = scene.form(employer, shop["admin"], accountant)  # pending
    all_ = officer_api.api("GET", "/api/v1/mandates").get_json()
    assert {m["id"] for m in all_} == {shop["affiliation"].id, form.id}
    pending = officer_api.api("GET", "/api/v1/mandates?status=pending").get_json()
    assert [(m["id"], m["status"], m["contract_reference"]) for m in pending] == [(form.id, "pending", "CT-1")]
    with Unchanged(db_session, audit=1, outcome="allowed"):
        problem = problem_of(officer_api.api("GET", "/api/v1/mandates?status=open"), 422, "invalid-input")
    assert problem["field"] == "status" and "Unknown status 'open'" in problem["detail"]

    start = last_audit_id(db_session)
    response = officer_api.api("POST", f"/api/v1/mandates/{form.id}/revoke")
    assert response.status_code == 200 and response.get_json()["status"] == "revoked"
    assert [r.outcome for r in _records(db_session, start, "mandate.form.revoke")] == ["success"]
    with Unchanged(db_session, audit=1, outcome="allowed"):
        problem = problem_of(officer_api.api("POST", f"/api/v1/mandates/{form.id}/revoke"), 409, "conflict")
    assert "revoked already" in problem["detail"]
    with Unchanged(db_session, audit=1, outcome="allowed"):
        problem = problem_of(officer_api.api("POST", f"/api/v1/mandates/{shop['affiliation'].id}/revoke"), 422)
    assert problem["field"] == "mandate_id" and "An affiliation is ended, not revoked" in problem["detail"]
    with Unchanged(db_session, audit=1, outcome="allowed"):
        assert problem_of(officer_api.api("POST", "/api/v1/mandates/999999/revoke"), 404)["field"] == "mandate_id"

    # Ending the affiliation: never before its start; then on a valid last day.
    path = f"/api/v1/mandates/{shop['affiliation'].id}/end"
    with Unchanged(db_session, audit=1, outcome="allowed"):
        problem = problem_of(officer_api.api("POST", path, {"end_date": "2026-09-30"}), 422, "invalid-input")
    assert problem["field"] == "end_date" and "cannot be before the start date (2026-10-01)" in problem["detail"]
    with Unchanged(db_session, audit=1, outcome="allowed"):
        problem = problem_of(officer_api.api("POST", path, {}), 422, "invalid-input")
    assert (problem["field"], problem["detail"]) == ("end_date", "The end date is required.")
    response = officer_api.api("POST", path, {"end_date": "2026-12-31"})
    assert response.status_code == 200 and response.get_json()["end_date"] == "2026-12-31"


# --- the employer --------------------------------------------------------------------------------


def test_employer_files_a_form_the_provider_accepts_and_its_staff_acts(shop, scene, world, db_session):
    employer, admin, accountant = shop["employer"], shop["admin"], shop["accountant"]
    employer_api, provider_api = scene.api(admin), scene.api(shop["accountant_admin"])
    staff = shop["accountant_staff"]

    start = last_audit_id(db_session)
    response = employer_api.api("POST", f"/api/v1/enterprises/{employer.id}/mandates", {
        "provider_kbo": accountant.enterprise.kbo_display, "start_date": "2026-10-01",
        "groups": ["asr", "personeelsbestand"], **CONTRACT})
    assert response.status_code == 201, response.get_json()
    form = response.get_json()
    assert (form["kind"], form["status"], form["effective_from"], form["active_today"]) == \
        ("form", "pending", None, False)
    assert (form["contract_declared"], form["contract_date"], form["contract_reference"]) == \
        (True, "2026-10-15", "CT-2026-17")
    assert [g["code"] for g in form["groups"]] == ["asr", "personeelsbestand"]
    assert form["applications"] == ["asr", "tijdelijke_werkloosheid", "personeelsbestand", "vakantiebestand"]
    [filed] = _records(db_session, start, "mandate.form.file")
    assert (filed.actor_person_id, filed.enterprise_id, filed.provider_enterprise_id) == \
        (admin.id, employer.id, accountant.enterprise_id)
    assert [m.kind for m in world.outbox_for(shop["accountant_admin"].person)][-1] == "mandate-form"

    # The provider sees the pending form among its clients and accepts it.
    clients = provider_api.api("GET", f"/api/v1/enterprises/{accountant.enterprise_id}/clients").get_json()
    assert [(c["mandate"]["id"], c["mandate"]["status"], c["staff"]) for c in clients] == \
        [(form["id"], "pending", [])]
    response = provider_api.api("POST", f"/api/v1/enterprises/{accountant.enterprise_id}/clients/{form['id']}"
                                        "/decision", {"accept": True})
    assert response.status_code == 200, response.get_json()
    # Access starts at the later of the acceptance (today) and the start date.
    assert (response.get_json()["status"], response.get_json()["effective_from"]) == ("accepted", "2026-11-02")

    # Before the assignment the staff member is refused, with the provider named.
    staff_api = scene.api(staff)
    assert staff_api.api("GET", "/api/v1/me/clients").get_json() == []
    problem = problem_of(staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/asr"), 403, "not-assigned")
    assert "Boekhouding Cijfer" in problem["detail"]

    response = provider_api.api("PUT", f"/api/v1/enterprises/{accountant.enterprise_id}/clients/{form['id']}"
                                       f"/staff/{staff.id}/asr")
    assert response.status_code == 200
    assert response.get_json() == {"mandate_id": form["id"], "person_id": staff.id, "application": "asr",
                                   "assigned": True}
    clients = provider_api.api("GET", f"/api/v1/enterprises/{accountant.enterprise_id}/clients").get_json()
    assert [(s["person_id"], s["application"]) for s in clients[0]["staff"]] == [(staff.id, "asr")]

    assert staff_api.api("GET", "/api/v1/me/clients").get_json() == [{
        "mandate_id": form["id"], "applications": ["asr"],
        "employer": {"id": employer.id, "kbo": employer.kbo_number, "name": "Bakkerij Korst"},
        "provider": {"id": accountant.enterprise_id, "kbo": accountant.enterprise.kbo_number,
                     "name": "Boekhouding Cijfer"}}]
    response = staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/asr")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["path"][0].startswith(
        f"Boekhouding Cijfer ({accountant.enterprise.kbo_display}) is the service provider of "
        f"{employer.kbo_display} by form since 2026-11-02")

    # The employer sees the provider, the scope and who of its staff acted recently.
    seen = employer_api.api("GET", f"/api/v1/enterprises/{employer.id}/mandates").get_json()
    providers = {p["id"]: p for p in seen["providers"]}
    assert set(providers) == {form["id"], shop["affiliation"].id}
    assert (providers[form["id"]]["status"], providers[form["id"]]["contract_reference"],
            providers[form["id"]]["provider_kind"]) == ("accepted", "CT-2026-17", "accountant")
    assert providers[shop["affiliation"].id]["provider_kind"] == "erkend_sociaal_secretariaat"
    assert [(a["person_id"], a["provider"]["id"]) for a in seen["provider_activity"]] == \
        [(staff.id, accountant.enterprise_id)]
    assert seen["provider_activity"][0]["actions"] >= 2  # the refused and the allowed decision


def test_who_can_reach_our_data_lists_own_users_and_rights(shop, world, scene):
    employer, admin = shop["employer"], shop["admin"]
    user = world.member(employer, admin, rights=("dmfa", "asr"))
    seen = scene.api(admin).api("GET", f"/api/v1/enterprises/{employer.id}/mandates").get_json()
    assert seen["enterprise"]["id"] == employer.id
    assert [(r["person_id"], r["role"], r["rights"]) for r in seen["users"]] == \
        [(admin.id, "local_admin", []), (user.id, "user", ["asr", "dmfa"])]
    [affiliation] = seen["providers"]
    assert (affiliation["kind"], affiliation["provider"]["name"], affiliation["start_date"],
            affiliation["effective_from"], affiliation["end_date"], affiliation["affiliation_number"]) == \
        ("affiliation", "Sociaal Secretariaat Loon", "2026-10-01", "2026-10-01", None, "AF-0042")
    assert seen["provider_activity"] == []
    # A co-administrator may look, but filing a form is the local administrator's own act.
    co = world.member(employer, admin, "co_admin")
    co_api = scene.api(co)
    assert co_api.api("GET", f"/api/v1/enterprises/{employer.id}/mandates").status_code == 200


def _form(provider, **overrides):
    return {"provider_kbo": provider.enterprise.kbo_number, "start_date": "2027-01-01", "groups": ["asr"],
            **CONTRACT, **overrides}


def test_provider_form_refusals(shop, scene, world, db_session):
    employer, accountant, bureau = shop["employer"], shop["accountant"], shop["bureau"]
    # The accountant holds the one place next to the secretariat: a third provider is refused.
    scene.form(employer, shop["admin"], accountant, accept=True, provider_admin=shop["accountant_admin"])
    other_employer = world.employer("Tweede Werkgever")
    world.local_admin(other_employer)
    refusals = [  # (id, body, status, code, field, fragment)
        ("third-provider", _form(bureau), 409, "conflict", "provider_kbo",
         f"{employer.kbo_display} already has one: Boekhouding Cijfer ({accountant.enterprise.kbo_display})."),
        ("no-contract-declaration", _form(bureau, contract_declared=False), 422, "invalid-input",
         "contract_declared", "Declare that a written contract with this provider exists"),
        ("declaration-left-out", {k: v for k, v in _form(bureau).items() if k != "contract_declared"}, 422,
         "invalid-input", "contract_declared", "article 16 of the law of 8 December 1992"),
        ("no-contract-date", _form(bureau, contract_date=None), 422, "invalid-input", "contract_date",
         "The date of the contract is required."),
        ("no-contract-reference", _form(bureau, contract_reference="  "), 422, "invalid-input",
         "contract_reference", "Contract reference is required."),
        ("unregistered-provider", _form(bureau, provider_kbo=shop["employer"].kbo_number), 404, "not-found",
         "provider_kbo", "is not a registered service provider"),
        ("not-a-quarter-start", _form(bureau, start_date="2027-01-15"), 422, "invalid-input", "start_date",
         "first day of a quarter"),
        ("past-quarter", _form(bureau, start_date="2026-07-01"), 422, "invalid-input", "start_date",
         "current quarter or a later one"),
        ("unknown-group", _form(bureau, groups=["asr", "loterij"]), 422, "invalid-input", "groups",
         "Unknown group of applications 'loterij'."),
        ("no-group", _form(bureau, groups=[]), 422, "invalid-input", "groups", "at least one group"),
        ("secretariat-by-form", _form(shop["secretariat"]), 409, "conflict", "provider_kbo", "needs no form"),
    ]
    admin_api = scene.api(shop["admin"])
    for name, body, status, code, field, fragment in refusals:
        with Unchanged(db_session, audit=1, outcome="allowed"):
            response = admin_api.api("POST", f"/api/v1/enterprises/{employer.id}/mandates", body)
        problem = problem_of(response, status, code)
        assert (problem["field"], fragment in problem["detail"]) == (field, True), (name, problem)


def test_provider_form_wrong_types_are_refused_by_the_schema(shop, scene, db_session):
    admin_api = scene.api(shop["admin"])
    for body, field in [({"contract_declared": "yes"}, "contract_declared"),
                        ({"contract_declared": 1}, "contract_declared"),
                        ({"groups": "asr"}, "groups"),
                        ({"groups": [1]}, "groups.0"),
                        ({"start_date": "volgend kwartaal"}, "start_date"),
                        ({"provider_kbo": 403170701}, "provider_kbo"),
                        ({"contract_reference": "CT\n1"}, "contract_reference"),
                        ({"is_admin": True}, "is_admin")]:
        with Unchanged(db_session):
            response = admin_api.api("POST", f"/api/v1/enterprises/{shop['employer'].id}/mandates",
                                     _form(shop["accountant"], **body))
        assert problem_of(response, 422, "invalid-input")["field"] == field, body


def test_malformed_json_and_wrong_media_type_are_refused(shop, scene, officer_api, db_session):
    admin_api = scene.api(shop["admin"])
    path = f"/api/v1/enterprises/{shop['employer'].id}/mandates"
    with Unchanged(db_session):
        problem_of(admin_api.api("POST", path, data='{"provider_kbo": ', content_type="application/json"), 400,
                   "malformed-json")
    with Unchanged(db_session):
        problem_of(admin_api.api("POST", path, data="provider_kbo=1", content_type="text/plain"), 415,
                   "unsupported-media-type")
    with Unchanged(db_session):
        problem_of(officer_api.api("POST", "/api/v1/providers", data="[1, 2", content_type="application/json"),
                   400, "malformed-json")
    with Unchanged(db_session):
        problem_of(officer_api.api("POST", f"/api/v1/enterprises/{shop['employer'].id}/affiliations", []), 422,
                   "invalid-input")


def test_only_the_employers_local_administrator_files_and_ends_forms(shop, scene, world, db_session):
    employer, admin = shop["employer"], shop["admin"]
    form = scene.form(employer, admin, shop["accountant"])
    co = world.member(employer, admin, "co_admin")
    user = world.member(employer, admin, rights=("dmfa",))
    for persona, code in ((co, "local-admin-only"), (user, "not-an-administrator"),
                          (shop["staff"], "no-direct-authority"), (shop["accountant_admin"], "no-direct-authority")):
        browser = scene.api(persona)
        with Unchanged(db_session, audit=1, outcome="denied"):
            response = browser.api("POST", f"/api/v1/enterprises/{employer.id}/mandates", _form(shop["bureau"]))
        problem_of(response, 403, code)
        with Unchanged(db_session, audit=1, outcome="denied"):
            response = browser.api("POST", f"/api/v1/enterprises/{employer.id}/mandates/{form.id}/end", {})
        problem_of(response, 403, code)
    # The provider's staff never read the employer's access management, whatever their mandate.
    scene.assign(shop["secretariat"], shop["secretariat_admin"], shop["affiliation"], shop["staff"], "dmfa")
    staff_api = scene.api(shop["staff"])
    with Unchanged(db_session, audit=1, outcome="denied"):
        problem_of(staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/mandates"), 403, "no-direct-authority")


def test_employer_ends_a_relationship_and_staff_lose_access_after_the_last_day(shop, scene, world, clock,
                                                                                 db_session):
    employer, admin = shop["employer"], shop["admin"]
    secretariat, staff = shop["secretariat"], shop["staff"]
    scene.assign(secretariat, shop["secretariat_admin"], shop["affiliation"], staff, "dmfa")
    staff_api, admin_api = scene.api(staff), scene.api(admin)
    assert staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa").status_code == 200

    path = f"/api/v1/enterprises/{employer.id}/mandates/{shop['affiliation'].id}/end"
    for body, fragment in (({"end_date": "2026-09-30"}, "cannot be before the start date (2026-10-01)"),
                           ({"end_date": "2026-10-15"}, "cannot lie before yesterday"),
                           ({}, "The end date is required.")):
        with Unchanged(db_session, audit=1, outcome="allowed"):
            problem = problem_of(admin_api.api("POST", path, body), 422, "invalid-input")
        assert problem["field"] == "end_date" and fragment in problem["detail"]

    start = last_audit_id(db_session)
    response = admin_api.api("POST", path, {"end_date": "2026-11-02"})
    assert response.status_code == 200 and response.get_json()["end_date"] == "2026-11-02"
    [ended] = _records(db_session, start, "mandate.affiliation.end")
    assert (ended.actor_person_id, ended.enterprise_id, ended.provider_enterprise_id) == \
        (admin.id, employer.id, secretariat.enterprise_id)
    assert staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa").status_code == 200  # last day
    clock.advance(days=1)
    staff_api.relogin()  # a day later: a new session (the old one timed out)
    problem = problem_of(staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa"), 403, "no-mandate")
    assert "Sociaal Secretariaat Loon" in problem["detail"] and "2026-11-03" in problem["detail"]
    assert staff_api.api("GET", "/api/v1/me/clients").get_json() == []


def test_employer_withdraws_a_pending_form_and_cannot_touch_another_employers_mandate(shop, scene, world,
                                                                                      db_session):
    employer, admin = shop["employer"], shop["admin"]
    form = scene.form(employer, admin, shop["accountant"])
    neighbour = world.employer("Buur Werkgever")
    neighbour_admin = world.local_admin(neighbour)
    neighbour_form = scene.form(neighbour, neighbour_admin, shop["bureau"])
    admin_api = scene.api(admin)
    for mandate_id in (neighbour_form.id, 999_999):
        with Unchanged(db_session, audit=1, outcome="allowed"):
            problem = problem_of(admin_api.api("POST", f"/api/v1/enterprises/{employer.id}/mandates/{mandate_id}/end",
                                               {"end_date": "2026-12-31"}), 404, "not-found")
        assert (problem["field"], problem["detail"]) == ("mandate_id", "Unknown mandate.")
    response = admin_api.api("POST", f"/api/v1/enterprises/{employer.id}/mandates/{form.id}/end", {})
    assert response.status_code == 200 and response.get_json()["status"] == "withdrawn"
    assert scene.mandate(neighbour_form.id).status is MandateStatus.PENDING
    # The place is free again: a form for the software bureau is accepted.
    response = admin_api.api("POST", f"/api/v1/enterprises/{employer.id}/mandates", _form(shop["bureau"]))
    assert response.status_code == 201, response.get_json()


# --- the provider ------------------------------------------------------------------------------


def test_provider_sees_only_its_own_clients(shop, scene, world, db_session):
    employer, accountant = shop["employer"], shop["accountant"]
    form = scene.form(employer, shop["admin"], accountant, accept=True, provider_admin=shop["accountant_admin"])
    scene.assign(accountant, shop["accountant_admin"], form, shop["accountant_staff"], "asr")
    secretariat_clients = scene.api(shop["secretariat_admin"]).api(
        "GET", f"/api/v1/enterprises/{shop['secretariat'].enterprise_id}/clients").get_json()
    assert [c["mandate"]["id"] for c in secretariat_clients] == [shop["affiliation"].id]
    assert secretariat_clients[0]["staff"] == []
    accountant_api = scene.api(shop["accountant_admin"])
    accountant_clients = accountant_api.api("GET", f"/api/v1/enterprises/{accountant.enterprise_id}/clients")
    [client] = accountant_clients.get_json()
    assert (client["mandate"]["id"], client["staff"][0]["person_id"], client["staff"][0]["person"]) == \
        (form.id, shop["accountant_staff"].id, shop["accountant_staff"].name)
    # Another provider's client list is not his: 403 from the decision point.
    with Unchanged(db_session, audit=1, outcome="denied"):
        problem_of(accountant_api.api("GET", f"/api/v1/enterprises/{shop['secretariat'].enterprise_id}/clients"),
                   403, "no-direct-authority")
    # An enterprise that is not a provider has no clients.
    employer_api = scene.api(shop["admin"])
    with Unchanged(db_session, audit=1, outcome="allowed"):
        problem = problem_of(employer_api.api("GET", f"/api/v1/enterprises/{employer.id}/clients"), 404, "not-found")
    assert "is not a registered service provider" in problem["detail"]


def test_provider_declines_and_cannot_decide_another_providers_form(shop, scene, world, db_session):
    employer, accountant, bureau = shop["employer"], shop["accountant"], shop["bureau"]
    form = scene.form(employer, shop["admin"], accountant)
    bureau_api = scene.api(shop["bureau_admin"])
    with Unchanged(db_session, audit=1, outcome="allowed"):
        problem = problem_of(bureau_api.api("POST", f"/api/v1/enterprises/{bureau.enterprise_id}/clients/{form.id}"
                                                    "/decision", {"accept": True}), 404, "not-found")
    assert problem["field"] == "mandate_id"
    co = world.member(accountant.enterprise, shop["accountant_admin"], "co_admin")
    path = f"/api/v1/enterprises/{accountant.enterprise_id}/clients/{form.id}/decision"
    co_api = scene.api(co)
    with Unchanged(db_session, audit=1, outcome="denied"):
        problem_of(co_api.api("POST", path, {"accept": True}), 403, "local-admin-only")
    accountant_api = scene.api(shop["accountant_admin"])
    with Unchanged(db_session):
        assert problem_of(accountant_api.api("POST", path, {"accept": "ja"}), 422)["field"] == "accept"
    response = accountant_api.api("POST", path, {"accept": False})
    assert response.status_code == 200 and response.get_json()["status"] == "declined"
    assert [m.kind for m in world.outbox_for(shop["admin"].person)][-1] == "mandate-form-decided"
    with Unchanged(db_session, audit=1, outcome="allowed"):
        problem = problem_of(accountant_api.api("POST", path, {"accept": True}), 409, "conflict")
    assert "no longer pending (it is declined)" in problem["detail"]


def test_provider_assigns_and_unassigns_staff_within_the_mandate(shop, scene, world, db_session):
    employer, secretariat, staff = shop["employer"], shop["secretariat"], shop["staff"]
    affiliation = shop["affiliation"]
    base = f"/api/v1/enterprises/{secretariat.enterprise_id}/clients/{affiliation.id}/staff"
    # A co-administrator of the provider may assign staff (access management, not the local admin's own act).
    co = world.member(secretariat.enterprise, shop["secretariat_admin"], "co_admin")
    co_api, admin_api, staff_api = scene.api(co), scene.api(shop["secretariat_admin"]), scene.api(staff)
    start = last_audit_id(db_session)
    assert co_api.api("PUT", f"{base}/{staff.id}/dmfa").status_code == 200
    [assigned] = _records(db_session, start, "mandate.staff.assign")
    assert (assigned.actor_person_id, assigned.enterprise_id, assigned.provider_enterprise_id,
            assigned.application) == (co.id, employer.id, secretariat.enterprise_id, "dmfa")
    assert staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa").status_code == 200

    outsider = world.person(world.employer("Elders"), "werknemer")
    refusals = [  # (path, status, field, fragment)
        (f"{base}/{staff.id}/dmfa", 409, "application", "is already assigned"),
        (f"{base}/{staff.id}/kbo_prive_gegevens", 422, "application", "is not within the mandate"),
        (f"{base}/{staff.id}/loterij", 422, "application", "Unknown application 'loterij'."),
        (f"{base}/{outsider.id}/asr", 422, "person_id", "is not designated as staff"),
        (f"{base}/999999/asr", 404, "person_id", "Unknown person."),
        (f"/api/v1/enterprises/{secretariat.enterprise_id}/clients/999999/staff/{staff.id}/asr", 404, "mandate_id",
         "has no mandate for this client"),
    ]
    for path, status, field, fragment in refusals:
        with Unchanged(db_session, audit=1, outcome="allowed"):
            problem = problem_of(admin_api.api("PUT", path), status)
        assert (problem["field"], fragment in problem["detail"]) == (field, True), (path, problem)

    response = admin_api.api("DELETE", f"{base}/{staff.id}/dmfa")
    assert response.status_code == 200 and response.get_json()["assigned"] is False
    problem_of(staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa"), 403, "not-assigned")
    with Unchanged(db_session, audit=1, outcome="allowed"):
        problem = problem_of(admin_api.api("DELETE", f"{base}/{staff.id}/dmfa"), 404, "not-found")
    assert "is not assigned" in problem["detail"]


def test_provider_admin_cannot_assign_staff_to_another_providers_client(shop, scene, db_session):
    employer, accountant, secretariat = shop["employer"], shop["accountant"], shop["secretariat"]
    form = scene.form(employer, shop["admin"], accountant, accept=True, provider_admin=shop["accountant_admin"])
    secretariat_api = scene.api(shop["secretariat_admin"])
    # The secretariat's own id in the path, the accountant's mandate: 404, nothing confirmed.
    for method in ("PUT", "DELETE"):
        with Unchanged(db_session, audit=1, outcome="allowed"):
            problem = problem_of(secretariat_api.api(
                method, f"/api/v1/enterprises/{secretariat.enterprise_id}/clients/{form.id}/staff/"
                        f"{shop['staff'].id}/asr"), 404, "not-found")
        assert problem["field"] == "mandate_id" and "Bakkerij" not in problem["detail"]
    # The accountant's id in the path: the decision point refuses, he is none of the accountant's administrators.
    with Unchanged(db_session, audit=1, outcome="denied"):
        problem_of(secretariat_api.api("PUT", f"/api/v1/enterprises/{accountant.enterprise_id}/clients/{form.id}"
                                              f"/staff/{shop['staff'].id}/asr"), 403, "no-direct-authority")
    # A staff member (a user, not an administrator) of the provider cannot assign anyone.
    staff_api = scene.api(shop["accountant_staff"])
    with Unchanged(db_session, audit=1, outcome="denied"):
        problem_of(staff_api.api(
            "PUT", f"/api/v1/enterprises/{accountant.enterprise_id}/clients/{form.id}/staff/"
                   f"{shop['accountant_staff'].id}/asr"), 403, "not-an-administrator")


# --- the staff member acting for a client ------------------------------------------------------------


def test_staff_member_acts_for_the_employer_and_the_audit_names_the_provider(shop, scene, db_session):
    employer, secretariat, staff = shop["employer"], shop["secretariat"], shop["staff"]
    scene.assign(secretariat, shop["secretariat_admin"], shop["affiliation"], staff, "dmfa",
                 "werkgeversrepertorium_beveiligd")
    staff_api = scene.api(staff)
    [client] = staff_api.api("GET", "/api/v1/me/clients").get_json()
    assert (client["employer"]["id"], client["provider"]["id"], client["applications"]) == \
        (employer.id, secretariat.enterprise_id, ["dmfa", "werkgeversrepertorium_beveiligd"])

    start = last_audit_id(db_session)
    response = staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/repertory",
                             headers={"X-Request-ID": "req-staff-repertory"})
    assert response.status_code == 200, response.get_json()
    record = response.get_json()
    assert record["enterprise"]["id"] == employer.id
    assert record["access_path"][0] == (f"Sociaal Secretariaat Loon ({secretariat.enterprise.kbo_display}) is the "
                                        f"erkend sociaal secretariaat of {employer.kbo_display} since 2026-10-01")
    assert len(record["access_path"]) == 4
    response = staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa",
                             headers={"X-Request-ID": "req-staff-dmfa"})
    assert response.status_code == 200
    records = [r for r in audit_since(db_session, start) if r.action.startswith("decision:")]
    assert [(r.action, r.outcome, r.application, r.request_id) for r in records] == [
        ("decision:view", "allowed", "werkgeversrepertorium_beveiligd", "req-staff-repertory"),
        ("decision:open", "allowed", "dmfa", "req-staff-dmfa")]
    for r in records:
        assert (r.actor_person_id, r.enterprise_id, r.provider_enterprise_id) == \
            (staff.id, employer.id, secretariat.enterprise_id)
        assert r.path[0].startswith("Sociaal Secretariaat Loon")


def test_staff_member_is_refused_for_employers_and_applications_outside_the_mandate(shop, scene, world,
                                                                                    db_session):
    employer, secretariat, staff = shop["employer"], shop["secretariat"], shop["staff"]
    scene.assign(secretariat, shop["secretariat_admin"], shop["affiliation"], staff, "dmfa")
    stranger = world.employer("Vreemde Werkgever")  # does not mandate the secretariat
    staff_api = scene.api(staff)
    start = last_audit_id(db_session)
    for path, code, fragment in [
            (f"/api/v1/enterprises/{stranger.id}/apps/dmfa", "no-direct-authority",
             f"not under the direct authority of {stranger.kbo_display}"),
            (f"/api/v1/enterprises/{stranger.id}/repertory", "no-direct-authority",
             f"not under the direct authority of {stranger.kbo_display}"),
            (f"/api/v1/enterprises/{employer.id}/apps/kbo_prive_gegevens", "outside-mandate",
             f"is not within the mandate {employer.kbo_display} gave Sociaal Secretariaat Loon"),
            (f"/api/v1/enterprises/{employer.id}/apps/asr", "not-assigned",
             "not assigned by Sociaal Secretariaat Loon"),
            (f"/api/v1/enterprises/{employer.id}/access", "no-direct-authority", "not under the direct authority")]:
        with Unchanged(db_session, audit=1, outcome="denied"):
            problem = problem_of(staff_api.api("GET", path), 403, code)
        assert fragment in problem["detail"], (path, problem)
    denied = [r for r in audit_since(db_session, start) if r.outcome == "denied"]
    assert len(denied) == 5 and all(r.actor_person_id == staff.id for r in denied)
    # Refusals along the mandate path name the provider too; a stranger's refusal has no provider.
    assert [r.provider_enterprise_id for r in denied] == [None, None, secretariat.enterprise_id,
                                                          secretariat.enterprise_id, None]
    assert [c["employer"]["id"] for c in staff_api.api("GET", "/api/v1/me/clients").get_json()] == [employer.id]


def test_revoked_form_cuts_the_staff_off_at_once(shop, scene, officer_api):
    employer, accountant, staff = shop["employer"], shop["accountant"], shop["accountant_staff"]
    form = scene.form(employer, shop["admin"], accountant, accept=True, provider_admin=shop["accountant_admin"])
    scene.assign(accountant, shop["accountant_admin"], form, staff, "asr")
    staff_api = scene.api(staff)
    assert staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/asr").status_code == 200
    assert officer_api.api("POST", f"/api/v1/mandates/{form.id}/revoke").status_code == 200
    problem_of(staff_api.api("GET", f"/api/v1/enterprises/{employer.id}/apps/asr"), 403, "no-mandate")
    assert staff_api.api("GET", "/api/v1/me/clients").get_json() == []


def test_my_clients_needs_a_login_and_groups_are_published(visitor):
    browser = visitor()
    problem_of(browser.api("GET", "/api/v1/me/clients"), 401, "login-required")
    groups = browser.api("GET", "/api/v1/mandate-groups").get_json()
    assert [g["code"] for g in groups] == [g.code for g in GROUPS.all()]
    assert groups[0]["names"]["nl"] == "DmfA–Dimona" and groups[0]["secretariat_default"] is True
