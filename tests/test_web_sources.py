"""The Sources page and its API (issue 13 §6), on both backends: health per source with secrets scrubbed, role
checks, and pause / poll now stored so a fleet's lease and a single daemon's loop both honour them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml
from helpers_clock import FakeClock
from helpers_queue import TOKEN, config_data
from helpers_queue import fresh_logging as fresh_logging  # autouse: structlog writes to the current stdout

from beacons import users
from beacons.config import Config, parse_config
from beacons.daemon import SCHEDULE_MAX_AGE, Schedules
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
