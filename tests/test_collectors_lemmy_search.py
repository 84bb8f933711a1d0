"""lemmy_search: posts and comments from one instance's search, linked by their federated ap_id."""

from __future__ import annotations

import asyncio

import pytest
from helpers_search import SPECS, FixtureSite, make_source, poll_kind

from beacons.errors import ParseError
from beacons.feedserver import FeedServer
from collectors.lemmy_search import parse

SPEC = SPECS["lemmy_search"]


@pytest.fixture
def site(feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, SPEC)


def test_lemmy_search_asks_for_posts_and_comments_newest_first(site: FixtureSite) -> None:
    asyncio.run(poll_kind(make_source(SPEC, site.base_url)))
    (query,) = site.queries()
    assert query == {"q": "RouterX", "type_": "All", "sort": "New", "limit": "2", "page": "1"}


def test_lemmy_search_default_query_is_one_search_per_term(site: FixtureSite) -> None:
    poll, _ = asyncio.run(poll_kind(make_source(SPEC, site.base_url, query=None)))
    assert [q["q"] for q in site.queries()] == ["Acme", "Acme Corp", "acme.com", "RouterX", "Acme Cloud"]
    assert len(poll.mentions) == 3, "the same results from five searches are kept once"


def test_lemmy_search_posts_and_comments_are_merged_newest_first() -> None:
    mentions = parse(SPEC.body("page1"), source_id="l")
    assert [m.url for m in mentions] == [
        "https://lemmy.world/post/2210003",
        "https://lemmy.world/comment/5400012",  # a comment, between the two posts by time
        "https://sh.itjust.works/post/88120",  # federated: its home instance's address, not lemmy.world's
    ]
    assert mentions[1].title == "Re: Weekly homelab thread" and mentions[2].author == "quietfan@sh.itjust.works"


def test_lemmy_search_error_body_is_a_readable_parse_error() -> None:
    with pytest.raises(ParseError, match="answered error 'not_logged_in'"):
        parse(SPEC.dir.joinpath("error.json").read_bytes(), source_id="l")


def test_lemmy_search_token_goes_in_the_authorization_header(site: FixtureSite) -> None:
    source = make_source(SPEC, site.base_url, token_env="LEMMY_JWT")
    asyncio.run(poll_kind(source, env={"LEMMY_JWT": "jwt-secret-value"}))
    assert site.requests[0]["headers"]["Authorization"] == "Bearer jwt-secret-value"
