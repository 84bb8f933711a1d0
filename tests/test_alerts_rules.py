"""Source health, incident spikes and digests: the rules, and what reaches a receiver."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers_alerts import Receiver, add_beacon, open_store, reset_logging  # noqa: F401
from helpers_clock import FakeClock
from helpers_db import write

from beacons.alerts import health, spikes
from beacons.alerts.config import AlertChannel, HealthRule, SpikeRule
from beacons.alerts.outbox import Outbox
from beacons.alerts.sender import ChannelSender
from beacons.clock import SYSTEM, Clock
from beacons.models import Source
from beacons.store import Store

SECRET = "rules-secret-0123456789"
HOUR = 3600.0
DIGEST = 600.0  # the digest test's window, in the sender's (fake) time


def hook(url: str, **kw: Any) -> AlertChannel:
    opts: dict[str, Any] = {"kind": "webhook", "name": "hook", "secret": SECRET, "timeout": 2.0, "rate_limit": 500.0}
    opts.update(kw)
    return AlertChannel(url=url, **opts)


def drain(
    store: Store,
    chan: AlertChannel,
    public_url: str | None = None,
    sources: tuple[Source, ...] = (),
    clock: Clock = SYSTEM,
) -> None:
    async def go() -> None:
        sender = ChannelSender(chan, Outbox(store), public_url=public_url, sources=sources, clock=clock)
        await sender.drain()
        await sender.aclose()

    asyncio.run(go())


# -- spikes -------------------------------------------------------------------


def test_alerts_spike_stats_quiet_history_needs_min_count() -> None:
    rule = SpikeRule(min_count=5, k=3)
    now = 1_000_000.0
    assert not spikes.spike_stats([now - 60] * 4, rule, now=now).is_spike
    stats = spikes.spike_stats([now - 60] * 5, rule, now=now)
    assert stats.is_spike and (stats.count, stats.mean, stats.threshold) == (5, 0.0, 5.0)


def test_alerts_spike_stats_compares_with_mean_plus_k_stddev() -> None:
    rule = SpikeRule(window=HOUR, baseline=24 * HOUR, k=3, min_count=2)
    now = 10_000_000.0
    history = [
        now - HOUR - 10 - h * HOUR for h in range(24) for _ in range(4 if h % 2 else 2)
    ]  # 2, 4, 2, 4... per hour
    stats = spikes.spike_stats(history + [now - 5] * 6, rule, now=now)
    assert stats.mean == pytest.approx(3.0) and stats.stddev == pytest.approx(1.0)
    assert stats.threshold == 7.0 and stats.count == 6 and not stats.is_spike  # 6 is not above 3 + 3*1
    assert spikes.spike_stats(history + [now - 5] * 7, rule, now=now).is_spike


def test_alerts_spike_groups_a_burst_into_one_incident(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with Receiver() as r:
        chan = hook(r.url, spikes=SpikeRule(min_count=3, k=3))
        first = [add_beacon(store, ["hook"]) for _ in range(2)]
        drain(store, chan)
        assert [x.json["type"] for x in r.requests] == ["beacon", "beacon"]  # under the threshold: one each
        burst = [add_beacon(store, ["hook"]) for _ in range(6)]
        add_beacon(
            store, ["hook"], product="Acme Cloud", text="Acme Cloud billing question"
        )  # another product: its own alert
        drain(store, chan)
        types = [x.json["type"] for x in r.requests]
        incident = next(x.json for x in r.requests if x.json["type"] == "incident")
    assert types.count("incident") == 1 and types.count("beacon") == 3  # 6 pings became one incident
    assert (
        incident["data"]["state"] == "open"
        and incident["data"]["count"] == 8
        and incident["data"]["product"] == "RouterX"
    )
    assert {b["id"] for b in incident["data"]["beacons"]} == {*first, *burst}  # the posts of the window, listed
    rows = {r.beacon_id: r.status for r in Outbox(store).rows(channel="hook", limit=100) if r.kind == "beacon"}
    assert [rows[i] for i in burst] == ["grouped"] * 6
    # an hour later the window is calm: the incident ends, saying how many it grouped
    ended = spikes.close_calm(Outbox(store), chan, now=time.time() + 2 * HOUR)
    assert len(ended) == 1
    row = Outbox(store).get(ended[0])
    assert row is not None and row.payload["state"] == "ended" and row.payload["grouped"] == 6


def test_alerts_spike_reaches_ops_channel_that_takes_no_beacons(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with Receiver() as r:
        chan = hook(r.url, name="ops", beacons=False, ops=True, spikes=SpikeRule(min_count=3))
        for _ in range(4):
            add_beacon(store, ["ops"])
        drain(store, chan)
        assert [x.json["type"] for x in r.requests] == ["incident"]
    assert sorted(r.status for r in Outbox(store).rows(channel="ops") if r.kind == "beacon") == ["skipped"] * 4


# -- digest --------------------------------------------------------------------


def test_alerts_digest_sends_one_summary(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with Receiver() as r:
        chan = AlertChannel(
            kind="slack",
            url=r.url,
            name="adv",
            queues=("advocacy",),
            digest=DIGEST,
            spikes=SpikeRule(enabled=False),
            timeout=2.0,
        )
        ids = [
            add_beacon(store, ["adv"], queue="advocacy", text=f"I love my Acme RouterX #{i}", priority=20 + i)
            for i in range(3)
        ]
        add_beacon(store, ["adv"], queue="support")  # filtered out
        clock = FakeClock.starting_now()
        drain(store, chan, clock=clock)
        assert r.requests == []  # queued, not yet due
        oldest = Outbox(store).oldest_queued("adv")
        assert oldest is not None
        clock.set(datetime.fromtimestamp(oldest + DIGEST - 1, UTC))
        drain(store, chan, clock=clock)
        assert r.requests == []  # a second early: still not due
        clock.set(datetime.fromtimestamp(oldest + DIGEST, UTC))
        drain(store, chan, clock=clock)
        (req,) = r.requests
    body = req.json
    assert "Digest: 3 beacons" in body["blocks"][0]["text"]["text"]
    listed = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert len(listed) == 3 and "#2" in listed[0]  # highest priority first
    statuses = {r.beacon_id: r.status for r in Outbox(store).rows(channel="adv") if r.kind == "beacon"}
    assert [statuses[i] for i in ids] == ["digested"] * 3


# -- source health ---------------------------------------------------------------


def test_alerts_health_transition_once_remind_recover() -> None:
    rule = HealthRule(after_errors=3, remind_every=HOUR)
    ok = {"state": "ok", "episode": 0, "reminders": 0, "last_alert_at": None}
    s1, what = health.transition(ok, "3 failed polls in a row", rule, now=0.0)
    assert what == "failing" and s1["episode"] == 1
    s2, what = health.transition(s1, "4 failed polls in a row", rule, now=600.0)
    assert what is None
    s3, what = health.transition(s2, "9 failed polls in a row", rule, now=HOUR + 1)
    assert what == "remind-1"
    s4, what = health.transition(s3, None, rule, now=HOUR + 5)
    assert what == "recovered" and s4["state"] == "ok"
    assert health.transition(s4, None, rule, now=HOUR + 9)[1] is None


def _set_source(store: Store, source_id: str, **cols: Any) -> None:
    store.sync_sources([Source(source_id, "rss", 300.0, None)])
    sets = ", ".join(f"{k} = ?" for k in cols)
    write(store, f"UPDATE sources SET {sets} WHERE id = ?", [*cols.values(), source_id])


def test_alerts_health_alerts_ops_channel_once_then_recovery(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    feed = Source("acme-blog", "rss", 300.0, None)
    quiet = Source("quiet-feed", "rss", 300.0, None, expect_every=HOUR)
    _set_source(
        store,
        "acme-blog",
        consecutive_errors=3,
        last_error="HTTPStatusError: 500 from https://x.example/feed?token=abc123",
    )
    _set_source(store, "quiet-feed", last_new_at="2020-01-01T00:00:00+00:00")
    with Receiver() as r:
        chan = hook(r.url, name="ops", beacons=False, ops=True)
        drain(store, chan, sources=(feed, quiet))
        drain(store, chan, sources=(feed, quiet))  # still broken: nothing new before remind_every
        first = sorted((x.json["data"]["source"], x.json["data"]["state"]) for x in r.requests)
        failing = next(x.json["data"] for x in r.requests if x.json["data"]["source"] == "acme-blog")
        _set_source(store, "acme-blog", consecutive_errors=0)
        drain(store, chan, sources=(feed, quiet))
        last = r.requests[-1].json["data"]
    assert first == [("acme-blog", "failing"), ("quiet-feed", "failing")]
    assert (
        failing["reason"] == "3 failed polls in a row"
        and "abc123" not in failing["last_error"]
        and "token=[redacted]" in failing["last_error"]
    )
    assert (last["source"], last["state"]) == ("acme-blog", "recovered") and len(r.requests) == 3
