"""Open beacons past their SLA that a channel has not been told about yet (``beacons.alerts.sla``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from beacons.storage.base import Backend, from_epoch
from beacons.storage.search import breach_expression
from beacons.storage.types import Sla


class SlaMixin:
    backend: Backend

    def sla_breaches(
        self, sla: Sla, now: datetime, *, prefix: str, suffix: str, limit: int, after_id: int = 0
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` breaching beacons with ids above ``after_id``, in id order (a page), that have no
        outbox row ``prefix || id || suffix`` yet."""
        breach, args = breach_expression(sla, now)
        if breach == "0":
            return []
        rows = self.backend.read(
            "SELECT b.id, b.queue, b.team, b.priority, m.brand, m.product, b.status, b.assignee, b.created_at"
            f" FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.id > ? AND {breach} = 1"
            " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = ? || CAST(b.id AS TEXT) || ?)"
            " ORDER BY b.id LIMIT ?",
            [after_id, *args, prefix, suffix, limit],
        ).dicts()
        for row in rows:
            if isinstance(row["created_at"], str):
                row["created_at"] = datetime.fromisoformat(row["created_at"])
        return rows

    def add_alerts(self, channel: str, kind: str, events: list[tuple[str, int, dict[str, Any]]], *, now: float) -> None:
        """Outbox rows ``(event id, beacon id, payload)`` in one transaction and one batch (an event id that
        already exists keeps its row: ``sla_breaches`` left those out, and the unique index holds if a racing
        sender wrote one meanwhile)."""
        at = from_epoch(now)
        with self.backend.transaction() as tx:
            tx.executemany(
                "INSERT INTO outbox (event_id, channel, beacon_id, kind, payload_json, status, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (event_id) DO NOTHING",
                [
                    (eid, channel, bid, kind, json.dumps(payload, ensure_ascii=False), at, at)
                    for eid, bid, payload in events
                ],
            )
