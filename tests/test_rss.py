"""The rss collector and collectors._feed.parse_feed: real-format fixtures, every arrival path, hostile bodies.

Each fixture in tests/fixtures/rss/ has an ``.expected.json`` beside it (the
mentions' fields, the skipped reasons, or the error), like lemon24/reader's
tests/data.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from conftest import running_feed_server
from helpers_feeds import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    HTML_PAGE,
    JSON_BODY,
    rss_feed,
    rss_item,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from beacons.errors import ParseError
from beacons.feedserver import FeedServer, Resource
from beacons.fetch import FetchLimits, fetch, make_client
from beacons.models import Mention, Source, SourceState
from beacons.text import html_to_text, sanitized_html_to_text
from collectors import REGISTRY, PollContext
from collectors._feed import parse_feed
from collectors.rss import Options

FIXTURES = Path(__file__).parent / "fixtures" / "rss"
CASES = sorted(p for p in FIXTURES.iterdir() if not p.name.endswith(".expected.json"))
CONTENT_TYPES = {
    ".xml": "application/rss+xml",
    ".rdf": "application/rdf+xml",
    ".atom": "application/atom+xml",
    ".html": "text/html",
    ".json": "application/json",
}


def expected(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.with_name(path.name + ".expected.json").read_text(encoding="utf-8"))
    return data


def fields(mentions: list[Mention]) -> list[dict[str, Any]]:
    return [
        {
            "title": m.title,
            "text": m.text,
            "url": m.url,
            "guid": m.guid,
            "author": m.author,
            "published_at": m.published_at.isoformat() if m.published_at else None,
        }
        for m in mentions
    ]


def parse(body: bytes, **kw: Any) -> tuple[list[Mention], list[str]]:
    skipped: list[str] = []
    mentions = parse_feed(body, source_id="fixture", skip=lambda reason, detail: skipped.append(reason), **kw)
    return mentions, skipped


def test_rss_every_fixture_has_expectations() -> None:
    assert len(CASES) >= 10
    for case in CASES:
        assert case.with_name(case.name + ".expected.json").is_file(), case.name


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_rss_parse_fixture(case: Path) -> None:
    want = expected(case)
    if "error" in want:
        with pytest.raises(ParseError, match=want["error"].split("(")[0].strip()) as info:
            parse(case.read_bytes())
        assert info.value.source_id == "fixture"
        return
    mentions, skipped = parse(case.read_bytes())
    assert fields(mentions) == want["mentions"]
    assert skipped == want["skipped"]
    for m in mentions:
        assert m.source_id == "fixture"
        assert json.loads(m.raw)  # the raw entry is kept, as JSON, so nothing is lost


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    """One loopback server for the module; every test serves its own path."""
    with running_feed_server() as s:
        yield s


def _serve_and_parse(server: FeedServer, path: str, resource: Resource) -> list[Mention]:
    server.add(path, resource)

    async def go() -> list[Mention]:
        limits = FetchLimits(timeout=5.0)
        async with make_client(limits) as client:
            fetched = await fetch(client, server.url(path), limits=limits)
        return parse_feed(fetched.body, source_id="fixture", headers=fetched.headers, url=fetched.url)

    return asyncio.run(go())


FEED_CASES = [c for c in CASES if "error" not in expected(c)]
PATHS: dict[str, dict[str, Any]] = {
    "plain": {"gzip": False},
    "gzip": {"gzip": True},
    "no-content-type": {"gzip": False, "content_type": ""},
    "text-xml": {"gzip": True, "content_type": "text/xml"},
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", FEED_CASES, ids=lambda p: p.name)
def test_rss_fixture_over_http_arrival_paths(server: FeedServer, case: Path, path: str) -> None:
    options: dict[str, Any] = {"content_type": CONTENT_TYPES[case.suffix], **PATHS[path]}
    mentions = _serve_and_parse(server, f"/{path}/{case.name}", Resource(case.read_bytes(), **options))
    assert fields(mentions) == expected(case)["mentions"]


@pytest.mark.parametrize("case", FEED_CASES, ids=lambda p: p.name)
def test_rss_fixture_with_wrong_charset_header_keeps_identities(server: FeedServer, case: Path) -> None:
    resource = Resource(case.read_bytes(), content_type=CONTENT_TYPES[case.suffix] + "; charset=koi8-r")
    mentions = _serve_and_parse(server, f"/koi8-r/{case.name}", resource)
    want = expected(case)["mentions"]
    assert [(m.url, m.guid) for m in mentions] == [(w["url"], w["guid"]) for w in want]


def test_rss_relative_links_resolve_against_the_feed_url(server: FeedServer) -> None:
    body = rss_feed([rss_item(1, "Acme RouterX review", link="/posts/1?utm_source=feed")])
    mentions = _serve_and_parse(server, "/relative/feed.xml", Resource(body))
    assert mentions[0].url == server.url("/posts/1")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (HTML_PAGE, "got an HTML page"),
        (b"\xef\xbb\xbf  <html><body>Acme</body></html>", "got an HTML page"),
        (JSON_BODY, "got JSON"),
        (b"", "no RSS or Atom feed"),
        (b"\x00\x01\x02 binary", "not a readable feed"),
        (b"Acme RouterX is great, plain text", "not a readable feed"),
    ],
)
def test_rss_not_a_feed_is_a_parse_error(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(body)


def test_rss_feed_without_entries_is_empty_not_an_error() -> None:
    assert parse(rss_feed([])) == ([], [])


def test_rss_billion_laughs_is_not_expanded() -> None:
    mentions, _ = parse(BILLION_LAUGHS)  # expanded, it would be about 3 GB of "lol"
    assert len(mentions) == 1
    assert "lollol" not in mentions[0].text + mentions[0].title + mentions[0].raw
    assert len(mentions[0].raw) < 10_000


def test_rss_external_entity_is_not_read() -> None:
    mentions, _ = parse(EXTERNAL_ENTITY)
    assert len(mentions) == 1
    seen = mentions[0].title + mentions[0].text + mentions[0].raw
    assert "root:" not in seen and "/bin/" not in seen


def test_rss_nul_and_control_bytes_are_removed_from_text() -> None:
    body = rss_feed([rss_item(1, "Acme\x00 RouterX\x07 is down", title="Acme\x00 down")]).replace(b"&#0;", b"")
    mentions, _ = parse(body)
    assert mentions[0].title == "Acme down"
    assert mentions[0].text == "Acme RouterX is down"


def test_rss_invalid_utf8_still_parses() -> None:
    body = rss_feed([rss_item(1, "Acme RouterX PLACEHOLDER broken")]).replace(b"PLACEHOLDER", b"\xff\xfe\xc3")
    mentions, _ = parse(body)
    assert len(mentions) == 1
    assert mentions[0].text.startswith("Acme RouterX") and mentions[0].text.endswith("broken")


def test_rss_one_bad_entry_does_not_cost_the_rest() -> None:
    body = rss_feed([rss_item(i, f"Acme post {i}") for i in range(3)])

    def link_of(entry: Any) -> str | None:
        if entry["title"] == "Acme post 1":
            raise ValueError("odd link")
        return str(entry["link"])

    mentions, skipped = parse(body, link_of=link_of)
    assert [m.title for m in mentions] == ["Acme post 0", "Acme post 2"]
    assert skipped == ["bad_entry"]


def test_rss_is_registered_and_validates_its_url() -> None:
    assert REGISTRY["rss"].options is Options
    assert Options("https://example.org/feed").validate() == []
    assert Options("file:///etc/passwd").validate()[0][0] == "url"
    assert Options("example.org/feed").validate()[0][0] == "url"


def test_rss_poll_through_context_records_skips() -> None:
    body = (FIXTURES / "rss20_missing_fields.xml").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/feed.xml"
        return httpx.Response(200, headers={"Content-Type": "application/rss+xml"}, content=body)

    async def go() -> tuple[Any, PollContext]:
        limits = FetchLimits(timeout=5.0)
        async with make_client(limits, httpx.MockTransport(handler)) as client:

            async def ctx_fetch(url: str, **kw: Any) -> Any:
                return await fetch(client, url, limits=limits)

            source = Source("board", "rss", 300.0, Options("https://board.example.org/feed.xml"))
            ctx = PollContext(source=source, state=SourceState(), fetch=ctx_fetch, brands=())
            return await REGISTRY["rss"].poll(ctx, source.options), ctx

    poll, ctx = asyncio.run(go())
    assert len(poll.mentions) == 4
    assert [reason for reason, _ in ctx.skipped] == ["empty_entry", "empty_entry"]
    assert {m.source_id for m in poll.mentions} == {"board"}


_HTML_BITS = st.sampled_from(
    [
        "<",
        ">",
        "/",
        "p",
        "b",
        "script",
        "br",
        " ",
        "a",
        "&amp;",
        "&",
        "'",
        '"',
        "=",
        "x",
        "\n",
        "<p>",
        "</p>",
        "<br />",
        "<i>",
        "</i>",
        "&#",
        "38;",
        '<a href="',
        '">',
        "<svg>",
        "\t",
        "<BR>",
        "&lt;",
        "<li>",
        '<img src="x" />',
        ' title="',
        "é",
        "<h1>",
        "<!--",
        "-->",
        "<style>",
        "</style>",
        "<?",
        '<p class="a">',
        "Acme",
        "&nbsp;",
        "<div>",
        "</div>",
        "<table><tr><td>",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_HTML_BITS, max_size=30).map("".join))
def test_rss_sanitized_walk_equals_the_html_parser_walk(markup: str) -> None:
    """text.sanitized_html_to_text (used for feed bodies) must read exactly as text.html_to_text."""
    assert sanitized_html_to_text(markup) == html_to_text(markup)
    sanitized = feedparser.parse(io.BytesIO(rss_feed([rss_item(1, markup)]))).entries[0].get("summary", "")
    assert sanitized_html_to_text(sanitized) == html_to_text(sanitized)
