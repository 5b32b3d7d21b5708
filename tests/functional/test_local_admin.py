"""Acceptance 3 and 5: the local administrator's matrix, users, rights,
co-administrators and hand-over; an enterprise without staff run by its
zaakvoerder. HTML and JSON API."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from access.catalogue import Tier, load_catalogue
from access.clock import as_utc, utcnow
from access.models import Account, Role
from tests.functional.helpers import PASSWORD, NothingWritten, location_path, page, problem_of

NOT_UNDER_AUTHORITY = "is not under the direct authority of"
CATALOGUE = load_catalogue()


def _apps(tier: Tier, employer: bool) -> set[str]:
    return {a.code for a in CATALOGUE.applications() if a.tier is tier and (employer or not a.employer_only)}


def _grantable(employer: bool) -> set[str]:
    return {a.code for a in CATALOGUE.grantable() if employer or not a.employer_only}


def _row(matrix_page, person):
    row = matrix_page.find("tr", data_person=str(person.id))
    assert row is not None, f"{person.full_name} not in the matrix"
    return row


def _granted(matrix_page, person) -> set[str]:
    """The rights the matrix shows as granted in the person's row."""
    granted, inside = set(), False
    for element in matrix_page.elements:
        if element.tag == "tr":
            inside = element.attrs.get("data-person") == str(person.id)
        elif inside and element.tag == "button" and element.has_class("granted"):
            granted.add(element.attrs["data-right"])
    return granted


@pytest.fixture
def shop(world):
    """An employer with its local administrator, two employees, a second co-admin candidate and a
    self-employed collaborator; none but the administrator has a role yet."""
    enterprise = world.employer("Bakkerij Korst")
    admin = world.local_admin(enterprise)
    return dict(enterprise=enterprise, admin=admin,
                wim=world.person(enterprise, "werknemer", first="Wim", last="Werker"),
                wanda=world.person(enterprise, "werknemer", first="Wanda", last="Wevers"),
                cas=world.person(enterprise, "werknemer", first="Cas", last="Coadmin"),
                cor=world.person(enterprise, "bestuurder", first="Cor", last="Coadmin"),
                zelf=world.person(enterprise, "zelfstandige_medewerker", first="Zef", last="Zelfstandig"))


def test_local_admin_manages_users_rights_and_co_admins_html(shop, world, visitor, db_session):
    e, admin = shop["enterprise"], shop["admin"]
    browser = visitor()
    assert browser.login(admin.login).status_code == 302
    base = f"/enterprises/{e.id}/access"

    matrix = page(browser.get(base))
    assert {th.attrs["title"] for th in matrix.find_all("th", cls="app")} == \
        {CATALOGUE.get(code).name("en") for code in _grantable(True)}
    assert "local administrator" in _row(matrix, admin.person).text

    # add a user: he gets a user-id and an initial password, shown once and mailed
    response = browser.post(f"{base}/members", {"person_id": shop["wim"].id, "role": "user"})
    assert response.status_code == 200
    assert page(response).testid("initial-password")
    assert world.current_role(e, shop["wim"]) is Role.USER
    assert [m.kind for m in world.outbox_for(shop["wim"])] == ["initial-credential"]

    # direct authority is checked
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = browser.post(f"{base}/members", {"person_id": shop["zelf"].id, "role": "user"})
    assert response.status_code == 422
    assert NOT_UNDER_AUTHORITY in page(response).text and "zelfstandige_medewerker" in page(response).text

    # grant, see it in the matrix, revoke
    response = browser.post(f"{base}/rights/{shop['wim'].id}/dmfa", {"grant": "1"})
    assert response.status_code == 302 and location_path(response) == base
    assert world.current_rights(e, shop["wim"]) == {"dmfa"}
    assert _granted(page(browser.get(base)), shop["wim"]) == {"dmfa"}
    response = browser.post(f"{base}/rights/{shop['wim'].id}/dmfa", {"grant": "0"})
    assert response.status_code == 302
    assert world.current_rights(e, shop["wim"]) == set()
    assert _granted(page(browser.get(base)), shop["wim"]) == set()

    # co-administrators
    for person in (shop["cas"], shop["cor"]):
        response = browser.post(f"{base}/members", {"person_id": person.id, "role": "co_admin"})
        assert response.status_code == 200
        assert world.current_role(e, person) is Role.CO_ADMIN
    assert "co-administrator" in _row(page(browser.get(base)), shop["cas"]).text

    response = browser.post(f"{base}/members/{shop['cor'].id}/remove")
    assert response.status_code == 302
    assert world.current_role(e, shop["cor"]) is None
    assert shop["cor"].id not in {int(r.attrs["data-person"]) for r in page(browser.get(base)).find_all("tr")
                                  if "data-person" in r.attrs}


def test_co_admin_manages_users_but_not_co_admins_nor_hand_over_html(shop, world, visitor, db_session):
    e, admin = shop["enterprise"], shop["admin"]
    cas = world.member(e, admin, "co_admin", person=shop["cas"])
    cor = world.member(e, admin, "co_admin", person=shop["cor"])
    browser = visitor()
    assert browser.login(cas.login).status_code == 302
    base = f"/enterprises/{e.id}/access"

    assert browser.get(base).status_code == 200
    assert browser.post(f"{base}/members", {"person_id": shop["wim"].id, "role": "user"}).status_code == 200
    assert browser.post(f"{base}/rights/{shop['wim'].id}/asr", {"grant": "1"}).status_code == 302
    assert world.current_rights(e, shop["wim"]) == {"asr"}

    reason = f"Only the local administrator of {e.kbo_display} may do this."
    attempts = [(f"{base}/members", {"person_id": shop["wanda"].id, "role": "co_admin"}),
                (f"{base}/members/{cor.id}/remove", {}),
                (f"{base}/hand-over", {"handover-person_id": cas.id})]
    for path, data in attempts:
        with NothingWritten(db_session, audit=1, outcome="denied") as written:
            response = browser.post(path, data)
        assert response.status_code == 403, path
        assert page(response).testid("deny-reason") == reason, path
        assert written.new_audit[0].reason == f"only the local administrator of {e.kbo_display} may do this"
    assert world.current_role(e, shop["wanda"]) is None and world.current_role(e, cor.person) is Role.CO_ADMIN
    assert world.current_role(e, admin.person) is Role.LOCAL_ADMIN


def test_co_admin_refusals_api(shop, world, visitor, db_session):
    e, admin = shop["enterprise"], shop["admin"]
    cas = world.member(e, admin, "co_admin", person=shop["cas"])
    cor = world.member(e, admin, "co_admin", person=shop["cor"])
    browser = visitor()
    assert browser.api_login(cas.login).status_code == 200

    assert browser.api("POST", f"/api/v1/enterprises/{e.id}/members",
                       {"person_id": shop["wim"].id, "role": "user"}).status_code == 201
    assert browser.api("PUT", f"/api/v1/enterprises/{e.id}/rights/{shop['wim'].id}/asr").status_code == 200
    for method, path, body in [("POST", f"/api/v1/enterprises/{e.id}/members",
                                {"person_id": shop["wanda"].id, "role": "co_admin"}),
                               ("DELETE", f"/api/v1/enterprises/{e.id}/members/{cor.id}", None),
                               ("POST", f"/api/v1/enterprises/{e.id}/hand-over", {"person_id": cas.id})]:
        with NothingWritten(db_session, audit=1, outcome="denied"):
            response = browser.api(method, path, body)
        problem = problem_of(response, 403, "local-admin-only")
        assert problem["detail"] == f"only the local administrator of {e.kbo_display} may do this"


def test_local_admin_manages_users_rights_and_co_admins_api(shop, world, visitor, db_session):
    e, admin = shop["enterprise"], shop["admin"]
    browser = visitor()
    assert browser.api_login(admin.login).status_code == 200
    base = f"/api/v1/enterprises/{e.id}"

    matrix = browser.api("GET", f"{base}/access").get_json()
    assert set(matrix["applications"]) == _grantable(True)
    assert [(r["person_id"], r["role"]) for r in matrix["rows"]] == [(admin.id, "local_admin")]

    response = browser.api("POST", f"{base}/members", {"person_id": shop["wim"].id, "role": "user"})
    assert response.status_code == 201
    assert response.get_json()["initial_credential"]["initial_password"] in world.outbox_for(shop["wim"])[0].body

    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = browser.api("POST", f"{base}/members", {"person_id": shop["zelf"].id})
    assert NOT_UNDER_AUTHORITY in problem_of(response, 422)["detail"]

    assert browser.api("PUT", f"{base}/rights/{shop['wim'].id}/dmfa").get_json() == \
        {"person_id": shop["wim"].id, "application": "dmfa", "granted": True}
    assert browser.api("PUT", f"{base}/rights/{shop['wim'].id}/vakantiebestand").status_code == 200
    rows = {r["person_id"]: r for r in browser.api("GET", f"{base}/access").get_json()["rows"]}
    assert rows[shop["wim"].id]["rights"] == ["dmfa", "vakantiebestand"]
    assert browser.api("DELETE", f"{base}/rights/{shop['wim'].id}/dmfa").get_json()["granted"] is False
    assert world.current_rights(e, shop["wim"]) == {"vakantiebestand"}

    assert browser.api("POST", f"{base}/members", {"person_id": shop["cas"].id, "role": "co_admin"}).status_code == 201
    assert world.current_role(e, shop["cas"]) is Role.CO_ADMIN
    assert browser.api("DELETE", f"{base}/members/{shop['cas'].id}").status_code == 204
    assert world.current_role(e, shop["cas"]) is None

    # removing a user ends his rights with the role
    assert browser.api("DELETE", f"{base}/members/{shop['wim'].id}").status_code == 204
    assert world.current_role(e, shop["wim"]) is None and world.current_rights(e, shop["wim"]) == set()


def test_hand_over_keeps_users_rights_and_makes_old_admin_a_user_html(shop, world, visitor):
    e, admin = shop["enterprise"], shop["admin"]
    wim = world.member(e, admin, person=shop["wim"], rights=("dmfa", "asr"))
    wanda = world.member(e, admin, person=shop["wanda"], rights=("personeelsbestand",))
    browser = visitor()
    assert browser.login(admin.login).status_code == 302

    response = browser.post(f"/enterprises/{e.id}/access/hand-over", {"handover-person_id": wanda.id})
    assert response.status_code == 302 and location_path(response) == "/"  # she has her own credentials already
    assert world.current_role(e, wanda.person) is Role.LOCAL_ADMIN
    assert world.current_role(e, admin.person) is Role.USER
    assert world.current_rights(e, wim.person) == {"dmfa", "asr"}

    # the old administrator is now a user: no access management, and his dashboard says so
    denied = browser.get(f"/enterprises/{e.id}/access")
    assert denied.status_code == 403
    assert page(denied).testid("deny-reason") == f"You are not an administrator of {e.kbo_display}."
    card = page(browser.get("/")).find(data_testid=f"enterprise-{e.kbo_number}")
    assert "user" in card.text and "local administrator" not in card.text

    # the users keep working with their rights; the new administrator manages
    wim_browser = visitor()
    wim_browser.login(wim.login)
    assert wim_browser.get(f"/enterprises/{e.id}/apps/dmfa").status_code == 200
    new_admin = visitor()
    new_admin.login(wanda.login)
    assert new_admin.get(f"/enterprises/{e.id}/access").status_code == 200


def test_hand_over_api_and_refusals(shop, world, visitor, db_session):
    e, admin = shop["enterprise"], shop["admin"]
    wim = world.member(e, admin, person=shop["wim"], rights=("dmfa",))
    browser = visitor()
    browser.api_login(admin.login)
    base = f"/api/v1/enterprises/{e.id}"

    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = browser.api("POST", f"{base}/hand-over", {"person_id": shop["zelf"].id})
    assert NOT_UNDER_AUTHORITY in problem_of(response, 422)["detail"]
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = browser.api("POST", f"{base}/hand-over", {"person_id": admin.id})
    problem_of(response, 422)

    # to a person who never had an account: he gets an initial credential, shown in this answer only
    response = browser.api("POST", f"{base}/hand-over", {"person_id": shop["cas"].id})
    assert response.status_code == 200, response.get_json()
    out = response.get_json()
    assert out["role"] == "local_admin" and out["initial_credential"]["user_id"]
    assert world.current_role(e, shop["cas"]) is Role.LOCAL_ADMIN
    assert world.current_role(e, admin.person) is Role.USER
    assert world.current_rights(e, wim.person) == {"dmfa"}
    problem_of(browser.api("GET", f"{base}/access"), 403, "not-an-administrator")


def test_hand_over_initial_password_follows_configured_days(app, shop, world, visitor, db_session):
    """The successor's initial password must expire after INITIAL_PASSWORD_DAYS, like every other one."""
    app.config["INITIAL_PASSWORD_DAYS"] = 3
    e, admin = shop["enterprise"], shop["admin"]
    browser = visitor()
    browser.login(admin.login)
    response = browser.post(f"/enterprises/{e.id}/access/hand-over", {"handover-person_id": shop["cas"].id})
    assert response.status_code == 200
    assert page(response).testid("initial-password")
    db_session.expire_all()
    account = db_session.scalar(select(Account).where(Account.person_id == shop["cas"].id))
    assert as_utc(account.initial_password_expires_at) == utcnow() + timedelta(days=3)


def test_local_admin_reaches_every_password_tier_application_without_a_grant(shop, world, visitor, db_session):
    e, admin = shop["enterprise"], shop["admin"]
    assert world.current_rights(e, admin.person) == set()
    browser = visitor()
    browser.login(admin.login)
    password_apps = _apps(Tier.PASSWORD, employer=True)
    for code in sorted(password_apps):
        response = browser.get(f"/enterprises/{e.id}/apps/{code}", follow_redirects=True)
        assert response.status_code == 200, code
        assert page(response).find(data_testid="access-path") is not None, code
        assert f"local administrator of {e.kbo_display}" in page(response).testid("access-path"), code
    for code in sorted(_apps(Tier.CERTIFICATE, employer=True)):
        response = browser.get(f"/enterprises/{e.id}/apps/{code}")
        assert response.status_code == 403, code
        assert "requires proof of possession of the private key of an active qualified certificate" \
            in page(response).testid("deny-reason")

    api = visitor()
    api.api_login(admin.login)
    for code in sorted(password_apps):
        response = api.api("GET", f"/api/v1/enterprises/{e.id}/apps/{code}")
        assert response.status_code == 200, code
        assert response.get_json()["path"][0].startswith("local administrator of"), code
    mine = api.api("GET", "/api/v1/me/applications").get_json()
    (entry,) = mine
    assert entry["role"] == "local_admin"
    assert {a["code"] for a in entry["applications"] if a["tier"] == "password"} == password_apps
    assert not [a for a in entry["applications"] if a["tier"] == "certificate"]


# --- 5. an enterprise without staff -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zaakvoerder", "vennoot", "bestuurder"])
def test_enterprise_without_staff_is_run_by_its_zaakvoerder(officer_web, world, visitor, kind):
    solo = world.non_employer("Architectenbureau Solo")
    boss = world.person(solo, kind, first="Sam", last="Solo")
    shown = page(officer_web.post(f"/officer/enterprises/{solo.id}/local-admin", {"person_id": boss.id}))
    assert shown.testid("local-admin") == "Sam Solo"
    user_id, password = shown.testid("user-id"), shown.testid("initial-password")

    browser = visitor()
    assert location_path(browser.login(user_id, password)) == "/account/setup"
    response = browser.post("/account/setup", {"username": "sam.solo", "password": "Vuurtoren-Haven-Mist-8",
                                               "confirm": "Vuurtoren-Haven-Mist-8"})
    assert response.status_code == 302
    browser.enrol_totp("sam.solo")
    dashboard = page(browser.get("/"))
    links = {a.attrs["data-app"] for a in dashboard.find_all("a") if "data-app" in a.attrs}
    # free-tier applications are open to anyone; of the others only the federal ones, not the employers'
    links -= _apps(Tier.FREE, employer=True)
    assert links == _apps(Tier.PASSWORD, employer=False) == {"unieke_aangifte_starters", "kbo_prive_gegevens"}
    for code in sorted(links):
        assert browser.get(f"/enterprises/{solo.id}/apps/{code}").status_code == 200

    refused = browser.get(f"/enterprises/{solo.id}/apps/dmfa")
    assert refused.status_code == 403
    assert "is for employers only" in page(refused).testid("deny-reason")

    matrix = page(browser.get(f"/enterprises/{solo.id}/access"))
    assert {th.attrs["title"] for th in matrix.find_all("th", cls="app")} == \
        {CATALOGUE.get(code).name("en") for code in _grantable(False)}


def test_enterprise_without_staff_api(officer_api, world, visitor):
    solo = world.non_employer()
    boss = world.person(solo, "zaakvoerder")
    credential = officer_api.api("POST", f"/api/v1/enterprises/{solo.id}/local-admin",
                                 {"person_id": boss.id}).get_json()["initial_credential"]
    browser = visitor()
    browser.api_login(credential["user_id"], credential["initial_password"])
    assert browser.api("POST", "/api/v1/account/credentials",
                       {"username": "solo.boss", "password": "Vuurtoren-Haven-Mist-8"}).status_code == 200
    browser.api_enrol_totp("solo.boss")
    (entry,) = browser.api("GET", "/api/v1/me/applications").get_json()
    assert entry["enterprise"]["employer"] is False and entry["role"] == "local_admin"
    assert {a["code"] for a in entry["applications"] if a["tier"] != "free"} == \
        {"unieke_aangifte_starters", "kbo_prive_gegevens"}
    assert set(browser.api("GET", f"/api/v1/enterprises/{solo.id}/access").get_json()["applications"]) == \
        _grantable(False)
    problem_of(browser.api("GET", f"/api/v1/enterprises/{solo.id}/apps/dmfa"), 403, "employers-only")
    # a right on an employer-only application cannot be granted in an enterprise without staff
    problem_of(browser.api("PUT", f"/api/v1/enterprises/{solo.id}/rights/{boss.id}/dmfa"), 422)


def test_co_admin_cannot_demote_another_co_admin(shop, world, visitor, db_session):
    """Only the local administrator appoints or removes co-administrators. Re-designating a
    co-administrator as a plain user removes his co-administrator role, so a co-administrator
    must not be able to do it either (HTML and API)."""
    e, admin = shop["enterprise"], shop["admin"]
    cas = world.member(e, admin, "co_admin", person=shop["cas"])
    cor = world.member(e, admin, "co_admin", person=shop["cor"])
    reason = f"Only the local administrator of {e.kbo_display} may do this."
    html = visitor()
    html.login(cas.login)
    response = html.post(f"/enterprises/{e.id}/access/members", {"person_id": cor.id, "role": "user"})
    outcome_html = (response.status_code, world.current_role(e, cor.person))

    world.session.expire_all()
    if world.current_role(e, cor.person) is not Role.CO_ADMIN:  # put him back for the API attempt
        world.member(e, admin, "co_admin", person=cor.person)
    api = visitor(ip="203.0.113.30")
    api.api_login(cas.login)
    response = api.api("POST", f"/api/v1/enterprises/{e.id}/members", {"person_id": cor.id, "role": "user"})
    outcome_api = (response.status_code, world.current_role(e, cor.person))
    assert {"html": outcome_html, "api": outcome_api} == \
        {"html": (403, Role.CO_ADMIN), "api": (403, Role.CO_ADMIN)}, reason
    # the local administrator himself may
    boss = visitor(ip="203.0.113.31")
    boss.login(admin.login)
    assert boss.post(f"/enterprises/{e.id}/access/members", {"person_id": cor.id, "role": "user"}).status_code == 200
    assert world.current_role(e, cor.person) is Role.USER
