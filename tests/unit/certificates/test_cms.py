"""Verifying detached CMS signatures (certificates.cms): the forms the file channel accepts, and each
way a signature is refused. Signatures are made with cryptography's PKCS7SignatureBuilder."""
from __future__ import annotations

import hashlib

import pytest
from asn1crypto import cms as asn1_cms
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from certificates.cms import CmsError, parse_detached, verify_detached
from tests.pki import rsa_key
from tests.unit.filechannel.helpers import sign

CONTENT = b'<?xml version="1.0"?>\n<Message>\n  <Line>one</Line>\n</Message>\n'


@pytest.fixture(scope="module")
def seals(pki):
    return {"ec": pki.seal("0203430576", "EC Seal"), "rsa": pki.seal("0203430576", "RSA Seal", key=rsa_key())}


@pytest.mark.parametrize("attributes", [True, False])
@pytest.mark.parametrize("key, pss", [("ec", False), ("rsa", False), ("rsa", True)])
def test_supported_forms_verify_and_name_the_signer(seals, key, attributes, pss):
    issued = seals[key]
    verified = verify_detached(CONTENT, sign(issued, CONTENT, attributes=attributes, pss=pss))
    assert verified.signer == issued.certificate
    assert verified.signed_attributes is attributes
    assert verified.digest_algorithm == "sha256"
    assert verified.signature_algorithm == {"ec": "ecdsa", "rsa": "rsassa_pss" if pss else "rsassa_pkcs1v15"}[key]
    assert verified.content_sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert (verified.signing_time is not None) is attributes


@pytest.mark.parametrize("hash_algorithm", [hashes.SHA384(), hashes.SHA512()])
def test_stronger_hashes_verify(seals, hash_algorithm):
    verify_detached(CONTENT, sign(seals["rsa"], CONTENT, hash_algorithm=hash_algorithm))


@pytest.mark.parametrize("attributes, code", [(True, "digest-mismatch"), (False, "signature-invalid")])
def test_a_changed_file_does_not_verify(seals, attributes, code):
    signature = sign(seals["ec"], CONTENT, attributes=attributes)
    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT.replace(b"one", b"two"), signature)
    assert refused.value.code == code


def test_a_text_mode_signature_is_refused_with_a_hint(seals):
    """S/MIME text mode signs the CRLF form of the file, not its bytes: refused, and the error says how to sign."""
    signature = sign(seals["ec"], CONTENT, binary=False)
    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, signature)
    assert refused.value.code == "digest-mismatch" and "-binary" in refused.value.message
    verify_detached(CONTENT.replace(b"\n", b"\r\n"), signature)  # what it did sign


def test_signed_by_another_key_than_the_certificates(seals, pki):
    impostor = pki.seal("0203430576").key
    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, sign(seals["ec"], CONTENT, key=impostor))
    assert refused.value.code == "signature-invalid"


def test_signature_without_certificate_needs_a_candidate(seals, pki):
    signature = sign(seals["rsa"], CONTENT, certificates=False)
    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, signature)
    assert refused.value.code == "signer-not-found"
    with pytest.raises(CmsError):  # a candidate that is not the signer's certificate does not help
        verify_detached(CONTENT, signature, [seals["ec"].certificate, pki.qtsp])
    assert verify_detached(CONTENT, signature, [seals["ec"].certificate, seals["rsa"].certificate]).signer \
        == seals["rsa"].certificate


def test_the_signer_identifier_is_read(seals):
    parsed = parse_detached(sign(seals["ec"], CONTENT))
    assert parsed.signer_id.serial_number == seals["ec"].certificate.serial_number
    assert "Test Qualified Seal CA" in parsed.signer_id.describe()
    assert len(parsed.embedded) == 1


def test_pem_armoured_signature_is_accepted(seals):
    from asn1crypto import pem

    armoured = pem.armor("PKCS7", sign(seals["ec"], CONTENT))
    assert verify_detached(CONTENT, armoured).signer == seals["ec"].certificate


def test_attached_signature_is_refused(seals):
    attached = (pkcs7.PKCS7SignatureBuilder().set_data(CONTENT)
                .add_signer(seals["ec"].certificate, seals["ec"].key, hashes.SHA256())
                .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))
    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, attached)
    assert refused.value.code == "not-detached"


def test_two_signers_are_refused(seals):
    two = (pkcs7.PKCS7SignatureBuilder().set_data(CONTENT)
           .add_signer(seals["ec"].certificate, seals["ec"].key, hashes.SHA256())
           .add_signer(seals["rsa"].certificate, seals["rsa"].key, hashes.SHA256())
           .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]))
    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, two)
    assert refused.value.code == "malformed-signature" and "2 signers" in refused.value.message


def _resigned(signature: bytes, mutate) -> bytes:
    info = asn1_cms.ContentInfo.load(signature)
    mutate(info["content"]["signer_infos"][0])
    return info.dump(force=True)


def test_weak_digest_algorithm_is_refused(seals):
    def sha1(signer_info):
        signer_info["digest_algorithm"] = {"algorithm": "sha1"}

    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, _resigned(sign(seals["ec"], CONTENT), sha1))
    assert refused.value.code == "unsupported-algorithm"


def test_unsupported_signature_algorithm_is_refused(seals):
    def dsa(signer_info):
        signer_info["signature_algorithm"] = {"algorithm": "sha256_dsa"}

    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, _resigned(sign(seals["ec"], CONTENT), dsa))
    assert refused.value.code == "unsupported-algorithm"


def test_algorithm_that_does_not_fit_the_key(seals):
    """An RSA algorithm over an EC certificate's signature: does not verify (never a crash)."""
    def rsa(signer_info):
        signer_info["signature_algorithm"] = {"algorithm": "sha256_rsa"}

    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, _resigned(sign(seals["ec"], CONTENT), rsa))
    assert refused.value.code == "signature-invalid"


def test_signed_attributes_must_hold_one_message_digest(seals):
    def drop_digest(signer_info):
        attrs = signer_info["signed_attrs"]
        signer_info["signed_attrs"] = asn1_cms.CMSAttributes(
            [a for a in attrs if a["type"].native != "message_digest"])

    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, _resigned(sign(seals["ec"], CONTENT), drop_digest))
    assert refused.value.code == "malformed-signature"


def test_a_changed_signed_attribute_breaks_the_signature(seals):
    """The signature covers the signed attributes: changing one (here the signing time) is detected."""
    from datetime import datetime, timezone

    def new_time(signer_info):
        for attribute in signer_info["signed_attrs"]:
            if attribute["type"].native == "signing_time":
                attribute["values"] = [asn1_cms.Time({"utc_time": datetime(2020, 1, 1, tzinfo=timezone.utc)})]

    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, _resigned(sign(seals["ec"], CONTENT), new_time))
    assert refused.value.code == "signature-invalid"


@pytest.mark.parametrize("blob", [b"", b"garbage", b"\x30\x03\x02\x01\x01", b"\x30\x80" + b"\x00" * 10])
def test_garbage_is_malformed(blob):
    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, blob)
    assert refused.value.code == "malformed-signature"


def test_a_certificate_is_not_a_signature(seals):
    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, seals["ec"].der)
    assert refused.value.code == "malformed-signature"


def test_oversized_signature_is_refused():
    with pytest.raises(CmsError) as refused:
        verify_detached(CONTENT, b"\x30" * (64 * 1024 + 1))
    assert refused.value.code == "malformed-signature"
