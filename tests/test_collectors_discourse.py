"""discourse: search newest first, or read everything in the forum or a category; solved topics are passed over."""

from __future__ import annotations

import asyncio
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from helpers_feeds import raw_handler
from helpers_search import DISCOURSE_SITE, JSON_TYPE, SPECS, FixtureSite, make_source, poll_kind, respond

from beacons.config import ConfigError
from beacons.errors import ParseError
from beacons.feedserver import FeedServer
from collectors.discourse import parse, parse_topic

SPEC = SPECS["discourse"]
VIEWS = {"/t/8812/3.json": "t_8812", "/t/8790/2.json": "t_8790", "/t/8760/4.json": "t_8760"}


@pytest.fixture
def site(feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, SPEC)


def _serve_forum(server: FeedServer, list_path: str) -> None:
    def serve(name: str) -> object:
        def handle(req: BaseHTTPRequestHandler) -> None:
            respond(req, 200, (SPEC.dir / f"{name}.json").read_bytes(), JSON_TYPE)

        return handle

    server.add(list_path, serve("latest"))  # type: ignore[arg-type]
    for path, name in VIEWS.items():
        server.add(path, serve(name))  # type: ignore[arg-type]


def _everything(server: FeedServer, **keys: object) -> object:
    return make_source(SPEC, server.base_url, query=None, implies_brand="Acme", **keys)


def test_discourse_search_asks_for_the_latest_first(site: FixtureSite) -> None:
    asyncio.run(poll_kind(make_source(SPEC, site.base_url)))
    assert site.queries() == [{"q": "RouterX order:latest", "page": "1"}]


def test_discourse_posts_are_titled_with_their_topic_and_link_to_the_post() -> None:
    mentions = parse(SPEC.body("page1"), source_id="d", site_url=DISCOURSE_SITE)
    reply = mentions[1]
    assert reply.title == "Guest network password resets on reboot" and reply.guid == "discourse:40207"
    assert reply.url == f"{DISCOURSE_SITE}/t/guest-network-password-resets-on-reboot/8790/2"
    assert "search-highlight" not in mentions[0].text


def test_discourse_a_solved_topic_is_not_a_beacon() -> None:
    guids = [m.guid for m in parse(SPEC.body("page1"), source_id="d", site_url=DISCOURSE_SITE)]
    assert "discourse:40190" not in guids, "the port-forwarding topic has an accepted answer"
    assert guids == ["discourse:40211", "discourse:40207", "discourse:40150"]
    assert parse_topic((SPEC.dir / "t_8760.json").read_bytes(), source_id="d", site_url=DISCOURSE_SITE) == []


def test_discourse_everything_reads_topics_bumped_since_the_cursor(feed_server: FeedServer) -> None:
    _serve_forum(feed_server, "/latest.json")
    poll, _ = asyncio.run(poll_kind(_everything(feed_server), cursor="2026-11-23T12:00:00Z"))  # type: ignore[arg-type]
    assert [r["path"] for r in feed_server.requests] == ["/latest.json", "/t/8812/3.json", "/t/8790/2.json"]
    assert [(m.guid, m.title) for m in poll.mentions] == [
        ("discourse:40211", "RouterX drops 5 GHz clients every night after 2.4.1"),
        ("discourse:40207", "Guest network password resets on reboot"),
    ]
    assert poll.cursor == "2026-11-23T16:40:00Z"


def test_discourse_first_read_of_everything_skips_pinned_and_solved_topics(feed_server: FeedServer) -> None:
    _serve_forum(feed_server, "/c/support/7.json")
    poll, _ = asyncio.run(poll_kind(_everything(feed_server, category="support/7")))  # type: ignore[arg-type]
    assert [r["path"] for r in feed_server.requests] == ["/c/support/7.json", "/t/8812/3.json", "/t/8790/2.json"]
    # every regular post of the two open topics; the "closed this topic" small action is not a post
    assert sorted(m.guid or "" for m in poll.mentions) == [
        "discourse:40150",
        "discourse:40180",
        "discourse:40207",
        "discourse:40211",
    ]
    assert next(m for m in poll.mentions if m.guid == "discourse:40150").author_reach == 5  # likes


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"category": "support"}, r"sources\[0\]\.category: set query or category, not both"),
        ({"query": None, "category": "support?x=1"}, r"sources\[0\]\.category: expected the category's path"),
    ],
)
def test_discourse_config_errors_name_the_key(keys: dict[str, object], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        make_source(SPEC, "http://127.0.0.1:1", **keys)


def test_discourse_a_topic_deleted_since_the_list_costs_that_topic_only(feed_server: FeedServer) -> None:
    _serve_forum(feed_server, "/latest.json")
    feed_server.add(
        "/t/8812/3.json", raw_handler(404, {"Content-Type": "application/json"}, b'{"errors": ["not found"]}')
    )
    poll, ctx = asyncio.run(poll_kind(_everything(feed_server), cursor="2026-11-23T12:00:00Z"))  # type: ignore[arg-type]
    assert [m.guid for m in poll.mentions] == ["discourse:40207"]
    assert ctx.skipped == [("bad_entry", "topic 8812: HTTP 404")]


def test_discourse_an_html_page_for_the_topic_list_fails_the_poll(feed_server: FeedServer) -> None:
    feed_server.add(
        "/latest.json", raw_handler(200, {"Content-Type": "text/html"}, (SPEC.dir / "error_page.html").read_bytes())
    )
    with pytest.raises(ParseError, match="got an HTML page, not Discourse JSON"):
        asyncio.run(poll_kind(_everything(feed_server)))  # type: ignore[arg-type]
