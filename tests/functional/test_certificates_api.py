"""The certificates API: the local administrator lists, registers (each check with its outcome) and
revokes his enterprise's certificates and uploads CSRs; a refused certificate is a 422 listing every
check, with nothing stored but the refusal's audit record; nobody else, and no machine, manages them."""
from __future__ import annotations

import base64
from datetime import timedelta
from functools import partial

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from certificates.models import (AccessToken, ApiClient, Certificate, CertificateRequest, CertificateState,
                                 ExpiryNotice, UsedAssertion)
from certificates.qc import ORGANIZATION_IDENTIFIER
from certificates.validation import load_trust_list
from tests.conftest import DEFAULT_NOW
from tests.functional.helpers import OnlyAuditWritten, audit_since, last_audit_id, problem_of
from tests.functional.test_oauth import Machines, bearer, get_token
from tests.pki import QC_TYPE_ESIGN, TestPKI, ec_key, rsa_key

CERTIFICATE_MODELS = (Certificate, CertificateRequest, ExpiryNotice, ApiClient, UsedAssertion, AccessToken)
# The decision point's answer is audited even when the request is then refused and rolled back.
ALLOWED = ("decision:manage_certificates", "allowed")
CHECK_CODES = ["chain", "validity", "key_usage", "key_strength", "signature_hash", "revocation", "qc_compliance",
               "qc_type", "policy", "identity", "unique"]


@pytest.fixture(scope="module")
def pki():
    return TestPKI(DEFAULT_NOW)


@pytest.fixture
def trust_path(pki, tmp_path, app):
    """The test PKI's trust list, which the portal reads as its configured one."""
    path = pki.write_trust_list(tmp_path / "trust")
    app.config["TRUST_LIST"] = str(path)
    return path


@pytest.fixture
def trust(trust_path):
    return load_trust_list(trust_path)


@pytest.fixture
def machines(world, pki, trust, clock) -> Machines:
    return Machines(world, pki, trust, clock)


@pytest.fixture
def http(app):
    return app.test_client(use_cookies=False)


@pytest.fixture
def employer(world):
    return world.employer("Bakkerij Zeven")


@pytest.fixture
def admin(world, employer, visitor):
    """A browser in which the employer's local administrator is logged in (JSON API)."""
    persona = world.local_admin(employer)
    browser = visitor()
    assert browser.api_login(persona.login).status_code == 200
    browser.persona = persona
    return browser


Unchanged = partial(OnlyAuditWritten, models=CERTIFICATE_MODELS)  # writes only these audit records


def path(enterprise, rest: str = "certificates") -> str:
    return f"/api/v1/enterprises/{enterprise.id}/{rest}"


def pem(issued) -> str:
    return issued.pem_with_chain.decode()


# --- registering ---------------------------------------------------------------------------------


def test_register_answers_every_check_and_lists_the_certificate(pki, trust_path, employer, admin, db_session):
    issued = pki.seal(employer.kbo_number, employer.name)
    start = last_audit_id(db_session)
    response = admin.api("POST", path(employer), {"certificate": pem(issued)})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert [check["code"] for check in body["checks"]] == CHECK_CODES
    assert all(check["ok"] for check in body["checks"]), body["checks"]
    fingerprint = issued.certificate.fingerprint(hashes.SHA256()).hex()
    assert (body["status"], body["fingerprint"], body["enterprise_id"], body["predecessor_id"]) == \
        ("active", fingerprint, employer.id, None)
    assert body["organization_identifier"] == f"NTRBE-{employer.kbo_number}"
    assert body["serial_number"] == format(issued.certificate.serial_number, "x")
    assert body["usages"] == ["digital_signature", "non_repudiation"] and body["key"] == "EC P-256"
    assert "Test Qualified Seal CA" in body["issuer"] and "Bakkerij Zeven" in body["subject"]
    assert [(r.action, r.outcome) for r in audit_since(db_session, start)] == \
        [("decision:manage_certificates", "allowed"), ("certificate.register", "success")]
    stored = db_session.get(Certificate, body["id"])
    assert stored.enterprise_id == employer.id and stored.chain_pem  # the chain is kept with it

    listed = admin.api("GET", path(employer))
    assert listed.status_code == 200
    assert listed.get_json() == [body]


def test_register_a_der_certificate_in_base64(pki, trust_path, employer, admin):
    issued = pki.seal(employer.kbo_number, employer.name, key=rsa_key(3072))
    der = base64.b64encode(issued.der).decode()
    response = admin.api("POST", path(employer), {"certificate_der_base64": der[:40] + "\n" + der[40:]})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["key"] == "RSA 3072"


def test_a_successor_overlaps_its_predecessor(pki, trust_path, world, employer, admin):
    first = admin.api("POST", path(employer), {"certificate": pem(pki.seal(employer.kbo_number))}).get_json()
    response = admin.api("POST", path(employer), {"certificate": pem(pki.seal(employer.kbo_number)),
                                                  "successor_of": first["id"]})
    assert response.status_code == 201, response.get_data(as_text=True)
    second = response.get_json()
    assert second["predecessor_id"] == first["id"]
    listed = {c["id"]: c for c in admin.api("GET", path(employer)).get_json()}
    assert listed[first["id"]]["successor_ids"] == [second["id"]]
    assert listed[first["id"]]["status"] == listed[second["id"]]["status"] == "active"  # both valid
    # the overlap ends when the administrator retires the predecessor
    retired = admin.api("POST", path(employer, f"certificates/{first['id']}/retire"))
    assert retired.status_code == 200 and retired.get_json()["status"] == "replaced"
    listed = {c["id"]: c["status"] for c in admin.api("GET", path(employer)).get_json()}
    assert listed == {first["id"]: "replaced", second["id"]: "active"}


def test_a_certificate_without_an_active_successor_is_not_retired(machines, employer, admin, db_session):
    certificate, _ = machines.certificate(employer)
    with Unchanged(db_session, ALLOWED):
        problem = problem_of(admin.api("POST", path(employer, f"certificates/{certificate.id}/retire")), 409,
                             "conflict")
    assert "successor" in problem["detail"]


def test_a_registered_csr_is_fulfilled_by_its_certificate(pki, trust_path, employer, admin, db_session):
    key = ec_key()
    start = last_audit_id(db_session)
    response = admin.api("POST", path(employer, "certificate-requests"), {"csr": _csr(key, employer.kbo_number)})
    assert response.status_code == 201, response.get_data(as_text=True)
    request = response.get_json()
    assert (request["status"], request["generated_by_portal"], request["fulfilled_by_id"]) == \
        ("pending", False, None)
    assert request["csr_pem"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert f"NTRBE-{employer.kbo_number}" in request["subject"]
    assert [(r.action, r.outcome) for r in audit_since(db_session, start)] == \
        [("decision:manage_certificates", "allowed"), ("certificate.csr", "success")]
    assert admin.api("GET", path(employer, "certificate-requests")).get_json() == [request]

    certificate = admin.api("POST", path(employer), {"certificate": pem(pki.seal(employer.kbo_number, key=key))})
    assert certificate.status_code == 201
    [listed] = admin.api("GET", path(employer, "certificate-requests")).get_json()
    assert (listed["status"], listed["fulfilled_by_id"]) == ("fulfilled", certificate.get_json()["id"])


def _csr(key, kbo: str, org_id: str | None = None) -> str:
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
                         x509.NameAttribute(x509.ObjectIdentifier(ORGANIZATION_IDENTIFIER), org_id or f"NTRBE-{kbo}"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "seal")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# --- refused certificates: every check listed, nothing stored -------------------------------------


def _untrusted(pki, machines, employer):
    return TestPKI(DEFAULT_NOW).seal(employer.kbo_number)


def _revoked(pki, machines, employer):
    issued = pki.seal(employer.kbo_number)
    pki.revoke(issued)
    return issued


def _bound_elsewhere(pki, machines, employer):
    """Another enterprise's certificate, registered by it."""
    _, issued = machines.certificate(machines.world.employer())
    return issued


REFUSED = {
    # name: (build the certificate, the checks that fail)
    "wrong organizationIdentifier": (lambda p, m, e: p.seal(e.kbo_number, org_id="NTRBE-0999999999"), {"identity"}),
    "VAT identifier of another enterprise": (lambda p, m, e: p.seal(e.kbo_number, org_id="VATBE-0999999999"),
                                             {"identity"}),
    "not qualified": (lambda p, m, e: p.seal(e.kbo_number, qualified=False), {"qc_compliance", "qc_type"}),
    "a signature, not a seal": (lambda p, m, e: p.seal(e.kbo_number, qc_type=QC_TYPE_ESIGN), {"qc_type"}),
    "no qualified policy": (lambda p, m, e: p.seal(e.kbo_number, policy=None), {"policy"}),
    "expired": (lambda p, m, e: p.seal(e.kbo_number, valid_from=DEFAULT_NOW - timedelta(days=400),
                                       valid_until=DEFAULT_NOW - timedelta(days=1)), {"validity"}),
    "RSA-1024": (lambda p, m, e: p.seal(e.kbo_number, key=rsa_key(1024)), {"key_strength"}),
    "SHA-1": (lambda p, m, e: p.seal(e.kbo_number, hash_algorithm=hashes.SHA1()), {"signature_hash"}),
    "no signing usage": (lambda p, m, e: p.seal(e.kbo_number, digital_signature=False, non_repudiation=False),
                         {"key_usage"}),
    "untrusted chain": (_untrusted, {"chain", "revocation"}),
    "revoked": (_revoked, {"revocation"}),
    "bound to another enterprise": (_bound_elsewhere, {"unique", "identity"}),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_certificate_lists_every_check_and_stores_nothing(case, pki, trust_path, machines, employer, admin,
                                                                     db_session):
    build, failing = REFUSED[case]
    issued = build(pki, machines, employer)
    pki.write_trust_list(trust_path.parent)  # the CRL as it is now
    with Unchanged(db_session, ALLOWED, ("certificate.refuse", "failure")) as unchanged:
        problem = problem_of(admin.api("POST", path(employer), {"certificate": pem(issued)}), 422,
                             "certificate-refused")
    assert problem["field"] == "certificate"
    assert [check["code"] for check in problem["checks"]] == CHECK_CODES
    failed = {check["code"] for check in problem["checks"] if not check["ok"]}
    assert failed == failing, problem["checks"]
    assert all(check["detail"] for check in problem["checks"])
    for code in failing:
        assert code in problem["detail"]
    # the refusal's audit record survives the request's rollback, with every check
    _, refusal = unchanged.records
    assert refusal.enterprise_id == employer.id and refusal.actor_person_id == admin.persona.id
    assert [c["code"] for c in refusal.details["checks"]] == CHECK_CODES
    assert admin.api("GET", path(employer)).get_json() == []


@pytest.mark.parametrize("payload, field", [
    ({"certificate": "not a certificate"}, "certificate"),
    ({"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "certificate"),
    ({"certificate": ""}, "certificate"),
    ({}, "certificate"),
    ({"certificate": "x", "certificate_der_base64": "eA=="}, "certificate"),
    ({"certificate_der_base64": "%%%not base64"}, "certificate_der_base64"),
    ({"certificate_der_base64": base64.b64encode(b"\x30\x03\x02\x01\x01").decode()}, "certificate"),
], ids=["garbage", "bad PEM", "empty", "nothing", "both", "bad base64", "bad DER"])
def test_bad_input_is_a_problem_naming_the_field(payload, field, trust_path, employer, admin, db_session):
    with Unchanged(db_session, ALLOWED):
        problem = problem_of(admin.api("POST", path(employer), payload), 422, "invalid-input")
    assert problem["field"] == field


@pytest.mark.parametrize("payload, field", [
    ({"certificate": "x", "trust": "me"}, "trust"),
    ({"certificate": "x", "successor_of": 0}, "successor_of"),
    ({"certificate": 42}, "certificate"),
], ids=["unknown member", "bad successor id", "not a string"])
def test_a_body_outside_the_schema_is_refused_before_the_decision_point(payload, field, employer, admin,
                                                                        db_session):
    with Unchanged(db_session):
        problem = problem_of(admin.api("POST", path(employer), payload), 422, "invalid-input")
    assert problem["field"] == field


def test_an_unknown_or_foreign_predecessor_is_not_found(pki, trust_path, machines, world, employer, admin, db_session):
    foreign, _ = machines.certificate(world.employer())
    for successor_of in (foreign.id, 999999):
        with Unchanged(db_session, ALLOWED):
            problem = problem_of(admin.api("POST", path(employer), {"certificate": pem(pki.seal(employer.kbo_number)),
                                                                    "successor_of": successor_of}), 404)
        assert problem["field"] == "successor_of"


def test_only_an_active_certificate_gets_a_successor(pki, trust_path, machines, world, employer, admin, db_session):
    predecessor, _ = machines.certificate(employer)
    assert admin.api("POST", path(employer, f"certificates/{predecessor.id}/revoke"), {}).status_code == 200
    with Unchanged(db_session, ALLOWED):
        problem = problem_of(admin.api("POST", path(employer), {"certificate": pem(pki.seal(employer.kbo_number)),
                                                                "successor_of": predecessor.id}), 409, "conflict")
    assert problem["field"] == "successor_of" and "revoked" in problem["detail"]


def test_the_same_certificate_twice_is_a_conflict(pki, trust_path, employer, admin, db_session):
    issued = pki.seal(employer.kbo_number)
    assert admin.api("POST", path(employer), {"certificate": pem(issued)}).status_code == 201
    with Unchanged(db_session, ALLOWED):
        problem = problem_of(admin.api("POST", path(employer), {"certificate": pem(issued)}), 409, "conflict")
    assert problem["field"] == "certificate"


@pytest.mark.parametrize("csr, words", [
    ("not a request", "not a certificate signing request"),
    (None, "organizationIdentifier"),
    ("weak", "at least 2048"),
], ids=["garbage", "another enterprise", "weak key"])
def test_a_bad_csr_is_refused_and_nothing_kept(csr, words, trust_path, employer, admin, db_session):
    if csr is None:
        csr = _csr(ec_key(), employer.kbo_number, org_id="NTRBE-0999999999")
    elif csr == "weak":
        csr = _csr(rsa_key(1024), employer.kbo_number)
    with Unchanged(db_session, ALLOWED):
        problem = problem_of(admin.api("POST", path(employer, "certificate-requests"), {"csr": csr}), 422)
    assert problem["field"] == "csr" and words in problem["detail"]


# --- revoking -------------------------------------------------------------------------------------


def test_revoking_stops_the_certificate_and_its_clients_tokens_at_once(machines, world, employer, admin, http,
                                                                       db_session):
    machine = machines.client(employer, scopes=("dmfa",))
    token = get_token(http, machine)
    assert bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa", token).status_code == 200
    start = last_audit_id(db_session)
    response = admin.api("POST", path(employer, f"certificates/{machine.certificate.id}/revoke"),
                         {"reason": "key lost"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["status"], body["revocation_reason"]) == ("revoked", "key lost") and body["revoked_at"]
    assert [(r.action, r.outcome) for r in audit_since(db_session, start)] == \
        [("decision:manage_certificates", "allowed"), ("certificate.revoke", "success")]
    assert db_session.get(Certificate, machine.certificate.id).state is CertificateState.REVOKED
    problem_of(bearer(http, "GET", f"/api/v1/enterprises/{employer.id}/apps/dmfa", token), 401, "invalid-token")
    # once only; the reason is optional
    with Unchanged(db_session, ALLOWED):
        problem_of(admin.api("POST", path(employer, f"certificates/{machine.certificate.id}/revoke"), {}), 409)


def test_another_enterprises_certificate_is_not_found(machines, world, employer, admin, db_session):
    foreign, _ = machines.certificate(world.employer())
    with Unchanged(db_session, ALLOWED):
        problem = problem_of(admin.api("POST", path(employer, f"certificates/{foreign.id}/revoke"), {}), 404)
    assert problem["field"] == "certificate_id"
    assert db_session.get(Certificate, foreign.id).state is CertificateState.ACTIVE


# --- who may: the administrators, through the decision point ------------------------------------


def test_a_co_administrator_sees_the_certificates_but_only_the_local_administrator_manages_them(
        pki, trust_path, machines, world, employer, admin, visitor, db_session):
    certificate, _ = machines.certificate(employer)
    co_admin = world.member(employer, admin.persona, "co_admin")
    browser = visitor()
    assert browser.api_login(co_admin.login).status_code == 200
    listed = browser.api("GET", path(employer))
    assert listed.status_code == 200 and [c["id"] for c in listed.get_json()] == [certificate.id]
    assert browser.api("GET", path(employer, "certificate-requests")).status_code == 200
    for method, url, payload in _calls(employer, certificate.id, pki):
        if method == "GET":
            continue
        with Unchanged(db_session, ("decision:manage_certificates", "denied")):
            problem_of(browser.api(method, url, payload), 403, "local-admin-only")


def _calls(employer, certificate_id: int, pki):
    issued = pki.seal(employer.kbo_number)
    return [("GET", path(employer), None), ("POST", path(employer), {"certificate": pem(issued)}),
            ("POST", path(employer, f"certificates/{certificate_id}/revoke"), {}),
            ("GET", path(employer, "certificate-requests"), None),
            ("POST", path(employer, "certificate-requests"), {"csr": _csr(ec_key(), employer.kbo_number)})]


def test_a_plain_user_and_another_enterprises_administrator_are_refused(pki, machines, world, employer, admin,
                                                                       visitor, db_session):
    certificate, _ = machines.certificate(employer)
    user = world.member(employer, admin.persona, rights=("dmfa", "werkgeversrepertorium_beveiligd"))
    other = world.employer()
    stranger = world.local_admin(other)
    for persona, reason in ((user, "not-an-administrator"), (stranger, "no-direct-authority")):
        browser = visitor()
        assert browser.api_login(persona.login).status_code == 200
        for method, url, payload in _calls(employer, certificate.id, pki):
            action = "view" if method == "GET" else "manage_certificates"
            with Unchanged(db_session, (f"decision:{action}", "denied")):
                problem = problem_of(browser.api(method, url, payload), 403, reason)
            assert problem["application"] == "toegangsbeheer"
    anonymous = visitor()
    for method, url, payload in _calls(employer, certificate.id, pki):
        problem_of(anonymous.api(method, url, payload), 401, "login-required")
    assert db_session.get(Certificate, certificate.id).state is CertificateState.ACTIVE


def test_a_machine_never_manages_certificates(pki, machines, world, employer, http, db_session):
    """A bearer token, even of the enterprise's own client, is refused: certificates are access management."""
    machine = machines.client(employer, scopes=("dmfa", "directe_wijziging"))
    token = get_token(http, machine)
    for method, url, payload in _calls(employer, machine.certificate.id, pki):
        action = "view" if method == "GET" else "manage_certificates"
        with Unchanged(db_session, (f"decision:{action}", "denied")) as unchanged:
            problem_of(bearer(http, method, url, token, json=payload), 403, "machine-no-access-management")
        assert unchanged.records[0].actor_label == machine.client_id
    assert db_session.get(Certificate, machine.certificate.id).state is CertificateState.ACTIVE
