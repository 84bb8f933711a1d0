"""The inbox's inputs (issue 13 §2): dates and relative times, the SLA policy, how long a beacon has waited.

The API, the page and ``beacons queue list`` all build a ``QueueFilter`` from
these, so ``since=7d`` or ``--since 7d`` means the same everywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from beacons.errors import InvalidInput
from beacons.models import Beacon
from beacons.nlp.labels import INTENTS, SENTIMENTS
from beacons.storage.types import Sla, parse_time

_RELATIVE = re.compile(r"^(\d{1,6})\s*(m|h|d|w)$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_when(value: str, field: str, now: datetime, *, end: bool = False) -> datetime:
    """An ISO date or datetime (UTC when it has no offset), or a time back from ``now`` like ``30m``, ``2h``, ``7d``.

    A bare date as the ``end`` of a range means the whole day: ``until=2026-11-30`` includes that day.
    """
    text = value.strip()
    relative = _RELATIVE.match(text.lower())
    if relative:
        return now - timedelta(seconds=int(relative.group(1)) * _UNITS[relative.group(2)])
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            field, f"expected a date like 2026-11-30, a time like 2026-11-30T09:00Z, or 30m, 2h, 7d; got {text[:40]!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if end and _DATE.match(text):
        when += timedelta(days=1)
    return when


def check_sentiment(value: str) -> str:
    if value not in SENTIMENTS:
        raise InvalidInput("sentiment", f"expected one of {', '.join(SENTIMENTS)}; got {value[:40]!r}")
    return value


def check_intent(value: str) -> str:
    if value not in INTENTS:
        raise InvalidInput("intent", f"expected one of {', '.join(INTENTS)}; got {value[:40]!r}")
    return value


def sla_policy(sla: Any) -> Sla:
    """The storage form of ``routing.sla`` (a ``config.SlaConfig``, or None for no limits)."""
    if sla is None:
        return Sla()
    queues = tuple((q, float(getattr(sla, q))) for q in ("support", "advocacy") if getattr(sla, q) is not None)
    teams = tuple((str(name), float(seconds)) for name, seconds in sorted(sla.teams.items()))
    return Sla(queues, teams)


def waited_seconds(beacon: Beacon, now: datetime) -> int:
    """Since it arrived: until ``now`` while open, until it was closed once resolved or dismissed."""
    created = parse_time(beacon.created_at)
    if created is None:
        return 0
    end = now if beacon.status in ("new", "claimed") else (parse_time(beacon.updated_at) or now)
    return max(0, int((end - created).total_seconds()))


def waited_text(seconds: int) -> str:
    """``45s``, ``12m``, ``3h 20m``, ``2d 4h``: what a card shows."""
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes}m"
    if days < 1:
        return f"{hours}h {minutes % 60}m" if minutes % 60 else f"{hours}h"
    return f"{days}d {hours % 24}h" if hours % 24 else f"{days}d"
