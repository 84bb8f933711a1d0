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


def check(outbox: Outbox, channel: AlertChannel, sla: Sla, *, now: float) -> list[str]:
    """Write an alert for each beacon that breaches its SLA at ``now`` and has none yet; the event ids written."""
    if not sla or EVENT not in channel.on:
        return []
    at = datetime.fromtimestamp(now, UTC)
    written: list[str] = []
    for row in _breaches(outbox, sla, at, channel.name):
        if row["queue"] not in channel.queues or row["priority"] < channel.min_priority:
            continue
        if channel.teams and (row["team"] or "") not in channel.teams:
            continue
        names = {x.casefold() for x in (row["brand"], row["product"]) if x}
        if channel.brands and not {x.casefold() for x in channel.brands} & names:
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
        eid = event_id(channel.name, int(row["id"]))
        if outbox.add_event(channel.name, eid, EVENT, payload, now=now, beacon_id=int(row["id"])):
            written.append(eid)
            log.warning(
                "alert.sla_breach", channel=channel.name, beacon=row["id"], queue=row["queue"], team=row["team"]
            )
    return written
