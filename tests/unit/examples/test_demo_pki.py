"""The demo PKI of `make run` (examples/demo_pki.py): its seal certificates pass every registration check
against its own trust list, its keys open with the printed password, a second run keeps everything, and
the CRLs and seals are issued again before they would stop working."""
from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certificates.validation import load_trust_list, validate_certificate
from examples import demo_pki
from examples.demo import BAKERY_KBO, SECRETARIAT_KBO
from tests.conftest import DEFAULT_NOW

NOW = DEFAULT_NOW


def files(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


def validations(pki: demo_pki.DemoPKI, now):
    trust = load_trust_list(pki.trust_list)
    for seal in pki.seals:
        certificate, *chain = x509.load_pem_x509_certificates(seal.certificate.read_bytes())
        yield seal, validate_certificate(certificate, chain, kbo=seal.enterprise.kbo, trust=trust, now=now)


@pytest.fixture
def directory(tmp_path) -> Path:
    return tmp_path / "demo-pki"


def test_the_demo_seals_pass_every_check_with_the_demo_trust_list(directory):
    pki = demo_pki.ensure_demo_pki(directory, NOW)
    assert pki.trust_list == directory / "trust-list.toml" and pki.crl_issued
    assert {seal.enterprise.kbo for seal in pki.seals} == {BAKERY_KBO, SECRETARIAT_KBO}
    for seal, validation in validations(pki, NOW):
        assert validation.ok, [(check.code, check.detail) for check in validation.failed]
        assert {"chain", "revocation", "identity"} <= {check.code for check in validation.checks}
        assert seal.issued


def test_the_keys_open_with_the_demo_password_only_and_only_their_owner_reads_them(directory):
    pki = demo_pki.ensure_demo_pki(directory, NOW)
    kinds = set()
    for seal in pki.seals:
        data = seal.key.read_bytes()
        assert b"ENCRYPTED PRIVATE KEY" in data
        with pytest.raises((TypeError, ValueError)):
            serialization.load_pem_private_key(data, None)
        key = serialization.load_pem_private_key(data, demo_pki.DEMO_KEY_PASSWORD.encode())
        certificate = x509.load_pem_x509_certificates(seal.certificate.read_bytes())[0]
        assert key.public_key().public_numbers() == certificate.public_key().public_numbers()
        kinds.add(type(key).__name__)
        assert stat.S_IMODE(seal.key.stat().st_mode) == 0o600
    assert len(kinds) == 2  # an EC key and an RSA key: both kinds of client assertion
    for name in ("root-key.pem", "qtsp-key.pem"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600


def test_a_second_run_keeps_everything(directory):
    demo_pki.ensure_demo_pki(directory, NOW)
    before = files(directory)
    again = demo_pki.ensure_demo_pki(directory, NOW + timedelta(days=1))
    assert files(directory) == before
    assert not again.crl_issued and not any(seal.issued for seal in again.seals)


def test_the_crls_are_issued_again_when_older_than_a_month(directory):
    first = demo_pki.ensure_demo_pki(directory, NOW)
    before = files(directory)
    later = NOW + timedelta(days=demo_pki.CRL_REFRESH_DAYS + 1)
    pki = demo_pki.ensure_demo_pki(directory, later)
    after = files(directory)
    assert pki.crl_issued and after["qtsp.crl"] != before["qtsp.crl"] and after["root.crl"] != before["root.crl"]
    assert {name: data for name, data in after.items() if not name.endswith(".crl")} == \
        {name: data for name, data in before.items() if not name.endswith(".crl")}
    crl = x509.load_der_x509_crl(after["qtsp.crl"])
    assert crl.next_update_utc - later >= timedelta(days=demo_pki.CRL_DAYS - 1)
    assert all(validation.ok for _, validation in validations(pki, later))
    # Without the new CRLs, a year on, revocation (hard-fail) would refuse the certificates.
    (directory / "qtsp.crl").write_bytes(before["qtsp.crl"])
    (directory / "root.crl").write_bytes(before["root.crl"])
    a_year_on = NOW + timedelta(days=demo_pki.CRL_DAYS + 1)
    assert all("revocation" in {c.code for c in validation.failed} for _, validation in validations(first, a_year_on))
    assert all(validation.ok for _, validation in validations(demo_pki.ensure_demo_pki(directory, a_year_on),
                                                               a_year_on))


def test_a_seal_about_to_expire_is_issued_again(directory):
    first = demo_pki.ensure_demo_pki(directory, NOW)
    later = first.seals[0].not_after - timedelta(days=demo_pki.SEAL_RENEW_DAYS - 1)
    pki = demo_pki.ensure_demo_pki(directory, later)
    assert all(seal.issued for seal in pki.seals)
    assert all(seal.not_after > first.seals[0].not_after for seal in pki.seals)
    assert all(validation.ok for _, validation in validations(pki, later))


def test_new_cas_mean_new_seals(directory):
    first = demo_pki.ensure_demo_pki(directory, NOW)
    old = files(directory)
    for name in ("root.pem", "qtsp-key.pem"):
        (directory / name).unlink()
    pki = demo_pki.ensure_demo_pki(directory, NOW)
    new = files(directory)
    assert new["qtsp.pem"] != old["qtsp.pem"] and new["bakery/certificate.pem"] != old["bakery/certificate.pem"]
    assert all(seal.issued for seal in pki.seals) and pki.crl_issued
    assert all(validation.ok for _, validation in validations(pki, NOW))
    assert first.trust_list == pki.trust_list


def test_make_run_prints_where_the_files_are_and_the_password(directory, capsys, monkeypatch):
    monkeypatch.chdir(directory.parent)
    assert demo_pki.main([str(directory), "--portal", "http://127.0.0.1:5001"]) == 0
    out = capsys.readouterr().out
    assert demo_pki.DEMO_KEY_PASSWORD in out and "--portal http://127.0.0.1:5001" in out
    for fragment in ("demo-pki/trust-list.toml", "demo-pki/bakery/certificate.pem", "demo-pki/bakery/key.pem",
                     "demo-pki/secretariat/certificate.pem", "an.peeters", "sofie"):
        assert fragment in out, fragment
