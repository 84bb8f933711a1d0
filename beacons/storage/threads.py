"""Thread links: which beacons are posts about the same problem, linked when they are stored.

Each beacon is linked in its own transaction that first takes a lock on its
(brand, product, queue): two workers storing posts about the same problem at
the same moment link one after the other, and the second sees the first's
thread. Which beacons still need a link is a query (no row in
``beacon_threads``), never a ``MAX(id)`` watermark, so ids committed out of
order by several writers are all linked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from beacons.models import Match
from beacons.storage.base import Backend, utcnow
from beacons.storage.types import ThreadCandidate, match_from_json, parse_time


@dataclass(frozen=True, slots=True)
class ThreadSubject:
    """What the thread rule looks at for one beacon."""

    beacon_id: int
    queue: str
    brand: str | None
    product: str | None
    title: str
    text: str
    match: Match | None
    at: datetime | None


Words = Callable[[ThreadSubject], frozenset[str]]
Choose = Callable[[frozenset[str], list[ThreadCandidate]], tuple[int, float] | None]


class ThreadsMixin:
    backend: Backend

    def unthreaded(self, limit: int = 200) -> list[int]:
        """Beacons with no thread link yet (stored by a process that stopped before linking them)."""
        rows = self.backend.read(
            "SELECT b.id FROM beacons b LEFT JOIN beacon_threads t ON t.beacon_id = b.id"
            " WHERE t.beacon_id IS NULL ORDER BY b.id LIMIT ?",
            [limit],
        ).rows
        return [int(r[0]) for r in rows]

    def link_thread(
        self, beacon_id: int, words: Words, choose: Choose | None, *, window: float, now: datetime | None = None
    ) -> bool:
        """Link one beacon: to the thread ``choose`` picks among open similar ones, or as its own; True when linked."""
        with self.backend.transaction() as tx:
            row = tx.execute(
                "SELECT b.id, b.queue, m.brand, m.product, m.title, m.text, m.match_json, COALESCE(m.published_at, m.fetched_at)"
                " FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.id = ?",
                [beacon_id],
            ).one()
            if row is None:
                return False
            subject = ThreadSubject(
                int(row[0]), row[1], row[2], row[3], row[4], row[5], match_from_json(row[6]), parse_time(row[7])
            )
            tx.lock(f"thread:{subject.brand}:{subject.product}:{subject.queue}")
            if tx.execute("SELECT 1 FROM beacon_threads WHERE beacon_id = ?", [beacon_id]).one():
                return False  # another worker linked it while this one waited for the lock
            found = words(subject)
            thread_id, score = beacon_id, None
            if choose is not None and subject.queue != "none" and subject.brand and subject.at:
                lo, hi = subject.at - timedelta(seconds=window), subject.at + timedelta(seconds=window)
                rows = tx.execute(
                    "SELECT t.thread_id, t.words FROM beacon_threads t JOIN beacons r ON r.id = t.thread_id"
                    " WHERE t.brand = ? AND t.product IS NOT DISTINCT FROM ? AND t.queue = ? AND t.at BETWEEN ? AND ?"
                    " AND t.beacon_id != ? AND r.status IN ('new', 'claimed') ORDER BY t.at DESC, t.beacon_id DESC LIMIT 200",
                    [subject.brand, subject.product, subject.queue, lo, hi, beacon_id],
                ).rows
                picked = choose(found, [ThreadCandidate(int(r[0]), frozenset(r[1].split())) for r in rows])
                if picked is not None:
                    thread_id, score = picked
            tx.execute(
                "INSERT INTO beacon_threads (beacon_id, thread_id, similarity, linked_at, queue, brand, product, at, words)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (beacon_id) DO NOTHING",
                [
                    beacon_id,
                    thread_id,
                    score,
                    now or utcnow(),
                    subject.queue,
                    subject.brand,
                    subject.product,
                    subject.at,
                    " ".join(sorted(found)),
                ],
            )
        return True
