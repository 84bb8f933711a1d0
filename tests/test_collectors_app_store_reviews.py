"""app_store_reviews: Apple's reviews feed, the page in the path, stars into the mention and into routing."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from helpers_db import listed
from helpers_search import ACME, SPECS, FixtureSite, make_source, poll_kind

from beacons.classify import RulesClassifier
from beacons.config import ConfigError, parse_config
from beacons.feedserver import FeedServer
from beacons.fetch import FetchLimits
from beacons.match import implied_match
from beacons.pipeline import Pipeline
from beacons.queue.queries import routing_input
from beacons.route import decide, priority_terms
from beacons.storage import open_storage
from collectors.app_store_reviews import parse

SPEC = SPECS["app_store_reviews"]


@pytest.fixture
def site(feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, SPEC)


def test_app_store_reviews_reads_the_storefront_and_app_in_the_path(site: FixtureSite) -> None:
    asyncio.run(poll_kind(make_source(SPEC, site.base_url), cursor="2026-11-22T12:00:00Z"))
    assert [r["path"] for r in site.requests] == [
        "/us/rss/customerreviews/page=1/id=1234567890/sortby=mostrecent/json",
        "/us/rss/customerreviews/page=2/id=1234567890/sortby=mostrecent/json",
    ]


def test_app_store_reviews_rating_and_guid_from_the_feed() -> None:
    first, second, third = parse(SPEC.body("page1"), source_id="a")
    assert [m.rating for m in (first, second, third)] == [1, 5, 3]
    assert first.guid == "appstore:11900000003" and first.url is None  # a review has no address of its own
    assert first.author == "wifi_woes_22"
    assert first.published_at == datetime(2026, 11, 23, 16, 40, tzinfo=UTC)  # -07:00 in the feed


def test_app_store_reviews_one_review_is_an_object_not_a_list() -> None:
    (only,) = parse(SPEC.dir.joinpath("single.json").read_bytes(), source_id="a")
    assert only.guid == "appstore:11900000003"


def test_app_store_reviews_the_apps_own_entry_is_not_a_review() -> None:
    skipped: list[tuple[str, str]] = []
    body = SPEC.dir.joinpath("with_app_entry.json").read_bytes()
    mentions = parse(body, source_id="a", skip=lambda r, d: skipped.append((r, d)))
    assert [m.guid for m in mentions] == ["appstore:11900000003"] and skipped == []


def test_app_store_reviews_one_star_with_a_problem_is_support_and_ranks_higher() -> None:
    review = parse(SPEC.body("page1"), source_id="a")[0]
    match = implied_match(None, ACME, "RouterX", "a")
    classification = RulesClassifier().classify(review.full_text, match)
    one_star = decide(review, match, classification)
    assert one_star.route.queue == "support"
    unrated = replace(review, rating=None)
    terms = priority_terms(review, classification, "support")
    assert terms["low_rating"] == 10
    assert "low_rating" not in priority_terms(unrated, classification, "support")
    assert one_star.route.priority > decide(unrated, match, classification).route.priority


def test_app_store_reviews_low_rating_halves_the_support_threshold() -> None:
    review = parse(SPEC.body("page2"), source_id="a")[0]  # two stars: "Notifications never arrive"
    match = implied_match(None, ACME, None, "a")
    classification = replace(
        RulesClassifier().classify(review.full_text, match), scores={"support": 0.3, "advocacy": 0.1}, relevance=1.0
    )
    assert decide(replace(review, rating=5), match, classification).route.queue == "none"
    decision = decide(review, match, classification)
    assert decision.route.queue == "support" and "halved for a 2-star review" in decision.route.reason


@pytest.mark.parametrize(
    ("keys", "where"),
    [({"app_id": "acme-home"}, "app_id"), ({"pages": 11}, "pages"), ({"country": "usa"}, "country")],
)
def test_app_store_reviews_config_errors_name_the_key(keys: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError, match=rf"sources\[0\]\.{where}: expected"):
        make_source(SPEC, "http://127.0.0.1:1", **keys)


class _Failing(RulesClassifier):
    def classify_many(self, items: Any) -> Any:
        raise RuntimeError("model not loaded")

    def classify(self, text: str, match: Any) -> Any:
        raise RuntimeError("model not loaded")


def test_app_store_reviews_rating_is_stored_and_read_back(database: str) -> None:
    """Both backends keep the stars: route --explain, a re-route and a retried classification weigh them too."""
    source = make_source(SPEC, "http://127.0.0.1:1")
    reviews = parse(SPEC.body("page1"), source_id=source.id)
    store = open_storage(database)
    try:
        store.sync_sources([source])

        async def ingest(classifier: RulesClassifier, mentions: list[Any]) -> None:
            async with httpx.AsyncClient() as client:
                pipeline = Pipeline(
                    store=store, client=client, classifier=classifier, brands=[ACME], limits=FetchLimits()
                )
                pipeline.ingest(source.id, mentions, source=source)

        asyncio.run(ingest(RulesClassifier(), reviews[2:]))  # "Ok but slow": three stars, no name in it
        (beacon,) = listed(store, queue="all")
        assert beacon.rating == 3 and beacon.to_json()["rating"] == 3  # the queue, API and CLI JSON show the stars
        seen = routing_input(store, beacon.id)
        assert seen is not None and seen[0].rating == 3 and seen[1] is not None and seen[1].implied_by == source.id
        asyncio.run(ingest(_Failing(), reviews[1:2]))
        ((_, pending, _),) = store.unclassified()
        assert pending.rating == 5
    finally:
        store.close()


def test_app_store_reviews_default_id_names_the_app() -> None:
    text = "brands: [{name: Acme}]\nsources: [{kind: app_store_reviews, app_id: 1234567890}]\n"
    assert parse_config(text, env={}).sources[0].id == "app_store_reviews:1234567890"
