"""The machine API: API clients registered by the local administrator, the token endpoint (client
credentials with private_key_jwt), bearer tokens on /api/v1 through the decision point, and the example
client of examples/api_client.py driving a live server as a real client would."""
from __future__ import annotations

import threading
from functools import partial
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from certificates import clients
from certificates import operations as cops
from certificates.models import AccessToken, ApiClient, UsedAssertion
from certificates.validation import load_trust_list
from examples import api_client as example
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import ProviderKind
from tests.conftest import DEFAULT_NOW
from tests.functional.helpers import OnlyAuditWritten, audit_since, last_audit_id, problem_of, row_counts
from tests.pki import TestPKI, ec_key, rsa_key

BASE = "https://portal.test"
TOKEN_URL = BASE + "/oauth/token"
MACHINE_MODELS = (ApiClient, UsedAssertion, AccessToken)


@pytest.fixture(scope="module")
def pki():
    return TestPKI(DEFAULT_NOW)


@pytest.fixture
def trust(pki, tmp_path):
    return load_trust_list(pki.write_trust_list(Path(tmp_path) / "trust"))


class Machines:
    """Enterprises with certificates and API clients, built through the operations and committed."""

    def __init__(self, world, pki, trust, clock) -> None:
        self.world, self.pki, self.trust, self.clock = world, pki, trust, clock

    def certificate(self, enterprise, key=None):
        issued = self.pki.seal(enterprise.kbo_number, enterprise.name, key=key)
        certificate = cops.register_certificate(self.world.session, enterprise, issued.pem_with_chain,
                                                trust=self.trust, by=self.world.ctx).certificate
        self.world.commit()
        return certificate, issued

    def client(self, enterprise, scopes=("dmfa", "werkgeversrepertorium_beveiligd"), key=None):
        certificate, issued = self.certificate(enterprise, key=key)
        api_client = clients.register_api_client(self.world.session, enterprise, certificate, "Loonmotor",
                                                 list(scopes), by=self.world.ctx)
        self.world.commit()
        return Machine(api_client, certificate, issued, self)


class Machine:
    def __init__(self, api_client, certificate, issued, machines: Machines) -> None:
        self.api_client, self.certificate, self.issued, self.machines = api_client, certificate, issued, machines
        self.client_id = api_client.client_id

    def assertion(self, **kwargs) -> str:
        kwargs.setdefault("issued_at", self.machines.clock.now().timestamp())
        certificate = kwargs.pop("certificate", self.issued.certificate)
        key = kwargs.pop("key", self.issued.key)
        token_url = kwargs.pop("token_url", TOKEN_URL)
        return example.client_assertion(self.client_id, token_url, certificate, key, **kwargs)


@pytest.fixture
def machines(world, pki, trust, clock) -> Machines:
    return Machines(world, pki, trust, clock)


@pytest.fixture
def http(app):
    """A client without cookies, over HTTPS (OAuth 2 requires TLS; Authlib refuses plain http)."""
    return app.test_client(use_cookies=False)


def token_request(http, assertion: str | None, *, scope: str | None = None, grant_type="client_credentials",
                  base_url=BASE, **extra):
    data = {"grant_type": grant_type, "client_assertion_type": example.ASSERTION_TYPE, "client_assertion": assertion}
    if scope is not None:
        data["scope"] = scope
    data.update(extra)
    return http.post("/oauth/token", data={k: v for k, v in data.items() if v is not None}, base_url=base_url)


def get_token(http, machine: Machine, scope: str | None = None) -> str:
    response = token_request(http, machine.assertion(), scope=scope)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]


def bearer(http, method: str, path: str, token: str, **kwargs):
    return http.open(path, method=method, headers={"Authorization": f"Bearer {token}"}, base_url=BASE, **kwargs)


OnlyAudit = partial(OnlyAuditWritten, models=MACHINE_MODELS)  # writes only these audit records


def oauth_error(response, error: str, status: int = 400) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == error, body
    return body


# --- the token endpoint -------------------------------------------------------------------------


def test_token_then_an_api_call_through_the_decision_point(machines, world, http, db_session):
    employer = world.employer()
    machine = machines.client(employer)
    start = last_audit_id(db_session)
    response = token_request(http, machine.assertion(), scope="werkgeversrepertorium_beveiligd")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 300, "werkgeversrepertorium_beveiligd")
    stored = db_session.scalars(select(AccessToken)).one()
    assert stored.token_sha256 == clients.sha256_hex(body["access_token"])
    assert (stored.certificate_id, stored.scopes) == (machine.certificate.id, ["werkgeversrepertorium_beveiligd"])
    assert db_session.scalar(select(func.count()).select_from(UsedAssertion)) == 1
    use, issued = audit_since(db_session, start)
    assert (use.action, use.details["purpose"], use.details["token_id"], use.actor_label) == \
        ("certificate.use", "token", stored.id, machine.client_id)
    assert (issued.action, issued.outcome, issued.actor_label, issued.enterprise_id) == \
        ("oauth.token", "success", machine.client_id, employer.id)
    assert body["access_token"] not in str(issued.details)
    assert issued.details["certificate"] == machine.certificate.fingerprint

    start = last_audit_id(db_session)
    record = bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/repertory", body["access_token"])
    assert record.status_code == 200, record.get_data(as_text=True)
    assert record.get_json()["enterprise"]["id"] == employer.id
    assert record.get_json()["access_path"] == [
        f"API client of {employer.kbo_display}",
        f"API client {machine.client_id}, scope Employer repertory (secured)"]
    [decision] = audit_since(db_session, start)
    assert (decision.action, decision.outcome, decision.actor_label, decision.actor_person_id) == \
        ("decision:view", "allowed", machine.client_id, None)


def test_without_scope_the_token_carries_all_of_the_clients(machines, world, http):
    machine = machines.client(world.employer(), scopes=("dmfa", "asr"))
    response = token_request(http, machine.assertion())
    assert response.get_json()["scope"] == "dmfa asr"


def test_an_rsa_key_signs_with_rs256_or_ps256(machines, world, http):
    machine = machines.client(world.employer(), key=rsa_key())
    for alg in ("RS256", "PS256"):
        assert token_request(http, machine.assertion(alg=alg)).status_code == 200


def _other_enterprises(machines, world, machine):
    other = world.employer()
    certificate, issued = machines.certificate(other)
    return machine.assertion(certificate=issued.certificate, key=issued.key)


def _unregistered(machines, world, machine):
    issued = machines.pki.seal(machine.api_client.enterprise.kbo_number)  # never registered
    return machine.assertion(certificate=issued.certificate, key=issued.key)


def _revoked(machines, world, machine):
    cops.revoke_certificate(world.session, machine.certificate, "key lost", by=world.ctx)
    world.commit()
    return machine.assertion()


REFUSALS = {
    # name: (build the assertion, reason code, words of the description)
    "expired": (lambda m, w, x: x.assertion(issued_at=DEFAULT_NOW.timestamp() - 600, lifetime=120),
                "assertion-expired", "expired"),
    "too long": (lambda m, w, x: x.assertion(lifetime=301), "assertion-lifetime-too-long", "at most 300 seconds"),
    "wrong key": (lambda m, w, x: x.assertion(key=ec_key()), "bad-signature", "signature"),
    "wrong aud": (lambda m, w, x: x.assertion(token_url="https://elsewhere.test/oauth/token"), "wrong-audience",
                  TOKEN_URL),
    "unknown kid": (_unregistered, "unknown-kid", "no registered certificate"),
    "another enterprise's certificate": (_other_enterprises, "kid-not-of-client", "not the one"),
    "revoked certificate": (_revoked, "certificate-not-active", "revoked"),
    "wrong alg for the key": (lambda m, w, x: x.assertion(alg="RS256", key=rsa_key()), "algorithm-not-allowed",
                              "does not fit"),
    "no kid": (lambda m, w, x: example.sign_jws(x.issued.key, "ES256", {}, {
        "iss": x.client_id, "sub": x.client_id, "aud": TOKEN_URL, "iat": DEFAULT_NOW.timestamp(),
        "exp": DEFAULT_NOW.timestamp() + 60, "jti": "j"}), "kid-missing", "no kid"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_assertions_write_nothing_but_the_audit_record(case, machines, world, http, db_session):
    build, code, words = REFUSALS[case]
    employer = world.employer()
    machine = machines.client(employer)
    assertion = build(machines, world, machine)
    with OnlyAudit(db_session, ("oauth.token", "failure")) as audit:
        body = oauth_error(token_request(http, assertion), "invalid_client")
    assert words in body["error_description"]
    [refusal] = audit.records
    assert refusal.details["code"] == code and refusal.details["error"] == "invalid_client"
    assert refusal.details["claimed_client_id"] == machine.client_id
    assert refusal.enterprise_id == employer.id
    assert assertion not in str(refusal.details) and assertion not in (refusal.reason or "")


def test_a_replayed_assertion_is_refused(machines, world, http, db_session):
    machine = machines.client(world.employer())
    assertion = machine.assertion(jti="once-only")
    assert token_request(http, assertion).status_code == 200
    with OnlyAudit(db_session, ("oauth.token", "failure")) as audit:
        body = oauth_error(token_request(http, assertion), "invalid_client")
    assert "used before" in body["error_description"]
    assert audit.records[0].details["code"] == "jti-replayed"
    assert audit.records[0].details["jti_sha256"] == clients.sha256_hex("once-only")
    assert "once-only" not in str(audit.records[0].details)
    # a fresh assertion still works
    assert token_request(http, machine.assertion()).status_code == 200


def test_a_refused_request_does_not_burn_its_jti(machines, world, http, db_session):
    """Nothing of a refused request is kept: its jti row is rolled back with the rest."""
    machine = machines.client(world.employer())
    assertion = machine.assertion()
    oauth_error(token_request(http, assertion, scope="asr"), "invalid_scope")
    assert db_session.scalar(select(func.count()).select_from(UsedAssertion)) == 0


def test_protocol_errors_are_rfc_6749_json(machines, world, http, db_session):
    machine = machines.client(world.employer())
    with OnlyAudit(db_session, *[("oauth.token", "failure")] * 6):
        oauth_error(token_request(http, machine.assertion(), grant_type="password"), "unsupported_grant_type")
        oauth_error(token_request(http, None), "invalid_client")
        oauth_error(token_request(http, "not.a.jwt"), "invalid_client")
        oauth_error(token_request(http, machine.assertion(), scope="dmfa toegangsbeheer"), "invalid_scope")
        unknown = Machine(machine.api_client, machine.certificate, machine.issued, machines)
        unknown.client_id = "no-such-client"
        oauth_error(token_request(http, unknown.assertion()), "invalid_client")
        # OAuth 2 needs TLS (loopback excepted); Authlib's refusal is an RFC 6749 error, not a crash
        oauth_error(token_request(http, machine.assertion(), base_url="http://portal.test"), "insecure_transport")


def test_a_revoked_client_gets_no_token(machines, world, http, db_session):
    machine = machines.client(world.employer())
    clients.revoke_api_client(world.session, machine.api_client, by=world.ctx)
    world.commit()
    with OnlyAudit(db_session, ("oauth.token", "failure")) as audit:
        oauth_error(token_request(http, machine.assertion()), "invalid_client")
    assert audit.records[0].details["code"] == "client-revoked"


# --- bearer tokens on the API -------------------------------------------------------------------


def test_a_token_outside_its_scope_is_refused_by_the_decision_point(machines, world, http, db_session):
    employer = world.employer()
    machine = machines.client(employer)
    token = get_token(http, machine, scope="dmfa")
    assert bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa", token).status_code == 200
    with OnlyAudit(db_session, ("decision:view", "denied")):
        problem = problem_of(bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/repertory", token), 403,
                             "outside-token-scope")
    assert "scope" in problem["detail"]
    # its own enterprise only: another employer is refused (no mandate)
    other = world.employer()
    problem_of(bearer(http, "GET", f"/api/v1/enterprises/{other.id}/apps/dmfa", token), 403, "no-mandate")


def test_a_machine_never_manages_access_and_skips_no_check_by_skipping_csrf(machines, world, http, db_session):
    """A bearer request carries no cookie, so no CSRF token; the decision point still decides."""
    employer = world.employer()
    machine = machines.client(employer)
    token = get_token(http, machine)
    with OnlyAudit(db_session, ("decision:manage_api_clients", "denied")):
        problem_of(bearer(http, "POST", f"/api/v1/enterprises/{employer.id}/api-clients", token,
                          json={"name": "x", "certificate_id": machine.certificate.id, "scopes": ["dmfa"]}),
                   403, "machine-no-access-management")


def test_the_token_proves_the_certificate_tier(machines, world, http):
    employer = world.employer()
    machine = machines.client(employer, scopes=("directe_wijziging", "dmfa"))
    token = get_token(http, machine)
    response = bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/apps/directe_wijziging", token)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["path"][-1].startswith("proved possession of the key of certificate "
                                                      f"{machine.certificate.fingerprint[:16]}")


def test_an_expired_or_unknown_token_is_refused(machines, world, http, db_session, clock):
    employer = world.employer()
    token = get_token(http, machines.client(employer))
    path = f"/api/v1/enterprises/{employer.id}/repertory"
    clock.advance(seconds=299)
    assert bearer(http, "GET", path, token).status_code == 200
    clock.advance(seconds=1)
    with OnlyAudit(db_session, ("oauth.bearer", "failure")) as audit:
        response = bearer(http, "GET", path, token)
    problem_of(response, 401, "invalid-token")
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert audit.records[0].details == {"code": "token-expired"}
    problem_of(bearer(http, "GET", path, "made-up"), 401, "invalid-token")


def test_revoking_the_certificate_or_the_client_stops_the_token_at_once(machines, world, http):
    employer = world.employer()
    first, second = machines.client(employer), machines.client(employer)
    first_token, second_token = get_token(http, first), get_token(http, second)
    path = f"/api/v1/enterprises/{employer.id}/repertory"
    cops.revoke_certificate(world.session, first.certificate, "key lost", by=world.ctx)
    clients.revoke_api_client(world.session, second.api_client, by=world.ctx)
    world.commit()
    assert "revoked" in problem_of(bearer(http, "GET", path, first_token), 401, "invalid-token")["detail"]
    assert "revoked" in problem_of(bearer(http, "GET", path, second_token), 401, "invalid-token")["detail"]


def test_a_bearer_request_ignores_the_session_cookie(machines, world, visitor):
    """A logged-in browser sending a bearer token acts as the machine only: the session adds nothing."""
    employer = world.employer()
    admin = world.local_admin(employer)
    machine = machines.client(employer, scopes=("dmfa",))
    browser = visitor()
    assert browser.api_login(admin.login).status_code == 200
    token = get_token(browser.client, machine)
    response = browser.client.get(f"/api/v1/enterprises/{employer.id}/access",
                                  headers={"Authorization": f"Bearer {token}"}, base_url=BASE)
    problem_of(response, 403, "machine-no-access-management")
    assert browser.api("GET", f"/api/v1/enterprises/{employer.id}/access").status_code == 200  # cookie alone


def test_what_the_person_endpoints_answer_a_machine(machines, world, http, db_session):
    employer = world.employer()
    token = get_token(http, machines.client(employer, scopes=("wijzigingsvoorstellen",)))
    assert bearer(http, "GET", "/api/v1/session", token).get_json()["authenticated"] is False
    problem_of(bearer(http, "GET", "/api/v1/me/applications", token), 401, "login-required")
    # a proposal is a person's: a clear refusal, and nothing of it is written
    with OnlyAudit(db_session, ("decision:submit", "allowed")):
        problem = problem_of(bearer(http, "POST", f"/api/v1/enterprises/{employer.id}/proposals", token,
                                    json={"name": "Nieuwe Naam"}), 403, "forbidden")
    assert "directe wijziging" in problem["detail"]


@pytest.fixture
def secretariat(world, machines):
    """An employer affiliated with an erkend sociaal secretariaat that has its own API client."""
    employer = world.employer()
    enterprise = world.employer("Sociaal Secretariaat Proef")
    provider = mops.register_provider(world.session, enterprise, ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, "310/09",
                                      by=world.ctx)
    mops.record_affiliation(world.session, employer, provider, date(2026, 10, 1), groups=load_groups(), by=world.ctx)
    world.commit()
    machine = machines.client(enterprise, scopes=("dmfa", "kbo_prive_gegevens", "bestandsoverdracht"))
    return employer, enterprise, machine


def test_a_providers_client_acts_for_the_employer_only_within_the_mandate(secretariat, world, http, db_session):
    employer, provider, machine = secretariat
    token = get_token(http, machine)
    start = last_audit_id(db_session)
    allowed = bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa", token)
    assert allowed.status_code == 200, allowed.get_data(as_text=True)
    assert "erkend sociaal secretariaat" in allowed.get_json()["path"][0]
    [decision] = audit_since(db_session, start)
    assert (decision.provider_enterprise_id, decision.actor_label) == (provider.id, machine.client_id)
    # the staff token used outside the mandate
    problem_of(bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/apps/kbo_prive_gegevens", token), 403,
               "outside-mandate")
    # and for an employer that gave no mandate
    problem_of(bearer(http, "GET", f"/api/v1/enterprises/{world.employer().id}/apps/dmfa", token), 403,
               "no-mandate")
    # the certificate tier under mandate: the provider's own certificate proves it
    signed = bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/apps/bestandsoverdracht", token)
    assert signed.status_code == 200, signed.get_data(as_text=True)


def test_bearer_requests_are_rate_limited(world, machines, db_session, clock):
    from portal import create_app

    db_session.info["shared"] = True
    app = create_app({"TESTING": True, "DB_SESSION_FACTORY": lambda: db_session, "RATELIMIT_ENABLED": True,
                      "API_RATE_LIMIT": "3 per minute", "OAUTH_TOKEN_RATE_LIMIT": "2 per minute",
                      "SERVER_NAME": "portal.test"})
    http = app.test_client(use_cookies=False)
    http.environ_base["REMOTE_ADDR"] = "198.51.100.77"
    employer = world.employer()
    machine = machines.client(employer)
    token = get_token(http, machine)
    path = f"/api/v1/enterprises/{employer.id}/repertory"
    assert [bearer(http, "GET", path, token).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert token_request(http, machine.assertion()).status_code == 200
    assert token_request(http, machine.assertion()).status_code == 429


# --- the local administrator's API clients ------------------------------------------------------


def test_local_admin_registers_lists_and_revokes_api_clients(machines, world, visitor, http, db_session):
    employer = world.employer()
    admin = world.local_admin(employer)
    certificate, issued = machines.certificate(employer)
    browser = visitor()
    browser.api_login(admin.login)
    start = last_audit_id(db_session)
    created = browser.api("POST", f"/api/v1/enterprises/{employer.id}/api-clients",
                          {"name": "Loonmotor", "certificate_id": certificate.id, "scopes": ["dmfa"]})
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert (body["status"], body["scopes"], body["certificate_fingerprint"], body["token_endpoint"]) == \
        ("active", ["dmfa"], certificate.fingerprint, "http://portal.test/oauth/token")
    assert [(r.action, r.outcome) for r in audit_since(db_session, start)] == \
        [("decision:manage_api_clients", "allowed"), ("api_client.register", "success")]
    listed = browser.api("GET", f"/api/v1/enterprises/{employer.id}/api-clients").get_json()
    assert [c["client_id"] for c in listed] == [body["client_id"]]

    # the registered client gets a token with the certificate's key
    machine = Machine(db_session.scalars(select(ApiClient)).one(), certificate, issued, machines)
    token = get_token(http, machine)
    revoked = browser.api("DELETE", f"/api/v1/enterprises/{employer.id}/api-clients/{body['client_id']}")
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "revoked"
    problem_of(bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa", token), 401, "invalid-token")
    problem_of(browser.api("DELETE", f"/api/v1/enterprises/{employer.id}/api-clients/{body['client_id']}"), 409)


@pytest.mark.parametrize("payload, status, field", [
    ({"name": "", "scopes": ["dmfa"]}, 422, "name"),
    ({"name": "x", "scopes": []}, 422, "scopes"),
    ({"name": "x", "scopes": ["toegangsbeheer"]}, 422, "scopes"),
    ({"name": "x", "scopes": ["dmfa"], "secret": "s"}, 422, "secret"),
    ({"name": "x", "scopes": ["dmfa"], "certificate_id": 999999}, 404, "certificate_id"),
])
def test_bad_api_client_input_writes_nothing(payload, status, field, machines, world, visitor, db_session):
    employer = world.employer()
    admin = world.local_admin(employer)
    certificate, _ = machines.certificate(employer)
    browser = visitor()
    browser.api_login(admin.login)
    payload = {"certificate_id": certificate.id, **payload}
    before = row_counts(db_session, MACHINE_MODELS)
    problem = problem_of(browser.api("POST", f"/api/v1/enterprises/{employer.id}/api-clients", payload), status)
    assert problem["field"] == field
    assert row_counts(db_session, MACHINE_MODELS) == before


def test_api_clients_are_the_administrators_business(machines, world, visitor, db_session):
    employer, other = world.employer(), world.employer()
    admin = world.local_admin(employer)
    user = world.member(employer, admin, rights=("dmfa",))
    other_certificate, _ = machines.certificate(other)
    own_certificate, _ = machines.certificate(employer)
    browser = visitor()
    browser.api_login(user.login)
    problem_of(browser.api("GET", f"/api/v1/enterprises/{employer.id}/api-clients"), 403, "not-an-administrator")
    admin_browser = visitor()
    admin_browser.api_login(admin.login)
    # another enterprise's certificate answers like one that does not exist
    problem_of(admin_browser.api("POST", f"/api/v1/enterprises/{employer.id}/api-clients",
                                 {"name": "x", "certificate_id": other_certificate.id, "scopes": ["dmfa"]}), 404)
    other_client = machines.client(other)
    problem_of(admin_browser.api("DELETE", f"/api/v1/enterprises/{employer.id}/api-clients/"
                                           f"{other_client.client_id}"), 404)
    cops.revoke_certificate(world.session, own_certificate, "lost", by=world.ctx)
    world.commit()
    problem_of(admin_browser.api("POST", f"/api/v1/enterprises/{employer.id}/api-clients",
                                 {"name": "x", "certificate_id": own_certificate.id, "scopes": ["dmfa"]}), 422)
    anonymous = visitor()
    problem_of(anonymous.api("GET", f"/api/v1/enterprises/{employer.id}/api-clients"), 401)


# --- the example client, against a live server ---------------------------------------------------


@pytest.fixture
def live_portal(db_session, clock):
    """The portal on 127.0.0.1:<free port> in a thread, on the test's session (requests are sequential)."""
    from werkzeug.serving import make_server

    from portal import create_app

    db_session.info["shared"] = True
    app = create_app({"TESTING": True, "DB_SESSION_FACTORY": lambda: db_session, "RATELIMIT_ENABLED": False})
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, name="oauth-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_the_example_client_gets_a_token_and_calls_the_api(live_portal, machines, world, tmp_path, clock):
    employer = world.employer()
    machine = machines.client(employer, scopes=("werkgeversrepertorium_beveiligd",))
    certificate_file, key_file = tmp_path / "seal.pem", tmp_path / "seal-key.pem"
    certificate_file.write_bytes(machine.issued.pem_with_chain)
    key_file.write_bytes(machine.issued.key_pem(b"sleutel-wachtwoord"))

    portal = example.PortalApiClient(
        live_portal, machine.client_id, example.load_certificate(str(certificate_file)),
        example.load_private_key(str(key_file), b"sleutel-wachtwoord"), clock=lambda: clock.now().timestamp())
    response = portal.get(f"/api/v1/enterprises/{employer.id}/repertory")
    assert response.status_code == 200, response.text
    assert response.json()["enterprise"]["kbo"] == employer.kbo_number
    first_token = portal.token()
    # when the token expired, the client asks a new one by itself
    clock.advance(seconds=301)
    assert portal.get(f"/api/v1/enterprises/{employer.id}/repertory").status_code == 200
    assert portal.token() != first_token
    assert world.session.scalar(select(func.count()).select_from(AccessToken)) == 2
    # a refusal reaches the client as RFC 6749 JSON
    stranger = example.PortalApiClient(live_portal, "no-such-client", machine.issued.certificate, machine.issued.key,
                                       clock=lambda: clock.now().timestamp())
    with pytest.raises(example.TokenError) as refused:
        stranger.fetch_token()
    assert (refused.value.status, refused.value.error) == (400, "invalid_client")


def test_the_example_command_line(live_portal, machines, world, tmp_path, clock, capsys, monkeypatch):
    employer = world.employer()
    machine = machines.client(employer, scopes=("werkgeversrepertorium_beveiligd",))
    (tmp_path / "seal.der").write_bytes(machine.issued.der)
    (tmp_path / "key.pem").write_bytes(machine.issued.key_pem(b"geheim-wachtwoord"))
    monkeypatch.setenv("SEAL_KEY_PASSWORD", "geheim-wachtwoord")
    monkeypatch.setattr(example.time, "time", lambda: clock.now().timestamp())
    code = example.main(["--portal", live_portal, "--client-id", machine.client_id,
                         "--certificate", str(tmp_path / "seal.der"), "--key", str(tmp_path / "key.pem"),
                         "--key-password-env", "SEAL_KEY_PASSWORD", "--scope", "werkgeversrepertorium_beveiligd",
                         f"/api/v1/enterprises/{employer.id}/repertory"])
    assert code == 0
    assert f'"kbo": "{employer.kbo_number}"' in capsys.readouterr().out
