"""Reading beacons: the one list query (CLI, API and page), one beacon, its notes, history and thread.

Paging is a keyset on ``(priority, id)``, both descending: the cursor is the
last row's pair and the next page starts strictly below it, so a row whose
priority does not change is listed exactly once however many rows arrive or
are closed between pages.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from beacons.errors import InvalidInput
from beacons.models import QUEUES, Beacon
from beacons.storage.base import Backend, marks
from beacons.storage.search import breach_expression, intent_condition, search_condition
from beacons.storage.types import ListedBeacon, QueueFilter, match_from_json

BEACON_SELECT = (
    "SELECT b.id, b.queue, b.status, b.priority, m.brand, m.product, m.title, m.text, m.url, m.source_id, m.author,"
    " m.published_at, b.sentiment, b.is_beacon, b.sentiment_score, b.scores_json, b.reason, b.team, b.assignee,"
    " b.created_at, b.updated_at, m.fetched_at, m.author_reach, b.evidence_json, b.intents_json, m.rating"
    " FROM beacons b JOIN mentions m ON m.id = b.mention_id"
)
MAX_PAGE = 1000


def beacon_from_row(row: Sequence[Any]) -> Beacon:
    return Beacon(
        id=int(row[0]),
        queue=row[1],
        status=row[2],
        priority=int(row[3]),
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
        sentiment_score=float(row[14]),
        scores=json.loads(row[15] or "{}"),
        reason=row[16] or "",
        team=row[17],
        assignee=row[18],
        created_at=row[19],
        updated_at=row[20],
        fetched_at=row[21],
        author_reach=row[22],
        evidence=json.loads(row[23]) if len(row) > 23 and row[23] else None,
        intents=json.loads(row[24]) if len(row) > 24 and row[24] else {},
        rating=row[25] if len(row) > 25 else None,
    )


def encode_cursor(priority_value: int, beacon_id: int, *, breached: int | None = None, now_us: int = 0) -> str:
    """``priority:id``; with the SLA order, ``breached:priority:id:now`` (the first page's time, in microseconds)."""
    text = f"{priority_value}:{beacon_id}" if breached is None else f"{breached}:{priority_value}:{beacon_id}:{now_us}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[int, ...]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        values = tuple(int(v) for v in text.split(":"))
        if len(values) not in (2, 4) or not all(abs(v) < 2**63 for v in values):  # 64-bit INTEGER (issue 10)
            raise ValueError(text)
        if len(values) == 4 and (values[0] not in (0, 1) or not 0 <= values[3] < 253_402_300_800_000_000):
            raise ValueError(text)  # a flag, and a time between 1970 and 9999
        return values
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor", "is not a cursor this server gave out") from exc


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(priority, id) of either cursor form."""
    values = _decode(cursor)
    return (values[0], values[1]) if len(values) == 2 else (values[1], values[2])


def _where(
    f: QueueFilter, b: str = "b", m: str = "m", *, dialect: str = "sqlite", members: bool = True
) -> tuple[list[str], list[Any]]:
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
            where.append(f"lower({column}) = lower(?)")
            args.append(value)
    for sql, values in _inbox_where(f, b, m, dialect=dialect, members=members):
        where.append(sql)
        args += values
    return where, args


def _inbox_where(f: QueueFilter, b: str, m: str, *, dialect: str, members: bool) -> list[tuple[str, list[Any]]]:
    """The inbox's filters (issue 13 §2): search, assignee, sentiment, intent, and with ``members`` source and dates."""
    out: list[tuple[str, list[Any]]] = []
    if f.q:
        out.append(search_condition(dialect, b, f.q))
    if f.assignee:
        out.append((f"{b}.assignee = ?", [f.assignee]))
    if f.unassigned:
        out.append((f"{b}.assignee IS NULL", []))
    if f.sentiment:
        out.append((f"{b}.sentiment = ?", [f.sentiment]))
    if f.intent:
        out.append(intent_condition(dialect, b, f.intent))
    if members:
        if f.source:
            out.append((f"{m}.source_id = ?", [f.source]))
        if f.since is not None:
            out.append((f"COALESCE({m}.published_at, {m}.fetched_at) >= ?", [f.since]))
        if f.until is not None:
            out.append((f"COALESCE({m}.published_at, {m}.fetched_at) < ?", [f.until]))
    return out


class BeaconsMixin:
    backend: Backend

    def list_beacons(self, f: QueueFilter) -> tuple[list[ListedBeacon], str | None]:
        """One page, highest priority first (with ``sla`` and ``now``: beacons past their SLA before the rest);
        with ``threads`` a thread shows as its first beacon only."""
        dialect = self.backend.name
        where, args = _where(f, dialect=dialect)
        if f.threads:
            # Hide a linked beacon when the first beacon of its thread passes the same filter (it is listed instead).
            root_where, root_args = _where(f, "r", "rm", dialect=dialect)
            where.append(
                "NOT EXISTS (SELECT 1 FROM beacon_threads t JOIN beacons r ON r.id = t.thread_id"
                " JOIN mentions rm ON rm.id = r.mention_id"
                f" WHERE t.beacon_id = b.id AND t.thread_id != b.id AND {' AND '.join(root_where) or '1 = 1'})"
            )
            args += root_args
        cursor = _decode(f.cursor) if f.cursor else None
        now = f.now
        if cursor is not None and len(cursor) == 4:
            now = datetime.fromtimestamp(cursor[3] / 1_000_000, UTC)  # every page ranks by the first page's time
        by_sla = bool(f.sla) and now is not None and (cursor is None or len(cursor) == 4)
        breach, breach_args = breach_expression(f.sla, now) if by_sla and f.sla and now else ("0", [])
        if cursor is not None:
            if by_sla:
                where.append(f"({breach}, b.priority, b.id) < (?, ?, ?)")
                args += [*breach_args, *cursor[:3]]
            else:
                where.append("(b.priority, b.id) < (?, ?)")
                args += list(decode_cursor(f.cursor or ""))
        limit = max(1, min(int(f.limit), MAX_PAGE))
        order = f"{breach} DESC, b.priority DESC, b.id DESC" if by_sla else "b.priority DESC, b.id DESC"
        sql = (
            BEACON_SELECT.replace(" FROM beacons b", f", {breach} FROM beacons b")
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY {order} LIMIT ?"
        )
        rows = self.backend.read(sql, [*breach_args, *args, *(breach_args if by_sla else []), limit + 1]).rows
        more = len(rows) > limit
        rows = rows[:limit]
        beacons = [beacon_from_row(r) for r in rows]
        next_cursor = None
        if more and rows:
            last = beacons[-1]
            if by_sla and now is not None:
                now_us = round(now.timestamp() * 1_000_000)
                next_cursor = encode_cursor(last.priority, last.id, breached=int(rows[-1][-1]), now_us=now_us)
            else:
                next_cursor = encode_cursor(last.priority, last.id)
        return self._listed(beacons), next_cursor

    def _listed(self, beacons: Sequence[Beacon]) -> list[ListedBeacon]:
        if not beacons:
            return []
        ids = [b.id for b in beacons]
        extra = {
            int(row[0]): row[1:]
            for row in self.backend.read(
                "SELECT b.id, m.match_json, COALESCE(t.thread_id, b.id),"
                " (SELECT COUNT(*) FROM beacon_threads t2 WHERE t2.thread_id = b.id AND t2.beacon_id != b.id)"
                " FROM beacons b JOIN mentions m ON m.id = b.mention_id LEFT JOIN beacon_threads t ON t.beacon_id = b.id"
                f" WHERE b.id IN ({marks(len(ids))})",
                ids,
            ).rows
        }
        out = []
        for b in beacons:
            match_text, thread_id, related = extra.get(b.id, (None, b.id, 0))
            out.append(ListedBeacon(b, int(thread_id), int(related), match_from_json(match_text)))
        return out

    def get_beacon(self, beacon_id: int) -> Beacon | None:
        row = self.backend.read(BEACON_SELECT + " WHERE b.id = ?", [beacon_id]).one()
        return beacon_from_row(row) if row else None

    def get_listed(self, beacon_id: int) -> ListedBeacon | None:
        beacon = self.get_beacon(beacon_id)
        return self._listed([beacon])[0] if beacon else None

    def notes(self, beacon_id: int) -> list[dict[str, Any]]:
        rows = self.backend.read(
            "SELECT id, at, author, text FROM beacon_notes WHERE beacon_id = ? ORDER BY id", [beacon_id]
        ).rows
        return [{"id": int(r[0]), "at": r[1], "author": r[2], "text": r[3]} for r in rows]

    def history(self, beacon_id: int) -> list[tuple[Any, ...]]:
        return self.backend.read(
            "SELECT id, beacon_id, at, actor, action, from_status, to_status, from_queue, to_queue, assignee, detail"
            " FROM beacon_events WHERE beacon_id = ? ORDER BY id",
            [beacon_id],
        ).rows

    def thread_members(self, thread_id: int, beacon_id: int) -> list[dict[str, Any]]:
        """The beacons of a thread other than ``beacon_id`` (with its first one when that is another)."""
        rows = self.backend.read(
            "SELECT b.id, b.status, b.queue, b.priority, m.title, m.source_id, m.author, b.assignee FROM beacon_threads t"
            " JOIN beacons b ON b.id = t.beacon_id JOIN mentions m ON m.id = b.mention_id WHERE t.thread_id = ? AND b.id != ?"
            " UNION SELECT b.id, b.status, b.queue, b.priority, m.title, m.source_id, m.author, b.assignee FROM beacons b"
            " JOIN mentions m ON m.id = b.mention_id WHERE b.id = ? AND b.id != ? ORDER BY 1",
            [thread_id, beacon_id, thread_id, beacon_id],
        ).rows
        keys = ("id", "status", "queue", "priority", "title", "source", "author", "assignee")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def facets(self) -> dict[str, list[str]]:
        """The brands, products and teams in the queues, the sources and assignees, for the page's filters."""
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
            ("sources", "SELECT id FROM sources"),
            ("assignees", "SELECT DISTINCT assignee FROM beacons WHERE assignee IS NOT NULL"),
        ):
            out[key] = sorted((r[0] for r in self.backend.read(sql).rows), key=str.lower)
        return out

    def queue_version(self) -> str:
        """Changes whenever a beacon arrives or anything happens to one (the page polls it to refresh)."""
        row = self.backend.read("SELECT (SELECT MAX(id) FROM beacons), (SELECT MAX(id) FROM beacon_events)").one()
        assert row is not None
        return f"{row[0] or 0}.{row[1] or 0}"

    def counts(self, f: QueueFilter | None = None) -> dict[str, int]:
        """Beacons per ``queue/status``: all of them, or those passing ``f`` but for its queue, status and paging."""
        if f is None:
            rows = self.backend.read("SELECT queue, status, COUNT(*) FROM beacons GROUP BY queue, status").rows
        else:
            where, args = _where(replace(f, queue="all", status=None, cursor=None), dialect=self.backend.name)
            rows = self.backend.read(
                "SELECT b.queue, b.status, COUNT(*) FROM beacons b JOIN mentions m ON m.id = b.mention_id"
                + (" WHERE " + " AND ".join(where) if where else "")
                + " GROUP BY b.queue, b.status",
                args,
            ).rows
        return {f"{q}/{s}": int(n) for q, s, n in rows}

    def metric_counts(self) -> dict[str, list[tuple[Any, ...]]]:
        """Rows for /metrics: beacons by queue and status, polls and errors per source, the alert backlog."""
        read = self.backend.read
        return {
            "beacons": read("SELECT queue, status, COUNT(*) FROM beacons GROUP BY queue, status ORDER BY 1, 2").rows,
            "sources": read("SELECT id, polls, errors, consecutive_errors FROM sources ORDER BY id").rows,
            "outbox": read(
                "SELECT channel, status, COUNT(*) FROM outbox WHERE status != 'sent' GROUP BY channel, status ORDER BY 1, 2"
            ).rows,
        }

    def routing_row(self, beacon_id: int) -> tuple[Any, ...] | None:
        """The mention and classification the router saw for a stored beacon."""
        return self.backend.read(
            "SELECT m.source_id, m.url, m.guid, m.title, m.text, m.author, m.published_at, m.fetched_at, m.raw, m.author_reach, m.lang,"
            " m.match_json, b.queue, b.sentiment, b.sentiment_score, b.relevance, b.scores_json, b.intents_json, b.model,"
            " m.rating FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.id = ?",
            [beacon_id],
        ).one()

    def feedback_examples(self) -> list[dict[str, Any]]:
        """The team's corrections of each mention, as training examples.

        {text, title, brand, queue, sentiment, intents, labels}: the latest queue, sentiment and intents
        anyone set for the post, and ``labels``, the fields a person actually corrected (a re-route
        corrects the queue; ``beacons queue relabel`` the sentiment and/or intents; issue 12).
        """
        rows = self.backend.read(
            "SELECT f.mention_id, m.text, m.title, m.brand, f.from_queue, f.to_queue, f.sentiment, f.intents_json"
            " FROM feedback_labels f JOIN mentions m ON m.id = f.mention_id ORDER BY f.id"
        ).rows
        out: dict[int, dict[str, Any]] = {}
        for mention_id, text, title, brand, from_q, to_q, sentiment, intents in rows:
            item = out.setdefault(
                mention_id,
                {"text": text, "title": title, "brand": brand, "queue": to_q, "sentiment": None, "intents": None},
            )
            labels = item.setdefault("labels", [])
            item["queue"] = to_q
            if from_q != to_q and "queue" not in labels:
                labels.append("queue")
            if sentiment:
                item["sentiment"] = sentiment
                if "sentiment" not in labels:
                    labels.append("sentiment")
            if intents is not None:
                item["intents"] = json.loads(intents)
                if "intents" not in labels:
                    labels.append("intents")
        return list(out.values())

    def feedback_count(self) -> int:
        return int(self.backend.read("SELECT COUNT(*) FROM feedback_labels").scalar())
