"""Issue 13 §4: the daemon reloads config.yaml on SIGHUP without dropping polls in flight; a bad config is refused.

A real daemon process (``python daemon.py``), its JSON log lines read as they
come; every wait is on a logged event or a request the feed server saw, never
on elapsed time (HANG_GUARD only catches a hang).
"""

from __future__ import annotations

import json
import os
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
from conftest import WriteConfig
from helpers_feeds import BRANDS_YAML, SUPPORT_TEXTS, rss_source_config, texts_feed

from beacons.feedserver import FeedServer, Resource

REPO = Path(__file__).resolve().parents[1]
HANG_GUARD = 60.0
GIZMO_TEXTS = ("My GizmoHub will not pair since the update, how do I fix this?",)
GIZMO = {"name": "Gizmo", "aliases": ["GizmoHub"]}


class DaemonLog:
    """The daemon's JSON log events, collected by a reader thread as they are written."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                if line.startswith("{"):
                    self.events.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, what: str, cond: Callable[[dict[str, Any]], bool], start: int = 0) -> int:
        """The index of the first event from ``start`` on that ``cond`` accepts; fails if the daemon exits first."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: any(cond(e) for e in self.events[start:]) or self.proc.poll() is not None, HANG_GUARD
            )
            found = [i for i, e in enumerate(self.events) if i >= start and cond(e)]
        if not ok or not found:
            pytest.fail(f"daemon never logged {what}: rc={self.proc.poll()}\n{''.join(self.lines)[-4000:]}")
        return found[0]

    def close(self) -> None:
        self._thread.join(HANG_GUARD)


@contextmanager
def daemon(config: Path, cwd: Path) -> Iterator[DaemonLog]:
    env = {k: v for k, v in os.environ.items() if k != "BEACONS_CONFIG"}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "daemon.py"), "--config", str(config)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = DaemonLog(proc)
    try:
        yield log
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=HANG_GUARD)
        log.close()
        assert proc.stderr is not None
        proc.stderr.close()


def wait_for_hit(server: FeedServer, path: str, log: DaemonLog) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not server.hits(path):
        if log.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"daemon never polled {path}: rc={log.proc.poll()}\n{''.join(log.lines)[-3000:]}")
        time.sleep(0.02)


def polled(source: str, status: str = "ok") -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "source.polled" and e.get("source") == source and e.get("status") == status


def event(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == name


def stop(log: DaemonLog) -> None:
    log.proc.send_signal(signal.SIGTERM)
    assert log.proc.wait(timeout=HANG_GUARD) == 0, "".join(log.lines)[-3000:]


def test_daemon_sighup_reloads_sources_and_brands_and_finishes_the_poll_in_flight(
    feed_server: FeedServer, write_config: WriteConfig, db_path: Path, tmp_path: Path
) -> None:
    answer = threading.Event()
    feed_server.add("/a.xml", Resource(texts_feed(SUPPORT_TEXTS), hold=answer))
    feed_server.add("/b.xml", Resource(texts_feed(GIZMO_TEXTS, host="gizmo.example")))
    path = write_config(rss_source_config({"a": feed_server.url("/a.xml")}, logging={"format": "json"}))
    try:
        with daemon(path, tmp_path) as log:
            log.wait_for("daemon.started", event("daemon.started"))
            wait_for_hit(feed_server, "/a.xml", log)  # a's first poll is in flight, held by the server
            # The new config: source a removed, source b added, a brand b's post names.
            new = rss_source_config({"b": feed_server.url("/b.xml")}, logging={"format": "json"})
            write_config({**new, "brands": [*BRANDS_YAML, GIZMO]})
            log.proc.send_signal(signal.SIGHUP)
            reloaded = log.wait_for("config.reloaded", event("config.reloaded"))
            assert (log.events[reloaded]["added"], log.events[reloaded]["removed"]) == (["b"], ["a"])
            answer.set()  # only now does a's poll, begun under the old config, get its answer
            log.wait_for("a's poll stored", polled("a"))
            log.wait_for("b polled with the new brand", lambda e: polled("b")(e) and e.get("new") == 1)
            stop(log)
    finally:
        answer.set()
    assert len(feed_server.hits("/a.xml")) == 1  # a removed source is not polled again
    conn = sqlite3.connect(db_path)
    try:
        by_source = dict(conn.execute("SELECT source_id, COUNT(*) FROM mentions GROUP BY source_id").fetchall())
        brands = {r[0] for r in conn.execute("SELECT brand FROM mentions WHERE source_id = 'b'")}
    finally:
        conn.close()
    assert by_source == {"a": 3, "b": 1} and brands == {"Gizmo"}


def test_daemon_sighup_refuses_a_bad_config_and_keeps_polling_with_the_old_one(
    feed_server: FeedServer, write_config: WriteConfig, tmp_path: Path
) -> None:
    feed_server.add("/a.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    good = rss_source_config({"a": feed_server.url("/a.xml")}, logging={"format": "json"})
    path = write_config(good)
    with daemon(path, tmp_path) as log:
        log.wait_for("a's first poll", polled("a"))
        bad = {**good, "sources": [{**good["sources"][0], "interval": "soon"}], "brandz": []}
        write_config(bad)
        log.proc.send_signal(signal.SIGHUP)
        refused = log.wait_for("config.reload_refused", event("config.reload_refused"))
        problems = " ".join(log.events[refused]["problems"])
        assert 'sources[0].interval: expected a duration like 5m, got "soon"' in problems
        assert "brandz: unknown key" in problems
        log.wait_for("a polled again under the old config", polled("a", "not_modified"), refused)
        write_config(good)  # fixed: the next SIGHUP applies it
        log.proc.send_signal(signal.SIGHUP)
        log.wait_for("config.reloaded", event("config.reloaded"), refused)
        stop(log)
    assert not any(e["event"] == "config.reloaded" for e in log.events[:refused])
