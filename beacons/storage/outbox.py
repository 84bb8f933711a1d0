"""The alert outbox and the alert tables (source health, incidents, digests): every alert query.

Row states::

    pending --claim--> sending --2xx--> sent
       ^                  |  \\--retryable failure--> pending (next_attempt_at later)
       |                  |   \\--permanent or max_attempts--> dead --`alerts retry`--> pending
       |                  \\--beacon triage--> skipped | grouped (into an incident) | queued (for a digest)
       \\---- lease expired (sender crashed mid-send): claimable again

A claim is one guarded statement: ``UPDATE outbox SET status = 'sending' ...
WHERE id = (the oldest due row ... FOR UPDATE SKIP LOCKED) AND status IN
('pending', 'sending') AND next_attempt_at <= now RETURNING ...``. Two senders
(threads, processes or machines) never hold one row at once, and a sender
killed mid-send leaves a row that another claims once the lease runs out.
Rows hold ids and facts, never a URL or a secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from beacons.models import Beacon, Match, Mention
from beacons.storage.base import Tx, from_epoch, iso, to_epoch

if TYPE_CHECKING:
    from beacons.storage import Storage

OPEN_STATES = ("pending", "sending")
STATES = ("pending", "sending", "sent", "dead", "skipped", "grouped", "queued", "digested")


def ts(epoch: float) -> str:
    """A time as the database gives it back: UTC ISO-8601 with microseconds."""
    return iso(from_epoch(epoch))


def epoch(stamp: str | None) -> float | None:
    return to_epoch(stamp)


def _time(value: str | float | None) -> datetime | None:
    """Health-state times arrive as stored text or epochs; the database takes datetimes."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return from_epoch(float(value))
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


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


_COLUMNS = (
    "id, event_id, channel, kind, beacon_id, payload_json, status, attempts, created_at, next_attempt_at,"
    " last_error, sent_at, parent_event_id, http_status"
)


def _row(r: Sequence[Any]) -> Row:
    return Row(
        int(r[0]),
        r[1],
        r[2],
        r[3],
        r[4],
        json.loads(r[5] or "{}"),
        r[6],
        int(r[7]),
        r[8],
        r[9],
        r[10],
        r[11],
        r[12],
        r[13],
    )


def _add(
    tx: Tx, channel: str, event_id: str, kind: str, payload: dict[str, Any], now: float, beacon_id: int | None
) -> bool:
    at = from_epoch(now)
    return bool(
        tx.execute(
            "INSERT INTO outbox (event_id, channel, beacon_id, kind, payload_json, status, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (event_id) DO NOTHING",
            [event_id, channel, beacon_id, kind, json.dumps(payload, ensure_ascii=False), at, at],
        ).rowcount
    )


# A post counts at its publication time, or when stored if it has none (or claims a future one), so a
# feed's backlog read on the first poll lands in the baseline, not in the last window.
_POSTED = (
    "CASE WHEN m.published_at IS NOT NULL AND m.published_at < b.created_at THEN m.published_at ELSE b.created_at END"
)


class OutboxStore:
    """Alert rows and alert state, on a ``Storage``'s backend."""

    def __init__(self, storage: Storage) -> None:
        self.store = storage
        self.backend = storage.backend

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
    ) -> bool:
        """Insert an alert row unless its event id exists; True when inserted."""
        with self.backend.transaction() as tx:
            return _add(tx, channel, event_id, kind, payload, now, beacon_id)

    def claim_next(self, channel: str, *, now: float, lease: float) -> Row | None:
        """Reserve the oldest due row of a channel for one send (pending, or sending with an expired lease)."""
        at = from_epoch(now)
        with self.backend.transaction() as tx:
            r = tx.execute(
                "UPDATE outbox SET status = 'sending', next_attempt_at = ? WHERE id = ("
                "SELECT id FROM outbox WHERE channel = ? AND status IN ('pending', 'sending') AND next_attempt_at <= ?"
                f" ORDER BY next_attempt_at, id LIMIT 1{self.backend.skip_locked})"
                f" AND status IN ('pending', 'sending') AND next_attempt_at <= ? RETURNING {_COLUMNS}",
                [from_epoch(now + lease), channel, at, at],
            ).one()
        return _row(r) if r else None

    def claim_id(self, row_id: int, *, now: float, lease: float) -> Row | None:
        """Reserve one given row if nobody holds it (``beacons alerts test``)."""
        with self.backend.transaction() as tx:
            r = tx.execute(
                f"UPDATE outbox SET status = 'sending', next_attempt_at = ? WHERE id = ? AND status = 'pending' RETURNING {_COLUMNS}",
                [from_epoch(now + lease), row_id],
            ).one()
        return _row(r) if r else None

    def next_due(self, channel: str) -> float | None:
        r = self.backend.read(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE channel = ? AND status IN ('pending', 'sending')", [channel]
        ).scalar()
        return epoch(r)

    def mark_sent(self, row_id: int, *, now: float, http_status: int) -> None:
        with self.backend.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL, http_status = ?"
                " WHERE id = ? AND status = 'sending'",
                [from_epoch(now), http_status, row_id],
            )

    def mark_failed(self, row_id: int, error: str, *, retry_at: float | None, http_status: int | None = None) -> None:
        """Count a failed attempt: back to pending at ``retry_at``, or dead when it is None."""
        status = "dead" if retry_at is None else "pending"
        with self.backend.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?, http_status = ?, next_attempt_at = ?"
                " WHERE id = ? AND status = 'sending'",
                [status, error[:500], http_status, from_epoch(retry_at) if retry_at is not None else None, row_id],
            )

    def release(self, row_id: int, *, now: float) -> None:
        """Give a claimed row back without counting an attempt (shutdown during a send)."""
        with self.backend.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = ? WHERE id = ? AND status = 'sending'",
                [from_epoch(now), row_id],
            )

    def settle(self, row_id: int, status: str, *, parent_event_id: str | None = None, error: str | None = None) -> None:
        """Close a beacon row without a send: skipped (filters), grouped (incident), queued (digest) or dead."""
        with self.backend.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET status = ?, parent_event_id = ?, last_error = ?, next_attempt_at = NULL WHERE id = ?",
                [status, parent_event_id, error, row_id],
            )

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
            f"SELECT {_COLUMNS} FROM outbox"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY id DESC LIMIT ?"
        )
        return [_row(r) for r in self.backend.read(sql, [*args, max(1, limit)]).rows]

    def get(self, key: int | str) -> Row | None:
        column = "id" if isinstance(key, int) else "event_id"
        r = self.backend.read(f"SELECT {_COLUMNS} FROM outbox WHERE {column} = ?", [key]).one()
        return _row(r) if r else None

    def retry(
        self, *, ids: Iterable[int | str] = (), dead: bool = False, channel: str | None = None, now: float
    ) -> int:
        """Put rows (by id or event id, or every dead one) back to pending with a fresh attempt count."""
        changed = 0
        at = from_epoch(now)
        with self.backend.transaction() as tx:
            for key in ids:
                column = "id" if isinstance(key, int) else "event_id"
                changed += tx.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL"
                    f" WHERE {column} = ? AND status != 'sending'",
                    [at, key],
                ).rowcount
            if dead:
                sql = "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL WHERE status = 'dead'"
                args: list[Any] = [at]
                if channel:
                    sql += " AND channel = ?"
                    args.append(channel)
                changed += tx.execute(sql, args).rowcount
        return changed

    def counts(self) -> dict[str, dict[str, int]]:
        """{channel: {status: n}}: the alert backlog (pending + sending) and outcomes, e.g. for /metrics."""
        out: dict[str, dict[str, int]] = {}
        for channel, status, n in self.backend.read(
            "SELECT channel, status, COUNT(*) FROM outbox GROUP BY channel, status"
        ).rows:
            out.setdefault(channel, {})[status] = int(n)
        return out

    # -- beacons as alerts show them ----------------------------------------

    def beacon_view(self, beacon_id: int) -> BeaconView | None:
        listed = self.store.get_listed(beacon_id)
        if listed is None:
            return None
        b = listed.beacon
        mention = Mention(b.source, b.url, None, b.title, b.text, b.author, None, datetime.now(UTC), "{}")
        return BeaconView(b, mention.full_text, listed.match)

    def support_times(self, brand: str, product: str | None, *, since: float) -> list[float]:
        """When each support beacon for one brand/product was posted, since ``since`` (the spike rule's input)."""
        rows = self.backend.read(
            f"SELECT {_POSTED} FROM beacons b JOIN mentions m ON m.id = b.mention_id"
            f" WHERE b.queue = 'support' AND m.brand = ? AND COALESCE(m.product, '') = ? AND {_POSTED} >= ?",
            [brand, product or "", from_epoch(since)],
        ).rows
        return [epoch(r[0]) or 0.0 for r in rows]

    def support_ids(self, brand: str, product: str | None, *, since: float, limit: int = 50) -> list[int]:
        rows = self.backend.read(
            "SELECT b.id FROM beacons b JOIN mentions m ON m.id = b.mention_id"
            f" WHERE b.queue = 'support' AND m.brand = ? AND COALESCE(m.product, '') = ? AND {_POSTED} >= ?"
            " ORDER BY b.priority DESC, b.id DESC LIMIT ?",
            [brand, product or "", from_epoch(since), limit],
        ).rows
        return [int(r[0]) for r in rows]

    # -- incidents ---------------------------------------------------------

    def open_incident(self, channel: str, brand: str, product: str | None) -> dict[str, Any] | None:
        r = self.backend.read(
            "SELECT id, event_id, threshold, opened_at, grouped FROM alert_incidents"
            " WHERE channel = ? AND brand = ? AND COALESCE(product, '') = ? AND status = 'open'",
            [channel, brand, product or ""],
        ).one()
        return {"id": r[0], "event_id": r[1], "threshold": r[2], "opened_at": r[3], "grouped": r[4]} if r else None

    def open_incidents(self, channel: str) -> list[dict[str, Any]]:
        rows = self.backend.read(
            "SELECT id, event_id, threshold, opened_at, grouped, brand, product FROM alert_incidents"
            " WHERE channel = ? AND status = 'open'",
            [channel],
        ).rows
        keys = ("id", "event_id", "threshold", "opened_at", "grouped", "brand", "product")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def create_incident(
        self, channel: str, brand: str, product: str | None, *, threshold: float, payload: dict[str, Any], now: float
    ) -> str:
        """Open an incident and write its alert row in one transaction; returns its event id."""
        with self.backend.transaction() as tx:
            incident_id = int(
                tx.execute(
                    "INSERT INTO alert_incidents (channel, brand, product, threshold, opened_at, event_id)"
                    " VALUES (?, ?, ?, ?, ?, '') RETURNING id",
                    [channel, brand, product, threshold, from_epoch(now)],
                ).scalar()
            )
            event_id = f"incident-{incident_id}-{channel}"
            tx.execute("UPDATE alert_incidents SET event_id = ? WHERE id = ?", [event_id, incident_id])
            _add(tx, channel, event_id, "incident", {**payload, "incident_id": incident_id, "state": "open"}, now, None)
        return event_id

    def group_into(self, row_id: int, incident: dict[str, Any]) -> None:
        with self.backend.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET status = 'grouped', parent_event_id = ?, last_error = NULL, next_attempt_at = NULL WHERE id = ?",
                [incident["event_id"], row_id],
            )
            tx.execute("UPDATE alert_incidents SET grouped = grouped + 1 WHERE id = ?", [incident["id"]])

    def grouped_ids(self, event_id: str, limit: int = 50) -> list[int]:
        rows = self.backend.read(
            "SELECT beacon_id FROM outbox WHERE parent_event_id = ? ORDER BY id DESC LIMIT ?", [event_id, limit]
        ).rows
        return [int(r[0]) for r in rows if r[0] is not None]

    def close_incident(self, incident: dict[str, Any], channel: str, payload: dict[str, Any], *, now: float) -> str:
        event_id = f"{incident['event_id']}-ended"
        with self.backend.transaction() as tx:
            tx.execute(
                "UPDATE alert_incidents SET status = 'closed', closed_at = ? WHERE id = ? AND status = 'open'",
                [from_epoch(now), incident["id"]],
            )
            _add(tx, channel, event_id, "incident", {**payload, "state": "ended"}, now, None)
        return event_id

    # -- source health ----------------------------------------------------

    def sources(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.store.sources()}

    def health_states(self, channel: str) -> dict[str, dict[str, Any]]:
        rows = self.backend.read("SELECT * FROM alert_source_health WHERE channel = ?", [channel]).dicts()
        return {r["source_id"]: r for r in rows}

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
        with self.backend.transaction() as tx:
            tx.execute(
                "INSERT INTO alert_source_health (channel, source_id, state, reason, since, episode, reminders, last_alert_at, first_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (channel, source_id) DO UPDATE SET state = excluded.state, reason = excluded.reason,"
                " since = excluded.since, episode = excluded.episode, reminders = excluded.reminders,"
                " last_alert_at = excluded.last_alert_at",
                [
                    channel,
                    source_id,
                    state.get("state"),
                    state.get("reason"),
                    _time(state.get("since")),
                    state.get("episode"),
                    state.get("reminders"),
                    _time(state.get("last_alert_at")),
                    _time(state.get("first_seen")),
                ],
            )
            if event is not None:
                _add(tx, channel, event[0], "source_health", event[1], now, None)

    # -- digests -------------------------------------------------------------

    def last_digest_at(self, channel: str) -> float | None:
        return epoch(
            self.backend.read("SELECT last_digest_at FROM alert_channels WHERE channel = ?", [channel]).scalar()
        )

    def oldest_queued(self, channel: str) -> float | None:
        return epoch(
            self.backend.read(
                "SELECT MIN(created_at) FROM outbox WHERE channel = ? AND status = 'queued'", [channel]
            ).scalar()
        )

    def make_digest(self, channel: str, *, now: float, since: float | None) -> str | None:
        """Fold every queued beacon row of a channel into one digest row, atomically; its event id or None."""
        with self.backend.transaction() as tx:
            tx.lock(f"digest:{channel}")
            rows = tx.execute(
                "SELECT id, beacon_id FROM outbox WHERE channel = ? AND status = 'queued' ORDER BY id", [channel]
            ).rows
            tx.execute(
                "INSERT INTO alert_channels (channel, last_digest_at) VALUES (?, ?)"
                " ON CONFLICT (channel) DO UPDATE SET last_digest_at = excluded.last_digest_at",
                [channel, from_epoch(now)],
            )
            if not rows:
                return None
            event_id = f"digest-{rows[0][0]}-{rows[-1][0]}-{channel}"
            payload = {
                "beacon_ids": [r[1] for r in rows],
                "window_start": ts(since) if since else None,
                "window_end": ts(now),
            }
            _add(tx, channel, event_id, "digest", payload, now, None)
            tx.executemany(
                "UPDATE outbox SET status = 'digested', parent_event_id = ? WHERE id = ? AND status = 'queued'",
                [(event_id, r[0]) for r in rows],
            )
        return event_id
