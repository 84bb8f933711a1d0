"""youtube_search (issue 15): videos from search.list, comments from commentThreads.list, the daily quota.

Fixtures follow the YouTube Data API v3 reference: a ``youtube#searchListResponse``
(``items[].id.videoId``, ``items[].snippet``, ``nextPageToken``), a
``youtube#commentThreadListResponse`` (``items[].snippet.topLevelComment`` and
``items[].replies.comments``, each a ``youtube#comment``) and Google's JSON
error body (``error.code``, ``error.message``, ``error.errors[].reason``, e.g.
``quotaExceeded`` with HTTP 403).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from helpers_clock import FakeClock
from helpers_search import (
    ACME,
    FIXTURES,
    JSON_TYPE,
    SPECS,
    FixtureSite,
    make_source,
    mention_record,
    poll_kind,
    respond,
)
from structlog.testing import capture_logs

from beacons.classify import RulesClassifier
from beacons.config import parse_config
from beacons.errors import ConfigError, HTTPStatusError
from beacons.feedserver import FeedServer
from beacons.fetch import FetchLimits, Politeness, make_client
from beacons.pipeline import Pipeline
from beacons.redact import forget, scrub
from beacons.storage import Storage
from collectors.youtube_search import next_reset, parse_comments_page, quota_day, spent_today

DIR = FIXTURES / "youtube_search"
KEY = "AIzaSyD-fake-test-key-0123456789abcdef"
CHANNEL = "UCa1cMeR0uT3rXoFf1c1aL00"
# 09:00 UTC on 2026-11-23 is 01:00 PST: the quota day is the 23rd, and it resets at 08:00 UTC on the 24th
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RESET = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Any:
    yield
    forget()


class Site:
    """The two endpoints on one loopback server, answering from the fixtures."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.search = FixtureSite(server, SPECS["youtube_search"])
        server.add("/youtube/v3/commentThreads", self._comments)
        self.comments_status = 200

    def _comments(self, req: BaseHTTPRequestHandler) -> None:
        if self.comments_status != 200:
            respond(req, self.comments_status, (DIR / "error_500.json").read_bytes(), JSON_TYPE)
            return
        respond(req, 200, (DIR / "comments_page1.json").read_bytes(), JSON_TYPE)

    def comment_queries(self) -> list[dict[str, str]]:
        hits = self.server.hits("/youtube/v3/commentThreads")
        return [{k: v[-1] for k, v in parse_qs(h["query"]).items()} for h in hits]


def _source(base_url: str, **extra: Any) -> Any:
    return make_source(SPECS["youtube_search"], base_url, token_env="YT_KEY", **extra)


def _expected(name: str) -> list[dict[str, Any]]:
    return list(json.loads((DIR / f"{name}.expected.json").read_text(encoding="utf-8")))


def test_youtube_search_comments_are_one_mention_each_with_their_own_link() -> None:
    page = parse_comments_page((DIR / "comments_page1.json").read_bytes(), source_id="s")
    records = [mention_record(m) for m in page.mentions]
    assert records == _expected("comments_page1")
    assert [r["url"].split("&lc=")[1] for r in records] == [
        "UgzQ3fR8kLm2Wx5Tn1B4AaABAg.9xYz1AbCdEf9xYz2GhIjKl",  # a reply is its own mention
        "UgzQ3fR8kLm2Wx5Tn1B4AaABAg",
        "UgxK7pL2mN9qR4sT6vW8AaABAg",
    ]
    assert all(r["url"].startswith("https://www.youtube.com/watch?v=Ac9mE4rX2yZ&lc=") for r in records)


def test_youtube_search_reads_videos_then_channel_comments_with_the_key_in_a_header(feed_server: FeedServer) -> None:
    site = Site(feed_server)
    source = _source(site.server.base_url, channel_id=CHANNEL)
    clock = FakeClock(NOW)
    poll, _ = asyncio.run(poll_kind(source, env={"YT_KEY": KEY}, clock=clock, cursor="2026-11-22T12:00:00Z"))
    search = site.search.queries()
    assert search[0] == {
        "part": "snippet",
        "type": "video",
        "order": "date",
        "q": "RouterX",
        "maxResults": "3",
        "publishedAfter": "2026-11-22T12:00:00Z",
    }
    assert search[1]["pageToken"] == "CAMQAA"
    assert site.comment_queries() == [
        {
            "part": "snippet",
            "allThreadsRelatedToChannelId": CHANNEL,
            "order": "time",
            "textFormat": "plainText",
            "maxResults": "100",
            "searchTerms": "RouterX",
        }
    ]
    every = [*site.search.requests, *feed_server.hits("/youtube/v3/commentThreads")]
    assert all(r["headers"].get("X-Goog-Api-Key") == KEY and KEY not in r["query"] for r in every)
    urls = [m.url for m in poll.mentions]
    assert "https://www.youtube.com/watch?v=Ac9mE4rX2yZ&lc=UgzQ3fR8kLm2Wx5Tn1B4AaABAg" in urls
    assert "https://www.youtube.com/watch?v=q8LmX2vT0aE" in urls
    # two search pages (100 units each) and one commentThreads page (1 unit), on the Pacific day of the clock
    assert json.loads(poll.quota or "") == {"day": "2026-11-23", "used": 201}
    assert poll.cursor == "2026-11-23T18:30:00Z"


@pytest.mark.parametrize(
    ("now", "day", "reset"),
    [
        (NOW, "2026-11-23", RESET),  # PST, UTC-8
        (datetime(2026, 11, 23, 7, 59, tzinfo=UTC), "2026-11-22", datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "2026-07-01", datetime(2026, 7, 2, 7, 0, tzinfo=UTC)),  # PDT
    ],
)
def test_youtube_search_quota_day_is_the_pacific_date(now: datetime, day: str, reset: datetime) -> None:
    assert quota_day(now) == day
    assert next_reset(now) == reset


@pytest.mark.parametrize(
    ("stored", "used"),
    [
        ('{"day": "2026-11-23", "used": 4200}', 4200),
        ('{"day": "2026-11-22", "used": 9900}', 0),  # yesterday's units do not count today
        ("not json", 0),
        (None, 0),
    ],
)
def test_youtube_search_spent_today_reads_the_stored_record(stored: str | None, used: int) -> None:
    assert spent_today(stored, NOW) == used


def test_youtube_search_slows_down_so_the_quota_lasts_until_the_reset(feed_server: FeedServer) -> None:
    site = Site(feed_server)
    source = _source(site.server.base_url, daily_quota=1000)
    with capture_logs() as logs:
        poll, ctx = asyncio.run(poll_kind(source, env={"YT_KEY": KEY}, clock=FakeClock(NOW)))
    assert json.loads(poll.quota or "")["used"] == 100
    # 900 units left = 9 more polls, spread over the 23 h (+1 min margin) until midnight Pacific
    expected = ((RESET - NOW).total_seconds() + 60) / 9
    assert ctx.retry_after == pytest.approx(expected)
    assert [e["wait"] for e in logs if e["event"] == "youtube.quota_pacing"] == [round(expected)]


def test_youtube_search_waits_for_the_reset_when_the_quota_is_spent(feed_server: FeedServer) -> None:
    site = Site(feed_server)
    source = _source(site.server.base_url)
    stored = json.dumps({"day": "2026-11-23", "used": 9950})
    with capture_logs() as logs:
        poll, ctx = asyncio.run(poll_kind(source, env={"YT_KEY": KEY}, clock=FakeClock(NOW), cursor=None, quota=stored))
    assert site.search.requests == [], "no call is made once a search no longer fits in the quota"
    assert poll.mentions == []
    assert ctx.retry_after == (RESET - NOW).total_seconds() + 60
    exhausted = [e for e in logs if e["event"] == "youtube.quota_exhausted"]
    assert exhausted and exhausted[0]["resets_at"] == "2026-11-24T08:00:00Z"


def test_youtube_search_quota_exceeded_error_waits_for_the_reset_and_hides_the_key(feed_server: FeedServer) -> None:
    site = Site(feed_server)
    site.search.fail(403, (DIR / "quota_exceeded.json").read_bytes(), JSON_TYPE)
    source = _source(site.server.base_url)
    with pytest.raises(HTTPStatusError) as info:
        asyncio.run(poll_kind(source, env={"YT_KEY": KEY}, clock=FakeClock(NOW)))
    message = str(info.value)
    assert "HTTP 403 quotaExceeded" in message and "2026-11-24T08:00:00Z" in message
    assert info.value.retry_after == (RESET - NOW).total_seconds() + 60
    assert KEY not in message and KEY not in scrub(f"x {KEY} y")


def test_youtube_search_quota_survives_a_restart(feed_server: FeedServer, database: str) -> None:
    """The units spent are stored with the source (SQLite and PostgreSQL), so a new process keeps counting."""
    site = Site(feed_server)
    source = _source(site.server.base_url, channel_id=CHANNEL)
    clock = FakeClock(NOW)

    async def one_process() -> None:
        store = Storage(database)
        store.sync_sources([source])
        limits = FetchLimits(timeout=10.0)
        async with make_client(limits, httpx.AsyncHTTPTransport()) as client:
            pipeline = Pipeline(
                store=store,
                client=client,
                classifier=RulesClassifier(),
                brands=[ACME],
                limits=limits,
                politeness=Politeness(per_host=2, delay=0.0),
                env={"YT_KEY": KEY},
                clock=clock,
            )
            result = await pipeline.poll_source(source)
            assert result.status == "ok", result.error
        store.close()

    asyncio.run(one_process())
    asyncio.run(one_process())  # a restart: a new Storage and Pipeline
    with Storage(database) as store:
        assert json.loads(store.source_state(source.id).quota or "") == {"day": "2026-11-23", "used": 202}
    clock.set(RESET)  # the next Pacific day starts from zero
    asyncio.run(one_process())
    with Storage(database) as store:
        assert json.loads(store.source_state(source.id).quota or "") == {"day": "2026-11-24", "used": 101}


def test_youtube_search_needs_an_api_key_for_google(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.token_env: is required"):
        parse_config("sources:\n  - kind: youtube_search\n    query: RouterX\n", env={})
    with pytest.raises(ConfigError, match=r"sources\[0\]\.channel_id: expected a channel id"):
        parse_config("sources:\n  - kind: youtube_search\n    token_env: YT_KEY\n    channel_id: acme\n", env={})


def test_youtube_search_comment_failure_fails_the_poll_with_the_reason(feed_server: FeedServer) -> None:
    site = Site(feed_server)
    site.comments_status = 500
    source = _source(site.server.base_url, channel_id=CHANNEL)
    with pytest.raises(HTTPStatusError, match="HTTP 500 backendError: Internal error encountered"):
        asyncio.run(poll_kind(source, env={"YT_KEY": KEY}, clock=FakeClock(NOW)))


def test_youtube_search_default_query_ors_the_brand_terms_and_negates_exclusions(feed_server: FeedServer) -> None:
    site = Site(feed_server)
    asyncio.run(poll_kind(_source(site.server.base_url, query=None), env={"YT_KEY": KEY}, clock=FakeClock(NOW)))
    assert site.search.queries()[0]["q"] == 'Acme|"Acme Corp"|acme.com|RouterX|"Acme Cloud" -"acme looney tunes"'


def test_youtube_search_page_expected_fixtures_match(feed_server: FeedServer) -> None:
    site = Site(feed_server)
    poll, _ = asyncio.run(poll_kind(_source(site.server.base_url), env={"YT_KEY": KEY}, clock=FakeClock(NOW)))
    assert [mention_record(m) for m in poll.mentions] == _expected("page1")
    assert urlsplit(site.search.requests[0]["path"]).path == "/youtube/v3/search"
