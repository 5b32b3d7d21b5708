"""The demo's PKI, for `make run`: a demo root and "QTSP" CA, their CRLs, the trust list the portal
reads (PORTAL_TRUST_LIST), and a qualified seal certificate with its private key for two enterprises of
the demo data set (examples/demo.py), so that a visitor can register a certificate on the certificates
page, register an API client bound to it, and run examples/api_client.py with the files.

    python -m examples.demo_pki [DIRECTORY]      # default: instance/demo-pki

Generated once, then kept: running it again only issues the CRLs again when they are older than a
month (they are valid for a year: revocation checking is hard-fail, so an expired CRL would refuse
every certificate), and a new seal certificate when one is missing, about to expire or was not issued
by the CA on disk. Nothing here is trusted anywhere but in a demo portal: the CA keys are kept
unencrypted next to the certificates.

Layout of DIRECTORY:
    trust-list.toml                  the trust list (anchors root.pem, intermediates qtsp.pem, CRLs)
    root.pem, qtsp.pem               the demo CAs; root-key.pem, qtsp-key.pem their keys
    root.crl, qtsp.crl               their CRLs (DER)
    <enterprise>/certificate.pem     the seal certificate with its chain (upload this file)
    <enterprise>/key.pem             its private key, PKCS#8 PEM encrypted with DEMO_KEY_PASSWORD
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from access.validators import format_kbo
from examples.demo import BAKERY_KBO, BAKERY_NAME, SECRETARIAT_KBO, SECRETARIAT_NAME
from examples.pki_builder import CA, UTC, PKIBuilder, ec_key, rsa_key

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "instance" / "demo-pki"
DEMO_KEY_PASSWORD = "Demo-Zegel-Sleutel-2026"
TRUST_LIST = "trust-list.toml"
CRL_DAYS = 365            # how long a CRL is valid
CRL_REFRESH_DAYS = 30     # issued again on the next run when older than this
SEAL_DAYS = 2 * 365
SEAL_RENEW_DAYS = 60      # a seal expiring within this many days is issued again
TRUST_SERVICES = "Demo Trust Services (not a real QTSP)"


@dataclass(frozen=True)
class DemoEnterprise:
    slug: str
    kbo: str
    name: str
    login: str      # the demo login of its local administrator, who registers the certificate
    key_kind: str   # "ec" (ES256) or "rsa" (PS256/RS256): both kinds of client assertion


ENTERPRISES = (
    DemoEnterprise("bakery", BAKERY_KBO, BAKERY_NAME, "an.peeters", "ec"),
    DemoEnterprise("secretariat", SECRETARIAT_KBO, SECRETARIAT_NAME, "sofie", "rsa"),
)


@dataclass(frozen=True)
class DemoSeal:
    enterprise: DemoEnterprise
    certificate: Path
    key: Path
    not_after: datetime
    issued: bool    # issued on this run


@dataclass(frozen=True)
class DemoPKI:
    directory: Path
    trust_list: Path
    seals: tuple[DemoSeal, ...]
    crl_issued: bool  # the CRLs were issued on this run


def ensure_demo_pki(directory: Path = DEFAULT_DIRECTORY, now: datetime | None = None) -> DemoPKI:
    """Generate what is missing under `directory`, refresh what is getting old; keep the rest."""
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    builder = _builder(directory, now)
    crl_issued = _ensure_crls(builder, directory, now)
    trust_list = directory / TRUST_LIST
    if not trust_list.exists():
        trust_list.write_text('# The demo PKI of `make run` (examples/demo_pki.py): never trust it elsewhere.\n'
                              'anchors = ["root.pem"]\nintermediates = ["qtsp.pem"]\n'
                              'crls = ["qtsp.crl", "root.crl"]\n')
    seals = tuple(_ensure_seal(builder, directory, enterprise, now) for enterprise in ENTERPRISES)
    return DemoPKI(directory, trust_list, seals, crl_issued)


def _builder(directory: Path, now: datetime) -> PKIBuilder:
    """The CAs on disk, or new ones (then every seal is issued again: see _issued_by)."""
    files = [directory / name for name in ("root.pem", "root-key.pem", "qtsp.pem", "qtsp-key.pem")]
    options = dict(trust_services=TRUST_SERVICES, root_name="Demo Root CA", qtsp_name="Demo Qualified Seal CA",
                   crl_url="http://crl.demo.invalid/qtsp.crl", crl_days=CRL_DAYS)
    if all(path.exists() for path in files):
        root, qtsp = (CA(x509.load_pem_x509_certificate(files[i].read_bytes()),
                         serialization.load_pem_private_key(files[i + 1].read_bytes(), None)) for i in (0, 2))
        return PKIBuilder(now, root=root, qtsp=qtsp, **options)
    builder = PKIBuilder(now, **options)
    for (certificate, key), (cert_path, key_path) in (((builder.root, builder.root_key), files[:2]),
                                                      ((builder.qtsp, builder.qtsp_key), files[2:])):
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    for stale in ("qtsp.crl", "root.crl"):  # signed by the CAs that were replaced
        (directory / stale).unlink(missing_ok=True)
    return builder


def _ensure_crls(builder: PKIBuilder, directory: Path, now: datetime) -> bool:
    if all(_crl_fresh(directory / name, builder, now) for name in ("qtsp.crl", "root.crl")):
        return False
    # CRL numbers must grow: the issue time in seconds does.
    builder.write_crls(directory, now, number=int(now.timestamp()))
    return True


def _crl_fresh(path: Path, builder: PKIBuilder, now: datetime) -> bool:
    if not path.exists():
        return False
    crl = x509.load_der_x509_crl(path.read_bytes())
    issuer = builder.qtsp if path.name == "qtsp.crl" else builder.root
    return (crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())
            and now - crl.last_update_utc < timedelta(days=CRL_REFRESH_DAYS))


def _ensure_seal(builder: PKIBuilder, directory: Path, enterprise: DemoEnterprise, now: datetime) -> DemoSeal:
    folder = directory / enterprise.slug
    certificate_path, key_path = folder / "certificate.pem", folder / "key.pem"
    if certificate_path.exists() and key_path.exists():
        certificate = x509.load_pem_x509_certificates(certificate_path.read_bytes())[0]
        if _issued_by(certificate, builder.qtsp) and \
                certificate.not_valid_after_utc - now > timedelta(days=SEAL_RENEW_DAYS):
            return DemoSeal(enterprise, certificate_path, key_path, certificate.not_valid_after_utc, False)
    folder.mkdir(exist_ok=True)
    issued = builder.seal(enterprise.kbo, enterprise.name, key=ec_key() if enterprise.key_kind == "ec" else rsa_key(),
                          valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=SEAL_DAYS))
    _write_private(key_path, issued.key_pem(DEMO_KEY_PASSWORD.encode()))
    certificate_path.write_bytes(issued.pem_with_chain)
    return DemoSeal(enterprise, certificate_path, key_path, issued.certificate.not_valid_after_utc, True)


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    """A key file readable by its owner only."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def describe(pki: DemoPKI, portal_url: str = "http://127.0.0.1:5000") -> str:
    """What `make run` prints: where the files are, the key password, and how to try them."""
    lines = [f"Demo PKI in {_shown(pki.directory)} (trust list {_shown(pki.trust_list)}"
             f"{', CRLs issued now, valid one year' if pki.crl_issued else ''}):"]
    for seal in pki.seals:
        enterprise = seal.enterprise
        lines += [f"  {enterprise.name} ({format_kbo(enterprise.kbo)}), local administrator {enterprise.login}:",
                  f"    certificate  {_shown(seal.certificate)}   (valid until {seal.not_after:%Y-%m-%d})",
                  f"    private key  {_shown(seal.key)}   ({'EC P-256' if enterprise.key_kind == 'ec' else 'RSA 2048'}"
                  f", encrypted PEM)"]
    lines += [f"  key password: {DEMO_KEY_PASSWORD}",
              "  Log in as the local administrator, register the certificate on the enterprise's certificates page,",
              "  register an API client bound to it, then for example:",
              f"    DEMO_KEY_PASSWORD='{DEMO_KEY_PASSWORD}' .venv/bin/python -m examples.api_client "
              f"--portal {portal_url} \\",
              f"      --client-id CLIENT_ID --certificate {_shown(pki.seals[0].certificate)} "
              f"--key {_shown(pki.seals[0].key)} \\",
              "      --key-password-env DEMO_KEY_PASSWORD /api/v1/enterprises/ENTERPRISE_ID/repertory"]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIRECTORY)
    parser.add_argument("--portal", default="http://127.0.0.1:5000", help="the portal's URL, for the example")
    args = parser.parse_args(argv)
    print(describe(ensure_demo_pki(args.directory), args.portal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
