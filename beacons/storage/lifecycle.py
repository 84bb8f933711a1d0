"""Queue changes: claim, resolve, dismiss, re-route and notes, each one guarded transaction with its history.

Every status change is ``UPDATE ... WHERE id = ? AND status IN (...)`` and a
row count check, so of two claims racing (two web servers, a CLI and a page)
exactly one changes the row and the other raises ``TransitionConflict``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from beacons.errors import BeaconNotFound, TransitionConflict
from beacons.storage.base import Backend, Tx, iso, marks


def _event(
    tx: Tx,
    beacon_id: int,
    actor: str,
    action: str,
    before: tuple[str, str],
    after: tuple[str, str],
    assignee: str | None,
    detail: str | None,
    now: datetime,
    prior: dict[str, Any] | None = None,
) -> None:
    """One history row; ``prior`` is what the action changed besides status and queue (what an undo restores)."""
    tx.execute(
        "INSERT INTO beacon_events (beacon_id, at, actor, action, from_status, to_status, from_queue, to_queue, assignee,"
        " detail, prior_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            beacon_id,
            now,
            actor,
            action,
            before[0],
            after[0],
            before[1],
            after[1],
            assignee,
            detail,
            json.dumps(prior) if prior is not None else None,
        ],
    )


def _current(tx: Tx, beacon_id: int) -> tuple[str, str, str | None]:
    row = tx.execute("SELECT status, queue, assignee FROM beacons WHERE id = ?", [beacon_id]).one()
    if row is None:
        raise BeaconNotFound(beacon_id)
    return row[0], row[1], row[2]


def _note(tx: Tx, beacon_id: int, by: str, text: str, now: datetime) -> int:
    return int(
        tx.execute(
            "INSERT INTO beacon_notes (beacon_id, at, author, text) VALUES (?, ?, ?, ?) RETURNING id",
            [beacon_id, now, by, text],
        ).scalar()
    )


class LifecycleMixin:
    backend: Backend

    def transition(
        self,
        beacon_id: int,
        by: str,
        action: str,
        to_status: str,
        allowed: tuple[str, ...],
        *,
        assignee: str | None,
        note: str | None,
        now: datetime,
    ) -> None:
        """Move a beacon (and, when it starts a thread, the open rest of the thread) from ``allowed`` to ``to_status``."""
        with self.backend.transaction() as tx:
            status, queue, current_assignee = _current(tx, beacon_id)
            who = assignee or (by if action == "claim" or status == "new" else current_assignee)
            changed = tx.execute(
                f"UPDATE beacons SET status = ?, assignee = ?, updated_at = ? WHERE id = ? AND status IN ({marks(len(allowed))})",
                [to_status, who, now, beacon_id, *allowed],
            ).rowcount
            if changed != 1:
                status, _, current_assignee = _current(tx, beacon_id)
                raise TransitionConflict(beacon_id, action, status, current_assignee)
            prior = {"assignee": current_assignee}
            _event(tx, beacon_id, by, action, (status, queue), (to_status, queue), who, note, now, prior)
            if note:
                _note(tx, beacon_id, by, note, now)
            members = tx.execute(
                "SELECT b.id, b.status, b.queue, b.assignee FROM beacon_threads t JOIN beacons b ON b.id = t.beacon_id"
                f" WHERE t.thread_id = ? AND b.id != ? AND b.status IN ({marks(len(allowed))}) ORDER BY b.id",
                [beacon_id, beacon_id, *allowed],
            ).rows
            for member_id, m_status, m_queue, m_assignee in members:
                m_who = who if action == "claim" or m_status == "new" else m_assignee
                moved = tx.execute(
                    "UPDATE beacons SET status = ?, assignee = ?, updated_at = ? WHERE id = ? AND status = ?",
                    [to_status, m_who, now, member_id, m_status],
                ).rowcount
                if moved:
                    _event(
                        tx,
                        member_id,
                        by,
                        action,
                        (m_status, m_queue),
                        (to_status, m_queue),
                        m_who,
                        f"with its thread #{beacon_id}",
                        now,
                        {"assignee": m_assignee},
                    )

    def add_note(self, beacon_id: int, by: str, text: str, *, now: datetime) -> dict[str, Any]:
        with self.backend.transaction() as tx:
            status, queue, assignee = _current(tx, beacon_id)
            note_id = _note(tx, beacon_id, by, text, now)
            tx.execute("UPDATE beacons SET updated_at = ? WHERE id = ?", [now, beacon_id])
            _event(tx, beacon_id, by, "note", (status, queue), (status, queue), assignee, None, now)
        return {"id": note_id, "at": iso(now), "author": by, "text": text}

    def relabel(
        self,
        beacon_id: int,
        by: str,
        *,
        sentiment: str | None,
        sentiment_score: float | None,
        intents: tuple[str, ...] | None,
        now: datetime,
    ) -> None:
        """Correct a beacon's sentiment and/or intents and keep the correction as a training label (issue 12)."""
        with self.backend.transaction() as tx:
            status, queue, assignee = _current(tx, beacon_id)
            sets: list[str] = ["updated_at = ?"]
            args: list[Any] = [now]
            if sentiment is not None:
                sets += ["sentiment = ?", "sentiment_score = ?"]
                args += [sentiment, sentiment_score]
            if intents is not None:
                sets.append("intents_json = ?")
                args.append(json.dumps({name: 1.0 for name in intents}))
            row = tx.execute(
                f"UPDATE beacons SET {', '.join(sets)} WHERE id = ? RETURNING mention_id", [*args, beacon_id]
            ).one()
            if row is None:
                raise BeaconNotFound(beacon_id)
            tx.execute(
                "INSERT INTO feedback_labels (beacon_id, mention_id, from_queue, to_queue, actor, at, sentiment, intents_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    beacon_id,
                    row[0],
                    queue,
                    queue,
                    by,
                    now,
                    sentiment,
                    json.dumps(list(intents)) if intents is not None else None,
                ],
            )
            parts = [f"sentiment {sentiment}" if sentiment else "", ""]
            if intents is not None:
                parts[1] = f"intents {', '.join(intents) or '(none)'}"
            detail = ", ".join(p for p in parts if p)
            _event(tx, beacon_id, by, "relabel", (status, queue), (status, queue), assignee, detail, now)

    def reroute(
        self,
        beacon_id: int,
        by: str,
        queue: str,
        *,
        priority: int,
        note: str | None,
        now: datetime,
        team: str | None = None,
        channels: Sequence[str] = (),
    ) -> None:
        """Move a beacon to another queue, keep the correction as a training label, and take it out of its thread.

        ``priority`` and ``team`` are the new queue's (``beacons.route.reroute_route``). An open beacon landing in
        support or advocacy gets one outbox row per alert channel in the same transaction, as a new beacon does
        (each channel's filters decide whether it is sent); the event id names the re-route so it is never a duplicate.
        """
        with self.backend.transaction() as tx:
            status, old_queue, assignee = _current(tx, beacon_id)
            prior = tx.execute(
                "SELECT assignee, priority, team, reason, is_beacon FROM beacons WHERE id = ?", [beacon_id]
            ).one()
            if old_queue == queue:
                raise TransitionConflict(
                    beacon_id, "reroute", status, assignee, f"beacon {beacon_id} is already in the {queue} queue"
                )
            new_status, new_assignee = ("new", None) if status == "claimed" else (status, assignee)
            row = tx.execute(
                "UPDATE beacons SET queue = ?, priority = ?, is_beacon = ?, status = ?, assignee = ?, reason = ?, updated_at = ?,"
                " team = ? WHERE id = ? AND queue = ? AND status = ? RETURNING mention_id",
                [
                    queue,
                    priority,
                    int(queue == "support"),
                    new_status,
                    new_assignee,
                    f"re-routed by {by} from {old_queue}",
                    now,
                    team,
                    beacon_id,
                    old_queue,
                    status,
                ],
            ).one()
            if row is None:
                raise TransitionConflict(beacon_id, "reroute", status, assignee)
            tx.execute(
                "INSERT INTO feedback_labels (beacon_id, mention_id, from_queue, to_queue, actor, at) VALUES (?, ?, ?, ?, ?, ?)",
                [beacon_id, row[0], old_queue, queue, by, now],
            )
            assert prior is not None
            was = dict(zip(("assignee", "priority", "team", "reason", "is_beacon"), prior, strict=True))
            _event(tx, beacon_id, by, "reroute", (status, old_queue), (new_status, queue), new_assignee, note, now, was)
            if note:
                _note(tx, beacon_id, by, note, now)
            _leave_thread(tx, beacon_id, queue)
            if channels and queue != "none" and new_status == "new":
                n = tx.execute(
                    "SELECT COUNT(*) FROM beacon_events WHERE beacon_id = ? AND action = 'reroute'", [beacon_id]
                ).scalar()
                tx.executemany(
                    "INSERT INTO outbox (event_id, channel, beacon_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    [(f"beacon-{beacon_id}-reroute{n}-{ch}", ch, beacon_id, now, now) for ch in channels],
                )

    def reopen(self, beacon_id: int, by: str, *, note: str | None, now: datetime) -> str:
        """resolved | dismissed -> new and unassigned, with a ``reopen`` event; returns the status it left."""
        with self.backend.transaction() as tx:
            status, queue, assignee = _current(tx, beacon_id)
            changed = tx.execute(
                "UPDATE beacons SET status = 'new', assignee = NULL, updated_at = ?"
                " WHERE id = ? AND status IN ('resolved', 'dismissed')",
                [now, beacon_id],
            ).rowcount
            if changed != 1:
                status, _, assignee = _current(tx, beacon_id)
                who = f" by {assignee}" if assignee and status != "new" else ""
                raise TransitionConflict(
                    beacon_id,
                    "reopen",
                    status,
                    assignee,
                    f"cannot reopen beacon {beacon_id}: it is {status}{who}; only a resolved or dismissed beacon is reopened",
                )
            detail = f"was {status}" + (f" by {assignee}" if assignee else "")
            _event(tx, beacon_id, by, "reopen", (status, queue), ("new", queue), None, detail, now)
            if note:
                _note(tx, beacon_id, by, note, now)
        return status

    def reassign(
        self, beacon_id: int, by: str, assignee: str, *, holder: str | None, note: str | None, now: datetime
    ) -> str:
        """Give a claimed beacon (and the rest of its thread its holder held) to ``assignee``; returns the old holder.

        ``holder``, when given, is who must hold it now: a holder passing their beacon on guards the
        ``UPDATE`` with their own name, so a reassignment racing theirs makes this one a conflict.
        """
        with self.backend.transaction() as tx:
            status, queue, current = _current(tx, beacon_id)
            if status != "claimed" or current is None:
                raise TransitionConflict(
                    beacon_id,
                    "reassign",
                    status,
                    current,
                    f"cannot reassign beacon {beacon_id}: it is {status}; only a claimed beacon is reassigned"
                    + (" (claim it with an assignee instead)" if status == "new" else ""),
                )
            if holder is not None and current != holder:
                raise TransitionConflict(
                    beacon_id, "reassign", status, current, f"beacon {beacon_id} is claimed by {current}, not {holder}"
                )
            if current == assignee:
                raise TransitionConflict(
                    beacon_id, "reassign", status, current, f"beacon {beacon_id} is already assigned to {assignee}"
                )
            changed = tx.execute(
                "UPDATE beacons SET assignee = ?, updated_at = ? WHERE id = ? AND status = 'claimed' AND assignee = ?",
                [assignee, now, beacon_id, current],
            ).rowcount
            if changed != 1:
                status, _, now_holder = _current(tx, beacon_id)
                raise TransitionConflict(beacon_id, "reassign", status, now_holder)
            _event(tx, beacon_id, by, "reassign", (status, queue), (status, queue), assignee, f"from {current}", now)
            if note:
                _note(tx, beacon_id, by, note, now)
            members = tx.execute(
                "SELECT b.id, b.queue FROM beacon_threads t JOIN beacons b ON b.id = t.beacon_id"
                " WHERE t.thread_id = ? AND b.id != ? AND b.status = 'claimed' AND b.assignee = ? ORDER BY b.id",
                [beacon_id, beacon_id, current],
            ).rows
            for member_id, m_queue in members:
                moved = tx.execute(
                    "UPDATE beacons SET assignee = ?, updated_at = ? WHERE id = ? AND status = 'claimed' AND assignee = ?",
                    [assignee, now, member_id, current],
                ).rowcount
                if moved:
                    _event(
                        tx,
                        member_id,
                        by,
                        "reassign",
                        ("claimed", m_queue),
                        ("claimed", m_queue),
                        assignee,
                        f"from {current}, with its thread #{beacon_id}",
                        now,
                    )
        return current


def _leave_thread(tx: Tx, beacon_id: int, queue: str) -> None:
    """A re-routed beacon is about something else: it starts its own thread, and its old thread gets a new first beacon."""
    rest = tx.execute(
        "SELECT beacon_id FROM beacon_threads WHERE thread_id = ? AND beacon_id != ? ORDER BY beacon_id",
        [beacon_id, beacon_id],
    ).rows
    if rest:
        tx.execute(
            "UPDATE beacon_threads SET thread_id = ? WHERE thread_id = ? AND beacon_id != ?",
            [rest[0][0], beacon_id, beacon_id],
        )
    tx.execute("UPDATE beacon_threads SET thread_id = beacon_id, queue = ? WHERE beacon_id = ?", [queue, beacon_id])
