"""Issue 4 on the HTML pages: the local administrator's certificates (register with every check shown,
refusals with the failed checks and nothing stored, CSRs, a key generated and handed over once,
revocation), the API clients bound to them, and the dashboard's expiry warnings."""
from __future__ import annotations

import hashlib
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import func, select

from access.decision import LOCAL_ADMIN_ONLY_ACTIONS
from certificates import clients
from certificates import operations as cops
from certificates.models import ApiClient, Certificate, CertificateRequest, CertificateState
from certificates.validation import load_trust_list
from tests.conftest import DEFAULT_NOW
from tests.functional.helpers import audit_since, business_counts, last_audit_id, location_path, page
from tests.pki import TestPKI, rsa_key

CERTIFICATE_MODELS = (Certificate, CertificateRequest, ApiClient)
PASSWORD = "Sleutel-Kluis-Morgen-93"
CHECK_CODES = ["chain", "validity", "key_usage", "key_strength", "signature_hash", "revocation", "qc_compliance",
               "qc_type", "policy", "identity", "unique"]


# --- helpers -----------------------------------------------------------------------------------


def counts(session) -> dict[str, int]:
    result = business_counts(session)
    result.update({m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in CERTIFICATE_MODELS})
    return result


class Unchanged:
    """The block stores no row (business, certificates, requests, API clients); the audit trail gets
    exactly `audit`, as (action, outcome) pairs, and it is kept although the request was rolled back."""

    def __init__(self, session, audit: list[tuple[str, str]]) -> None:
        self.session, self.audit = session, audit

    def __enter__(self):
        self.before, self.last = counts(self.session), last_audit_id(self.session)
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None:
            return
        assert counts(self.session) == self.before, "rows changed"
        self.records = audit_since(self.session, self.last)
        assert [(r.action, r.outcome) for r in self.records] == self.audit


def upload(blob: bytes, name: str = "seal.pem"):
    return (BytesIO(blob), name)


def logged_in(visitor, persona):
    browser = visitor()
    response = browser.login(persona.login)
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def checks_shown(shown) -> dict[str, bool]:
    section = shown.find(data_testid="checks")
    assert section is not None, shown.text
    return {row.attrs["data-check"]: row.attrs["data-ok"] == "true"
            for row in shown.find_all("tr") if "data-check" in row.attrs}


def certificates_of(session, enterprise) -> list[Certificate]:
    session.expire_all()
    return list(session.scalars(select(Certificate).where(Certificate.enterprise_id == enterprise.id)
                                .order_by(Certificate.id)))


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Personas need password hashes; argon2id's cheapest parameters keep the tests quick (the
    password rules are tested in tests/unit/access)."""
    from argon2 import PasswordHasher

    from access import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def pki():
    return TestPKI(DEFAULT_NOW)


class Trust:
    """The app's trust list (app.config["TRUST_LIST"]), written again after a revocation at the CA."""

    def __init__(self, app, pki, tmp_path: Path) -> None:
        self.app, self.pki, self.tmp_path, self.version = app, pki, tmp_path, 0
        self.write()

    def write(self) -> None:
        self.version += 1
        self.path = self.pki.write_trust_list(self.tmp_path / f"trust-{self.version}")
        self.app.config["TRUST_LIST"] = str(self.path)

    def load(self):
        return load_trust_list(self.path)


@pytest.fixture
def trust(app, pki, tmp_path) -> Trust:
    return Trust(app, pki, tmp_path)


@pytest.fixture
def scene(world, pki, trust):
    """An employer with its local administrator, a co-administrator and a user; another employer
    with its own local administrator."""
    employer = world.employer("Bakkerij Zegel")
    admin = world.local_admin(employer)
    co_admin = world.member(employer, admin, "co_admin")
    clerk = world.member(employer, admin, "user", rights=("dmfa",))
    other = world.employer("Brouwerij Stempel")
    other_admin = world.local_admin(other)
    return SimpleNamespace(employer=employer, admin=admin, co_admin=co_admin, clerk=clerk, other=other,
                           other_admin=other_admin, world=world, pki=pki, trust=trust)


def register(scene, enterprise=None, **seal_kwargs) -> Certificate:
    """A certificate registered through the operation (the facts a test starts from)."""
    enterprise = enterprise or scene.employer
    issued = scene.pki.seal(enterprise.kbo_number, enterprise.name, **seal_kwargs)
    certificate = cops.register_certificate(scene.world.session, enterprise, issued.pem_with_chain,
                                            trust=scene.trust.load(), by=scene.world.ctx).certificate
    scene.world.commit()
    return certificate


# --- the page ----------------------------------------------------------------------------------


def test_the_page_lists_every_certificate_with_its_status(scene, visitor, clock, db_session):
    first = register(scene, valid_until=DEFAULT_NOW + timedelta(days=365))
    successor = cops.register_certificate(
        db_session, scene.employer, scene.pki.seal(scene.employer.kbo_number).pem_with_chain,
        trust=scene.trust.load(), by=scene.world.ctx, successor_of=first).certificate
    expiring = register(scene, valid_until=DEFAULT_NOW + timedelta(days=40))
    short = register(scene, valid_until=DEFAULT_NOW + timedelta(days=5))
    revoked = register(scene)
    cops.revoke_certificate(db_session, revoked, "key lost", by=scene.world.ctx)
    retired = register(scene)
    cops.revoke_certificate(db_session, retired, "successor in use", by=scene.world.ctx,
                            state=CertificateState.REPLACED)
    cops.upload_csr(db_session, scene.employer, csr_for(scene.employer.kbo_number), by=scene.world.ctx)
    scene.world.commit()
    clock.advance(days=10)  # `short` has now expired

    browser = logged_in(visitor, scene.admin)
    response = browser.get(f"/enterprises/{scene.employer.id}/certificates")
    assert response.status_code == 200
    shown = page(response)
    status = {int(row.attrs["data-certificate"]): row.attrs["data-status"]
              for row in shown.find_all("tr") if "data-certificate" in row.attrs}
    assert status == {first.id: "active", successor.id: "active", expiring.id: "expiring", short.id: "expired",
                      revoked.id: "revoked", retired.id: "replaced"}
    row = shown.find("tr", data_certificate=str(first.id)).text.replace(" ", "")  # <wbr> breaks long hex
    for value in (first.subject, first.issuer, first.serial_number, first.fingerprint, first.key_description,
                  first.usages, f"replaced by #{successor.id}"):
        assert value.replace(" ", "") in row, value
    assert f"successor of #{first.id}" in shown.find("tr", data_certificate=str(successor.id)).text
    assert "key lost" in shown.find("tr", data_certificate=str(revoked.id)).text
    pending = shown.find(data_testid="pending-requests")
    assert f"NTRBE-{scene.employer.kbo_number}" in pending.text
    # the expired, revoked and replaced certificates have no revoke form
    assert {f.attrs["data-testid"] for f in shown.find_all("form") if f.attrs.get("data-testid", "").startswith(
        "revoke-")} == {f"revoke-{c.id}" for c in (first, successor, expiring)}


def test_register_a_certificate_with_its_chain_shows_every_check(scene, visitor, db_session):
    issued = scene.pki.seal(scene.employer.kbo_number, scene.employer.name)
    browser = logged_in(visitor, scene.admin)
    start = last_audit_id(db_session)
    response = browser.post(f"/enterprises/{scene.employer.id}/certificates",
                            {"certificate": upload(issued.pem_with_chain), "successor_of": "0"})
    assert response.status_code == 302, response.get_data(as_text=True)
    [certificate] = certificates_of(db_session, scene.employer)
    assert certificate.state is CertificateState.ACTIVE and certificate.chain_pem
    assert [(r.action, r.outcome) for r in audit_since(db_session, start)] == [
        ("decision:manage_certificates", "allowed"), ("certificate.register", "success")]

    shown = page(browser.get(response.headers["Location"]))
    assert shown.find(data_testid="checks").attrs["data-outcome"] == "registered"
    assert checks_shown(shown) == dict.fromkeys(CHECK_CODES, True)
    assert all(shown.testid(f"outcome-{code}") == "OK" for code in CHECK_CODES)
    assert "passed every check" in " ".join(shown.flashes)


def test_register_a_der_certificate_chains_through_the_trust_list(scene, visitor, db_session):
    """A DER file holds the certificate only: its intermediate comes from the trust list."""
    issued = scene.pki.seal(scene.employer.kbo_number)
    browser = logged_in(visitor, scene.admin)
    response = browser.post(f"/enterprises/{scene.employer.id}/certificates",
                            {"certificate": upload(issued.der, "seal.cer")})
    assert response.status_code == 302
    [certificate] = certificates_of(db_session, scene.employer)
    assert certificate.chain_pem is None and certificate.der == issued.der


def test_register_a_successor(scene, visitor, db_session):
    first = register(scene, valid_until=DEFAULT_NOW + timedelta(days=30))
    browser = logged_in(visitor, scene.admin)
    form = page(browser.get(f"/enterprises/{scene.employer.id}/certificates"))
    assert str(first.id) in {o.attrs.get("value") for o in form.find_all("option")}
    issued = scene.pki.seal(scene.employer.kbo_number)
    response = browser.post(f"/enterprises/{scene.employer.id}/certificates",
                            {"certificate": upload(issued.pem_with_chain), "successor_of": str(first.id)})
    assert response.status_code == 302
    _, successor = certificates_of(db_session, scene.employer)
    assert successor.predecessor_id == first.id
    # both work during the overlap
    assert {c.state for c in certificates_of(db_session, scene.employer)} == {CertificateState.ACTIVE}


def test_retire_a_predecessor_once_its_successor_works(scene, visitor, db_session):
    first = register(scene, valid_until=DEFAULT_NOW + timedelta(days=30))
    browser = logged_in(visitor, scene.admin)
    path = f"/enterprises/{scene.employer.id}/certificates/{first.id}/retire"
    # no successor yet: no button, and a posted retire is a conflict that writes nothing but the decision
    assert page(browser.get(f"/enterprises/{scene.employer.id}/certificates")).find(
        "form", data_testid=f"retire-{first.id}") is None
    with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
        assert browser.post(path, {}).status_code == 409
    successor = cops.register_certificate(
        db_session, scene.employer, scene.pki.seal(scene.employer.kbo_number).pem_with_chain,
        trust=scene.trust.load(), by=scene.world.ctx, successor_of=first).certificate
    scene.world.commit()
    assert page(browser.get(f"/enterprises/{scene.employer.id}/certificates")).find(
        "form", data_testid=f"retire-{first.id}") is not None

    start = last_audit_id(db_session)
    assert browser.post(path, {}).status_code == 302
    retired = scene.world.refresh(first)
    assert retired.state is CertificateState.REPLACED and retired.revocation_reason.startswith(
        f"replaced by #{successor.id}")
    assert [(r.action, r.outcome) for r in audit_since(db_session, start)] == [
        ("decision:manage_certificates", "allowed"), ("certificate.replace", "success")]
    shown = page(browser.get(f"/enterprises/{scene.employer.id}/certificates"))
    assert shown.find("tr", data_certificate=str(first.id)).attrs["data-status"] == "replaced"


def test_a_successor_of_another_enterprises_certificate_is_refused(scene, visitor, db_session):
    theirs = register(scene, scene.other)
    browser = logged_in(visitor, scene.admin)
    issued = scene.pki.seal(scene.employer.kbo_number)
    with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
        response = browser.post(f"/enterprises/{scene.employer.id}/certificates",
                                {"certificate": upload(issued.pem_with_chain), "successor_of": str(theirs.id)})
    assert response.status_code == 422
    assert page(response).field_errors("successor_of") == ["Unknown certificate."]


# --- refusals: each failed check, nothing stored, the refusal audited -------------------------


def _wrong_kbo(scene):
    return scene.pki.seal(scene.other.kbo_number, "Brouwerij Stempel")


def _non_qualified(scene):
    return scene.pki.seal(scene.employer.kbo_number, qualified=False)


def _revoked(scene):
    issued = scene.pki.seal(scene.employer.kbo_number)
    scene.pki.revoke(issued)
    scene.trust.write()  # the CRL of the trust list now names it
    return issued


def _expired(scene):
    return scene.pki.seal(scene.employer.kbo_number, valid_from=DEFAULT_NOW - timedelta(days=400),
                          valid_until=DEFAULT_NOW - timedelta(days=1))


def _rsa_1024(scene):
    return scene.pki.seal(scene.employer.kbo_number, key=rsa_key(1024))


def _sha1(scene):
    return scene.pki.seal(scene.employer.kbo_number, hash_algorithm=hashes.SHA1())


def _untrusted(scene):
    return TestPKI(DEFAULT_NOW).seal(scene.employer.kbo_number)


def _bound_elsewhere(scene):
    """The certificate is bound to another enterprise already. The operation never binds a certificate
    naming another KBO number, so the row is written directly, as an earlier mistake would have left it."""
    issued = scene.pki.seal(scene.employer.kbo_number)
    scene.world.session.add(Certificate(
        enterprise_id=scene.other.id, fingerprint=issued.certificate.fingerprint(hashes.SHA256()).hex(),
        der=issued.der, subject="bound elsewhere", issuer="test", serial_number="1",
        organization_identifier=f"NTRBE-{scene.employer.kbo_number}", key_description="EC P-256",
        usages="digital_signature",
        not_before=DEFAULT_NOW - timedelta(days=1), not_after=DEFAULT_NOW + timedelta(days=30),
        state=CertificateState.ACTIVE, checks=[], registered_at=DEFAULT_NOW))
    scene.world.commit()
    return issued


REFUSALS = {
    "wrong organizationIdentifier": (_wrong_kbo, {"identity"}),
    "not qualified": (_non_qualified, {"qc_compliance", "qc_type"}),
    "revoked by its CA": (_revoked, {"revocation"}),
    "expired": (_expired, {"validity"}),
    "RSA 1024": (_rsa_1024, {"key_strength"}),
    "SHA-1": (_sha1, {"signature_hash"}),
    "untrusted chain": (_untrusted, {"chain", "revocation"}),  # no path: revocation cannot be checked
    "already bound to another enterprise": (_bound_elsewhere, {"unique"}),
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_a_refused_certificate_shows_its_failed_checks_and_nothing_is_stored(kind, scene, visitor, db_session):
    make, failing = REFUSALS[kind]
    issued = make(scene)
    browser = logged_in(visitor, scene.admin)
    with Unchanged(db_session, [("decision:manage_certificates", "allowed"),
                                ("certificate.refuse", "failure")]) as written:
        response = browser.post(f"/enterprises/{scene.employer.id}/certificates",
                                {"certificate": upload(issued.pem_with_chain)})
    assert response.status_code == 422
    shown = page(response)
    assert shown.find(data_testid="checks").attrs["data-outcome"] == "refused"
    outcomes = checks_shown(shown)
    assert list(outcomes) == CHECK_CODES
    assert {code for code, ok in outcomes.items() if not ok} == failing
    assert all(shown.testid(f"outcome-{code}") == "Failed" for code in failing)
    assert "nothing was stored" in shown.text
    assert shown.field_errors("certificate") == ["The certificate was refused: see the checks that failed."]
    # the refusal's audit record survived the request's rollback, with every check
    refusal = written.records[1]
    assert refusal.enterprise_id == scene.employer.id and refusal.actor_person_id == scene.admin.id
    assert {c["code"] for c in refusal.details["checks"] if not c["ok"]} == failing


def test_not_a_certificate_is_a_form_error(scene, visitor, db_session):
    browser = logged_in(visitor, scene.admin)
    for blob in (b"hello, this is not a certificate", b""):
        with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
            response = browser.post(f"/enterprises/{scene.employer.id}/certificates",
                                    {"certificate": upload(blob, "notes.txt")})
        assert response.status_code == 422
        errors = page(response).field_errors("certificate")
        assert errors in (["This is not an X.509 certificate in PEM or DER."],
                          ["Choose a certificate file (PEM or DER)."]), errors


def test_a_certificate_registered_already_is_a_conflict(scene, visitor, db_session):
    issued = scene.pki.seal(scene.employer.kbo_number)
    cops.register_certificate(db_session, scene.employer, issued.pem_with_chain, trust=scene.trust.load(),
                              by=scene.world.ctx)
    scene.world.commit()
    browser = logged_in(visitor, scene.admin)
    with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
        response = browser.post(f"/enterprises/{scene.employer.id}/certificates",
                                {"certificate": upload(issued.pem_with_chain)})
    assert response.status_code == 409
    assert "already registered" in page(response).field_errors("certificate")[0]


# --- CSRs and the generated key ----------------------------------------------------------------


def csr_for(kbo: str, key=None, *, der: bool = False) -> bytes:
    from cryptography.x509.oid import NameOID

    from tests.pki import ec_key

    key = key or ec_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
        x509.NameAttribute(x509.ObjectIdentifier("2.5.4.97"), f"NTRBE-{kbo}"),
        x509.NameAttribute(NameOID.COMMON_NAME, "seal")])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)


@pytest.mark.parametrize("der", [False, True])
def test_upload_a_csr_then_download_it(der, scene, visitor, db_session):
    browser = logged_in(visitor, scene.admin)
    blob = csr_for(scene.employer.kbo_number, der=der)
    response = browser.post(f"/enterprises/{scene.employer.id}/certificates/requests",
                            {"csr": upload(blob, "seal.csr")})
    assert response.status_code == 302, response.get_data(as_text=True)
    db_session.expire_all()
    [request] = db_session.scalars(select(CertificateRequest).where(
        CertificateRequest.enterprise_id == scene.employer.id)).all()
    assert not request.generated_by_portal

    shown = page(browser.get(f"/enterprises/{scene.employer.id}/certificates"))
    link = shown.find("a", data_testid=f"download-csr-{request.id}")
    download = browser.get(link.attrs["href"])
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment;")
    loaded = x509.load_pem_x509_csr(download.get_data())
    expected = x509.load_der_x509_csr(blob) if der else x509.load_pem_x509_csr(blob)
    assert loaded.public_bytes(serialization.Encoding.DER) == expected.public_bytes(serialization.Encoding.DER)
    # another enterprise's request is not found through this enterprise
    other_request = cops.upload_csr(db_session, scene.other, csr_for(scene.other.kbo_number), by=scene.world.ctx)
    scene.world.commit()
    assert browser.get(f"/enterprises/{scene.employer.id}/certificates/csr?request_id={other_request.id}"
                       ).status_code == 404


def test_a_csr_for_another_enterprise_is_refused(scene, visitor, db_session):
    browser = logged_in(visitor, scene.admin)
    with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
        response = browser.post(f"/enterprises/{scene.employer.id}/certificates/requests",
                                {"csr": upload(csr_for(scene.other.kbo_number), "seal.csr")})
    assert response.status_code == 422
    assert page(response).field_errors("csr") == [
        f"The request's organizationIdentifier must be NTRBE-{scene.employer.kbo_number} or VATBE-{scene.employer.kbo_number}."]


def _public_key_sha256(public_key) -> str:
    return hashlib.sha256(public_key.public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def _private_number_hex(key) -> str:
    return format(key.private_numbers().private_value, "x")


def test_the_key_form_says_the_portal_keeps_no_copy(scene, visitor):
    browser = logged_in(visitor, scene.admin)
    shown = page(browser.get(f"/enterprises/{scene.employer.id}/certificates/generate-key"))
    warning = shown.testid("key-warning")
    assert "The portal keeps no copy of the private key." in warning
    assert "You need that password to open the key" in warning
    assert shown.find("input", name="confirm") is not None


@pytest.mark.parametrize("key_format", ["pkcs12", "pem"])
def test_a_generated_key_is_handed_over_once_and_not_kept(key_format, scene, visitor, db_session):
    browser = logged_in(visitor, scene.admin)
    response = browser.post(f"/enterprises/{scene.employer.id}/certificates/generate-key",
                            {"password": PASSWORD, "confirm": PASSWORD, "key_format": key_format})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and scene.employer.kbo_number in disposition
    content = response.get_data()
    if key_format == "pkcs12":
        assert response.mimetype == "application/x-pkcs12" and disposition.endswith('.p12"')
        with pytest.raises(ValueError):
            pkcs12.load_key_and_certificates(content, b"not the password")
        key, _, _ = pkcs12.load_key_and_certificates(content, PASSWORD.encode())
    else:
        assert b"ENCRYPTED PRIVATE KEY" in content and disposition.endswith('.pem"')
        key = serialization.load_pem_private_key(content, PASSWORD.encode())

    db_session.expire_all()
    [request] = db_session.scalars(select(CertificateRequest).where(
        CertificateRequest.enterprise_id == scene.employer.id)).all()
    assert request.generated_by_portal
    assert request.public_key_sha256 == _public_key_sha256(key.public_key())
    # the row holds the CSR (public) and nothing of the private key
    stored = " ".join(str(getattr(request, c.key)) for c in CertificateRequest.__table__.columns)
    assert "PRIVATE KEY" not in stored and _private_number_hex(key) not in stored
    assert x509.load_pem_x509_csr(request.csr_pem.encode()).public_key().public_numbers() == \
        key.public_key().public_numbers()
    audit = " ".join(str(r.details) for r in audit_since(db_session, 0))
    assert "PRIVATE KEY" not in audit and _private_number_hex(key) not in audit and PASSWORD not in audit
    # the pending list offers the CSR, marked as generated by the portal
    shown = page(browser.get(f"/enterprises/{scene.employer.id}/certificates"))
    assert "handed over once" in shown.find("tr", data_request=str(request.id)).text


@pytest.mark.parametrize("password, confirm, key_format, field, message", [
    (PASSWORD, PASSWORD + "x", "pkcs12", "confirm", "The two passwords differ."),
    ("too-short", "too-short", "pkcs12", "password", "Protect the key with a password of at least 12 characters."),
    (PASSWORD, PASSWORD, "jks", "key_format", "Choose PKCS#12 or encrypted PEM."),
])
def test_key_generation_errors_are_form_errors(password, confirm, key_format, field, message, scene, visitor,
                                               db_session):
    browser = logged_in(visitor, scene.admin)
    with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
        response = browser.post(f"/enterprises/{scene.employer.id}/certificates/generate-key",
                                {"password": password, "confirm": confirm, "key_format": key_format})
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert page(response).field_errors(field) == [message]


# --- revocation --------------------------------------------------------------------------------


def test_revoke_a_certificate_and_its_api_clients_stop_at_once(scene, visitor, db_session, clock):
    certificate = register(scene)
    client = clients.register_api_client(db_session, scene.employer, certificate, "Loonmotor", ["dmfa"],
                                         by=scene.world.ctx)
    scene.world.commit()
    browser = logged_in(visitor, scene.admin)
    path = f"/enterprises/{scene.employer.id}/certificates/{certificate.id}/revoke"
    # without the confirmation: a form error, nothing written
    with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
        response = browser.post(path, {"reason": "key lost"})
    assert response.status_code == 422
    assert page(response).field_errors("confirm")
    with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
        response = browser.post(path, {"confirm": "y"})
    assert response.status_code == 422
    assert page(response).field_errors("reason")

    start = last_audit_id(db_session)
    response = browser.post(path, {"reason": "key lost", "confirm": "y"})
    assert response.status_code == 302
    revoked = scene.world.refresh(certificate)
    assert revoked.state is CertificateState.REVOKED and revoked.revocation_reason == "key lost"
    assert revoked.revoked_by_id == scene.admin.id
    assert [(r.action, r.outcome) for r in audit_since(db_session, start)] == [
        ("decision:manage_certificates", "allowed"), ("certificate.revoke", "success")]
    assert clients.client_status(scene.world.refresh(client), clock.now()) == "certificate-revoked"
    shown = page(browser.get(f"/enterprises/{scene.employer.id}/api-clients"))
    assert shown.find("tr", data_client=client.client_id).attrs["data-status"] == "certificate-revoked"
    # revoking it again is a conflict
    with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
        assert browser.post(path, {"reason": "again", "confirm": "y"}).status_code == 409


def test_another_enterprises_certificate_cannot_be_revoked_through_this_one(scene, visitor, db_session):
    theirs = register(scene, scene.other)
    browser = logged_in(visitor, scene.admin)
    with Unchanged(db_session, [("decision:manage_certificates", "allowed")]):
        response = browser.post(f"/enterprises/{scene.employer.id}/certificates/{theirs.id}/revoke",
                                {"reason": "not mine", "confirm": "y"})
    assert response.status_code == 404
    assert scene.world.refresh(theirs).state is CertificateState.ACTIVE


# --- API clients -------------------------------------------------------------------------------


def test_register_an_api_client_and_see_how_to_configure_it(scene, visitor, db_session):
    certificate = register(scene)
    browser = logged_in(visitor, scene.admin)
    shown = page(browser.get(f"/enterprises/{scene.employer.id}/api-clients"))
    assert shown.testid("token-endpoint") == "http://portal.test/oauth/token"
    offered = {i.attrs["value"] for i in shown.find_all("input", name="scopes")}
    assert "dmfa" in offered and "toegangsbeheer" not in offered
    assert {o.attrs["value"] for o in shown.find_all("option")} == {"0", str(certificate.id)}

    start = last_audit_id(db_session)
    response = browser.post(f"/enterprises/{scene.employer.id}/api-clients",
                            {"name": "Loonmotor", "certificate_id": str(certificate.id),
                             "scopes": ["dmfa", "werkgeversrepertorium_beveiligd"]})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert [(r.action, r.outcome) for r in audit_since(db_session, start)] == [
        ("decision:manage_api_clients", "allowed"), ("api_client.register", "success")]
    [client] = clients.api_clients_of(db_session, scene.employer.id)
    assert client.scopes == ["dmfa", "werkgeversrepertorium_beveiligd"] and client.certificate_id == certificate.id

    shown = page(browser.get(location_path(response)))
    assert client.client_id in " ".join(shown.flashes)
    row = shown.find("tr", data_client=client.client_id)
    assert row.attrs["data-status"] == "active"
    assert certificate.fingerprint in row.text and "Loonmotor" in row.text
    command = shown.testid("example-command")
    assert f"--client-id {client.client_id}" in command and "--scope dmfa" in command

    response = browser.post(f"/enterprises/{scene.employer.id}/api-clients/{client.client_id}/revoke")
    assert response.status_code == 302
    assert scene.world.refresh(client).revoked_at is not None


@pytest.mark.parametrize("values, field", [
    ({"name": "Loonmotor", "scopes": ["dmfa"]}, "certificate_id"),
    ({"name": "Loonmotor", "certificate": "revoked", "scopes": ["dmfa"]}, "certificate_id"),
    ({"name": "Loonmotor", "certificate": "theirs", "scopes": ["dmfa"]}, "certificate_id"),
    ({"name": "Loonmotor", "certificate": "ours"}, "scopes"),
    ({"name": "Loonmotor", "certificate": "ours", "scopes": ["toegangsbeheer"]}, "scopes"),
    ({"name": "  ", "certificate": "ours", "scopes": ["dmfa"]}, "name"),
])
def test_api_client_refusals_are_form_errors(values, field, scene, visitor, db_session):
    certificates = {"ours": register(scene), "revoked": register(scene), "theirs": register(scene, scene.other)}
    cops.revoke_certificate(db_session, certificates["revoked"], "lost", by=scene.world.ctx)
    scene.world.commit()
    data = {k: v for k, v in values.items() if k != "certificate"}
    if "certificate" in values:
        data["certificate_id"] = str(certificates[values["certificate"]].id)
    browser = logged_in(visitor, scene.admin)
    with Unchanged(db_session, [("decision:manage_api_clients", "allowed")]):
        response = browser.post(f"/enterprises/{scene.employer.id}/api-clients", data)
    assert response.status_code == 422
    assert page(response).field_errors(field), page(response).text


# --- who may: the decision point ---------------------------------------------------------------


def _posts(scene, certificate, client_id):
    pem = scene.pki.seal(scene.employer.kbo_number).pem_with_chain
    base = f"/enterprises/{scene.employer.id}"
    return [
        ("manage_certificates", f"{base}/certificates", {"certificate": upload(pem)}),
        ("manage_certificates", f"{base}/certificates/requests",
         {"csr": upload(csr_for(scene.employer.kbo_number))}),
        ("manage_certificates", f"{base}/certificates/generate-key",
         {"password": PASSWORD, "confirm": PASSWORD, "key_format": "pkcs12"}),
        ("manage_certificates", f"{base}/certificates/{certificate.id}/revoke", {"reason": "x", "confirm": "y"}),
        ("manage_api_clients", f"{base}/api-clients",
         {"name": "X", "certificate_id": str(certificate.id), "scopes": ["dmfa"]}),
        ("manage_api_clients", f"{base}/api-clients/{client_id}/revoke", {}),
    ]


@pytest.mark.parametrize("who", ["clerk", "other_admin"])
def test_a_user_and_another_enterprises_admin_are_refused(who, scene, visitor, db_session):
    certificate = register(scene)
    client = clients.register_api_client(db_session, scene.employer, certificate, "Loonmotor", ["dmfa"],
                                         by=scene.world.ctx)
    request = cops.upload_csr(db_session, scene.employer, csr_for(scene.employer.kbo_number), by=scene.world.ctx)
    scene.world.commit()
    browser = logged_in(visitor, getattr(scene, who))
    base = f"/enterprises/{scene.employer.id}"
    for path, action in ((f"{base}/certificates", "view"), (f"{base}/api-clients", "view"),
                         (f"{base}/certificates/csr?request_id={request.id}", "view"),
                         (f"{base}/certificates/generate-key", "manage_certificates")):
        with Unchanged(db_session, [(f"decision:{action}", "denied")]):
            response = browser.get(path)
        assert response.status_code == 403, path
        assert "BEGIN CERTIFICATE REQUEST" not in response.get_data(as_text=True)
    for action, path, data in _posts(scene, certificate, client.client_id):
        with Unchanged(db_session, [(f"decision:{action}", "denied")]):
            response = browser.post(path, data)
        assert response.status_code == 403, path
        assert response.mimetype == "text/html"
    assert scene.world.refresh(certificate).state is CertificateState.ACTIVE
    assert scene.world.refresh(client).revoked_at is None


def test_a_co_administrator_manages_certificates_as_the_decision_point_says(scene, visitor, db_session):
    browser = logged_in(visitor, scene.co_admin)
    assert browser.get(f"/enterprises/{scene.employer.id}/certificates").status_code == 200
    issued = scene.pki.seal(scene.employer.kbo_number)
    response = browser.post(f"/enterprises/{scene.employer.id}/certificates",
                            {"certificate": upload(issued.pem_with_chain)})
    local_admin_only = "manage_certificates" in LOCAL_ADMIN_ONLY_ACTIONS
    assert response.status_code == (403 if local_admin_only else 302)
    assert len(certificates_of(db_session, scene.employer)) == (0 if local_admin_only else 1)


def test_csrf_is_enforced_on_every_form(scene, visitor, db_session):
    certificate = register(scene)
    client = clients.register_api_client(db_session, scene.employer, certificate, "Loonmotor", ["dmfa"],
                                         by=scene.world.ctx)
    scene.world.commit()
    browser = logged_in(visitor, scene.admin)
    for _, path, data in _posts(scene, certificate, client.client_id):
        with Unchanged(db_session, []):
            response = browser.post(path, data, csrf=False)
        assert response.status_code == 400, path
    # the pages carry the token in every form
    for path in (f"/enterprises/{scene.employer.id}/certificates", f"/enterprises/{scene.employer.id}/api-clients",
                 f"/enterprises/{scene.employer.id}/certificates/generate-key"):
        shown = page(browser.get(path))
        forms = [f for f in shown.find_all("form") if f.attrs.get("method") == "post"]
        tokens = shown.find_all("input", name="csrf_token")
        assert forms and len(tokens) >= len(forms), path


# --- the dashboard -----------------------------------------------------------------------------


def test_the_dashboard_warns_of_certificates_expiring_or_just_expired(scene, visitor, clock):
    soon = register(scene, valid_until=DEFAULT_NOW + timedelta(days=20))
    ending = register(scene, valid_until=DEFAULT_NOW + timedelta(days=3))
    later = register(scene, valid_until=DEFAULT_NOW + timedelta(days=200))
    clock.advance(days=10)  # soon: 10 days left; ending: expired 7 days ago; later: 180 days left

    def warnings(persona):
        shown = page(logged_in(visitor, persona).get("/"))
        card = shown.find(data_testid=f"enterprise-{scene.employer.kbo_number}")
        found = {int(e.attrs["data-testid"].rsplit("-", 1)[1]): e for e in shown.find_all(cls="warning")
                 if e.attrs.get("data-testid", "").startswith("expiry-warning-")}
        return card, found

    card, found = warnings(scene.admin)
    assert set(found) == {soon.id, ending.id}
    assert found[soon.id].attrs["data-status"] == "expiring" and "expires in 10 days" in found[soon.id].text
    assert found[ending.id].attrs["data-status"] == "expired" and "expired on" in found[ending.id].text
    links = [a.attrs["href"] for a in page(logged_in(visitor, scene.admin).get("/")).find_all("a")]
    assert f"/enterprises/{scene.employer.id}/certificates#certificate-{soon.id}" in links
    assert later.id not in found
    # the co-administrator sees them too; a user does not
    assert set(warnings(scene.co_admin)[1]) == {soon.id, ending.id}
    assert warnings(scene.clerk)[1] == {}
    # a month after expiry the warning is gone; a revoked certificate warns no more
    clock.advance(days=30)
    cops.revoke_certificate(scene.world.session, scene.world.refresh(soon), "replaced", by=scene.world.ctx)
    scene.world.commit()
    assert warnings(scene.admin)[1] == {}
