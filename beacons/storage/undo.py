"""Undo a person's last claim, resolve, dismiss or re-route of a beacon (issue 13 §3), in one guarded transaction.

The history is the source of truth: the newest event that changed the beacon
(notes and label corrections change neither status, queue nor holder, so they
are passed over) must be the undoer's own undoable action, and the beacon must
still be as that action left it. Anything else (someone else acted since, it
was undone already) is a ``TransitionConflict``, which the API answers with 409.
The restore writes an ``undo`` event; the original event stays in the history.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from beacons.errors import TransitionConflict
from beacons.storage.base import Backend, Tx
from beacons.storage.lifecycle import _current, _event

UNDOABLE = ("claim", "resolve", "dismiss", "reroute")
QUIET = ("note", "relabel")  # history rows that change neither status, queue nor holder
PAST = {"claim": "claimed", "resolve": "resolved", "dismiss": "dismissed", "reroute": "re-routed", "undo": "undid"}
_COLUMNS = "id, actor, action, from_status, to_status, from_queue, to_queue, assignee, detail, prior_json, at"


_LAST = (
    f"SELECT {_COLUMNS} FROM beacon_events WHERE beacon_id = ? AND action NOT IN ('note', 'relabel')"
    " ORDER BY id DESC LIMIT 1"
)


def _last_change(tx: Tx, beacon_id: int) -> dict[str, Any] | None:
    """The newest event of the beacon that changed it."""
    rows = tx.execute(_LAST, [beacon_id]).dicts()
    return rows[0] if rows else None


def _refusal(beacon_id: int, by: str, event: dict[str, Any] | None) -> str | None:
    if event is None:
        return f"nothing to undo on beacon {beacon_id}: nobody has acted on it"
    action, actor = event["action"], event["actor"]
    if action == "undo":
        return f"nothing to undo on beacon {beacon_id}: its last action was already undone by {actor}"
    if actor != by:
        return (
            f"cannot undo on beacon {beacon_id}: {actor} {PAST.get(action, action)} it since;"
            " only the newest action is undone, by whoever did it"
        )
    if action not in UNDOABLE:
        return f"cannot undo {action} on beacon {beacon_id}: only claim, resolve, dismiss and re-route are undone"
    return None


def _prior(event: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(event["prior_json"])) if event.get("prior_json") else {}


class UndoMixin:
    backend: Backend

    def last_change(self, beacon_id: int) -> dict[str, Any] | None:
        """The newest event that changed the beacon (what ``undo`` would undo), or None."""
        rows = self.backend.read(_LAST, [beacon_id]).dicts()
        return rows[0] if rows else None

    def undo(self, beacon_id: int, by: str, *, now: datetime) -> str:
        """Restore the beacon (and its thread members moved with it) to before ``by``'s last action; returns it."""
        with self.backend.transaction() as tx:
            status, queue, assignee = _current(tx, beacon_id)
            event = _last_change(tx, beacon_id)
            refusal = _refusal(beacon_id, by, event)
            if refusal is not None:
                raise TransitionConflict(beacon_id, "undo", status, assignee, refusal)
            assert event is not None
            if (status, queue) != (event["to_status"], event["to_queue"]):
                raise TransitionConflict(
                    beacon_id, "undo", status, assignee, f"cannot undo on beacon {beacon_id}: it changed since"
                )
            prior = _prior(event)
            holder = prior.get("assignee", assignee)
            sets, args = (
                ["status = ?", "queue = ?", "assignee = ?", "updated_at = ?"],
                [
                    event["from_status"],
                    event["from_queue"],
                    holder,
                    now,
                ],
            )
            if event["action"] == "reroute":
                for key in ("priority", "team", "reason", "is_beacon"):
                    if key in prior:
                        sets.append(f"{key} = ?")
                        args.append(prior[key])
            changed = tx.execute(
                f"UPDATE beacons SET {', '.join(sets)} WHERE id = ? AND status = ? AND queue = ?",
                [*args, beacon_id, status, queue],
            ).rowcount
            if changed != 1:
                status, _, assignee = _current(tx, beacon_id)
                raise TransitionConflict(beacon_id, "undo", status, assignee)
            detail = f"undid {event['action']} (event #{event['id']})"
            _event(
                tx,
                beacon_id,
                by,
                "undo",
                (status, queue),
                (event["from_status"], event["from_queue"]),
                holder,
                detail,
                now,
                {"assignee": assignee},
            )
            if event["action"] == "reroute":
                self._forget_reroute(tx, beacon_id, event)
            else:
                self._undo_thread(tx, beacon_id, by, event, now)
        return str(event["action"])

    def _undo_thread(self, tx: Tx, beacon_id: int, by: str, event: dict[str, Any], now: datetime) -> None:
        """Members a claim, resolve or dismiss moved with their thread go back too, if nobody touched them since."""
        rows = tx.execute(
            "SELECT DISTINCT beacon_id FROM beacon_events WHERE actor = ? AND action = ? AND at = ? AND detail = ?"
            " AND beacon_id != ?",
            [by, event["action"], event["at"], f"with its thread #{beacon_id}", beacon_id],
        ).rows
        for (member_id,) in rows:
            last = _last_change(tx, member_id)
            if last is None or last["actor"] != by or last["detail"] != f"with its thread #{beacon_id}":
                continue  # someone worked on it since: it stays as it is
            m_status, m_queue, m_assignee = _current(tx, member_id)
            m_holder = _prior(last).get("assignee", m_assignee)
            moved = tx.execute(
                "UPDATE beacons SET status = ?, assignee = ?, updated_at = ? WHERE id = ? AND status = ?",
                [last["from_status"], m_holder, now, member_id, m_status],
            ).rowcount
            if moved:
                _event(
                    tx,
                    member_id,
                    by,
                    "undo",
                    (m_status, m_queue),
                    (last["from_status"], m_queue),
                    m_holder,
                    f"undid {last['action']} with its thread #{beacon_id}",
                    now,
                    {"assignee": m_assignee},
                )

    def _forget_reroute(self, tx: Tx, beacon_id: int, event: dict[str, Any]) -> None:
        """An undone re-route teaches the model nothing, and its alerts not yet sent are withdrawn."""
        tx.execute(
            "DELETE FROM feedback_labels WHERE beacon_id = ? AND actor = ? AND at = ? AND from_queue = ? AND to_queue = ?"
            " AND sentiment IS NULL AND intents_json IS NULL",
            [beacon_id, event["actor"], event["at"], event["from_queue"], event["to_queue"]],
        )
        n = tx.execute(
            "SELECT COUNT(*) FROM beacon_events WHERE beacon_id = ? AND action = 'reroute' AND id <= ?",
            [beacon_id, event["id"]],
        ).scalar()
        tx.execute(
            "DELETE FROM outbox WHERE event_id LIKE ? AND status = 'pending' AND attempts = 0",
            [f"beacon-{beacon_id}-reroute{n}-%"],
        )
