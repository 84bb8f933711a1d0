"""Reading the queue: the one list (CLI ``queue list``, the API and the page), a beacon's detail, facets.

A read never writes: threads are linked when beacons are stored
(``queue.threads``), so listing is one query on whatever is committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from beacons.models import Beacon, Classification, Match, Mention
from beacons.queue.inbox import waited_seconds
from beacons.queue.why import why_routed
from beacons.storage import ListedBeacon, QueueFilter, Storage
from beacons.storage.types import Sla, match_from_json, parse_time


@dataclass(frozen=True, slots=True)
class Entry:
    """A beacon as the team sees it: with its thread and the matched spans to highlight."""

    beacon: Beacon
    thread_id: int
    related: int  # other beacons in its thread (when it is the thread's first)
    spans: tuple[tuple[int, int], ...] = ()
    waited_seconds: int | None = None  # set when listed with a clock (issue 13 §2)
    sla_breached: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {
            **self.beacon.to_json(),
            "thread_id": self.thread_id,
            "related": self.related,
            "why": why_routed(self.beacon),
        }
        if self.waited_seconds is not None:
            out.update(waited_seconds=self.waited_seconds, sla_breached=self.sla_breached)
        return out


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[Entry]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    beacon_id: int
    at: str
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    from_queue: str | None
    to_queue: str | None
    assignee: str | None
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Detail:
    entry: Entry
    notes: list[dict[str, Any]] = field(default_factory=list)
    history: list[Event] = field(default_factory=list)
    thread: list[dict[str, Any]] = field(default_factory=list)  # the other beacons of its thread

    def to_json(self) -> dict[str, Any]:
        return {
            **self.entry.to_json(),
            "notes": self.notes,
            "history": [e.to_json() for e in self.history],
            "thread": self.thread,
        }


def _entry(listed: ListedBeacon, now: datetime | None = None, sla: Sla | None = None) -> Entry:
    spans = tuple((s.start, s.end) for s in listed.match.spans) if listed.match else ()
    b = listed.beacon
    if now is None:
        return Entry(b, listed.thread_id, listed.related, spans)
    breached = bool(sla) and sla is not None and sla.is_breached(b, now)
    return Entry(b, listed.thread_id, listed.related, spans, waited_seconds(b, now), breached)


def list_entries(store: Storage, f: QueueFilter | None = None) -> Page:
    """One page of beacons, highest priority first (past their SLA first, given ``sla`` and ``now``);
    a thread shows as its first beacon. With ``now``, each entry says how long it has waited."""
    f = f or QueueFilter()
    listed, cursor = store.list_beacons(f)
    return Page([_entry(x, f.now, f.sla) for x in listed], cursor)


def iter_entries(store: Storage, f: QueueFilter, *, page_size: int = 500) -> Iterator[Entry]:
    """Every matching entry, page by page (for exports)."""
    cursor = f.cursor
    while True:
        page = list_entries(store, replace(f, limit=page_size, cursor=cursor))
        yield from page.entries
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def get_entry(store: Storage, beacon_id: int, *, now: datetime | None = None, sla: Sla | None = None) -> Entry | None:
    listed = store.get_listed(beacon_id)
    return _entry(listed, now, sla) if listed else None


def get_detail(store: Storage, beacon_id: int, *, now: datetime | None = None, sla: Sla | None = None) -> Detail | None:
    """A beacon with its notes, history and the other beacons of its thread (with ``now``: its wait and SLA)."""
    entry = get_entry(store, beacon_id, now=now, sla=sla)
    if entry is None:
        return None
    thread = store.thread_members(entry.thread_id, beacon_id)
    return Detail(entry, store.notes(beacon_id), history(store, beacon_id), thread)


def history(store: Storage, beacon_id: int) -> list[Event]:
    return [Event(*r) for r in store.history(beacon_id)]


def facets(store: Storage) -> dict[str, list[str]]:
    """The brands, products and teams in the queues, for the page's filters."""
    return store.facets()


def version(store: Storage) -> str:
    """Changes whenever a beacon arrives or anything happens to one (the page polls it to refresh)."""
    return store.queue_version()


def metric_counts(store: Storage) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for /metrics: beacons by queue and status, polls and errors per source, the alert backlog."""
    return store.metric_counts()


def routing_input(store: Storage, beacon_id: int) -> tuple[Mention, Match | None, Classification, Beacon] | None:
    """What the router saw for a stored beacon, rebuilt from the database (for --explain and re-routes)."""
    row = store.routing_row(beacon_id)
    beacon = store.get_beacon(beacon_id)
    if row is None or beacon is None:
        return None
    fetched = parse_time(row[7])
    assert fetched is not None
    mention = Mention(
        row[0], row[1], row[2], row[3], row[4], row[5], parse_time(row[6]), fetched, row[8], row[9], row[10], row[19]
    )
    classification = Classification(
        row[12],
        row[12] == "support",
        row[13],
        float(row[14]),
        float(row[15]),
        json.loads(row[16] or "{}"),
        json.loads(row[17] or "{}"),
        row[10],
        row[18] or "unknown",
    )
    return mention, match_from_json(row[11]), classification, beacon


def feedback_examples(store: Storage) -> list[dict[str, Any]]:
    """The latest human re-route of each mention, as training examples: {text, title, queue, brand}."""
    return store.feedback_examples()
