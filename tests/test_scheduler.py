"""The SQLite daemon's schedule (beacons/scheduler.py, issue 16): one heap, at most ``fetch.concurrency`` polls
alive, and everything the per-source loops did (stagger, interval, poll now, pause, reload) on the fake clock.

The polls themselves are a recorder standing in for ``Pipeline.poll_source`` (the fetch, parse and store are
tested end to end in test_daemon.py and test_daemon_reload.py over loopback HTTP); the schedule's decisions are
read from a real SQLite file (pauses, "poll now", stored next polls)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
import yaml
from helpers_clock import FakeClock
from structlog.testing import capture_logs

from beacons.config import Config, parse_config
from beacons.daemon import CONTROL_CHECK, SCHEDULE_MAX_AGE, Schedules
from beacons.models import Source
from beacons.pipeline import PollResult
from beacons.scheduler import LocalScheduler
from beacons.storage import Storage
from beacons.storage.sources import source_host

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BRANDS = [{"name": "Acme", "products": [{"name": "RouterX"}]}]


def make_config(
    db: Path, count: int, *, interval: str = "10m", concurrency: int = 8, hosts: int = 50, per_host: int = 2
) -> Config:
    sources = [
        {"id": f"s{i:04d}", "kind": "rss", "url": f"https://host{i % hosts}.example/f{i}.xml", "interval": interval}
        for i in range(count)
    ]
    data = {
        "database": str(db),
        "brands": BRANDS,
        "sources": sources,
        "classifier": {"model": "rules"},
        "fetch": {"concurrency": concurrency, "per_host_concurrency": per_host},
    }
    return parse_config(yaml.safe_dump(data), env={}, path="<test>")


class HookedClock(FakeClock):
    """A fake clock that runs ``hook(now)`` before each wait: the test's other actor, at exact times."""

    def __init__(self, hook: Callable[[datetime], None] = lambda now: None) -> None:
        super().__init__(NOW)
        self.hook = hook

    async def wait(self, event: asyncio.Event | None, seconds: float) -> bool:
        self.hook(self.now())
        return await super().wait(event, seconds)


class Recorder:
    """Stands in for Pipeline.poll_source, and is the schedule's ``spawn``: records when the schedule started each
    poll (source, time on the fake clock) and how many polls and tasks are alive meanwhile."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        hold: asyncio.Event | None = None,
        release_at: int = 0,
        on_start: Callable[[Recorder], None] = lambda r: None,
    ) -> None:
        self.clock, self.hold, self.release_at, self.on_start = clock, hold, release_at, on_start
        self.polls: list[tuple[str, datetime]] = []
        self.running = 0
        self.max_running = 0
        self.max_tasks = 0
        self.by_host: dict[str, int] = {}
        self.max_by_host: dict[str, int] = {}

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        self.polls.append((name.removeprefix("source:"), self.clock.now()))
        return asyncio.create_task(coro, name=name)

    async def poll_source(self, source: Source) -> PollResult:
        host = source_host(source)
        self.by_host[host] = self.by_host.get(host, 0) + 1
        self.max_by_host[host] = max(self.max_by_host.get(host, 0), self.by_host[host])
        self.running += 1
        self.on_start(self)
        self.max_running = max(self.max_running, self.running)
        self.max_tasks = max(self.max_tasks, len(asyncio.all_tasks()))
        if self.hold is not None and self.release_at and self.running >= self.release_at:
            self.hold.set()
        try:
            await asyncio.sleep(0)
            if self.hold is not None:
                await self.hold.wait()
        finally:
            self.running -= 1
            self.by_host[host] -= 1
        return PollResult(source.id, "ok")

    def times(self, source_id: str) -> list[datetime]:
        return [t for s, t in self.polls if s == source_id]


@pytest.fixture
def store_for(tmp_path: Path) -> Iterator[Callable[[Config], Storage]]:
    opened: list[Storage] = []

    def open_(config: Config) -> Storage:
        store = Storage(config.database)
        store.sync_sources(config.sources)
        opened.append(store)
        return store

    yield open_
    for s in opened:
        s.close()


def service_for(config: Config, store: Storage, clock: FakeClock, recorder: Recorder) -> Any:
    return SimpleNamespace(
        config=config, store=store, clock=clock, schedules=Schedules(store, clock), pipeline=recorder
    )


def scheduled(
    config: Config, store: Storage, clock: FakeClock, recorder: Recorder, *, seed: int, limit: int = 4
) -> tuple[LocalScheduler, asyncio.Event]:
    """A schedule of every source of ``config``, its polls recorded by ``recorder``; and its stop event."""
    stop = asyncio.Event()
    scheduler = LocalScheduler(
        service_for(config, store, clock, recorder), stop, random.Random(seed), limit=limit, spawn=recorder.spawn
    )
    for source in config.sources:
        scheduler.add(source)
    return scheduler, stop


def run_until(scheduler: LocalScheduler, stop: asyncio.Event, clock: FakeClock, until: datetime) -> None:
    """Run the schedule until the fake clock passes ``until``, then stop it and wait for its polls."""
    hook = getattr(clock, "hook", None)

    def stop_at(now: datetime) -> None:
        if hook is not None:
            hook(now)
        if now >= until:
            stop.set()

    clock.hook = stop_at  # type: ignore[attr-defined]
    asyncio.run(asyncio.wait_for(scheduler.run(), 120))  # a hang guard, never reached when it works


def test_scheduler_polls_1000_sources_with_a_bounded_number_of_tasks(
    tmp_path: Path, store_for: Callable[[Config], Storage]
) -> None:
    """1,000 sources, fetch.concurrency 8: every source is polled within its 10 s stagger, then again after its
    interval, and never more than 8 polls (and their tasks) are alive: no task per source. The first polls are
    held until 8 are in flight, so the bound is reached, not only respected."""
    config = make_config(tmp_path / "b.db", 1000, interval="2m", concurrency=8)
    clock = HookedClock()
    recorder = Recorder(clock, hold=asyncio.Event(), release_at=8)
    store = store_for(config)
    scheduler, stop = scheduled(config, store, clock, recorder, seed=1, limit=config.fetch.concurrency)
    planned = {source_id: entry.due for source_id, entry in scheduler.entries.items()}  # the staggered first polls
    run_until(scheduler, stop, clock, NOW + timedelta(minutes=3))
    assert recorder.max_running == 8
    # the test's own task, the schedule, its stop watcher, and per poll its task and the shielded poll
    assert recorder.max_tasks <= 3 + 2 * 8
    # Every time here is the fake clock's, which moves only when the schedule waits: these are the schedule's
    # decisions (stagger over min(interval, 10 s), never before the planned time), not elapsed time.
    assert all(NOW <= due <= NOW + timedelta(seconds=10) for due in planned.values())
    firsts = [recorder.times(s.id)[0] for s in config.sources]
    assert all(first >= planned[s.id] for first, s in zip(firsts, config.sources, strict=True))
    assert max(firsts) <= NOW + timedelta(seconds=10) and min(firsts) >= NOW  # staggered over 10 s
    for source in config.sources:
        first, second = recorder.times(source.id)[:2]
        assert timedelta(minutes=2 * 0.9) <= second - first <= timedelta(minutes=2 * 1.1) + timedelta(seconds=1)
        assert store.source_schedule(source.id)[1] is not None  # the next poll is stored for the next start


def test_scheduler_one_busy_host_does_not_take_every_slot(
    tmp_path: Path, store_for: Callable[[Config], Storage]
) -> None:
    """40 feeds on one host and 6 on hosts of their own, 8 slots: at most fetch.per_host_concurrency (2) polls of
    a host run at once, and a due feed of a busy host waits aside, so the slots fill with the other hosts' feeds."""
    busy = [{"id": f"b{i:02d}", "kind": "rss", "url": f"https://busy.example/f{i}.xml"} for i in range(40)]
    calm = [{"id": f"c{i}", "kind": "rss", "url": f"https://calm{i}.example/feed.xml"} for i in range(6)]
    data = {
        "database": str(tmp_path / "b.db"),
        "brands": BRANDS,
        "sources": [{**s, "interval": "1h"} for s in busy + calm],
        "classifier": {"model": "rules"},
        "fetch": {"concurrency": 8, "per_host_concurrency": 2},
    }
    config = parse_config(yaml.safe_dump(data), env={}, path="<test>")
    store = store_for(config)
    seen: list[dict[str, int]] = []

    def at_the_limit(recorder: Recorder) -> None:
        if recorder.running == 8 and not seen:
            seen.append({h: n for h, n in recorder.by_host.items() if n})
            assert recorder.hold is not None
            recorder.hold.set()

    clock = HookedClock()
    recorder = Recorder(clock, hold=asyncio.Event(), on_start=at_the_limit)
    scheduler, stop = scheduled(config, store, clock, recorder, seed=7, limit=8)
    run_until(scheduler, stop, clock, NOW + timedelta(minutes=2))
    assert seen == [{"busy.example": 2, **{f"calm{i}.example": 1 for i in range(6)}}]
    assert max(recorder.max_by_host.values()) == 2
    assert sorted(s for s, _ in recorder.polls) == sorted(s.id for s in config.sources)  # each polled once


def test_scheduler_poll_now_is_seen_within_the_control_check(
    tmp_path: Path, store_for: Callable[[Config], Storage]
) -> None:
    config = make_config(tmp_path / "b.db", 3, interval="1h")
    store = store_for(config)
    asked: list[datetime] = []

    def hook(now: datetime) -> None:
        if not asked and now >= NOW + timedelta(minutes=5):
            store.request_poll("s0001", now=now)
            asked.append(now)

    clock = HookedClock(hook)
    recorder = Recorder(clock)
    scheduler, stop = scheduled(config, store, clock, recorder, seed=2, limit=4)
    run_until(scheduler, stop, clock, NOW + timedelta(minutes=10))
    first, again = recorder.times("s0001")
    assert first <= NOW + timedelta(seconds=10)
    assert asked[0] <= again <= asked[0] + timedelta(seconds=CONTROL_CHECK + SCHEDULE_MAX_AGE)
    assert [len(recorder.times(s)) for s in ("s0000", "s0002")] == [1, 1]  # the others keep their hour


def test_scheduler_holds_a_paused_source_until_it_is_resumed(
    tmp_path: Path, store_for: Callable[[Config], Storage]
) -> None:
    config = make_config(tmp_path / "b.db", 2, interval="1h")
    store = store_for(config)
    store.pause_source("s0000", "lena", now=NOW)
    resumed: list[datetime] = []

    def hook(now: datetime) -> None:
        if not resumed and now >= NOW + timedelta(minutes=30):
            store.resume_source("s0000", now=now)
            resumed.append(now)

    clock = HookedClock(hook)
    recorder = Recorder(clock)
    scheduler, stop = scheduled(config, store, clock, recorder, seed=3, limit=4)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))  # the events are info
    with capture_logs() as logs:
        run_until(scheduler, stop, clock, NOW + timedelta(minutes=40))
    [polled] = recorder.times("s0000")
    assert resumed[0] <= polled <= resumed[0] + timedelta(seconds=CONTROL_CHECK + SCHEDULE_MAX_AGE)
    assert len(recorder.times("s0001")) == 1
    assert [(e["event"], e["source"]) for e in logs if e["event"].startswith("source.")] == [
        ("source.paused", "s0000"),
        ("source.resumed", "s0000"),
    ]


def test_scheduler_a_pause_just_before_the_poll_is_never_missed(
    tmp_path: Path, store_for: Callable[[Config], Storage]
) -> None:
    """The shared read may be a second old; the decision to poll reads the source's own row."""
    config = make_config(tmp_path / "b.db", 1, interval="1m")
    store = store_for(config)
    paused: list[datetime] = []

    def hook(now: datetime) -> None:
        # the first poll is done; pause it a moment before the next is due
        if not paused and len(recorder.polls) == 1 and now >= recorder.polls[0][1] + timedelta(seconds=45):
            store.pause_source("s0000", "lena", now=now)
            paused.append(now)

    clock = HookedClock(hook)
    recorder = Recorder(clock)
    scheduler, stop = scheduled(config, store, clock, recorder, seed=4)
    run_until(scheduler, stop, clock, NOW + timedelta(minutes=5))
    assert paused and len(recorder.polls) == 1


def test_scheduler_reload_removes_and_changes_sources_after_their_poll_in_flight(
    tmp_path: Path, store_for: Callable[[Config], Storage]
) -> None:
    config = make_config(tmp_path / "b.db", 3, interval="1h")
    changed = make_config(tmp_path / "b.db", 3, interval="2h").sources[2]
    store = store_for(config)
    hold = asyncio.Event()
    clock = HookedClock()
    recorder = Recorder(clock, hold=hold)
    scheduler, stop = scheduled(config, store, clock, recorder, seed=5, limit=4)

    released: list[datetime] = []

    def hook(now: datetime) -> None:
        if len(recorder.polls) == 3 and not hold.is_set():  # all three polls are in flight, held
            scheduler.remove("s0000")
            scheduler.change(changed)
            hold.set()
            released.append(now)

    clock.hook = hook
    run_until(scheduler, stop, clock, NOW + timedelta(hours=3))
    # removed: its poll in flight was stored (a next poll planned), then never polled again
    assert len(recorder.times("s0000")) == 1 and store.source_schedule("s0000")[1] is not None
    # changed: polled again within its stagger once the poll in flight was stored, then on the new interval
    first, restarted, after = recorder.times("s0002")[:3]
    assert first <= released[0] <= restarted <= released[0] + timedelta(seconds=10)
    assert timedelta(hours=2 * 0.9) <= after - restarted <= timedelta(hours=2 * 1.1) + timedelta(seconds=1)
    # unchanged: on its hour
    first, second = recorder.times("s0001")[:2]
    assert timedelta(hours=0.9) <= second - first <= timedelta(hours=1.1) + timedelta(seconds=1)


def test_scheduler_stop_starts_nothing_new_and_waits_for_the_polls_in_flight(
    tmp_path: Path, store_for: Callable[[Config], Storage]
) -> None:
    config = make_config(tmp_path / "b.db", 5, interval="1m")
    store = store_for(config)
    hold = asyncio.Event()

    def stop_when_two_run(recorder: Recorder) -> None:
        if recorder.running == 2:  # two polls in flight (the limit), three never started
            stop.set()
            asyncio.get_running_loop().call_later(0.01, hold.set)

    clock = HookedClock()
    recorder = Recorder(clock, hold=hold, on_start=stop_when_two_run)
    scheduler, stop = scheduled(config, store, clock, recorder, seed=6, limit=2)
    asyncio.run(asyncio.wait_for(scheduler.run(), 120))
    assert len(recorder.polls) == 2 and recorder.running == 0 and scheduler.tasks_alive == 0
