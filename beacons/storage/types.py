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
    }


def match_from_json(text: str | None) -> Match | None:
    if not text:
        return None
    data = json.loads(text)
    spans = tuple(MatchSpan(*s) for s in data.get("spans", []))
    return Match(data["brand"], data.get("product"), spans, tuple(data.get("other_brands", [])))


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
