"""All of beacons' SQL, behind one small ``Store`` class.

SQLite through sqlite-utils, WAL mode, forward-only migrations recorded by
``sqlite_utils.Migrations``. Writes are idempotent: every mention has up to
three identity keys (``beacons.dedupe``) in ``mention_keys`` with a unique
index, so a re-poll or a restart inserts nothing twice. ``save_poll`` writes a
poll's mentions, beacons, outbox rows and the source's new state in one
transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from beacons.errors import StoreError
from beacons.models import Beacon, Classification, Match, Mention, Route, Source, SourceState

migrations = Migrations("beacons")

# Later stages (the queue lifecycle, the alert outbox) keep their tables in their
# own migration sets and append them here when their module is imported.
MIGRATION_SETS: list[Migrations] = [migrations]
_EXTENSIONS = ("beacons.queue", "beacons.alerts.outbox")


def _load_extensions() -> None:
    import importlib

    for name in _EXTENSIONS:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not exc.name or not name.startswith(exc.name):
                raise


@migrations(name="0001_initial")
def _m0001(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE sources (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL,
            etag TEXT, last_modified TEXT, cursor TEXT,
            last_poll_at TEXT, last_ok_at TEXT, last_new_at TEXT, last_status TEXT, last_error TEXT,
            polls INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,
            consecutive_errors INTEGER NOT NULL DEFAULT 0, not_modified INTEGER NOT NULL DEFAULT 0,
            items_seen INTEGER NOT NULL DEFAULT 0, items_new INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0, next_poll_at TEXT
        );
        CREATE TABLE mentions (
            id INTEGER PRIMARY KEY, source_id TEXT NOT NULL, url TEXT, guid TEXT,
            title TEXT NOT NULL, text TEXT NOT NULL, author TEXT, author_reach INTEGER,
            published_at TEXT, fetched_at TEXT NOT NULL, lang TEXT,
            brand TEXT, product TEXT, match_json TEXT, raw TEXT NOT NULL,
            classify_status TEXT NOT NULL DEFAULT 'pending', classify_error TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX mentions_source ON mentions(source_id);
        CREATE INDEX mentions_classify ON mentions(classify_status);
        CREATE TABLE mention_keys (
            key TEXT PRIMARY KEY, mention_id INTEGER NOT NULL REFERENCES mentions(id)
        ) WITHOUT ROWID;
        CREATE TABLE beacons (
            id INTEGER PRIMARY KEY, mention_id INTEGER NOT NULL UNIQUE REFERENCES mentions(id),
            queue TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'new', priority INTEGER NOT NULL DEFAULT 0,
            is_beacon INTEGER NOT NULL, sentiment TEXT NOT NULL, sentiment_score REAL NOT NULL DEFAULT 0,
            relevance REAL NOT NULL DEFAULT 1, scores_json TEXT NOT NULL DEFAULT '{}',
            intents_json TEXT NOT NULL DEFAULT '{}', model TEXT, reason TEXT, team TEXT, assignee TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL
        );
        CREATE INDEX beacons_queue ON beacons(queue, status, priority DESC);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,
            beacon_id INTEGER REFERENCES beacons(id), kind TEXT NOT NULL DEFAULT 'beacon',
            payload_json TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, last_error TEXT,
            created_at TEXT NOT NULL, sent_at TEXT
        );
        CREATE INDEX outbox_pending ON outbox(status, next_attempt_at);
        """
    )


def fault_hint(exc: sqlite3.Error) -> str:
    """What to change, for the SQLite failures an operator can fix (docs/readme/operations.md)."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return " (another process holds a write lock; the poll is retried with backoff)"
    if "full" in text:
        return " (the disk or the database size limit is full: free space; the poll is retried with backoff)"
    if "readonly" in text or "read-only" in text or "query_only" in text:
        return " (the database file or its folder is read-only: check permissions of database: and its folder)"
    return ""


def _rollback(conn: sqlite3.Connection) -> None:
    # After SQLITE_FULL or an I/O error SQLite may already have rolled back itself.
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


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
class BeaconFilter:
    queue: str | None = None  # None: support and advocacy; "all": every queue incl. none
    status: str | None = None
    brand: str | None = None
    product: str | None = None
    team: str | None = None
    limit: int = 100
    after_id: int | None = None  # cursor for paging: beacons ordered by priority then id


def create_private(path: str) -> None:
    """Create a new database file readable by its owner only (0600).

    SQLite gives the ``-wal`` and ``-shm`` files the permissions of the database file, so they are private too.
    An existing file keeps its mode: an operator who wants a group to read it runs ``chmod`` once.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Store:
    """The SQLite file. One instance per thread; every method is one short transaction."""

    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                create_private(self.path)
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            _load_extensions()
            for migration_set in MIGRATION_SETS:
                migration_set.apply(self.db)
        except (sqlite3.Error, OSError) as exc:  # OSError: the folder cannot be created
            raise StoreError(
                f"cannot open database {self.path}: {exc} (check the database: path and its folder's permissions)"
            ) from exc

    def close(self) -> None:
        self.db.conn.close()

    @property
    def schema_version(self) -> int:
        return sum(len(m.applied(self.db)) for m in MIGRATION_SETS)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any SQLite failure inside it rolls back and becomes a ``StoreError``."""
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to database {self.path}: {exc}{fault_hint(exc)}") from exc
        try:
            yield conn
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                # A full disk, a read-only file or a lock met mid-write: nothing of it stays.
                raise StoreError(
                    f"write to database {self.path} failed and was rolled back: {exc}{fault_hint(exc)}"
                ) from exc
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise StoreError(f"could not commit to {self.path}: {exc}{fault_hint(exc)}") from exc

    # -- sources ---------------------------------------------------------

    def sync_sources(self, sources: Iterable[Source]) -> None:
        """Make sure every configured source has a row (its state survives restarts)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO sources (id, kind) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET kind = excluded.kind",
                [(s.id, s.kind) for s in sources],
            )

    def source_state(self, source_id: str) -> SourceState:
        row = self.db.execute("SELECT etag, last_modified, cursor FROM sources WHERE id = ?", [source_id]).fetchone()
        return SourceState(*row) if row else SourceState()

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        keys = list(dict.fromkeys(keys))
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(f"SELECT key FROM mention_keys WHERE key IN ({marks})", chunk))
        return found

    def save_poll(
        self,
        source_id: str,
        items: Sequence[Item],
        *,
        state: SourceState | None = None,
        status: str = "ok",
        seen: int = 0,
        skipped: int = 0,
        channels: Sequence[str] = (),
    ) -> SaveResult:
        """Store a poll's new mentions with their beacons and outbox rows, and the source's state, atomically."""
        now = now_iso()
        new = dup = 0
        beacon_ids: list[int] = []
        queued: dict[str, int] = {}
        with self.transaction() as conn:
            for item in items:
                mention_id = self._insert_mention(conn, item, now)
                if mention_id is None:
                    dup += 1
                    continue
                new += 1
                if item.classification is not None and item.route is not None:
                    beacon_id = self._insert_beacon(conn, mention_id, item, now)
                    beacon_ids.append(beacon_id)
                    queued[item.route.queue] = queued.get(item.route.queue, 0) + 1
                    if item.route.queue != "none":
                        conn.executemany(
                            "INSERT OR IGNORE INTO outbox (event_id, channel, beacon_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
                            [(f"beacon-{beacon_id}-{ch}", ch, beacon_id, now, now) for ch in channels],
                        )
            sets = [
                "last_poll_at = ?",
                "last_status = ?",
                "polls = polls + 1",
                "items_seen = items_seen + ?",
                "items_new = items_new + ?",
                "skipped = skipped + ?",
            ]
            args: list[Any] = [now, status, seen, new, skipped]
            if status in ("ok", "not_modified"):
                sets += ["last_ok_at = ?", "consecutive_errors = 0", "last_error = NULL"]
                args.append(now)
            if status == "not_modified":
                sets.append("not_modified = not_modified + 1")
            if new:
                sets.append("last_new_at = ?")
                args.append(now)
            if state is not None:
                sets += ["etag = ?", "last_modified = ?", "cursor = ?"]
                args += [state.etag, state.last_modified, state.cursor]
            conn.execute(f"UPDATE sources SET {', '.join(sets)} WHERE id = ?", [*args, source_id])
        return SaveResult(new, dup, tuple(beacon_ids), queued)

    def record_error(self, source_id: str, error: str, *, status: str = "error") -> int:
        """Count a failed poll; returns the source's consecutive error count."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sources SET last_poll_at = ?, last_status = ?, last_error = ?, polls = polls + 1, "
                "errors = errors + 1, consecutive_errors = consecutive_errors + 1 WHERE id = ?",
                [now_iso(), status, error[:2000], source_id],
            )
            row = conn.execute("SELECT consecutive_errors FROM sources WHERE id = ?", [source_id]).fetchone()
        return int(row[0]) if row else 0

    def consecutive_errors(self, source_id: str) -> int:
        """The stored count of failed polls in a row, read without writing (0 when unreadable)."""
        try:
            row = self.db.execute("SELECT consecutive_errors FROM sources WHERE id = ?", [source_id]).fetchone()
        except sqlite3.Error:
            return 0
        return int(row[0]) if row else 0

    def set_next_poll(self, source_id: str, when: datetime) -> None:
        self.db.execute("UPDATE sources SET next_poll_at = ? WHERE id = ?", [_iso(when), source_id])

    def sources(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("SELECT * FROM sources ORDER BY id")]

    def _insert_mention(self, conn: sqlite3.Connection, item: Item, now: str) -> int | None:
        marks = ",".join("?" * len(item.keys))
        if conn.execute(f"SELECT 1 FROM mention_keys WHERE key IN ({marks}) LIMIT 1", item.keys).fetchone():
            return None
        m = item.mention
        match_json = json.dumps(_match_json(item.match)) if item.match else None
        status = "ok" if item.classification is not None else ("error" if item.classify_error else "pending")
        cur = conn.execute(
            "INSERT INTO mentions (source_id, url, guid, title, text, author, author_reach, published_at, fetched_at, lang,"
            " brand, product, match_json, raw, classify_status, classify_error, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                m.source_id,
                m.url,
                m.guid,
                m.title,
                m.text,
                m.author,
                m.author_reach,
                _iso(m.published_at),
                _iso(m.fetched_at),
                (item.classification.lang if item.classification else None) or m.lang,
                item.match.brand if item.match else None,
                item.match.product if item.match else None,
                match_json,
                m.raw,
                status,
                item.classify_error,
                now,
            ],
        )
        mention_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT OR IGNORE INTO mention_keys (key, mention_id) VALUES (?, ?)", [(k, mention_id) for k in item.keys]
        )
        return mention_id

    def _insert_beacon(self, conn: sqlite3.Connection, mention_id: int, item: Item, now: str) -> int:
        c, r = item.classification, item.route
        assert c is not None and r is not None
        cur = conn.execute(
            "INSERT INTO beacons (mention_id, queue, status, priority, is_beacon, sentiment, sentiment_score, relevance,"
            " scores_json, intents_json, model, reason, team, created_at, updated_at)"
            " VALUES (?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                mention_id,
                r.queue,
                r.priority,
                int(r.queue == "support"),
                c.sentiment,
                c.sentiment_score,
                c.relevance,
                json.dumps(c.scores),
                json.dumps(c.intents),
                c.model,
                r.reason,
                r.team,
                now,
                now,
            ],
        )
        return int(cur.lastrowid or 0)

    # -- classification retries -------------------------------------------

    def unclassified(self, limit: int = 100) -> list[tuple[int, Mention, Match | None]]:
        """Mentions stored without a classification (the classifier failed); retried later."""
        rows = self.db.execute(
            "SELECT id, source_id, url, guid, title, text, author, published_at, fetched_at, raw, author_reach, lang, match_json"
            " FROM mentions WHERE classify_status IN ('error', 'pending') AND brand IS NOT NULL ORDER BY id LIMIT ?",
            [limit],
        ).fetchall()
        out = []
        for row in rows:
            mention = Mention(
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                datetime.fromisoformat(row[7]) if row[7] else None,
                datetime.fromisoformat(row[8]),
                row[9],
                row[10],
                row[11],
            )
            out.append((int(row[0]), mention, _match_from_json(row[12])))
        return out

    def save_classification(self, mention_id: int, item: Item, *, channels: Sequence[str] = ()) -> int:
        now = now_iso()
        with self.transaction() as conn:
            conn.execute("UPDATE mentions SET classify_status = 'ok', classify_error = NULL WHERE id = ?", [mention_id])
            beacon_id = self._insert_beacon(conn, mention_id, item, now)
            if item.route is not None and item.route.queue != "none":
                conn.executemany(
                    "INSERT OR IGNORE INTO outbox (event_id, channel, beacon_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
                    [(f"beacon-{beacon_id}-{ch}", ch, beacon_id, now, now) for ch in channels],
                )
        return beacon_id

    # -- reading the queue ------------------------------------------------

    _BEACON_SELECT = (
        "SELECT b.id, b.queue, b.status, b.priority, m.brand, m.product, m.title, m.text, m.url, m.source_id, m.author,"
        " m.published_at, b.sentiment, b.is_beacon, b.sentiment_score, b.scores_json, b.reason, b.team, b.assignee,"
        " b.created_at, b.updated_at, m.fetched_at, m.author_reach"
        " FROM beacons b JOIN mentions m ON m.id = b.mention_id"
    )

    def list_beacons(self, f: BeaconFilter | None = None) -> list[Beacon]:
        f = f or BeaconFilter()
        where: list[str] = []
        args: list[Any] = []
        if f.queue is None:
            where.append("b.queue IN ('support', 'advocacy')")
        elif f.queue != "all":
            where.append("b.queue = ?")
            args.append(f.queue)
        for column, value in (
            ("b.status", f.status),
            ("m.brand", f.brand),
            ("m.product", f.product),
            ("b.team", f.team),
        ):
            if value:
                where.append(f"{column} = ? COLLATE NOCASE")
                args.append(value)
        if f.after_id is not None:
            where.append("b.id < ?")
            args.append(f.after_id)
        sql = (
            self._BEACON_SELECT
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY b.priority DESC, b.id DESC LIMIT ?"
        )
        return [_beacon(r) for r in self.db.execute(sql, [*args, max(1, min(f.limit, 10_000))]).fetchall()]

    def get_beacon(self, beacon_id: int) -> Beacon | None:
        row = self.db.execute(self._BEACON_SELECT + " WHERE b.id = ?", [beacon_id]).fetchone()
        return _beacon(row) if row else None

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT queue, status, COUNT(*) FROM beacons GROUP BY queue, status").fetchall()
        return {f"{q}/{s}": n for q, s, n in rows}

    def mention_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM mentions").fetchone()[0])


def _match_json(match: Match) -> dict[str, Any]:
    return {
        "brand": match.brand,
        "product": match.product,
        "other_brands": list(match.other_brands),
        "spans": [[s.start, s.end, s.text, s.brand, s.product, s.kind] for s in match.spans],
    }


def _match_from_json(text: str | None) -> Match | None:
    from beacons.models import MatchSpan

    if not text:
        return None
    data = json.loads(text)
    spans = tuple(MatchSpan(*s) for s in data.get("spans", []))
    return Match(data["brand"], data.get("product"), spans, tuple(data.get("other_brands", [])))


def _beacon(row: Sequence[Any]) -> Beacon:
    return Beacon(
        id=row[0],
        queue=row[1],
        status=row[2],
        priority=row[3],
        brand=row[4],
        product=row[5],
        title=row[6],
        text=row[7],
        url=row[8],
        source=row[9],
        author=row[10],
        published_at=row[11],
        sentiment=row[12],
        is_beacon=bool(row[13]),
        sentiment_score=row[14],
        scores=json.loads(row[15] or "{}"),
        reason=row[16] or "",
        team=row[17],
        assignee=row[18],
        created_at=row[19],
        updated_at=row[20],
        fetched_at=row[21],
        author_reach=row[22],
    )
