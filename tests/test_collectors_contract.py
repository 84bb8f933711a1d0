"""One contract for every collector kind in the registry (issue 4).

Each kind has fixtures in the real format and a row in the README's source
table; parses its fixtures to the expected mentions; skips results whose
schema changed with a logged reason; reads one page on a first poll and pages
back to the stored cursor, no further; and survives the error pages (429 with
Retry-After obeyed, 500, HTML instead of JSON) as a failed poll, never a crash.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers_search import (
    CURSOR_LATE,
    CURSOR_MID,
    DOCS,
    SEARCH_KINDS,
    SPECS,
    FixtureSite,
    make_source,
    mention_record,
    open_pipeline,
    poll_kind,
)
from structlog.testing import capture_logs

from beacons.daemon import next_delay
from beacons.errors import ParseError, SourceError
from beacons.feedserver import FeedServer
from beacons.models import SourceState
from collectors import REGISTRY
from collectors._feed import parse_feed
from collectors._json import cursor_time, format_cursor

KINDS = sorted(REGISTRY)
FIXTURE_NAMES = ("page1", "page2", "empty", "old", "schema")
NO_QUERY_KINDS = {"mastodon_tag", "json_api", "html_page"}


def _parse(kind: str, body: bytes) -> tuple[list[Any], list[tuple[str, str]]]:
    skipped: list[tuple[str, str]] = []
    module = __import__(REGISTRY[kind].module, fromlist=["parse"])
    parse = getattr(module, "parse", parse_feed)  # rss parses with the shared feed parser
    extra: dict[str, Any] = dict(SPECS[kind].parse_kwargs) if kind in SPECS else {}  # discourse: the forum's address
    if "options" in inspect.signature(parse).parameters:  # configured kinds (json_api, html_page) parse by their config
        extra["options"] = make_source(SPECS[kind], "http://127.0.0.1:9").options
    mentions = parse(body, source_id="fixture", skip=lambda reason, detail: skipped.append((reason, detail)), **extra)
    return mentions, skipped


@pytest.fixture
def site(request: pytest.FixtureRequest, feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, SPECS[request.param])


# -- every kind: fixtures and docs -------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_collectors_contract_every_kind_has_fixtures(kind: str) -> None:
    assert kind in SPECS, f"{kind} has no fixture spec in tests/helpers_search.py"
    spec = SPECS[kind]
    if kind == "rss":
        assert spec.body("news").lstrip().startswith(b"<?xml")
        return
    for name in FIXTURE_NAMES:
        assert (spec.dir / f"{name}.{spec.ext}").is_file(), f"missing fixture {name}.{spec.ext}"
        assert (spec.dir / f"{name}.expected.json").is_file(), f"missing {name}.expected.json"
    for name in ("error_429", "error_500", "error_page"):
        assert list(spec.dir.glob(f"{name}.*")), f"missing the service's {name} response"


@pytest.mark.parametrize("kind", KINDS)
def test_collectors_contract_every_kind_is_documented(kind: str) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    row = next((line for line in docs.splitlines() if line.startswith(f"| `{kind}` |")), None)
    assert row is not None, f"no row for {kind} in the source table of {DOCS}"
    section = docs.split(f"### `{kind}`", 1)
    assert len(section) == 2, f"no '### `{kind}`' section in {DOCS}"
    body = section[1].split("\n### ", 1)[0]
    assert f"kind: {kind}" in body, "the section has no example source block"
    for name in (f.name for f in dataclasses.fields(REGISTRY[kind].options)):
        assert f"`{name}`" in row and f"| `{name}` |" in body, f"config key {name} of {kind} is not documented"


# -- parsing ---------------------------------------------------------------


@pytest.mark.parametrize("kind", SEARCH_KINDS)
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_collectors_contract_parses_fixture_to_expected_mentions(kind: str, name: str) -> None:
    spec = SPECS[kind]
    mentions, _ = _parse(kind, spec.body(name))
    assert [mention_record(m) for m in mentions] == spec.expected(name)
    for mention in mentions:
        assert mention.source_id == "fixture"
        assert isinstance(json.loads(mention.raw), dict | list)  # the raw result is kept


def test_collectors_contract_rss_parses_the_demo_feed() -> None:
    mentions, skipped = _parse("rss", SPECS["rss"].body("news"))
    assert len(mentions) == 5 and not skipped
    assert all(m.url and m.published_at for m in mentions)


@pytest.mark.parametrize("kind", SEARCH_KINDS)
def test_collectors_contract_schema_change_skips_results_with_reasons(kind: str) -> None:
    mentions, skipped = _parse(kind, SPECS[kind].body("schema"))
    assert mentions, "the well-formed results of a page with bad ones are kept"
    assert skipped, "each bad result is reported"
    for reason, detail in skipped:
        assert reason in ("bad_entry", "empty_entry")
        assert re.search(r"(entry|hit|item|post|comment|child|status|result) \d+", detail), detail


# -- over the wire: cursor and paging --------------------------------------


@pytest.mark.parametrize("site", SEARCH_KINDS, indirect=True)
def test_collectors_contract_first_poll_reads_one_page_and_stores_cursor(site: FixtureSite, tmp_path: Path) -> None:
    source = make_source(site.spec, site.base_url)

    async def scenario() -> None:
        async with open_pipeline(tmp_path / "b.db", [source]) as (pipeline, store, _):
            result = await pipeline.poll_source(source)
            assert result.status == "ok", result.error
            assert len(site.requests) == 1, "a new source reads one page, not the history"
            assert result.counts["entries"] == len(site.spec.expected("page1"))
            newest = max(datetime.fromisoformat(m["published_at"]) for m in site.spec.expected("page1"))
            assert cursor_time(store.source_state(source.id).cursor) == newest

    asyncio.run(scenario())


@pytest.mark.parametrize("site", SEARCH_KINDS, indirect=True)
def test_collectors_contract_pages_back_to_the_cursor_and_no_further(site: FixtureSite) -> None:
    source = make_source(site.spec, site.base_url)
    poll, _ = asyncio.run(poll_kind(source, cursor=CURSOR_MID))
    since = cursor_time(CURSOR_MID)
    pages = ["page1", "page2"] if site.spec.paged else ["page1"]
    expected = [
        m for name in pages for m in site.spec.expected(name) if datetime.fromisoformat(m["published_at"]) > since
    ]  # type: ignore[operator]
    assert [mention_record(m) for m in poll.mentions] == expected
    assert len(site.requests) == len(pages), "paging stops at the page that reaches the cursor"
    assert poll.cursor == format_cursor(max(datetime.fromisoformat(m["published_at"]) for m in expected))


@pytest.mark.parametrize("site", SEARCH_KINDS, indirect=True)
def test_collectors_contract_results_older_than_the_cursor_add_nothing(site: FixtureSite, tmp_path: Path) -> None:
    site.first = "old"
    source = make_source(site.spec, site.base_url)

    async def scenario() -> None:
        async with open_pipeline(tmp_path / "b.db", [source]) as (pipeline, store, _):
            store.save_poll(source.id, [], state=SourceState(cursor=CURSOR_LATE))
            result = await pipeline.poll_source(source)
            assert result.status == "ok" and result.counts["entries"] == 0 and result.counts["new"] == 0
            assert len(site.requests) == 1
            assert store.source_state(source.id).cursor == CURSOR_LATE, "the cursor never moves back"

    asyncio.run(scenario())


@pytest.mark.parametrize("site", SEARCH_KINDS, indirect=True)
def test_collectors_contract_empty_page_keeps_the_cursor(site: FixtureSite) -> None:
    site.first = "empty"
    poll, _ = asyncio.run(poll_kind(make_source(site.spec, site.base_url), cursor=CURSOR_LATE))
    assert poll.mentions == [] and poll.cursor is None  # None: the pipeline keeps the stored one
    assert len(site.requests) == 1


@pytest.mark.parametrize("site", [k for k in SEARCH_KINDS if SPECS[k].paged], indirect=True)
def test_collectors_contract_max_pages_bounds_the_catch_up_and_logs_the_gap(site: FixtureSite) -> None:
    own = {f.name for f in dataclasses.fields(REGISTRY[site.spec.kind].options)}
    one_page = {"pages" if "pages" in own else "max_pages": 1}  # app_store_reviews: Apple's word for it
    with capture_logs() as logs:
        poll, _ = asyncio.run(poll_kind(make_source(site.spec, site.base_url, **one_page), cursor=CURSOR_LATE))
    assert len(site.requests) == 1 and len(poll.mentions) == len(site.spec.expected("page1"))
    assert [e["pages"] for e in logs if e["event"] == "collector.gap"] == [1]


# -- over the wire: error pages ----------------------------------------------


@pytest.mark.parametrize("site", KINDS, indirect=True)
def test_collectors_contract_429_retry_after_is_obeyed(site: FixtureSite, tmp_path: Path) -> None:
    site.serve_error(429, {"Retry-After": "120"})
    source = make_source(site.spec, site.base_url)

    async def scenario() -> None:
        async with open_pipeline(tmp_path / "b.db", [source]) as (pipeline, _, politeness):
            result = await pipeline.poll_source(source)
            assert result.status == "error" and result.retry_after == 120
            assert next_delay(source, result, max_backoff=3600) >= 120
            assert politeness.paused_for("127.0.0.1") > 100
            site.heal()
            again = await pipeline.poll_source(source)
            assert again.status == "error" and again.retry_after and again.retry_after > 100
            assert len(site.requests) == 1, "no request reaches the host before its Retry-After has passed"

    asyncio.run(scenario())


@pytest.mark.parametrize("site", KINDS, indirect=True)
@pytest.mark.parametrize("failure", ["500", "html"])
def test_collectors_contract_error_pages_fail_the_poll_not_the_daemon(
    site: FixtureSite, failure: str, tmp_path: Path
) -> None:
    if failure == "500":
        site.serve_error(500)
    else:
        site.serve_html()
    source = make_source(site.spec, site.base_url)

    async def scenario() -> None:
        async with open_pipeline(tmp_path / "b.db", [source]) as (pipeline, store, _):
            result = await pipeline.poll_source(source)
            assert result.status == "error"
            assert ("500" in (result.error or "")) if failure == "500" else ("HTML" in (result.error or ""))
            assert store.source_state(source.id).cursor is None
            site.heal()
            assert (await pipeline.poll_source(source)).status == "ok", "the source recovers on the next poll"

    asyncio.run(scenario())


@pytest.mark.parametrize("site", SEARCH_KINDS, indirect=True)
def test_collectors_contract_schema_change_is_logged_and_counted(site: FixtureSite, tmp_path: Path) -> None:
    site.first = "schema"
    source = make_source(site.spec, site.base_url)
    _, skipped = _parse(site.spec.kind, site.spec.body("schema"))

    async def scenario() -> None:
        async with open_pipeline(tmp_path / "b.db", [source]) as (pipeline, store, _):
            with capture_logs() as logs:
                result = await pipeline.poll_source(source)
            assert result.status == "ok"
            assert result.counts["skipped"] == len(skipped) > 0
            logged = [e for e in logs if e["event"] == "mention.skipped"]
            assert [e["detail"] for e in logged] == [d for _, d in skipped]
            assert store.sources()[0]["skipped"] == len(skipped)

    asyncio.run(scenario())


# -- the cursor helpers --------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-11-22T12:00:00Z", datetime(2026, 11, 22, 12, tzinfo=UTC)),
        ("2026-11-22T12:00:00.250+01:00", datetime(2026, 11, 22, 11, 0, 0, 250000, tzinfo=UTC)),
        ("1795426200", datetime(2026, 11, 23, 9, 30, tzinfo=UTC)),
        ("not a time", None),
        (None, None),
    ],
)
def test_collectors_contract_cursor_reads_iso_and_epoch(stored: str | None, expected: datetime | None) -> None:
    assert cursor_time(stored) == expected
    if expected is not None:
        assert cursor_time(format_cursor(expected)) == expected


def test_collectors_contract_future_dated_result_does_not_move_the_cursor_past_now(feed_server: FeedServer) -> None:
    from beacons.models import Mention
    from collectors import PollContext
    from collectors._json import finish

    now = datetime.now(UTC)
    source = make_source(SPECS["hn_search"], feed_server.base_url)
    ctx = PollContext(source=source, state=SourceState(), fetch=None, brands=())  # type: ignore[arg-type]

    def at(when: datetime, guid: str) -> Mention:
        return Mention("s", None, guid, "t", "x", None, when, now, "{}")

    poll = finish(
        ctx,
        [at(now + timedelta(days=400), "a"), at(now - timedelta(hours=1), "b"), at(now - timedelta(hours=1), "b")],
        None,
    )
    assert [m.guid for m in poll.mentions] == ["a", "b"]
    assert poll.cursor == format_cursor(now - timedelta(hours=1))


def test_collectors_contract_missing_token_env_is_a_clear_source_error(feed_server: FeedServer) -> None:
    site = FixtureSite(feed_server, SPECS["github_issues"])
    source = make_source(site.spec, site.base_url, token_env="BEACONS_TEST_GH_TOKEN")
    with pytest.raises(
        SourceError, match=r"token_env names the environment variable BEACONS_TEST_GH_TOKEN, which is not set"
    ):
        asyncio.run(poll_kind(source, env={}))
    assert site.requests == []


# a tag feed, configured kinds whose url has no {query}, and kinds that read everything, search for nothing
@pytest.mark.parametrize(
    "site", [k for k in SEARCH_KINDS if k not in NO_QUERY_KINDS and SPECS[k].requires_query], indirect=True
)
def test_collectors_contract_no_query_and_no_brands_is_a_clear_error(site: FixtureSite) -> None:
    with pytest.raises(SourceError, match="nothing to search for; set query"):
        asyncio.run(poll_kind(make_source(site.spec, site.base_url, query=None), brands=()))
    assert site.requests == []


def test_collectors_contract_html_error_is_a_parse_error() -> None:
    from collectors._json import load_json

    with pytest.raises(ParseError, match="HTML page, not X JSON"):
        load_json(b"\n<!DOCTYPE html><html></html>", source_id="s", service="X")
