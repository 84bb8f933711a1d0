"""Test support for the search collectors: fixture specs, a fixture-serving site, pipelines.

``SPECS`` describes, for every registered kind, where its fixtures live, the
path its endpoint has on a loopback server, and which fixture a request gets
(``route``: by page number, ``after`` or ``cursor``, like the real service).
``FixtureSite`` serves a spec on a ``FeedServer`` and can be told to
misbehave (a status, an HTML page, another fixture). ``poll_kind`` runs one
collector poll through the real ``beacons.fetch`` without a database;
``make_pipeline`` builds the whole pipeline on a SQLite file.
"""

from __future__ import annotations

import gzip
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import parse_qs, urlsplit

import httpx
import spacy
import yaml

from beacons.classify import RulesClassifier
from beacons.clock import SYSTEM, Clock
from beacons.config import parse_config
from beacons.feedserver import FeedServer
from beacons.fetch import FetchLimits, Politeness, fetch, make_client
from beacons.match import BrandMatcher
from beacons.models import Brand, Fetched, Mention, Product, Source, SourceState
from beacons.pipeline import Pipeline
from beacons.store import Store
from collectors import REGISTRY, Poll, PollContext

FIXTURES = Path(__file__).parent / "fixtures"
DEMO = Path(__file__).parent.parent / "beacons" / "data" / "demo"
DOCS = Path(__file__).parent.parent / "README.md"  # its Sources section (docs/readme copies are gone)

ACME = Brand(
    name="Acme",
    aliases=("Acme Corp", "acme.com"),
    handles=("@acme", "@AcmeSupport"),
    products=(Product("RouterX", ("Router X", "RX-200")), Product("Acme Cloud")),
    exclude=("acme looney tunes",),
)
ACME_YAML = {
    "name": "Acme",
    "aliases": ["Acme Corp", "acme.com"],
    "handles": ["@acme", "@AcmeSupport"],
    "products": [{"name": "RouterX", "aliases": ["Router X", "RX-200"]}, {"name": "Acme Cloud"}],
    "exclude": ["acme looney tunes"],
}
CURSOR_MID = "2026-11-22T12:00:00Z"  # between the two results of every page2
CURSOR_LATE = "2026-11-20T00:00:00Z"  # newer than everything in old.*
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><h1>Checking your browser</h1></body></html>"
Route = Callable[[Mapping[str, str]], str]
DISCOURSE_SITE = "https://community.acme.example"
APPSTORE_PAGE = "/us/rss/customerreviews/page={}/id=1234567890/sortby=mostrecent/json"


def _by(param: str, pages: Mapping[str | None, str], default: str = "empty") -> Route:
    return lambda q: pages.get(q.get(param), default)


@dataclass(frozen=True)
class KindSpec:
    kind: str
    path: str  # the endpoint's path on the fixture server
    ext: str  # fixture file extension
    content_type: str
    route: Route  # query -> fixture name (page1, page2, empty)
    options: dict[str, Any] = field(default_factory=dict)  # the source's config keys, besides kind and base_url
    paged: bool = True  # False: one page per poll (a feed)
    fixture_dir: Path | None = None
    headers: Callable[[str, Mapping[str, str]], dict[str, str]] = lambda name, q: {}
    gzip_always: bool = False
    first_query: dict[str, str] = field(default_factory=dict)  # the query of the first page
    url_template: str | None = None  # kinds configured by a whole url (json_api, html_page): {base} is the server
    # More endpoint paths served by the site (a page number in the path, as Apple's feed has it);
    # ``route`` sees the request's path as the query key "_path".
    extra_paths: tuple[str, ...] = ()
    url_option: bool = False  # the source takes the endpoint as url: (rss, google_alerts), not base_url:
    requires_query: bool = True  # without query: and brands the kind has nothing to read (a clear error)
    parse_kwargs: dict[str, Any] = field(default_factory=dict)  # what parse needs besides the body

    @property
    def dir(self) -> Path:
        return self.fixture_dir or FIXTURES / self.kind

    def body(self, name: str) -> bytes:
        return (self.dir / f"{name}.{self.ext}").read_bytes()

    def error(self, name: str) -> tuple[bytes, str]:
        """An error response the service sends (``error_429``, ``error_500``, ``error_page``): body and type."""
        for ext, content_type in (("json", JSON_TYPE), ("html", HTML_TYPE)):
            path = self.dir / f"{name}.{ext}"
            if path.is_file():
                return path.read_bytes(), content_type
        return HTML_PAGE, HTML_TYPE  # rss: any site's error page

    def expected(self, name: str) -> list[dict[str, Any]]:
        return list(json.loads((self.dir / f"{name}.expected.json").read_text(encoding="utf-8")))


def _github_link(name: str, q: Mapping[str, str]) -> dict[str, str]:
    if name != "page1":
        return {}
    return {
        "Link": '<https://api.github.com/search/issues?q=RouterX&page=2>; rel="next", <https://api.github.com/search/issues?q=RouterX&page=2>; rel="last"'
    }


SPECS: dict[str, KindSpec] = {
    "rss": KindSpec(
        "rss", "/feed.xml", "rss", "application/rss+xml; charset=utf-8", lambda q: "news", paged=False, fixture_dir=DEMO
    ),
    "google_news": KindSpec(
        "google_news",
        "/rss/search",
        "rss",
        "application/xml; charset=utf-8",
        lambda q: "page1",
        {"query": "RouterX"},
        paged=False,
    ),
    "bing_news": KindSpec(
        "bing_news",
        "/news/search",
        "rss",
        "application/rss+xml; charset=utf-8",
        lambda q: "page1",
        {"query": "RouterX"},
        paged=False,
    ),
    "reddit_search": KindSpec(
        "reddit_search",
        "/search.rss",
        "atom",
        "application/atom+xml; charset=UTF-8",
        _by("after", {None: "page1", "t3_1p7f0aa": "page2"}),
        {"query": "RouterX", "limit": 3},
    ),
    "hn_search": KindSpec(
        "hn_search",
        "/api/v1/search_by_date",
        "json",
        JSON_TYPE,
        _by("page", {"0": "page1", "1": "page2"}),
        {"query": "RouterX", "hits_per_page": 3},
        first_query={"page": "0"},
    ),
    "mastodon_tag": KindSpec(
        "mastodon_tag",
        "/tags/routerx.rss",
        "rss",
        "application/rss+xml; charset=utf-8",
        lambda q: "page1",
        {"tag": "routerx"},
        paged=False,
    ),
    "bluesky_search": KindSpec(
        "bluesky_search",
        "/xrpc/app.bsky.feed.searchPosts",
        "json",
        JSON_TYPE,
        _by("cursor", {None: "page1", "3": "page2"}),
        {"query": "RouterX", "limit": 3},
    ),
    "stackexchange_search": KindSpec(
        "stackexchange_search",
        "/2.3/search/advanced",
        "json",
        JSON_TYPE,
        _by("page", {"1": "page1", "2": "page2"}),
        {"query": "RouterX", "site": "superuser", "pagesize": 3},
        gzip_always=True,
        first_query={"page": "1"},
    ),
    "github_issues": KindSpec(
        "github_issues",
        "/search/issues",
        "json",
        JSON_TYPE,
        _by("page", {"1": "page1", "2": "page2"}),
        {"query": "RouterX", "per_page": 3},
        headers=_github_link,
        first_query={"page": "1"},
    ),
    "json_api": KindSpec(
        "json_api",
        "/appreviews/2784470",
        "json",
        JSON_TYPE,
        _by("cursor", {"*": "page1", "AoJwkLvP5ocDe+WQ5wE=": "page2"}),
        {
            # Steam's public store reviews API, newest first, paged by its opaque cursor
            "items": "reviews",
            "fields": {
                "id": "recommendationid",
                "text": "review",
                "author": "author.steamid",
                "published": "timestamp_created",
                "reach": "votes_up",
                "url": "join('', ['https://steamcommunity.com/profiles/', author.steamid, '/recommended/2784470/'])",
            },
            "next_page": "cursor",
            "first_cursor": "*",
        },
        first_query={"cursor": "*"},
        url_template="{base}/appreviews/2784470?json=1&filter=recent&language=all&num_per_page=3&cursor={cursor}",
    ),
    "html_page": KindSpec(
        "html_page",
        "/c/routerx",
        "html",
        HTML_TYPE,
        lambda q: "page1",
        {
            # a vendor's community forum: a topic list with no feed
            "items": "ol.topic-list > li.topic",
            "container": "ol.topic-list",
            "fields": {
                "id": "::attr(data-topic-id)",
                "title": "h3.topic-title a::text",
                "url": "h3.topic-title a::attr(href)",
                "text": "p.excerpt",
                "author": "a.author::text",
                "published": "time::attr(datetime)",
                "reach": "span.likes::text",
            },
        },
        paged=False,
        url_template="{base}/c/routerx",
    ),
    "youtube_search": KindSpec(
        "youtube_search",
        "/youtube/v3/search",
        "json",
        JSON_TYPE,
        _by("pageToken", {None: "page1", "CAMQAA": "page2"}),
        {"query": "RouterX", "max_results": 3},
    ),
    "app_store_reviews": KindSpec(
        "app_store_reviews",
        APPSTORE_PAGE.format(1),
        "json",
        "text/javascript; charset=utf-8",  # what Apple's feed answers
        _by("_path", {APPSTORE_PAGE.format(1): "page1", APPSTORE_PAGE.format(2): "page2"}),
        {"app_id": "1234567890", "implies_brand": "Acme", "implies_product": "RouterX"},
        extra_paths=(APPSTORE_PAGE.format(2),),
        first_query={"_path": APPSTORE_PAGE.format(1)},
        requires_query=False,
    ),
    "lemmy_search": KindSpec(
        "lemmy_search",
        "/api/v3/search",
        "json",
        JSON_TYPE,
        _by("page", {"1": "page1", "2": "page2"}),
        {"query": "RouterX", "limit": 2},
        first_query={"page": "1"},
    ),
    "google_alerts": KindSpec(
        "google_alerts",
        "/alerts/feeds/06807031914929345698/10604166159629661594",
        "atom",
        "application/atom+xml; charset=UTF-8",
        lambda q: "page1",
        paged=False,
        url_option=True,
        requires_query=False,
    ),
    "discourse": KindSpec(
        "discourse",
        "/search.json",
        "json",
        JSON_TYPE,
        _by("page", {"1": "page1", "2": "page2"}),
        {"query": "RouterX", "site_url": DISCOURSE_SITE},
        first_query={"page": "1"},
        requires_query=False,
        parse_kwargs={"site_url": DISCOURSE_SITE},
    ),
}
SEARCH_KINDS = sorted(k for k in SPECS if k != "rss")


class FixtureSite:
    """Serves one kind's fixtures like the real service; ``fail``/``serve`` make it misbehave."""

    def __init__(self, server: FeedServer, spec: KindSpec) -> None:
        self.server, self.spec = server, spec
        self.override: tuple[int, bytes, str, dict[str, str]] | None = None
        self.first: str | None = None  # serve this fixture instead of page1
        for path in (spec.path, *spec.extra_paths):
            server.add(path, self._handle)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def requests(self) -> list[dict[str, Any]]:
        hits = [r for path in (self.spec.path, *self.spec.extra_paths) for r in self.server.hits(path)]
        return sorted(hits, key=self.server.requests.index) if self.spec.extra_paths else hits

    def queries(self) -> list[dict[str, str]]:
        return [{k: v[-1] for k, v in parse_qs(r["query"], keep_blank_values=True).items()} for r in self.requests]

    def fail(
        self, status: int, body: bytes = b"", content_type: str = "text/plain", headers: dict[str, str] | None = None
    ) -> None:
        self.override = (status, body, content_type, headers or {})

    def serve_error(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer with the service's own error response for ``status`` (its ``error_<status>`` fixture)."""
        self.fail(status, *self.spec.error(f"error_{status}"), headers)

    def serve_html(self) -> None:
        """Answer 200 with an HTML page (a login wall, a CDN check) where the feed or JSON should be."""
        self.fail(200, *self.spec.error("error_page"))

    def heal(self) -> None:
        self.override, self.first = None, None

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        if self.override is not None:
            status, body, ctype, headers = self.override
            respond(req, status, body, ctype, headers)
            return
        query = {k: v[-1] for k, v in parse_qs(urlsplit(req.path).query, keep_blank_values=True).items()}
        query["_path"] = urlsplit(req.path).path
        name = self.spec.route(query)
        if self.first and name == self.spec.route(self.spec.first_query):
            name = self.first  # replace the first page, keep the rest
        body = self.spec.body(name)
        zipped = self.spec.gzip_always or "gzip" in (req.headers.get("Accept-Encoding") or "")
        respond(req, 200, body, self.spec.content_type, self.spec.headers(name, query), gzip_body=zipped)


def respond(
    req: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str] | None = None,
    *,
    gzip_body: bool = False,
) -> None:
    if gzip_body:
        body = gzip.compress(body)
    req.send_response(status)
    req.send_header("Content-Type", content_type)
    if gzip_body:
        req.send_header("Content-Encoding", "gzip")
    for key, value in (headers or {}).items():
        req.send_header(key, value)
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


# -- sources, polls and pipelines --------------------------------------------


def source_yaml(spec: KindSpec, base_url: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": f"{spec.kind}-test", "kind": spec.kind, **spec.options, **extra}
    if spec.kind == "rss" or spec.url_option:
        entry["url"] = base_url + spec.path
    elif spec.url_template is not None:
        entry["url"] = spec.url_template.replace("{base}", base_url)
    else:
        entry["base_url"] = base_url
    return entry


def make_source(spec: KindSpec, base_url: str, **extra: Any) -> Source:
    """A Source built through the real config loader (so Options are validated as a user's would be)."""
    # the brands are there for implies_brand, which must name one of them
    text = yaml.safe_dump({"brands": [ACME_YAML], "sources": [source_yaml(spec, base_url, **extra)]})
    return parse_config(text, env={}).sources[0]


async def poll_kind(
    source: Source,
    *,
    cursor: str | None = None,
    env: Mapping[str, str] | None = None,
    politeness: Politeness | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    brands: tuple[Brand, ...] = (ACME,),
    clock: Clock = SYSTEM,
    quota: str | None = None,
) -> tuple[Poll, PollContext]:
    """One collector poll over real HTTP, no database: the collector's view of the contract."""
    limits = FetchLimits(timeout=10.0)
    async with make_client(limits, transport or _loopback()) as client:
        ctx = PollContext(
            source=source,
            state=SourceState(cursor=cursor, quota=quota),
            fetch=None,  # type: ignore[arg-type]
            brands=brands,
            env=dict(env or {}),
            clock=clock,
        )
        polite = politeness or Politeness(per_host=2, delay=0.0)
        ctx.pause_host = polite.pause

        async def bound(url: str, *, params: Any = None, headers: Any = None, conditional: bool = True) -> Fetched:
            return await fetch(
                client, url, limits=limits, params=params, headers=headers, politeness=polite, source_id=source.id
            )

        ctx.fetch = bound
        poll = await REGISTRY[source.kind].poll(ctx, source.options)
        return poll, ctx


def _loopback() -> httpx.AsyncHTTPTransport:
    """A plain-HTTP transport: building the default TLS context for every client costs ~50 ms a test."""
    return httpx.AsyncHTTPTransport(verify=_tls())


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


@cache
def _nlp() -> Any:
    return spacy.blank("en")


@asynccontextmanager
async def open_pipeline(
    db: Path, sources: list[Source] | tuple[Source, ...] = (), *, env: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[Pipeline, Store, Politeness]]:
    """The real pipeline on a SQLite file, Acme as the brand, the rules classifier; closed on exit."""
    store = Store(db)
    store.sync_sources(sources)
    limits = FetchLimits(timeout=10.0)
    politeness = Politeness(per_host=2, delay=0.0)
    # one shared blank spaCy pipeline for the matcher keeps the tests fast; the behaviour is the same
    with patch("beacons.pipeline.BrandMatcher", lambda brands: BrandMatcher(brands, nlp=_nlp())):
        pipeline = Pipeline(
            store=store,
            client=make_client(limits, _loopback()),
            classifier=RulesClassifier(),
            brands=[ACME],
            limits=limits,
            politeness=politeness,
            env=env or {},
        )
    try:
        yield pipeline, store, politeness
    finally:
        await pipeline.client.aclose()
        store.close()


def mention_record(m: Mention) -> dict[str, Any]:
    """What a fixture's ``.expected.json`` lists for one mention (fetched_at and raw left out; rating when set)."""
    return {
        **({"rating": m.rating} if m.rating is not None else {}),
        "url": m.url,
        "guid": m.guid,
        "title": m.title,
        "text": m.text,
        "author": m.author,
        "published_at": m.published_at.isoformat() if isinstance(m.published_at, datetime) else None,
        "author_reach": m.author_reach,
        "lang": m.lang,
    }


def json_variant(kind: str) -> KindSpec:
    """The JSON mode of a kind that reads a feed by default (reddit_search, mastodon_tag)."""
    if kind == "reddit_search":
        route = _by("after", {None: "listing_page1", "t3_1p7f0aa": "listing_page2"}, "listing_empty")
        return replace(
            SPECS[kind],
            path="/search.json",
            ext="json",
            content_type=JSON_TYPE,
            route=route,
            options={**SPECS[kind].options, "api": "json"},
        )
    if kind == "mastodon_tag":
        route = _by("max_id", {None: "timeline_page1", "113544000000000002": "timeline_page2"}, "timeline_empty")
        return replace(
            SPECS[kind],
            path="/api/v1/timelines/tag/routerx",
            ext="json",
            content_type=JSON_TYPE,
            route=route,
            options={"tag": "routerx", "api": "json", "limit": 3},
            paged=True,
        )
    raise ValueError(kind)
