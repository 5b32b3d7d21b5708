from __future__ import annotations

from pathlib import Path

import pytest

from certificates.validation import load_trust_list
from tests.conftest import DEFAULT_NOW
from tests.factories import factories  # noqa: F401
from tests.pki import TestPKI


@pytest.fixture(scope="session")
def pki():
    return TestPKI(DEFAULT_NOW)


@pytest.fixture
def trust(pki, tmp_path):
    """The trust list as the portal reads it, with the PKI's current CRL (write it after revoking)."""
    return load_trust_list(pki.write_trust_list(Path(tmp_path) / "trust"))
