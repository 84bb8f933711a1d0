"""The rows behind ``/insights`` and ``beacons report`` (issue 14): grouped reads over one date range.

No chart scans the posts. Migration ``0014_insights`` (SQLite) / ``0013_insights`` (PostgreSQL) adds:

- ``insight_posts``, a rollup: posts per UTC hour of their time (published, else fetched), brand,
  product, source, and their beacon's team, queue and sentiment; triggers on ``mentions`` and
  ``beacons`` keep it current whoever writes (a poll, a classification retry, a re-route, a relabel,
  ``beacons rescan``, ``db copy``, retention), and the charts of posts read whole hours from it,
  with only the part-hours at the ends of a range counted from the posts;
- indexes for the beacon figures, which count beacons by arrival (``created_at``): arrivals per
  queue, closes (``beacon_events`` by status and time), incidents and health alerts.

On PostgreSQL several workers write at once, and triggers that added to shared rollup rows made two
transactions lock the same rows in opposite orders (a deadlock). There the triggers only append
+1/-1 rows to ``insight_deltas`` (migration ``0014_insight_deltas``); every read adds the deltas to
the rollup in the same statement (one snapshot), and ``insight_compact`` folds them into the rollup,
one compaction at a time: the daemon's periodic maintenance runs it, and ``beacons.insights`` before
a read when many have piled up. SQLite has one writer; its triggers update the rollup directly and
``insight_compact`` has nothing to do.

Times come back grouped by UTC hour (``2026-11-23T10``); ``beacons.insights`` folds the hours
into hours or days of the viewer's time zone. ``beacon_threads.words`` (the content words the
thread rule stored for each beacon) gives the phrases of top problems without reading text back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from beacons.storage.base import Backend

POST_AT = "COALESCE(m.published_at, m.fetched_at)"
POST_KEYS = ("hour", "brand", "product", "source", "queue", "sentiment", "queued")
_ROLLUP = {
    "hour": "hour",
    "team": "team",
    "brand": "brand",
    "product": "product",
    "source": "source_id",
    "queue": "queue",
    "sentiment": "sentiment",
    "queued": "CASE WHEN queue = 'none' THEN 0 ELSE 1 END",
}
_RAW = {
    "team": "COALESCE(b.team, '')",
    "brand": "m.brand",
    "product": "m.product",
    "source": "m.source_id",
    "queue": "COALESCE(b.queue, 'none')",
    "sentiment": "b.sentiment",
    "queued": "CASE WHEN COALESCE(b.queue, 'none') = 'none' THEN 0 ELSE 1 END",
}
OPEN = ("new", "claimed")
SPLIT = "hour, brand, product, source_id, team, queue, sentiment"  # the rollup's key
COMPACT_LOCK = "beacons.insight_compact"


@dataclass(frozen=True, slots=True)
class InsightFilter:
    """Which posts the figures cover; ``None`` is every value. Compared without case, as the queue does."""

    brand: str | None = None
    product: str | None = None
    team: str | None = None
    source: str | None = None


def hour_of(dialect: str, column: str) -> str:
    """The UTC hour of a stored time as ``YYYY-MM-DDTHH`` text on both backends."""
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"
    return f"substr({column}, 1, 13)"  # the stored text form is fixed-width UTC (base.iso)


def epoch_of(dialect: str, column: str) -> str:
    """A stored time as seconds since the epoch (a float): no text to parse in Python, row by row."""
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    return f"((julianday({column}) - 2440587.5) * 86400.0)"  # SQLite 3.39 has no unixepoch(..., 'subsec')


def _hour_key(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H")


def _ceil_hour(value: datetime) -> datetime:
    floor = value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == value else floor + timedelta(hours=1)


def _rollup_filter(f: InsightFilter) -> tuple[str, list[Any]]:
    where, args = [], []
    for column, value in (("brand", f.brand), ("product", f.product), ("team", f.team)):
        if value:
            where.append(f" AND lower({column}) = lower(?)")
            args.append(value)
    if f.source:
        where.append(" AND source_id = ?")
        args.append(f.source)
    return "".join(where), args


def _mentions(f: InsightFilter) -> str:
    """The join to a beacon's post, only when a filter needs the post's brand, product or source."""
    return " JOIN mentions m ON m.id = b.mention_id" if f.brand or f.product or f.source else ""


def _filter(f: InsightFilter) -> tuple[str, list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("m.brand", f.brand), ("m.product", f.product), ("b.team", f.team)):
        if value:
            where.append(f"lower({column}) = lower(?)")
            args.append(value)
    if f.source:
        where.append("m.source_id = ?")
        args.append(f.source)
    return "".join(f" AND {w}" for w in where), args


class InsightsMixin:
    backend: Backend

    def insight_posts(
        self, since: datetime, until: datetime, f: InsightFilter, keys: tuple[str, ...]
    ) -> list[tuple[Any, ...]]:
        """Posts grouped by ``keys`` (of ``POST_KEYS``), the count last: every stored post, queued or not.

        Whole hours come from the ``insight_posts`` rollup; the part-hours at either end of the range
        from the posts themselves, so a range that starts at 12:34 counts exactly what it covers.
        A post without a beacon (not classified yet) counts as queue ``none`` with no sentiment (None).
        """
        first = _ceil_hour(since)
        last = until.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if first >= last:
            return self._raw_posts(since, until, f, keys)
        rows = self._rollup(first, last, f, keys)
        if since < first:
            rows += self._raw_posts(since, first, f, keys)
        if last < until:
            rows += self._raw_posts(last, until, f, keys)
        return rows

    def insight_post_rows(self, since: datetime, until: datetime, f: InsightFilter) -> list[tuple[Any, ...]]:
        """(hour, brand, product, source, team, queue, sentiment, posts): the rollup's rows as stored, no grouping.

        Every chart of posts is folded from these in one pass (``beacons.insights``): reading a range of
        rows in key order costs less than grouping them once per chart. '' stands for a missing value.
        """
        first = _ceil_hour(since)
        last = until.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        keys = ("hour", "brand", "product", "source", "team", "queue", "sentiment")
        if first >= last:
            return self._raw_posts(since, until, f, keys)
        table, args = self._stored_posts(first, last, f)
        rows = self.backend.read(f"SELECT {SPLIT}, posts FROM {table} WHERE posts != 0", args).rows
        if since < first:
            rows += self._raw_posts(since, first, f, keys)
        if last < until:
            rows += self._raw_posts(last, until, f, keys)
        return rows

    def insight_intents(self, since: datetime, until: datetime, f: InsightFilter) -> dict[str, int]:
        """Support beacons that arrived in the range, per intent scored at least 0.5 (as the queue's filter counts)."""
        cond, args = _filter(f)
        if self.backend.name == "postgresql":
            each, score = " CROSS JOIN LATERAL jsonb_each_text(b.intents_json::jsonb) j", "j.value::float8"
        else:
            each, score = ", json_each(b.intents_json) j", "CAST(j.value AS REAL)"
        rows = self.backend.read(
            f"SELECT j.key, COUNT(*) FROM beacons b{_mentions(f)}{each}"
            f" WHERE b.queue = 'support' AND b.created_at >= ? AND b.created_at < ?{cond} AND {score} >= 0.5"
            " GROUP BY j.key",
            [since, until, *args],
        ).rows
        return {str(r[0]): int(r[1]) for r in rows}

    def insight_words(self, since: datetime, until: datetime, f: InsightFilter) -> list[str]:
        """The content words (space-separated) of each support beacon that arrived in the range."""
        cond, args = _filter(f)
        rows = self.backend.read(
            f"SELECT COALESCE(t.words, '') FROM beacons b{_mentions(f)} LEFT JOIN beacon_threads t ON t.beacon_id = b.id"
            f" WHERE b.queue = 'support' AND b.created_at >= ? AND b.created_at < ?{cond}",
            [since, until, *args],
        ).rows
        return [str(r[0]) for r in rows]

    def _rollup(
        self, first: datetime, last: datetime, f: InsightFilter, keys: tuple[str, ...]
    ) -> list[tuple[Any, ...]]:
        table, args = self._stored_posts(first, last, f)
        columns = ", ".join(_ROLLUP[k] for k in keys)
        rows = self.backend.read(
            f"SELECT {columns}, SUM(posts) FROM {table} GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}",
            args,
        ).rows
        # The rollup spells a missing brand, product or sentiment as ''.
        return [(*tuple(v if v != "" else None for v in r[:-1]), int(r[-1])) for r in rows if int(r[-1])]

    def _stored_posts(self, first: datetime, last: datetime, f: InsightFilter) -> tuple[str, list[Any]]:
        """A table expression of the rollup's rows for the whole hours ``[first, last)`` that pass the filter.

        On PostgreSQL each row's posts include its pending deltas, and a split found only in the deltas
        is a row too: one statement, so a compaction that commits meanwhile is seen whole or not at all.
        Only the hours that have deltas (the last minutes' posts, mostly) pay for matching them to the
        rollup's rows; the other hours are read as stored.
        """
        where, args = _rollup_filter(f)
        span = [_hour_key(first), _hour_key(last)]
        rollup = f"SELECT {SPLIT}, posts FROM insight_posts WHERE hour >= ? AND hour < ?{where}"
        if self.backend.name != "postgresql":
            return f"({rollup}) p", [*span, *args]
        touched = "SELECT hour FROM insight_deltas WHERE hour >= ? AND hour < ?"
        return (
            f"({rollup} AND hour NOT IN ({touched})"
            f" UNION ALL SELECT {SPLIT}, COALESCE(r.posts, 0) + COALESCE(d.posts, 0) FROM"
            f" (SELECT {SPLIT}, posts FROM insight_posts WHERE hour IN ({touched}){where}) r"
            f" FULL JOIN (SELECT {SPLIT}, SUM(posts)::bigint AS posts FROM insight_deltas"
            f" WHERE hour >= ? AND hour < ?{where} GROUP BY {SPLIT}) d USING ({SPLIT})) p",
            [*span, *args, *span, *span, *args, *span, *args],
        )

    def insight_compact(self, min_deltas: int = 0) -> int:
        """Fold the pending deltas into the rollup (PostgreSQL); returns how many were folded.

        Does nothing when fewer than ``min_deltas`` are pending, or while another worker compacts
        (a transaction-scoped advisory lock, tried, never waited for). The deltas are deleted and
        added to the rollup in one statement, in key order: the only writer of ``insight_posts``.
        SQLite keeps its rollup current in its triggers and returns 0.
        """
        if self.backend.name != "postgresql":
            return 0
        if min_deltas > 0:
            pending = self.backend.read(
                "SELECT COUNT(*) FROM (SELECT 1 FROM insight_deltas LIMIT ?) s", [min_deltas]
            ).scalar()
            if int(pending or 0) < min_deltas:
                return 0
        with self.backend.transaction() as tx:
            if not tx.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(?, 0))", [COMPACT_LOCK]).scalar():
                return 0
            folded = tx.execute(
                f"WITH d AS (DELETE FROM insight_deltas RETURNING {SPLIT}, posts),"
                f" up AS (INSERT INTO insight_posts ({SPLIT}, posts)"
                f" SELECT {SPLIT}, SUM(posts) FROM d GROUP BY {SPLIT} HAVING SUM(posts) != 0 ORDER BY {SPLIT}"
                " ON CONFLICT (hour, brand, product, source_id, team, queue, sentiment)"
                " DO UPDATE SET posts = insight_posts.posts + EXCLUDED.posts RETURNING 1)"
                " SELECT (SELECT COUNT(*) FROM d), (SELECT COUNT(*) FROM up)"
            ).one()
        return int(folded[0]) if folded else 0

    def _raw_posts(
        self, since: datetime, until: datetime, f: InsightFilter, keys: tuple[str, ...]
    ) -> list[tuple[Any, ...]]:
        raw = {**_RAW, "hour": hour_of(self.backend.name, POST_AT)}
        cond, args = _filter(f)
        join = "JOIN" if f.team else "LEFT JOIN"  # a team filter only keeps posts with a beacon of that team
        rows = self.backend.read(
            f"SELECT {', '.join(raw[k] for k in keys)}, COUNT(*) FROM mentions m {join} beacons b ON b.mention_id = m.id"
            f" WHERE {POST_AT} >= ? AND {POST_AT} < ?{cond} GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}",
            [since, until, *args],
        ).rows
        return [(*tuple(r[:-1]), int(r[-1])) for r in rows]

    def insight_arrivals(self, since: datetime, until: datetime, f: InsightFilter) -> list[tuple[Any, ...]]:
        """(id, queue, team, arrived as epoch seconds, status) of the queued beacons that arrived in the range."""
        cond, args = _filter(f)
        return self.backend.read(
            f"SELECT b.id, b.queue, b.team, {epoch_of(self.backend.name, 'b.created_at')}, b.status"
            f" FROM beacons b{_mentions(f)}"
            f" WHERE b.queue IN ('support', 'advocacy') AND b.created_at >= ? AND b.created_at < ?{cond}"
            " ORDER BY b.id",
            [since, until, *args],
        ).rows

    def insight_events(self, since: datetime, until: datetime, f: InsightFilter) -> list[tuple[Any, ...]]:
        """(beacon id, action, at as epoch seconds, assignee, to_status) of those beacons' history, oldest first."""
        cond, args = _filter(f)
        return self.backend.read(
            f"SELECT e.beacon_id, e.action, {epoch_of(self.backend.name, 'e.at')}, e.assignee, e.to_status"
            f" FROM beacons b{_mentions(f)}"
            " JOIN beacon_events e ON e.beacon_id = b.id"
            f" WHERE b.queue IN ('support', 'advocacy') AND b.created_at >= ? AND b.created_at < ?{cond}"
            " ORDER BY e.id",
            [since, until, *args],
        ).rows

    def insight_backlog(
        self, since: datetime, until: datetime, f: InsightFilter
    ) -> tuple[int, list[tuple[float, float]]]:
        """What the backlog is counted from, without listing the open beacons.

        (open beacons that arrived before ``until``, [(arrived, closed)] in epoch seconds of the beacons closed
        now whose last close, a resolve or a dismiss, is at or after ``since``). ``beacons.insights`` adds the arrivals of the
        range; a beacon closed before ``since`` adds as much as it takes away on every day, so it is left out.
        """
        cond, args = _filter(f)
        open_now = self.backend.read(
            f"SELECT COUNT(*) FROM beacons b{_mentions(f)}"
            " WHERE b.queue IN ('support', 'advocacy') AND b.status IN ('new', 'claimed')"
            f" AND b.created_at < ?{cond}",
            [until, *args],
        ).scalar()
        closed = self.backend.read(
            f"SELECT {epoch_of(self.backend.name, 'b.created_at')}, {epoch_of(self.backend.name, 'MAX(e.at)')}"
            " FROM beacon_events e JOIN beacons b ON b.id = e.beacon_id"
            f"{_mentions(f)}"
            " WHERE e.to_status IN ('resolved', 'dismissed') AND e.at >= ?"
            " AND b.status IN ('resolved', 'dismissed') AND b.queue IN ('support', 'advocacy')"
            f" AND b.created_at < ?{cond} GROUP BY b.id, b.created_at",
            [since, until, *args],
        ).rows
        return int(open_now or 0), [(float(r[0]), float(r[1])) for r in closed]

    def insight_incidents(self, since: datetime, until: datetime, f: InsightFilter) -> list[dict[str, Any]]:
        """Spike incidents open at any time in the range, with the ids of their beacons."""
        where, args = [], []
        for column, value in (("i.brand", f.brand), ("i.product", f.product)):
            if value:
                where.append(f" AND lower({column}) = lower(?)")
                args.append(value)
        rows = self.backend.read(
            "SELECT i.id, i.channel, i.brand, i.product, i.status, i.threshold, i.opened_at, i.closed_at, i.event_id,"
            " i.grouped, o.payload_json FROM alert_incidents i LEFT JOIN outbox o ON o.event_id = i.event_id"
            f" WHERE i.opened_at < ? AND (i.closed_at IS NULL OR i.closed_at >= ?){''.join(where)}"
            " ORDER BY i.opened_at, i.id",
            [until, since, *args],
        ).rows
        out = []
        for r in rows:
            payload = json.loads(r[10] or "{}")
            grouped = self.backend.read(
                "SELECT beacon_id FROM outbox WHERE parent_event_id = ? AND beacon_id IS NOT NULL", [r[8]]
            ).rows
            ids = sorted({int(i) for i in payload.get("beacon_ids", [])} | {int(g[0]) for g in grouped})
            out.append(
                {
                    "id": int(r[0]),
                    "channel": r[1],
                    "brand": r[2],
                    "product": r[3],
                    "status": r[4],
                    "threshold": float(r[5]),
                    "opened_at": r[6],
                    "closed_at": r[7],
                    "beacon_ids": ids,
                }
            )
        return out

    def insight_outages(self, until: datetime) -> list[dict[str, Any]]:
        """The source-health alerts written before ``until`` (failing, still failing, recovered), oldest first."""
        rows = self.backend.read(
            "SELECT payload_json, created_at FROM outbox WHERE kind = 'source_health' AND created_at < ?"
            " ORDER BY id DESC LIMIT 2000",
            [until],
        ).rows
        return [{**json.loads(r[0] or "{}"), "at": r[1]} for r in reversed(rows)]

    def insight_advocates(
        self, since: datetime, until: datetime, f: InsightFilter, limit: int = 10
    ) -> list[tuple[Any, ...]]:
        """(author, advocacy posts, largest reach, one of their posts' URLs) of the most frequent advocates."""
        cond, args = _filter(f)
        join = " JOIN mentions m ON m.id = b.mention_id"
        if self.backend.name == "postgresql":
            # Each beacon's post by its key: PostgreSQL otherwise hashes the beacons against a parallel scan
            # of every post (200,000 to find 4,000: 90 ms and three processes' CPU instead of 25 ms in one).
            # LIMIT 1 (the key is unique) keeps the subquery from being flattened back into that join.
            join = (
                " CROSS JOIN LATERAL (SELECT brand, product, source_id, author, author_reach, url FROM mentions"
                " WHERE id = b.mention_id LIMIT 1) m"
            )
        return self.backend.read(
            "SELECT m.author, COUNT(*), MAX(COALESCE(m.author_reach, 0)), MAX(m.url)"
            f" FROM beacons b{join}"
            f" WHERE b.queue = 'advocacy' AND b.created_at >= ? AND b.created_at < ? AND m.author IS NOT NULL{cond}"
            " GROUP BY m.author ORDER BY 2 DESC, 3 DESC, 1 LIMIT ?",
            [since, until, *args, limit],
        ).rows

    def insight_source_ids(self) -> list[str]:
        return [str(r[0]) for r in self.backend.read("SELECT id FROM sources ORDER BY id").rows]
