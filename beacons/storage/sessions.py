"""Web sessions signed out before they expire (issue 10): a cookie stays valid by signature until ``until``."""

from __future__ import annotations

from datetime import datetime

from beacons.storage.base import Backend


class SessionsMixin:
    backend: Backend

    def revoke_session(self, session_id: str, until: datetime, *, now: datetime) -> None:
        """Refuse the session ``session_id`` from now on; rows whose session has expired anyway are pruned."""
        with self.backend.transaction() as tx:
            tx.execute("DELETE FROM revoked_sessions WHERE until < ?", [now])
            tx.execute(
                "INSERT INTO revoked_sessions (id, until) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET until = excluded.until",
                [session_id, until],
            )

    def session_revoked(self, session_id: str) -> bool:
        return self.backend.read("SELECT 1 FROM revoked_sessions WHERE id = ?", [session_id]).one() is not None
