"""Claim, resolve, dismiss, re-route, reopen, reassign and note a beacon: inputs checked here, one guarded transaction in storage.

Exactly one of two concurrent claims wins, the other gets ``TransitionConflict``
(``beacons.storage.lifecycle``). Claiming, resolving or dismissing a thread's
first beacon does the same to the open rest of its thread. A re-route also
writes a ``feedback_labels`` row that ``beacons train --with-feedback`` learns from.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from beacons.config import Config
from beacons.errors import BeaconNotFound, InvalidInput
from beacons.models import QUEUES, Beacon
from beacons.queue.inputs import clean_name, clean_note
from beacons.queue.queries import routing_input
from beacons.route import DEFAULT_RULES, Rules, reroute_route
from beacons.storage import Storage
from beacons.storage.base import utcnow

OPEN = ("new", "claimed")
ACTIONS = ("claim", "resolve", "dismiss", "reroute", "relabel", "note", "reopen", "reassign", "undo")


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


def reroute(
    store: Storage,
    beacon_id: int,
    by: str,
    queue: str,
    *,
    note: str | None = None,
    rules: Rules = DEFAULT_RULES,
    channels: Sequence[str] = (),
    now: datetime | None = None,
) -> Beacon:
    """Move a beacon to another queue (support, advocacy, none) and keep the correction as a training label.

    Routing is redone for the new queue with ``rules`` (``beacons.route.reroute_route``): its priority and
    team. An open beacon that lands in support or advocacy gets an outbox row for each of ``channels`` in
    the same transaction, as the pipeline writes them. A claimed beacon goes back to new and unassigned in
    its new queue; it leaves its thread.
    """
    by = clean_name(by)
    if queue not in QUEUES:
        raise InvalidInput("queue", f"expected one of {', '.join(QUEUES)}, got {queue!r}")
    text = clean_note(note, required=False)
    seen = routing_input(store, beacon_id)
    if seen is None:
        raise BeaconNotFound(beacon_id)
    mention, match, classification, _beacon_now = seen
    when = now or utcnow()
    decided = reroute_route(mention, match, classification, queue, rules, now=when)  # queue narrowed by the check
    store.reroute(
        beacon_id,
        by,
        queue,
        priority=decided.priority,
        team=decided.team,
        note=text,
        now=when,
        channels=channels,
    )
    return _get(store, beacon_id)


def reroute_options(config: Config) -> dict[str, Any]:
    """``rules`` and ``channels`` for ``reroute`` from the config, as the daemon's pipeline has them."""
    from beacons.alerts.config import channel_names

    return {
        "rules": Rules.from_config(config.routing, config.brand_models()),
        "channels": tuple(channel_names(config.alerts)),
    }


def reopen(store: Storage, beacon_id: int, by: str, *, note: str | None = None, now: datetime | None = None) -> Beacon:
    """resolved | dismissed -> new, unassigned (claim it again to take it); the history keeps what it was."""
    by = clean_name(by)
    store.reopen(beacon_id, by, note=clean_note(note, required=False), now=now or utcnow())
    return _get(store, beacon_id)


def reassign(
    store: Storage,
    beacon_id: int,
    by: str,
    assignee: Any,
    *,
    holder: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> Beacon:
    """Give a claimed beacon to ``assignee``; with ``holder``, only while that person still holds it.

    Who may (a lead or admin, or the holder) and whether ``assignee`` is a user is the caller's check
    (``beacons.web.api``, ``beacons queue reassign``); this keeps the change and its history atomic.
    """
    by = clean_name(by)
    who = clean_name(assignee, "assignee")
    store.reassign(beacon_id, by, who, holder=holder, note=clean_note(note, required=False), now=now or utcnow())
    return _get(store, beacon_id)


def undo(store: Storage, beacon_id: int, by: str, *, now: datetime | None = None) -> Beacon:
    """Undo ``by``'s last claim, resolve, dismiss or re-route of the beacon (``beacons.storage.undo``).

    Refused (``TransitionConflict``, 409 in the API) when someone else acted on it since, when it was undone
    already, or when the last action was not one of those four. The history keeps both the action and the undo.
    """
    by = clean_name(by)
    store.undo(beacon_id, by, now=now or utcnow())
    return _get(store, beacon_id)
