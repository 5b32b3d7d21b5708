"""Acceptance 9: every refused input answers 4xx with a clear message (HTML: at the
field; API: RFC 9457 problem+json naming the field) and writes nothing: no
business row; audit rows only for the gate's decisions and failed logins."""
from __future__ import annotations

import json
from datetime import date

import pytest

from access.validators import format_kbo, make_insz, make_kbo, make_rsz
from tests.functional.helpers import NothingWritten, page, problem_of

KBO_CHECK = "This KBO number fails the check digits"
INSZ_CHECK = "This INSZ number fails the check digits"
RSZ_CHECK = "This RSZ number fails the check digits"
NOT_UNDER_AUTHORITY = "is not under the direct authority of"
GENERIC_LOGIN = "The user name or password is wrong, or the account is temporarily locked."


def _bad_check_digits(number: str) -> str:
    return number[:-2] + f"{(int(number[-2:]) + 1) % 100:02d}"


def _enterprise(**overrides):
    values = {"kbo": make_kbo(4_900_001), "name": "Weigering BV", "street": "Dorp 1", "postal_code": "1000",
              "city": "Brussel", "legal_form": "BV", "rsz_number": make_rsz(4_900_002), "joint_committee": "200"}
    values.update(overrides)
    return values


def _link(**overrides):
    values = {"insz": make_insz("880808", 123), "first_name": "Nina", "last_name": "Nieuw", "kind": "werknemer",
              "start_date": "2024-01-01"}
    values.update(overrides)
    return values


ENTERPRISE_REFUSALS = [  # (id, overrides, status, field, message fragment)
    ("kbo-mod97", {"kbo": _bad_check_digits(make_kbo(4_900_001))}, 422, "kbo", KBO_CHECK),
    ("kbo-formatted-mod97", {"kbo": format_kbo(_bad_check_digits(make_kbo(4_900_001)))}, 422, "kbo", KBO_CHECK),
    ("kbo-first-digit", {"kbo": "2" + make_kbo(4_900_001)[1:]}, 422, "kbo", "starts with 0 or 1"),
    ("kbo-length", {"kbo": "12345"}, 422, "kbo", "has 10 digits"),
    ("rsz", {"rsz_number": _bad_check_digits(make_rsz(4_900_002))}, 422, "rsz_number", RSZ_CHECK),
    ("rsz-length", {"rsz_number": "12345"}, 422, "rsz_number", "radix of 7 or 8 digits"),
    ("joint-committee-without-rsz", {"rsz_number": ""}, 422, "joint_committee", "Only an employer"),
    ("joint-committee-format", {"joint_committee": "abc"}, 422, "joint_committee", "3 digits"),
    ("postal-code", {"postal_code": "12"}, 422, "postal_code", "4 digits"),
]


@pytest.mark.parametrize("overrides,status,field,message", [r[1:] for r in ENTERPRISE_REFUSALS],
                         ids=[r[0] for r in ENTERPRISE_REFUSALS])
def test_enterprise_refusals_html(officer_web, db_session, overrides, status, field, message):
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_web.post("/officer/enterprises/new", _enterprise(**overrides))
    assert response.status_code == status
    errors = page(response).field_errors(field)
    assert len(errors) == 1 and message in errors[0], page(response).text


@pytest.mark.parametrize("overrides,status,field,message", [r[1:] for r in ENTERPRISE_REFUSALS],
                         ids=[r[0] for r in ENTERPRISE_REFUSALS])
def test_enterprise_refusals_api(officer_api, db_session, overrides, status, field, message):
    body = {k: v for k, v in _enterprise(**overrides).items() if v != ""}
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_api.api("POST", "/api/v1/enterprises", body)
    problem = problem_of(response, status, "invalid-input")
    assert problem["field"] == field and message in problem["detail"]
    assert problem["errors"] == [{"field": field, "detail": problem["detail"]}]


def test_duplicate_enterprise_html_and_api(officer_web, officer_api, world, db_session):
    existing = world.employer("Bestaat Al")
    for kbo in (existing.kbo_number, existing.kbo_display):
        with NothingWritten(db_session, audit=1, outcome="allowed"):
            response = officer_web.post("/officer/enterprises/new", _enterprise(kbo=kbo, rsz_number="",
                                                                               joint_committee=""))
        assert response.status_code == 409
        assert page(response).field_errors("kbo") == \
            [f"Enterprise {existing.kbo_display} is already registered (Bestaat Al)."]
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_api.api("POST", "/api/v1/enterprises", _enterprise(kbo=existing.kbo_number))
    assert problem_of(response, 409, "conflict")["field"] == "kbo"
    # the RSZ number is unique too
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_api.api("POST", "/api/v1/enterprises", _enterprise(rsz_number=existing.rsz_number))
    assert problem_of(response, 409, "conflict")["field"] == "rsz_number"


LINK_REFUSALS = [
    ("insz-mod97", {"insz": _bad_check_digits(make_insz("880808", 123))}, "insz", INSZ_CHECK),
    ("insz-length", {"insz": "8808081"}, "insz", "has 11 digits"),
    ("end-before-start", {"start_date": "2024-01-01", "end_date": "2023-12-31"}, "end_date",
     "The end date of a link cannot be before its start date."),
    ("email", {"email": "not-an-address"}, "email", "not a valid e-mail address"),
]


@pytest.mark.parametrize("overrides,field,message", [r[1:] for r in LINK_REFUSALS], ids=[r[0] for r in LINK_REFUSALS])
def test_link_refusals_html(officer_web, world, db_session, overrides, field, message):
    enterprise = world.employer()
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_web.post(f"/officer/enterprises/{enterprise.id}/links", _link(**overrides))
    assert response.status_code == 422
    errors = page(response).field_errors(field)
    assert len(errors) == 1 and message in errors[0], page(response).text


@pytest.mark.parametrize("overrides,field,message", [r[1:] for r in LINK_REFUSALS], ids=[r[0] for r in LINK_REFUSALS])
def test_link_refusals_api(officer_api, world, db_session, overrides, field, message):
    enterprise = world.employer()
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/links", _link(**overrides))
    problem = problem_of(response, 422, "invalid-input")
    assert problem["field"] == field and message in problem["detail"]


def test_bis_number_is_accepted(officer_web, officer_api, world, db_session):
    enterprise = world.employer()
    bis = make_insz("802101", 33)  # born 1980-01-01, month + 20: a BIS number
    response = officer_web.post(f"/officer/enterprises/{enterprise.id}/links", _link(insz=bis))
    assert response.status_code == 302, page(response).text
    response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/links",
                               _link(insz=make_insz("804101", 34), first_name="Bo", last_name="Bis"))
    assert response.status_code == 201, response.get_json()


# --- persons without direct authority, rights in the wrong place -------------------------------------------


@pytest.fixture
def two(world):
    a, b = world.employer("Firma A"), world.employer("Firma B")
    admin_a, admin_b = world.local_admin(a), world.local_admin(b)
    return dict(a=a, b=b, admin_a=admin_a, admin_b=admin_b,
                user_a=world.member(a, admin_a, rights=("dmfa",)),
                user_b=world.member(b, admin_b, rights=("dmfa",)),
                zelf_a=world.person(a, "zelfstandige_medewerker"),
                derde_a=world.person(a, "derde"),
                ended_a=world.person(a, "werknemer", start=date(2020, 1, 1), end=date(2026, 10, 31)))


@pytest.mark.parametrize("who", ["zelf_a", "derde_a", "ended_a"])
def test_adding_a_person_without_direct_authority_html(two, visitor, db_session, who):
    browser = visitor()
    browser.login(two["admin_a"].login)
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"/enterprises/{two['a'].id}/access/members",
                                {"person_id": two[who].id, "role": "user"})
    assert response.status_code == 422
    assert NOT_UNDER_AUTHORITY in page(response).text


@pytest.mark.parametrize("who", ["zelf_a", "derde_a", "ended_a"])
def test_adding_a_person_without_direct_authority_api(two, visitor, db_session, who):
    browser = visitor()
    browser.api_login(two["admin_a"].login)
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = browser.api("POST", f"/api/v1/enterprises/{two['a'].id}/members",
                               {"person_id": two[who].id, "role": "co_admin"})
    problem = problem_of(response, 422, "invalid-input")
    assert NOT_UNDER_AUTHORITY in problem["detail"] and problem.get("field")


def test_direct_authority_refusal_names_the_field_that_was_sent(two, visitor, officer_web, officer_api):
    """The person is chosen with `person_id` (form field and JSON member): the refusal must point there."""
    a, zelf = two["a"], two["zelf_a"]
    browser = visitor()
    browser.login(two["admin_a"].login)
    designate = page(browser.post(f"/enterprises/{a.id}/access/members", {"person_id": zelf.id, "role": "user"}))
    appoint = page(officer_web.post(f"/officer/enterprises/{a.id}/local-admin", {"person_id": zelf.id}))
    problem = problem_of(officer_api.api("POST", f"/api/v1/enterprises/{a.id}/local-admin",
                                         {"person_id": zelf.id}), 422)
    observed = {
        "api field": problem["field"],
        "designate form: message at person_id": any(NOT_UNDER_AUTHORITY in e
                                                    for e in designate.field_errors("person_id")),
        "appoint form: message at person_id": any(NOT_UNDER_AUTHORITY in e for e in appoint.field_errors("person_id")),
    }
    assert observed == {"api field": "person_id", "designate form: message at person_id": True,
                        "appoint form: message at person_id": True}


@pytest.mark.parametrize("application,message", [
    ("no_such_app", "Unknown application 'no_such_app'."),
    ("toegangsbeheer", "Unknown application 'toegangsbeheer'."),
    ("portaalbeheer", "Unknown application 'portaalbeheer'."),
    ("dimona", "Dimona is freely accessible; no right is needed."),
])
def test_granting_an_unknown_or_ungrantable_application(two, visitor, db_session, application, message):
    a, user = two["a"], two["user_a"]
    html = visitor()
    html.login(two["admin_a"].login)
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = html.post(f"/enterprises/{a.id}/access/rights/{user.id}/{application}", {"grant": "1"})
    assert response.status_code == 422
    assert page(response).find(cls="form-error").text == message
    api = visitor(ip="203.0.113.20")
    api.api_login(two["admin_a"].login)
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = api.api("PUT", f"/api/v1/enterprises/{a.id}/rights/{user.id}/{application}")
    problem = problem_of(response, 422, "invalid-input")
    assert (problem["field"], problem["detail"]) == ("application", message)


def test_local_admin_of_a_on_b_is_refused_403(two, visitor, db_session):
    a, b, user_b = two["a"], two["b"], two["user_b"]
    reason = f"You are not under the direct authority of {b.kbo_display} on 2026-11-02, so no role or right in it " \
             "can be used."
    html = visitor()
    html.login(two["admin_a"].login)
    for path, data in [(f"/enterprises/{b.id}/access/rights/{user_b.id}/asr", {"grant": "1"}),
                       (f"/enterprises/{b.id}/access/rights/{user_b.id}/dmfa", {"grant": "0"}),
                       (f"/enterprises/{b.id}/access/members", {"person_id": user_b.id, "role": "user"}),
                       (f"/enterprises/{b.id}/access/members/{user_b.id}/remove", {}),
                       (f"/enterprises/{b.id}/access/hand-over", {"handover-person_id": user_b.id})]:
        with NothingWritten(db_session, audit=1, outcome="denied"):
            response = html.post(path, data)
        assert response.status_code == 403, path
        assert page(response).testid("deny-reason") == reason, path
    with NothingWritten(db_session, audit=1, outcome="denied"):
        response = html.get(f"/enterprises/{b.id}/access")
    assert response.status_code == 403

    api = visitor(ip="203.0.113.21")
    api.api_login(two["admin_a"].login)
    for method, path, body in [("GET", f"/api/v1/enterprises/{b.id}/access", None),
                               ("PUT", f"/api/v1/enterprises/{b.id}/rights/{user_b.id}/asr", None),
                               ("DELETE", f"/api/v1/enterprises/{b.id}/rights/{user_b.id}/dmfa", None),
                               ("POST", f"/api/v1/enterprises/{b.id}/members", {"person_id": user_b.id}),
                               ("DELETE", f"/api/v1/enterprises/{b.id}/members/{user_b.id}", None),
                               ("POST", f"/api/v1/enterprises/{b.id}/hand-over", {"person_id": user_b.id})]:
        with NothingWritten(db_session, audit=1, outcome="denied"):
            response = api.api(method, path, body)
        problem_of(response, 403, "no-direct-authority")


def test_person_of_b_on_a_is_refused_422(two, visitor, db_session):
    a, user_b = two["a"], two["user_b"]
    html = visitor()
    html.login(two["admin_a"].login)
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = html.post(f"/enterprises/{a.id}/access/rights/{user_b.id}/asr", {"grant": "1"})
    assert response.status_code == 422
    assert f"is not a user of {a.kbo_display}" in page(response).find(cls="form-error").text
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = html.post(f"/enterprises/{a.id}/access/members", {"person_id": user_b.id, "role": "user"})
    assert response.status_code == 422 and NOT_UNDER_AUTHORITY in page(response).text

    api = visitor(ip="203.0.113.22")
    api.api_login(two["admin_a"].login)
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = api.api("PUT", f"/api/v1/enterprises/{a.id}/rights/{user_b.id}/asr")
    assert f"is not a user of {a.kbo_display}" in problem_of(response, 422)["detail"]
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = api.api("POST", f"/api/v1/enterprises/{a.id}/members", {"person_id": user_b.id})
    assert NOT_UNDER_AUTHORITY in problem_of(response, 422)["detail"]


# --- credentials ----------------------------------------------------------------------------------


def test_reused_or_expired_initial_password_is_refused(world, visitor, db_session, clock):
    enterprise = world.employer()
    fresh = world.local_admin(enterprise, own_credentials=False)
    used = world.member(enterprise, fresh, own_credentials=False)
    browser = visitor()
    browser.api_login(used.credential.user_id, used.credential.password)
    assert browser.api("POST", "/api/v1/account/credentials",
                       {"username": "al.gekozen", "password": "Lavendel-Brug-Oever-12"}).status_code == 200

    login_failure = [("login", "failure")]
    with NothingWritten(db_session, audit=login_failure):
        response = visitor().login(used.credential.user_id, used.credential.password)
    assert response.status_code == 401 and page(response).form_errors == [GENERIC_LOGIN]
    with NothingWritten(db_session, audit=login_failure):
        problem = problem_of(visitor().api_login(used.credential.user_id, used.credential.password), 401,
                             "login-failed")
    assert problem["detail"] == GENERIC_LOGIN

    clock.advance(days=14, seconds=1)
    with NothingWritten(db_session, audit=login_failure) as written:
        response = visitor().login(fresh.credential.user_id, fresh.credential.password)
    assert response.status_code == 401 and page(response).form_errors == [GENERIC_LOGIN]
    assert written.new_audit[0].reason.startswith("initial password expired")
    with NothingWritten(db_session, audit=login_failure):
        problem_of(visitor().api_login(fresh.credential.user_id, fresh.credential.password), 401, "login-failed")


WEAK = [  # (id, password, message)
    ("too-short", "Kort-12", "The password must have at least 12 characters."),
    ("common", "password1234", "This password is among the most common passwords; choose another."),
    ("common-with-noise", "qwertyuiop!!", "This password is among the most common passwords; choose another."),
    ("first-name", "xx-Hendrika-Lange-Zin", "may not contain your name"),
    ("last-name", "Vandenbroucke-is-de-baas", "may not contain your name"),
    ("username", "de-gekozen.naam-2026", "may not contain your name"),
    ("enterprise", "Zwanenmeer Logistiek 4ever", "may not contain your name"),
    ("few-characters", "aaaaaaaabbbbbbbb", "repeats too few different characters"),
]


@pytest.fixture
def newcomer(world):
    enterprise = world.employer("Zwanenmeer Logistiek")
    admin = world.local_admin(enterprise)
    person = world.person(enterprise, "werknemer", first="Hendrika", last="Vandenbroucke")
    return world.member(enterprise, admin, person=person, own_credentials=False)


@pytest.mark.parametrize("password,message", [w[1:] for w in WEAK], ids=[w[0] for w in WEAK])
def test_weak_new_password_is_refused_html(newcomer, visitor, db_session, password, message):
    browser = visitor()
    browser.login(newcomer.credential.user_id, newcomer.credential.password)
    with NothingWritten(db_session):
        response = browser.post("/account/setup", {"username": "de-gekozen.naam", "password": password,
                                                   "confirm": password})
    assert response.status_code == 422
    errors = page(response).field_errors("password")
    assert len(errors) == 1 and message in errors[0], page(response).text
    assert browser.get("/").status_code == 302  # still has to choose


@pytest.mark.parametrize("password,message", [w[1:] for w in WEAK], ids=[w[0] for w in WEAK])
def test_weak_new_password_is_refused_api(newcomer, visitor, db_session, password, message):
    browser = visitor()
    browser.api_login(newcomer.credential.user_id, newcomer.credential.password)
    with NothingWritten(db_session):
        response = browser.api("POST", "/api/v1/account/credentials",
                               {"username": "de-gekozen.naam", "password": password})
    problem = problem_of(response, 422, "invalid-input")
    assert problem["field"] == "password" and message in problem["detail"]
    assert browser.api("GET", "/api/v1/session").get_json()["must_choose_credentials"] is True


def test_setup_refuses_differing_confirmation_and_bad_usernames(newcomer, world, visitor, db_session):
    browser = visitor()
    browser.login(newcomer.credential.user_id, newcomer.credential.password)
    with NothingWritten(db_session):
        response = browser.post("/account/setup", {"username": "goede.naam", "password": "Lavendel-Brug-Oever-12",
                                                   "confirm": "Lavendel-Brug-Oever-13"})
    assert response.status_code == 422 and page(response).field_errors("confirm") == ["The two passwords differ."]
    for username, status in (("x", 422), ("met spatie", 422), (world.officer().login, 409)):
        with NothingWritten(db_session):
            response = browser.post("/account/setup", {"username": username, "password": "Lavendel-Brug-Oever-12",
                                                       "confirm": "Lavendel-Brug-Oever-12"})
        assert response.status_code == status, username
        assert page(response).field_errors("username"), username


# --- the JSON envelope and CSRF --------------------------------------------------------------------------


@pytest.fixture
def body_ok():
    return {"kbo": make_kbo(4_900_101), "name": "Envelop BV", "street": "Dorp 1", "postal_code": "1000",
            "city": "Brussel", "legal_form": "BV"}


def test_oversized_json_is_refused_413(app, officer_api, db_session, body_ok):
    limit = app.config["API_MAX_JSON_BYTES"]
    body = json.dumps(dict(body_ok, padding="x" * (limit + 1)))
    with NothingWritten(db_session):
        response = officer_api.api("POST", "/api/v1/enterprises", data=body, content_type="application/json")
    problem = problem_of(response, 413, "payload-too-large")
    assert str(limit) in problem["detail"]
    # just under the limit the body is parsed (and then refused for its unknown member, not its size)
    body = json.dumps(dict(body_ok, padding="x" * (limit - 200)))
    assert officer_api.api("POST", "/api/v1/enterprises", data=body,
                           content_type="application/json").status_code == 422


def test_malformed_json_is_refused_400(officer_api, db_session):
    with NothingWritten(db_session):
        response = officer_api.api("POST", "/api/v1/enterprises", data='{"kbo": "0123", ',
                                   content_type="application/json")
    assert "not valid JSON" in problem_of(response, 400, "malformed-json")["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_refused_415(officer_api, db_session, body_ok, content_type):
    kwargs = {"data": json.dumps(body_ok)}
    if content_type:
        kwargs["content_type"] = content_type
    with NothingWritten(db_session):
        response = officer_api.api("POST", "/api/v1/enterprises", **kwargs)
    problem_of(response, 415, "unsupported-media-type")


def test_unknown_json_fields_are_refused_422(officer_api, world, db_session, body_ok):
    with NothingWritten(db_session):
        response = officer_api.api("POST", "/api/v1/enterprises", dict(body_ok, is_admin=True))
    problem = problem_of(response, 422, "invalid-input")
    assert problem["field"] == "is_admin"
    enterprise = world.employer()
    person = world.person(enterprise, "zaakvoerder")
    with NothingWritten(db_session):
        response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin",
                                   {"person_id": person.id, "role": "local_admin"})
    assert problem_of(response, 422)["field"] == "role"


def test_missing_csrf_token_is_refused_400(officer_web, officer_api, world, db_session, body_ok):
    enterprise = world.employer()
    person = world.person(enterprise, "zaakvoerder")
    form = dict(body_ok, rsz_number="", joint_committee="")
    with NothingWritten(db_session):
        response = officer_web.post("/officer/enterprises/new", form, csrf=False)
    assert response.status_code == 400
    assert "Your form expired or was not sent from this site." in page(response).text
    with NothingWritten(db_session):
        response = officer_web.post(f"/officer/enterprises/{enterprise.id}/local-admin", {"person_id": person.id,
                                                                                          "csrf_token": "forged"},
                                    csrf=False)
    assert response.status_code == 400
    with NothingWritten(db_session):
        response = officer_api.api("POST", "/api/v1/enterprises", body_ok, csrf=False)
    problem_of(response, 400, "csrf-failed")
    with NothingWritten(db_session):
        response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin",
                                   {"person_id": person.id}, headers={"X-CSRFToken": "forged"})
    problem_of(response, 400, "csrf-failed")
    # logging in needs the token as well (login CSRF)
    with NothingWritten(db_session):
        response = officer_api.api("POST", "/api/v1/session", {"login": "x", "password": "y"}, csrf=False)
    problem_of(response, 400, "csrf-failed")
