"""A source's pause and "poll now" (issue 13 §6): stored, so every worker of a fleet honours them.

"Poll now" moves ``next_poll_at`` to now, which is what both schedulers read:
the fleet's lease query takes due sources, and a single daemon's source loop
re-reads its source's row while it waits. A paused source (``paused_at`` set)
is leased by no worker and polled by no loop until it is resumed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from beacons.storage.base import Backend


class SourceControlsMixin:
    backend: Backend

    def _control(self, sql: str, args: list[Any]) -> bool:
        with self.backend.transaction() as tx:
            return bool(tx.execute(sql, args).rowcount)

    def pause_source(self, source_id: str, by: str, *, now: datetime) -> bool:
        """Stop polling the source until it is resumed; False when there is no such source row."""
        return self._control(
            "UPDATE sources SET paused_at = COALESCE(paused_at, ?), paused_by = COALESCE(paused_by, ?) WHERE id = ?",
            [now, by, source_id],
        )

    def resume_source(self, source_id: str, *, now: datetime) -> bool:
        """Poll it again, at once."""
        return self._control(
            "UPDATE sources SET paused_at = NULL, paused_by = NULL, next_poll_at = ? WHERE id = ?", [now, source_id]
        )

    def request_poll(self, source_id: str, *, now: datetime) -> bool:
        """Poll it as soon as a worker can (a paused source stays paused)."""
        return self._control(
            "UPDATE sources SET poll_requested_at = ?, next_poll_at = ? WHERE id = ?", [now, now, source_id]
        )

    def source_schedule(self, source_id: str) -> tuple[bool, datetime | None]:
        """(paused, next poll time) as stored: what a waiting source loop checks."""
        row = self.backend.read("SELECT paused_at, next_poll_at FROM sources WHERE id = ?", [source_id]).one()
        if row is None:
            return False, None
        when = row[1]
        if isinstance(when, str):
            when = datetime.fromisoformat(when)
        return row[0] is not None, when

    def items_since(self, since: datetime) -> dict[str, int]:
        """New posts stored per source since ``since`` (the Sources page's items per day)."""
        rows = self.backend.read(
            "SELECT source_id, COUNT(*) FROM mentions WHERE created_at >= ? GROUP BY source_id", [since]
        ).rows
        return {str(r[0]): int(r[1]) for r in rows}
