"""Mentions, their identity keys, their beacons and the outbox rows a poll writes, in one transaction.

Every mention has up to three identity keys (``beacons.dedupe``) in
``mention_keys`` under a unique key. A mention is inserted inside a savepoint
and its keys with ``ON CONFLICT DO NOTHING``: when any key is already taken
(by an earlier poll, or by another worker's transaction that committed first:
PostgreSQL makes the second insert wait on the unique index) the savepoint is
rolled back and the mention counts as a duplicate. No check-then-insert.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from beacons.models import Classification, Match, Mention, Route, SourceState
from beacons.storage.base import Backend, Tx, chunks, marks, utcnow
from beacons.storage.types import Item, SaveResult, match_from_json, match_json, parse_time

_OUTBOX_ROW = (
    "INSERT INTO outbox (event_id, channel, beacon_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (event_id) DO NOTHING"
)


class MentionsMixin:
    backend: Backend

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        unique = list(dict.fromkeys(keys))
        found: set[str] = set()
        for chunk in chunks(unique):
            rows = self.backend.read(f"SELECT key FROM mention_keys WHERE key IN ({marks(len(chunk))})", chunk).rows
            found.update(r[0] for r in rows)
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
        now: datetime | None = None,
        unmatched: Sequence[tuple[str, Mention]] = (),
    ) -> SaveResult:
        """Store a poll's new mentions with their beacons and outbox rows, and the source's state, atomically.

        ``unmatched``: ``(key, mention)`` posts that named no brand, kept for ``beacons rescan`` (issue 13 §4).
        """
        now = now or utcnow()
        with self.backend.transaction() as tx:
            new, dup, beacon_ids, queued = store_items(tx, items, channels, now)
            if unmatched:
                from beacons.storage.unmatched import insert_unmatched

                insert_unmatched(tx, unmatched, now)
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
                sets += ["etag = ?", "last_modified = ?", "cursor = ?", "quota = ?"]
                args += [state.etag, state.last_modified, state.cursor, state.quota]
            tx.execute(f"UPDATE sources SET {', '.join(sets)} WHERE id = ?", [*args, source_id])
        return SaveResult(new, dup, tuple(beacon_ids), queued)

    def unclassified(self, limit: int = 100) -> list[tuple[int, Mention, Match | None]]:
        """Mentions stored without a classification (the classifier failed); retried later."""
        rows = self.backend.read(
            "SELECT id, source_id, url, guid, title, text, author, published_at, fetched_at, raw, author_reach, lang, match_json,"
            " rating"
            " FROM mentions WHERE classify_status IN ('error', 'pending') AND brand IS NOT NULL ORDER BY id LIMIT ?",
            [limit],
        ).rows
        out = []
        for row in rows:
            fetched = parse_time(row[8])
            assert fetched is not None
            mention = Mention(
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                parse_time(row[7]),
                fetched,
                row[9],
                row[10],
                row[11],
                rating=row[13],
            )
            out.append((int(row[0]), mention, match_from_json(row[12])))
        return out

    def save_classification(
        self, mention_id: int, item: Item, *, channels: Sequence[str] = (), now: datetime | None = None
    ) -> int:
        """Give a stored mention its beacon (and outbox rows); one transaction, at most one beacon per mention."""
        now = now or utcnow()
        with self.backend.transaction() as tx:
            changed = tx.execute(
                "UPDATE mentions SET classify_status = 'ok', classify_error = NULL WHERE id = ? AND classify_status != 'ok'",
                [mention_id],
            ).rowcount
            if changed != 1:  # another worker classified it first
                row = tx.execute("SELECT id FROM beacons WHERE mention_id = ?", [mention_id]).one()
                return int(row[0]) if row else 0
            beacon_id = _insert_beacon(tx, mention_id, item, now)
            if item.route is not None and item.route.queue != "none":
                queue_alerts(tx, beacon_id, channels, now)
        return beacon_id

    def mention_count(self) -> int:
        return int(self.backend.read("SELECT COUNT(*) FROM mentions").scalar())


def _insert_mention(tx: Tx, item: Item, now: datetime) -> int | None:
    m = item.mention
    status = "ok" if item.classification is not None else ("error" if item.classify_error else "pending")
    with tx.savepoint() as sp:
        mention_id = int(
            tx.execute(
                "INSERT INTO mentions (source_id, url, guid, title, text, author, author_reach, published_at, fetched_at,"
                " lang, brand, product, match_json, raw, classify_status, classify_error, created_at, rating)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [
                    m.source_id,
                    m.url,
                    m.guid,
                    m.title,
                    m.text,
                    m.author,
                    m.author_reach,
                    m.published_at,
                    m.fetched_at,
                    (item.classification.lang if item.classification else None) or m.lang,
                    item.match.brand if item.match else None,
                    item.match.product if item.match else None,
                    json.dumps(match_json(item.match)) if item.match else None,
                    m.raw,
                    status,
                    item.classify_error,
                    now,
                    m.rating,
                ],
            ).scalar()
        )
        keys = list(dict.fromkeys(item.keys))
        taken = 0
        if keys:
            taken = tx.execute(
                f"INSERT INTO mention_keys (key, mention_id) VALUES {', '.join(['(?, ?)'] * len(keys))}"
                " ON CONFLICT (key) DO NOTHING",
                [v for key in keys for v in (key, mention_id)],
            ).rowcount
        if taken < len(keys):  # one of its keys belongs to a stored mention: the same post again
            sp.rollback()
            return None
    return mention_id


def store_items(
    tx: Tx, items: Sequence[Item], channels: Sequence[str], now: datetime
) -> tuple[int, int, list[int], dict[str, int]]:
    """Insert each item's mention, its beacon and the beacon's outbox rows; (new, duplicates, beacon ids, per queue)."""
    new = dup = 0
    beacon_ids: list[int] = []
    queued: dict[str, int] = {}
    for item in items:
        mention_id = _insert_mention(tx, item, now)
        if mention_id is None:  # one of its keys is a stored mention's: the same post again
            dup += 1
            continue
        new += 1
        if item.classification is not None and item.route is not None:
            beacon_id = _insert_beacon(tx, mention_id, item, now)
            beacon_ids.append(beacon_id)
            queued[item.route.queue] = queued.get(item.route.queue, 0) + 1
            if item.route.queue != "none":
                queue_alerts(tx, beacon_id, channels, now)
    return new, dup, beacon_ids, queued


def queue_alerts(tx: Tx, beacon_id: int, channels: Sequence[str], now: datetime) -> None:
    """The beacon's first alert on each channel: one outbox row per channel, keyed so a second call adds nothing."""
    tx.executemany(_OUTBOX_ROW, [(f"beacon-{beacon_id}-{ch}", ch, beacon_id, now, now) for ch in channels])


def routed_columns(c: Classification, r: Route) -> list[Any]:
    """A beacon's routing and classification columns, in the order ``ROUTED_COLUMNS`` names them."""
    return [
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
        json.dumps(c.evidence.to_json()) if c.evidence else None,
    ]


ROUTED_COLUMNS = (
    "queue, priority, is_beacon, sentiment, sentiment_score, relevance, scores_json, intents_json, model, reason,"
    " team, evidence_json"
)


def _insert_beacon(tx: Tx, mention_id: int, item: Item, now: datetime) -> int:
    c, r = item.classification, item.route
    assert c is not None and r is not None
    return int(
        tx.execute(
            f"INSERT INTO beacons (mention_id, status, created_at, updated_at, {ROUTED_COLUMNS})"
            " VALUES (?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [mention_id, now, now, *routed_columns(c, r)],
        ).scalar()
    )
