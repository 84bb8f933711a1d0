"""Shared helpers of the routing, queue, API and browser tests: a config, realistic posts, a seeded database.

Posts go through the real ingest path (match, rules classifier, route with the
config's rules, store, thread linking), so the tests see what the daemon stores.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from helpers_db import write

from beacons.classify import RulesClassifier
from beacons.config import Config, parse_config
from beacons.fetch import FetchLimits
from beacons.models import Brand, Classification, Match, MatchSpan, Mention
from beacons.pipeline import Pipeline
from beacons.route import Rules
from beacons.store import Store

TOKEN = "test-token-0123456789abcdef"
OTHER_TOKEN = "other-token-0123456789abcdef"

BRANDS: list[dict[str, Any]] = [
    {
        "name": "Acme",
        "aliases": ["Acme Corp", "acme.com"],
        "handles": ["@acme", "@AcmeSupport"],
        "products": [{"name": "RouterX", "aliases": ["Router X", "RX-200"]}, {"name": "Acme Cloud", "team": "cloud"}],
    }
]
ROUTING: dict[str, Any] = {
    "rules": [
        {"name": "urgent", "keywords": ["outage", "security", "data loss"], "queue": "support", "min_priority": 80}
    ],
    "teams": [{"name": "networking", "products": ["RouterX"]}],
    "drop": {"authors": ["spambot"], "domains": ["spam.example"]},
}

# Realistic posts: (source, author, reach, minutes ago, title, text, url)
POSTS: list[tuple[str, str, int | None, int, str, str, str]] = [
    (
        "status-watch",
        "opsdiana",
        5200,
        4,
        "Acme Cloud outage? Dashboard returns 502",
        "Is Acme Cloud down for anyone else? The dashboard returns 502 errors since 09:10 and our deploys are stuck.",
        "https://social.example/@opsdiana/1101",
    ),
    (
        "r-selfhosted",
        "kmoreau",
        None,
        9,
        "Acme Cloud dashboard 502 errors, deploys stuck",
        "Getting 502 errors on the Acme Cloud dashboard too. Deploys stuck in pending. Any workaround?",
        "https://reddit.example/r/selfhosted/comments/abc123",
    ),
    (
        "homenet-forum",
        "dbrennan",
        None,
        35,
        "RouterX drops wifi every night around 2am",
        "My Acme RouterX drops the 5 GHz network every night. Firmware 2.4.1, factory reset did not help. How do I fix this?",
        "https://forum.example/t/routerx-drops-wifi/4811",
    ),
    (
        "homenet-forum",
        "petra_s",
        None,
        80,
        "Charged twice for Acme Cloud Plus",
        "My card shows two payments for Acme Cloud Plus this month and nobody answers my ticket. Frustrating. I want a refund for the second one, @AcmeSupport.",
        "https://forum.example/t/charged-twice/4820",
    ),
    (
        "hn-search",
        "tpacket",
        900,
        150,
        "How do I set up a guest network on the RX-200?",
        "Anyone know how to set up a separate guest network on the Acme RX-200? The setup wizard keeps failing.",
        "https://news.example/item?id=4242",
    ),
    (
        "mastodon-tag",
        "lena",
        12000,
        20,
        "Six months with the Acme RouterX",
        "Six months with the Acme RouterX and I love it. Rock solid mesh, amazing range. Highly recommend it to anyone.",
        "https://social.example/@lena/2202",
    ),
    (
        "packets-and-coffee",
        "ravi",
        None,
        240,
        "Thank you to the Acme support team",
        "Huge thanks to the Acme support team, they sorted my Acme Cloud migration in an hour. Fantastic service.",
        "https://blog.example/2026/11/thanks-acme",
    ),
    (
        "r-homelab",
        "jo_builds",
        300,
        55,
        "Switched to Acme RouterX, best decision",
        "Switched from my old ISP box to the Acme RouterX. Best decision this year, so happy with it.",
        "https://reddit.example/r/homelab/comments/def456",
    ),
]


def config_data(
    db_path: Path | str, *, serve: dict[str, Any] | None = None, routing: dict[str, Any] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "database": str(db_path),
        "brands": BRANDS,
        "routing": routing if routing is not None else ROUTING,
        "logging": {"level": "warning"},
    }
    if serve is not None:
        data["serve"] = serve
    return data


def make_config(
    db_path: Path | str, *, serve: dict[str, Any] | None = None, routing: dict[str, Any] | None = None
) -> Config:
    """A validated Config; serve defaults to token auth on an ephemeral loopback port."""
    serve = {"host": "127.0.0.1", "port": 0, "tokens": [TOKEN, OTHER_TOKEN], "refresh": 1} if serve is None else serve
    return parse_config(yaml.safe_dump(config_data(db_path, serve=serve, routing=routing)), env={}, path="<test>")


def mention(
    source: str,
    author: str | None,
    title: str,
    text: str,
    url: str | None,
    *,
    minutes_ago: float = 5,
    reach: int | None = None,
    now: datetime | None = None,
) -> Mention:
    now = now or datetime.now(UTC)
    published = (now - timedelta(minutes=minutes_ago)).replace(microsecond=0)
    raw = json.dumps({"title": title, "link": url})
    return Mention(source, url, url, title, text, author, published, now.replace(microsecond=0), raw, reach)


_PIPELINES: dict[tuple[Brand, ...], Pipeline] = {}


def _pipeline(config: Config, store: Store) -> Pipeline:
    """One pipeline per brand set for the whole test run: building the matcher (spacy.blank) costs 0.2 s."""
    brands = config.brand_models()
    pipeline = _PIPELINES.get(brands)
    if pipeline is None:
        pipeline = Pipeline(
            store=store,
            client=None,
            classifier=RulesClassifier(),
            brands=brands,  # type: ignore[arg-type]
            limits=FetchLimits.from_config(config.fetch),
        )
        _PIPELINES[brands] = pipeline
    pipeline.store = store
    pipeline.routing = config.routing
    pipeline.rules = Rules.from_config(config.routing, brands)
    return pipeline


def seed(config: Config, posts: Sequence[Mention] | None = None) -> list[int]:
    """Store posts through the pipeline's ingest (rules classifier); returns the new beacon ids in the support and advocacy queues."""
    mentions = (
        list(posts)
        if posts is not None
        else [
            mention(src, author, title, text, url, minutes_ago=ago, reach=reach)
            for src, author, reach, ago, title, text, url in POSTS
        ]
    )
    store = Store(config.database)
    try:
        pipeline = _pipeline(config, store)
        by_source: dict[str, list[Mention]] = {}
        for m in mentions:
            by_source.setdefault(m.source_id, []).append(m)
        for source_id, batch in by_source.items():
            write(store, "INSERT INTO sources (id, kind) VALUES (?, 'rss') ON CONFLICT (id) DO NOTHING", [source_id])
            pipeline.ingest(source_id, batch)
        rows = store.backend.read("SELECT id FROM beacons WHERE queue != 'none' ORDER BY id").rows
        return [int(r[0]) for r in rows]
    finally:
        store.close()


HOSTILE_TITLE = '<script>window.__pwned = 1</script> Acme RouterX "broken" & <b>bold</b>'
HOSTILE_TEXT = 'RouterX is broken <img src=x onerror="window.__pwned=2"> help <a href="javascript:alert(1)">click</a>'
HOSTILE_AUTHOR = '<svg onload="window.__pwned=3">'


def hostile_mention(**kw: Any) -> Mention:
    """A post whose title, text, author and link try to run script in the page."""
    return mention(
        "evil-source", HOSTILE_AUTHOR, HOSTILE_TITLE, HOSTILE_TEXT, "javascript:alert(document.cookie)", **kw
    )


def classification(
    queue: str = "support",
    *,
    support: float = 0.8,
    advocacy: float = 0.1,
    sentiment: float = -0.5,
    relevance: float = 1.0,
    intents: dict[str, float] | None = None,
    lang: str | None = "en",
) -> Classification:
    """A classifier result written by hand, for routing tests."""
    label = "negative" if sentiment <= -0.25 else "positive" if sentiment >= 0.3 else "neutral"
    return Classification(
        queue,
        queue == "support",
        label,
        sentiment,
        relevance,  # type: ignore[arg-type]
        {"support": support, "advocacy": advocacy, "none": max(0.0, 1 - max(support, advocacy))},
        intents or {},
        lang,
    )


def match(brand: str = "Acme", product: str | None = "RouterX") -> Match:
    return Match(brand, product, (MatchSpan(0, len(brand), brand, brand, product, "name"),))


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    """Log to whatever stdout is current, warnings and up.

    ``beacons.cli.load()`` (called by CLI tests) points structlog at the stderr
    pytest had captured for that test; once that stream is closed, a server
    thread's log line would raise and drop its keep-alive connection.
    """
    structlog.reset_defaults()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.reset_defaults()
