"""bluesky_search: searchPosts parameters, cursor paging, the optional token, post addresses."""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers_search import CURSOR_MID, JSON_TYPE, SPECS, FixtureSite, make_source, poll_kind

from beacons.errors import HTTPStatusError
from beacons.feedserver import FeedServer
from collectors.bluesky_search import parse

SPEC = SPECS["bluesky_search"]


@pytest.fixture
def site(feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, SPEC)


def test_bluesky_search_sends_since_sort_and_cursor(site: FixtureSite) -> None:
    asyncio.run(poll_kind(make_source(SPEC, site.base_url, lang="en"), cursor=CURSOR_MID))
    first, second = site.queries()
    assert first == {"q": "RouterX", "sort": "latest", "limit": "3", "lang": "en", "since": CURSOR_MID}
    assert second == {**first, "cursor": "3"}


def test_bluesky_search_token_is_optional_and_sent_as_bearer(site: FixtureSite) -> None:
    asyncio.run(poll_kind(make_source(SPEC, site.base_url)))
    asyncio.run(poll_kind(make_source(SPEC, site.base_url, token_env="BSKY_TOKEN"), env={"BSKY_TOKEN": "jwt-abc"}))
    assert "Authorization" not in site.requests[0]["headers"]
    assert site.requests[1]["headers"]["Authorization"] == "Bearer jwt-abc"


def test_bluesky_search_xrpc_error_is_an_http_error_with_the_ratelimit_reset(site: FixtureSite) -> None:
    reset = str(int(time.time()) + 3600)  # epoch seconds, read against the real clock: allow for a busy machine
    site.fail(
        429,
        b'{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}',
        JSON_TYPE,
        {"RateLimit-Remaining": "0", "RateLimit-Reset": reset},
    )
    with pytest.raises(HTTPStatusError) as caught:
        asyncio.run(poll_kind(make_source(SPEC, site.base_url)))
    assert caught.value.retry_after is not None and 3600 - 60 < caught.value.retry_after <= 3600


def test_bluesky_search_post_address_and_reach() -> None:
    mentions = parse(SPEC.body("page2"), source_id="b")
    assert mentions[1].url == "https://bsky.app/profile/gadgetwire.example.net/post/3maaxk3mzsv2b"
    assert mentions[1].guid == "at://did:plc:g4dg3tw1r3abc/app.bsky.feed.post/3maaxk3mzsv2b"
    assert mentions[1].author_reach == 210 + 61  # likes + reposts
    assert mentions[1].lang == "en"
