"""Posts about the same problem become one thread, linked when their beacons are stored.

The rule is pure (``route.content_words`` and ``route.similarity``): the open
thread with the most similar post of the same brand, product and queue within
``routing.grouping.window`` wins when it shares enough words. Storage runs it
inside the beacon's own locked transaction (``storage.threads``).
"""

from __future__ import annotations

from collections.abc import Iterable

from beacons.config import GroupingConfig
from beacons.route import content_words, similarity
from beacons.storage import Storage
from beacons.storage.threads import Choose, ThreadSubject
from beacons.storage.types import ThreadCandidate
from beacons.text import full_text


def words_of(subject: ThreadSubject) -> frozenset[str]:
    spans = subject.match.spans if subject.match else ()
    return content_words(
        full_text(subject.title, subject.text), [subject.brand or "", subject.product or "", *(s.text for s in spans)]
    )


def chooser(g: GroupingConfig) -> Choose:
    def choose(words: frozenset[str], candidates: list[ThreadCandidate]) -> tuple[int, float] | None:
        best: tuple[int, float] | None = None
        for c in candidates:
            score, shared = similarity(words, c.words)
            if score >= g.similarity and shared >= g.min_shared and (best is None or score > best[1]):
                best = (c.thread_id, round(score, 3))
        return best

    return choose


def link_threads(store: Storage, grouping: GroupingConfig | None, beacon_ids: Iterable[int]) -> int:
    """Link the given (just stored) beacons; returns how many were linked now."""
    g = grouping or GroupingConfig()
    choose = chooser(g) if g.enabled else None
    ids = sorted(beacon_ids)
    return sum(store.link_many(ids[i : i + 500], words_of, choose, window=g.window) for i in range(0, len(ids), 500))


def link_pending(store: Storage, grouping: GroupingConfig | None = None, *, batch: int = 200) -> int:
    """Link every beacon that has no thread yet (stored by a process that stopped before linking it)."""
    linked = 0
    while True:
        pending = store.unthreaded(batch)
        if not pending:
            return linked
        done = link_threads(store, grouping, pending)
        linked += done
        if len(pending) < batch or done == 0:
            return linked
