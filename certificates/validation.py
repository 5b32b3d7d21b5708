"""The checks a certificate must pass before it is bound to an enterprise, each with its outcome.

Path validation and revocation use pyhanko-certvalidator, offline: the trust anchors and the CRLs
(or OCSP responses) come from the configured trust list; revocation is hard-fail, so a certificate
whose status cannot be established is refused."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (InsufficientRevinfoError, PathBuildingError, PathValidationError,
                                          RevokedError)

from certificates.qc import (
    ORGANIZATION_IDENTIFIER,
    QC_COMPLIANCE,
    QC_STATEMENTS_EXTENSION,
    QC_TYPE,
    QC_TYPE_ESEAL,
    QUALIFIED_SEAL_POLICIES,
    decode_qc_statements,
)

ALLOWED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
MIN_RSA_BITS = 2048
WEAK_HASHES = {"sha1", "md5"}


@dataclass(frozen=True)
class Check:
    """One check and its outcome; `detail` says what was found (English; the web layer translates by code)."""

    code: str
    ok: bool
    detail: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrustList:
    """Trust anchors of qualified trust service providers, and offline revocation information."""

    anchors: tuple[x509.Certificate, ...]
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    source: str = ""


def load_trust_list(path: str | Path) -> TrustList:
    """Read a trust list file (TOML): `anchors`, `intermediates`, `crls`, `ocsps` are lists of file
    paths relative to it (PEM or DER)."""
    path = Path(path)
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    base = path.parent

    def read(names):
        return [(base / name).read_bytes() for name in data.get(names, [])]

    return TrustList(
        anchors=tuple(c for blob in read("anchors") for c in parse_certificates(blob)),
        intermediates=tuple(c for blob in read("intermediates") for c in parse_certificates(blob)),
        crls=tuple(_der(blob, b"X509 CRL") for blob in read("crls")),
        ocsps=tuple(read("ocsps")),
        source=str(path),
    )


def _der(blob: bytes, label: bytes) -> bytes:
    if blob.lstrip().startswith(b"-----BEGIN"):
        from asn1crypto import pem

        _, _, der = pem.unarmor(blob)
        return der
    return blob


def parse_certificates(blob: bytes) -> list[x509.Certificate]:
    """One DER certificate, or one or more PEM certificates (a chain)."""
    if b"-----BEGIN CERTIFICATE-----" in blob:
        return x509.load_pem_x509_certificates(blob)
    return [x509.load_der_x509_certificate(blob)]


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 thumbprint, lowercase hex: the certificate's identity in the portal (and a JWT's kid)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def organization_identifier(cert: x509.Certificate) -> str | None:
    values = cert.subject.get_attributes_for_oid(x509.ObjectIdentifier(ORGANIZATION_IDENTIFIER))
    return str(values[0].value) if values else None


def subject_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) or \
        cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def key_description(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {ALLOWED_CURVES.get(key.curve.name, key.curve.name)}"
    return type(key).__name__


@dataclass
class Validation:
    certificate: x509.Certificate
    chain: list[x509.Certificate]
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]


def validate_certificate(cert: x509.Certificate, chain: list[x509.Certificate], *, kbo: str, trust: TrustList,
                         now: datetime) -> Validation:
    checks = [
        _check_chain(cert, chain, trust, now),
        _check_validity(cert, now),
        _check_key_usage(cert),
        _check_key_strength(cert),
        _check_signature_hashes(cert, chain),
        _check_revocation(cert, chain, trust, now),
        *_check_qualified(cert),
        _check_identity(cert, kbo),
    ]
    return Validation(cert, chain, checks)


def _to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _validator(cert, chain, trust: TrustList, now: datetime, *, revocation: bool) -> CertificateValidator:
    context = ValidationContext(
        trust_roots=[_to_asn1(c) for c in trust.anchors],
        other_certs=[_to_asn1(c) for c in (*trust.intermediates, *chain)],
        moment=now,
        allow_fetching=False,
        crls=list(trust.crls) if revocation else [],
        ocsps=list(trust.ocsps) if revocation else [],
        revocation_mode="hard-fail" if revocation else "soft-fail",
        # SHA-1 is reported by its own check; path building must not hide it.
        weak_hash_algos=set(),
    )
    return CertificateValidator(_to_asn1(cert), validation_context=context)


def _run(coroutine_function):
    """Run pyhanko-certvalidator's coroutine to completion from synchronous code. When the calling
    thread already runs an event loop (an async server, or Playwright's in the browser tests),
    asyncio.run() is not allowed there: run it in a thread of its own instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine_function())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function())).result()


def _path_moment(cert: x509.Certificate, now: datetime) -> datetime:
    """The moment the path is validated at: now, or for a leaf outside its own validity period (which
    the validity check reports) the nearest moment inside it. Every certificate of the path is then
    checked whole — signatures, CA constraints and the dates of the CAs: an expired CA fails the chain
    (an error must never be read from its text: pyhanko stops at the first date error, before the
    signatures below it are checked)."""
    return min(max(now, cert.not_valid_before_utc), cert.not_valid_after_utc)


def _check_chain(cert, chain, trust, now) -> Check:
    try:
        path = _run(_validator(cert, chain, trust, _path_moment(cert, now), revocation=False)
                    .async_validate_path)
    except PathBuildingError:
        return Check("chain", False, "no path to a trust anchor of the configured trust list")
    except PathValidationError as error:
        return Check("chain", False, f"the path to the trust anchor is not valid: {error}")
    anchor = path.first.subject.human_friendly if hasattr(path.first, "subject") else "a trust anchor"
    return Check("chain", True, f"chains to {anchor}", {"anchor": anchor})


def _check_validity(cert, now) -> Check:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    params = {"from": start.date().isoformat(), "until": end.date().isoformat()}
    if now < start:
        return Check("validity", False, f"not valid before {params['from']}", params)
    if now > end:
        return Check("validity", False, f"expired on {params['until']}", params)
    return Check("validity", True, f"valid from {params['from']} until {params['until']}", params)


def key_usages(cert: x509.Certificate) -> set[str]:
    try:
        usage = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        return set()
    found = set()
    if usage.digital_signature:
        found.add("digital_signature")
    if usage.content_commitment:
        found.add("non_repudiation")
    return found


def _check_key_usage(cert) -> Check:
    usages = key_usages(cert)
    if not usages:
        return Check("key_usage", False, "neither digitalSignature (authentication) nor nonRepudiation (signing)")
    return Check("key_usage", True, ", ".join(sorted(usages)), {"usages": ", ".join(sorted(usages))})


def _check_key_strength(cert) -> Check:
    key = cert.public_key()
    described = key_description(cert)
    if isinstance(key, rsa.RSAPublicKey):
        ok = key.key_size >= MIN_RSA_BITS
    elif isinstance(key, ec.EllipticCurvePublicKey):
        ok = key.curve.name in ALLOWED_CURVES
    else:
        ok = False
    detail = described if ok else f"{described}: RSA of at least {MIN_RSA_BITS} bits or EC P-256/P-384 is required"
    return Check("key_strength", ok, detail, {"key": described})


def _hash_name(cert: x509.Certificate) -> str:
    algorithm = cert.signature_hash_algorithm
    return algorithm.name if algorithm is not None else "none"


def _check_signature_hashes(cert, chain) -> Check:
    weak = [subject_name(c) for c in (cert, *chain) if _hash_name(c) in WEAK_HASHES]
    if weak:
        return Check("signature_hash", False, f"signed with SHA-1 (or weaker): {', '.join(weak)}")
    return Check("signature_hash", True, _hash_name(cert))


def _check_revocation(cert, chain, trust, now) -> Check:
    if not trust.crls and not trust.ocsps:
        return Check("revocation", False, "no revocation information (CRL or OCSP) available: hard-fail")
    try:
        _run(_validator(cert, chain, trust, now, revocation=True).async_validate_path)
    except RevokedError as error:
        return Check("revocation", False, f"revoked: {error}")
    except InsufficientRevinfoError as error:
        return Check("revocation", False, f"revocation status could not be established: {error}")
    except PathBuildingError:
        return Check("revocation", False, "revocation not checked: no path to a trust anchor")
    except PathValidationError as error:
        if now > cert.not_valid_after_utc or now < cert.not_valid_before_utc:
            # The leaf's own dates (the validity check's to report) end the walk before its status;
            # an expired certificate is refused anyway and a CA no longer publishes its status.
            return Check("revocation", True, "not checked: the certificate is outside its validity period")
        return Check("revocation", False, f"revocation not checked: the path is not valid ({error})")
    return Check("revocation", True, "not revoked (CRL/OCSP of the trust list)")


def _qc_statements(cert) -> dict[str, list[str]] | None:
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(QC_STATEMENTS_EXTENSION))
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    der = value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()
    return decode_qc_statements(der)


def _policies(cert) -> set[str]:
    try:
        policies = cert.extensions.get_extension_for_oid(ExtensionOID.CERTIFICATE_POLICIES).value
    except x509.ExtensionNotFound:
        return set()
    return {p.policy_identifier.dotted_string for p in policies}


def _check_qualified(cert) -> list[Check]:
    statements = _qc_statements(cert) or {}
    compliance = Check("qc_compliance", QC_COMPLIANCE in statements,
                       "QcCompliance present" if QC_COMPLIANCE in statements
                       else "no QcCompliance statement: not a qualified certificate")
    types = statements.get(QC_TYPE, [])
    qc_type = Check("qc_type", QC_TYPE_ESEAL in types,
                    "QcType eseal (a qualified electronic seal of a legal person)" if QC_TYPE_ESEAL in types
                    else "QcType is not eseal: an enterprise needs a seal certificate")
    found = sorted(QUALIFIED_SEAL_POLICIES[p] for p in _policies(cert) & set(QUALIFIED_SEAL_POLICIES))
    policy = Check("policy", bool(found), ", ".join(found) if found else "neither QCP-l nor QCP-l-qscd",
                   {"policies": ", ".join(found)})
    return [compliance, qc_type, policy]


def _check_identity(cert, kbo: str) -> Check:
    identifier = organization_identifier(cert)
    expected = {f"NTRBE-{kbo}", f"VATBE-{kbo}"}
    if identifier in expected:
        return Check("identity", True, f"organizationIdentifier {identifier}", {"identifier": identifier})
    return Check("identity", False, f"organizationIdentifier is {identifier or 'missing'}; expected NTRBE-{kbo} "
                                    f"or VATBE-{kbo}", {"identifier": identifier or "", "kbo": kbo})
