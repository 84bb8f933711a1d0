"""The ``report:`` schedule (issue 14): a summary of the insights posted to an alert channel, once per period.

```yaml
report:
  every: monday 09:00          # weekly on that day, or "daily 09:00"
  timezone: Europe/Berlin      # the zone of "09:00" (default UTC)
  channel: team-slack          # an alerts[] channel name (Slack or webhook)
  link: https://beacons.example.com   # the page to link (default serve.public_url)
  brand: Acme                  # optional: only this brand's figures
```

At each slot the channel's sender (its fleet leader) writes one ``report`` row to the
alert outbox, covering the period that just ended (the 7 days or the day before the slot),
under the event id ``report-<slot in UTC>-<channel>``. The outbox refuses a second row with
that id, so a restart, a second worker or a second look at the clock sends nothing twice;
the decision reads the injected clock. A slot is sent within 12 hours after its time (a daemon
restarted the same morning still sends it); a daemon that was down longer skips it rather than
post an old report, and never posts a backlog of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from beacons.errors import Problem
from beacons.log import get_logger

log = get_logger("beacons.alerts")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
GRACE = timedelta(hours=12)  # a slot missed for longer than this (the daemon was down) is skipped, not sent late
_EVERY = re.compile(r"^(daily|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\s+([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class ReportConfig:
    every: str = "monday 09:00"  # "<weekday> HH:MM" (weekly) or "daily HH:MM"
    channel: str = ""  # an alerts[] channel name
    timezone: str = "UTC"
    link: str | None = None  # default: serve.public_url
    brand: str | None = None


@dataclass(frozen=True, slots=True)
class Every:
    weekday: int | None  # 0 = Monday; None: every day
    hour: int
    minute: int

    @property
    def period(self) -> timedelta:
        return timedelta(days=1 if self.weekday is None else 7)


def parse_every(text: str) -> Every | None:
    match = _EVERY.match(text.strip().lower())
    if not match:
        return None
    day = match.group(1)
    return Every(None if day == "daily" else DAYS.index(day), int(match.group(2)), int(match.group(3)))


def check_report(report: ReportConfig | None, channels: list[str], problems: list[Problem]) -> None:
    """Config errors that name the key: ``report.every``, ``report.timezone``, ``report.channel``, ``report.link``."""
    if not isinstance(report, ReportConfig):
        return
    if parse_every(report.every) is None:
        problems.append(
            Problem(
                "report.every",
                f'expected a weekday and a time like "monday 09:00", or "daily 09:00"; got {report.every!r}',
            )
        )
    try:
        ZoneInfo(report.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            Problem("report.timezone", f"expected a time zone name like Europe/Berlin, got {report.timezone!r}")
        )
    if not report.channel:
        problems.append(Problem("report.channel", "name the alerts[] channel to post the report to"))
    elif report.channel not in channels:
        known = ", ".join(channels) or "none configured"
        problems.append(Problem("report.channel", f"no alerts channel named {report.channel!r} (channels: {known})"))
    if report.link is not None and not report.link.startswith(("https://", "http://")):
        problems.append(Problem("report.link", f"must be an http(s) URL, got {report.link[:60]!r}"))


def last_slot(every: Every, zone: ZoneInfo, now: datetime) -> datetime:
    """The latest scheduled time at or before ``now`` (aware, in ``zone``)."""
    local = now.astimezone(zone)
    day = local.date()
    for back in range(8):
        d = day - timedelta(days=back)
        if every.weekday is not None and d.weekday() != every.weekday:
            continue
        slot = datetime(d.year, d.month, d.day, every.hour, every.minute, tzinfo=zone)
        if slot <= local:
            return slot
    raise AssertionError("a weekly slot is always within the last eight days")


def event_id(slot: datetime, channel: str) -> str:
    return f"report-{slot.astimezone(UTC):%Y%m%dT%H%MZ}-{channel}"


def run_due(store: Any, report: ReportConfig, *, now: float, sla: Any, link: str | None) -> str | None:
    """Write this period's report row when its slot has come and it is not written yet; its event id, else None."""
    from beacons.insights import make_query
    from beacons.report import make_report, summary_lines

    every = parse_every(report.every)
    assert every is not None  # config validation refused anything else
    zone = ZoneInfo(report.timezone)
    at = datetime.fromtimestamp(now, UTC)
    slot = last_slot(every, zone, at)
    event = event_id(slot, report.channel)
    if at - slot > GRACE or store.outbox.get(event) is not None:
        return None
    q = make_query(slot - every.period, slot, tz=report.timezone, brand=report.brand)
    figures = make_report(store, q, sla=sla, now=at)
    base = (report.link or link or "").rstrip("/")
    span = {"range": "custom", "since": figures["since"], "until": figures["until"], "tz": report.timezone}
    page = f"{base}/insights?" + urlencode({**span, **({"brand": report.brand} if report.brand else {})})
    payload = {
        "title": f"{'Weekly' if every.weekday is not None else 'Daily'} report, {q.since:%Y-%m-%d} – {slot:%Y-%m-%d %H:%M} {report.timezone}",
        "since": figures["since"],
        "until": figures["until"],
        "brand": report.brand,
        "lines": summary_lines(figures),
        "link": page if base else None,
        "posts": figures["volume"]["total"],
        "support_beacons": figures["problems"]["support_beacons"],
        "sla_breaches": figures["response"]["overall"]["sla_breaches"],
        "claim_median_s": figures["response"]["overall"]["claim_median_s"],
    }
    if not store.outbox.add_event(report.channel, event, "report", payload, now=now):
        return None  # another worker wrote it first
    log.info("alert.report", channel=report.channel, event_id=event)
    return event
