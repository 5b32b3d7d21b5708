"""One injectable clock for every date decision.

Rights and roles are decided at request time against this clock, so tests and
the demo can move time without touching data. Dates are Belgian calendar dates
(Europe/Brussels); timestamps are stored in UTC.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Iterator, Protocol
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass
class FrozenClock:
    """A clock standing still at `at` (UTC); `advance` moves it."""

    at: datetime

    def now(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        self.at = self.at + timedelta(**kwargs)


@dataclass
class OffsetClock:
    """System time shifted by a fixed offset (for a demo that must live 'in the future')."""

    offset: timedelta

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


_clock: Clock = SystemClock()


def set_clock(clock: Clock) -> Clock:
    global _clock
    previous, _clock = _clock, clock
    return previous


def get_clock() -> Clock:
    return _clock


@contextlib.contextmanager
def using_clock(clock: Clock) -> Iterator[Clock]:
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


def utcnow() -> datetime:
    return _clock.now().astimezone(timezone.utc)


def today() -> date:
    """The Belgian calendar date now: links and rights start and end on these."""
    return _clock.now().astimezone(BRUSSELS).date()


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
