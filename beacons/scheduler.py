"""The long-running daemon's schedule on SQLite: one heap of next polls and a bounded set of polls (issue 16).

``beacons run`` used to keep one sleeping task per source: 10,000 sources meant
10,000 coroutines alive for the daemon's whole life, each waking every
``CONTROL_CHECK`` seconds to look at its pause and "poll now". Here one task
keeps every source's next poll in a heap and starts a poll when it is due, with
at most ``fetch.concurrency`` polls in flight; a task exists only while its
source is being polled. What the per-source loops did is kept:

- the first poll of each source after a start (or a change by SIGHUP) is
  staggered over ``min(interval, 10 s)``, so a restart does not hit every host at once;
- after a poll the next one is planned with ``next_delay`` (interval with jitter,
  backoff, Retry-After) and stored in ``sources.next_poll_at``;
- "poll now" on the Sources page (which stores an earlier ``next_poll_at``) is seen
  within ``CONTROL_CHECK + SCHEDULE_MAX_AGE`` seconds, through the shared read of every
  source's schedule (one query, not one per source);
- a paused source is not polled; the decision to poll reads the source's own row,
  so a pause made just before its poll is never missed; it is polled as soon as it
  is resumed (``source.paused`` / ``source.resumed`` logged once each way);
- a reload: a removed source finishes its poll in flight (stored) and is not polled
  again, a changed one is polled with its new settings once the poll in flight is
  stored, a new one starts staggered;
- on stop no new poll starts; the polls in flight finish (the daemon's grace period
  bounds them).

Like ``run --once``'s pool, a host never has more than ``fetch.per_host_concurrency``
polls in flight: a due source of a busy host waits aside (not in one of the
``fetch.concurrency`` slots) and starts when a poll of its host ends, so one host
with many feeds cannot take every slot while the other hosts' feeds wait.

A fleet of workers on PostgreSQL does not use this: its schedule lives in the
database and is leased (``daemon._fleet_loop``), already with a bounded pool.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from beacons.log import get_logger
from beacons.models import Source
from beacons.storage.sources import source_host

if TYPE_CHECKING:
    from beacons.daemon import Service

log = get_logger("beacons.daemon")

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]

# A "poll now" moves a source's stored next poll; a difference below this is the stored copy of our own plan.
_SAME_TIME = timedelta(seconds=0.5)


@dataclass
class _Entry:
    source: Source
    due: datetime
    seq: int = -1  # the heap item that is current; older items of this source are skipped
    task: asyncio.Task[None] | None = None  # its poll in flight
    paused: bool = False  # held: looked at again at each control check, polled once resumed
    staggered: bool = True  # its first poll since a start or change: the stored next poll does not apply yet
    changed: bool = False  # changed by a reload during its poll: the next poll is staggered, not after the interval
    removed: bool = False  # removed by a reload: its poll in flight is stored, then it is forgotten
    parked: bool = False  # due, waiting for a free slot of its host
    planned: datetime | None = None  # the next poll its poll in flight planned (queued when that task is done)


class LocalScheduler:
    """Every source's next poll in one heap; at most ``limit`` polls in flight."""

    def __init__(
        self,
        service: Service,
        stop: asyncio.Event,
        rng: random.Random,
        *,
        limit: int,
        per_host: int | None = None,
        spawn: Spawn | None = None,
    ) -> None:
        self.service, self.stop, self.rng = service, stop, rng
        self.limit = max(1, limit)
        self.per_host = max(1, per_host if per_host is not None else service.config.fetch.per_host_concurrency)
        self._host_busy: dict[str, int] = {}
        self._parked: dict[str, deque[_Entry]] = {}
        self.spawn: Spawn = spawn or (lambda coro, name: asyncio.create_task(coro, name=name))
        self.entries: dict[str, _Entry] = {}
        self.in_flight: set[asyncio.Task[None]] = set()
        self._heap: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    # -- what the supervisor changes ------------------------------------------------------

    def add(self, source: Source) -> None:
        if source.id in self.entries:
            self.change(source)
            return
        entry = _Entry(source, self._stagger(source))
        self.entries[source.id] = entry
        self._push(entry, entry.due)

    def change(self, source: Source) -> None:
        """New settings for a source: polled with them soon (staggered), after any poll in flight is stored."""
        entry = self.entries.get(source.id)
        if entry is None:
            self.add(source)
            return
        entry.source = source
        if entry.task is not None:
            entry.changed = True
        else:
            entry.staggered = True
            self._push(entry, self._stagger(source))

    def remove(self, source_id: str) -> None:
        """Poll this source no more; a poll in flight finishes and is stored."""
        entry = self.entries.pop(source_id, None)
        if entry is not None:
            entry.removed = True
            self._wake.set()

    @property
    def tasks_alive(self) -> int:
        """Poll tasks that exist now (at most ``limit``), for tests and logs."""
        return len(self.in_flight)

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Start due polls until stopped, then wait for the polls in flight (cancelled with this task)."""
        from beacons.daemon import CONTROL_CHECK

        stopping = asyncio.ensure_future(self.stop.wait())
        stopping.add_done_callback(lambda _: self._wake.set())
        clock = self.service.clock
        next_control = clock.monotonic()
        try:
            while not self.stop.is_set():
                self._wake.clear()
                if clock.monotonic() >= next_control:
                    self._control()
                    next_control = clock.monotonic() + CONTROL_CHECK
                if self._start_due():
                    await asyncio.sleep(0)  # the polls just started take their first step at the time they were due
                if len(self.in_flight) >= self.limit:  # full: nothing can start before a poll ends
                    await self._wake.wait()
                    continue
                wait = max(0.0, next_control - clock.monotonic())
                if self._heap:
                    wait = min(wait, max(0.0, (self._heap[0][0] - clock.now()).total_seconds()))
                await clock.wait(self._wake, wait)
            if self.in_flight:
                await asyncio.wait(set(self.in_flight))
        except asyncio.CancelledError:
            for task in self.in_flight:
                task.cancel()
            raise
        finally:
            stopping.cancel()

    def _stagger(self, source: Source) -> datetime:
        return self.service.clock.now() + timedelta(seconds=self.rng.uniform(0, min(source.interval, 10.0)))

    def _push(self, entry: _Entry, due: datetime) -> None:
        entry.due = due
        entry.seq = next(self._seq)
        heapq.heappush(self._heap, (due, entry.seq, entry.source.id))
        if len(self._heap) > 2 * len(self.entries) + 1024:  # stale items of moved polls: rebuild
            self._heap = [(e.due, e.seq, i) for i, e in self.entries.items() if e.task is None and not e.paused]
            heapq.heapify(self._heap)
        self._wake.set()

    def _control(self) -> None:
        """Pauses lifted and "poll now" requests, from the shared read of every source's schedule."""
        schedules = self.service.schedules
        now = self.service.clock.now()
        for source_id, entry in self.entries.items():
            if entry.task is not None or entry.parked:
                continue
            try:
                paused, stored = schedules.get(source_id)
            except Exception:  # the database is busy: look again at the next check
                return
            if entry.paused:
                if not paused:
                    self._push(entry, now)  # the decision at its poll reads its own row again
                continue
            if entry.staggered or stored is None:
                continue
            if abs(stored - entry.due) >= _SAME_TIME:
                self._push(entry, stored)

    def _paused_now(self, source_id: str) -> bool:
        """The source's own row, read now (the shared read may be a second old); not paused when unreadable."""
        try:
            return self.service.store.source_schedule(source_id)[0]
        except Exception:  # the database is busy: poll, as the source would have been polled anyway
            return False

    def _start_due(self) -> int:
        """Start the polls that are due (while there is room); how many started."""
        now = self.service.clock.now()
        started = 0
        while self._heap and len(self.in_flight) < self.limit:
            due, seq, source_id = self._heap[0]
            if due > now:
                break
            heapq.heappop(self._heap)
            entry = self.entries.get(source_id)
            if entry is None or entry.seq != seq or entry.task is not None or entry.parked:
                continue
            host = source_host(entry.source)
            if self._host_busy.get(host, 0) >= self.per_host:
                entry.parked = True
                self._parked.setdefault(host, deque()).append(entry)
                continue
            if self._paused_now(source_id):
                if not entry.paused:
                    log.info("source.paused", source=source_id)
                entry.paused = True
                continue
            if entry.paused:
                log.info("source.resumed", source=source_id)
                entry.paused = False
            entry.staggered = False
            task = self.spawn(self._poll(entry), f"source:{source_id}")
            entry.task = task
            self._host_busy[host] = self._host_busy.get(host, 0) + 1
            self.in_flight.add(task)
            task.add_done_callback(functools.partial(self._done, entry=entry, host=host))
            started += 1
        return started

    def _done(self, task: asyncio.Task[None], entry: _Entry, host: str) -> None:
        self.in_flight.discard(task)
        if entry.task is task:
            entry.task = None
        self._host_busy[host] -= 1
        if not self._host_busy[host]:
            del self._host_busy[host]
        parked = self._parked.get(host)
        while parked:  # the next due source of this host takes the free slot
            waiting = parked.popleft()
            waiting.parked = False
            if self.entries.get(waiting.source.id) is waiting and waiting.task is None:
                self._push(waiting, min(waiting.due, self.service.clock.now()))
                break
        if parked is not None and not parked:
            del self._parked[host]
        planned, entry.planned = entry.planned, None
        if planned is not None and not entry.removed and not self.stop.is_set():
            self._push(entry, planned)
        self._wake.set()

    async def _poll(self, entry: _Entry) -> None:
        from beacons.daemon import _guarded_poll, next_delay

        service = self.service
        source = entry.source
        result = await asyncio.shield(_guarded_poll(service, source))
        delay = next_delay(source, result, max_backoff=service.config.fetch.max_backoff, rng=self.rng)
        due = service.clock.now() + timedelta(seconds=delay)
        try:
            service.store.set_next_poll(source.id, due)
            service.schedules.planned(source.id, due)
        except Exception:
            log.warning("source.schedule_not_saved", source=source.id)
        if entry.changed:
            entry.changed = False
            entry.staggered = True
            due = self._stagger(entry.source)
        entry.planned = due
