"""Fixtures for the unit tests: the factories bound to the test's session."""
from __future__ import annotations

from tests.factories import factories  # noqa: F401  (a pytest fixture, reused as is by other test packages)
