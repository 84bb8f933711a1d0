"""The ``report:`` schedule (issue 14): validated keys, one report per slot on the injected clock, delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_alerts import Receiver, reset_logging  # noqa: F401  (autouse)
from helpers_clock import FakeClock
from helpers_db import rows
from helpers_insights import seed
from helpers_queue import config_data

from beacons.alerts.config import AlertChannel, SpikeRule
from beacons.alerts.sender import ChannelSender
from beacons.config import parse_config
from beacons.errors import ConfigError
from beacons.report_schedule import ReportConfig, run_due
from beacons.storage import Storage
from beacons.storage.types import Sla

SECRET = "report-signing-key-0123456789"
REPORT = ReportConfig(
    every="monday 09:00", channel="team", timezone="Europe/Berlin", link="https://beacons.example.com"
)
SLA = Sla(queues=(("support", 7200.0), ("advocacy", 86400.0)))
SLOT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin (CET)


def _config(report: dict[str, Any]) -> str:
    data = config_data("beacons.db")
    data["alerts"] = [{"kind": "slack", "name": "team", "url": "https://hooks.slack.example/T0/B0/x"}]
    data["report"] = report
    return yaml.safe_dump(data)


def test_report_schedule_config_is_read() -> None:
    config = parse_config(_config({"every": "Monday 09:00", "timezone": "Europe/Berlin", "channel": "team"}), env={})
    assert config.report == ReportConfig(every="Monday 09:00", channel="team", timezone="Europe/Berlin")


@pytest.mark.parametrize(
    ("report", "key", "says"),
    [
        ({"every": "mondays at nine", "channel": "team"}, "report.every", 'like "monday 09:00"'),
        ({"every": "daily 25:00", "channel": "team"}, "report.every", '"daily 09:00"'),
        ({"every": "daily 09:00", "timezone": "Berlin/Mitte", "channel": "team"}, "report.timezone", "Europe/Berlin"),
        (
            {"every": "daily 09:00", "channel": "ops"},
            "report.channel",
            "no alerts channel named 'ops' (channels: team)",
        ),
        ({"every": "daily 09:00"}, "report.channel", "name the alerts[] channel"),
        ({"every": "daily 09:00", "channel": "team", "link": "beacons.example.com"}, "report.link", "http(s) URL"),
        ({"every": "daily 09:00", "channel": "team", "when": "now"}, "report.when", "unknown key"),
    ],
)
def test_report_schedule_config_errors_name_the_key(report: dict[str, Any], key: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config(report), env={})
    problems = {p.loc: p.msg for p in info.value.problems}
    assert key in problems and says in problems[key], problems


@pytest.fixture
def store(database: str) -> Iterator[Storage]:
    s = Storage(database)
    seed(s)
    try:
        yield s
    finally:
        s.close()


def _reports(store: Storage) -> list[tuple[Any, ...]]:
    return rows(store, "SELECT event_id, channel FROM outbox WHERE kind = 'report' ORDER BY id")


def test_report_schedule_once_per_slot_even_across_restarts(store: Storage, database: str) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 7, 59, tzinfo=UTC))  # 08:59 in Berlin: not yet
    assert run_due(store, REPORT, now=clock.time(), sla=SLA, link=None) is None
    clock.advance(60)
    event = run_due(store, REPORT, now=clock.time(), sla=SLA, link=None)
    assert event == "report-20261123T0800Z-team"
    clock.advance(1800)
    assert run_due(store, REPORT, now=clock.time(), sla=SLA, link=None) is None
    with Storage(database) as restarted:  # a new process: the outbox remembers
        assert run_due(restarted, REPORT, now=clock.time(), sla=SLA, link=None) is None
    payload = store.outbox.get(event).payload  # type: ignore[union-attr]
    assert payload["since"] == "2026-11-16T08:00:00+00:00" and payload["until"] == "2026-11-23T08:00:00+00:00"
    assert payload["posts"] == 12 and payload["support_beacons"] == 6  # q1, p1, p2, p5, p9, r1
    assert payload["lines"][0] == "12 posts; 6 support beacons (0 in the period before)"
    assert payload["link"].startswith("https://beacons.example.com/insights?range=custom&since=2026-11-16T08")
    clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))  # the next Monday
    assert run_due(store, REPORT, now=clock.time(), sla=SLA, link=None) == "report-20261130T0800Z-team"
    assert [r[0] for r in _reports(store)] == ["report-20261123T0800Z-team", "report-20261130T0800Z-team"]


def test_report_schedule_skips_a_slot_missed_by_more_than_half_a_day(store: Storage) -> None:
    late = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # Tuesday: the daemon was down all Monday
    assert run_due(store, REPORT, now=late.timestamp(), sla=SLA, link=None) is None
    daily = ReportConfig(every="daily 09:00", channel="team", timezone="Europe/Berlin")
    assert run_due(store, daily, now=late.timestamp(), sla=SLA, link=None) == "report-20261124T0800Z-team"


def test_report_schedule_posts_through_the_outbox_to_a_webhook(tmp_path: Path) -> None:
    store = Storage(tmp_path / "beacons.db")
    seed(store)
    clock = FakeClock(SLOT)
    try:
        with Receiver() as r:

            async def go() -> None:
                chan = AlertChannel(
                    kind="webhook", url=r.url, name="team", secret=SECRET, spikes=SpikeRule(enabled=False)
                )
                sender = ChannelSender(chan, store.outbox, clock=clock, report=REPORT, sla=SLA)
                await sender.drain()
                clock.advance(600)
                await sender.drain()  # the same slot: nothing more
                await sender.aclose()

            asyncio.run(go())
            received = r.wait_for(1)
        assert len(received) == 1
        body = received[0].json
        assert body["type"] == "report" and body["id"] == "report-20261123T0800Z-team"
        assert body["data"]["posts"] == 12 and body["data"]["sla_breaches"] >= 1
        assert body["data"]["link"].startswith("https://beacons.example.com/insights?")
    finally:
        store.close()


def test_report_schedule_slack_message_lists_the_summary_and_links_the_page() -> None:
    from beacons.alerts import slack
    from beacons.alerts.message import Event

    data = {
        "title": "Weekly report",
        "lines": ["12 posts; 6 support beacons", "negative: 50 %"],
        "link": "https://b.example/insights?range=custom",
    }
    body = slack.render(Event("report-x", "report", "team", "2026-11-23T08:00:00Z", (), data))
    text = str(body["blocks"])
    assert body["text"] == ":bar_chart: Weekly report"
    assert (
        "• 12 posts; 6 support beacons" in text
        and "<https://b.example/insights?range=custom|Open the insights page>" in text
    )
