"""The queue lifecycle: claim, resolve, dismiss, re-route and notes, with a full history.

States: ``new -> claimed (by whom) -> resolved | dismissed``; resolve and dismiss
also work straight from ``new``. Every change is one short transaction that
guards on the current status (``UPDATE ... WHERE status IN (...)`` and a
rowcount check), so when two people claim the same beacon at once exactly one
wins and the other gets ``TransitionConflict``. Every change writes a row to
``beacon_events``; a re-route also writes a ``feedback_labels`` row that
``beacons train --with-feedback`` learns from (``feedback_examples``).

Posts about the same problem are linked into threads (``link_threads``): the
list shows a thread's first beacon with a count of related ones, and claiming,
resolving or dismissing that first beacon does the same to the open rest.

The tables live in their own migration set, appended to the store's when this
module is imported (the store imports it when it opens a database).
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from beacons.config import GroupingConfig
from beacons.errors import BeaconsError
from beacons.models import QUEUES, Beacon, Classification, Match, Mention
from beacons.route import content_words, priority, similarity
from beacons.store import MIGRATION_SETS, Store, _beacon, _match_from_json, now_iso

migrations = Migrations("beacons-queue")
OPEN = ("new", "claimed")
ACTIONS = ("claim", "resolve", "dismiss", "reroute", "note")
MAX_NAME_CHARS = 100
MAX_NOTE_CHARS = 5000


@migrations(name="0001_lifecycle")
def _m0001(db: sqlite_utils.Database) -> None:
    for sql in (
        "CREATE TABLE beacon_events (id INTEGER PRIMARY KEY, beacon_id INTEGER NOT NULL REFERENCES beacons(id),"
        " at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, from_status TEXT, to_status TEXT,"
        " from_queue TEXT, to_queue TEXT, assignee TEXT, detail TEXT)",
        "CREATE INDEX beacon_events_beacon ON beacon_events(beacon_id, id)",
        "CREATE TABLE beacon_notes (id INTEGER PRIMARY KEY, beacon_id INTEGER NOT NULL REFERENCES beacons(id),"
        " at TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL)",
        "CREATE INDEX beacon_notes_beacon ON beacon_notes(beacon_id, id)",
        # brand, product, queue, at (the post's time) and words (its content words) are copied here so
        # finding a similar open thread is one indexed range scan, not a walk through mentions.
        "CREATE TABLE beacon_threads (beacon_id INTEGER PRIMARY KEY REFERENCES beacons(id),"
        " thread_id INTEGER NOT NULL REFERENCES beacons(id), similarity REAL, linked_at TEXT NOT NULL,"
        " queue TEXT NOT NULL, brand TEXT, product TEXT, at TEXT, words TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX beacon_threads_thread ON beacon_threads(thread_id)",
        "CREATE INDEX beacon_threads_similar ON beacon_threads(brand, product, queue, at)",
        "CREATE TABLE feedback_labels (id INTEGER PRIMARY KEY, beacon_id INTEGER NOT NULL REFERENCES beacons(id),"
        " mention_id INTEGER NOT NULL REFERENCES mentions(id), from_queue TEXT NOT NULL, to_queue TEXT NOT NULL,"
        " actor TEXT NOT NULL, at TEXT NOT NULL)",
        "CREATE INDEX feedback_labels_mention ON feedback_labels(mention_id, id)",
    ):
        db.execute(sql)


if migrations not in MIGRATION_SETS:
    MIGRATION_SETS.append(migrations)


class QueueError(BeaconsError):
    """A queue action that cannot be done as asked."""


class BeaconNotFound(QueueError):
    def __init__(self, beacon_id: int) -> None:
        self.beacon_id = beacon_id
        super().__init__(f"no beacon with id {beacon_id} (see `beacons queue list --queue all`)")


class TransitionConflict(QueueError):
    """The beacon is not in a state that allows the action (someone else got there first)."""

    def __init__(
        self, beacon_id: int, action: str, status: str, assignee: str | None, message: str | None = None
    ) -> None:
        self.beacon_id, self.action, self.status, self.assignee = beacon_id, action, status, assignee
        who = f" by {assignee}" if assignee and status != "new" else ""
        super().__init__(message or f"cannot {action} beacon {beacon_id}: it is already {status}{who}")


class InvalidInput(QueueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class QueueFilter:
    queue: str | None = None  # None: support and advocacy; "all": every queue
    status: str | None = None  # a status, "open" (new or claimed), or None for every status
    brand: str | None = None
    product: str | None = None
    team: str | None = None
    limit: int = 50
    cursor: str | None = None  # from the previous Page.next_cursor
    threads: bool = True  # hide a thread's other beacons when its first one is listed


@dataclass(frozen=True, slots=True)
class Entry:
    """A beacon as the team sees it: with its thread and the matched spans to highlight."""

    beacon: Beacon
    thread_id: int
    related: int  # other beacons in its thread (when it is the thread's first)
    spans: tuple[tuple[int, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**self.beacon.to_json(), "thread_id": self.thread_id, "related": self.related}


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


# -- input checks ----------------------------------------------------------------


def clean_name(value: Any, field_name: str = "by") -> str:
    """A person's name for the history: required, one line, at most 100 characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field_name, "is required: the name of the person doing this")
    text = " ".join(value.split())
    if len(text) > MAX_NAME_CHARS:
        raise InvalidInput(field_name, f"is longer than {MAX_NAME_CHARS} characters")
    return text


def clean_note(value: Any, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("text" if required else "note", "must be non-empty text")
    if len(value) > MAX_NOTE_CHARS:
        raise InvalidInput("text" if required else "note", f"is longer than {MAX_NOTE_CHARS} characters")
    return value.strip()


def encode_cursor(priority_value: int, beacon_id: int) -> str:
    return base64.urlsafe_b64encode(f"{priority_value}:{beacon_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prio, beacon_id = text.split(":")
        return int(prio), int(beacon_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor", "is not a cursor this server gave out") from exc


# -- reading ---------------------------------------------------------------------


def _where(f: QueueFilter, b: str = "b", m: str = "m", *, members: bool = True) -> tuple[list[str], list[Any]]:
    """SQL conditions for a filter on beacon alias ``b`` and mention alias ``m`` (all values as parameters)."""
    where: list[str] = []
    args: list[Any] = []
    if f.queue is None:
        where.append(f"{b}.queue IN ('support', 'advocacy')")
    elif f.queue != "all":
        if f.queue not in QUEUES:
            raise InvalidInput("queue", f"expected one of support, advocacy, none, all; got {f.queue!r}")
        where.append(f"{b}.queue = ?")
        args.append(f.queue)
    if f.status == "open":
        where.append(f"{b}.status IN ('new', 'claimed')")
    elif f.status:
        if f.status not in ("new", "claimed", "resolved", "dismissed"):
            raise InvalidInput("status", f"expected one of new, claimed, resolved, dismissed, open; got {f.status!r}")
        where.append(f"{b}.status = ?")
        args.append(f.status)
    columns = [(f"{b}.team", f.team)] + ([(f"{m}.brand", f.brand), (f"{m}.product", f.product)] if members else [])
    for column, value in columns:
        if value:
            where.append(f"{column} = ? COLLATE NOCASE")
            args.append(value)
    return where, args


def list_entries(store: Store, f: QueueFilter | None = None, *, grouping: GroupingConfig | None = None) -> Page:
    """One page of beacons, highest priority first; a thread shows as its first beacon."""
    f = f or QueueFilter()
    link_threads(store, grouping)
    where, args = _where(f)
    if f.threads:
        # Hide a linked beacon when the first beacon of its thread passes the same filter (it is listed instead).
        root_where, root_args = _where(f, "r", members=False)
        where.append(
            "NOT EXISTS (SELECT 1 FROM beacon_threads t JOIN beacons r ON r.id = t.thread_id"
            f" WHERE t.beacon_id = b.id AND t.thread_id != b.id AND {' AND '.join(root_where) or '1'})"
        )
        args += root_args
    if f.cursor:
        prio, last_id = decode_cursor(f.cursor)
        where.append("(b.priority < ? OR (b.priority = ? AND b.id < ?))")
        args += [prio, prio, last_id]
    limit = max(1, min(int(f.limit), 1000))
    sql = (
        Store._BEACON_SELECT
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY b.priority DESC, b.id DESC LIMIT ?"
    )
    beacons = [_beacon(r) for r in store.db.execute(sql, [*args, limit + 1]).fetchall()]
    more = len(beacons) > limit
    beacons = beacons[:limit]
    entries = _entries(store, beacons)
    last = beacons[-1] if beacons else None
    return Page(entries, encode_cursor(last.priority, last.id) if more and last else None)


def iter_entries(store: Store, f: QueueFilter, *, page_size: int = 500) -> Iterator[Entry]:
    """Every matching entry, page by page (for exports)."""
    cursor = f.cursor
    while True:
        page = list_entries(
            store, QueueFilter(f.queue, f.status, f.brand, f.product, f.team, page_size, cursor, f.threads)
        )
        yield from page.entries
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _entries(store: Store, beacons: Sequence[Beacon]) -> list[Entry]:
    if not beacons:
        return []
    ids = [b.id for b in beacons]
    marks = ",".join("?" * len(ids))
    extra = {
        row[0]: row[1:]
        for row in store.db.execute(
            "SELECT b.id, m.match_json, COALESCE(t.thread_id, b.id),"
            " (SELECT COUNT(*) FROM beacon_threads t2 WHERE t2.thread_id = b.id AND t2.beacon_id != b.id)"
            f" FROM beacons b JOIN mentions m ON m.id = b.mention_id LEFT JOIN beacon_threads t ON t.beacon_id = b.id WHERE b.id IN ({marks})",
            ids,
        )
    }
    entries = []
    for b in beacons:
        match_json, thread_id, related = extra.get(b.id, (None, b.id, 0))
        match = _match_from_json(match_json)
        spans = tuple((s.start, s.end) for s in match.spans) if match else ()
        entries.append(Entry(b, int(thread_id), int(related), spans))
    return entries


def get_entry(store: Store, beacon_id: int) -> Entry | None:
    beacon = store.get_beacon(beacon_id)
    return _entries(store, [beacon])[0] if beacon else None


def get_detail(store: Store, beacon_id: int) -> Detail | None:
    """A beacon with its notes, history and the other beacons of its thread."""
    entry = get_entry(store, beacon_id)
    if entry is None:
        return None
    notes = [
        {"id": r[0], "at": r[1], "author": r[2], "text": r[3]}
        for r in store.db.execute(
            "SELECT id, at, author, text FROM beacon_notes WHERE beacon_id = ? ORDER BY id", [beacon_id]
        )
    ]
    thread = [
        {
            "id": r[0],
            "status": r[1],
            "queue": r[2],
            "priority": r[3],
            "title": r[4],
            "source": r[5],
            "author": r[6],
            "assignee": r[7],
        }
        for r in store.db.execute(
            "SELECT b.id, b.status, b.queue, b.priority, m.title, m.source_id, m.author, b.assignee FROM beacon_threads t"
            " JOIN beacons b ON b.id = t.beacon_id JOIN mentions m ON m.id = b.mention_id WHERE t.thread_id = ? AND b.id != ?"
            " UNION SELECT b.id, b.status, b.queue, b.priority, m.title, m.source_id, m.author, b.assignee FROM beacons b"
            " JOIN mentions m ON m.id = b.mention_id WHERE b.id = ? AND b.id != ? ORDER BY 1",
            [entry.thread_id, beacon_id, entry.thread_id, beacon_id],
        )
    ]
    return Detail(entry, notes, history(store, beacon_id), thread)


def history(store: Store, beacon_id: int) -> list[Event]:
    rows = store.db.execute(
        "SELECT id, beacon_id, at, actor, action, from_status, to_status, from_queue, to_queue, assignee, detail"
        " FROM beacon_events WHERE beacon_id = ? ORDER BY id",
        [beacon_id],
    ).fetchall()
    return [Event(*r) for r in rows]


def facets(store: Store) -> dict[str, list[str]]:
    """The brands, products and teams in the queues, for the page's filters."""
    out: dict[str, list[str]] = {}
    for key, sql in (
        (
            "brands",
            "SELECT DISTINCT m.brand FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.queue != 'none' AND m.brand IS NOT NULL",
        ),
        (
            "products",
            "SELECT DISTINCT m.product FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.queue != 'none' AND m.product IS NOT NULL",
        ),
        ("teams", "SELECT DISTINCT team FROM beacons WHERE queue != 'none' AND team IS NOT NULL"),
    ):
        out[key] = sorted((r[0] for r in store.db.execute(sql)), key=str.lower)
    return out


def version(store: Store) -> str:
    """Changes whenever a beacon arrives or anything happens to one (the page polls it to refresh)."""
    row = store.db.execute("SELECT (SELECT MAX(id) FROM beacons), (SELECT MAX(id) FROM beacon_events)").fetchone()
    return f"{row[0] or 0}.{row[1] or 0}"


def metric_counts(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for /metrics: beacons by queue and status, polls and errors per source, the alert backlog."""
    return {
        "beacons": store.db.execute(
            "SELECT queue, status, COUNT(*) FROM beacons GROUP BY queue, status ORDER BY 1, 2"
        ).fetchall(),
        "sources": store.db.execute("SELECT id, polls, errors, consecutive_errors FROM sources ORDER BY id").fetchall(),
        "outbox": store.db.execute(
            "SELECT channel, status, COUNT(*) FROM outbox WHERE status != 'sent' GROUP BY channel, status ORDER BY 1, 2"
        ).fetchall(),
    }


def routing_input(store: Store, beacon_id: int) -> tuple[Mention, Match | None, Classification, Beacon] | None:
    """What the router saw for a stored beacon, rebuilt from the database (for --explain and re-routes)."""
    row = store.db.execute(
        "SELECT m.source_id, m.url, m.guid, m.title, m.text, m.author, m.published_at, m.fetched_at, m.raw, m.author_reach, m.lang,"
        " m.match_json, b.queue, b.sentiment, b.sentiment_score, b.relevance, b.scores_json, b.intents_json, b.model"
        " FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.id = ?",
        [beacon_id],
    ).fetchone()
    beacon = store.get_beacon(beacon_id)
    if row is None or beacon is None:
        return None
    mention = Mention(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        datetime.fromisoformat(row[6]) if row[6] else None,
        datetime.fromisoformat(row[7]),
        row[8],
        row[9],
        row[10],
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
    return mention, _match_from_json(row[11]), classification, beacon


def feedback_examples(store: Store) -> list[dict[str, Any]]:
    """The latest human re-route of each mention, as training examples: {text, title, queue, brand}."""
    rows = store.db.execute(
        "SELECT m.text, m.title, f.to_queue, m.brand FROM feedback_labels f JOIN mentions m ON m.id = f.mention_id"
        " WHERE f.id IN (SELECT MAX(id) FROM feedback_labels GROUP BY mention_id) ORDER BY f.id"
    ).fetchall()
    return [{"text": r[0], "title": r[1], "queue": r[2], "brand": r[3]} for r in rows]


# -- changing --------------------------------------------------------------------


def _event(
    conn: sqlite3.Connection,
    beacon_id: int,
    actor: str,
    action: str,
    before: tuple[str, str],
    after: tuple[str, str],
    assignee: str | None,
    detail: str | None,
    now: str,
) -> None:
    conn.execute(
        "INSERT INTO beacon_events (beacon_id, at, actor, action, from_status, to_status, from_queue, to_queue, assignee, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [beacon_id, now, actor, action, before[0], after[0], before[1], after[1], assignee, detail],
    )


def _current(conn: sqlite3.Connection, beacon_id: int) -> tuple[str, str, str | None]:
    row = conn.execute("SELECT status, queue, assignee FROM beacons WHERE id = ?", [beacon_id]).fetchone()
    if row is None:
        raise BeaconNotFound(beacon_id)
    return row[0], row[1], row[2]


def _transition(
    store: Store,
    beacon_id: int,
    by: str,
    action: str,
    to_status: str,
    *,
    assignee: str | None = None,
    note: str | None = None,
) -> Beacon:
    """Move a beacon (and, when it starts a thread, the open rest of the thread) from new/claimed to ``to_status``."""
    by = clean_name(by)
    assignee = clean_name(assignee, "assignee") if assignee else None
    allowed = ("new",) if action == "claim" else OPEN
    marks = ",".join("?" * len(allowed))
    now = now_iso()
    with store.transaction() as conn:
        status, queue, current_assignee = _current(conn, beacon_id)
        who = assignee or (by if action == "claim" or status == "new" else current_assignee)
        cur = conn.execute(
            f"UPDATE beacons SET status = ?, assignee = ?, updated_at = ? WHERE id = ? AND status IN ({marks})",
            [to_status, who, now, beacon_id, *allowed],
        )
        if cur.rowcount != 1:
            raise TransitionConflict(beacon_id, action, status, current_assignee)
        _event(conn, beacon_id, by, action, (status, queue), (to_status, queue), who, note, now)
        if note:
            conn.execute(
                "INSERT INTO beacon_notes (beacon_id, at, author, text) VALUES (?, ?, ?, ?)", [beacon_id, now, by, note]
            )
        members = conn.execute(
            f"SELECT b.id, b.status, b.queue, b.assignee FROM beacon_threads t JOIN beacons b ON b.id = t.beacon_id"
            f" WHERE t.thread_id = ? AND b.id != ? AND b.status IN ({marks})",
            [beacon_id, beacon_id, *allowed],
        ).fetchall()
        for member_id, m_status, m_queue, m_assignee in members:
            m_who = who if action == "claim" or m_status == "new" else m_assignee
            conn.execute(
                "UPDATE beacons SET status = ?, assignee = ?, updated_at = ? WHERE id = ?",
                [to_status, m_who, now, member_id],
            )
            _event(
                conn,
                member_id,
                by,
                action,
                (m_status, m_queue),
                (to_status, m_queue),
                m_who,
                f"with its thread #{beacon_id}",
                now,
            )
    return _get(store, beacon_id)


def _get(store: Store, beacon_id: int) -> Beacon:
    beacon = store.get_beacon(beacon_id)
    if beacon is None:
        raise BeaconNotFound(beacon_id)
    return beacon


def claim(store: Store, beacon_id: int, by: str, *, assignee: str | None = None) -> Beacon:
    """new -> claimed, assigned to ``assignee`` (default: the claimer). Exactly one concurrent claim wins."""
    return _transition(store, beacon_id, by, "claim", "claimed", assignee=assignee)


def resolve(store: Store, beacon_id: int, by: str, *, note: str | None = None) -> Beacon:
    return _transition(store, beacon_id, by, "resolve", "resolved", note=clean_note(note, required=False))


def dismiss(store: Store, beacon_id: int, by: str, *, note: str | None = None) -> Beacon:
    return _transition(store, beacon_id, by, "dismiss", "dismissed", note=clean_note(note, required=False))


def add_note(store: Store, beacon_id: int, by: str, text: Any) -> dict[str, Any]:
    """Add a note (1..5000 characters; ``text`` is checked, so untyped input is fine)."""
    by = clean_name(by)
    body = clean_note(text, required=True)
    now = now_iso()
    with store.transaction() as conn:
        status, queue, assignee = _current(conn, beacon_id)
        cur = conn.execute(
            "INSERT INTO beacon_notes (beacon_id, at, author, text) VALUES (?, ?, ?, ?)", [beacon_id, now, by, body]
        )
        conn.execute("UPDATE beacons SET updated_at = ? WHERE id = ?", [now, beacon_id])
        _event(conn, beacon_id, by, "note", (status, queue), (status, queue), assignee, None, now)
    return {"id": int(cur.lastrowid or 0), "at": now, "author": by, "text": body}


def reroute(store: Store, beacon_id: int, by: str, queue: str, *, note: str | None = None) -> Beacon:
    """Move a beacon to another queue (support, advocacy, none) and keep the correction as a training label.

    A claimed beacon goes back to new and unassigned in its new queue; it leaves its thread.
    """
    by = clean_name(by)
    if queue not in QUEUES:
        raise InvalidInput("queue", f"expected one of {', '.join(QUEUES)}, got {queue!r}")
    text = clean_note(note, required=False)
    seen = routing_input(store, beacon_id)
    if seen is None:
        raise BeaconNotFound(beacon_id)
    mention, _match, classification, _beacon_now = seen
    value = priority(mention, classification, queue=queue)  # narrowed to a Queue by the check above
    now = now_iso()
    with store.transaction() as conn:
        status, old_queue, assignee = _current(conn, beacon_id)
        if old_queue == queue:
            raise TransitionConflict(
                beacon_id, "reroute", status, assignee, f"beacon {beacon_id} is already in the {queue} queue"
            )
        new_status, new_assignee = ("new", None) if status == "claimed" else (status, assignee)
        cur = conn.execute(
            "UPDATE beacons SET queue = ?, priority = ?, is_beacon = ?, status = ?, assignee = ?, reason = ?, updated_at = ? WHERE id = ? AND queue = ?",
            [
                queue,
                value,
                int(queue == "support"),
                new_status,
                new_assignee,
                f"re-routed by {by} from {old_queue}",
                now,
                beacon_id,
                old_queue,
            ],
        )
        if cur.rowcount != 1:
            raise TransitionConflict(beacon_id, "reroute", status, assignee)
        mention_id = conn.execute("SELECT mention_id FROM beacons WHERE id = ?", [beacon_id]).fetchone()[0]
        conn.execute(
            "INSERT INTO feedback_labels (beacon_id, mention_id, from_queue, to_queue, actor, at) VALUES (?, ?, ?, ?, ?, ?)",
            [beacon_id, mention_id, old_queue, queue, by, now],
        )
        _event(conn, beacon_id, by, "reroute", (status, old_queue), (new_status, queue), new_assignee, text, now)
        if text:
            conn.execute(
                "INSERT INTO beacon_notes (beacon_id, at, author, text) VALUES (?, ?, ?, ?)", [beacon_id, now, by, text]
            )
        _leave_thread(conn, beacon_id)
    return _get(store, beacon_id)


def _leave_thread(conn: sqlite3.Connection, beacon_id: int) -> None:
    """A re-routed beacon is about something else: it starts its own thread, and its old thread gets a new first beacon."""
    rest = [
        r[0]
        for r in conn.execute(
            "SELECT beacon_id FROM beacon_threads WHERE thread_id = ? AND beacon_id != ? ORDER BY beacon_id",
            [beacon_id, beacon_id],
        )
    ]
    if rest:
        conn.execute(
            "UPDATE beacon_threads SET thread_id = ? WHERE thread_id = ? AND beacon_id != ?",
            [rest[0], beacon_id, beacon_id],
        )
    conn.execute(
        "UPDATE beacon_threads SET thread_id = beacon_id, queue = (SELECT queue FROM beacons WHERE id = ?) WHERE beacon_id = ?",
        [beacon_id, beacon_id],
    )


# -- threads ---------------------------------------------------------------------


def link_threads(store: Store, grouping: GroupingConfig | None = None, *, batch: int = 200) -> int:
    """Give every beacon without a thread one: an open similar thread's, or its own. Returns how many were linked."""
    g = grouping or GroupingConfig()
    linked = 0
    while True:
        pending = store.db.execute(
            "SELECT b.id, b.queue, m.brand, m.product, m.title, m.text, m.match_json, COALESCE(m.published_at, m.fetched_at)"
            " FROM beacons b JOIN mentions m ON m.id = b.mention_id LEFT JOIN beacon_threads t ON t.beacon_id = b.id"
            # Beacon ids only grow and batches link in id order, so everything pending is past the last linked id.
            " WHERE b.id > (SELECT COALESCE(MAX(beacon_id), 0) FROM beacon_threads) AND t.beacon_id IS NULL ORDER BY b.id LIMIT ?",
            [batch],
        ).fetchall()
        if not pending:
            return linked
        now = now_iso()
        with store.transaction() as conn:  # one write transaction per batch; each link sees the ones before it
            for beacon_id, queue, brand, product, title, text, match_json, when in pending:
                spans = (_match_from_json(match_json) or Match(brand or "", None, ())).spans
                words = content_words(f"{title}\n{text}", [brand or "", product or "", *(s.text for s in spans)])
                thread_id, score = beacon_id, None
                if g.enabled and queue != "none" and brand and when:
                    found = _similar_thread(conn, beacon_id, queue, brand, product, when, words, g)
                    if found:
                        thread_id, score = found
                cur = conn.execute(
                    "INSERT OR IGNORE INTO beacon_threads (beacon_id, thread_id, similarity, linked_at, queue, brand, product, at, words)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [beacon_id, thread_id, score, now, queue, brand, product, when, " ".join(sorted(words))],
                )
                linked += cur.rowcount
        if len(pending) < batch:
            return linked


def _similar_thread(
    conn: sqlite3.Connection,
    beacon_id: int,
    queue: str,
    brand: str,
    product: str | None,
    when: str,
    words: frozenset[str],
    g: GroupingConfig,
) -> tuple[int, float] | None:
    """The open thread with the most similar earlier post (same brand, product and queue, within the window)."""
    at = datetime.fromisoformat(when)
    lo, hi = (
        (at - timedelta(seconds=g.window)).isoformat(timespec="seconds"),
        (at + timedelta(seconds=g.window)).isoformat(timespec="seconds"),
    )
    rows = conn.execute(
        "SELECT t.thread_id, t.words FROM beacon_threads t JOIN beacons r ON r.id = t.thread_id"
        " WHERE t.brand = ? AND t.product IS ? AND t.queue = ? AND t.at BETWEEN ? AND ? AND t.beacon_id < ?"
        " AND r.status IN ('new', 'claimed') ORDER BY t.at DESC LIMIT 200",
        [brand, product, queue, lo, hi, beacon_id],
    ).fetchall()
    best: tuple[int, float] | None = None
    for thread_id, other in rows:
        score, shared = similarity(words, frozenset(other.split()))
        if score >= g.similarity and shared >= g.min_shared and (best is None or score > best[1]):
            best = (int(thread_id), round(score, 3))
    return best
