"""The Sources page and its API (issue 13 §6), on both backends: health per source with secrets scrubbed, role
checks, and pause / poll now stored so a fleet's lease and a single daemon's loop both honour them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import structlog
import yaml
from helpers_clock import FakeClock
from helpers_queue import TOKEN, config_data
from helpers_queue import fresh_logging as fresh_logging  # autouse: structlog writes to the current stdout
from structlog.testing import capture_logs

from beacons import users
from beacons.config import Config, parse_config
from beacons.daemon import CONTROL_CHECK, SCHEDULE_MAX_AGE, Schedules, _wait_until_due, _wait_while_paused
from beacons.storage import Storage
from beacons.web.server import WebServer

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SECRET = "s3cr3t-feed-token-0042"
SOURCES = [
    {"id": "forum", "kind": "rss", "url": f"https://forum.example/feed.rss?token={SECRET}", "interval": "5m"},
    {"id": "blog", "kind": "rss", "url": "https://blog.example/feed.xml", "interval": "10m"},
]


@pytest.fixture
def config(database: str) -> Config:
    data = config_data(database, serve={"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 1})
    return parse_config(yaml.safe_dump({**data, "sources": SOURCES}), env={}, path="<test>")


@pytest.fixture
def store(config: Config) -> Iterator[Storage]:
    with Storage(config.database) as s:
        s.sync_sources(config.sources)
        yield s


def test_sources_pause_keeps_a_source_out_of_the_fleets_leases(store: Storage) -> None:
    assert store.pause_source("forum", "lena", now=NOW)
    assert store.lease_due("w1", now=NOW, lease=60, limit=10) == ["blog"]
    store.release_source("blog", "w1", next_poll_at=NOW + timedelta(hours=1))
    assert store.lease_due("w1", now=NOW, lease=60, limit=10) == []
    store.resume_source("forum", now=NOW)
    assert store.lease_due("w2", now=NOW, lease=60, limit=10) == ["forum"]
    store.release_source("forum", "w2", next_poll_at=NOW + timedelta(hours=1))
    store.request_poll("blog", now=NOW + timedelta(minutes=1))  # poll now: due at once for any worker
    assert store.lease_due("w3", now=NOW + timedelta(minutes=1), lease=60, limit=10) == ["blog"]


class HookedClock(FakeClock):
    """A fake clock that runs ``hook(n)`` before its n-th wait: the test's other actor, at an exact time."""

    def __init__(self, hook: Any) -> None:
        super().__init__(NOW)
        self.hook, self.waits = hook, 0

    async def wait(self, event: asyncio.Event | None, seconds: float) -> bool:
        self.waits += 1
        self.hook(self.waits)
        return await super().wait(event, seconds)


def test_sources_daemon_loop_wakes_for_poll_now(config: Config, store: Storage) -> None:
    source = config.sources[0]
    due = NOW + timedelta(hours=1)
    store.set_next_poll(source.id, due)
    clock = HookedClock(lambda n: store.request_poll(source.id, now=clock.now()) if n == 3 else None)
    service = SimpleNamespace(store=store, clock=clock, schedules=Schedules(store, clock))
    assert asyncio.run(_wait_until_due(service, source, asyncio.Event(), due))  # type: ignore[arg-type]
    assert clock.now() == NOW + timedelta(seconds=3 * CONTROL_CHECK)  # woke at the first check after the request


def test_sources_daemon_loops_share_one_read_of_the_schedules(config: Config, store: Storage) -> None:
    """Every waiting source loop reads the one shared snapshot; the database is read again only once it is
    SCHEDULE_MAX_AGE old, and a loop's own new next poll is seen at once."""
    reads = []

    class Counting(Storage):
        def source_schedules(self) -> dict[str, tuple[bool, datetime | None]]:
            reads.append(1)
            return super().source_schedules()

    clock = FakeClock(NOW)
    with Counting(config.database) as counted:
        schedules = Schedules(counted, clock)
        assert [schedules.get(s.id) for s in config.sources] == [(False, None), (False, None)]
        store.request_poll("blog", now=NOW)
        assert schedules.get("blog") == (False, None) and len(reads) == 1  # one query served every loop
        clock.advance(SCHEDULE_MAX_AGE)
        assert schedules.get("blog") == (False, NOW) and len(reads) == 2  # the request, in the next read
        schedules.planned("forum", NOW + timedelta(minutes=5))
        assert schedules.get("forum") == (False, NOW + timedelta(minutes=5)) and len(reads) == 2


def test_sources_daemon_loop_holds_a_paused_source_until_resumed(config: Config, store: Storage) -> None:
    source = config.sources[0]
    store.pause_source(source.id, "lena", now=NOW)
    clock = HookedClock(lambda n: store.resume_source(source.id, now=clock.now()) if n == 4 else None)
    service = SimpleNamespace(store=store, clock=clock, schedules=Schedules(store, clock))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))  # the events are info
    with capture_logs() as logs:
        assert asyncio.run(_wait_while_paused(service, source, asyncio.Event()))  # type: ignore[arg-type]
    assert clock.now() == NOW + timedelta(seconds=4 * CONTROL_CHECK)
    assert [e["event"] for e in logs] == ["source.paused", "source.resumed"]
    stop = asyncio.Event()
    stop.set()
    store.pause_source(source.id, "lena", now=NOW)
    assert not asyncio.run(_wait_while_paused(service, source, stop))  # type: ignore[arg-type]


@pytest.fixture
def served(config: Config) -> Iterator[tuple[WebServer, dict[str, str]]]:
    tokens = {}
    with Storage(config.database) as store:
        for name, role in (("lena", "lead"), ("bob", "agent")):
            store.add_user(name, role, now=NOW)
            tokens[name] = users.issue_token(store, name, now=NOW)
        store.sync_sources(config.sources)
        store.record_error("forum", f"HTTP 500 from https://forum.example/feed.rss?token={SECRET}", now=NOW)
    server = WebServer(config)
    server.start(poll_interval=0.05)
    try:
        yield server, tokens
    finally:
        server.stop()


def test_sources_api_lists_scrubbed_health_and_checks_roles(served: tuple[WebServer, dict[str, str]]) -> None:
    server, tokens = served
    lead, agent = ({"Authorization": f"Bearer {tokens[n]}"} for n in ("lena", "bob"))
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.get("/api/sources", headers=agent)
        assert r.status_code == 403 and "lead role" in r.json()["error"]["message"]
        assert c.post("/api/sources/forum/pause", json={}, headers=agent).status_code == 403
        body = c.get("/api/sources", headers=lead).json()
        forum = next(s for s in body["sources"] if s["id"] == "forum")
        assert (forum["kind"], forum["status"], forum["broken"], forum["paused"]) == ("rss", "error", True, False)
        assert forum["backoff"] == "backing off: 1 failed poll in a row"
        assert forum["last_error"].startswith("HTTP 500 from https://forum.example/feed.rss?token=")
        assert SECRET not in r.text + c.get("/api/sources", headers=lead).text
        r = c.post("/api/sources/forum/pause", json={}, headers=lead)
        assert r.status_code == 200 and r.json()["source"]["paused_by"] == "lena"
        assert r.json()["source"]["status"] == "paused"
        r = c.post("/api/sources/forum/resume", json={}, headers=lead)
        assert r.json()["source"]["paused"] is False
        r = c.post("/api/sources/blog/poll", json={}, headers=lead)
        assert r.status_code == 200 and r.json()["source"]["next_poll_at"] is not None
        assert c.post("/api/sources/nope/poll", json={}, headers=lead).status_code == 404
        assert c.post("/api/sources/blog/explode", json={}, headers=lead).status_code == 404
        page = c.get("/sources", headers={**lead, "Accept": "text/html"})
        assert page.status_code == 200 and 'class="broken"' in page.text and SECRET not in page.text
        assert c.get("/sources", headers={**agent, "Accept": "text/html"}).status_code == 403
        # the top bar links the pages each role may open: everyone Insights, leads also Sources
        assert 'href="/insights"' in page.text and 'href="/sources"' in page.text
        board = c.get("/", headers={**agent, "Accept": "text/html"})
        assert board.status_code == 200 and 'href="/insights"' in board.text and 'href="/sources"' not in board.text
