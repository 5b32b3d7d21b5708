from tests.factories import factories  # noqa: F401
