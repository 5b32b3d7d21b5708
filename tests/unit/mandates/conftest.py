"""Fixtures for the mandate tests: the factories bound to the test's session, the groups of
applications, and `kit` (see helpers.py)."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from access import operations as aops
from mandates.groups import load_groups
from tests.factories import factories  # noqa: F401  (a pytest fixture)
from tests.unit.mandates.helpers import Kit

# Still argon2id (the parameters are in the hash, so verification is unchanged), at the lowest cost:
# these tests appoint many local administrators and never log in.
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_initial_passwords(monkeypatch):
    monkeypatch.setattr(aops, "hash_password", _CHEAP.hash)


@pytest.fixture
def groups():
    return load_groups()


@pytest.fixture
def kit(factories, ctx, groups, catalogue) -> Kit:  # noqa: F811
    return Kit(factories, ctx, groups, catalogue)
