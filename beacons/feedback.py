"""Correct a beacon's sentiment and intents, not only its queue: labels for ``train --with-feedback``.

``relabel`` is the one entry point (``beacons queue relabel``; an HTTP
``POST /api/beacons/{id}/label`` would call it too). A queue change is a
re-route (``beacons.queue.reroute``); a sentiment or intents change updates
the beacon and writes a ``feedback_labels`` row with the corrected fields, in
one transaction with its history event (``Storage.relabel``).
``Storage.feedback_examples`` reads them back for training (issue 12).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from beacons.errors import BeaconNotFound, InvalidInput
from beacons.models import QUEUES, Beacon
from beacons.nlp.labels import INTENTS, SENTIMENTS
from beacons.queue import clean_name, reroute
from beacons.storage import Storage
from beacons.storage.base import utcnow

# The stored score follows a corrected label, so the priority formula reads the person's judgement.
SCORES = {"negative": -0.5, "neutral": 0.0, "positive": 0.5}


def relabel(
    store: Storage,
    beacon_id: int,
    by: str,
    *,
    queue: str | None = None,
    sentiment: str | None = None,
    intents: Sequence[str] | None = None,
    routing: Mapping[str, Any] | None = None,
) -> Beacon:
    """Set any of queue, sentiment and intents of a beacon, each kept as a training label.

    ``routing`` (``beacons.queue.reroute_options``) is what a queue change redoes routing with.
    """
    by = clean_name(by)
    if queue is None and sentiment is None and intents is None:
        raise InvalidInput("label", "give at least one of queue, sentiment or intents")
    if queue is not None and queue not in QUEUES:
        raise InvalidInput("queue", f"expected one of {', '.join(QUEUES)}, got {queue!r}")
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise InvalidInput("sentiment", f"expected one of {', '.join(SENTIMENTS)}, got {sentiment!r}")
    wanted = tuple(dict.fromkeys(intents)) if intents is not None else None
    unknown = [i for i in wanted or () if i not in INTENTS]
    if unknown:
        raise InvalidInput("intents", f"unknown {', '.join(map(repr, unknown))}; known: {', '.join(INTENTS)}")
    current = store.get_beacon(beacon_id)
    if current is None:
        raise BeaconNotFound(beacon_id)
    if queue is not None and current.queue != queue:
        reroute(store, beacon_id, by, queue, **(routing or {}))
    if sentiment is not None or wanted is not None:
        store.relabel(
            beacon_id,
            by,
            sentiment=sentiment,
            sentiment_score=SCORES[sentiment] if sentiment else None,
            intents=wanted,
            now=utcnow(),
        )
    beacon = store.get_beacon(beacon_id)
    assert beacon is not None
    return beacon
