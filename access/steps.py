"""A step of a decision's path, or its reason. Its own module so that the paths other packages
contribute to the decision point (mandates) can build steps without importing the decision point."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from access.clock import BRUSSELS


@dataclass(frozen=True)
class Step:
    """One step of a decision's path, or its reason: a code, parameters, and English text."""

    code: str
    text: str
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


def belgian_day(stored: str | datetime) -> str:
    """The Belgian calendar date of a UTC timestamp: a datetime, or one read back as text
    (SQLite gives it naive, PostgreSQL as '...+00')."""
    if isinstance(stored, datetime):
        moment = stored
    else:
        text_ = stored.replace(" ", "T", 1)
        if len(text_) > 19 and text_[-3] in "+-":
            text_ += ":00"
        moment = datetime.fromisoformat(text_)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(BRUSSELS).date().isoformat()
