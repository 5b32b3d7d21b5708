"""A small PKI built with `cryptography`: a root, a "QTSP" intermediate that issues qualified seal
certificates (qcStatements QcCompliance and QcType eseal, policy QCP-l-qscd, organizationIdentifier
NTRBE-<KBO number>), their CRLs, and the trust list the portal reads (certificates.validation.
load_trust_list: a TOML naming anchors, intermediates and CRLs by paths relative to it).

Nothing here is a real trust service: the demo (examples/demo_pki.py) and the tests (tests/pki.py)
build their certificates with it, so that both exercise the portal's checks the same way."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certificates.qc import ORGANIZATION_IDENTIFIER, QCP_L_QSCD, QC_TYPE_ESEAL, encode_qc_statements

UTC = timezone.utc
CA_YEARS = 10


def rsa_key(bits: int = 2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name: str, organization: str | None = None, org_id: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "BE")]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if org_id:
        attrs.append(x509.NameAttribute(x509.ObjectIdentifier(ORGANIZATION_IDENTIFIER), org_id))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


@dataclass
class Issued:
    """A certificate, its private key and the chain up to (not including) the root."""

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


@dataclass(frozen=True)
class CA:
    """A CA certificate and its key."""

    certificate: x509.Certificate
    key: object


class PKIBuilder:
    """Root → QTSP intermediate → seal certificates. `now` anchors every validity period.

    The CAs are generated (EC P-384) unless given: a PKI kept on disk is built again from its files
    to issue more certificates or fresh CRLs."""

    def __init__(self, now: datetime, *, trust_services: str = "Test Trust Services",
                 root_name: str = "Test Root CA", qtsp_name: str = "Test Qualified Seal CA",
                 crl_url: str = "http://crl.test.invalid/qtsp.crl", crl_days: int = 7,
                 root: CA | None = None, qtsp: CA | None = None) -> None:
        self.now = now
        self.crl_url, self.crl_days = crl_url, crl_days
        if root is None:
            key = ec.generate_private_key(ec.SECP384R1())
            root = CA(self._ca(name(root_name, trust_services), key, key, None, path_length=1), key)
        if qtsp is None:
            key = ec.generate_private_key(ec.SECP384R1())
            qtsp = CA(self._ca(name(qtsp_name, trust_services), key, root.key, root.certificate, path_length=0), key)
        self.root, self.root_key = root.certificate, root.key
        self.qtsp, self.qtsp_key = qtsp.certificate, qtsp.key
        self.revoked_serials: list[int] = []

    def _ca(self, subject, key, issuer_key, issuer_cert, path_length):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_cert.subject if issuer_cert else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(days=365 * CA_YEARS))
            .not_valid_after(self.now + timedelta(days=365 * CA_YEARS))
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

    def issuer(self, which: str = "qtsp") -> tuple[x509.Certificate, object]:
        return (self.qtsp, self.qtsp_key) if which == "qtsp" else (self.root, self.root_key)

    def seal(self, kbo: str, organization: str = "Test Enterprise", *, key=None, org_id: str | None = None,
             qualified: bool = True, qc_type: str = QC_TYPE_ESEAL, policy: str | None = QCP_L_QSCD,
             digital_signature: bool = True, non_repudiation: bool = True,
             valid_from: datetime | None = None, valid_until: datetime | None = None,
             issuer: str = "qtsp") -> Issued:
        """A seal certificate for enterprise `kbo` (valid from 30 days before `now` for a year by
        default); the keywords make each kind of certificate the portal must refuse."""
        key = key or ec_key()
        issuer_cert, issuer_key = self.issuer(issuer)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(f"{organization} seal", organization, org_id or f"NTRBE-{kbo}"))
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
                full_name=[x509.UniformResourceIdentifier(self.crl_url)], relative_name=None,
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
        return Issued(certificate, key, [self.qtsp] if issuer == "qtsp" else [])

    def revoke(self, issued: Issued) -> None:
        self.revoked_serials.append(issued.certificate.serial_number)

    def crl(self, now: datetime | None = None, number: int | None = None) -> bytes:
        """The QTSP's CRL (DER), issued at `now` (default: the PKI's), with the revoked serials."""
        now = now or self.now
        builder = self._crl_builder(self.qtsp, self.qtsp_key, now, number or len(self.revoked_serials) + 1)
        for serial in self.revoked_serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(now - timedelta(minutes=30)).build())
        return builder.sign(self.qtsp_key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)

    def root_crl(self, now: datetime | None = None, number: int | None = None) -> bytes:
        """The root's CRL (DER): it revokes nothing, but hard-fail revocation checking needs it for the QTSP."""
        builder = self._crl_builder(self.root, self.root_key, now or self.now, number or 1)
        return builder.sign(self.root_key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)

    def _crl_builder(self, issuer: x509.Certificate, key, now: datetime, number: int):
        return (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.subject)
            .last_update(now - timedelta(hours=1))
            .next_update(now + timedelta(days=self.crl_days))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .add_extension(x509.CRLNumber(number), critical=False)
        )

    def write_crls(self, directory: Path, now: datetime | None = None, number: int | None = None) -> None:
        (directory / "qtsp.crl").write_bytes(self.crl(now, number))
        (directory / "root.crl").write_bytes(self.root_crl(now, number))

    def write_trust_list(self, directory: Path, filename: str = "trust_list.toml") -> Path:
        """Anchors, intermediates and current CRLs as files, with the TOML that lists them."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "root.pem").write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        (directory / "qtsp.pem").write_bytes(self.qtsp.public_bytes(serialization.Encoding.PEM))
        self.write_crls(directory)
        path = directory / filename
        path.write_text('anchors = ["root.pem"]\nintermediates = ["qtsp.pem"]\ncrls = ["qtsp.crl", "root.crl"]\n')
        return path
