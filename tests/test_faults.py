"""Faults: SIGKILL at three points (a fourth, mid-send, is tests/test_alerts_daemon.py's), SIGTERM grace, and a locked, full or read-only database.

Each test asserts that nothing was lost and nothing duplicated: after the
fault (and a restart where there is one) the database passes
``PRAGMA integrity_check``, holds every mention once, and every beacon's
alert reached each channel's receiver exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
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
import yaml
from helpers_alerts import Receiver
from helpers_feeds import BRANDS_YAML, SUPPORT_TEXTS, make_pipeline, texts_feed

from beacons import daemon as daemon_module
from beacons.alerts.outbox import epoch
from beacons.config import parse_config
from beacons.daemon import run
from beacons.feedserver import FeedServer, Resource
from beacons.fetch import FetchLimits, make_client
from beacons.models import Source
from beacons.pipeline import PollResult
from beacons.store import Store
from collectors.rss import Options

ROOT = Path(__file__).resolve().parent.parent
SECRET = "faults-secret-0123456789"
FILLER = "Acme RouterX review part {}: it is a router on my desk."  # a brand mention the rules route to no queue


# -- helpers -------------------------------------------------------------------


def daemon_config(
    db: Path, feed_url: str, hooks: list[str], *, timeout: str = "5s", retry_base: str = "10s"
) -> dict[str, Any]:
    return {
        "database": str(db),
        "brands": BRANDS_YAML,
        "sources": [
            {"id": "feed", "kind": "rss", "url": feed_url, "interval": "1s"}
        ],  # 1s: the first poll's start-up stagger is at most 1 s
        "classifier": {"model": "rules"},
        "fetch": {"per_host_delay": "0s", "timeout": timeout},
        "alerts": [
            {
                "kind": "webhook",
                "name": f"hook{i}",
                "url": url,
                "secret": SECRET,
                "rate_limit": 200,
                "timeout": "0.5s",
                "retry_base": retry_base,
                "spikes": {"enabled": False},
            }
            for i, url in enumerate(hooks)
        ],
        "logging": {"level": "debug", "format": "json"},
    }


@contextmanager
def daemon(cfg: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The real daemon in its own process, killed and reaped on the way out whatever happened."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "daemon.py", "--config", str(cfg)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(60)


def run_once(cfg: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "daemon.py", "--config", str(cfg), "--once"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def log_events(log: Path) -> list[dict[str, Any]]:
    events = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()  # ``with sqlite3.connect()`` only commits: it never closes


def has_rows(db: Path, sql: str) -> bool:
    """For waiting on a running daemon: False until the file and its tables exist."""
    try:
        return db.exists() and bool(query(db, sql))
    except sqlite3.OperationalError:
        return False


def assert_sound(db: Path, expected_mentions: int) -> None:
    """integrity_check ok; every mention once (by URL and by key)."""
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "SELECT count(*), count(DISTINCT url) FROM mentions") == [(expected_mentions, expected_mentions)]
    assert query(db, "SELECT count(*) FROM mention_keys") == query(db, "SELECT count(DISTINCT key) FROM mention_keys")


def assert_alerted_once(db: Path, receivers: list[Receiver], *, after: list[int]) -> None:
    """Each beacon routed to a queue has one outbox row per channel, sent, and its receiver got its key exactly once."""
    beacons = [b for (b,) in query(db, "SELECT id FROM beacons WHERE queue IN ('support', 'advocacy')")]
    assert beacons
    for i, r in enumerate(receivers):
        rows = query(
            db, f"SELECT event_id, status FROM outbox WHERE channel = 'hook{i}' AND kind = 'beacon' ORDER BY beacon_id"
        )
        assert [e for e, _ in rows] == [f"beacon-{b}-hook{i}" for b in sorted(beacons)]
        assert {s for _, s in rows} == {"sent"}
        answered = [
            x.key for x in r.requests[after[i] :]
        ]  # requests made after the restart (the receiver answered them)
        assert sorted(k or "" for k in answered) == sorted(e for e, _ in rows)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


# -- SIGKILL at three points, then a restart ------------------------------------------


def test_faults_sigkill_during_fetch(tmp_path: Path, server: FeedServer) -> None:
    db, cfg, log = tmp_path / "b.db", tmp_path / "c.yaml", tmp_path / "d.log"
    answer = threading.Event()
    server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS), hold=answer))  # the answer never comes in time
    with Receiver() as r0, Receiver() as r1:
        cfg.write_text(yaml.safe_dump(daemon_config(db, server.url("/feed.xml"), [r0.url, r1.url])))
        with daemon(cfg, log) as proc:
            wait_until(lambda: len(server.hits("/feed.xml")) >= 1, 60, "the daemon's request")
            proc.send_signal(signal.SIGKILL)
        answer.set()
        assert query(db, "SELECT count(*) FROM mentions") == [(0,)]
        server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS)))
        run_once(cfg)
        assert_sound(db, 3)
        assert_alerted_once(db, [r0, r1], after=[0, 0])


def test_faults_sigkill_during_classify(tmp_path: Path, server: FeedServer) -> None:
    """Killed once the feed is parsed (``source.fetched``): 2,500 brand mentions take most of a second to match, classify and store."""
    db, cfg, log = tmp_path / "b.db", tmp_path / "c.yaml", tmp_path / "d.log"
    texts = [*SUPPORT_TEXTS, *(FILLER.format(i) for i in range(2500))]
    server.add("/feed.xml", Resource(texts_feed(texts)))
    with Receiver() as r0, Receiver() as r1:
        cfg.write_text(yaml.safe_dump(daemon_config(db, server.url("/feed.xml"), [r0.url, r1.url])))
        with daemon(cfg, log) as proc:
            wait_until(lambda: any(e["event"] == "source.fetched" for e in log_events(log)), 60, "source.fetched")
            proc.send_signal(signal.SIGKILL)
        # The kill landed after parsing and before the poll's transaction committed.
        assert query(db, "SELECT count(*) FROM mentions") == [(0,)]
        assert query(db, "SELECT etag, cursor FROM sources WHERE id = 'feed'") == [(None, None)]
        run_once(cfg)
        assert server.hits("/feed.xml")[-1]["headers"].get("If-None-Match") is None  # refetched in full
        assert_sound(db, len(texts))
        assert_alerted_once(db, [r0, r1], after=[0, 0])


def test_faults_sigkill_between_store_and_alert(tmp_path: Path, server: FeedServer) -> None:
    """Beacons committed, alerts not yet delivered (the receivers are down), then SIGKILL."""
    db, cfg, log = tmp_path / "b.db", tmp_path / "c.yaml", tmp_path / "d.log"
    server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    with Receiver() as r0, Receiver() as r1:
        r0.down()
        r1.down()
        cfg.write_text(yaml.safe_dump(daemon_config(db, server.url("/feed.xml"), [r0.url, r1.url], retry_base="0.1s")))
        with daemon(cfg, log) as proc:
            wait_until(lambda: has_rows(db, "SELECT 1 FROM outbox WHERE attempts > 0 LIMIT 1"), 60, "a failed send")
            proc.send_signal(signal.SIGKILL)
        assert query(db, "SELECT count(*) FROM outbox WHERE status = 'sent'") == [(0,)]
        r0.up()
        r1.up()
        # A row claimed at the kill stays leased (timeout + 2 s): the restart comes once that lease ran out.
        leases = [epoch(n) or 0.0 for (n,) in query(db, "SELECT next_attempt_at FROM outbox WHERE status = 'sending'")]
        time.sleep(max(0.0, max(leases, default=0.0) - time.time() + 0.1))
        run_once(cfg)
        assert_sound(db, 3)
        assert_alerted_once(db, [r0, r1], after=[0, 0])


# -- SIGTERM: the grace period ---------------------------------------------------------


def test_faults_sigterm_finishes_the_poll_in_flight(tmp_path: Path, server: FeedServer) -> None:
    """The feed answers only after the daemon said it is stopping: the poll in flight is still stored."""
    db, cfg, log = tmp_path / "b.db", tmp_path / "c.yaml", tmp_path / "d.log"
    answer = threading.Event()
    server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS), hold=answer))
    cfg.write_text(yaml.safe_dump(daemon_config(db, server.url("/feed.xml"), [], timeout="60s")))
    with daemon(cfg, log) as proc:
        wait_until(lambda: len(server.hits("/feed.xml")) >= 1, 60, "the daemon's request")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: any(e["event"] == "daemon.stopping" for e in log_events(log)), 60, "daemon.stopping")
        answer.set()
        assert proc.wait(60) == 0
    events = log_events(log)
    names = [e["event"] for e in events]
    stopping = next(e for e in events if e["event"] == "daemon.stopping")
    assert stopping["grace_s"] == 70.0 and stopping["in_flight"] >= 1  # fetch.timeout + 10 s
    polled = next(i for i, e in enumerate(events) if e["event"] == "source.polled")
    assert events[polled]["status"] == "ok" and events[polled]["new"] == 3
    assert names.index("daemon.stopping") < polled < names.index("daemon.stopped")
    assert "daemon.grace_expired" not in names
    assert_sound(db, 3)


def test_faults_second_sigterm_forces_exit_and_loses_nothing(tmp_path: Path, server: FeedServer) -> None:
    """The feed never answers while the daemon runs: only the second signal can end it before the 70 s grace."""
    db, cfg, log = tmp_path / "b.db", tmp_path / "c.yaml", tmp_path / "d.log"
    answer = threading.Event()
    server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS), hold=answer))
    cfg.write_text(yaml.safe_dump(daemon_config(db, server.url("/feed.xml"), [], timeout="60s")))
    try:
        with daemon(cfg, log) as proc:
            wait_until(lambda: len(server.hits("/feed.xml")) >= 1, 60, "the daemon's request")
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: any(e["event"] == "daemon.stopping" for e in log_events(log)), 60, "daemon.stopping")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0  # the grace is 70 s: a daemon that ignored the second signal is still here
    finally:
        answer.set()
    events = {e["event"]: e for e in log_events(log)}
    assert events["daemon.signal"]["action"] == "forced exit" and "daemon.stopped" in events
    assert query(db, "SELECT count(*) FROM mentions") == [(0,)]  # the abandoned poll left nothing half-written
    server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    run_once(cfg)
    assert_sound(db, 3)


def test_faults_grace_period_abandons_what_still_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task that ignores the stop event is cancelled when the grace period ends, and logged."""
    hung = asyncio.Event()

    async def stubborn(service: Any, stop: asyncio.Event) -> None:
        hung.set()
        await asyncio.sleep(3600)

    monkeypatch.setattr(daemon_module, "EXTRA_TASKS", [stubborn])
    monkeypatch.setattr(daemon_module, "GRACE_EXTRA", 0.3 - 1.0)  # fetch.timeout 1 s: a grace of 0.3 s
    config = parse_config(
        yaml.safe_dump(
            {
                "database": str(tmp_path / "b.db"),
                "brands": BRANDS_YAML,
                "sources": [],
                "classifier": {"model": "rules"},
                "fetch": {"timeout": "1s"},
            }
        )
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run(config, stop=stop, install_signals=False))
        await asyncio.wait_for(hung.wait(), 60)
        stop.set()
        await asyncio.wait_for(task, 60)  # a hang guard: the task sleeps an hour unless cancelled

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    [expired] = [e for e in logs if e["event"] == "daemon.grace_expired"]
    assert expired["abandoned"] == ["extra:0"] and expired["grace_s"] == pytest.approx(0.3)
    assert [e["event"] for e in logs][-2:] == ["daemon.grace_expired", "daemon.stopped"]


# -- the database: locked, full, read-only -------------------------------------------


def poll_with(store: Store, src: Source) -> PollResult:
    [result] = polls(store, src, 1)
    return result


def polls(store: Store, src: Source, n: int) -> list[PollResult]:
    """``n`` polls through one pipeline, as the daemon makes them."""

    async def go() -> list[PollResult]:
        async with make_client(FetchLimits(timeout=5.0)) as client:
            pipeline = make_pipeline(store, client)
            return [await pipeline.poll_source(src) for _ in range(n)]

    return asyncio.run(go())


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # held until the test closes our stdin: no timing involved
conn.execute("ROLLBACK")
conn.close()
"""


@contextmanager
def locked(db: Path) -> Iterator[Callable[[], None]]:
    """Another process holds the database's write lock until ``release()`` (or the block ends)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None

    def release() -> None:
        if not proc.stdin.closed:  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
            assert proc.wait(60) == 0

    try:
        assert proc.stdout.readline().strip() == "locked"
        yield release
    finally:
        try:
            release()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


@pytest.fixture
def feed(server: FeedServer) -> tuple[FeedServer, Source]:
    server.add("/feed.xml", Resource(texts_feed([*SUPPORT_TEXTS, *(FILLER.format(i) for i in range(200))])))
    return server, Source("feed", "rss", 60.0, Options(server.url("/feed.xml")))


def test_faults_short_lock_is_waited_out(tmp_path: Path, feed: tuple[FeedServer, Source]) -> None:
    """The lock is released only once the poll's write is waiting on it, so the wait is real, not a race."""
    _, src = feed
    store = Store(tmp_path / "b.db", timeout=60.0)  # a lock shorter than the store's timeout is waited out
    store.sync_sources([src])
    with locked(tmp_path / "b.db") as release:
        writing = threading.Event()

        def trace(sql: str) -> None:
            if sql.startswith("BEGIN IMMEDIATE"):
                writing.set()  # called just before SQLite runs it, and it blocks on the lock

        def release_when_writing() -> None:
            if writing.wait(60):
                release()

        store.backend.conn.set_trace_callback(trace)
        releaser = threading.Thread(target=release_when_writing)
        releaser.start()
        try:
            result = poll_with(store, src)
        finally:
            writing.set()
            releaser.join(60)
            store.backend.conn.set_trace_callback(None)
    assert result.status == "ok" and result.counts["new"] == 203
    store.close()
    assert_sound(tmp_path / "b.db", 203)


def test_faults_long_lock_is_an_error_then_the_poll_is_refetched(
    tmp_path: Path, feed: tuple[FeedServer, Source]
) -> None:
    server, src = feed
    db = tmp_path / "b.db"
    store = Store(db, timeout=0.3)
    store.sync_sources([src])
    with locked(db) as release:  # held for both polls, however long they take
        with structlog.testing.capture_logs() as logs:
            first, second = polls(store, src, 2)
        assert (first.status, first.consecutive_errors, second.consecutive_errors) == ("error", 1, 2)  # backoff grows
        assert "database is locked" in (first.error or "") and "retried with backoff" in (first.error or "")
        assert any(e["event"] == "store.write_failed" and "locked" in e["error"] for e in logs)
        assert store.source_state("feed").etag is None  # the state rolled back with the poll
        release()
    third = poll_with(store, src)
    assert third.status == "ok" and third.counts["new"] == 203
    assert "If-None-Match" not in server.hits("/feed.xml")[-1]["headers"]  # fetched in full again: nothing lost
    assert store.source_state("feed").etag is not None
    store.close()
    assert_sound(db, 203)


def test_faults_disk_full_rolls_back_and_recovers(tmp_path: Path, feed: tuple[FeedServer, Source]) -> None:
    _, src = feed
    db = tmp_path / "b.db"
    store = Store(db)
    store.sync_sources([src])
    pages = store.backend.conn.execute("PRAGMA page_count").fetchone()[0]
    store.backend.conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # a disk with 8 KiB left
    with structlog.testing.capture_logs() as logs:
        full = poll_with(store, src)
    assert (
        full.status == "error"
        and "database or disk is full" in (full.error or "")
        and "free space" in (full.error or "")
    )
    assert any(e["event"] == "source.polled" and e["status"] == "error" for e in logs)
    assert store.mention_count() == 0 and store.source_state("feed").etag is None  # nothing half-written
    assert store.backend.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    store.backend.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    ok = poll_with(store, src)
    assert ok.status == "ok" and ok.counts["new"] == 203
    row = next(r for r in store.sources() if r["id"] == "feed")
    assert (row["errors"], row["consecutive_errors"], row["last_status"]) == (1, 0, "ok")
    store.close()
    assert_sound(db, 203)


def test_faults_read_only_database_mid_run(tmp_path: Path, feed: tuple[FeedServer, Source]) -> None:
    """The file turns read-only under a running daemon. Tests run as root, where chmod does not bite, so the
    connection is switched to ``query_only``: SQLite then refuses writes with the same SQLITE_READONLY error."""
    _, src = feed
    db = tmp_path / "b.db"
    store = Store(db)
    store.sync_sources([src])
    store.backend.conn.execute("PRAGMA query_only = ON")
    ro = poll_with(store, src)
    assert ro.status == "error" and "readonly database" in (ro.error or "") and "check permissions" in (ro.error or "")
    assert store.mention_count() == 0
    store.backend.conn.execute("PRAGMA query_only = OFF")
    assert poll_with(store, src).counts["new"] == 203
    store.close()
    assert_sound(db, 203)


@contextmanager
def read_only(db: Path) -> Iterator[str]:
    """Make the database file read-only for real: mode 0444 (and its folder 0555) for a normal user;
    as root, whom modes do not stop, the immutable attribute (``chattr +i``)."""
    if os.geteuid() != 0:
        db.chmod(0o444)
        db.parent.chmod(0o555)
        try:
            yield "chmod"
        finally:
            db.parent.chmod(0o755)
            db.chmod(0o644)
        return
    if (
        shutil.which("chattr") is None
        or subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False).returncode
    ):
        pytest.skip("running as root without chattr +i support: chmod would not make the file read-only")
    try:
        yield "chattr +i"
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)


def test_faults_read_only_database_file(tmp_path: Path, feed: tuple[FeedServer, Source]) -> None:
    """A read-only file under the real daemon: a clear error naming the file and what to change, exit 1, no traceback."""
    server, src = feed
    db = tmp_path / "ro" / "b.db"
    store = Store(db)
    store.sync_sources([src])
    store.close()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(daemon_config(db, server.url("/feed.xml"), [])))
    with read_only(db):
        done = subprocess.run(
            [sys.executable, "daemon.py", "--config", str(cfg), "--once"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr[-2000:]
    assert str(db) in done.stderr and "readonly database" in done.stderr and "check permissions" in done.stderr
    assert "Traceback" not in done.stderr
    assert_sound(db, 0)


@contextmanager
def tiny_filesystem(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``folder`` (needs root with CAP_SYS_ADMIN; skipped otherwise)."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode:
        pytest.skip(
            f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()[:100]}); max_page_count covers disk full"
        )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_faults_disk_full_on_a_tiny_filesystem(tmp_path: Path, feed: tuple[FeedServer, Source]) -> None:
    """A real ENOSPC: the database on a 768 KiB tmpfs, then the filesystem grown (space freed)."""
    _, src = feed
    with tiny_filesystem(tmp_path / "tiny", "768k") as folder:  # the schema alone needs ~530 KiB with its WAL
        db = folder / "b.db"
        store = Store(db)
        store.sync_sources([src])
        full = poll_with(store, src)
        assert full.status == "error" and "disk is full" in (full.error or "")
        assert store.mention_count() == 0 and store.source_state("feed").etag is None
        subprocess.run(["mount", "-o", "remount,size=16m", str(folder)], check=True)
        ok = poll_with(store, src)
        assert ok.status == "ok" and ok.counts["new"] == 203
        store.close()
        assert_sound(db, 203)
