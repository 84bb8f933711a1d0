"""reddit_search: the JSON Listing mode (score, after paging, OAuth host) and Reddit's rate-limit headers."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from helpers_search import (
    ACME,
    CURSOR_MID,
    JSON_TYPE,
    SPECS,
    FixtureSite,
    json_variant,
    make_source,
    mention_record,
    poll_kind,
)

from beacons.config import parse_config
from beacons.errors import ConfigError
from beacons.feedserver import FeedServer
from collectors.reddit_search import build_query

JSON_SPEC = json_variant("reddit_search")


@pytest.fixture
def site(feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, JSON_SPEC)


def test_reddit_search_json_pages_with_after_back_to_the_cursor(site: FixtureSite) -> None:
    poll, _ = asyncio.run(poll_kind(make_source(JSON_SPEC, site.base_url), cursor=CURSOR_MID))
    expected = JSON_SPEC.expected("listing_page1") + JSON_SPEC.expected("listing_page2")[:1]
    assert [mention_record(m) for m in poll.mentions] == expected
    assert [q.get("after") for q in site.queries()] == [None, "t3_1p7f0aa"]
    assert {(q["sort"], q["raw_json"], q["limit"]) for q in site.queries()} == {("new", "1", "3")}
    assert poll.mentions[0].author_reach == 57  # the post's score


def test_reddit_search_spent_quota_stops_paging_until_the_reset(site: FixtureSite) -> None:
    site.fail(
        200,
        JSON_SPEC.body("listing_page1"),
        JSON_TYPE,
        {"X-Ratelimit-Used": "100", "X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "42"},
    )
    poll, ctx = asyncio.run(poll_kind(make_source(JSON_SPEC, site.base_url), cursor=CURSOR_MID))
    assert len(site.requests) == 1 and len(poll.mentions) == 3
    assert ctx.retry_after == 42


def test_reddit_search_token_goes_to_the_oauth_host_as_a_bearer_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=JSON_SPEC.body("listing_empty"), headers={"Content-Type": JSON_TYPE})

    source = make_source(JSON_SPEC, "https://www.reddit.com", token_env="REDDIT_TOKEN", subreddit="HomeNetworking")
    asyncio.run(poll_kind(source, env={"REDDIT_TOKEN": "tok-123"}, transport=httpx.MockTransport(handler)))
    assert seen[0].url.host == "oauth.reddit.com" and seen[0].url.path == "/r/HomeNetworking/search.json"
    assert seen[0].headers["Authorization"] == "bearer tok-123"
    assert seen[0].url.params["restrict_sr"] == "on"


def test_reddit_search_feed_text_loses_the_submitted_by_footer() -> None:
    from collectors.reddit_search import parse

    mentions = parse(SPECS["reddit_search"].body("page1"), source_id="r")
    assert [m.author for m in mentions] == ["wifi_woes", "priya_builds", "toonfan"]
    assert not any("submitted by" in m.text or "[comments]" in m.text for m in mentions)


def test_reddit_search_default_query_negates_exclusions() -> None:
    assert (
        build_query((ACME,)) == '(Acme OR "Acme Corp" OR acme.com OR RouterX OR "Acme Cloud") NOT "acme looney tunes"'
    )


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"token_env": "REDDIT_TOKEN"}, r"sources\[0\]\.token_env: needs api: json"),
        ({"subreddit": "r/homenetworking"}, r"sources\[0\]\.subreddit: expected a subreddit name"),
        ({"limit": 500}, r"sources\[0\]\.limit: expected 1 to 100"),
        ({"api": "html"}, r"sources\[0\]\.api: expected one of rss, json"),
    ],
)
def test_reddit_search_bad_options_are_config_errors(source: dict[str, object], problem: str) -> None:
    text = json.dumps({"sources": [{"kind": "reddit_search", **source}]})
    with pytest.raises(ConfigError, match=problem):
        parse_config(text, env={})
