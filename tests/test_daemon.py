"""beacons.daemon: backoff, one cycle, the bug boundary, and clean shutdown of a real process."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import WriteConfig
from helpers_clock import FakeClock
from helpers_feeds import (
    ADVOCACY_TEXTS,
    SUPPORT_TEXTS,
    rss_source_config,
    rules_classifier,
    texts_feed,
)

from beacons.config import load_config
from beacons.daemon import next_delay, run
from beacons.feedserver import FeedServer, Resource
from beacons.models import Source
from beacons.pipeline import Pipeline, PollResult
from beacons.store import Store

REPO = Path(__file__).resolve().parents[1]
SRC = Source("s", "rss", 60.0, None)


def result(status: str, errors: int = 0, retry_after: float | None = None) -> PollResult:
    return PollResult("s", status, {}, None if status in ("ok", "not_modified") else "boom", retry_after, errors)


@pytest.mark.parametrize("status", ["ok", "not_modified"])
def test_daemon_next_delay_is_the_interval_with_jitter(status: str) -> None:
    delays = [next_delay(SRC, result(status), max_backoff=3600, rng=random.Random(seed)) for seed in range(200)]
    assert all(54.0 <= d <= 66.0 for d in delays)
    assert max(delays) - min(delays) > 6  # it is jittered, not fixed


@pytest.mark.parametrize(
    ("errors", "base"), [(0, 60), (1, 60), (2, 120), (3, 240), (6, 1920), (7, 3600), (50, 3600), (5000, 3600)]
)
def test_daemon_next_delay_backs_off_exponentially_up_to_the_cap(errors: int, base: float) -> None:
    for status in ("error", "bug"):
        delays = [
            next_delay(SRC, result(status, errors), max_backoff=3600, rng=random.Random(seed)) for seed in range(50)
        ]
        assert all(base <= d <= base * 1.2 for d in delays), (status, errors, min(delays), max(delays))


def test_daemon_next_delay_honours_a_longer_retry_after() -> None:
    assert next_delay(SRC, result("error", 1, retry_after=900), max_backoff=3600, rng=random.Random(1)) >= 900
    assert 240 <= next_delay(SRC, result("error", 3, retry_after=5), max_backoff=3600, rng=random.Random(1)) <= 288


def test_daemon_run_once_survives_a_bug_in_one_source(
    feed_server: FeedServer, write_config: WriteConfig, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_server.add("/good.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    feed_server.add("/buggy.xml", Resource(texts_feed(ADVOCACY_TEXTS)))
    config = load_config(
        write_config(rss_source_config({"good": feed_server.url("/good.xml"), "buggy": feed_server.url("/buggy.xml")})),
        env={},
    )
    real = Pipeline.poll_source

    async def poll_source(self: Pipeline, source: Source) -> PollResult:
        if source.id == "buggy":
            raise KeyError("a bug, not an expected failure")
        return await real(self, source)

    monkeypatch.setattr(Pipeline, "poll_source", poll_source)
    with structlog.testing.capture_logs() as logs:
        results = {
            r.source_id: r
            for r in asyncio.run(run(config, once=True, install_signals=False, classifier=rules_classifier()))
        }
    assert results["good"].status == "ok" and results["good"].counts["new"] == 3
    assert results["buggy"].status == "bug" and "KeyError" in (results["buggy"].error or "")
    [bug] = [e for e in logs if e["event"] == "source.polled" and e.get("status") == "bug"]
    assert bug["source"] == "buggy" and bug["exc_info"]
    store = Store(db_path)
    buggy = next(r for r in store.sources() if r["id"] == "buggy")
    assert (buggy["last_status"], buggy["errors"]) == ("bug", 1)
    store.close()


HANG_GUARD = 60.0  # seconds: only a hang reaches it; nothing here asserts how long anything took (issue 10)


def test_daemon_stop_event_finishes_the_poll_in_flight(
    feed_server: FeedServer, write_config: WriteConfig, db_path: Path
) -> None:
    answer = threading.Event()
    feed_server.add("/slow.xml", Resource(texts_feed(SUPPORT_TEXTS), hold=answer))
    config = load_config(write_config(rss_source_config({"slow": feed_server.url("/slow.xml")})), env={})

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run(config, stop=stop, install_signals=False, classifier=rules_classifier()))
        await until(lambda: bool(feed_server.hits("/slow.xml")))
        stop.set()  # the request is in flight: it must finish and be stored
        await until(lambda: any(e["event"] == "daemon.stopping" for e in logs))
        answer.set()  # the answer comes only after the daemon began stopping
        await asyncio.wait_for(task, timeout=HANG_GUARD)

    try:
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            asyncio.run(go())
    finally:
        answer.set()
    polled = [(e["source"], e["status"], e["new"]) for e in logs if e["event"] == "source.polled"]
    assert polled == [("slow", "ok", 3)]
    store = Store(db_path)
    assert store.mention_count() == 3
    store.close()


async def until(cond: Callable[[], bool]) -> None:
    """Wait for ``cond`` on the running loop; fails after HANG_GUARD s."""

    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), HANG_GUARD)


def test_daemon_loop_polls_again_after_the_interval(feed_server: FeedServer, write_config: WriteConfig) -> None:
    feed_server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    config = load_config(write_config(rss_source_config({"feed": feed_server.url("/feed.xml")})), env={})
    clock = FakeClock()  # the interval (and the start-up stagger) pass at once in fake time

    async def go() -> list[PollResult]:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run(config, stop=stop, install_signals=False, classifier=rules_classifier(), clock=clock)
        )
        await until(lambda: len(feed_server.hits("/feed.xml")) >= 2)
        stop.set()
        return await asyncio.wait_for(task, timeout=HANG_GUARD)

    asyncio.run(go())
    hits = feed_server.hits("/feed.xml")
    assert len(hits) >= 2
    assert hits[1]["headers"].get("If-None-Match")  # the second poll is conditional and gets a 304


@contextmanager
def _daemon(config: Path, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """The real daemon in its own process, killed and reaped on the way out whatever happened."""
    env = {k: v for k, v in os.environ.items() if k != "BEACONS_CONFIG"}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "daemon.py"), "--config", str(config)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=HANG_GUARD)


def _wait_for_hit(server: FeedServer, path: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not server.hits(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"daemon never polled {path}: rc={proc.returncode}\n{err[-3000:]}")
        time.sleep(0.02)


def test_daemon_sigterm_finishes_the_poll_in_flight_and_exits_0(
    feed_server: FeedServer, write_config: WriteConfig, db_path: Path, tmp_path: Path
) -> None:
    answer = threading.Event()
    feed_server.add("/slow.xml", Resource(texts_feed(SUPPORT_TEXTS), hold=answer))
    path = write_config(rss_source_config({"slow": feed_server.url("/slow.xml")}, logging={"format": "json"}))
    try:
        with _daemon(path, tmp_path) as proc:
            _wait_for_hit(feed_server, "/slow.xml", proc)
            proc.send_signal(signal.SIGTERM)
            assert proc.stderr is not None
            lines = []
            for line in proc.stderr:  # the answer comes only once the daemon logged that it is stopping
                lines.append(line)
                if '"daemon.stopping"' in line:
                    break
            answer.set()
            _, rest = proc.communicate(timeout=HANG_GUARD)
            err = "".join(lines) + rest
    finally:
        answer.set()
    assert proc.returncode == 0, err[-3000:]
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert events.index("daemon.signal") < events.index("source.polled") < events.index("daemon.stopped")
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT COUNT(*) FROM mentions WHERE source_id = 'slow'").fetchone()[0] == 3
    conn.close()


def test_daemon_second_signal_forces_exit(feed_server: FeedServer, write_config: WriteConfig) -> None:
    answer = threading.Event()  # never set while the daemon runs: the poll stays in flight
    feed_server.add("/stuck.xml", Resource(texts_feed(SUPPORT_TEXTS), hold=answer))
    raw = rss_source_config({"stuck": feed_server.url("/stuck.xml")}, fetch={"per_host_delay": "0s", "timeout": "60s"})
    config = load_config(write_config(raw), env={})

    async def go() -> None:
        # run() installs its handlers on this (the main) thread's loop before any poll starts,
        # so once the server has seen the request, SIGTERM reaches the daemon and not pytest.
        task = asyncio.create_task(run(config, classifier=rules_classifier()))
        await until(lambda: bool(feed_server.hits("/stuck.xml")))
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: any(e["event"] == "daemon.stopping" for e in logs))
        assert not task.done()  # still finishing the stuck poll (its grace is 70 s)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, timeout=HANG_GUARD)  # under the 70 s grace: only the second signal ends it

    try:
        with structlog.testing.capture_logs() as logs:
            asyncio.run(go())
    finally:
        answer.set()
    actions = [e["action"] for e in logs if e["event"] == "daemon.signal"]
    assert actions[0].startswith("finishing polls in flight") and actions[1] == "forced exit"


def test_daemon_results_record_every_poll(feed_server: FeedServer, write_config: WriteConfig) -> None:
    feed_server.add("/a.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    config = load_config(
        write_config(rss_source_config({"a": feed_server.url("/a.xml"), "b": feed_server.url("/missing.xml")})), env={}
    )
    results: Any = asyncio.run(run(config, once=True, install_signals=False, classifier=rules_classifier()))
    assert sorted((r.source_id, r.status) for r in results) == [("a", "ok"), ("b", "error")]
