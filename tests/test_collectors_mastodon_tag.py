"""mastodon_tag: the JSON timeline (followers as reach, max_id paging) and authors taken from post addresses."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from helpers_search import CURSOR_MID, SPECS, FixtureSite, json_variant, make_source, mention_record, poll_kind

from beacons.config import parse_config
from beacons.errors import ConfigError
from beacons.feedserver import FeedServer
from collectors.mastodon_tag import parse

JSON_SPEC = json_variant("mastodon_tag")
NEXT = '<https://mastodon.example/api/v1/timelines/tag/routerx?limit=3&max_id=113544000000000002>; rel="next", <https://mastodon.example/api/v1/timelines/tag/routerx?limit=3&min_id=113545000000000005>; rel="prev"'


@pytest.fixture
def site(feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, JSON_SPEC)


def test_mastodon_tag_json_pages_with_max_id_back_to_the_cursor(site: FixtureSite) -> None:
    poll, _ = asyncio.run(poll_kind(make_source(JSON_SPEC, site.base_url), cursor=CURSOR_MID))
    newer = [
        m
        for m in JSON_SPEC.expected("timeline_page1") + JSON_SPEC.expected("timeline_page2")
        if m["published_at"] > "2026-11-22T12"
    ]
    assert [mention_record(m) for m in poll.mentions] == newer
    assert [q.get("max_id") for q in site.queries()] == [None, "113544000000000002"]
    assert [m.author_reach for m in poll.mentions[:3]] == [120, 812, 2301]  # followers
    assert poll.cursor == "2026-11-23T17:20:00Z"


def test_mastodon_tag_json_follows_the_link_header(feed_server: FeedServer) -> None:
    spec = json_variant("mastodon_tag")
    site = FixtureSite(feed_server, spec)
    site.spec = replace(spec, headers=lambda name, q: {"Link": NEXT} if name == "timeline_page1" else {})
    asyncio.run(poll_kind(make_source(spec, site.base_url, limit=40), cursor=CURSOR_MID))
    # a short page (3 < limit 40) would end paging, but the Link header says there is more
    assert [q.get("max_id") for q in site.queries()] == [None, "113544000000000002"]


def test_mastodon_tag_first_poll_reads_one_page(site: FixtureSite) -> None:
    poll, _ = asyncio.run(poll_kind(make_source(JSON_SPEC, site.base_url)))
    assert len(site.requests) == 1 and len(poll.mentions) == 3


def test_mastodon_tag_feed_author_comes_from_the_post_address() -> None:
    mentions = parse(SPECS["mastodon_tag"].body("page1"), source_id="m")
    assert [m.author for m in mentions] == [
        "@ana@mastodon.example",
        "@bob@fosstodon.example",
        "@chloe@mastodon.example",
        "@gadgetwire@news.example",
    ]
    assert all(m.guid == m.url for m in mentions), "both modes identify a post by its address"


@pytest.mark.parametrize(("tag", "ok"), [("RouterX", True), ("#RouterX", True), ("router x", False), ("a/b", False)])
def test_mastodon_tag_tag_is_validated(tag: str, ok: bool) -> None:
    text = f"sources: [{{kind: mastodon_tag, tag: '{tag}'}}]"
    if ok:
        assert parse_config(text, env={}).sources[0].options.tag == tag
    else:
        with pytest.raises(ConfigError, match=r"sources\[0\]\.tag: expected one hashtag"):
            parse_config(text, env={})


def test_mastodon_tag_hash_in_the_tag_is_not_sent(feed_server: FeedServer) -> None:
    site = FixtureSite(feed_server, SPECS["mastodon_tag"])
    asyncio.run(poll_kind(make_source(SPECS["mastodon_tag"], site.base_url, tag="#routerx")))
    assert len(site.requests) == 1  # served from /tags/routerx.rss
