"""A test PKI built with `cryptography`: a root, a "QTSP" intermediate that issues qualified seal
certificates, and every kind of bad certificate the portal must refuse. Its trust list (anchors and
a CRL) is written to a directory in the format of certificates.validation.load_trust_list."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certificates.qc import ORGANIZATION_IDENTIFIER, QCP_L, QCP_L_QSCD, QC_TYPE_ESEAL, QC_TYPE_ESIGN, encode_qc_statements

UTC = timezone.utc


def rsa_key(bits: int = 2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organization: str | None = None, org_id: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "BE")]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if org_id:
        attrs.append(x509.NameAttribute(x509.ObjectIdentifier(ORGANIZATION_IDENTIFIER), org_id))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


@dataclass
class Issued:
    certificate: x509.Certificate
    key: object
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def pem_with_chain(self) -> bytes:
        return self.pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def key_pem(self, password: bytes | None = None) -> bytes:
        encryption = (serialization.BestAvailableEncryption(password) if password
                      else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


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


class TestPKI:
    """Root → QTSP intermediate → seal certificates. `now` anchors every validity period."""

    __test__ = False  # not a pytest class

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = self._ca(_name("Test Root CA", "Test Trust Services"), self.root_key, self.root_key, None,
                             path_length=1)
        self.qtsp_key = ec.generate_private_key(ec.SECP384R1())
        self.qtsp = self._ca(_name("Test Qualified Seal CA", "Test Trust Services"), self.qtsp_key, self.root_key,
                             self.root, path_length=0)
        self.revoked_serials: list[int] = []

    def _ca(self, name, key, issuer_key, issuer_cert, path_length):
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_cert.subject if issuer_cert else name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(days=3650))
            .not_valid_after(self.now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if issuer_cert is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        return builder.sign(issuer_key, hashes.SHA384())

    def seal(self, kbo: str, organization: str = "Test Enterprise", *, key=None, org_id: str | None = None,
             qualified: bool = True, qc_type: str = QC_TYPE_ESEAL, policy: str | None = QCP_L_QSCD,
             digital_signature: bool = True, non_repudiation: bool = True, hash_algorithm=None,
             valid_from: datetime | None = None, valid_until: datetime | None = None,
             issuer: str = "qtsp") -> Issued:
        """A seal certificate for enterprise `kbo`; every keyword makes one kind of bad certificate."""
        key = key or ec_key()
        issuer_cert, issuer_key = (self.qtsp, self.qtsp_key) if issuer == "qtsp" else (self.root, self.root_key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{organization} seal", organization, org_id or f"NTRBE-{kbo}"))
            .issuer_name(issuer_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid_from or self.now - timedelta(days=30))
            .not_valid_after(valid_until or self.now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=digital_signature, content_commitment=non_repudiation,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier("http://crl.test.invalid/qtsp.crl")], relative_name=None,
                reasons=None, crl_issuer=None)]), critical=False)
        )
        if qualified:
            builder = builder.add_extension(x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3"),
                encode_qc_statements(compliance=True, qc_types=(qc_type,) if qc_type else ())), critical=False)
        if policy:
            builder = builder.add_extension(x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(policy), None)]), critical=False)
        certificate = builder.sign(issuer_key, hashes.SHA256())
        if isinstance(hash_algorithm, hashes.SHA1):
            certificate = _resign_with_sha1(certificate, issuer_key)
        return Issued(certificate, key, [self.qtsp] if issuer == "qtsp" else [])

    def revoke(self, issued: Issued) -> None:
        self.revoked_serials.append(issued.certificate.serial_number)

    def crl(self) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.qtsp.subject)
            .last_update(self.now - timedelta(hours=1))
            .next_update(self.now + timedelta(days=7))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.qtsp_key.public_key()),
                           critical=False)
            .add_extension(x509.CRLNumber(len(self.revoked_serials) + 1), critical=False)
        )
        for serial in self.revoked_serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(self.now - timedelta(minutes=30)).build())
        return builder.sign(self.qtsp_key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)

    def root_crl(self) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.root.subject)
            .last_update(self.now - timedelta(hours=1))
            .next_update(self.now + timedelta(days=7))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()),
                           critical=False)
            .add_extension(x509.CRLNumber(1), critical=False)
        )
        return builder.sign(self.root_key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)

    def write_trust_list(self, directory: Path) -> Path:
        """Anchors, intermediates and current CRLs as files, with the TOML that lists them."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "root.pem").write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        (directory / "qtsp.pem").write_bytes(self.qtsp.public_bytes(serialization.Encoding.PEM))
        (directory / "qtsp.crl").write_bytes(self.crl())
        (directory / "root.crl").write_bytes(self.root_crl())
        path = directory / "trust_list.toml"
        path.write_text('anchors = ["root.pem"]\nintermediates = ["qtsp.pem"]\ncrls = ["qtsp.crl", "root.crl"]\n')
        return path


__all__ = ["TestPKI", "Issued", "rsa_key", "ec_key", "QCP_L", "QC_TYPE_ESIGN"]
