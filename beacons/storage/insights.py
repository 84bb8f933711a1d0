"""The rows behind ``/insights`` and ``beacons report`` (issue 14): grouped reads over one date range.

Every read is a range scan on an index of migration ``0011_insights`` (SQLite) /
``0010_insights`` (PostgreSQL), grouped in SQL, never a scan of whole tables per chart:

- a post's time is ``COALESCE(published_at, fetched_at)`` (what the queue's ``since``/``until``
  filter means, so a chart's link to the queue lists the same posts), indexed with the columns
  the charts group by;
- a beacon's arrival (``created_at``) for the response figures and the backlog.

Times come back grouped by UTC hour (``2026-11-23T10``); ``beacons.insights`` folds the hours
into hours or days of the viewer's time zone. ``beacon_threads.words`` (the content words the
thread rule stored for each beacon when it was stored) gives the phrases of top problems
without reading any text back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beacons.storage.base import Backend

POST_AT = "COALESCE(m.published_at, m.fetched_at)"
OPEN = ("new", "claimed")


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

    def insight_posts(self, since: datetime, until: datetime, f: InsightFilter) -> list[tuple[Any, ...]]:
        """(hour, brand, product, source, queue, sentiment, posts): every stored post, queued or not.

        A post without a beacon (not classified yet) counts as queue ``none`` with no sentiment.
        """
        hour = hour_of(self.backend.name, POST_AT)
        cond, args = _filter(f)
        join = "JOIN" if f.team else "LEFT JOIN"  # a team filter only keeps posts with a beacon of that team
        return self.backend.read(
            f"SELECT {hour}, m.brand, m.product, m.source_id, COALESCE(b.queue, 'none'), b.sentiment, COUNT(*)"
            f" FROM mentions m {join} beacons b ON b.mention_id = m.id"
            f" WHERE {POST_AT} >= ? AND {POST_AT} < ?{cond}"
            " GROUP BY 1, 2, 3, 4, 5, 6",
            [since, until, *args],
        ).rows

    def insight_sentiment_totals(
        self, since: datetime, until: datetime, f: InsightFilter
    ) -> list[tuple[str | None, str | None, str, int]]:
        """(brand, product, sentiment, posts) of the classified posts (the previous period's side of the change)."""
        cond, args = _filter(f)
        rows = self.backend.read(
            "SELECT m.brand, m.product, b.sentiment, COUNT(*) FROM mentions m JOIN beacons b ON b.mention_id = m.id"
            f" WHERE {POST_AT} >= ? AND {POST_AT} < ?{cond} GROUP BY 1, 2, 3",
            [since, until, *args],
        ).rows
        return [(r[0], r[1], str(r[2]), int(r[3])) for r in rows]

    def insight_support(self, since: datetime, until: datetime, f: InsightFilter) -> list[tuple[dict[str, float], str]]:
        """(intents, content words) of each support beacon posted in the range."""
        cond, args = _filter(f)
        rows = self.backend.read(
            "SELECT b.intents_json, COALESCE(t.words, '') FROM mentions m JOIN beacons b ON b.mention_id = m.id"
            " LEFT JOIN beacon_threads t ON t.beacon_id = b.id"
            f" WHERE {POST_AT} >= ? AND {POST_AT} < ? AND b.queue = 'support'{cond}",
            [since, until, *args],
        ).rows
        return [(json.loads(r[0] or "{}"), str(r[1])) for r in rows]

    def insight_arrivals(self, since: datetime, until: datetime, f: InsightFilter) -> list[tuple[Any, ...]]:
        """(id, queue, team, created_at, status) of the queued beacons that arrived in the range."""
        cond, args = _filter(f)
        return self.backend.read(
            "SELECT b.id, b.queue, b.team, b.created_at, b.status FROM beacons b JOIN mentions m ON m.id = b.mention_id"
            f" WHERE b.created_at >= ? AND b.created_at < ? AND b.queue IN ('support', 'advocacy'){cond}"
            " ORDER BY b.id",
            [since, until, *args],
        ).rows

    def insight_events(self, since: datetime, until: datetime, f: InsightFilter) -> list[tuple[Any, ...]]:
        """(beacon id, action, at, assignee, to_status) of the queue history of those beacons, oldest first."""
        cond, args = _filter(f)
        return self.backend.read(
            "SELECT e.beacon_id, e.action, e.at, e.assignee, e.to_status FROM beacons b"
            " JOIN mentions m ON m.id = b.mention_id JOIN beacon_events e ON e.beacon_id = b.id"
            f" WHERE b.created_at >= ? AND b.created_at < ? AND b.queue IN ('support', 'advocacy'){cond}"
            " ORDER BY e.id",
            [since, until, *args],
        ).rows

    def insight_backlog(self, since: datetime, until: datetime, f: InsightFilter) -> list[tuple[str, str | None]]:
        """(arrived, closed or None) of every queued beacon that could have been open during the range.

        A beacon closed before ``since`` adds as much as it takes away on every day of the range, so it is left out.
        """
        cond, args = _filter(f)
        rows = self.backend.read(
            "SELECT b.created_at, CASE WHEN b.status IN ('new', 'claimed') THEN NULL ELSE"
            " (SELECT MAX(e.at) FROM beacon_events e WHERE e.beacon_id = b.id"
            " AND e.to_status IN ('resolved', 'dismissed')) END"
            " FROM beacons b JOIN mentions m ON m.id = b.mention_id"
            " WHERE b.created_at < ? AND b.queue IN ('support', 'advocacy')"
            f" AND (b.status IN ('new', 'claimed') OR b.updated_at >= ?){cond}",
            [until, since, *args],
        ).rows
        return [(str(r[0]), r[1]) for r in rows]

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
        return self.backend.read(
            "SELECT m.author, COUNT(*), MAX(COALESCE(m.author_reach, 0)), MAX(m.url)"
            " FROM mentions m JOIN beacons b ON b.mention_id = m.id"
            f" WHERE {POST_AT} >= ? AND {POST_AT} < ? AND b.queue = 'advocacy' AND m.author IS NOT NULL{cond}"
            " GROUP BY m.author ORDER BY 2 DESC, 3 DESC, 1 LIMIT ?",
            [since, until, *args, limit],
        ).rows

    def insight_source_ids(self) -> list[str]:
        return [str(r[0]) for r in self.backend.read("SELECT id FROM sources ORDER BY id").rows]
