"""The long-running service: one asyncio task per source, forever, politely.

Each source polls on its own interval with +-10% jitter; a failing source backs
off exponentially (``interval * 2**(n-1)``, capped by ``fetch.max_backoff``,
or the server's Retry-After if longer). The first SIGINT/SIGTERM sets a stop
event: polls in flight finish and are stored, then the daemon exits 0; what
is still running after ``shutdown_grace`` (fetch.timeout + 10 s) is
abandoned. A second signal cancels what is left at once. Nothing a source
does can stop the loop: the only ``except Exception`` is at the per-source
task boundary, where it is logged as ``status=bug`` with its traceback and
the source is backed off. A locked, full or read-only database is not a bug:
the pipeline reports it as ``status=error`` and the source backs off.
SIGHUP reads the config file again (``beacons/reload.py``): a config that does
not load is refused and the running one kept; polls in flight always finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from beacons.classify import Classifier, load_classifier
from beacons.clock import SYSTEM, Clock
from beacons.config import Config
from beacons.fetch import FetchLimits, Politeness, make_client
from beacons.log import get_logger
from beacons.models import Source
from beacons.parsepool import ParsePool, default_processes
from beacons.pipeline import Pipeline, PollResult
from beacons.redact import scrub
from beacons.storage import Storage
from beacons.storage.sources import source_host
from beacons.workpool import run_pooled

log = get_logger("beacons.daemon")

# Background services a later stage adds (alert sender, HTTP server): each gets
# the running Service and the stop event, and returns when the event is set.
ExtraTask = Callable[["Service", asyncio.Event], Coroutine[Any, Any, None]]
EXTRA_TASKS: list[ExtraTask] = []


GRACE_EXTRA = 10.0  # seconds on top of fetch.timeout for classify, store and a send in flight


def shutdown_grace(config: Config) -> float:
    """Seconds polls in flight get after the first SIGTERM: fetch.timeout + 10 s (README, "Stopping: SIGTERM and the grace period")."""
    return float(config.fetch.timeout) + GRACE_EXTRA


def next_delay(source: Source, result: PollResult, *, max_backoff: float, rng: random.Random | None = None) -> float:
    """Seconds until this source's next poll."""
    uniform = (rng or random.Random()).uniform
    if result.status in ("ok", "not_modified"):
        # A service may ask for a pause in a successful answer (Stack Exchange's backoff field).
        return max(source.interval * uniform(0.9, 1.1), result.retry_after or 0.0)
    failures = max(1, result.consecutive_errors)
    # The exponent is capped: 2**1024 overflows a float, and a source down for months gets there.
    backoff = min(max_backoff, source.interval * 2 ** min(failures - 1, 40))
    if result.retry_after is not None:
        backoff = max(backoff, result.retry_after)
    return float(backoff * uniform(1.0, 1.2))


# How often the schedule looks at pauses and "poll now" (issue 13 §6), and how old the shared read
# of every source's schedule may be when it looks: a request is seen within CONTROL_CHECK + SCHEDULE_MAX_AGE = 5 s.
CONTROL_CHECK = 4.0
SCHEDULE_MAX_AGE = 1.0


class Schedules:
    """Every source's pause and stored next poll, read in one query at most every ``SCHEDULE_MAX_AGE`` seconds
    for the schedule's control checks (beacons/scheduler.py), instead of one query per source."""

    def __init__(self, store: Storage, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self._read_at: float | None = None
        self._rows: dict[str, tuple[bool, datetime | None]] = {}

    def get(self, source_id: str) -> tuple[bool, datetime | None]:
        now = self.clock.monotonic()
        if self._read_at is None or now - self._read_at >= SCHEDULE_MAX_AGE:
            self._rows = self.store.source_schedules()
            self._read_at = now
        return self._rows.get(source_id, (False, None))

    def planned(self, source_id: str, due: datetime) -> None:
        """A poll's own new next poll, seen at once (it was just stored; the shared read may predate it)."""
        paused, _ = self._rows.get(source_id, (False, None))
        self._rows[source_id] = (paused, due)


@dataclass
class Service:
    config: Config
    store: Storage
    client: httpx.AsyncClient
    pipeline: Pipeline
    classifier: Classifier
    results: list[PollResult] = field(default_factory=list)
    clock: Clock = SYSTEM  # scheduling and every time-based decision below it
    worker: str | None = None  # this process's name in a fleet (a PostgreSQL database); None on SQLite
    schedules: Schedules = field(init=False)  # the schedule's shared view of pauses and "poll now"

    def __post_init__(self) -> None:
        self.schedules = Schedules(self.store, self.clock)


def channel_names(config: Config) -> list[str]:
    from beacons.alerts.config import channel_names as names

    return names(config.alerts)


def build_service(
    config: Config,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    classifier: Classifier | None = None,
    clock: Clock = SYSTEM,
) -> Service:
    import beacons.alerts.sender
    import beacons.web.task  # noqa: F401  (registers the HTTP server in EXTRA_TASKS when serve: is configured)

    store = Storage(config.database)
    store.sync_sources(config.sources)
    limits = FetchLimits.from_config(config.fetch)
    client = make_client(limits, transport)
    politeness = Politeness(config.fetch.concurrency, config.fetch.per_host_concurrency, config.fetch.per_host_delay)
    classifier = classifier or load_classifier(
        config.classifier.model,
        support_threshold=config.routing.support_threshold_for(None),
        advocacy_threshold=config.routing.advocacy_threshold,
        relevance_threshold=config.routing.relevance_threshold,
        lazy=True,
    )
    pipeline = Pipeline(
        store=store,
        client=client,
        classifier=classifier,
        brands=config.brand_models(),
        limits=limits,
        politeness=politeness,
        channels=channel_names(config),
        env=os.environ,
        routing=config.routing,
        clock=clock,
        retention=config.retention,
        sources=config.sources,
        parse_pool=ParsePool(default_processes(config.fetch.parse_processes)),
    )
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}" if store.kind == "postgresql" else None
    return Service(config, store, client, pipeline, classifier, clock=clock, worker=worker)


async def _guarded_poll(service: Service, source: Source) -> PollResult:
    try:
        return await service.pipeline.poll_source(source)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the one task boundary: a bug in one source must not stop the daemon
        error = scrub(f"{type(exc).__name__}: {exc}")
        log.exception("source.polled", source=source.id, status="bug", error=error)
        try:
            count = service.store.record_error(source.id, f"bug: {error}", status="bug")
        except Exception:
            count = 1
        return PollResult(source.id, "bug", {}, error, None, count)


HEARTBEAT_EVERY = 10.0


def lease_seconds(config: Config) -> float:
    """How long a source lease lasts: ``fleet.lease``, by default longer than any poll can take (twice the
    shutdown grace, plus a minute)."""
    if config.fleet.lease is not None:
        return float(config.fleet.lease)
    return 2 * shutdown_grace(config) + 60.0


async def _fleet_poll(service: Service, source: Source, rng: random.Random) -> None:
    assert service.worker is not None
    result = await asyncio.shield(_guarded_poll(service, source))
    delay = next_delay(source, result, max_backoff=service.config.fetch.max_backoff, rng=rng)
    try:
        if not service.store.release_source(
            source.id, service.worker, next_poll_at=service.clock.now() + timedelta(seconds=delay)
        ):
            log.warning("source.lease_lost", source=source.id)  # the poll outlived its lease
    except Exception:
        log.warning("source.schedule_not_saved", source=source.id)


async def _fleet_loop(service: Service, stop: asyncio.Event, rng: random.Random) -> None:
    """A fleet worker: lease due sources (fleet-wide schedule in the database), poll them, give them back."""
    worker = service.worker
    assert worker is not None
    lease = lease_seconds(service.config)
    limit = max(1, service.config.fetch.concurrency)
    in_flight: set[asyncio.Task[None]] = set()
    next_beat = 0.0
    polled = 0
    log.info("fleet.joined", worker=worker, lease_s=lease)
    try:
        while not stop.is_set():
            now = service.clock.now()
            try:
                if service.clock.monotonic() >= next_beat:
                    service.store.heartbeat(
                        worker, hostname=socket.gethostname(), pid=os.getpid(), now=now, polled=polled
                    )
                    polled, next_beat = 0, service.clock.monotonic() + HEARTBEAT_EVERY
                ids = (
                    service.store.lease_due(worker, now=now, lease=lease, limit=limit - len(in_flight))
                    if len(in_flight) < limit
                    else []
                )
            except Exception as exc:  # the database is down or busy: try again shortly
                log.warning("fleet.lease_failed", error=str(exc))
                ids = []
                await service.clock.wait(stop, 2.0)
            by_id = {s.id: s for s in service.config.sources}  # the config of now: SIGHUP may have reloaded it
            for source_id in ids:
                source = by_id.get(source_id)
                if source is None:  # in the database but not in this worker's config: leave it to one that has it
                    service.store.release_source(source_id, worker, next_poll_at=now + timedelta(seconds=60))
                    continue
                task = asyncio.create_task(_fleet_poll(service, source, rng), name=f"source:{source_id}")
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                polled += 1
            if ids:
                await asyncio.sleep(0)
            elif len(in_flight) >= limit:  # full: lease again as soon as a poll finishes
                await asyncio.wait(in_flight, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            else:  # nothing due that this worker may take
                await service.clock.wait(stop, 1.0)
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
    finally:
        with contextlib.suppress(Exception):
            service.store.leave_fleet(worker)
        log.info("fleet.left", worker=worker)


async def run_once(service: Service, sources: Sequence[Source] | None = None) -> list[PollResult]:
    """Poll every source once, with at most ``fetch.concurrency`` polls (and tasks) alive at a time."""
    sources = service.config.sources if sources is None else sources
    # Sources that failed last time start first: a host that hangs costs fetch.timeout,
    # and begun early that wait overlaps the rest of the cycle instead of trailing it
    # (bench/scale.py: 64 s -> 36 s for 10,000 sources). Results keep the given order.
    failing = {row["id"]: row["consecutive_errors"] for row in service.store.sources() if row["consecutive_errors"]}
    order = sorted(range(len(sources)), key=lambda i: -failing.get(sources[i].id, 0))
    # A bounded pool, not a task per source (issue 16): fetch.concurrency workers, and no more
    # sources of one host in flight than fetch.per_host_concurrency lets through anyway.
    fetch = service.config.fetch
    results = await run_pooled(
        sources,
        lambda source: _guarded_poll(service, source),
        key=source_host,
        workers=fetch.concurrency,
        per_key=fetch.per_host_concurrency,
        order=order,
    )
    service.results.extend(results)
    service.pipeline.retry_unclassified()
    _prune(service)
    return list(results)


RECLASSIFY_EVERY = 300.0  # seconds between retries of mentions the classifier failed on


async def _reclassify_loop(service: Service, stop: asyncio.Event) -> None:
    """Mentions stored with classify_status=error get a beacon once the classifier works again."""
    while not await service.clock.wait(stop, RECLASSIFY_EVERY):
        try:
            service.pipeline.retry_unclassified()
        except Exception as exc:  # a task boundary: never let this stop the daemon
            log.exception("mention.reclassify_failed", error=f"{type(exc).__name__}: {exc}")
        _prune(service)


def _prune(service: Service) -> None:
    """Forget kept unmatched posts older than retention.unmatched (issue 13 §4); fold the insights' deltas."""
    from beacons.rescan import prune_unmatched

    try:
        prune_unmatched(service.store, service.config.retention, service.clock.now())
    except Exception as exc:  # a task boundary: a locked database must not stop the daemon
        log.warning("unmatched.prune_failed", error=f"{type(exc).__name__}: {exc}")
    try:  # PostgreSQL: the rollup's pending +1/-1 rows, one worker at a time (a no-op on SQLite)
        folded = service.store.insight_compact()
        if folded:
            log.info("insights.compacted", deltas=folded)
    except Exception as exc:
        log.warning("insights.compact_failed", error=f"{type(exc).__name__}: {exc}")


async def run(
    config: Config,
    *,
    once: bool = False,
    stop: asyncio.Event | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    install_signals: bool = True,
    classifier: Classifier | None = None,
    clock: Clock = SYSTEM,
) -> list[PollResult]:
    """Run the daemon until stopped (or one cycle with ``once``)."""
    service = build_service(config, transport=transport, classifier=classifier, clock=clock)
    stop = stop or asyncio.Event()
    log.info(
        "daemon.started",
        sources=len(config.sources),
        database=config.database,
        classifier=service.classifier.name,
        once=once,
    )
    try:
        if once:
            results = await run_once(service)
            for extra in EXTRA_TASKS:
                done = asyncio.Event()
                done.set()
                await extra(service, done)
            return results
        from beacons.reload import Supervisor

        loop = asyncio.get_running_loop()
        rng = random.Random()
        supervisor = Supervisor(service, stop, rng)
        tasks = supervisor.tasks
        if install_signals:
            _install_signals(loop, stop, tasks, reload=supervisor.request_reload)
        if service.worker is not None:  # PostgreSQL: the sources are shared by every worker on it
            supervisor.add(_fleet_loop(service, stop, rng), "fleet")
        else:  # SQLite: one schedule, at most fetch.concurrency polls in flight (beacons/scheduler.py)
            supervisor.start_sources(config.sources)
        for i, extra in enumerate(EXTRA_TASKS):
            supervisor.start_extra(extra, i)
        supervisor.add(_reclassify_loop(service, stop), "reclassify")
        await stop.wait()
        supervisor.stop_all()
        grace = shutdown_grace(service.config)
        log.info("daemon.stopping", in_flight=sum(not t.done() for t in tasks), grace_s=grace)
        _, late = await asyncio.wait(tasks, timeout=grace) if tasks else (set(), set())
        if late:
            # Past the grace period: whatever is still running is abandoned. An
            # uncommitted poll rolls back (its cursor and ETag stay behind, so the
            # next start fetches it again); a claimed alert's lease runs out and
            # it is sent again with the same Idempotency-Key.
            log.warning("daemon.grace_expired", grace_s=grace, abandoned=sorted(t.get_name() for t in late))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        return service.results
    finally:
        if service.worker is not None:  # give back leases and leaderships (a --once run holds leaderships too)
            with contextlib.suppress(Exception):
                service.store.leave_fleet(service.worker)
        await service.client.aclose()
        if service.pipeline.parse_pool is not None:
            service.pipeline.parse_pool.close()
        service.store.close()
        log.info("daemon.stopped")


def _install_signals(
    loop: asyncio.AbstractEventLoop,
    stop: asyncio.Event,
    tasks: set[asyncio.Task[None]],
    *,
    reload: Callable[[], None] | None = None,
) -> None:
    def handle(signum: int) -> None:
        if not stop.is_set():
            log.info(
                "daemon.signal",
                signal=signal.Signals(signum).name,
                action="finishing polls in flight; send again to force",
            )
            stop.set()
        else:
            log.warning("daemon.signal", signal=signal.Signals(signum).name, action="forced exit")
            for task in tasks:
                task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handle, sig)
    if reload is not None:  # SIGHUP: read config.yaml again (beacons/reload.py); a bad one is refused

        def hup() -> None:
            log.info("daemon.signal", signal="SIGHUP", action="reloading the config")
            reload()

        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, hup)
