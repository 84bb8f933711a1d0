"""The sender inside the daemon: crash safety under SIGKILL, polling never blocked, ``--once``, ``alerts test``."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_alerts import HANG, Receiver, Reply, reset_logging  # noqa: F401

from beacons.alerts.outbox import epoch
from beacons.config import parse_config
from beacons.daemon import run
from beacons.feedserver import FeedServer, Resource

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD = 60.0  # seconds; only a hang reaches it (issue 10: nothing here is timed)
SECRET = "daemon-secret-0123456789"
FORUM = resources.files("beacons").joinpath("data/demo/forum.atom").read_bytes()
BRANDS = [
    {
        "name": "Acme",
        "aliases": ["Acme Corp"],
        "handles": ["@AcmeSupport"],
        "products": [{"name": "RouterX", "aliases": ["RX-200"]}, {"name": "Acme Cloud"}],
    }
]


def config_text(db: Path, feed_url: str, channels: list[dict[str, Any]], interval: str = "1h") -> str:
    data = {
        "database": str(db),
        "brands": BRANDS,
        "sources": [{"id": "forum", "kind": "rss", "url": feed_url, "interval": interval}],
        "classifier": {"model": "rules"},
        "fetch": {"per_host_delay": "0s"},
        "alerts": channels,
        "logging": {"level": "info", "format": "json"},
    }
    return str(yaml.safe_dump(data, sort_keys=False))


def hook(url: str, name: str = "hook", **kw: Any) -> dict[str, Any]:
    return {
        "kind": "webhook",
        "name": name,
        "url": url,
        "secret": SECRET,
        "rate_limit": 100,
        "spikes": {"enabled": False},
        **kw,
    }


def outbox(db: Path) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT event_id, status, next_attempt_at FROM outbox ORDER BY id").fetchall()
    finally:
        conn.close()  # ``with sqlite3.connect()`` only commits


@pytest.fixture
def forum() -> Any:
    with FeedServer() as server:
        server.add("/forum.atom", Resource(FORUM, content_type="application/atom+xml; charset=utf-8"))
        yield server


def test_alerts_daemon_sigkill_mid_send_delivers_after_restart(tmp_path: Path, forum: FeedServer) -> None:
    db = tmp_path / "beacons.db"
    cfg = tmp_path / "config.yaml"
    with Receiver() as r:
        r.default = HANG  # the first send hangs: the beacon is stored, its alert is not delivered
        cfg.write_text(config_text(db, forum.url("/forum.atom"), [hook(r.url, timeout="1.5s")], interval="1s"))
        with (tmp_path / "daemon.log").open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "daemon.py", "--config", str(cfg)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                r.wait_for(1, timeout=HANG_GUARD)
            finally:
                proc.kill()
                proc.wait(HANG_GUARD)
        rows = outbox(db)
        assert len(rows) >= 3 and [s for _, s, _ in rows].count("sending") == 1
        assert all(s in ("pending", "sending") for _, s, _ in rows)  # nothing was marked sent
        hung = r.requests[0].key
        # Restart once the dead process's lease on the hung row has run out.
        lease_ends = max(epoch(n) or 0.0 for _, s, n in rows if s == "sending")
        time.sleep(max(0.0, lease_ends - time.time() + 0.1))
        r.default = Reply(200)
        done = subprocess.run(
            [sys.executable, "daemon.py", "--config", str(cfg), "--once"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        delivered = [x.key for x in r.requests[1:]]
    event_ids = [e for e, _, _ in rows]
    assert sorted(k or "" for k in delivered) == sorted(event_ids)  # every alert, each once, the hung one included
    assert hung in delivered
    assert [s for _, s, _ in outbox(db)] == ["sent"] * len(rows)


def test_alerts_daemon_hung_receiver_blocks_neither_polling_nor_other_channels(
    tmp_path: Path, forum: FeedServer
) -> None:
    db = tmp_path / "beacons.db"
    with Receiver() as slow, Receiver() as fast:
        slow.default = HANG
        config = parse_config(
            config_text(
                db,
                forum.url("/forum.atom"),
                [hook(slow.url, "slow", timeout="120s"), hook(fast.url, "fast")],
                interval="1s",
            )
        )

        async def scenario() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(run(config, stop=stop, install_signals=False))

            async def both() -> None:
                while not (
                    len(forum.hits("/forum.atom")) >= 2 and fast.requests and len(fast.requests) >= len(outbox(db)) // 2
                ):
                    await asyncio.sleep(0.05)

            try:
                # The slow channel's timeout (120 s) is past this hang guard: polling and the fast
                # channel must get on while its one request hangs.
                await asyncio.wait_for(both(), HANG_GUARD)
            finally:
                stop.set()
                await asyncio.wait_for(task, HANG_GUARD)

        asyncio.run(scenario())
        assert len(forum.hits("/forum.atom")) >= 2  # the source kept polling while a receiver hung
        assert len(slow.requests) == 1
        rows = outbox(db)
        assert sorted(x.key or "" for x in fast.requests) == sorted(e for e, _, _ in rows if e.endswith("-fast"))


def test_alerts_daemon_once_drains_and_alerts_test_cli(
    tmp_path: Path, forum: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from beacons.cli import main

    db = tmp_path / "beacons.db"
    cfg = tmp_path / "config.yaml"
    with Receiver() as r:
        cfg.write_text(config_text(db, forum.url("/forum.atom"), [hook(r.url)]))
        assert main(["run", "--once", "--config", str(cfg)]) == 0
        assert len(r.requests) == len(outbox(db)) >= 3 and {s for _, s, _ in outbox(db)} == {"sent"}
        capsys.readouterr()
        assert main(["alerts", "test", "hook", "--config", str(cfg)]) == 0
        assert (
            r.requests[-1].json["type"] == "test" and "sent a test alert to hook: HTTP 200" in capsys.readouterr().out
        )
        r.default = Reply(500, b"nope")
        assert main(["alerts", "test", "hook", "--config", str(cfg)]) == 1
        assert "HTTP 500: nope" in capsys.readouterr().err
        assert main(["alerts", "test", "nosuch", "--config", str(cfg)]) == 2
        assert main(["alerts", "list", "--config", str(cfg), "--format", "json", "--status", "dead"]) == 0
        dead = yaml.safe_load(capsys.readouterr().out)
    assert [(d["kind"], d["status"], d["last_error"]) for d in dead] == [("test", "dead", "HTTP 500: nope")]
    assert r.url not in str(dead) and SECRET not in str(dead)
