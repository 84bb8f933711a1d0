"""implies_brand / implies_product (issue 15): a source about one brand by construction makes each item a mention of it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_db import listed
from helpers_queue import seed
from helpers_search import ACME, ACME_YAML, SPECS, FixtureSite, open_pipeline, source_yaml

from beacons.classify import RulesClassifier
from beacons.config import Config, ConfigError, parse_config
from beacons.doctor import check_sources
from beacons.feedserver import FeedServer
from beacons.match import BrandMatcher, implied_match
from beacons.models import Brand, Mention, Source
from beacons.rescan import pipeline_for, rescan
from beacons.route import decide
from beacons.storage.types import match_from_json, match_json
from beacons.store import Store

GLOBEX_YAML = {"name": "Globex", "products": [{"name": "HammerPhone"}, {"name": "Acme Cloud"}]}
GLOBEX = Brand(name="Globex")
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _config(**source: Any) -> str:
    entry = {"id": "app", "kind": "rss", "url": "https://example.org/feed.xml", **source}
    return yaml.safe_dump({"brands": [ACME_YAML, GLOBEX_YAML], "sources": [entry]})


def _mention(title: str, text: str = "") -> Mention:
    key = str(abs(hash(title)))
    return Mention("app", f"https://example.org/r/{key}", f"r{key}", title, text, "kim", NOW, NOW, "{}")


@pytest.mark.parametrize(
    ("keys", "brand", "product"),
    [
        ({"implies_brand": "acme"}, "Acme", None),  # the spelling under brands: is kept
        ({"implies_brand": "Acme", "implies_product": "routerx"}, "Acme", "RouterX"),
        ({"implies_product": "HammerPhone"}, "Globex", "HammerPhone"),  # one brand has it: that brand
        ({}, None, None),
    ],
)
def test_sources_implies_config_names_a_configured_brand_and_product(
    keys: dict[str, str], brand: str | None, product: str | None
) -> None:
    source = parse_config(_config(**keys), env={}).sources[0]
    assert (source.implies_brand, source.implies_product) == (brand, product)


@pytest.mark.parametrize(
    ("keys", "where", "message"),
    [
        ({"implies_brand": "Acne"}, "implies_brand", "unknown brand 'Acne' (did you mean \"Acme\"?)"),
        (
            {"implies_brand": "Acme", "implies_product": "HammerPhone"},
            "implies_product",
            "not a product of brand 'Acme'",
        ),
        ({"implies_product": "Acme Cloud"}, "implies_product", "a product of several brands; set implies_brand too"),
        ({"implies_product": "Toaster"}, "implies_product", "not a product of any brand"),
    ],
)
def test_sources_implies_config_error_names_the_key(keys: dict[str, str], where: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(**keys), env={})
    problems = [(p.loc, p.msg) for p in caught.value.problems]
    assert len(problems) == 1
    assert problems[0][0] == f"sources[0].{where}" and message in problems[0][1]


def test_sources_implies_match_without_the_name_has_no_spans_and_says_why() -> None:
    matcher = BrandMatcher([ACME, GLOBEX])
    mention = _mention("Crashes on launch", "Since the update it closes right away. Globex's app never did that.")
    assert matcher.match(mention) is not None and matcher.match(mention).brand == "Globex"  # type: ignore[union-attr]
    match = implied_match(matcher.match(mention), ACME, "RouterX", "app")
    assert (match.brand, match.product, match.spans, match.implied_by) == ("Acme", "RouterX", (), "app")
    assert match.other_brands == ("Globex",)
    assert match_from_json(__import__("json").dumps(match_json(match))) == match  # stored and read back whole


def test_sources_implies_match_keeps_real_spans_when_the_text_names_the_brand() -> None:
    matcher = BrandMatcher([ACME])
    found = matcher.match(_mention("Acme app crashes"))
    match = implied_match(found, ACME, "RouterX", "app")
    assert match.implied_by is None and [s.text for s in match.spans] == ["Acme"]
    assert match.product == "RouterX"  # the text named no product: the source's is filled in


def test_sources_implies_route_explanation_says_the_source_implied_it() -> None:
    match = implied_match(None, ACME, None, "acme-app-reviews")
    mention = _mention("Crashes on launch", "It crashes every time I open it, please fix")
    decision = decide(mention, match, RulesClassifier().classify(mention.full_text, match))
    assert decision.steps[0].rule == "brand"
    assert decision.steps[0].detail == "Acme, implied by source acme-app-reviews (implies_brand)"


def test_sources_implies_pipeline_stores_items_that_do_not_name_the_brand(tmp_path: Path) -> None:
    plain = Source("plain", "rss", 300.0, None)
    implied = Source("reviews", "rss", 300.0, None, implies_brand="Acme", implies_product="RouterX")
    texts = [_mention("Crashes on launch", "It crashes every time I open it, please fix this"), _mention("Love it")]

    async def scenario() -> None:
        async with open_pipeline(tmp_path / "b.db", [plain, implied]) as (pipeline, store, _):
            counts = pipeline.ingest(
                "plain", [Mention(**{**_fields(m), "source_id": "plain"}) for m in texts], source=plain
            )
            assert counts["dropped_no_brand"] == 2 and counts["new"] == 0
            counts = pipeline.ingest(
                "reviews", [Mention(**{**_fields(m), "source_id": "reviews"}) for m in texts], source=implied
            )
            assert counts["dropped_no_brand"] == 0 and counts["new"] == 2
            stored = [store.get_beacon(i) for i in (1, 2)]
            assert {(b.brand, b.product, b.source) for b in stored if b} == {("Acme", "RouterX", "reviews")}

    asyncio.run(scenario())


def _fields(mention: Mention) -> dict[str, Any]:
    return {name: getattr(mention, name) for name in mention.__dataclass_fields__}


def test_sources_implies_doctor_says_every_entry_is_about_the_brand(feed_server: FeedServer) -> None:
    site = FixtureSite(feed_server, SPECS["app_store_reviews"])
    entry = source_yaml(site.spec, site.base_url, id="reviews")
    text = yaml.safe_dump(
        {"brands": [ACME_YAML], "sources": [entry], "classifier": {"model": "rules"}, "fetch": {"per_host_delay": "0s"}}
    )
    (check,) = asyncio.run(check_sources(parse_config(text, env={})))
    assert check.status == "ok" and check.detail.startswith("3 entries, all about Acme (implies_brand), 0 skipped")


def test_sources_implies_rescan_adopts_posts_kept_before_the_source_implied_a_brand(database: str) -> None:
    """Posts kept unmatched (retention.unmatched) become beacons once their source sets implies_brand."""
    source = {"id": "app", "kind": "rss", "url": "https://example.org/feed.xml"}

    def config(**keys: str) -> Config:
        data = {"database": database, "brands": [ACME_YAML], "sources": [{**source, **keys}]}
        return parse_config(yaml.safe_dump(data), env={}, path="<test>")

    posts = [_mention("Crashes on launch", "It crashes every time I open it, please fix this"), _mention("Love it")]
    seed(config(), posts)  # no name in them: kept unmatched
    with Store(database) as store:
        done = rescan(pipeline_for(config(implies_brand="Acme"), store, RulesClassifier()), now=NOW)
        assert (done["new"], done["still_unmatched"]) == (2, 0)
        brands = {b.brand for b in listed(store, queue="all")}
    assert brands == {"Acme"}
