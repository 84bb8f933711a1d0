"""beacons.pipeline end to end over loopback HTTP into a real SQLite file.

Every bad input of the foundation issue is served next to a good source in the
same cycle: the bad one ends as an error (or ok with its bad entries skipped),
is logged with its source id and reason, is counted in the sources table, and
the good one still stores its mentions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import yaml
from conftest import running_feed_server
from helpers_db import listed
from helpers_feeds import (
    ACME,
    ADVOCACY_TEXTS,
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    HTML_PAGE,
    JSON_BODY,
    NOISE_TEXTS,
    SUPPORT_TEXTS,
    gzip_bomb,
    make_pipeline,
    raw_handler,
    rss_feed,
    rss_item,
    rss_source_config,
    rules_classifier,
    stream_handler,
    texts_feed,
)

from beacons.classify import RulesClassifier
from beacons.config import parse_config
from beacons.daemon import run
from beacons.feedserver import FeedServer, Resource
from beacons.fetch import FetchLimits, make_client
from beacons.models import Beacon, Classification, Match, Source
from beacons.pipeline import Pipeline, PollResult
from beacons.store import Store
from collectors.rss import Options

FIXTURES = Path(__file__).parent / "fixtures" / "rss"
GOOD_TEXTS = [*SUPPORT_TEXTS, *ADVOCACY_TEXTS, *NOISE_TEXTS]


def source(sid: str, url: str) -> Source:
    return Source(sid, "rss", 60.0, Options(url))


def poll(
    store: Store, *sources: Source, pipeline: Callable[[Store, httpx.AsyncClient], Pipeline] = make_pipeline
) -> list[PollResult]:
    async def go() -> list[PollResult]:
        async with make_client(FetchLimits(timeout=5.0)) as client:
            p = pipeline(store, client)
            return [await p.poll_source(s) for s in sources]

    return asyncio.run(go())


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    s = Store(database)
    yield s
    s.close()


def row(store: Store, source_id: str) -> dict[str, Any]:
    return next(r for r in store.sources() if r["id"] == source_id)


def test_pipeline_poll_stores_routed_mentions(feed_server: FeedServer, store: Store) -> None:
    feed_server.add("/feed.xml", Resource(texts_feed(GOOD_TEXTS)))
    src = source("blog", feed_server.url("/feed.xml"))
    store.sync_sources([src])
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        [result] = poll(store, src)
    assert result.status == "ok"
    assert result.counts["entries"] == 7
    assert result.counts["dropped_no_brand"] == 2
    assert result.counts["new"] == 5
    assert result.counts["support"] == 3 and result.counts["advocacy"] == 2
    support = listed(store, queue="support")
    assert {b.source for b in support} == {"blog"} and len(support) == 3
    assert all(b.brand == "Acme" for b in listed(store, queue="all"))
    [line] = [e for e in logs if e["event"] == "source.polled"]
    assert line["source"] == "blog" and line["status"] == "ok" and line["new"] == 5 and "ms" in line
    state = store.source_state("blog")
    assert state.etag == Resource(texts_feed(GOOD_TEXTS)).etag


def test_pipeline_second_poll_is_a_304(feed_server: FeedServer, store: Store) -> None:
    feed_server.add("/feed.xml", Resource(texts_feed(GOOD_TEXTS)))
    src = source("blog", feed_server.url("/feed.xml"))
    store.sync_sources([src])
    first, second = poll(store, src, src)
    assert (first.status, second.status) == ("ok", "not_modified")
    assert feed_server.hits("/feed.xml")[1]["headers"]["If-None-Match"] == store.source_state("blog").etag
    r = row(store, "blog")
    assert (r["polls"], r["not_modified"], r["items_new"], r["errors"]) == (2, 1, 5, 0)


def test_pipeline_changed_feed_adds_only_new_entries(feed_server: FeedServer, store: Store) -> None:
    feed_server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    src = source("blog", feed_server.url("/feed.xml"))
    store.sync_sources([src])
    poll(store, src)
    feed_server.add("/feed.xml", Resource(texts_feed([*ADVOCACY_TEXTS, *SUPPORT_TEXTS], start=-2)))
    [result] = poll(store, src)
    assert result.counts["new"] == 2
    assert result.counts["duplicate"] == 3
    assert store.mention_count() == 5


def test_pipeline_dedupe_survives_restart(feed_server: FeedServer, db_path: Path) -> None:
    feed_server.add("/feed.xml", Resource(texts_feed(GOOD_TEXTS), conditional=False))  # no 304: every poll parses
    src = source("blog", feed_server.url("/feed.xml"))
    for expected_new in (5, 0, 0):
        store = Store(db_path)
        store.sync_sources([src])
        [result] = poll(store, src)
        assert result.counts["new"] == expected_new
        store.close()
    store = Store(db_path)
    assert store.mention_count() == 5
    assert row(store, "blog")["items_seen"] == 21
    store.close()


def test_pipeline_same_post_through_two_sources_is_stored_once(feed_server: FeedServer, store: Store) -> None:
    body = rss_feed([rss_item(1, SUPPORT_TEXTS[0], link="https://forum.example.org/t/1?utm_source=a", guid="a-1")])
    other = rss_feed(
        [rss_item(1, SUPPORT_TEXTS[0], link="https://FORUM.example.org/t/1#reply", guid="b-1", author=None)]
    )
    feed_server.add("/a.xml", Resource(body))
    feed_server.add("/b.xml", Resource(other))
    a, b = source("a", feed_server.url("/a.xml")), source("b", feed_server.url("/b.xml"))
    store.sync_sources([a, b])
    ra, rb = poll(store, a, b)
    assert (ra.counts["new"], rb.counts["new"], rb.counts["duplicate"]) == (1, 0, 1)


def test_pipeline_duplicates_within_one_feed_are_stored_once(feed_server: FeedServer, store: Store) -> None:
    items = [rss_item(1, SUPPORT_TEXTS[0]), rss_item(1, SUPPORT_TEXTS[0])]
    feed_server.add("/feed.xml", Resource(rss_feed(items)))
    src = source("blog", feed_server.url("/feed.xml"))
    store.sync_sources([src])
    [result] = poll(store, src)
    assert (result.counts["new"], result.counts["duplicate"]) == (1, 1)


class FlakyClassifier(RulesClassifier):
    """Fails on any text containing "boom", to prove a failed classification loses nothing."""

    name = "flaky"

    def classify(self, text: str, match: Match | None) -> Classification:
        if "boom" in text:
            raise ValueError("model exploded")
        return super().classify(text, match)

    def classify_many(self, items: Sequence[tuple[str, Match | None]]) -> list[Classification]:
        return [self.classify(t, m) for t, m in items]


def test_pipeline_classify_failure_keeps_the_mention(feed_server: FeedServer, store: Store) -> None:
    feed_server.add("/feed.xml", Resource(texts_feed([SUPPORT_TEXTS[0], "Acme RouterX went boom"])))
    src = source("blog", feed_server.url("/feed.xml"))
    store.sync_sources([src])

    def flaky(store: Store, client: httpx.AsyncClient) -> Pipeline:
        return Pipeline(store=store, client=client, classifier=FlakyClassifier(), brands=(ACME,), limits=FetchLimits())

    with structlog.testing.capture_logs() as logs:
        [result] = poll(store, src, pipeline=flaky)
    assert result.counts["new"] == 2 and result.counts["classify_errors"] == 1
    assert store.mention_count() == 2
    assert len(listed(store, queue="all")) == 1
    [(_, mention, match)] = store.unclassified()
    assert mention.text == "Acme RouterX went boom" and match is not None and match.product == "RouterX"
    assert any(e["event"] == "mention.classify_failed" and "model exploded" in e["error"] for e in logs)


def test_pipeline_failed_classification_is_retried_once_the_classifier_works(
    feed_server: FeedServer, store: Store
) -> None:
    feed_server.add("/feed.xml", Resource(texts_feed([SUPPORT_TEXTS[0], "Acme RouterX went boom, it will not boot"])))
    src = source("blog", feed_server.url("/feed.xml"))
    store.sync_sources([src])

    def flaky(store: Store, client: httpx.AsyncClient) -> Pipeline:
        return Pipeline(
            store=store,
            client=client,
            classifier=FlakyClassifier(),
            brands=(ACME,),
            limits=FetchLimits(),
            channels=("ops",),
        )

    poll(store, src, pipeline=flaky)
    still_failing = Pipeline(
        store=store, client=httpx.AsyncClient(), classifier=FlakyClassifier(), brands=(ACME,), limits=FetchLimits()
    )
    assert still_failing.retry_unclassified() == 0
    assert len(store.unclassified()) == 1
    fixed = Pipeline(
        store=store,
        client=httpx.AsyncClient(),
        classifier=rules_classifier(),
        brands=(ACME,),
        limits=FetchLimits(),
        channels=("ops",),
    )
    with structlog.testing.capture_logs() as logs:
        assert fixed.retry_unclassified() == 1
    assert store.unclassified() == []
    beacons = listed(store, queue="all")
    assert len(beacons) == 2 and any("boom" in b.text for b in beacons)
    assert fixed.retry_unclassified() == 0  # nothing twice
    assert any(e["event"] == "mention.reclassified" and e["count"] == 1 for e in logs)


def test_pipeline_errors_count_up_and_recover(feed_server: FeedServer, store: Store) -> None:
    feed_server.add("/feed.xml", raw_handler(503, {"Retry-After": "120"}))
    src = source("blog", feed_server.url("/feed.xml"))
    store.sync_sources([src])
    first, second = poll(store, src, src)
    assert (first.status, first.consecutive_errors, second.consecutive_errors) == ("error", 1, 2)
    assert first.retry_after == 120.0
    feed_server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    [third] = poll(store, src)
    assert third.status == "ok"
    r = row(store, "blog")
    assert (r["errors"], r["consecutive_errors"], r["last_status"], r["polls"]) == (2, 0, "ok", 3)


# -- every bad input, next to a good source, in one cycle ----------------------

Serve = Callable[[str], Any]  # the case's path -> what the bad source serves there
BAD_HOST = "bad.example.org"  # the bad feeds' posts must not share URLs with the good feed's
BAD_INPUTS: dict[str, tuple[Serve, str, str]] = {
    # name: (what the bad source serves, expected status, reason in the log and the sources table)
    "malformed_xml": (
        lambda path: Resource((FIXTURES / "rss20_illformed_entities.xml").read_bytes()),
        "ok",
        "illformed_feed",
    ),
    "truncated_xml": (lambda path: Resource((FIXTURES / "rss20_truncated.xml").read_bytes()), "ok", "illformed_feed"),
    "html_page": (
        lambda path: Resource(HTML_PAGE, content_type="text/html; charset=utf-8"),
        "error",
        "got an HTML page",
    ),
    "json_body": (lambda path: Resource(JSON_BODY, content_type="application/json"), "error", "got JSON"),
    "billion_laughs": (lambda path: Resource(BILLION_LAUGHS), "ok", "illformed_feed"),
    "external_entity": (lambda path: Resource(EXTERNAL_ENTITY), "ok", "illformed_feed"),
    "gzip_bomb": (
        lambda path: raw_handler(200, {"Content-Encoding": "gzip"}, gzip_bomb(16 * 1024 * 1024)),
        "error",
        "BodyTooLarge",
    ),
    "body_50mb": (lambda path: stream_handler(50 * 1024 * 1024), "error", "exceeded fetch.max_bytes"),
    "slow_drip": (
        lambda path: Resource(texts_feed(SUPPORT_TEXTS, host=BAD_HOST), gzip=False, drip=0.05),
        "error",
        "FetchTimeout",
    ),
    "redirect_loop": (lambda path: raw_handler(302, {"Location": path}), "error", "redirect loop"),
    "redirect_to_file": (lambda path: raw_handler(302, {"Location": "file:///etc/passwd"}), "error", "BadRedirect"),
    "redirect_to_ftp": (
        lambda path: raw_handler(301, {"Location": "ftp://127.0.0.1/feed.xml"}),
        "error",
        "BadRedirect",
    ),
    "missing_fields": (
        lambda path: Resource((FIXTURES / "rss20_missing_fields.xml").read_bytes()),
        "ok",
        "empty_entry",
    ),
    "wrong_encoding": (
        lambda path: Resource((FIXTURES / "rss20_wrong_encoding.xml").read_bytes()),
        "ok",
        "wrong_encoding",
    ),
    "invalid_utf8": (
        lambda path: Resource(
            texts_feed(["Acme RouterX BAD broken"], start=100, host=BAD_HOST).replace(b"BAD", b"\xff\xfe")
        ),
        "ok",
        "wrong_encoding",
    ),
    "nul_bytes": (
        lambda path: Resource(
            texts_feed(["Acme RouterX is down"], start=200, host=BAD_HOST).replace(b"is down", b"is\x00 down")
        ),
        "ok",
        "illformed_feed",
    ),
    "http_500": (lambda path: raw_handler(500, {"Content-Type": "text/plain"}, b"oops"), "error", "HTTP 500"),
    "not_found": (lambda path: None, "error", "HTTP 404"),
}


@dataclass
class Cycle:
    results: dict[str, PollResult]
    logs: list[MutableMapping[str, Any]]
    sources: dict[str, dict[str, Any]]
    beacons: list[Beacon]


@pytest.fixture(scope="module")
def hostile_cycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cycle]:
    """One daemon cycle over a good source and one source per bad input, all on one loopback server."""
    db = tmp_path_factory.mktemp("hostile") / "beacons.db"
    with running_feed_server() as server:
        server.add("/good.xml", Resource(texts_feed(GOOD_TEXTS)))
        urls = {"good": server.url("/good.xml")}
        for case, (serve, _, _) in BAD_INPUTS.items():
            resource = serve(f"/{case}.xml")
            if resource is not None:
                server.add(f"/{case}.xml", resource)
            urls[case] = server.url(f"/{case}.xml")
        raw = rss_source_config(urls, database=str(db))
        # 5 s: the good source gets room on a busy machine; the slow drip (minutes of body) still hits it
        raw["fetch"] = {"per_host_delay": "0s", "per_host_concurrency": 8, "timeout": "5s", "max_bytes": "5MiB"}
        config = parse_config(yaml.safe_dump(raw))
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            results = {
                r.source_id: r
                for r in asyncio.run(run(config, once=True, install_signals=False, classifier=rules_classifier()))
            }
    store = Store(db)
    yield Cycle(results, logs, {r["id"]: r for r in store.sources()}, listed(store, queue="all", limit=1000))
    store.close()


def test_pipeline_good_source_is_unharmed_by_bad_neighbours(hostile_cycle: Cycle) -> None:
    assert hostile_cycle.results["good"].status == "ok"
    assert hostile_cycle.results["good"].counts["new"] == 5
    assert sum(b.source == "good" for b in hostile_cycle.beacons) == 5
    assert hostile_cycle.sources["good"]["errors"] == 0


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_pipeline_bad_input_is_isolated_logged_and_counted(hostile_cycle: Cycle, case: str) -> None:
    _, expected_status, reason = BAD_INPUTS[case]
    result = hostile_cycle.results[case]
    counters = hostile_cycle.sources[case]
    assert result.status == expected_status, result.error
    if expected_status == "error":
        assert reason in (result.error or "")
        assert any(
            e["event"] == "source.polled"
            and e.get("source") == case
            and e["status"] == "error"
            and reason in e["error"]
            for e in hostile_cycle.logs
        )
        assert (counters["errors"], counters["last_status"]) == (1, "error")
        assert reason in counters["last_error"]
    else:
        assert any(
            e["event"] == "mention.skipped" and e.get("source") == case and e["reason"] == reason
            for e in hostile_cycle.logs
        )
        assert counters["skipped"] >= 1 and counters["errors"] == 0
    for b in hostile_cycle.beacons:
        if b.source == case:
            assert "lollol" not in b.text and "root:" not in b.text and "\x00" not in b.text


def test_pipeline_bad_entries_are_skipped_not_the_feed(hostile_cycle: Cycle) -> None:
    stored = {b.source for b in hostile_cycle.beacons}
    for case in (
        "malformed_xml",
        "truncated_xml",
        "missing_fields",
        "wrong_encoding",
        "invalid_utf8",
        "nul_bytes",
        "billion_laughs",
        "external_entity",
    ):
        assert case in stored, case
    assert hostile_cycle.sources["missing_fields"]["skipped"] == 2
    assert hostile_cycle.results["missing_fields"].counts["new"] == 3  # kept without id, link or date
