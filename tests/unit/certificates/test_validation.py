"""Each kind of certificate of the test PKI gets exactly the outcome the issue asks for, check by check."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes

from certificates.qc import QC_TYPE_ESIGN
from certificates.validation import fingerprint, load_trust_list, validate_certificate
from tests.pki import TestPKI, rsa_key

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
KBO = "0412345614"


@pytest.fixture(scope="module")
def pki():
    return TestPKI(NOW)


@pytest.fixture(scope="module")
def revoked(pki):
    issued = pki.seal(KBO)
    pki.revoke(issued)
    return issued


@pytest.fixture(scope="module")
def trust(pki, revoked, tmp_path_factory):  # noqa: ARG001  (the CRL must list the revoked one)
    return load_trust_list(pki.write_trust_list(tmp_path_factory.mktemp("trust")))


CASES = {
    "qualified seal (EC)": (dict(), set()),
    "qualified seal (RSA 2048), QCP-l": (dict(key=rsa_key(2048), policy="0.4.0.194112.1.1"), set()),
    "issued by the root itself": (dict(issuer="root"), set()),
    "not qualified": (dict(qualified=False), {"qc_compliance", "qc_type"}),
    "qualified signature, not a seal": (dict(qc_type=QC_TYPE_ESIGN), {"qc_type"}),
    "no qualified policy": (dict(policy=None), {"policy"}),
    "wrong organizationIdentifier": (dict(org_id="NTRBE-0999999999"), {"identity"}),
    "VAT-style identifier": (dict(org_id=f"VATBE-{KBO}"), set()),
    "expired": (dict(valid_from=NOW - timedelta(days=400), valid_until=NOW - timedelta(days=1)), {"validity"}),
    "not yet valid": (dict(valid_from=NOW + timedelta(days=1), valid_until=NOW + timedelta(days=30)),
                      {"validity"}),
    "RSA 1024": (dict(key=rsa_key(1024)), {"key_strength"}),
    "SHA-1": (dict(hash_algorithm=hashes.SHA1()), {"signature_hash"}),
    "no key usage for signing or authentication": (dict(digital_signature=False, non_repudiation=False),
                                                  {"key_usage"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_of_certificate_fails_exactly_its_checks(name, pki, trust):
    kwargs, expected_failures = CASES[name]
    issued = pki.seal(KBO, **kwargs)
    validation = validate_certificate(issued.certificate, issued.chain, kbo=KBO, trust=trust, now=NOW)
    assert {check.code for check in validation.failed} == expected_failures, validation.failed
    assert validation.ok is (not expected_failures)
    assert [check.code for check in validation.checks] == [
        "chain", "validity", "key_usage", "key_strength", "signature_hash", "revocation", "qc_compliance",
        "qc_type", "policy", "identity"]


def test_revoked_certificate_fails_revocation(revoked, trust):
    validation = validate_certificate(revoked.certificate, revoked.chain, kbo=KBO, trust=trust, now=NOW)
    assert {check.code for check in validation.failed} == {"revocation"}


def test_certificate_of_another_pki_has_no_chain(trust):
    stranger = TestPKI(NOW).seal(KBO)
    validation = validate_certificate(stranger.certificate, stranger.chain, kbo=KBO, trust=trust, now=NOW)
    assert "chain" in {check.code for check in validation.failed}


def test_no_revocation_information_is_a_hard_fail(pki, tmp_path):
    directory = tmp_path / "no-crl"
    pki.write_trust_list(directory)
    (directory / "trust_list.toml").write_text('anchors = ["root.pem"]\nintermediates = ["qtsp.pem"]\n')
    issued = pki.seal(KBO)
    validation = validate_certificate(issued.certificate, issued.chain, kbo=KBO,
                                      trust=load_trust_list(directory / "trust_list.toml"), now=NOW)
    assert {check.code for check in validation.failed} == {"revocation"}


def test_fingerprint_is_sha256_hex(pki):
    issued = pki.seal(KBO)
    assert len(fingerprint(issued.certificate)) == 64
