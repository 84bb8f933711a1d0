"""The alert outbox and the alert tables: every SQL statement of the alerts package.

``Store.save_poll`` writes one ``outbox`` row per channel in the beacon's own
transaction (event id ``beacon-{id}-{channel}``). This module adds the
``beacons-alerts`` migration set (appended to ``MIGRATION_SETS`` when the
Store imports it) and the ``Outbox`` class the sender, the health and spike
rules and the CLI use.

Row states::

    pending --claim--> sending --2xx--> sent
       ^                  |  \\--retryable failure--> pending (next_attempt_at later)
       |                  |   \\--permanent or max_attempts--> dead --`alerts retry`--> pending
       |                  \\--beacon triage--> skipped | grouped (into an incident) | queued (for a digest)
       \\---- lease expired (sender crashed mid-send): claimable again

A claim is one ``BEGIN IMMEDIATE`` transaction that moves a due row to
``sending`` with a lease (``next_attempt_at`` = now + lease), so two senders
never hold the same row at once, and a sender killed mid-send leaves a row
that another claims once the lease runs out. Rows hold ids and facts, never a
URL or a secret: messages are built at send time from the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from beacons.models import Beacon, Match, Mention
from beacons.store import MIGRATION_SETS, Store, _match_from_json

migrations = Migrations("beacons-alerts")
if not any(m.name == migrations.name for m in MIGRATION_SETS):
    MIGRATION_SETS.append(migrations)

OPEN_STATES = ("pending", "sending")
STATES = ("pending", "sending", "sent", "dead", "skipped", "grouped", "queued", "digested")


@migrations(name="0001_alert_tables")
def _m0001(db: sqlite_utils.Database) -> None:
    for sql in (
        "ALTER TABLE outbox ADD COLUMN parent_event_id TEXT",
        "ALTER TABLE outbox ADD COLUMN http_status INTEGER",
        "CREATE INDEX outbox_channel ON outbox(channel, status, next_attempt_at)",
        "CREATE INDEX outbox_parent ON outbox(parent_event_id)",
        (
            "CREATE TABLE alert_source_health (channel TEXT NOT NULL, source_id TEXT NOT NULL,"
            " state TEXT NOT NULL DEFAULT 'ok', reason TEXT, since TEXT, episode INTEGER NOT NULL DEFAULT 0,"
            " reminders INTEGER NOT NULL DEFAULT 0, last_alert_at TEXT, first_seen TEXT NOT NULL,"
            " PRIMARY KEY (channel, source_id))"
        ),
        (
            "CREATE TABLE alert_incidents (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, brand TEXT NOT NULL,"
            " product TEXT, status TEXT NOT NULL DEFAULT 'open', threshold REAL NOT NULL, opened_at TEXT NOT NULL,"
            " closed_at TEXT, event_id TEXT NOT NULL, grouped INTEGER NOT NULL DEFAULT 0)"
        ),
        "CREATE UNIQUE INDEX alert_incidents_open ON alert_incidents(channel, brand, ifnull(product, '')) WHERE status = 'open'",
        "CREATE TABLE alert_channels (channel TEXT PRIMARY KEY, last_digest_at TEXT)",
    ):
        db.execute(sql)


def ts(epoch: float) -> str:
    """ISO 8601 UTC with microseconds; sorts correctly against the store's second-precision stamps."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    event_id: str
    channel: str
    kind: str  # beacon | digest | source_health | incident | test
    beacon_id: int | None
    payload: dict[str, Any]
    status: str
    attempts: int
    created_at: str
    next_attempt_at: str | None = None
    last_error: str | None = None
    sent_at: str | None = None
    parent_event_id: str | None = None
    http_status: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class BeaconView:
    """A beacon with what an alert shows: the mention's full text and its match spans."""

    beacon: Beacon
    full_text: str
    match: Match | None


_ROW_COLUMNS = "id, event_id, channel, kind, beacon_id, payload_json, status, attempts, created_at, next_attempt_at, last_error, sent_at, parent_event_id, http_status"


def _row(r: Sequence[Any]) -> Row:
    return Row(
        r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"), r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13]
    )


class Outbox:
    """Alert rows and alert state on top of a ``Store`` (its connection and transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    # -- events -------------------------------------------------------------

    def add_event(
        self,
        channel: str,
        event_id: str,
        kind: str,
        payload: dict[str, Any],
        *,
        now: float,
        beacon_id: int | None = None,
        conn: Any = None,
    ) -> bool:
        """Insert an alert row unless its event id exists; True when inserted."""
        sql = (
            "INSERT OR IGNORE INTO outbox (event_id, channel, beacon_id, kind, payload_json, status, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)"
        )
        args = [event_id, channel, beacon_id, kind, json.dumps(payload, ensure_ascii=False), ts(now), ts(now)]
        if conn is not None:
            return bool(conn.execute(sql, args).rowcount)
        with self.store.transaction() as c:
            return bool(c.execute(sql, args).rowcount)

    def claim_next(self, channel: str, *, now: float, lease: float) -> Row | None:
        """Reserve the oldest due row of a channel for one send (pending, or sending with an expired lease)."""
        with self.store.transaction() as conn:
            r = conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE channel = ? AND status IN ('pending', 'sending')"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
                [channel, ts(now)],
            ).fetchone()
            if r is None:
                return None
            conn.execute(
                "UPDATE outbox SET status = 'sending', next_attempt_at = ? WHERE id = ?", [ts(now + lease), r[0]]
            )
        return _row(r)

    def claim_id(self, row_id: int, *, now: float, lease: float) -> Row | None:
        """Reserve one given row if nobody holds it (``beacons alerts test``)."""
        with self.store.transaction() as conn:
            r = conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE id = ? AND status = 'pending'", [row_id]
            ).fetchone()
            if r is None:
                return None
            conn.execute(
                "UPDATE outbox SET status = 'sending', next_attempt_at = ? WHERE id = ?", [ts(now + lease), r[0]]
            )
        return _row(r)

    def next_due(self, channel: str) -> float | None:
        r = self.db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE channel = ? AND status IN ('pending', 'sending')", [channel]
        ).fetchone()
        return epoch(r[0]) if r and r[0] else None

    def mark_sent(self, row_id: int, *, now: float, http_status: int) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL, http_status = ?"
                " WHERE id = ? AND status = 'sending'",
                [ts(now), http_status, row_id],
            )

    def mark_failed(self, row_id: int, error: str, *, retry_at: float | None, http_status: int | None = None) -> None:
        """Count a failed attempt: back to pending at ``retry_at``, or dead when it is None."""
        status = "dead" if retry_at is None else "pending"
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?, http_status = ?, next_attempt_at = ?"
                " WHERE id = ? AND status = 'sending'",
                [status, error[:500], http_status, ts(retry_at) if retry_at is not None else None, row_id],
            )

    def release(self, row_id: int, *, now: float) -> None:
        """Give a claimed row back without counting an attempt (shutdown during a send)."""
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = ? WHERE id = ? AND status = 'sending'",
                [ts(now), row_id],
            )

    def settle(
        self,
        row_id: int,
        status: str,
        *,
        parent_event_id: str | None = None,
        error: str | None = None,
        conn: Any = None,
    ) -> None:
        """Close a beacon row without a send: skipped (filters), grouped (incident), queued (digest) or dead."""
        sql = "UPDATE outbox SET status = ?, parent_event_id = ?, last_error = ?, next_attempt_at = NULL WHERE id = ?"
        if conn is not None:
            conn.execute(sql, [status, parent_event_id, error, row_id])
            return
        with self.store.transaction() as c:
            c.execute(sql, [status, parent_event_id, error, row_id])

    # -- reading and replaying (CLI, metrics) --------------------------------

    def rows(self, *, status: str | None = None, channel: str | None = None, limit: int = 50) -> list[Row]:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if channel:
            where.append("channel = ?")
            args.append(channel)
        sql = (
            f"SELECT {_ROW_COLUMNS} FROM outbox"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY id DESC LIMIT ?"
        )
        return [_row(r) for r in self.db.execute(sql, [*args, max(1, limit)]).fetchall()]

    def get(self, key: int | str) -> Row | None:
        column = "id" if isinstance(key, int) else "event_id"
        r = self.db.execute(f"SELECT {_ROW_COLUMNS} FROM outbox WHERE {column} = ?", [key]).fetchone()
        return _row(r) if r else None

    def retry(
        self, *, ids: Iterable[int | str] = (), dead: bool = False, channel: str | None = None, now: float
    ) -> int:
        """Put rows (by id or event id, or every dead one) back to pending with a fresh attempt count."""
        changed = 0
        with self.store.transaction() as conn:
            for key in ids:
                column = "id" if isinstance(key, int) else "event_id"
                changed += conn.execute(
                    f"UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL WHERE {column} = ? AND status != 'sending'",
                    [ts(now), key],
                ).rowcount
            if dead:
                sql, args = (
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL WHERE status = 'dead'",
                    [ts(now)],
                )
                if channel:
                    sql += " AND channel = ?"
                    args.append(channel)
                changed += conn.execute(sql, args).rowcount
        return changed

    def counts(self) -> dict[str, dict[str, int]]:
        """{channel: {status: n}}: the alert backlog (pending + sending) and outcomes, e.g. for /metrics."""
        out: dict[str, dict[str, int]] = {}
        for channel, status, n in self.db.execute(
            "SELECT channel, status, COUNT(*) FROM outbox GROUP BY channel, status"
        ):
            out.setdefault(channel, {})[status] = n
        return out

    # -- beacons as alerts show them ----------------------------------------

    def beacon_view(self, beacon_id: int) -> BeaconView | None:
        beacon = self.store.get_beacon(beacon_id)
        if beacon is None:
            return None
        r = self.db.execute(
            "SELECT m.match_json FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.id = ?", [beacon_id]
        ).fetchone()
        mention = Mention(
            beacon.source, beacon.url, None, beacon.title, beacon.text, beacon.author, None, datetime.now(UTC), "{}"
        )
        return BeaconView(beacon, mention.full_text, _match_from_json(r[0] if r else None))

    # A post counts at its publication time, or when stored if it has none (or claims a future one), so a
    # feed's backlog read on the first poll lands in the baseline, not in the last window.
    _POSTED = "CASE WHEN m.published_at IS NOT NULL AND m.published_at < b.created_at THEN m.published_at ELSE b.created_at END"

    def support_times(self, brand: str, product: str | None, *, since: float) -> list[float]:
        """When each support beacon for one brand/product was posted, since ``since`` (the spike rule's input)."""
        rows = self.db.execute(
            f"SELECT {self._POSTED} AS posted FROM beacons b JOIN mentions m ON m.id = b.mention_id"
            " WHERE b.queue = 'support' AND m.brand = ? AND ifnull(m.product, '') = ? AND posted >= ?",
            [brand, product or "", ts(since)[:19]],
        ).fetchall()
        return [epoch(r[0]) or 0.0 for r in rows]

    def support_ids(self, brand: str, product: str | None, *, since: float, limit: int = 50) -> list[int]:
        rows = self.db.execute(
            f"SELECT b.id, {self._POSTED} AS posted FROM beacons b JOIN mentions m ON m.id = b.mention_id"
            " WHERE b.queue = 'support' AND m.brand = ? AND ifnull(m.product, '') = ? AND posted >= ?"
            " ORDER BY b.priority DESC, b.id DESC LIMIT ?",
            [brand, product or "", ts(since)[:19], limit],
        ).fetchall()
        return [int(r[0]) for r in rows]

    # -- incidents ---------------------------------------------------------

    def open_incident(self, channel: str, brand: str, product: str | None) -> dict[str, Any] | None:
        r = self.db.execute(
            "SELECT id, event_id, threshold, opened_at, grouped FROM alert_incidents"
            " WHERE channel = ? AND brand = ? AND ifnull(product, '') = ? AND status = 'open'",
            [channel, brand, product or ""],
        ).fetchone()
        return {"id": r[0], "event_id": r[1], "threshold": r[2], "opened_at": r[3], "grouped": r[4]} if r else None

    def open_incidents(self, channel: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, event_id, threshold, opened_at, grouped, brand, product FROM alert_incidents WHERE channel = ? AND status = 'open'",
            [channel],
        ).fetchall()
        return [
            {
                "id": r[0],
                "event_id": r[1],
                "threshold": r[2],
                "opened_at": r[3],
                "grouped": r[4],
                "brand": r[5],
                "product": r[6],
            }
            for r in rows
        ]

    def create_incident(
        self, channel: str, brand: str, product: str | None, *, threshold: float, payload: dict[str, Any], now: float
    ) -> str:
        """Open an incident and write its alert row in one transaction; returns its event id."""
        with self.store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO alert_incidents (channel, brand, product, threshold, opened_at, event_id) VALUES (?, ?, ?, ?, ?, '')",
                [channel, brand, product, threshold, ts(now)],
            )
            incident_id = int(cur.lastrowid or 0)
            event_id = f"incident-{incident_id}-{channel}"
            conn.execute("UPDATE alert_incidents SET event_id = ? WHERE id = ?", [event_id, incident_id])
            self.add_event(
                channel,
                event_id,
                "incident",
                {**payload, "incident_id": incident_id, "state": "open"},
                now=now,
                conn=conn,
            )
        return event_id

    def group_into(self, row_id: int, incident: dict[str, Any]) -> None:
        with self.store.transaction() as conn:
            self.settle(row_id, "grouped", parent_event_id=incident["event_id"], conn=conn)
            conn.execute("UPDATE alert_incidents SET grouped = grouped + 1 WHERE id = ?", [incident["id"]])

    def grouped_ids(self, event_id: str, limit: int = 50) -> list[int]:
        rows = self.db.execute(
            "SELECT beacon_id FROM outbox WHERE parent_event_id = ? ORDER BY id DESC LIMIT ?", [event_id, limit]
        ).fetchall()
        return [int(r[0]) for r in rows if r[0] is not None]

    def close_incident(self, incident: dict[str, Any], channel: str, payload: dict[str, Any], *, now: float) -> str:
        event_id = f"{incident['event_id']}-ended"
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE alert_incidents SET status = 'closed', closed_at = ? WHERE id = ? AND status = 'open'",
                [ts(now), incident["id"]],
            )
            self.add_event(channel, event_id, "incident", {**payload, "state": "ended"}, now=now, conn=conn)
        return event_id

    # -- source health ----------------------------------------------------

    def sources(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.store.sources()}

    def health_states(self, channel: str) -> dict[str, dict[str, Any]]:
        rows = self.db.query("SELECT * FROM alert_source_health WHERE channel = ?", [channel])
        return {r["source_id"]: dict(r) for r in rows}

    def save_health(
        self,
        channel: str,
        source_id: str,
        state: dict[str, Any],
        event: tuple[str, dict[str, Any]] | None,
        *,
        now: float,
    ) -> None:
        """Store a source's health state and, in the same transaction, the alert it causes."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO alert_source_health (channel, source_id, state, reason, since, episode, reminders, last_alert_at, first_seen)"
                " VALUES (:channel, :source_id, :state, :reason, :since, :episode, :reminders, :last_alert_at, :first_seen)"
                " ON CONFLICT(channel, source_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, since = excluded.since,"
                " episode = excluded.episode, reminders = excluded.reminders, last_alert_at = excluded.last_alert_at",
                {
                    "channel": channel,
                    "source_id": source_id,
                    **{
                        k: state.get(k)
                        for k in ("state", "reason", "since", "episode", "reminders", "last_alert_at", "first_seen")
                    },
                },
            )
            if event is not None:
                self.add_event(channel, event[0], "source_health", event[1], now=now, conn=conn)

    # -- digests -------------------------------------------------------------

    def last_digest_at(self, channel: str) -> float | None:
        r = self.db.execute("SELECT last_digest_at FROM alert_channels WHERE channel = ?", [channel]).fetchone()
        return epoch(r[0]) if r and r[0] else None

    def oldest_queued(self, channel: str) -> float | None:
        r = self.db.execute(
            "SELECT MIN(created_at) FROM outbox WHERE channel = ? AND status = 'queued'", [channel]
        ).fetchone()
        return epoch(r[0]) if r and r[0] else None

    def make_digest(self, channel: str, *, now: float, since: float | None) -> str | None:
        """Fold every queued beacon row of a channel into one digest row, atomically; its event id or None."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT id, beacon_id FROM outbox WHERE channel = ? AND status = 'queued' ORDER BY id", [channel]
            ).fetchall()
            conn.execute(
                "INSERT INTO alert_channels (channel, last_digest_at) VALUES (?, ?) ON CONFLICT(channel) DO UPDATE SET last_digest_at = excluded.last_digest_at",
                [channel, ts(now)],
            )
            if not rows:
                return None
            event_id = f"digest-{rows[0][0]}-{rows[-1][0]}-{channel}"
            payload = {
                "beacon_ids": [r[1] for r in rows],
                "window_start": ts(since) if since else None,
                "window_end": ts(now),
            }
            self.add_event(channel, event_id, "digest", payload, now=now, conn=conn)
            conn.executemany(
                "UPDATE outbox SET status = 'digested', parent_event_id = ? WHERE id = ?",
                [(event_id, r[0]) for r in rows],
            )
        return event_id
