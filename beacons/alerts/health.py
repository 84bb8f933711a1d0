"""Source health: tell an ops channel when a source breaks, remind it, and say when it recovers.

A silent broken feed looks like a quiet day. A source is *broken* when its
last ``health.after_errors`` polls failed in a row, or, when it sets
``expect_every``, when it has yielded nothing new for longer than that. For
each ``ops`` channel and source, the state (ok or failing, the episode
number, reminders sent) lives in ``alert_source_health`` and changes in the
same transaction as the alert it causes, so a restart neither repeats nor
loses one. Event ids: ``health-<source hash>-<episode>-failing|remind-<n>|recovered-<channel>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from beacons.alerts.config import AlertChannel, HealthRule
from beacons.alerts.outbox import Outbox, epoch, ts
from beacons.log import get_logger
from beacons.models import Source
from beacons.redact import scrub

log = get_logger("beacons.alerts")


def human(seconds: float) -> str:
    """5400 -> "1h30m"."""
    seconds = int(max(0, seconds))
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s and not d and not h else ""]
    return "".join(parts) or "0s"


def broken_reason(
    row: Mapping[str, Any], source: Source, rule: HealthRule, *, first_seen: float, now: float
) -> str | None:
    """Why the source counts as broken now, or None when it is fine."""
    errors = int(row.get("consecutive_errors") or 0)
    if errors >= rule.after_errors:
        return f"{errors} failed polls in a row"
    if source.expect_every:
        last_new = epoch(row.get("last_new_at")) or first_seen
        if now - last_new > source.expect_every:
            return f"nothing new for {human(now - last_new)} (expect_every {human(source.expect_every)})"
    return None


def transition(
    state: Mapping[str, Any], reason: str | None, rule: HealthRule, *, now: float
) -> tuple[dict[str, Any], str | None]:
    """The next state and the alert to send (failing, remind-<n>, recovered) or None. Pure."""
    new = dict(state)
    if reason is not None and state["state"] != "failing":
        new.update(
            state="failing",
            reason=reason,
            since=ts(now),
            episode=int(state["episode"]) + 1,
            reminders=0,
            last_alert_at=ts(now),
        )
        return new, "failing"
    if reason is not None:
        new["reason"] = reason
        last = epoch(state.get("last_alert_at"))
        if last is not None and now - last >= rule.remind_every:
            new.update(reminders=int(state["reminders"]) + 1, last_alert_at=ts(now))
            return new, f"remind-{new['reminders']}"
        return new, None
    if state["state"] == "failing":
        new.update(state="ok", reason=None, last_alert_at=ts(now))
        return new, "recovered"
    return new, None


def event_id(channel: str, source_id: str, episode: int, what: str) -> str:
    digest = hashlib.sha1(source_id.encode("utf-8")).hexdigest()[:12]
    return f"health-{digest}-{episode}-{what}-{channel}"


def check(outbox: Outbox, channel: AlertChannel, sources: Sequence[Source], *, now: float) -> list[str]:
    """Evaluate every configured source for one ops channel; the event ids of the alerts written."""
    rows = outbox.sources()
    states = outbox.health_states(channel.name)
    written: list[str] = []
    for source in sources:
        row = rows.get(source.id)
        if row is None:
            continue
        old = states.get(source.id) or {
            "state": "ok",
            "reason": None,
            "since": None,
            "episode": 0,
            "reminders": 0,
            "last_alert_at": None,
            "first_seen": ts(now),
        }
        reason = broken_reason(row, source, channel.health, first_seen=epoch(old["first_seen"]) or now, now=now)
        new, what = transition(old, reason, channel.health, now=now)
        if what is None and source.id in states and new == old:
            continue
        event = None
        if what is not None:
            state = "still_failing" if what.startswith("remind") else what
            payload = {
                "source": source.id,
                "state": state,
                "reason": reason or old.get("reason"),
                "consecutive_errors": int(row.get("consecutive_errors") or 0),
                "last_error": scrub(row.get("last_error"), 500) or None,
                "last_ok_at": row.get("last_ok_at"),
                "last_new_at": row.get("last_new_at"),
                "since": new.get("since") if state != "recovered" else old.get("since"),
                "reminder": int(new["reminders"]) if state == "still_failing" else None,
            }
            event = (event_id(channel.name, source.id, int(new["episode"]), what), payload)
            written.append(event[0])
            log.warning(
                "alert.source_health", channel=channel.name, source=source.id, state=state, reason=payload["reason"]
            )
        outbox.save_health(channel.name, source.id, new, event, now=now)
    return written
