"""Several beacons at once (issue 13): claim, resolve, dismiss or re-route each, one transaction per beacon.

One failure does not undo the others: each id gets its own result, ``ok`` with
the beacon as it is now, or the error that stopped it (not found, someone else
was first, a bad value). A beacon an earlier id of the same request already
moved with its thread (claiming or resolving a thread's first beacon does the
same to the rest) is reported done, not as a conflict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beacons.errors import BeaconNotFound, InvalidInput, TransitionConflict
from beacons.models import QUEUES, Beacon
from beacons.queue.inputs import clean_name, clean_note
from beacons.queue.lifecycle import claim, dismiss, reroute, resolve
from beacons.queue.queries import get_entry
from beacons.route import DEFAULT_RULES, Rules
from beacons.storage import Storage

BULK_ACTIONS = ("claim", "resolve", "dismiss", "reroute")
MAX_BULK = 200
_TARGET = {"claim": "claimed", "resolve": "resolved", "dismiss": "dismissed"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One id's result: ``beacon`` when it worked, else ``error`` ({code, message[, status, assignee]})."""

    id: int
    beacon: Beacon | None = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "ok": self.ok}
        if self.beacon is not None:
            out["beacon"] = self.beacon.to_json()
        if self.error is not None:
            out["error"] = self.error
        return out


def clean_ids(value: Any) -> list[int]:
    """1..200 beacon ids, as JSON numbers or the page's form strings; repeats are done once."""
    if not isinstance(value, list) or not value:
        raise InvalidInput(
            "ids", "expected a non-empty list of beacon ids, e.g. [3, 4] (on the page: tick at least one card)"
        )
    if len(value) > MAX_BULK:
        raise InvalidInput("ids", f"at most {MAX_BULK} beacons at once, got {len(value)}")
    ids: list[int] = []
    for item in value:
        text = str(item) if isinstance(item, (int, str)) and not isinstance(item, bool) else ""
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise InvalidInput("ids", f"expected whole numbers, got {str(item)[:20]!r}")
        ids.append(int(text))
    return list(dict.fromkeys(ids))


def bulk(
    store: Storage,
    ids: Sequence[int],
    action: str,
    by: str,
    *,
    queue: str | None = None,
    note: str | None = None,
    assignee: str | None = None,
    rules: Rules = DEFAULT_RULES,
    channels: Sequence[str] = (),
) -> list[Outcome]:
    """Do ``action`` to each beacon in ``ids``, in order; the inputs are checked once, before anything is written."""
    if action not in BULK_ACTIONS:
        raise InvalidInput("action", f"expected one of {', '.join(BULK_ACTIONS)}, got {str(action)[:40]!r}")
    by = clean_name(by)
    text = clean_note(note, required=False)
    if action == "reroute" and queue not in QUEUES:
        raise InvalidInput("queue", f"expected one of {', '.join(QUEUES)} for a bulk re-route, got {queue!r}")
    who = clean_name(assignee, "assignee") if assignee else None
    outcomes: list[Outcome] = []
    for beacon_id in dict.fromkeys(ids):  # an id given twice is done once
        try:
            if action == "claim":
                beacon = claim(store, beacon_id, by, assignee=who)
            elif action == "resolve":
                beacon = resolve(store, beacon_id, by, note=text)
            elif action == "dismiss":
                beacon = dismiss(store, beacon_id, by, note=text)
            else:
                assert queue is not None
                beacon = reroute(store, beacon_id, by, queue, note=text, rules=rules, channels=channels)
            outcomes.append(Outcome(beacon_id, beacon))
        except TransitionConflict as exc:
            done = _done_with_thread(store, beacon_id, action, who or by, outcomes)
            error = {"code": "conflict", "message": str(exc), "status": exc.status, "assignee": exc.assignee}
            outcomes.append(Outcome(beacon_id, done) if done else Outcome(beacon_id, error=error))
        except BeaconNotFound as exc:
            outcomes.append(Outcome(beacon_id, error={"code": "not_found", "message": str(exc)}))
    return outcomes


def _done_with_thread(store: Storage, beacon_id: int, action: str, who: str, earlier: list[Outcome]) -> Beacon | None:
    """The beacon if an earlier id of this request moved it with its thread to where it was asked to go."""
    if action not in _TARGET or not any(o.ok for o in earlier):
        return None
    entry = get_entry(store, beacon_id)
    if entry is None:
        return None
    current = entry.beacon
    if current.status != _TARGET[action] or (action == "claim" and current.assignee != who):
        return None
    return current if entry.thread_id in {o.id for o in earlier if o.ok} else None
