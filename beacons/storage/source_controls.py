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
        """(paused, next poll time) as stored for one source."""
        row = self.backend.read("SELECT paused_at, next_poll_at FROM sources WHERE id = ?", [source_id]).one()
        return (False, None) if row is None else _schedule_of(row[0], row[1])

    def source_schedules(self) -> dict[str, tuple[bool, datetime | None]]:
        """Every source's (paused, next poll time) in one query: the daemon schedule's shared read."""
        rows = self.backend.read("SELECT id, paused_at, next_poll_at FROM sources").rows
        return {str(r[0]): _schedule_of(r[1], r[2]) for r in rows}

    def items_since(self, since: datetime) -> dict[str, int]:
        """New posts stored per source since ``since`` (the Sources page's items per day)."""
        rows = self.backend.read(
            "SELECT source_id, COUNT(*) FROM mentions WHERE created_at >= ? GROUP BY source_id", [since]
        ).rows
        return {str(r[0]): int(r[1]) for r in rows}


def _schedule_of(paused_at: object, next_poll_at: object) -> tuple[bool, datetime | None]:
    when = datetime.fromisoformat(next_poll_at) if isinstance(next_poll_at, str) else next_poll_at
    assert when is None or isinstance(when, datetime)
    return paused_at is not None, when
