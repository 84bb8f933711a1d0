"""Values the storage methods take and give back (frozen, no connection inside)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beacons.models import Beacon, Classification, Match, MatchSpan, Mention, Route


@dataclass(frozen=True, slots=True)
class Item:
    """One mention of a poll, ready to store: matched, maybe classified and routed."""

    mention: Mention
    keys: tuple[str, ...]
    match: Match | None
    classification: Classification | None
    route: Route | None
    classify_error: str | None = None


@dataclass(frozen=True, slots=True)
class SaveResult:
    new: int = 0
    duplicates: int = 0
    beacon_ids: tuple[int, ...] = ()
    queued: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sla:
    """How long an open beacon may wait, in seconds: per team (checked first), else per queue (``routing.sla``)."""

    queues: tuple[tuple[str, float], ...] = ()
    teams: tuple[tuple[str, float], ...] = ()

    def limit_for(self, queue: str, team: str | None) -> float | None:
        if queue == "none":
            return None
        if team:
            for name, seconds in self.teams:
                if name.lower() == team.lower():
                    return seconds
        return next((seconds for name, seconds in self.queues if name == queue), None)

    def is_breached(self, beacon: Beacon, now: datetime) -> bool:
        """Open, and waiting longer than its limit (the same test as ``search.breach_expression``)."""
        limit = self.limit_for(beacon.queue, beacon.team)
        created = parse_time(beacon.created_at)
        if limit is None or created is None or beacon.status not in ("new", "claimed"):
            return False
        return (now - created).total_seconds() > limit

    def __bool__(self) -> bool:
        return bool(self.queues or self.teams)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which beacons a list shows; the CLI, the API and the page all list through this one filter."""

    queue: str | None = None  # None: support and advocacy; "all": every queue
    status: str | None = None  # a status, "open" (new or claimed), or None for every status
    brand: str | None = None
    product: str | None = None
    team: str | None = None
    limit: int = 50
    cursor: str | None = None  # from the previous Page.next_cursor
    threads: bool = True  # hide a thread's other beacons when its first one is listed
    # The inbox's filters (issue 13 §2); the API, the page and `beacons queue list` give them the same meaning.
    q: str | None = None  # full text: every word in the title, text, author or notes (prefixes match)
    assignee: str | None = None  # exactly this person's beacons
    unassigned: bool = False  # only beacons nobody holds
    since: datetime | None = None  # posted (else fetched) at or after
    until: datetime | None = None  # posted (else fetched) before
    sentiment: str | None = None  # negative, neutral or positive
    intent: str | None = None  # an intent scored at least 0.5, e.g. bug_outage
    source: str | None = None  # a source id
    sla: Sla | None = None  # with ``now``: beacons past their SLA come first (routing.sla)
    now: datetime | None = None  # the clock's time, for the SLA (tests pass a fixed one)


@dataclass(frozen=True, slots=True)
class ListedBeacon:
    beacon: Beacon
    thread_id: int
    related: int
    match: Match | None


@dataclass(frozen=True, slots=True)
class ThreadCandidate:
    thread_id: int
    words: frozenset[str]


def match_json(match: Match) -> dict[str, Any]:
    return {
        "brand": match.brand,
        "product": match.product,
        "other_brands": list(match.other_brands),
        "spans": [[s.start, s.end, s.text, s.brand, s.product, s.kind] for s in match.spans],
        **({"implied_by": match.implied_by} if match.implied_by else {}),
    }


def match_from_json(text: str | None) -> Match | None:
    if not text:
        return None
    data = json.loads(text)
    spans = tuple(MatchSpan(*s) for s in data.get("spans", []))
    return Match(data["brand"], data.get("product"), spans, tuple(data.get("other_brands", [])), data.get("implied_by"))


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
