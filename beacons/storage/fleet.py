"""Several daemon workers on one database: source leases, host affinity, leaders of periodic jobs.

- A worker takes due sources with one transaction: ``SELECT ... FOR UPDATE
  SKIP LOCKED`` (PostgreSQL; SQLite has one writer anyway) picks them, and a
  lease (``lease_owner``, ``lease_until``) marks them. While the lease runs no
  other worker takes the source; after the poll the worker writes the next
  poll time and drops the lease. A worker killed by SIGKILL loses its leases
  when they run out, and the others take its sources over.
- Politeness holds across workers by host affinity: a worker polls a source
  only while it holds the lease of the source's host (``fleet_hosts``, one row
  per host, taken with a guarded upsert), so every request to one host comes
  from one worker at a time and that worker's per-host limits, spacing,
  Retry-After and pauses (``beacons.fetch.Politeness``) are the fleet's.
- A periodic job (digests, source health, spike checks of a channel) runs on
  the worker that holds its row in ``fleet_leaders``; a leader that dies stops
  renewing it and another takes over when it runs out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from beacons.storage.base import Backend, Tx


class FleetMixin:
    backend: Backend

    def heartbeat(self, worker: str, *, hostname: str, pid: int, now: datetime, polled: int = 0) -> None:
        with self.backend.transaction() as tx:
            tx.execute(
                "INSERT INTO fleet_workers (id, hostname, pid, started_at, heartbeat_at, sources_polled)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,"
                " sources_polled = fleet_workers.sources_polled + excluded.sources_polled",
                [worker, hostname, pid, now, now, polled],
            )

    def lease_due(self, worker: str, *, now: datetime, lease: float, limit: int, host_hold: float = 15.0) -> list[str]:
        """Take up to ``limit`` due sources that no live lease holds, on hosts this worker holds or can take.

        A worker holds at most its share of the hosts (hosts / live workers, rounded up), so a
        worker that joins gets hosts as the others' short host holds (``host_hold``) lapse; a
        host is never taken while another worker's poll of one of its sources is in flight.
        """
        until = now + timedelta(seconds=lease)
        hold = now + timedelta(seconds=min(host_hold, lease))
        with self.backend.transaction() as tx:
            live = tx.execute(
                "SELECT COUNT(*) FROM fleet_workers WHERE heartbeat_at >= ?", [now - timedelta(seconds=30)]
            ).scalar()
            share = -(-self._hosts_total(tx, now) // max(1, int(live or 0)))
            mine = sorted(
                r[0]
                for r in tx.execute("SELECT host FROM fleet_hosts WHERE owner = ? AND until >= ?", [worker, now]).rows
            )
            keep = set(mine[:share])  # past its share a worker lets the rest of its hosts lapse
            candidates = self._due(tx, worker, now, 2 * limit)
            hosts: dict[str, bool] = {}
            taken: list[str] = []
            for source_id, host in candidates:
                host = host or ""
                if host not in hosts:
                    if host in keep or (host not in mine and len(keep) < share):
                        hosts[host] = bool(
                            tx.execute(
                                "INSERT INTO fleet_hosts (host, owner, until) VALUES (?, ?, ?)"
                                " ON CONFLICT (host) DO UPDATE SET owner = excluded.owner, until = excluded.until"
                                " WHERE (fleet_hosts.until < ? OR fleet_hosts.owner = excluded.owner)"
                                " AND NOT EXISTS (SELECT 1 FROM sources o WHERE o.host = excluded.host"
                                " AND o.lease_owner != excluded.owner AND o.lease_until >= ?) RETURNING host",
                                [host, worker, hold, now, now],
                            ).rows
                        )
                        if hosts[host]:
                            keep.add(host)
                    else:
                        hosts[host] = False
                if hosts[host] and len(taken) < limit:
                    taken.append(source_id)
            for source_id in taken:
                tx.execute(
                    "UPDATE sources SET lease_owner = ?, lease_until = ? WHERE id = ?"
                    " AND (lease_until IS NULL OR lease_until < ?)",
                    [worker, until, source_id, now],
                )
        return taken

    def _due(self, tx: Tx, worker: str, now: datetime, n: int) -> list[tuple[Any, ...]]:
        """Up to ``n`` due sources nobody leases, never polled first, then by next poll time.

        Two range reads of the ``sources_due`` index (next_poll_at, id), each in index order, so a lease
        reads about ``n`` rows instead of sorting every due source (issue 11). A source this worker holds
        is in flight here: never take it twice. Hosts another worker holds are left out here, not after:
        a worker beside others would otherwise see a page of sources it may not take, and wait for nothing.
        """
        free = (  # a paused source (the sources page, issue 13 §6) is leased by no worker
            " AND paused_at IS NULL AND (lease_until IS NULL OR lease_until < ?) AND NOT EXISTS"
            " (SELECT 1 FROM fleet_hosts h WHERE h.host = sources.host AND h.owner != ? AND h.until >= ?)"
        )
        rows = tx.execute(
            f"SELECT id, host FROM sources WHERE next_poll_at IS NULL{free} ORDER BY id LIMIT ?{self.backend.skip_locked}",
            [now, worker, now, n],
        ).rows
        if len(rows) < n:
            rows += tx.execute(
                f"SELECT id, host FROM sources WHERE next_poll_at <= ?{free}"
                f" ORDER BY next_poll_at, id LIMIT ?{self.backend.skip_locked}",
                [now, now, worker, now, n - len(rows)],
            ).rows
        return rows

    def _hosts_total(self, tx: Tx, now: datetime) -> int:
        """How many hosts the sources are on; counted again once a minute (the sources change only when a
        worker starts with a new config), not on every lease."""
        cached: tuple[datetime, int] | None = getattr(self, "_hosts_cache", None)
        if cached is None or now - cached[0] >= timedelta(seconds=60) or now < cached[0]:
            cached = (now, int(tx.execute("SELECT COUNT(DISTINCT host) FROM sources").scalar() or 0))
            self._hosts_cache = cached
        return cached[1]

    def release_source(self, source_id: str, worker: str, *, next_poll_at: datetime) -> bool:
        """Drop this worker's lease and set when the fleet polls the source next; False when the lease was lost."""
        with self.backend.transaction() as tx:
            return bool(
                tx.execute(
                    "UPDATE sources SET lease_owner = NULL, lease_until = NULL, next_poll_at = ?"
                    " WHERE id = ? AND lease_owner = ?",
                    [next_poll_at, source_id, worker],
                ).rowcount
            )

    def lead(self, job: str, worker: str, *, now: datetime, ttl: float) -> bool:
        """Take or renew the leadership of ``job``; True while this worker is its leader."""
        with self.backend.transaction() as tx:
            return bool(
                tx.execute(
                    "INSERT INTO fleet_leaders (job, owner, until) VALUES (?, ?, ?)"
                    " ON CONFLICT (job) DO UPDATE SET owner = excluded.owner, until = excluded.until"
                    " WHERE fleet_leaders.until < ? OR fleet_leaders.owner = excluded.owner RETURNING job",
                    [job, worker, now + timedelta(seconds=ttl), now],
                ).rows
            )

    def send_slot(self, channel: str, *, now: datetime, spacing: float) -> datetime:
        """Reserve the channel's next send time for the whole fleet: the later of now and the slot after the
        last reservation (or the end of a pause); the next one is ``spacing`` seconds after it."""
        with self.backend.transaction() as tx:
            tx.lock(f"send:{channel}")
            row = tx.execute("SELECT next_send_at FROM fleet_channels WHERE channel = ?", [channel]).one()
            slot = max(now, datetime.fromisoformat(row[0])) if row else now
            tx.execute(
                "INSERT INTO fleet_channels (channel, next_send_at) VALUES (?, ?)"
                " ON CONFLICT (channel) DO UPDATE SET next_send_at = excluded.next_send_at",
                [channel, slot + timedelta(seconds=spacing)],
            )
        return slot

    def pause_channel(self, channel: str, *, until: datetime) -> None:
        """No sender of the fleet sends to ``channel`` before ``until`` (the receiver's Retry-After)."""
        with self.backend.transaction() as tx:
            tx.lock(f"send:{channel}")
            row = tx.execute("SELECT next_send_at FROM fleet_channels WHERE channel = ?", [channel]).one()
            if row is None or datetime.fromisoformat(row[0]) < until:
                tx.execute(
                    "INSERT INTO fleet_channels (channel, next_send_at) VALUES (?, ?)"
                    " ON CONFLICT (channel) DO UPDATE SET next_send_at = excluded.next_send_at",
                    [channel, until],
                )

    def leave_fleet(self, worker: str) -> None:
        """A clean stop: give back every lease and leadership at once instead of letting them run out."""
        with self.backend.transaction() as tx:
            tx.execute("UPDATE sources SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?", [worker])
            tx.execute("DELETE FROM fleet_hosts WHERE owner = ?", [worker])
            tx.execute("DELETE FROM fleet_leaders WHERE owner = ?", [worker])
            tx.execute("DELETE FROM fleet_workers WHERE id = ?", [worker])

    def fleet(self, *, now: datetime) -> dict[str, Any]:
        """Workers with their heartbeat, live leases and hosts, and the leaders of periodic jobs."""
        read = self.backend.read
        workers = read(
            "SELECT w.id, w.hostname, w.pid, w.started_at, w.heartbeat_at, w.sources_polled,"
            " (SELECT COUNT(*) FROM sources s WHERE s.lease_owner = w.id AND s.lease_until >= ?),"
            " (SELECT COUNT(*) FROM fleet_hosts h WHERE h.owner = w.id AND h.until >= ?)"
            " FROM fleet_workers w ORDER BY w.id",
            [now, now],
        ).rows
        keys = ("id", "hostname", "pid", "started_at", "heartbeat_at", "sources_polled", "leases", "hosts")
        leaders = read("SELECT job, owner, until FROM fleet_leaders WHERE until >= ? ORDER BY job", [now]).rows
        due = read("SELECT COUNT(*) FROM sources WHERE next_poll_at IS NULL OR next_poll_at <= ?", [now]).scalar()
        return {
            "workers": [
                {
                    k: (int(v) if k in ("pid", "sources_polled", "leases", "hosts") else v)
                    for k, v in zip(keys, r, strict=True)
                }
                for r in workers
            ],
            "leaders": [{"job": r[0], "owner": r[1], "until": r[2]} for r in leaders],
            "sources_due": int(due),
        }
