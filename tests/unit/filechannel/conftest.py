"""Fixtures of the file-channel tests: the test PKI and its trust list, and the mandate tests' kit
(employers, providers, staff and mandates through the real operations)."""
from __future__ import annotations

import pytest

from tests.pki import rsa_key
from tests.factories import factories  # noqa: F401  (pytest fixtures)
from tests.unit.certificates.conftest import pki, trust  # noqa: F401
from tests.unit.mandates.conftest import cheap_initial_passwords, groups, kit  # noqa: F401
from tests.unit.filechannel.helpers import World, register


@pytest.fixture
def world(kit, pki, trust) -> World:
    employer, client, stranger = kit.employer(), kit.employer(), kit.employer()
    secretariat = kit.secretariat()
    kit.affiliate(employer, secretariat)
    kit.affiliate(client, secretariat)
    seal, certificate = register(kit, pki, trust, employer)
    secretariat_seal, secretariat_certificate = register(kit, pki, trust, secretariat, key=rsa_key())
    stranger_seal, stranger_certificate = register(kit, pki, trust, stranger)
    return World(employer, seal, certificate, secretariat, secretariat_seal, secretariat_certificate, client,
                 stranger, stranger_seal, stranger_certificate)
