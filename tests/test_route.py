"""Routing (issue 5): thresholds, drop list, language, override rules, teams, the priority formula, grouping words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from helpers_queue import BRANDS, classification, match, mention

from beacons.config import parse_config
from beacons.errors import ConfigError
from beacons.route import Rules, content_words, decide, priority, route, similarity, urgency

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def rules(routing: dict[str, Any] | None = None, brands: list[dict[str, Any]] | None = None) -> Rules:
    sources = [{"kind": "rss", "id": name, "url": f"https://{name}.example/feed"} for name in ("hn", "forum")]
    config = parse_config(
        yaml.safe_dump({"brands": brands or BRANDS, "sources": sources, "routing": routing or {}}), env={}
    )
    return Rules.from_config(config.routing, config.brand_models())


def post(
    text: str = "My RouterX keeps rebooting",
    *,
    title: str = "",
    source: str = "forum",
    author: str | None = "sam",
    url: str | None = "https://forum.example/t/1",
    age: timedelta = timedelta(minutes=5),
    reach: int | None = None,
) -> Any:
    m = mention(source, author, title, text, url, reach=reach, now=NOW)
    return type(m)(m.source_id, m.url, m.guid, m.title, m.text, m.author, NOW - age, NOW, m.raw, reach)


# -- the priority formula ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "kw", "text", "age", "reach", "expected"),
    [
        # support: 35 + 20*0.8 + 10*0.4 = 55
        ("support", {"support": 0.8, "sentiment": -0.4}, "RouterX reboots", timedelta(0), None, 55),
        # + one urgency kind (outage): 25 * (1 - e^-1) = 15.8
        ("support", {"support": 0.8, "sentiment": -0.4}, "RouterX is down again", timedelta(0), None, 71),
        # + reach 9999 followers: 2.5*log10(10000) = 10
        ("support", {"support": 0.8, "sentiment": -0.4}, "RouterX is down again", timedelta(0), 9999, 81),
        # 4 days old: recency -10 * (3 days / 6 days) = -5
        ("support", {"support": 0.8, "sentiment": -0.4}, "RouterX reboots", timedelta(days=4), None, 50),
        # older than 7 days: -10
        ("support", {"support": 0.8, "sentiment": -0.4}, "RouterX reboots", timedelta(days=30), None, 45),
        # positive sentiment adds nothing to support
        ("support", {"support": 0.8, "sentiment": 0.6}, "RouterX reboots", timedelta(0), None, 51),
        # intents no longer stand in for urgency: a bug is not urgent by itself
        (
            "support",
            {"support": 0.8, "sentiment": -0.4, "intents": {"bug_outage": 0.9}},
            "RouterX reboots",
            timedelta(0),
            None,
            55,
        ),
        # two kinds (URGENT + payments): 25 * (1 - e^-2.4) = 22.7
        ("support", {"support": 0.8, "sentiment": 0.0}, "URGENT card payments failing", timedelta(0), None, 74),
        # everything at its maximum: 35 + 20 + 10 + 25 + 10 = 100
        (
            "support",
            {"support": 1.0, "sentiment": -1.0},
            "URGENT outage, all our stores offline, payments failing",
            timedelta(0),
            10**9,
            100,
        ),
        # advocacy: 10 + 30*0.9 + 10*0.5 = 42
        ("advocacy", {"advocacy": 0.9, "support": 0.0, "sentiment": 0.5}, "love my RouterX", timedelta(0), None, 42),
        # + reach 99: 2 * 2.5*log10(100) = 10
        ("advocacy", {"advocacy": 0.9, "support": 0.0, "sentiment": 0.5}, "love my RouterX", timedelta(0), 99, 52),
        # never below 0: 10 + 0 + 0 - 10
        ("advocacy", {"advocacy": 0.0, "support": 0.0, "sentiment": -0.9}, "meh", timedelta(days=9), None, 0),
        ("none", {"support": 0.1}, "RouterX is down", timedelta(0), 10**6, 0),
    ],
)
def test_route_priority_formula(
    queue: str, kw: dict[str, Any], text: str, age: timedelta, reach: int | None, expected: int
) -> None:
    c = classification(queue, **kw)
    assert priority(post(text, age=age, reach=reach), c, queue=queue, now=NOW) == expected  # type: ignore[arg-type]


def test_route_priority_recency_is_flat_on_the_first_day() -> None:
    c = classification("support", support=0.8, sentiment=-0.4)
    fresh = [priority(post(age=timedelta(hours=h)), c, now=NOW) for h in (0, 6, 23)]
    assert fresh == [55, 55, 55]


def test_route_priority_unknown_date_counts_as_fresh() -> None:
    m = post()
    undated = type(m)(m.source_id, m.url, m.guid, m.title, m.text, m.author, None, NOW, m.raw)
    assert priority(undated, classification("support", support=0.8, sentiment=-0.4), now=NOW) == 55


@pytest.mark.parametrize(
    ("text", "urgent"),
    [
        ("Acme Cloud is down again", True),
        ("the whole service down since 9am", True),  # "down since" is urgent on its own
        ("Acme Cloud down for anyone else?", True),
        ("big outage at Acme", True),
        ("URGENT: all our payment terminals are offline, cannot take card payments", True),
        ("my account was hacked", True),
        ("data loss after the update", True),
        ("the update deleted all my notes from the last three years", True),
        ("nobody can log in at our office since 9", True),
        ("I want a refund", False),  # billing, not urgent by itself
        ("scroll down to the settings", False),
        ("download the firmware", False),
        ("a breakdown of the costs", False),
        ("love it", False),
    ],
)
def test_route_urgency_words(text: str, urgent: bool) -> None:
    assert (urgency(post(text), classification()) >= 0.5) == urgent


def test_route_urgent_outage_outranks_an_angry_sync_bug_issue_12() -> None:
    """Urgency raises priority whatever the tone: a calm terminal outage beats a furious sync bug."""
    terminals = post("URGENT: all our payment terminals are offline, cannot take card payments")
    sync = post("Notebook sync is broken AGAIN, my notes never show up on the laptop. So annoyed.")
    calm = classification("support", support=0.6, sentiment=0.0)
    angry = classification("support", support=0.95, sentiment=-0.8)
    assert priority(terminals, calm, now=NOW) > priority(sync, angry, now=NOW)


# -- the rules, in order ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "queue"),
    [
        ({"support": 0.8, "advocacy": 0.1}, "support"),
        ({"support": 0.49, "advocacy": 0.1}, "none"),  # below support_threshold
        ({"support": 0.6, "advocacy": 0.6}, "support"),  # a tie goes to support
        ({"support": 0.3, "advocacy": 0.7}, "advocacy"),
        ({"support": 0.9, "advocacy": 0.0, "relevance": 0.2}, "none"),  # not about the brand
    ],
)
def test_route_thresholds_decide_the_queue(kw: dict[str, Any], queue: str) -> None:
    assert route(post(), match(), classification("support", **kw), rules(), now=NOW).queue == queue


def test_route_thresholds_come_from_the_config() -> None:
    strict = rules({"support_threshold": 0.9})
    assert route(post(), match(), classification(support=0.8), strict, now=NOW).queue == "none"
    assert route(post(), match(), classification(support=0.8), rules(), now=NOW).queue == "support"


def test_route_support_threshold_per_brand() -> None:
    per_brand = rules({"support_threshold": {"default": 0.9, "acme": 0.4}})
    assert per_brand.support_for("Acme") == 0.4 and per_brand.support_for("Other") == 0.9
    assert route(post(), match(), classification(support=0.45), per_brand, now=NOW).queue == "support"
    other = match()
    other = type(other)("Globex", None, other.spans)
    assert route(post(), other, classification(support=0.8), per_brand, now=NOW).queue == "none"


def test_route_no_brand_is_none() -> None:
    r = route(post(), None, classification(), rules(), now=NOW)
    assert (r.queue, r.priority, r.reason) == ("none", 0, "brand: no brand mentioned")


@pytest.mark.parametrize(
    ("author", "url", "dropped"),
    [
        ("spambot", "https://forum.example/t/1", True),
        ("@SpamBot", "https://forum.example/t/1", True),  # case and a leading @ do not matter
        ("sam", "https://spam.example/x", True),
        ("sam", "https://www.spam.example/x", True),  # subdomains too
        ("sam", "https://notspam.example/x", False),
        ("sam", None, False),
    ],
)
def test_route_drop_list(author: str, url: str | None, dropped: bool) -> None:
    r = rules({"drop": {"authors": ["spambot"], "domains": ["spam.example"]}})
    decision = route(post(author=author, url=url), match(), classification(support=0.9), r, now=NOW)
    assert (decision.queue == "none") is dropped
    if dropped:
        assert decision.reason.startswith("drop:")


@pytest.mark.parametrize(
    ("setting", "lang", "queue"),
    [
        ("keep", "de", "support"),
        ("none", "de", "none"),
        ("drop", "fr", "none"),
        ("none", "en", "support"),
        ("none", None, "support"),
    ],
)
def test_route_non_english(setting: str, lang: str | None, queue: str) -> None:
    c = classification(support=0.9, lang=lang)
    assert route(post(), match(), c, rules({"non_english": setting}), now=NOW).queue == queue


OUTAGE_RULE = {
    "name": "urgent",
    "keywords": ["outage", "security", "data loss"],
    "queue": "support",
    "min_priority": 80,
}


@pytest.mark.parametrize(
    ("text", "kw", "queue", "prio"),
    [
        # classified as advocacy, but "security" forces support at priority >= 80
        (
            "Thanks Acme for the quick security patch, love it",
            {"support": 0.1, "advocacy": 0.9, "sentiment": 0.8},
            "support",
            80,
        ),
        # below every threshold, the keyword still makes it support
        ("Acme Cloud outage", {"support": 0.2, "advocacy": 0.0, "sentiment": 0.0}, "support", 80),
        # already above 80: the floor does not lower it
        ("Acme Cloud outage, everything is down, data loss", {"support": 1.0, "sentiment": -1.0}, "support", 87),
        # a phrase matches across any whitespace, case-insensitively
        ("reports of DATA\n loss", {"support": 0.2}, "support", 80),
        # whole words only: "outages" and "insecurity" are other words
        ("planned outages page", {"support": 0.2}, "none", 0),
        ("insecurity", {"support": 0.2}, "none", 0),
    ],
)
def test_route_keyword_override(text: str, kw: dict[str, Any], queue: str, prio: int) -> None:
    r = route(post(text), match(), classification("support", **kw), rules({"rules": [OUTAGE_RULE]}), now=NOW)
    assert (r.queue, r.priority) == (queue, prio)
    if queue == "support":
        assert r.reason == "rule urgent: queue support, min_priority 80"


def test_route_override_conditions_all_hold_and_first_rule_wins() -> None:
    r = rules(
        {
            "rules": [
                {
                    "name": "hn-cloud",
                    "sources": ["hn"],
                    "products": ["Acme Cloud"],
                    "team": "cloud-oncall",
                    "min_priority": 70,
                },
                {"name": "hn", "sources": ["hn"], "queue": "advocacy"},
            ]
        }
    )
    cloud = route(
        post(source="hn"), match(product="Acme Cloud"), classification(support=0.9, sentiment=0.0), r, now=NOW
    )
    assert (cloud.queue, cloud.team, cloud.priority, cloud.reason) == (
        "support",
        "cloud-oncall",
        70,
        "rule hn-cloud: min_priority 70, team cloud-oncall",
    )
    router = route(post(source="HN"), match(product="RouterX"), classification(support=0.9), r, now=NOW)
    assert (
        router.queue == "advocacy"
    )  # the first rule needs Acme Cloud; the second one matches (source ids ignore case)
    other = route(post(source="forum"), match(product="Acme Cloud"), classification(support=0.9), r, now=NOW)
    assert other.reason.startswith("classifier")


def test_route_override_on_classifier_queue() -> None:
    r = rules({"rules": [{"name": "promote-praise", "queues": ["advocacy"], "brands": ["acme"], "min_priority": 60}]})
    assert route(post(), match(), classification(support=0.1, advocacy=0.9, sentiment=0.5), r, now=NOW).priority == 60
    assert (
        route(post(), match(), classification(support=0.9, sentiment=-0.4), r, now=NOW).priority == 57
    )  # 35 + 18 + 4, no floor


@pytest.mark.parametrize(
    ("product", "routing", "team"),
    [
        (
            "RouterX",
            {"teams": [{"name": "networking", "products": ["RouterX"]}, {"name": "general", "brands": ["Acme"]}]},
            "networking",
        ),
        (
            None,
            {"teams": [{"name": "networking", "products": ["RouterX"]}, {"name": "general", "brands": ["Acme"]}]},
            "general",
        ),
        ("Acme Cloud", {}, "cloud"),  # the product's team: under brands:
        ("RouterX", {}, None),
        (
            "RouterX",
            {
                "teams": [{"name": "networking", "products": ["RouterX"]}],
                "rules": [{"name": "r", "keywords": ["rebooting"], "team": "triage"}],
            },
            "triage",
        ),
    ],
)
def test_route_team(product: str | None, routing: dict[str, Any], team: str | None) -> None:
    brands = [{**BRANDS[0], "products": [{"name": "RouterX"}, {"name": "Acme Cloud", "team": "cloud"}]}]
    assert (
        route(post(), match(product=product), classification(support=0.9), rules(routing, brands), now=NOW).team == team
    )


def test_route_explain_lists_every_step() -> None:
    r = rules(
        {
            "rules": [{"name": "billing", "keywords": ["refund"], "team": "billing"}, OUTAGE_RULE],
            "teams": [{"name": "networking", "products": ["RouterX"]}],
        }
    )
    decision = decide(
        post("Acme Cloud outage, I want a refund"), match(), classification(support=0.8, sentiment=-0.4), r, now=NOW
    )
    steps = [(s.rule, s.outcome) for s in decision.steps]
    assert steps == [
        ("brand", "pass"),
        ("drop", "pass"),
        ("language", "pass"),
        ("classifier", "decided"),
        ("rule billing", "matched"),
        ("rule urgent", "skipped"),
        ("priority", "71"),
        ("team", "billing"),
    ]
    assert "keyword 'refund'" in decision.steps[4].detail
    assert "an earlier rule already matched" in decision.steps[5].detail
    assert (
        decision.steps[6].detail
        == "base 35.0 + score 16.0 + negativity 4.0 + urgency 15.8 + reach 0.0 + recency 0.0 = 70.8"
    )
    assert decision.route.team == "billing"


def test_route_explain_stops_at_the_deciding_rule() -> None:
    decision = decide(
        post(author="spambot"), match(), classification(), rules({"drop": {"authors": ["spambot"]}}), now=NOW
    )
    assert [(s.rule, s.outcome) for s in decision.steps] == [("brand", "pass"), ("drop", "decided")]


# -- config validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routing", "problem"),
    [
        ({"rules": [{"name": "x", "queue": "support"}]}, "routing.rules[0]: needs at least one condition"),
        ({"rules": [{"name": "x", "keywords": ["a"]}]}, "routing.rules[0]: needs at least one action"),
        (
            {"rules": [{"name": "x", "keywords": ["a"], "min_priority": 101}]},
            "routing.rules[0].min_priority: must be 0..100",
        ),
        (
            {"rules": [{"name": "x", "keywords": ["a"], "queue": "urgent"}]},
            "routing.rules[0].queue: expected one of support, advocacy, none",
        ),
        (
            {"rules": [{"name": "x", "brands": ["Acne"], "queue": "none"}]},
            "routing.rules[0].brands[0]: unknown brand 'Acne' (did you mean \"Acme\"?)",
        ),
        (
            {"rules": [{"name": "x", "sources": ["nope"], "queue": "none"}]},
            "routing.rules[0].sources[0]: unknown source 'nope'",
        ),
        (
            {
                "rules": [
                    {"name": "x", "keywords": ["a"], "queue": "none"},
                    {"name": "x", "keywords": ["b"], "queue": "none"},
                ]
            },
            "routing.rules[1].name: duplicate rule name",
        ),
        (
            {"rules": [{"name": "x", "keyword": ["a"]}]},
            'routing.rules[0].keyword: unknown key (did you mean "keywords"?)',
        ),
        (
            {"teams": [{"name": "net", "products": ["RouterZ"]}]},
            "routing.teams[0].products[0]: unknown product 'RouterZ'",
        ),
        ({"teams": [{"name": "net"}]}, "routing.teams[0]: needs brands or products"),
        (
            {"drop": {"domains": ["https://spam.example/"]}},
            "routing.drop.domains[0]: expected a host name like spam.example",
        ),
        ({"support_threshold": 1.5}, "routing.support_threshold: must be between 0 and 1"),
        ({"support_threshold": {"Acmee": 0.4}}, "routing.support_threshold.Acmee: unknown brand 'Acmee'"),
        ({"support_threshold": {"default": 2}}, "routing.support_threshold.default: must be between 0 and 1"),
        ({"support_threshold": {"default": "low"}}, "routing.support_threshold.default: expected a number"),
        ({"grouping": {"window": "soon"}}, 'routing.grouping.window: expected a duration like 5m, got "soon"'),
        ({"grouping": {"similarity": 0}}, "routing.grouping.similarity: must be above 0"),
    ],
)
def test_route_config_errors_name_the_key_path(routing: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump({"brands": BRANDS, "routing": routing}), env={})
    assert any(str(p).startswith(problem) for p in info.value.problems), info.value.problems


def test_route_config_accepts_the_documented_example() -> None:
    text = """
brands:
  - name: Acme
    products: [{name: RouterX}, {name: Acme Cloud, team: cloud}]
routing:
  support_threshold: 0.5
  advocacy_threshold: 0.6
  rules:
    - name: urgent
      keywords: [outage, security, data loss]
      queue: support
      min_priority: 80
    - name: hn-is-advocacy
      sources: []
      brands: [Acme]
      queues: [none]
      keywords: [love]
      queue: advocacy
  teams:
    - name: networking
      products: [RouterX]
  drop:
    authors: [spambot]
    domains: [spam.example]
  grouping:
    window: 6h
    similarity: 0.5
    min_shared: 2
"""
    config = parse_config(text, env={})
    assert config.routing.rules[0].keywords == ("outage", "security", "data loss")
    assert config.routing.grouping.window == 6 * 3600
    assert Rules.from_config(config.routing, config.brand_models()).product_teams[0] == (
        "routerx",
        "networking",
        "routing.teams[0]",
    )


# -- grouping words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (
            "Acme Cloud outage? Dashboard returns 502",
            "Getting 502 errors on the Acme Cloud dashboard, anyone else?",
            True,
        ),
        ("RouterX drops wifi every night", "My RouterX keeps dropping the wifi at night", True),
        ("Acme Cloud outage? Dashboard returns 502", "Charged twice for Acme Cloud Plus, I want a refund", False),
        ("RouterX drops wifi every night", "How do I set up a guest network on the RouterX?", False),
    ],
)
def test_route_similar_posts(a: str, b: str, same: bool) -> None:
    names = ["Acme", "Acme Cloud", "RouterX"]
    score, shared = similarity(content_words(a, names), content_words(b, names))
    assert (score >= 0.5 and shared >= 2) is same, (score, shared, content_words(a, names), content_words(b, names))


def test_route_content_words_drop_brand_names_and_stopwords() -> None:
    assert content_words("Is the Acme RouterX dropping packets?", ["Acme", "RouterX"]) == frozenset({"dropp", "packet"})
