"""Several workers on one database: source leases, host affinity, leaders, and two real daemons sharing sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_db import rows
from helpers_feeds import SUPPORT_TEXTS, rss_source_config, texts_feed
from test_storage import race

from beacons.cli import main
from beacons.feedserver import FeedServer, Resource
from beacons.models import Source
from beacons.storage import Storage
from collectors.rss import Options

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LEASE = 120.0


def src(sid: str, url: str) -> Source:
    return Source(sid, "rss", 60.0, Options(url))


@pytest.fixture
def store(database: str) -> Iterator[Storage]:
    with Storage(database) as s:
        yield s


def test_fleet_one_source_goes_to_one_of_racing_workers(database: str, store: Storage) -> None:
    store.sync_sources([src("blog", "https://a.example/feed")])
    workers = [Storage(database) for _ in range(4)]
    try:
        results = race(4, lambda i: workers[i].lease_due(f"w{i}", now=NOW, lease=LEASE, limit=10))
    finally:
        for w in workers:
            w.close()
    assert sorted(r for got in results for r in got) == ["blog"]


def test_fleet_lease_runs_out_and_another_worker_takes_over(store: Storage) -> None:
    store.sync_sources([src("blog", "https://a.example/feed")])
    assert store.lease_due("killed", now=NOW, lease=LEASE, limit=10) == ["blog"]
    assert store.lease_due("other", now=NOW + timedelta(seconds=LEASE - 1), lease=LEASE, limit=10) == []
    assert store.lease_due("other", now=NOW + timedelta(seconds=LEASE + 1), lease=LEASE, limit=10) == ["blog"]


def test_fleet_released_source_waits_for_its_next_poll(store: Storage) -> None:
    store.sync_sources([src("blog", "https://a.example/feed")])
    assert store.lease_due("w1", now=NOW, lease=LEASE, limit=10) == ["blog"]
    assert store.release_source("blog", "w1", next_poll_at=NOW + timedelta(seconds=60))
    assert not store.release_source("blog", "w1", next_poll_at=NOW)  # no lease any more
    assert store.lease_due("w2", now=NOW + timedelta(seconds=59), lease=LEASE, limit=10) == []
    assert store.lease_due("w2", now=NOW + timedelta(seconds=61), lease=LEASE, limit=10) == ["blog"]


def test_fleet_one_host_is_polled_by_one_worker_at_a_time(store: Storage) -> None:
    store.sync_sources([src(f"a{i}", f"https://a.example/{i}") for i in (1, 2, 3)] + [src("b1", "https://b.example/1")])
    assert store.lease_due("w1", now=NOW, lease=LEASE, limit=1) == ["a1"]
    assert store.lease_due("w2", now=NOW, lease=LEASE, limit=10) == ["b1"]  # a2 and a3 wait: w1 holds a.example
    # w1's hold on the host has lapsed, but its poll of a1 is still in flight: the host stays with w1
    assert store.lease_due("w2", now=NOW + timedelta(seconds=20), lease=LEASE, limit=10) == []
    assert store.lease_due("w1", now=NOW + timedelta(seconds=20), lease=LEASE, limit=10) == ["a2", "a3"]
    later = NOW + timedelta(seconds=20 + LEASE + 1)  # w1 died: its leases ran out
    assert sorted(store.lease_due("w2", now=later, lease=LEASE, limit=10)) == ["a1", "a2", "a3", "b1"]


def test_fleet_workers_share_the_hosts(store: Storage) -> None:
    store.sync_sources([src(f"{h}1", f"https://{h}.example/1") for h in "abcd"])
    for w in ("w1", "w2"):
        store.heartbeat(w, hostname="m", pid=1, now=NOW)
    first = store.lease_due("w1", now=NOW, lease=LEASE, limit=10)
    second = store.lease_due("w2", now=NOW, lease=LEASE, limit=10)
    assert len(first) == 2 and sorted(first + second) == ["a1", "b1", "c1", "d1"]


def test_fleet_periodic_job_has_one_leader_until_it_stops_renewing(store: Storage) -> None:
    assert store.lead("alerts:ops", "w1", now=NOW, ttl=30)
    assert not store.lead("alerts:ops", "w2", now=NOW + timedelta(seconds=10), ttl=30)
    assert store.lead("alerts:ops", "w1", now=NOW + timedelta(seconds=20), ttl=30)  # renewed
    assert not store.lead("alerts:ops", "w2", now=NOW + timedelta(seconds=45), ttl=30)
    assert store.lead("alerts:ops", "w2", now=NOW + timedelta(seconds=51), ttl=30)  # w1 died: taken over


def test_fleet_command_shows_workers_and_leaders(store: Storage, database: str, tmp_path: Path, capsys: Any) -> None:
    store.sync_sources([src("blog", "https://a.example/feed")])
    now = datetime.now(UTC)
    store.heartbeat("host-a:41:abc", hostname="host-a", pid=41, now=now, polled=3)
    store.lease_due("host-a:41:abc", now=now, lease=LEASE, limit=10)
    store.lead("alerts:ops", "host-a:41:abc", now=now, ttl=30)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"database": database}), encoding="utf-8")
    assert main(["fleet", "--format", "json", "-c", str(config)]) == 0
    state = json.loads(capsys.readouterr().out)
    [worker] = state["workers"]
    assert (worker["id"], worker["leases"], worker["hosts"], worker["sources_polled"]) == ("host-a:41:abc", 1, 1, 3)
    assert state["leaders"][0]["job"] == "alerts:ops" and state["sources_due"] == 1
    assert main(["fleet", "-c", str(config)]) == 0
    assert "leader of alerts:ops: host-a:41:abc" in capsys.readouterr().out


def test_fleet_two_daemons_poll_each_source_once(feed_server: FeedServer, pg_url: str, tmp_path: Path) -> None:
    """Two `python daemon.py` processes on one PostgreSQL: every source polled exactly once in its interval,
    every mention stored once; on SIGTERM each leaves the fleet."""
    paths = [f"/f{i}.xml" for i in range(16)]
    for i, path in enumerate(paths):
        feed_server.add(path, Resource(texts_feed([f"{t} (feed {i})" for t in SUPPORT_TEXTS[:2]], start=10 * i)))
    port = feed_server.base_url.rsplit(":", 1)[1]
    hosts = ["127.0.0.1", "localhost"]  # two hosts, so both workers get work
    sources = [
        {"id": f"s{i}", "kind": "rss", "url": f"http://{hosts[i % 2]}:{port}{p}", "interval": "1h"}
        for i, p in enumerate(paths)
    ]
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({**rss_source_config({}), "database": pg_url, "sources": sources}),
        encoding="utf-8",
    )
    root = Path(__file__).resolve().parents[1]
    procs = [
        subprocess.Popen(
            [sys.executable, str(root / "daemon.py"), "--config", str(config)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(feed_server.hits(p) for p in paths):
            time.sleep(0.2)
        time.sleep(2.0)  # long enough for a second poll, were the fleet to make one
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        errs = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert [len(feed_server.hits(p)) for p in paths] == [1] * len(paths), errs[0][-3000:]
    with Storage(pg_url) as store:
        assert store.mention_count() == 2 * len(paths)
        assert rows(store, "SELECT COUNT(*) FROM fleet_workers") == [(0,)]  # both left on SIGTERM
        assert rows(store, "SELECT COUNT(*) FROM sources WHERE lease_owner IS NOT NULL") == [(0,)]
        assert all("fleet.joined" in e for e in errs)


def test_fleet_channel_rate_limit_and_pause_hold_for_every_sender(database: str, store: Storage) -> None:
    senders = [Storage(database) for _ in range(4)]
    try:
        slots = race(4, lambda i: [senders[i].send_slot("ops", now=NOW, spacing=1.0) for _ in range(3)])
    finally:
        for s in senders:
            s.close()
    taken = sorted(t for got in slots for t in got)
    assert taken == [NOW + timedelta(seconds=n) for n in range(12)]  # one per second across all four
    store.pause_channel("ops", until=NOW + timedelta(seconds=60))  # a 429 with Retry-After: 48 s
    assert store.send_slot("ops", now=NOW + timedelta(seconds=13), spacing=1.0) == NOW + timedelta(seconds=60)


def test_fleet_digest_of_a_channel_is_made_by_its_leader_once(database: str, store: Storage) -> None:
    import asyncio

    from helpers_alerts import add_beacon

    from beacons.alerts.config import AlertChannel, SpikeRule
    from beacons.alerts.outbox import Outbox
    from beacons.alerts.sender import ChannelSender

    hook = AlertChannel(
        url="http://127.0.0.1:9/hook",
        kind="webhook",
        name="hook",
        secret="s" * 20,
        digest=60.0,
        spikes=SpikeRule(enabled=False),
    )
    for _ in range(3):
        add_beacon(store, ["hook"])
    others = [Storage(database) for _ in range(2)]
    senders = [ChannelSender(hook, Outbox(s)) for s in others]
    try:
        for i, sender in enumerate(senders):
            sender.worker = f"w{i}"
        now = time.time()
        for row in Outbox(store).rows():
            senders[0].triage(row, now)  # queued for the digest
        leading = [s._is_leader(now + 120) for s in senders]
        for s in senders:
            s.housekeeping(now + 120)
        kinds = [r.kind for r in Outbox(store).rows()]
        assert leading == [True, False] and kinds.count("digest") == 1
    finally:
        for s in senders:
            asyncio.run(s.aclose())
        for o in others:
            o.close()


def test_fleet_lease_takes_never_polled_sources_first_then_the_longest_due(store: Storage) -> None:
    store.sync_sources([src(f"s{i}", f"https://a.example/{i}") for i in range(5)])
    for sid, minutes in (("s0", 1), ("s1", 5), ("s2", -5), ("s3", 3)):  # s4 was never polled
        store.set_next_poll(sid, NOW - timedelta(minutes=minutes))
    assert store.lease_due("w1", now=NOW, lease=LEASE, limit=3) == ["s4", "s1", "s3"]
    assert store.lease_due("w1", now=NOW, lease=LEASE, limit=3) == ["s0"]  # s2 is not due yet
