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


# --- a CA that has expired: its date error must never hide what the path check would find below it ---


def _expired_intermediate(pki):
    """A CA genuinely signed by the test root, expired yesterday (a public certificate anyone can
    put in the chain of an upload)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from examples.pki_builder import name

    key = ec.generate_private_key(ec.SECP384R1())
    certificate = (
        x509.CertificateBuilder().subject_name(name("Old Qualified Seal CA", "Test Trust Services"))
        .issuer_name(pki.root.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=3000)).not_valid_after(NOW - timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root_key.public_key()),
                       critical=False)
        .sign(pki.root_key, hashes.SHA384()))
    return certificate, key


def _forged(genuine, kbo: str):
    """The genuine certificate with an attacker's key and another KBO number swapped into its
    to-be-signed part: the issuer's signature no longer matches."""
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    parsed = asn1_x509.Certificate.load(genuine.public_bytes(serialization.Encoding.DER))
    tbs = parsed["tbs_certificate"]
    attacker = ec.generate_private_key(ec.SECP256R1())
    tbs["subject_public_key_info"] = asn1_x509.PublicKeyInfo.load(attacker.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    subject = x509.Name([attribute if attribute.oid.dotted_string != "2.5.4.97"
                         else x509.NameAttribute(attribute.oid, f"NTRBE-{kbo}") for attribute in genuine.subject])
    tbs["subject"] = asn1_x509.Name.load(subject.public_bytes())
    der = asn1_x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": parsed["signature_algorithm"],
                                 "signature_value": parsed["signature_value"]}).dump(force=True)
    return x509.load_der_x509_certificate(der)


@pytest.mark.parametrize("forge", [False, True], ids=["genuine leaf", "forged leaf"])
def test_a_leaf_under_an_expired_ca_fails_the_chain(forge, trust):
    """pyhanko stops at the CA's date error before it checks the leaf's signature below it: reading
    that error as "only a date problem" accepted a forged certificate (found in review)."""
    old_pki = TestPKI(NOW)
    intermediate, key = _expired_intermediate(old_pki)
    old_pki.qtsp, old_pki.qtsp_key = intermediate, key
    genuine = old_pki.seal("0999999999", org_id="NTRBE-0999999999",
                           valid_from=NOW - timedelta(days=30), valid_until=NOW + timedelta(days=300))
    leaf = _forged(genuine.certificate, KBO) if forge else genuine.certificate
    kbo = KBO if forge else "0999999999"
    own_trust = type(trust)(anchors=(old_pki.root,), crls=(old_pki.root_crl(),))
    validation = validate_certificate(leaf, [intermediate], kbo=kbo, trust=own_trust, now=NOW)
    failed = {check.code for check in validation.failed}
    assert {"chain", "revocation"} <= failed and not validation.ok
