"""The Sources page and its API (issue 13 §6): each source's health, and buttons to poll now, pause and resume.

For leads and admins (an agent gets 403). What a source shows comes from the
``sources`` table the daemon writes; its last error is scrubbed again here with
``beacons.redact`` (rows stored before issue 10 could hold a feed's token). The
buttons write stored state (``beacons.storage.source_controls``) that every
worker reads, so they work with one daemon or a fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from beacons.log import get_logger
from beacons.redact import scrub
from beacons.storage.base import iso
from beacons.web.messages import HTTPError, Request, Response, safe_next

if TYPE_CHECKING:
    from beacons.web.app import App

log = get_logger("beacons.web")
ACTIONS = ("poll", "pause", "resume")
BROKEN_AFTER = 3  # failed polls in a row before a source is shown as broken


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return iso(value) if isinstance(value, datetime) else str(value)


@dataclass(frozen=True, slots=True)
class SourceRow:
    id: str
    kind: str
    status: str  # ok, not_modified, error, bug, never polled, paused
    last_poll_at: str | None
    last_ok_at: str | None
    last_error: str | None
    consecutive_errors: int
    next_poll_at: str | None
    paused_at: str | None
    paused_by: str | None
    items_per_day: int
    polls: int
    errors: int

    @property
    def is_broken(self) -> bool:
        return self.status in ("error", "bug") and self.consecutive_errors >= 1

    @property
    def backoff(self) -> str:
        if self.paused_at:
            return f"paused by {self.paused_by or 'someone'}"
        if self.consecutive_errors:
            n = self.consecutive_errors
            return f"backing off: {n} failed poll{'s' if n != 1 else ''} in a row"
        return "on schedule"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "broken": self.is_broken,
            "last_poll_at": self.last_poll_at,
            "last_success_at": self.last_ok_at,
            "last_error": self.last_error,
            "consecutive_errors": self.consecutive_errors,
            "backoff": self.backoff,
            "next_poll_at": self.next_poll_at,
            "paused": self.paused_at is not None,
            "paused_at": self.paused_at,
            "paused_by": self.paused_by,
            "items_per_day": self.items_per_day,
            "polls": self.polls,
            "errors": self.errors,
        }


def source_rows(app: App) -> list[SourceRow]:
    """Every configured source, in config order, with its stored state and its new posts of the last 24 hours."""
    now = app.now()
    with app.store() as store:  # a read: a source the daemon has not stored yet shows as never polled
        stored = {r["id"]: r for r in store.sources()}
        per_day = store.items_since(now - timedelta(days=1))
    rows = []
    for source in app.config.sources:
        r = stored.get(source.id, {})
        paused = _text(r.get("paused_at"))
        rows.append(
            SourceRow(
                id=source.id,
                kind=source.kind,
                status="paused" if paused else (r.get("last_status") or "never polled"),
                last_poll_at=_text(r.get("last_poll_at")),
                last_ok_at=_text(r.get("last_ok_at")),
                last_error=scrub(r.get("last_error"), 500) or None,
                consecutive_errors=int(r.get("consecutive_errors") or 0),
                next_poll_at=_text(r.get("next_poll_at")),
                paused_at=paused,
                paused_by=r.get("paused_by"),
                items_per_day=per_day.get(source.id, 0),
                polls=int(r.get("polls") or 0),
                errors=int(r.get("errors") or 0),
            )
        )
    return rows


def _require_lead(app: App, req: Request, what: str) -> None:
    """A lead or admin; service tokens (no role) act as before users existed, as for bulk re-routes."""
    assert req.identity is not None
    if req.identity.is_user:
        app.require_role(req, "lead", what)


def list_sources(app: App, req: Request) -> Response:
    """GET /api/sources."""
    _require_lead(app, req, "the sources list")
    return Response.json({"sources": [r.to_json() for r in source_rows(app)]})


def control(app: App, req: Request) -> Response:
    """POST /api/sources/{source}/poll|pause|resume: stored, so every worker of a fleet honours it."""
    data = req.data()
    app.require_csrf(req, data)
    _require_lead(app, req, "controlling a source")
    source_id, action = req.params["source"], req.params["action"]
    if action not in ACTIONS:
        raise HTTPError(404, "not_found", f"unknown action {action[:40]!r}; use poll, pause or resume")
    if app.config.source(source_id) is None:
        raise HTTPError(404, "not_found", f"no source {source_id[:100]!r} in the config")
    assert req.identity is not None
    who, now = req.identity.name or "service", app.now()
    with app.store() as store:
        store.sync_sources(app.config.sources)
        if action == "pause":
            store.pause_source(source_id, who, now=now)
        elif action == "resume":
            store.resume_source(source_id, now=now)
        else:
            store.request_poll(source_id, now=now)
    log.info("source.control", source=source_id, action=action, by=who)
    row = next(r for r in source_rows(app) if r.id == source_id)
    if req.is_form and req.wants_html:
        return Response.redirect(safe_next(data.get("next"), "/sources"))
    return Response.json({"source": row.to_json()})


def sources_page(app: App, req: Request) -> Response:
    """GET /sources: the table, broken sources first and highlighted."""
    _require_lead(app, req, "the Sources page")
    rows = sorted(source_rows(app), key=lambda r: (not r.is_broken, r.id))
    return app.pages.render(req, "sources.html", rows=rows, here="/sources")


ROUTES = [
    ("GET", "/api/sources", list_sources, "api"),
    ("POST", "/api/sources/{source}/{action}", control, "api"),
    ("GET", "/sources", sources_page, "page"),
]
