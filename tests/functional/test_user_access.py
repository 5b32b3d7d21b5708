"""Acceptance 4 and 6: what a user sees and may open, and how an ended link stops
roles and rights at once. HTML and JSON API."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask_babel import force_locale, gettext

from access.catalogue import Tier, load_catalogue
from tests.functional.helpers import location_path, page, problem_of

CATALOGUE = load_catalogue()
DAY = date(2026, 11, 2)
CERTIFICATE_REASON = ("This application requires proof of possession of the private key of an active qualified "
                      "certificate of the enterprise: use the API with a certificate-bound token, or send a signed "
                      "file.")


def _free(employer: bool = True) -> set[str]:
    return {a.code for a in CATALOGUE.applications() if a.tier is Tier.FREE and (employer or not a.employer_only)}


def _dashboard(response, enterprise) -> dict[str, set[str]]:
    """The dashboard card of an enterprise: tier heading -> application codes listed under it."""
    shown = page(response)
    tiers: dict[str, set[str]] = {}
    inside, heading = False, None
    for element in shown.elements:
        if element.tag == "section":
            inside = element.attrs.get("data-testid") == f"enterprise-{enterprise.kbo_number}"
        elif inside and element.tag == "h3":
            heading = element.text
            tiers[heading] = set()
        elif inside and element.tag == "a" and "data-app" in element.attrs:
            tiers[heading].add(element.attrs["data-app"])
    return tiers


@pytest.fixture
def firm(world):
    enterprise = world.employer("Transport Vos")
    admin = world.local_admin(enterprise)
    user = world.member(enterprise, admin, rights=("dmfa", "werkgeversrepertorium_beveiligd"))
    return enterprise, admin, user


def test_user_dashboard_lists_only_what_he_may_open_by_tier(firm, visitor):
    enterprise, admin, user = firm
    browser = visitor()
    assert browser.login(user.login).status_code == 302
    response = browser.get("/")
    tiers = _dashboard(response, enterprise)
    assert tiers == {"Free access": _free(), "User name and password": {"dmfa", "werkgeversrepertorium_beveiligd"}}
    card = page(response).find(data_testid=f"enterprise-{enterprise.kbo_number}")
    assert "user" in card.text and "Manage users and rights" not in card.text

    opened = browser.get(f"/enterprises/{enterprise.id}/apps/dmfa")
    assert opened.status_code == 200
    assert page(opened).testid("app-title") == CATALOGUE.get("dmfa").name("en")
    assert f"right on {CATALOGUE.get('dmfa').name('en')} granted by {admin.name}" in page(opened).testid("access-path")


def test_user_opening_another_application_gets_403_with_the_reason_html(firm, visitor, db_session):
    enterprise, admin, user = firm
    browser = visitor()
    browser.login(user.login)
    for code in ("personeelsbestand", "asr", "kbo_prive_gegevens"):
        response = browser.get(f"/enterprises/{enterprise.id}/apps/{code}")
        assert response.status_code == 403, code
        assert page(response).testid("deny-reason") == \
            f"You have no right on {CATALOGUE.get(code).name('en')} for {enterprise.kbo_display}. " \
            "Ask your local administrator."
    response = browser.get(f"/enterprises/{enterprise.id}/access")
    assert response.status_code == 403
    assert page(response).testid("deny-reason") == f"You are not an administrator of {enterprise.kbo_display}."
    response = browser.get(f"/enterprises/{enterprise.id}/apps/no_such_app")
    assert response.status_code == 403
    assert page(response).testid("deny-reason") == "This application does not exist."


def test_user_opening_another_application_gets_403_with_the_reason_api(firm, visitor):
    enterprise, admin, user = firm
    browser = visitor()
    browser.api_login(user.login)
    (entry,) = browser.api("GET", "/api/v1/me/applications").get_json()
    assert entry["role"] == "user"
    assert {a["code"] for a in entry["applications"]} == _free() | {"dmfa", "werkgeversrepertorium_beveiligd"}
    assert browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/apps/dmfa").status_code == 200
    problem = problem_of(browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/apps/personeelsbestand"), 403,
                         "no-right")
    assert problem["detail"] == f"no right on Personnel file for {enterprise.kbo_display}"
    problem_of(browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/access"), 403, "not-an-administrator")


def test_user_of_one_enterprise_gets_nothing_in_another(firm, world, visitor):
    enterprise, admin, user = firm
    other = world.employer("Andere Firma")
    world.local_admin(other)
    browser = visitor()
    browser.login(user.login)
    response = browser.get(f"/enterprises/{other.id}/apps/dmfa")
    assert response.status_code == 403
    assert page(response).testid("deny-reason").startswith(f"You are not under the direct authority of "
                                                           f"{other.kbo_display} on {DAY.isoformat()}")
    assert list(_dashboard(browser.get("/"), other)) == []


def test_certificate_tier_is_refused_even_with_a_right_html(firm, world, visitor):
    enterprise, admin, user = firm
    world.grant(enterprise, admin, user.person, "directe_wijziging", "bestandsoverdracht")
    browser = visitor()
    browser.login(user.login)
    tiers = _dashboard(browser.get("/"), enterprise)
    assert "Qualified certificate" not in tiers
    assert not ({"directe_wijziging", "bestandsoverdracht"} & set().union(*tiers.values()))
    for code in ("directe_wijziging", "bestandsoverdracht"):
        response = browser.get(f"/enterprises/{enterprise.id}/apps/{code}")
        assert response.status_code == 403
        assert page(response).testid("deny-reason") == CERTIFICATE_REASON
        assert "requires proof of possession of the private key of an active qualified certificate" \
            in page(response).text


def test_certificate_tier_is_refused_api(firm, world, visitor):
    enterprise, admin, user = firm
    world.grant(enterprise, admin, user.person, "directe_wijziging")
    for persona in (user, admin):
        browser = visitor()
        browser.api_login(persona.login)
        problem = problem_of(browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/apps/directe_wijziging"), 403,
                             "certificate-required")
        assert "requires proof of possession of the private key of a registered qualified certificate" \
            in problem["detail"]
        codes = {a["code"] for e in browser.api("GET", "/api/v1/me/applications").get_json()
                 for a in e["applications"]}
        assert "directe_wijziging" not in codes


def test_certificate_refusal_in_dutch(app, firm, world, visitor):
    enterprise, admin, user = firm
    world.grant(enterprise, admin, user.person, "directe_wijziging")
    browser = visitor(lang="nl")
    browser.login(user.login)
    assert browser.post("/lang/nl", {"next": "/"}).status_code == 302
    response = browser.get(f"/enterprises/{enterprise.id}/apps/directe_wijziging")
    assert response.status_code == 403
    with app.test_request_context(), force_locale("nl"):
        expected = gettext(CERTIFICATE_REASON)
    shown = page(response)
    assert shown.find("html").attrs["lang"] == "nl"
    assert shown.testid("deny-reason") == expected
    if expected != CERTIFICATE_REASON:  # once translated, the English text must not leak through
        assert CERTIFICATE_REASON not in shown.text


# --- 6. an ended link ends role and rights at once -------------------------------------------------


def test_officer_ends_a_users_link_and_his_next_request_is_denied_html(firm, world, visitor, officer_web,
                                                                      db_session):
    enterprise, admin, user = firm
    browser = visitor()
    browser.login(user.login)
    assert browser.get(f"/enterprises/{enterprise.id}/apps/dmfa").status_code == 200

    link_id = _link_id(db_session, enterprise, user.person)
    response = officer_web.post(f"/officer/enterprises/{enterprise.id}/links/{link_id}/end",
                                {"end_date": (DAY - timedelta(days=1)).isoformat()})
    assert response.status_code == 302

    # The link ended yesterday: his sessions ended with it (issue 6); logged in again, he is refused.
    assert location_path(browser.get(f"/enterprises/{enterprise.id}/apps/dmfa")) == "/login"
    browser.relogin()
    denied = browser.get(f"/enterprises/{enterprise.id}/apps/dmfa")
    assert denied.status_code == 403
    assert page(denied).testid("deny-reason").startswith(
        f"You are not under the direct authority of {enterprise.kbo_display} on {DAY.isoformat()}")
    assert _dashboard(browser.get("/"), enterprise) == {"Free access": _free()}

    admin_browser = visitor()
    admin_browser.login(admin.login)
    row = page(admin_browser.get(f"/enterprises/{enterprise.id}/access")).find("tr", data_person=str(user.id))
    assert "(link ended: no access)" in row.text


def test_officer_ends_the_admins_link_and_his_role_stops_api(firm, world, visitor, officer_api, db_session, clock):
    enterprise, admin, user = firm
    browser = visitor()
    browser.api_login(admin.login)
    assert browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/access").status_code == 200

    link_id = _link_id(db_session, enterprise, admin.person)
    response = officer_api.api("POST", f"/api/v1/links/{link_id}/end", {"end_date": DAY.isoformat()})
    assert response.status_code == 200 and response.get_json()["end_date"] == DAY.isoformat()
    # the end date is inclusive: today he still is the administrator, tomorrow not
    assert browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/access").status_code == 200
    clock.advance(days=1)
    browser.relogin()  # a day later: a new session (the old one timed out)
    problem_of(browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/access"), 403, "no-direct-authority")
    problem_of(browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/apps/dmfa"), 403, "no-direct-authority")
    problem_of(browser.api("PUT", f"/api/v1/enterprises/{enterprise.id}/rights/{user.id}/asr"), 403,
               "no-direct-authority")
    # his users keep their rights
    user_browser = visitor()
    user_browser.api_login(user.login)
    assert user_browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/apps/dmfa").status_code == 200


@pytest.mark.parametrize("days", [0, 30])
def test_end_date_passing_stops_role_and_rights(world, visitor, clock, days):
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    person = world.person(enterprise, "werknemer", end=DAY + timedelta(days=days))
    user = world.member(enterprise, admin, person=person, rights=("dmfa",))
    co_person = world.person(enterprise, "werknemer", end=DAY + timedelta(days=days))
    co_admin = world.member(enterprise, admin, "co_admin", person=co_person)
    html, api = visitor(), visitor(ip="203.0.113.11")
    html.login(user.login)
    api.api_login(co_admin.login)

    clock.advance(days=days, hours=12)  # the last day, 22:00 in Brussels (21:00 UTC)
    html.relogin(), api.relogin()  # hours later: new sessions (the old ones timed out)
    assert html.get(f"/enterprises/{enterprise.id}/apps/dmfa").status_code == 200
    assert api.api("GET", f"/api/v1/enterprises/{enterprise.id}/access").status_code == 200

    clock.advance(hours=2)  # 23:00 UTC: already the next day in Brussels
    html.relogin(), api.relogin()
    denied = html.get(f"/enterprises/{enterprise.id}/apps/dmfa")
    assert denied.status_code == 403
    assert "You are not under the direct authority of" in page(denied).testid("deny-reason")
    problem_of(api.api("GET", f"/api/v1/enterprises/{enterprise.id}/access"), 403, "no-direct-authority")
    problem_of(api.api("GET", f"/api/v1/enterprises/{enterprise.id}/apps/personeelsbestand"), 403,
               "no-direct-authority")


def _link_id(session, enterprise, person) -> int:
    from sqlalchemy import select

    from access.models import Link

    session.expire_all()
    return session.scalar(select(Link.id).where(Link.enterprise_id == enterprise.id, Link.person_id == person.id))


def test_officer_appoints_a_successor_once_the_admins_link_ended(firm, world, officer_api, clock, db_session):
    enterprise, admin, user = firm
    response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin", {"person_id": user.id})
    assert "already has a local administrator" in problem_of(response, 409)["detail"]
    link_id = _link_id(db_session, enterprise, admin.person)
    assert officer_api.api("POST", f"/api/v1/links/{link_id}/end", {"end_date": DAY.isoformat()}).status_code == 200
    clock.advance(days=1)
    officer_api.relogin()
    response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin", {"person_id": user.id})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["initial_credential"] is None  # he already has his own credentials
    assert world.current_role(enterprise, user.person).value == "local_admin"
    assert world.current_role(enterprise, admin.person) is None
    assert [m.kind for m in world.outbox_for(user.person)][-1] == "role-notice"
