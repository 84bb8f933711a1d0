"""Insights (issue 14): figures from a database of known content, asserted exactly on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers_db import rows, write
from helpers_insights import NOW, SINCE, UNTIL, seed, t

from beacons.errors import InvalidInput
from beacons.insights import build, for_agent, make_query, median, p90
from beacons.storage import Storage
from beacons.storage.insights import hour_of
from beacons.storage.types import Sla

SLA = Sla(queues=(("support", 7200.0), ("advocacy", 86400.0)))


@pytest.fixture
def seeded(database: str) -> Any:
    store = Storage(database)
    try:
        ids = seed(store)
        yield store, ids
    finally:
        store.close()


def _report(store: Storage, **kw: Any) -> dict[str, Any]:
    since, until = kw.pop("since", SINCE), kw.pop("until", UNTIL)
    return build(store, make_query(since, until, **kw), sla=SLA, now=NOW)


def test_insights_volume_per_day_stacked_by_queue(seeded: Any) -> None:
    store, _ = seeded
    report = _report(store)
    assert report["buckets"] == ["2026-11-20T00:00:00+00:00", "2026-11-21T00:00:00+00:00", "2026-11-22T00:00:00+00:00"]
    assert report["volume"]["queues"] == {"support": [2, 1, 1], "advocacy": [1, 2, 0], "none": [1, 1, 0]}
    assert report["volume"]["total"] == 9
    members = {(m["brand"], m["product"]): m for m in report["volume"]["by_member"]}
    assert members[("Acme", "RouterX")]["support"] == [2, 0, 1]
    assert members[("Acme", "Acme Cloud")]["support"] == [0, 1, 0]
    assert members[("Acme", None)]["advocacy"] == [1, 2, 0] and members[("Acme", None)]["none"] == [1, 1, 0]


def test_insights_sentiment_shares_and_change_against_previous_period(seeded: Any) -> None:
    store, _ = seeded
    s = _report(store)["sentiment"]
    assert s["counts"] == {"negative": [2, 0, 1], "neutral": [1, 1, 0], "positive": [1, 2, 0]}
    assert s["shares"][0] == {"negative": 0.5, "neutral": 0.25, "positive": 0.25}
    assert s["shares"][2] == {"negative": 1.0, "neutral": 0.0, "positive": 0.0}
    assert s["period"] == {"posts": 8, "shares": {"negative": 0.375, "neutral": 0.25, "positive": 0.375}}
    assert s["previous"] == {"posts": 2, "shares": {"negative": 0.5, "neutral": 0.0, "positive": 0.5}}
    assert s["change_pp"] == {"negative": -12.5, "neutral": 25.0, "positive": -12.5}
    router = next(m for m in s["by_member"] if m["product"] == "RouterX")
    assert router["shares"]["negative"] == 1.0 and router["change_pp"]["negative"] == 0.0


def test_insights_top_problems_by_intent_and_rising_phrases(seeded: Any) -> None:
    store, _ = seeded
    p = _report(store)["problems"]
    assert p["support_beacons"] == 4 and p["previous_support_beacons"] == 1
    assert [(i["intent"], i["beacons"], i["previous"]) for i in p["intents"]] == [
        ("bug_outage", 3, 0),
        ("account_billing", 1, 0),
        ("how_to", 1, 1),
    ]
    assert [(w["phrase"], w["beacons"], w["previous"], w["is_new"]) for w in p["phrases"]] == [
        ("wifi", 4, 0, True),
        ("drops", 2, 0, True),
    ]
    link = urlsplit(p["intents"][0]["link"])
    assert link.path == "/" and parse_qs(link.query) == {
        "queue": ["support"],
        "intent": ["bug_outage"],
        "since": ["2026-11-20T00:00:00Z"],
        "until": ["2026-11-23T00:00:00Z"],
        "status": ["all"],
    }
    assert parse_qs(urlsplit(p["phrases"][0]["link"]).query)["q"] == ["wifi"]


def test_insights_response_medians_p90_and_sla_breaches(seeded: Any) -> None:
    store, _ = seeded
    r = _report(store)["response"]
    assert r["overall"] == {
        "beacons": 7,
        "claimed": 4,
        "claim_median_s": 2700.0,
        "claim_p90_s": 10800.0,
        "resolved": 3,
        "resolve_median_s": 7200.0,
        "resolve_p90_s": 10800.0,
        "sla_breaches": 3,
    }
    teams = {row.pop("team"): row for row in r["teams"]}
    assert teams["networking"] == {
        "beacons": 3,
        "claimed": 2,
        "claim_median_s": 6300.0,
        "claim_p90_s": 10800.0,
        "resolved": 1,
        "resolve_median_s": 10800.0,
        "resolve_p90_s": 10800.0,
        "sla_breaches": 2,
    }
    assert teams["cloud"]["claim_median_s"] == 600.0 and teams["cloud"]["sla_breaches"] == 0
    assert teams["(no team)"]["sla_breaches"] == 1 and teams["(no team)"]["beacons"] == 3
    people = {row.pop("person"): row for row in r["people"]}
    assert people["alice"] == {
        "claimed": 2,
        "claim_median_s": 1200.0,
        "claim_p90_s": 1800.0,
        "resolved": 2,
        "resolve_median_s": 7200.0,
        "resolve_p90_s": 10800.0,
    }
    assert people["bob"]["claim_median_s"] == 7200.0 and people["bob"]["resolve_p90_s"] == 7200.0


def test_insights_backlog_is_open_beacons_at_each_day_end(seeded: Any) -> None:
    store, _ = seeded
    backlog = _report(store)["response"]["backlog"]
    assert backlog["open"] == [2, 3, 4]
    assert backlog["at"][-1] == "2026-11-23T00:00:00+00:00"
    # A range reaching past the clock has no backlog for the days still to come.
    later = _report(store, since=t(22, 0), until=t(25, 0))["response"]["backlog"]
    assert later["open"] == [4, None, None]


def test_insights_incidents_outages_advocates_and_sources(seeded: Any) -> None:
    store, ids = seeded
    report = _report(store)
    spikes = report["incidents"]["spikes"]
    assert [(s["brand"], s["product"], s["status"], s["beacon_ids"]) for s in spikes] == [
        ("Acme", "Acme Cloud", "closed", [ids["p5"]])
    ]
    assert parse_qs(urlsplit(spikes[0]["link"]).query)["since"] == ["2026-11-21T09:00:00Z"]
    outages = report["incidents"]["outages"]
    assert [(o["source"], o["started_at"][:16], (o["ended_at"] or "")[:16]) for o in outages] == [
        ("quiet", "2026-11-20T12:00", "2026-11-21T00:00")
    ]
    assert [(a["author"], a["posts"], a["reach"]) for a in report["advocates"]] == [("fan1", 2, 1500), ("fan2", 1, 300)]
    assert parse_qs(urlsplit(report["advocates"][0]["link"]).query)["q"] == ["fan1"]
    series = {s["source"]: (s["counts"], s["beacons"]) for s in report["sources"]["series"]}
    assert series == {"forum": ([2, 2, 1], 4), "quiet": ([0, 0, 0], 0), "social": ([2, 2, 0], 3)}
    assert report["sources"]["idle"] == [{"source": "quiet", "posts": 0}]


def test_insights_filters_by_team_and_source(seeded: Any) -> None:
    store, _ = seeded
    team = _report(store, team="Networking")
    assert team["volume"]["queues"] == {"support": [2, 0, 1], "advocacy": [0, 0, 0], "none": [0, 0, 0]}
    assert [row["team"] for row in team["response"]["teams"]] == ["networking"]
    forum = _report(store, source="forum")
    assert forum["volume"]["queues"] == {"support": [2, 0, 1], "advocacy": [0, 1, 0], "none": [0, 1, 0]}
    assert [s["source"] for s in forum["sources"]["series"]] == ["forum"]
    assert forum["incidents"]["outages"] == []


def test_insights_hour_buckets_and_viewer_time_zone(seeded: Any) -> None:
    store, _ = seeded
    hourly = _report(store, since=t(22, 0), until=t(23, 0), bucket="hour")
    assert len(hourly["buckets"]) == 24
    assert hourly["volume"]["queues"]["support"][10] == 1 and sum(hourly["volume"]["queues"]["support"]) == 1
    ny = _report(store, tz="America/New_York")
    assert ny["buckets"][0] == "2026-11-19T00:00:00-05:00" and len(ny["buckets"]) == 4
    assert ny["volume"]["queues"]["support"] == [0, 2, 1, 1]


def test_insights_agent_sees_only_their_own_response_figures(seeded: Any) -> None:
    store, _ = seeded
    mine = for_agent(_report(store), "bob")
    assert mine["scope"] == "self" and set(mine) >= {"since", "until", "response"}
    assert "volume" not in mine and "advocates" not in mine
    assert [p["person"] for p in mine["response"]["people"]] == ["bob"]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"since": UNTIL, "until": SINCE}, "until"),
        ({"bucket": "week"}, "bucket"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"since": SINCE - timedelta(days=70), "bucket": "hour"}, "bucket"),
        ({"since": datetime(2024, 1, 1, tzinfo=UTC)}, "since"),
    ],
)
def test_insights_query_errors_name_the_parameter(kw: dict[str, Any], field: str) -> None:
    since, until = kw.pop("since", SINCE), kw.pop("until", UNTIL)
    with pytest.raises(InvalidInput) as info:
        make_query(since, until, **kw)
    assert str(info.value).startswith(field)


def test_insights_median_and_nearest_rank_p90() -> None:
    assert median([]) is None and p90([]) is None
    assert median([1, 2, 3, 10]) == 2.5 and p90([1, 2, 3, 10]) == 10.0
    assert p90(list(range(1, 11))) == 9.0 and p90(list(range(1, 12))) == 10.0


def _rollup_rows(store: Storage) -> set[tuple[Any, ...]]:
    """The rollup's rows; on PostgreSQL with the deltas the triggers appended since the last compaction."""
    split = "hour, brand, product, source_id, team, queue, sentiment"
    table = "insight_posts"
    if store.backend.name == "postgresql":
        table = f"(SELECT {split}, posts FROM insight_posts UNION ALL SELECT {split}, posts FROM insight_deltas) p"
    return {
        tuple(r)
        for r in rows(
            store, f"SELECT {split}, SUM(posts) FROM {table} GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING SUM(posts) != 0"
        )
    }


def _counted_rows(store: Storage) -> set[tuple[Any, ...]]:
    hour = hour_of(store.backend.name, "COALESCE(m.published_at, m.fetched_at)")
    return {
        tuple(r)
        for r in rows(
            store,
            f"SELECT {hour}, COALESCE(m.brand, ''), COALESCE(m.product, ''), m.source_id, COALESCE(b.team, ''),"
            " COALESCE(b.queue, 'none'), COALESCE(b.sentiment, ''), COUNT(*)"
            " FROM mentions m LEFT JOIN beacons b ON b.mention_id = m.id GROUP BY 1, 2, 3, 4, 5, 6, 7",
        )
    }


def test_insights_rollup_follows_every_write(seeded: Any) -> None:
    """The hourly rollup the charts read is what a count of the posts gives, after re-routes, relabels and deletes."""
    store, ids = seeded
    assert _rollup_rows(store) == _counted_rows(store) and len(_counted_rows(store)) >= 10
    write(store, "UPDATE beacons SET queue = 'support', team = 'networking' WHERE id = ?", [ids["p4"]])
    write(store, "UPDATE beacons SET sentiment = 'negative' WHERE id = ?", [ids["p6"]])
    write(store, "UPDATE mentions SET published_at = ?, brand = 'Globex' WHERE id = ?", [t(22, 23), ids["p3"]])
    write(store, "DELETE FROM mention_keys WHERE key = 'key-p8'")
    write(store, "DELETE FROM mentions WHERE guid = 'p8'")
    assert _rollup_rows(store) == _counted_rows(store)
    store.insight_compact()
    assert _rollup_rows(store) == _counted_rows(store)
    report = _report(store)
    assert report["volume"]["queues"] == {"support": [3, 1, 1], "advocacy": [0, 2, 1], "none": [0, 0, 0]}
