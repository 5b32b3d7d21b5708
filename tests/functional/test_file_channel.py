"""The signed file channel over HTTP (POST /api/v1/files) and the direct-change endpoint: a valid batch
is applied with a receipt; every bad input is a problem+json with its reason, and nothing of the
batch is written (only the audit trail keeps the refusal and the decisions)."""
from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from certificates import operations as cops
from certificates.models import FileMessage
from filechannel.repertory_changes import NAMESPACE
from tests.functional.helpers import (NothingWritten, audit_since, business_counts, last_audit_id, problem_of)
from tests.unit.certificates.conftest import pki, trust  # noqa: F401  (fixtures)
from tests.unit.filechannel.helpers import batch, repertory_state, sign_b64

FILES = "/api/v1/files"


@pytest.fixture
def bakery(world, pki, trust):  # noqa: F811
    """An employer with its local administrator and a registered qualified seal certificate, and an
    unrelated employer with its own certificate."""
    employer = world.employer("Bakkerij Brood")
    admin = world.local_admin(employer)
    seal = pki.seal(employer.kbo_number, employer.name)
    certificate = cops.register_certificate(world.session, employer, seal.pem_with_chain, trust=trust,
                                            by=world.ctx).certificate
    other = world.employer("Slagerij Vlees")
    other_seal = pki.seal(other.kbo_number, other.name)
    cops.register_certificate(world.session, other, other_seal.pem_with_chain, trust=trust, by=world.ctx)
    world.commit()
    return SimpleNamespace(employer=employer, admin=admin, seal=seal, certificate=certificate, other=other,
                           other_seal=other_seal)


@pytest.fixture
def admin_api(visitor, bakery):
    browser = visitor()
    assert browser.api_login(bakery.admin.login).status_code == 200
    return browser


def post_file(browser, content: bytes, signature: bytes):
    return browser.api("POST", FILES, {"content": base64.b64encode(content).decode(), "signature": signature.decode()})


def own_change(bakery, **values) -> bytes:
    kbo = bakery.employer.kbo_number
    return batch(kbo, {"employer": kbo, **(values or {"street": "Molenstraat 3", "postal_code": "9300",
                                                      "city": "Aalst"})})


def refused(world, browser, content: bytes, signature: bytes, status: int, code: str) -> dict:
    """Refused with this status and problem type; nothing of the repertory written; the refusal audited."""
    world.session.expire_all()
    before, counts, last = repertory_state(world.session), business_counts(world.session), last_audit_id(world.session)
    body = problem_of(post_file(browser, content, signature), status, code)
    world.session.expire_all()
    assert repertory_state(world.session) == before and business_counts(world.session) == counts
    actions = [(r.action, r.outcome) for r in audit_since(world.session, last)]
    assert ("filechannel.refuse", "failure") in actions, actions
    assert all(a.startswith(("decision:", "filechannel.refuse")) for a, _ in actions), actions
    return body


def test_signed_batch_is_applied_and_the_receipt_returned(world, bakery, admin_api):
    content = own_change(bakery, name="Bakkerij Brood & Banket", street="Molenstraat 3")
    response = post_file(admin_api, content, sign_b64(bakery.seal, content))
    assert response.status_code == 201, response.get_data(as_text=True)
    receipt = response.get_json()
    assert receipt["reference"].startswith("FM-") and receipt["items"] == 1
    assert receipt["message_type"] == "repertory-changes" and receipt["sender"] == bakery.employer.kbo_number
    assert receipt["signer"]["fingerprint"] == bakery.certificate.fingerprint
    assert receipt["results"][0]["changes"]["name"] == {"before": "Bakkerij Brood", "after": "Bakkerij Brood & Banket"}

    world.session.expire_all()
    employer = world.refresh(bakery.employer)
    assert (employer.name, employer.street) == ("Bakkerij Brood & Banket", "Molenstraat 3")
    stored = world.session.query(FileMessage).one()
    assert stored.reference == receipt["reference"] and stored.receipt["results"] == receipt["results"]
    # The secured record's history names the certificate that proved the change.
    record = admin_api.get(f"/api/v1/enterprises/{employer.id}/repertory").get_json()
    direct = [h for h in record["history"] if h["source"] == "file_message"]
    assert len(direct) == 1 and direct[0]["certificate"] == bakery.certificate.fingerprint
    assert direct[0]["changes"]["street"]["after"] == "Molenstraat 3"


def test_file_altered_after_signing(world, bakery, admin_api):
    content = own_change(bakery)
    body = refused(world, admin_api, content.replace(b"Aalst", b"Gent!"), sign_b64(bakery.seal, content), 422,
                   "digest-mismatch")
    assert body["field"] == "signature" and "changed after signing" in body["detail"]


def test_signature_by_an_unregistered_certificate(world, pki, bakery, admin_api):  # noqa: F811
    content = own_change(bakery)
    stranger = pki.seal(bakery.employer.kbo_number)
    body = refused(world, admin_api, content, sign_b64(stranger, content), 403, "unknown-signer")
    assert "not registered" in body["detail"]


def test_signature_by_a_revoked_certificate(world, bakery, admin_api):
    cops.revoke_certificate(world.session, world.refresh(bakery.certificate), "stolen laptop", by=world.ctx)
    world.commit()
    content = own_change(bakery)
    body = refused(world, admin_api, content, sign_b64(bakery.seal, content), 403, "signer-not-active")
    assert "revoked" in body["detail"]


def test_signature_by_another_enterprises_certificate_not_mandated(world, bakery, admin_api):
    content = batch(bakery.other.kbo_number, {"employer": bakery.employer.kbo_number, "city": "Aalst",
                                              "postal_code": "9300"})
    body = refused(world, admin_api, content, sign_b64(bakery.other_seal, content), 403,
                   "certificate-not-of-enterprise")
    assert body["item"] == 1 and body["application"] in ("bestandsoverdracht", "directe_wijziging")


def test_an_employer_in_the_batch_the_sender_may_not_act_for(world, bakery, admin_api):
    mine = bakery.employer.kbo_number
    content = batch(mine, {"employer": mine, "legal_form": "NV"},
                    {"employer": bakery.other.kbo_number, "legal_form": "NV"})
    body = refused(world, admin_api, content, sign_b64(bakery.seal, content), 403, "no-direct-authority")
    assert body["item"] == 2 and bakery.other.kbo_display in body["detail"]
    assert world.refresh(bakery.employer).legal_form == "BV"


def test_schema_error_in_one_item_of_an_otherwise_good_batch(world, bakery, admin_api):
    mine = bakery.employer.kbo_number
    content = batch(mine, {"employer": mine, "legal_form": "NV"},
                    {"employer": bakery.other.kbo_number, "joint_committee": "2000"})
    body = refused(world, admin_api, content, sign_b64(bakery.seal, content), 422, "schema-invalid")
    assert body["field"] == "content" and body["item"] == 2 and "JointCommittee" in body["detail"]
    assert body["errors"][0]["line"] == body["line"]


def test_malformed_xml(world, bakery, admin_api):
    content = b"<RepertoryChanges><Sender></RepertoryChanges>"
    body = refused(world, admin_api, content, sign_b64(bakery.seal, content), 422, "malformed-xml")
    assert body["field"] == "content"


def test_external_entity_and_dtd_are_refused_unresolved(world, bakery, admin_api, tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:SECRET-HASH")
    kbo = bakery.employer.kbo_number
    content = (f'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>\n'
               f'<RepertoryChanges xmlns="{NAMESPACE}"><Sender><CompanyID>{kbo}</CompanyID></Sender><Change>'
               f'<Employer><CompanyID>{kbo}</CompanyID></Employer><City>&e;</City></Change></RepertoryChanges>'
               ).encode()
    body = refused(world, admin_api, content, sign_b64(bakery.seal, content), 422, "doctype-forbidden")
    assert "SECRET-HASH" not in str(body)


def test_replayed_message(world, bakery, admin_api):
    content = own_change(bakery)
    signature = sign_b64(bakery.seal, content)
    first = post_file(admin_api, content, signature)
    assert first.status_code == 201
    body = refused(world, admin_api, content, signature, 409, "replayed-message")
    assert first.get_json()["reference"] in body["detail"]


def test_bad_request_bodies(world, bakery, admin_api):
    with NothingWritten(world.session):
        problem_of(admin_api.api("POST", FILES, {"content": "***", "signature": "AAAA"}), 422, "invalid-input")
        problem_of(admin_api.api("POST", FILES, {"content": "PGEvPg=="}), 422, "invalid-input")
        problem_of(admin_api.api("POST", FILES, {"content": "PGEvPg==", "signature": "AAAA", "extra": 1}), 422)
        problem_of(admin_api.api("POST", FILES, data="content=x", headers={"Content-Type": "text/plain"}), 415)


def test_anonymous_sender_is_asked_to_log_in(world, bakery, visitor, admin_api):
    content = own_change(bakery)
    assert post_file(admin_api, content, sign_b64(bakery.seal, content)).status_code == 201  # a known message
    world.session.expire_all()
    last = last_audit_id(world.session)
    body = problem_of(post_file(visitor(), content, sign_b64(bakery.seal, content)), 401, "login-required")
    # nothing of the file was read: no replay reference, no enterprise, and nothing written
    assert "reference" not in body["detail"] and bakery.employer.kbo_number not in str(body)
    world.session.expire_all()
    assert audit_since(world.session, last) == []


def test_the_decision_points_reason_in_the_users_language(world, bakery, visitor):
    browser = visitor(lang="nl")
    assert browser.api_login(bakery.admin.login).status_code == 200
    mine = bakery.employer.kbo_number
    content = batch(mine, {"employer": bakery.other.kbo_number, "legal_form": "NV"})
    body = refused(world, browser, content, sign_b64(bakery.seal, content), 403, "no-direct-authority")
    assert "niet onder het rechtstreeks gezag van " + bakery.other.kbo_display in body["detail"]


# --- directe wijziging -----------------------------------------------------------------------------


def direct_changes(enterprise) -> str:
    return f"/api/v1/enterprises/{enterprise.id}/repertory/direct-changes"


def test_direct_change_from_a_browser_session_needs_certificate_proof(world, bakery, admin_api):
    with NothingWritten(world.session, audit=1, outcome="denied") as nothing:
        body = problem_of(admin_api.api("POST", direct_changes(bakery.employer), {"legal_form": "NV"}), 403,
                          "certificate-required")
    assert body["application"] == "directe_wijziging"
    assert "local administrator" in " ".join(body["path"])  # the right was there; the proof was not
    assert nothing.new_audit[0].reason.startswith("requires proof of possession")
    assert world.refresh(bakery.employer).legal_form == "BV"


def test_direct_change_refusals(world, bakery, admin_api, visitor):
    with NothingWritten(world.session, audit="decisions"):
        problem_of(visitor().api("POST", direct_changes(bakery.employer), {"legal_form": "NV"}), 401,
                   "login-required")
        problem_of(admin_api.api("POST", direct_changes(bakery.other), {"legal_form": "NV"}), 403,
                   "no-direct-authority")
        problem_of(admin_api.api("POST", direct_changes(bakery.employer), {"legal_form": "NV", "rsz_number": "1"}),
                   422, "invalid-input")


def test_openapi_documents_both_endpoints(client):
    document = client.get("/api/openapi.json").get_json()
    files = document["paths"]["/api/v1/files"]["post"]
    assert files["x-decision-point"] == "self" and "201" in files["responses"]
    schema = document["components"]["schemas"]["FileIn"]
    assert set(schema["required"]) == {"content", "signature"}
    direct = document["paths"]["/api/v1/enterprises/{enterprise_id}/repertory/direct-changes"]["post"]
    assert direct["x-decision-point"] == "directe_wijziging"
