"""stackexchange_search: the API's own slow-down signals (backoff, quota, throttle_violation) and per-term search."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from helpers_clock import FakeClock, at
from helpers_search import CURSOR_MID, JSON_TYPE, SPECS, FixtureSite, make_source, poll_kind

from beacons.errors import HTTPStatusError
from beacons.feedserver import FeedServer
from beacons.fetch import Politeness

SPEC = SPECS["stackexchange_search"]


@pytest.fixture
def site(feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, SPEC)


def test_stackexchange_search_backoff_field_stops_paging_and_pauses_the_host(site: FixtureSite) -> None:
    site.first = "backoff"  # page 1 says has_more, but also backoff: 10
    clock = FakeClock()
    politeness = Politeness(per_host=2, delay=0.0, clock=clock)
    poll, ctx = asyncio.run(
        poll_kind(make_source(SPEC, site.base_url), cursor=CURSOR_MID, politeness=politeness, clock=clock)
    )
    assert len(site.requests) == 1, "no second call to the method before the backoff has passed"
    assert len(poll.mentions) == 3, "the page that carried the backoff is kept"
    assert ctx.retry_after == 10
    assert politeness.paused_for("127.0.0.1") == 10


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # the next midnight UTC, however far (not capped at 6 h), plus the one-minute margin
        (at("00:05"), 23 * 3600 + 55 * 60 + 60),
        (at("11:00"), 13 * 3600 + 60),
        (at("17:59"), 6 * 3600 + 60 + 60),
        (at("23:59"), 60 + 60),
        (at("23:59", day="2026-12-31"), 60 + 60),  # over a year's end
        (at("12:00", day="2028-02-28"), 12 * 3600 + 60),  # to Feb 29 in a leap year
    ],
)
@pytest.mark.parametrize("tz", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])  # UTC+14 and UTC-11
def test_stackexchange_search_exhausted_quota_waits_until_midnight_utc(
    site: FixtureSite, monkeypatch: pytest.MonkeyPatch, now: datetime, expected: float, tz: str
) -> None:
    """Issue 10: the daily quota resets at midnight UTC, whatever the hour and the local time zone."""
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        body = json.loads(SPEC.body("page1"))
        site.fail(200, json.dumps({**body, "quota_remaining": 0}).encode(), JSON_TYPE)
        clock = FakeClock(now)
        politeness = Politeness(per_host=2, delay=0.0, clock=clock)
        poll, ctx = asyncio.run(
            poll_kind(make_source(SPEC, site.base_url), cursor=CURSOR_MID, clock=clock, politeness=politeness)
        )
    finally:
        monkeypatch.undo()
        time.tzset()
    assert ctx.retry_after == expected
    assert politeness.paused_for("127.0.0.1") == expected  # every search on the host waits, not only this source
    assert len(site.requests) == 1, "no second page once the quota is spent"
    assert len(poll.mentions) == 3 and {m.fetched_at for m in poll.mentions} == {now}, "what came is kept"


def test_stackexchange_search_quota_wait_is_taken_in_utc_from_any_zone() -> None:
    from datetime import timezone

    from collectors.stackexchange_search import quota_wait

    kiritimati = datetime(2026, 11, 24, 13, 0, tzinfo=timezone(timedelta(hours=14)))  # 23:00 UTC the day before
    assert quota_wait(kiritimati) == 3600 + 60
    pago_pago = datetime(2026, 11, 23, 12, 0, tzinfo=timezone(timedelta(hours=-11)))  # 23:00 UTC the same day
    assert quota_wait(pago_pago) == 3600 + 60


def test_stackexchange_search_throttle_violation_waits_the_seconds_it_names(site: FixtureSite) -> None:
    site.fail(400, SPEC.body("throttle"), JSON_TYPE)  # the API sends every error as HTTP 400
    politeness = Politeness(per_host=2, delay=0.0)
    with pytest.raises(HTTPStatusError) as caught:
        asyncio.run(poll_kind(make_source(SPEC, site.base_url), politeness=politeness))
    assert caught.value.retry_after == 79
    assert "throttle_violation" in str(caught.value) and "79 seconds" in str(caught.value)
    assert politeness.paused_for("127.0.0.1") > 70


def test_stackexchange_search_bad_parameter_error_is_readable(site: FixtureSite) -> None:
    error = {"error_id": 400, "error_message": "site is required", "error_name": "bad_parameter"}
    site.fail(400, json.dumps(error).encode(), JSON_TYPE)
    with pytest.raises(HTTPStatusError, match="bad_parameter: site is required") as caught:
        asyncio.run(poll_kind(make_source(SPEC, site.base_url)))
    assert caught.value.retry_after is None


def test_stackexchange_search_default_query_is_one_search_per_term_from_the_cursor(site: FixtureSite) -> None:
    source = make_source(SPEC, site.base_url, query=None)
    poll, _ = asyncio.run(poll_kind(source, cursor="2026-11-23T15:00:00Z"))
    queries = site.queries()
    assert [q["q"] for q in queries] == ["Acme", "Acme Corp", "acme.com", "RouterX", "Acme Cloud"]
    assert {q["fromdate"] for q in queries} == {str(int(datetime(2026, 11, 23, 15, tzinfo=UTC).timestamp()) + 1)}
    assert {(q["site"], q["sort"], q["order"], q["filter"]) for q in queries} == {
        ("superuser", "creation", "desc", "withbody")
    }
    assert [m.guid for m in poll.mentions] == ["se:1891234"], "the same question from five searches is kept once"


@pytest.mark.parametrize(
    ("site_name", "ok"), [("superuser", True), ("math.stackexchange", True), ("Super User", False)]
)
def test_stackexchange_search_site_is_validated(site_name: str, ok: bool) -> None:
    from beacons.config import parse_config
    from beacons.errors import ConfigError

    text = f"sources: [{{kind: stackexchange_search, site: '{site_name}'}}]"
    if ok:
        assert parse_config(text, env={}).sources[0].options.site == site_name
    else:
        with pytest.raises(ConfigError, match=r"sources\[0\]\.site: expected a site name"):
            parse_config(text, env={})
