"""A fake clock for tests: time moves only when the test (or a fake sleep) moves it.

``FakeClock`` implements ``beacons.clock.Clock``. ``wait`` does not sleep: it
moves the clock on by the seconds asked (or returns at once when the event is
set) and yields to the event loop for a millisecond, so a loop that waits for a backoff or a
rate limit runs at the speed of the machine while every decision it takes sees
exact, reproducible times.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)) -> None:
        self._epoch = start.timestamp()
        self._lock = threading.Lock()  # a receiver thread may read it while the loop moves it

    @classmethod
    def starting_now(cls) -> FakeClock:
        """A fake clock that starts at the real time, for rows the store stamped with the real clock;
        from then on only the test (and fake waits) move it."""
        return cls(datetime.now(UTC))

    def time(self) -> float:
        with self._lock:
            return self._epoch

    def monotonic(self) -> float:
        return self.time()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._epoch += max(0.0, seconds)

    def set(self, when: datetime) -> None:
        with self._lock:
            self._epoch = when.timestamp()

    async def wait(self, event: asyncio.Event | None, seconds: float) -> bool:
        if event is not None and event.is_set():
            return True
        self.advance(seconds)
        await asyncio.sleep(0.001)  # a real yield, so a loop of fake waits cannot hog the machine
        return event is not None and event.is_set()


def at(hhmm: str, day: str = "2026-11-23") -> datetime:
    """``at("17:59")``: that UTC time on a fixed day."""
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")
