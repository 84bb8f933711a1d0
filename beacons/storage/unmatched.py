"""Posts that named no brand, kept for ``retention.unmatched``, and what ``beacons rescan`` writes (issue 13 §4).

A poll stores its unmatched posts in ``unmatched`` (one row per post: its first
dedupe key is unique, so re-fetching adds nothing) in the poll's transaction.
``beacons rescan`` matches them again after brands, aliases or excludes change:
a post that matches now becomes a mention with its beacon and outbox rows, and
its unmatched row is deleted, in one transaction, so a second rescan adds
nothing. Rescan also re-classifies beacons nobody has worked: the update is one
guarded statement (``status = 'new'`` and no event by a person), so a beacon a
person claimed, resolved, re-routed, relabelled or noted in the meantime is
never changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beacons.models import Mention
from beacons.storage.base import Backend, Tx, chunks, marks, utcnow
from beacons.storage.mentions import ROUTED_COLUMNS, queue_alerts, routed_columns, store_items
from beacons.storage.types import Item, SaveResult, match_json, parse_time

RESCAN_ACTOR = "rescan"  # the history's actor and action of a rescan's update (not a person)

_MENTION_COLUMNS = (
    "source_id, url, guid, title, text, author, published_at, fetched_at, raw, author_reach, lang, rating"
)


def insert_unmatched(tx: Tx, posts: Sequence[tuple[str, Mention]], now: datetime) -> None:
    """Keep ``(key, mention)`` posts that named no brand; one already kept is left as it is (one statement per batch)."""
    tx.executemany(
        f"INSERT INTO unmatched (key, {_MENTION_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO NOTHING",
        [
            (
                key,
                m.source_id,
                m.url,
                m.guid,
                m.title,
                m.text,
                m.author,
                m.published_at,
                m.fetched_at,
                m.raw,
                m.author_reach,
                m.lang,
                m.rating,
                now,
            )
            for key, m in sorted(dict(posts).items())  # one order for every writer: no lock cycles on PostgreSQL
        ],
    )


def _mention(row: Sequence[Any]) -> Mention:
    fetched = parse_time(row[7])
    assert fetched is not None
    return Mention(
        row[0], row[1], row[2], row[3], row[4], row[5], parse_time(row[6]), fetched, row[8], row[9], row[10], row[11]
    )


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored post rescan looks at again: an unmatched row, or a beacon nobody has worked yet."""

    id: int  # unmatched.id, or beacons.id
    mention: Mention
    mention_id: int | None = None
    queue: str | None = None


def _filters(alias: str, since: datetime | None, source: str | None) -> tuple[str, list[Any]]:
    where, args = "", list[Any]()
    if since is not None:
        where += f" AND {alias}.fetched_at >= ?"
        args.append(since)
    if source is not None:
        where += f" AND {alias}.source_id = ?"
        args.append(source)
    return where, args


_UNWORKED = (
    "b.status = 'new' AND NOT EXISTS (SELECT 1 FROM beacon_events e WHERE e.beacon_id = b.id AND e.actor != ?)"
    " AND NOT EXISTS (SELECT 1 FROM feedback_labels f WHERE f.beacon_id = b.id)"
)


class UnmatchedMixin:
    backend: Backend

    def unmatched_count(self, *, since: datetime | None = None, source: str | None = None) -> int:
        where, args = _filters("u", since, source)
        return int(self.backend.read(f"SELECT COUNT(*) FROM unmatched u WHERE 1 = 1{where}", args).scalar())

    def unmatched_page(
        self, after: int, limit: int, *, since: datetime | None = None, source: str | None = None
    ) -> list[Stored]:
        """Kept unmatched posts with an id above ``after``, oldest first."""
        where, args = _filters("u", since, source)
        rows = self.backend.read(
            f"SELECT u.id, {', '.join('u.' + c.strip() for c in _MENTION_COLUMNS.split(','))} FROM unmatched u"
            f" WHERE u.id > ?{where} ORDER BY u.id LIMIT ?",
            [after, *args, limit],
        ).rows
        return [Stored(int(r[0]), _mention(r[1:])) for r in rows]

    def prune_unmatched(self, before: datetime) -> int:
        """Forget kept unmatched posts fetched before ``before`` (``retention.unmatched`` ago); returns how many."""
        with self.backend.transaction() as tx:
            return int(tx.execute("DELETE FROM unmatched WHERE fetched_at < ?", [before]).rowcount)

    def adopt_unmatched(
        self, done: Sequence[int], items: Sequence[Item], *, channels: Sequence[str] = (), now: datetime | None = None
    ) -> SaveResult:
        """Store the posts that match now (mention, beacon, outbox rows) and forget the ``done`` unmatched rows, atomically."""
        now = now or utcnow()
        with self.backend.transaction() as tx:
            # a post a poll stored since (its brand added before the rescan ran) counts as a duplicate
            new, dup, beacon_ids, queued = store_items(tx, items, channels, now)
            for chunk in chunks(list(done)):
                tx.execute(f"DELETE FROM unmatched WHERE id IN ({marks(len(chunk))})", list(chunk))
        return SaveResult(new, dup, tuple(beacon_ids), queued)

    def unworked_count(self, *, since: datetime | None = None, source: str | None = None) -> int:
        where, args = _filters("m", since, source)
        return int(
            self.backend.read(
                f"SELECT COUNT(*) FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE {_UNWORKED}{where}",
                [RESCAN_ACTOR, *args],
            ).scalar()
        )

    def unworked_page(
        self, after: int, limit: int, *, since: datetime | None = None, source: str | None = None
    ) -> list[Stored]:
        """Beacons nobody has worked (status new, no event by a person) with an id above ``after``."""
        where, args = _filters("m", since, source)
        rows = self.backend.read(
            f"SELECT b.id, b.mention_id, b.queue, {', '.join('m.' + c.strip() for c in _MENTION_COLUMNS.split(','))}"
            f" FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.id > ? AND {_UNWORKED}{where}"
            " ORDER BY b.id LIMIT ?",
            [after, RESCAN_ACTOR, *args, limit],
        ).rows
        return [Stored(int(r[0]), _mention(r[3:]), int(r[1]), r[2]) for r in rows]

    def update_rescanned(
        self, beacon_id: int, item: Item, *, channels: Sequence[str] = (), now: datetime | None = None
    ) -> bool:
        """Give an unworked beacon its new match, classification and route; False if a person worked it meanwhile.

        One guarded transaction: the UPDATE holds only while the beacon is new with no event by a person.
        A beacon that moves out of the ``none`` queue gets its alerts (outbox rows keyed by beacon and
        channel, so a second rescan sends nothing again). Unchanged beacons are left alone.
        """
        c, r, match = item.classification, item.route, item.match
        assert c is not None and r is not None and match is not None
        now = now or utcnow()
        with self.backend.transaction() as tx:
            row = tx.execute(
                "SELECT b.queue, b.priority, b.sentiment, b.team, b.reason, b.scores_json, b.intents_json, m.brand,"
                f" m.product, b.mention_id FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.id = ? AND {_UNWORKED}",
                [beacon_id, RESCAN_ACTOR],
            ).one()
            if row is None:
                return False
            before = (
                row[0],
                int(row[1]),
                row[2],
                row[3],
                row[4],
                json.loads(row[5] or "{}"),
                json.loads(row[6] or "{}"),
            )
            after = (r.queue, r.priority, c.sentiment, r.team, r.reason, c.scores, c.intents)
            if before == after and (row[7], row[8]) == (match.brand, match.product):
                return False
            assigned = ", ".join(f"{col.strip()} = ?" for col in ROUTED_COLUMNS.split(","))
            changed = tx.execute(
                f"UPDATE beacons AS b SET {assigned}, updated_at = ? WHERE b.id = ? AND {_UNWORKED}",
                [*routed_columns(c, r), now, beacon_id, RESCAN_ACTOR],
            ).rowcount
            if changed != 1:
                return False
            tx.execute(
                "UPDATE mentions SET brand = ?, product = ?, match_json = ? WHERE id = ?",
                [match.brand, match.product, json.dumps(match_json(match)), row[9]],
            )
            tx.execute(
                "INSERT INTO beacon_events (beacon_id, at, actor, action, from_status, to_status, from_queue, to_queue,"
                " assignee, detail) VALUES (?, ?, ?, ?, 'new', 'new', ?, ?, NULL, ?)",
                [beacon_id, now, RESCAN_ACTOR, RESCAN_ACTOR, row[0], r.queue, f"re-classified: {r.reason}"[:500]],
            )
            if r.queue != "none" and row[0] == "none":
                queue_alerts(tx, beacon_id, channels, now)
        return True
