"""Claim, resolve, dismiss, re-route and note a beacon: inputs checked here, one guarded transaction in storage.

Exactly one of two concurrent claims wins, the other gets ``TransitionConflict``
(``beacons.storage.lifecycle``). Claiming, resolving or dismissing a thread's
first beacon does the same to the open rest of its thread. A re-route also
writes a ``feedback_labels`` row that ``beacons train --with-feedback`` learns from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from beacons.errors import BeaconNotFound, InvalidInput
from beacons.models import QUEUES, Beacon
from beacons.queue.inputs import clean_name, clean_note
from beacons.queue.queries import routing_input
from beacons.route import priority
from beacons.storage import Storage
from beacons.storage.base import utcnow

OPEN = ("new", "claimed")
ACTIONS = ("claim", "resolve", "dismiss", "reroute", "relabel", "note")


def _get(store: Storage, beacon_id: int) -> Beacon:
    beacon = store.get_beacon(beacon_id)
    if beacon is None:
        raise BeaconNotFound(beacon_id)
    return beacon


def _transition(
    store: Storage,
    beacon_id: int,
    by: str,
    action: str,
    to_status: str,
    *,
    assignee: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> Beacon:
    by = clean_name(by)
    assignee = clean_name(assignee, "assignee") if assignee else None
    allowed = ("new",) if action == "claim" else OPEN
    store.transition(beacon_id, by, action, to_status, allowed, assignee=assignee, note=note, now=now or utcnow())
    return _get(store, beacon_id)


def claim(store: Storage, beacon_id: int, by: str, *, assignee: str | None = None) -> Beacon:
    """new -> claimed, assigned to ``assignee`` (default: the claimer). Exactly one concurrent claim wins."""
    return _transition(store, beacon_id, by, "claim", "claimed", assignee=assignee)


def resolve(store: Storage, beacon_id: int, by: str, *, note: str | None = None) -> Beacon:
    return _transition(store, beacon_id, by, "resolve", "resolved", note=clean_note(note, required=False))


def dismiss(store: Storage, beacon_id: int, by: str, *, note: str | None = None) -> Beacon:
    return _transition(store, beacon_id, by, "dismiss", "dismissed", note=clean_note(note, required=False))


def add_note(store: Storage, beacon_id: int, by: str, text: Any) -> dict[str, Any]:
    """Add a note (1..5000 characters; ``text`` is checked, so untyped input is fine)."""
    by = clean_name(by)
    body = clean_note(text, required=True)
    assert body is not None
    return store.add_note(beacon_id, by, body, now=utcnow())


def reroute(store: Storage, beacon_id: int, by: str, queue: str, *, note: str | None = None) -> Beacon:
    """Move a beacon to another queue (support, advocacy, none) and keep the correction as a training label.

    A claimed beacon goes back to new and unassigned in its new queue; it leaves its thread.
    """
    by = clean_name(by)
    if queue not in QUEUES:
        raise InvalidInput("queue", f"expected one of {', '.join(QUEUES)}, got {queue!r}")
    text = clean_note(note, required=False)
    seen = routing_input(store, beacon_id)
    if seen is None:
        raise BeaconNotFound(beacon_id)
    mention, _match, classification, _beacon_now = seen
    value = priority(mention, classification, queue=queue)  # narrowed to a Queue by the check above
    store.reroute(beacon_id, by, queue, priority=value, note=text, now=utcnow())
    return _get(store, beacon_id)
