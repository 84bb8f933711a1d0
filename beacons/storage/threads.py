"""Thread links: which beacons are posts about the same problem, linked when they are stored.

The beacons of one write are linked in one transaction that first takes a lock
on each (brand, product, queue): two workers storing posts about the same problem at
the same moment link one after the other, and the second sees the first's
thread. Which beacons still need a link is a query (no row in
``beacon_threads``), never a ``MAX(id)`` watermark, so ids committed out of
order by several writers are all linked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from beacons.models import Match
from beacons.storage.base import Backend, marks, utcnow
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
        return self.link_many([beacon_id], words, choose, window=window, now=now) == 1

    def link_many(
        self,
        beacon_ids: Sequence[int],
        words: Words,
        choose: Choose | None,
        *,
        window: float,
        now: datetime | None = None,
    ) -> int:
        """Link beacons in one transaction, each to the thread ``choose`` picks or as its own; how many were linked.

        The (brand, product, queue) locks are taken in sorted order before any link, so two
        workers linking overlapping batches wait for each other instead of deadlocking.
        """
        if not beacon_ids:
            return 0
        linked = 0
        with self.backend.transaction() as tx:
            rows = tx.execute(
                "SELECT b.id, b.queue, m.brand, m.product, m.title, m.text, m.match_json, COALESCE(m.published_at, m.fetched_at)"
                f" FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.id IN ({marks(len(beacon_ids))}) ORDER BY b.id",
                list(beacon_ids),
            ).rows
            subjects = [
                ThreadSubject(int(r[0]), r[1], r[2], r[3], r[4], r[5], match_from_json(r[6]), parse_time(r[7]))
                for r in rows
            ]
            for key in sorted({f"thread:{s.brand}:{s.product}:{s.queue}" for s in subjects}):
                tx.lock(key)
            done = {
                int(r[0])
                for r in tx.execute(
                    f"SELECT beacon_id FROM beacon_threads WHERE beacon_id IN ({marks(len(beacon_ids))})",
                    list(beacon_ids),
                ).rows
            }
            for subject in subjects:
                if subject.beacon_id in done:
                    continue  # another worker linked it while this one waited for the lock
                found = words(subject)
                thread_id, score = subject.beacon_id, None
                if choose is not None and subject.queue != "none" and subject.brand and subject.at:
                    lo, hi = subject.at - timedelta(seconds=window), subject.at + timedelta(seconds=window)
                    candidates = tx.execute(
                        "SELECT t.thread_id, t.words FROM beacon_threads t JOIN beacons r ON r.id = t.thread_id"
                        " WHERE t.brand = ? AND t.product IS NOT DISTINCT FROM ? AND t.queue = ? AND t.at BETWEEN ? AND ?"
                        " AND t.beacon_id != ? AND r.status IN ('new', 'claimed') ORDER BY t.at DESC, t.beacon_id DESC LIMIT 200",
                        [subject.brand, subject.product, subject.queue, lo, hi, subject.beacon_id],
                    ).rows
                    picked = choose(found, [ThreadCandidate(int(r[0]), frozenset(r[1].split())) for r in candidates])
                    if picked is not None:
                        thread_id, score = picked
                linked += tx.execute(
                    "INSERT INTO beacon_threads (beacon_id, thread_id, similarity, linked_at, queue, brand, product, at, words)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (beacon_id) DO NOTHING",
                    [
                        subject.beacon_id,
                        thread_id,
                        score,
                        now or utcnow(),
                        subject.queue,
                        subject.brand,
                        subject.product,
                        subject.at,
                        " ".join(sorted(found)),
                    ],
                ).rowcount
        return linked
