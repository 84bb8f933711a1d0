"""``on: sla_breach``: tell a channel when an open beacon has waited longer than its ``routing.sla`` (issue 13 §2).

The channel's sender looks every ``CHECK_EVERY`` seconds of its clock (in a
fleet only the channel's leader, as for source health). A beacon's wait runs
from when it arrived, so it breaches once; its alert's event id
``sla-<beacon id>-<channel>`` is unique in the outbox, so a restart or a second
worker never sends it twice. The channel's beacon filters (queues, brands,
teams, min_priority) choose which breaches it hears.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from beacons.alerts.config import AlertChannel
from beacons.log import get_logger
from beacons.storage.types import Sla

if TYPE_CHECKING:
    from beacons.alerts.outbox import Outbox

log = get_logger("beacons.alerts")
EVENT = "sla_breach"
CHECK_EVERY = 60.0  # seconds between looks for new breaches
BATCH = 200  # breaches read per page


def event_id(channel: str, beacon_id: int) -> str:
    return f"sla-{beacon_id}-{channel}"


def _breaches(outbox: Outbox, sla: Sla, at: datetime, channel: str) -> Iterator[dict[str, Any]]:
    """Every breach not yet alerted, page by page (those this channel's filters skip are read again next time)."""
    after = 0
    while True:
        page = outbox.store.sla_breaches(sla, at, prefix="sla-", suffix=f"-{channel}", limit=BATCH, after_id=after)
        yield from page
        if len(page) < BATCH:
            return
        after = int(page[-1]["id"])


def _wanted(channel: AlertChannel, row: dict[str, Any]) -> bool:
    """The channel's beacon filters (queues, min_priority, teams, brands), as ``ChannelSender.wants`` applies them."""
    if row["queue"] not in channel.queues or row["priority"] < channel.min_priority:
        return False
    if channel.teams and (row["team"] or "") not in channel.teams:
        return False
    names = {x.casefold() for x in (row["brand"], row["product"]) if x}
    return not channel.brands or bool({x.casefold() for x in channel.brands} & names)


def check(outbox: Outbox, channel: AlertChannel, sla: Sla, *, now: float) -> list[str]:
    """Write an alert for each beacon that breaches its SLA at ``now`` and has none yet; the event ids written."""
    if not sla or EVENT not in channel.on:
        return []
    at = datetime.fromtimestamp(now, UTC)
    events: list[tuple[str, int, dict[str, Any]]] = []
    for row in _breaches(outbox, sla, at, channel.name):
        if not _wanted(channel, row):
            continue
        limit = sla.limit_for(row["queue"], row["team"])
        assert limit is not None  # only beacons with a limit breach
        payload = {
            "beacon_ids": [row["id"]],
            "queue": row["queue"],
            "team": row["team"],
            "limit_seconds": int(limit),
            "waited_seconds": int(now - row["created_at"].timestamp()),
            "status": row["status"],
            "assignee": row["assignee"],
        }
        events.append((event_id(channel.name, int(row["id"])), int(row["id"]), payload))
    for start in range(0, len(events), BATCH):  # one transaction per page of alerts
        outbox.store.add_alerts(channel.name, EVENT, events[start : start + BATCH], now=now)
    if events:
        log.warning("alert.sla_breach", channel=channel.name, beacons=len(events), first=events[0][0])
    return [e[0] for e in events]
