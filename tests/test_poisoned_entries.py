"""Issue 10, section 5: one poisoned item costs one item, never the poll.

Each case is a real-format fixture with one bad entry among good ones, served
on 127.0.0.1 and polled through the real pipeline into a SQLite file: the
good entries are stored, ``skipped`` is 1, and a ``mention.skipped`` event
names the bad entry. Before the fix each of these polls stored nothing and
failed the same way on every poll.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers_db import rows, scalar
from helpers_search import SPECS, FixtureSite, make_source, open_pipeline
from structlog.testing import capture_logs

from beacons.feedserver import FeedServer, Resource
from beacons.models import Mention, Source
from beacons.pipeline import PollResult

RSS_FIXTURE = Path(__file__).parent / "fixtures" / "rss" / "rss20_surrogate_reference.xml"


def poll(db: Path, source: Source) -> tuple[PollResult, list[tuple[Any, ...]], list[dict[str, Any]]]:
    """One poll through the real pipeline: the result, the stored (guid, url) rows and the log events."""

    async def go() -> tuple[PollResult, list[tuple[Any, ...]]]:
        async with open_pipeline(db, [source]) as (pipeline, store, _):
            result = await pipeline.poll_source(source)
            stored = rows(store, "SELECT guid, url FROM mentions ORDER BY guid")
            assert scalar(store, "SELECT skipped FROM sources WHERE id = ?", [source.id]) == 1
            return result, stored

    with capture_logs() as logs:
        result, stored = asyncio.run(go())
    return result, stored, logs


def skipped_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "mention.skipped"]


def test_pipeline_rss_item_with_a_lone_surrogate_reference_costs_that_item(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    source = make_source(SPECS["rss"], feed_server.base_url)
    feed_server.add(SPECS["rss"].path, Resource(RSS_FIXTURE.read_bytes()))
    result, stored, logs = poll(tmp_path / "b.db", source)
    assert result.status == "ok", result.error
    assert (result.counts["entries"], result.counts["new"], result.counts["skipped"]) == (2, 2, 1)
    assert [guid for guid, _ in stored] == ["packets-0301", "packets-0303"]
    [event] = skipped_events(logs)
    assert event["reason"] == "bad_entry" and "(id=packets-0302)" in event["detail"]
    assert "lone surrogate" in event["detail"]


@pytest.mark.parametrize(
    ("kind", "fixture", "bad_id", "reason"),
    [
        ("github_issues", "poisoned_url", "id=3650000877", "link 'http://[::1/evil' is not a URL"),
        ("stackexchange_search", "poisoned_url", "question_id=1891201", "link 'https://[zzz]/q/1' is not a URL"),
    ],
)
def test_pipeline_search_result_with_an_unparsable_url_costs_that_result(
    feed_server: FeedServer, tmp_path: Path, kind: str, fixture: str, bad_id: str, reason: str
) -> None:
    site = FixtureSite(feed_server, SPECS[kind])
    site.first = fixture
    good = SPECS[kind].expected("page1")[0]
    result, stored, logs = poll(tmp_path / "b.db", make_source(SPECS[kind], site.base_url))
    assert result.status == "ok", result.error
    assert result.counts["skipped"] == 1
    assert result.counts["dropped_no_brand"] == 1  # the Looney Tunes result, as on page1
    assert stored == [(good["guid"], good["url"])]
    [event] = skipped_events(logs)
    assert bad_id in event["detail"] and reason in event["detail"]


def test_pipeline_search_result_with_a_lone_surrogate_escape_costs_that_result(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """JSON may escape a lone surrogate ("\\ud800"): json.loads takes it, no database can store it."""
    site = FixtureSite(feed_server, SPECS["github_issues"])
    site.first = "poisoned_text"
    good = SPECS["github_issues"].expected("page1")[0]
    result, stored, logs = poll(tmp_path / "b.db", make_source(SPECS["github_issues"], site.base_url))
    assert result.status == "ok", result.error
    assert result.counts["skipped"] == 1
    assert stored == [(good["guid"], good["url"])]
    [event] = skipped_events(logs)
    assert event["entry"] == "github:3650000877" and "lone surrogate" in event["detail"]


def test_pipeline_ingest_skips_a_mention_whose_link_cannot_be_parsed(tmp_path: Path) -> None:
    """The pipeline's own guard, for a link no parser refused (a news kind's publisher link)."""
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    def mention(guid: str, url: str) -> Mention:
        text = f"My Acme RouterX keeps dropping wifi every night ({guid})"
        return Mention("news", url, guid, "RouterX drops", text, None, now, now, "{}")

    batch = [mention("a", "https://news.example/a"), mention("b", "https://[zzz]/q/1"), mention("c", "http://x/c")]

    async def go() -> tuple[dict[str, int], list[tuple[Any, ...]]]:
        async with open_pipeline(tmp_path / "b.db") as (pipeline, store, _):
            counts = pipeline.ingest("news", batch)
            return counts, rows(store, "SELECT guid FROM mentions ORDER BY guid")

    with capture_logs() as logs:
        counts, stored = asyncio.run(go())
    assert (counts["new"], counts["skipped"]) == (2, 1)
    assert stored == [("a",), ("c",)]
    [event] = skipped_events(logs)
    assert event["entry"] == "b" and "is not a URL" in event["detail"]
