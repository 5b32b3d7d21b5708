"""Failed attempts per address (access/throttle.py): free failures, growing waits, a cap, a fresh window
after an hour without failures, and counts that outlive the refused request's rollback."""
from __future__ import annotations

from datetime import timedelta

from access import throttle
from audit.operations import SURVIVORS_KEY

POLICY = throttle.AddressPolicy(free=3, window=timedelta(hours=1), base_seconds=30, cap_seconds=120)
ADDRESS = "198.51.100.23"


def test_the_first_failures_are_free_then_the_wait_doubles_up_to_the_cap(db_session, clock):
    waits = [throttle.count_failure(db_session, ADDRESS, POLICY) for _ in range(7)]
    assert waits == [0, 0, 0, 30, 60, 120, 120]
    assert throttle.seconds_blocked(db_session, ADDRESS) == 120
    assert throttle.seconds_blocked(db_session, "198.51.100.24") == 0  # another address is not slowed
    clock.advance(seconds=100)
    assert throttle.seconds_blocked(db_session, ADDRESS) == 20
    clock.advance(seconds=20)
    assert throttle.seconds_blocked(db_session, ADDRESS) == 0


def test_an_hour_without_failures_starts_a_fresh_window(db_session, clock):
    for _ in range(5):
        throttle.count_failure(db_session, ADDRESS, POLICY)
    clock.advance(hours=1, seconds=1)
    assert throttle.seconds_blocked(db_session, ADDRESS) == 0
    assert throttle.count_failure(db_session, ADDRESS, POLICY) == 0  # free again


def test_the_count_is_replayed_after_a_rollback(db_session, clock):
    throttle.count_failure(db_session, ADDRESS, POLICY)
    assert len(db_session.info[SURVIVORS_KEY]) == 1


def test_no_address_no_throttle(db_session, clock):
    assert throttle.count_failure(db_session, None, POLICY) == 0
    assert throttle.seconds_blocked(db_session, None) == 0
