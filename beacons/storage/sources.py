"""Sources: their rows, conditional-GET state, poll counters and next poll time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from beacons.models import Source, SourceState
from beacons.storage.base import Backend, utcnow


def source_host(source: Source) -> str:
    """The host a source's requests go to (its feed URL's or its API's), for fleet-wide politeness."""
    url = getattr(source.options, "url", None) or getattr(source.options, "base_url", None) or ""
    return (urlsplit(str(url)).hostname or source.kind).lower()


class SourcesMixin:
    backend: Backend

    def sync_sources(self, sources: Iterable[Source]) -> None:
        """Make sure every configured source has a row (its state survives restarts)."""
        rows = [(s.id, s.kind, source_host(s)) for s in sources]
        if not rows:
            return
        with self.backend.transaction() as tx:
            tx.executemany(
                "INSERT INTO sources (id, kind, host) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, host = excluded.host",
                rows,
            )

    def source_state(self, source_id: str) -> SourceState:
        row = self.backend.read(
            "SELECT etag, last_modified, cursor, quota FROM sources WHERE id = ?", [source_id]
        ).one()
        return SourceState(*row) if row else SourceState()

    def record_error(self, source_id: str, error: str, *, status: str = "error", now: datetime | None = None) -> int:
        """Count a failed poll; returns the source's consecutive error count."""
        with self.backend.transaction() as tx:
            row = tx.execute(
                "UPDATE sources SET last_poll_at = ?, last_status = ?, last_error = ?, polls = polls + 1,"
                " errors = errors + 1, consecutive_errors = consecutive_errors + 1 WHERE id = ?"
                " RETURNING consecutive_errors",
                [now or utcnow(), status, error[:2000], source_id],
            ).one()
        return int(row[0]) if row else 0

    def consecutive_errors(self, source_id: str) -> int:
        """The stored count of failed polls in a row, read without writing (0 when unreadable)."""
        from beacons.errors import StoreError

        try:
            row = self.backend.read("SELECT consecutive_errors FROM sources WHERE id = ?", [source_id]).one()
        except StoreError:
            return 0
        return int(row[0]) if row else 0

    def set_next_poll(self, source_id: str, when: datetime) -> None:
        with self.backend.transaction() as tx:
            tx.execute("UPDATE sources SET next_poll_at = ? WHERE id = ?", [when, source_id])

    def sources(self) -> list[dict[str, Any]]:
        return self.backend.read("SELECT * FROM sources ORDER BY id").dicts()

    def source_counters(self) -> list[tuple[Any, ...]]:
        return self.backend.read("SELECT id, polls, errors, consecutive_errors FROM sources ORDER BY id").rows
