"""Delivery over real HTTP on loopback: once per event id, retries, Retry-After, dead letters, isolation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from helpers_alerts import HANG, Receiver, Reply, add_beacon, open_store, reset_logging  # noqa: F401
from helpers_clock import FakeClock

from beacons.alerts.config import AlertChannel, SpikeRule
from beacons.alerts.outbox import Outbox
from beacons.alerts.sender import ChannelSender, backoff
from beacons.alerts.webhook import verify
from beacons.store import Store

SECRET = "whsec-test-0123456789abcdef"


def channel(url: str, **kw: Any) -> AlertChannel:
    opts: dict[str, Any] = {
        "kind": "webhook",
        "name": "hook",
        "secret": SECRET,
        "timeout": 1.0,
        "retry_base": 0.2,
        "rate_limit": 200.0,
        "spikes": SpikeRule(enabled=False),
    }
    opts.update(kw)
    return AlertChannel(url=url, **opts)


HANG_GUARD = 60.0  # seconds; only a hang reaches it. Nothing here asserts how long a send took (issue 10).


async def run_until(senders: list[ChannelSender], until: Callable[[], bool]) -> None:
    """Run the senders until ``until()`` holds; a hang fails after HANG_GUARD s."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in senders]

    async def wait() -> None:
        while not until():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(wait(), HANG_GUARD)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for s in senders:
            await s.aclose()


async def step_once(sender: ChannelSender) -> bool:
    try:
        return await sender.step(None)
    finally:
        await sender.aclose()


def statuses(store: Store, channel: str = "hook") -> list[str]:
    return [r.status for r in sorted(Outbox(store).rows(channel=channel, limit=1000), key=lambda r: r.id)]


def test_alerts_delivery_once_per_event_id_signed(database: str, tmp_path: Path) -> None:
    store = Store(database)
    ids = [add_beacon(store, ["hook"]) for _ in range(5)]
    with Receiver() as r:
        sender = ChannelSender(channel(r.url), Outbox(store), tick=0.02)
        asyncio.run(run_until([sender], lambda: statuses(store) == ["sent"] * 5))
        got = r.requests
    assert sorted(x.key or "" for x in got) == sorted(f"beacon-{i}-hook" for i in ids)
    for req in got:
        assert verify(SECRET, req.body, req.headers["X-Beacons-Signature"])
        assert req.json["id"] == req.key and req.json["schema"] == "beacons.alert.v1"
    assert statuses(store) == ["sent"] * 5
    # a second sender on the same database finds nothing left to send
    with Receiver() as r2:
        assert asyncio.run(step_once(ChannelSender(channel(r2.url), Outbox(store)))) is False
        assert r2.requests == []


def test_alerts_delivery_two_senders_never_share_a_row(database: str, tmp_path: Path) -> None:
    store = Store(database)
    ids = [add_beacon(store, ["hook"]) for _ in range(20)]
    other = Store(store.database)  # a second connection, as a second process would have
    with Receiver() as r:
        a = ChannelSender(channel(r.url), Outbox(store), tick=0.01)
        b = ChannelSender(channel(r.url), Outbox(other), tick=0.01)
        asyncio.run(run_until([a, b], lambda: statuses(store) == ["sent"] * 20))
        keys = r.keys()
    assert sorted(k or "" for k in keys) == sorted(f"beacon-{i}-hook" for i in ids)  # each exactly once


def test_alerts_delivery_retries_follow_backoff(database: str, tmp_path: Path) -> None:
    store = Store(database)
    add_beacon(store, ["hook"])
    clock = FakeClock.starting_now()  # the gaps below are the sender's own (fake) time: exact on any machine
    with Receiver(clock=clock) as r:
        r.script(Reply(500, b"boom"), Reply(502), Reply(503))
        sender = ChannelSender(channel(r.url, retry_base=0.2), Outbox(store), tick=0.01, clock=clock)
        asyncio.run(run_until([sender], lambda: statuses(store) == ["sent"]))
        got = r.requests
    assert len(got) == 4 and len({x.key for x in got}) == 1
    gaps = [b.at - a.at for a, b in pairwise(got)]
    for n, gap in enumerate(gaps, start=1):  # equal jitter: between half and all of base * 2**(n-1), plus a tick
        assert 0.2 * 2 ** (n - 1) / 2 <= gap <= 0.2 * 2 ** (n - 1) + 0.01 + 1 / 200 + 1e-6, gaps
    assert statuses(store) == ["sent"]
    row = Outbox(store).rows()[0]
    assert row.attempts == 4 and row.last_error is None


@pytest.mark.parametrize("attempt", [1, 2, 5, 30])
def test_alerts_backoff_is_exponential_capped_and_jittered(attempt: int) -> None:
    import random

    rng = random.Random(attempt)
    delays = [backoff(attempt, 10.0, 3600.0, rng) for _ in range(200)]
    full = min(3600.0, 10.0 * 2 ** (attempt - 1))
    assert all(full / 2 <= d <= full for d in delays)
    assert max(delays) - min(delays) > full / 10  # jittered, not constant


def test_alerts_delivery_obeys_429_retry_after(database: str, tmp_path: Path) -> None:
    store = Store(database)
    add_beacon(store, ["hook"])
    add_beacon(store, ["hook"])
    clock = FakeClock.starting_now()
    with Receiver(clock=clock) as r:
        r.script(Reply(429, b"rate_limited", {"Retry-After": "1"}))
        sender = ChannelSender(channel(r.url, retry_base=0.05), Outbox(store), tick=0.01, clock=clock)
        asyncio.run(run_until([sender], lambda: statuses(store) == ["sent", "sent"]))
        got = r.requests
    assert len(got) == 3
    # nothing at all reaches the channel during the pause, not even the other alert
    assert got[1].at - got[0].at >= 1.0
    assert statuses(store) == ["sent", "sent"]


def test_alerts_delivery_dead_after_max_attempts_then_cli_retry(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from beacons.cli import main

    store = Store(database)
    beacon_id = add_beacon(store, ["hook"])
    with Receiver() as r:
        r.default = Reply(500)
        sender = ChannelSender(channel(r.url, retry_base=0.02, max_attempts=3), Outbox(store), tick=0.01)
        asyncio.run(run_until([sender], lambda: statuses(store) == ["dead"]))
        assert len(r.requests) == 3
        row = Outbox(store).rows()[0]
        assert (
            row.status == "dead" and row.attempts == 3 and row.last_error == "HTTP 500: ok" and row.http_status == 500
        )
        cfg = tmp_path / "config.yaml"
        cfg.write_text(
            f"database: {store.database}\nalerts:\n  - kind: webhook\n    name: hook\n    url: {r.url}\n    secret: {SECRET}\n"
        )
        assert main(["alerts", "list", "--config", str(cfg), "--status", "dead"]) == 0
        assert f"beacon-{beacon_id}-hook" in capsys.readouterr().out
        assert main(["alerts", "retry", "--config", str(cfg), "--dead"]) == 0
        r.default = Reply(200)
        asyncio.run(
            run_until([ChannelSender(channel(r.url), Outbox(store), tick=0.01)], lambda: statuses(store) == ["sent"])
        )
        assert len(r.requests) == 4 and r.requests[-1].key == f"beacon-{beacon_id}-hook"
    assert statuses(store) == ["sent"]


def test_alerts_delivery_permanent_4xx_is_dead_at_once(database: str, tmp_path: Path) -> None:
    store = Store(database)
    add_beacon(store, ["hook"])
    with Receiver() as r:
        r.default = Reply(404, b"channel_not_found")
        asyncio.run(
            run_until([ChannelSender(channel(r.url), Outbox(store), tick=0.01)], lambda: statuses(store) == ["dead"])
        )
        assert len(r.requests) == 1
    row = Outbox(store).rows()[0]
    assert (row.status, row.last_error) == ("dead", "HTTP 404: channel_not_found")


def test_alerts_delivery_dead_receiver_blocks_no_other_channel(database: str, tmp_path: Path) -> None:
    store = Store(database)
    add_beacon(store, ["slow", "fast"])
    add_beacon(store, ["slow", "fast"])
    with Receiver() as slow, Receiver() as fast:
        slow.default = HANG
        senders = [
            # Its timeout is past the hang guard: if the hung send held up the other channel,
            # the fast receiver would not get both alerts before the guard fails the test.
            ChannelSender(channel(slow.url, name="slow", timeout=2 * HANG_GUARD), Outbox(store), tick=0.01),
            ChannelSender(channel(fast.url, name="fast"), Outbox(store), tick=0.01),
        ]
        senders[0].stop_grace = 0.1
        asyncio.run(run_until(senders, lambda: len(fast.requests) == 2 and len(slow.requests) == 1))
        assert len(fast.requests) == 2
        assert len(slow.requests) == 1  # and still hung when the fast ones arrived
    assert statuses(store, "fast") == ["sent", "sent"]
    # stopping during the hung request gave the row back, unsent and uncounted
    assert [(r.status, r.attempts) for r in Outbox(store).rows(channel="slow")] == [("pending", 0), ("pending", 0)]


def test_alerts_delivery_timeout_and_connection_refused_are_retried(database: str, tmp_path: Path) -> None:
    store = Store(database)
    add_beacon(store, ["hook"])
    with Receiver() as r:
        r.script(HANG)
        asyncio.run(
            run_until(
                [ChannelSender(channel(r.url, timeout=0.3, retry_base=10), Outbox(store), tick=0.01)],
                lambda: Outbox(store).rows()[0].attempts == 1,
            )
        )
        row = Outbox(store).rows()[0]
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "timed out after 0.3s")
        url = r.url
    Outbox(store).retry(ids=[row.id], now=time.time())  # due now, and the receiver is down
    asyncio.run(
        run_until(
            [ChannelSender(channel(url, retry_base=10), Outbox(store), tick=0.01)],
            lambda: Outbox(store).rows()[0].attempts == 1,
        )
    )
    row = Outbox(store).rows()[0]
    assert (
        row.status == "pending"
        and row.last_error is not None
        and row.last_error.startswith("request failed: ConnectError")
    )
    assert "127.0.0.1" not in row.last_error or "/hook" not in row.last_error


def test_alerts_delivery_rate_limit_spaces_requests(database: str, tmp_path: Path) -> None:
    store = Store(database)
    for _ in range(4):
        add_beacon(store, ["hook"])
    clock = FakeClock.starting_now()
    with Receiver(clock=clock) as r:
        sender = ChannelSender(channel(r.url, rate_limit=5.0), Outbox(store), tick=0.01, clock=clock)
        asyncio.run(run_until([sender], lambda: statuses(store) == ["sent"] * 4))
        got = r.requests
    assert len(got) == 4
    assert all(b.at - a.at >= 0.2 for a, b in pairwise(got))  # 5 per second, in the sender's time: never a burst


def test_alerts_delivery_never_logs_or_stores_url_or_secret(database: str, tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    store = Store(database)
    add_beacon(store, ["hook"])
    add_beacon(store, ["hook"])
    with Receiver() as r, capture_logs() as logs:
        r.script(Reply(500, f"echo of {r.url}".encode()))
        sender = ChannelSender(channel(r.url, retry_base=0.05), Outbox(store), tick=0.01)
        asyncio.run(run_until([sender], lambda: statuses(store) == ["sent", "sent"]))
        url = r.url
    assert {e["event"] for e in logs} >= {"alert.sent", "alert.retry"}
    assert all(url not in str(e) and SECRET not in str(e) for e in logs)
    assert any(e.get("error") == "HTTP 500: echo of [url]" for e in logs)  # a receiver echoing the URL is scrubbed
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("beacons.db*"))
    assert url.encode() not in stored and SECRET.encode() not in stored and b"/hook" not in stored
