"""html_page (issue 15): a page without a feed, read with CSS selectors; robots.txt obeyed; hostile HTML survived."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import yaml
from helpers_search import HTML_TYPE, poll_kind, respond
from structlog.testing import capture_logs

from beacons.config import parse_config
from beacons.errors import ConfigError, SourceError
from beacons.feedserver import FeedServer
from collectors import html_page
from collectors.html_page import MAX_ITEMS, parse

FIELDS = {
    "id": "::attr(data-id)",
    "title": "h2 a::text",
    "url": "h2 a::attr(href)",
    "text": ".body",
    "author": ".by::text",
    "published": "time::attr(datetime)",
}


@pytest.fixture(autouse=True)
def _fresh_robots_cache() -> Iterator[None]:
    html_page._ROBOTS.clear()
    yield
    html_page._ROBOTS.clear()


def _item(n: int, href: str = "", body: str = "RouterX keeps rebooting") -> str:
    href = href or f"posts/{n}"
    return (
        f'<article class="post" data-id="{n}"><h2><a href="{href}">Post {n} about Acme</a></h2>'
        f'<div class="body">{body}</div><span class="by">user{n}</span>'
        f'<time datetime="2026-11-23T1{n % 10}:00:00Z">today</time></article>'
    )


def _page(*items: str, head: str = "") -> bytes:
    return f"<!DOCTYPE html><html><head><title>Board</title>{head}</head><body><main>{''.join(items)}</main></body></html>".encode()


def _source(url: str = "https://forum.example.com/board/latest", **extra: Any) -> Any:
    text = {"sources": [{"kind": "html_page", "url": url, "items": "article.post", "fields": FIELDS, **extra}]}
    return parse_config(yaml.safe_dump(text), env={}).sources[0]


def _options(url: str = "https://forum.example.com/board/latest", **extra: Any) -> Any:
    return _source(url, **extra).options


class Board:
    """A forum board page and its robots.txt on a loopback server."""

    def __init__(self, server: FeedServer, page: bytes, robots: tuple[int, bytes] = (404, b"not found")) -> None:
        self.server, self.page, self.robots = server, page, robots
        server.add("/board/latest", lambda req: respond(req, 200, self.page, HTML_TYPE))
        server.add("/robots.txt", self._robots)

    def _robots(self, req: BaseHTTPRequestHandler) -> None:
        respond(req, self.robots[0], self.robots[1], "text/plain")

    def source(self) -> Any:
        return _source(self.server.base_url + "/board/latest")

    def hits(self, path: str) -> int:
        return len(self.server.hits(path))


def test_html_page_resolves_relative_links_against_the_page_url(feed_server: FeedServer) -> None:
    board = Board(
        feed_server, _page(_item(1), _item(2, href="/t/2?from=board"), _item(3, href="https://cdn.example.org/3"))
    )
    poll, _ = asyncio.run(poll_kind(board.source()))
    base = feed_server.base_url
    assert [m.url for m in poll.mentions] == [
        f"{base}/board/posts/1",
        f"{base}/t/2?from=board",
        "https://cdn.example.org/3",
    ]
    first = poll.mentions[0]
    assert (first.title, first.text, first.author) == ("Post 1 about Acme", "RouterX keeps rebooting", "user1")
    assert first.published_at is not None and first.published_at.isoformat() == "2026-11-23T11:00:00+00:00"


def test_html_page_base_href_wins_over_the_page_url() -> None:
    body = _page(_item(1), head='<base href="https://mirror.example.net/forum/">')
    mentions = parse(body, source_id="s", options=_options())
    assert mentions[0].url == "https://mirror.example.net/forum/posts/1"


@pytest.mark.parametrize(
    ("robots", "allowed"),
    [
        (b"User-agent: *\nDisallow: /board/\n", False),
        (b"User-agent: beacons\nDisallow: /\n\nUser-agent: *\nAllow: /\n", False),
        (b"User-agent: otherbot\nDisallow: /\n", True),
        (b"User-agent: *\nDisallow: /admin/\n", True),
    ],
)
def test_html_page_obeys_robots_txt(feed_server: FeedServer, robots: bytes, allowed: bool) -> None:
    board = Board(feed_server, _page(_item(1)), robots=(200, robots))
    source = board.source()
    if allowed:
        poll, _ = asyncio.run(poll_kind(source))
        assert len(poll.mentions) == 1 and board.hits("/board/latest") == 1
        return
    with capture_logs() as logs, pytest.raises(SourceError, match=r"robots\.txt disallows /board/latest for beacons"):
        asyncio.run(poll_kind(source))
    assert board.hits("/board/latest") == 0, "a disallowed page is never fetched"
    events = [e for e in logs if e["event"] == "html_page.robots_disallowed"]
    assert events and events[0]["source"] == source.id


def test_html_page_robots_txt_is_cached_between_polls(feed_server: FeedServer) -> None:
    board = Board(feed_server, _page(_item(1)), robots=(200, b"User-agent: *\nAllow: /\n"))
    source = board.source()
    asyncio.run(poll_kind(source))
    asyncio.run(poll_kind(source))
    assert board.hits("/robots.txt") == 1 and board.hits("/board/latest") == 2


@pytest.mark.parametrize(("status", "fetched"), [(404, True), (403, True), (503, False)])
def test_html_page_robots_txt_errors(feed_server: FeedServer, status: int, fetched: bool) -> None:
    """RFC 9309: a 4xx robots.txt allows everything; a 5xx one disallows everything until it answers."""
    board = Board(feed_server, _page(_item(1)), robots=(status, b"error"))
    if fetched:
        poll, _ = asyncio.run(poll_kind(board.source()))
        assert len(poll.mentions) == 1
    else:
        with pytest.raises(SourceError, match=rf"robots\.txt answered HTTP {status}"):
            asyncio.run(poll_kind(board.source()))
        assert board.hits("/board/latest") == 0


def test_html_page_never_reads_script_style_or_template_text() -> None:
    item = (
        '<article class="post" data-id="9"><h2><a href="/9">Acme</a></h2><div class="body">Visible words'
        "<script>var brand='RouterX'; document.write('<b>RouterX</b>')</script>"
        "<style>.RouterX{}</style><template><p>RouterX</p></template> here</div></article>"
    )
    fake = (
        '<script>document.write(\'<article class="post" data-id="666"><h2><a href="/x">x</a></h2></article>\')</script>'
    )
    mentions = parse(_page(item, fake), source_id="s", options=_options())
    assert [m.guid for m in mentions] == ["forum.example.com:9"]
    assert mentions[0].text == "Visible words here"


@pytest.mark.parametrize("href", ["javascript:alert(1)", "data:text/html,<b>x</b>", "mailto:a@example.com"])
def test_html_page_skips_links_that_are_not_http(href: str) -> None:
    skipped: list[tuple[str, str]] = []
    mentions = parse(
        _page(_item(1, href=href), _item(2)),
        source_id="s",
        options=_options(),
        skip=lambda r, d: skipped.append((r, d)),
    )
    assert [m.guid for m in mentions] == ["forum.example.com:2"]
    assert skipped and "not http(s)" in skipped[0][1]


def test_html_page_survives_deep_nesting_and_huge_item_counts() -> None:
    deep = "<div>" * 50_000 + "RouterX" + "</div>" * 50_000
    mentions = parse(_page(_item(1), deep, _item(2)), source_id="s", options=_options())
    assert [m.guid for m in mentions][:1] == ["forum.example.com:1"]  # what comes before the abyss is read
    many = parse(_page(*(_item(n) for n in range(MAX_ITEMS + 50))), source_id="s", options=_options())
    assert len(many) == MAX_ITEMS


def test_html_page_decodes_the_declared_charset() -> None:
    body = _page(_item(1, body="Café RouterX")).decode().encode("iso-8859-1")
    mentions = parse(body, source_id="s", options=_options(), content_type="text/html; charset=iso-8859-1")
    assert mentions[0].text == "Café RouterX"


def test_html_page_missing_container_is_an_html_error_page() -> None:
    with pytest.raises(SourceError, match=r"HTML page without the container 'main' \(title 'Just a moment...'\)"):
        parse(
            b"<html><head><title>Just a moment...</title></head><body><p>Checking your browser</p></body></html>",
            source_id="s",
            options=_options(container="main"),
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"items": "article[["}, r"sources\[0\]\.items: is not a valid CSS selector"),
        ({"fields": {**FIELDS, "title": "h2 >> a"}}, r"sources\[0\]\.fields\.title: is not a valid CSS selector"),
        ({"fields": {**FIELDS, "score": "b"}}, r"sources\[0\]\.fields\.score: unknown field"),
        ({"fields": {"author": ".by"}}, r"sources\[0\]\.fields: map at least title or text"),
        ({"url": "ftp://example.com/"}, r"sources\[0\]\.url: expected an http\(s\) URL"),
    ],
)
def test_html_page_config_errors_name_the_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _options(**change)
