"""hn_search: Algolia has no OR, so the default query is one search per brand term; the cursor is a numeric filter."""

from __future__ import annotations

import asyncio

import pytest
from helpers_clock import FakeClock
from helpers_search import SPECS, FixtureSite, make_source, poll_kind

from beacons.feedserver import FeedServer
from beacons.fetch import Politeness
from collectors.hn_search import parse

SPEC = SPECS["hn_search"]


@pytest.fixture
def site(feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, SPEC)


def test_hn_search_default_query_is_one_search_per_term(site: FixtureSite) -> None:
    poll, _ = asyncio.run(poll_kind(make_source(SPEC, site.base_url, query=None, tags="story")))
    queries = site.queries()
    assert [q["query"] for q in queries] == ["Acme", '"Acme Corp"', "acme.com", "RouterX", '"Acme Cloud"']
    assert all(q["tags"] == "story" and q["page"] == "0" and "numericFilters" not in q for q in queries)
    assert len(poll.mentions) == 3, "the same hits from five searches are kept once"


def test_hn_search_cursor_becomes_a_numeric_filter(site: FixtureSite) -> None:
    asyncio.run(poll_kind(make_source(SPEC, site.base_url), cursor="2026-11-22T12:00:00Z"))
    assert [(q["numericFilters"], q["page"]) for q in site.queries()] == [
        ("created_at_i>1795348800", "0"),
        ("created_at_i>1795348800", "1"),
    ]


def test_hn_search_links_to_the_discussion_and_keeps_points() -> None:
    story, comment, _ = parse(SPEC.body("page1"), source_id="h")
    assert story.url == "https://news.ycombinator.com/item?id=46012345" and story.author_reach == 23
    assert comment.title == "Re: Ask HN: What do you use for off-site backups in 2026?"
    assert "I'm impressed" in comment.text  # HN's HTML entities decoded
    assert comment.author_reach is None  # comments have no points


def test_hn_search_pages_keep_the_per_host_spacing(site: FixtureSite) -> None:
    clock = FakeClock()  # moves only when politeness waits: what it moved by is the spacing it kept
    start = clock.monotonic()
    asyncio.run(
        poll_kind(
            make_source(SPEC, site.base_url),
            cursor="2026-11-22T12:00:00Z",
            politeness=Politeness(per_host=2, delay=0.3, clock=clock),
        )
    )
    assert len(site.requests) == 2
    assert clock.monotonic() - start == pytest.approx(0.3), "paging goes through fetch's politeness like every request"
