"""The clock as a parameter: code that decides by time asks a ``Clock`` instead of the ``time`` module.

``SYSTEM`` is the real clock and the default everywhere. Tests pass a fake one
(``tests/helpers_clock.py``) so a decision (a quota that resets at midnight UTC,
a retry's backoff, a rate limit, a digest that is due) never depends on the
hour, the time zone or the speed of the machine the suite runs on (issue 10).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch (wall clock, UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, deadlines)."""
        ...

    def now(self) -> datetime:
        """The wall clock as an aware UTC datetime."""
        ...

    async def wait(self, event: asyncio.Event | None, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early when ``event`` is set; True when it was set."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, event: asyncio.Event | None, seconds: float) -> bool:
        if event is None:
            await asyncio.sleep(max(0.0, seconds))
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout=max(0.0, seconds))
            return True
        except TimeoutError:
            return event.is_set()


SYSTEM: Clock = SystemClock()


def next_utc_midnight(now: datetime) -> datetime:
    """The first midnight UTC after ``now`` (an aware datetime in any zone)."""
    day = now.astimezone(UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
