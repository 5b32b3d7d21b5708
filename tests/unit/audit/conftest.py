"""Fixtures of the audit tests: a signing key, and a committed chain of a few thousand records."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.unit.audit.chain_fixtures import build_chain
from tests.unit.mandates.isolated_db import isolated_engine

CHAIN_RECORDS = 3050  # three automatic checkpoints (1..1000, 1001..2000, 2001..3000) and a tail of 50
CHECKPOINT_EVERY = 1000


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def chain_db(database_url, tmp_path_factory):
    key = Ed25519PrivateKey.generate()
    with isolated_engine(database_url, tmp_path_factory.mktemp("chain"), "chain") as engine:
        yield build_chain(engine, key, records=CHAIN_RECORDS, every=CHECKPOINT_EVERY)
