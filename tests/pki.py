"""The tests' PKI: examples/pki_builder.py's root, "QTSP" intermediate and seal certificates (the demo
builds its own with the same code), plus the one kind of bad certificate cryptography will not sign:
a SHA-1 one. Its trust list (anchors and a CRL) is written to a directory in the format of
certificates.validation.load_trust_list."""
from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certificates.qc import QCP_L, QC_TYPE_ESIGN
from examples.pki_builder import UTC, Issued, PKIBuilder, ec_key, rsa_key


def _resign_with_sha1(certificate: x509.Certificate, issuer_key) -> x509.Certificate:
    """cryptography refuses to sign a certificate with SHA-1 (rightly); the test of the SHA-1 check
    needs one, so the to-be-signed part is re-signed by hand (ECDSA with SHA-1)."""
    from asn1crypto import x509 as asn1_x509

    parsed = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = {"algorithm": "sha1_ecdsa"}
    signature = issuer_key.sign(tbs.dump(force=True), ec.ECDSA(hashes.SHA1()))
    resigned = asn1_x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": {"algorithm": "sha1_ecdsa"},
                                      "signature_value": signature})
    return x509.load_der_x509_certificate(resigned.dump())


class TestPKI(PKIBuilder):
    """Root → QTSP intermediate → seal certificates. `now` anchors every validity period."""

    __test__ = False  # not a pytest class

    def seal(self, kbo: str, organization: str = "Test Enterprise", *, hash_algorithm=None, **kwargs) -> Issued:
        """A seal certificate for enterprise `kbo`; every keyword makes one kind of bad certificate
        (hash_algorithm=hashes.SHA1(): signed with SHA-1)."""
        issued = super().seal(kbo, organization, **kwargs)
        if isinstance(hash_algorithm, hashes.SHA1):
            _, issuer_key = self.issuer(kwargs.get("issuer", "qtsp"))
            issued.certificate = _resign_with_sha1(issued.certificate, issuer_key)
        return issued


__all__ = ["TestPKI", "Issued", "rsa_key", "ec_key", "QCP_L", "QC_TYPE_ESIGN", "UTC"]
