"""google_news and bing_news: publisher links out of Google's article ids and Bing's click redirects."""

from __future__ import annotations

import asyncio
import base64

import pytest
from helpers_search import SPECS, FixtureSite, make_source, poll_kind

from beacons.config import parse_config
from beacons.errors import ConfigError
from beacons.feedserver import FeedServer
from collectors import bing_news, google_news

URL = b"https://example.org/a/b?x=1#f"


def _article(payload: bytes) -> str:
    """A news.google.com article link whose id is ``payload`` (protobuf bytes), base64url without padding."""
    return "https://news.google.com/rss/articles/" + base64.urlsafe_b64encode(payload).decode().rstrip("=") + "?oc=5"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (_article(b"\x08\x13\x22" + bytes([len(URL)]) + URL + b"\xd2\x01\x00"), URL.decode()),
        (_article(b"\x08\x13\x22\x0eAU_yqLOpaque12"), None),  # newer ids carry no URL
        (_article(b"\x08\x13\x22\x7fhttps://truncated"), None),  # a length past the end
        ("https://news.google.com/rss/articles/%%%?oc=5", None),
        ("https://www.example.org/article", None),
    ],
)
def test_google_news_publisher_link(link: str, expected: str | None) -> None:
    assert google_news.publisher_link(link) == expected


def test_google_news_keeps_google_links_when_asked() -> None:
    mentions = google_news.parse(SPECS["google_news"].body("page1"), source_id="g", resolve_links=False)
    assert all(m.url and m.url.startswith("https://news.google.com/rss/articles/") for m in mentions)
    assert mentions[0].title == "Acme Corp recalls RouterX power adapters over overheating risk"
    assert mentions[0].author == "Example Tech Daily"


def test_google_news_sends_the_edition(feed_server: FeedServer) -> None:
    site = FixtureSite(feed_server, SPECS["google_news"])
    asyncio.run(poll_kind(make_source(SPECS["google_news"], site.base_url, hl="de", gl="DE")))
    assert site.queries() == [{"q": "RouterX", "hl": "de", "gl": "DE", "ceid": "DE:de"}]


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (
            "http://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=X&url=https%3a%2f%2fexample.org%2fa%3fb%3d1&c=1&mkt=en-us",
            "https://example.org/a?b=1",
        ),
        ("http://www.bing.com/news/apiclick.aspx?ref=FexRss&url=javascript%3aalert(1)", None),
        ("https://www.bing.com/news/search?q=x", None),
        ("https://example.org/a", None),
    ],
)
def test_bing_news_publisher_link(link: str, expected: str | None) -> None:
    assert bing_news.publisher_link(link) == expected


def test_bing_news_passes_extra_params(feed_server: FeedServer) -> None:
    site = FixtureSite(feed_server, SPECS["bing_news"])
    asyncio.run(poll_kind(make_source(SPECS["bing_news"], site.base_url, params={"setlang": "en-gb", "cc": "gb"})))
    assert site.queries() == [{"setlang": "en-gb", "cc": "gb", "q": "RouterX", "format": "rss"}]


def test_bing_news_params_cannot_replace_the_query() -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.params\.q: is set by the collector"):
        parse_config("sources: [{kind: bing_news, params: {q: other}}]", env={})
