"""The JSON API, ``/healthz`` and Prometheus ``/metrics``; described in ``openapi.py``.

Bodies of ``POST /api/beacons/{id}/{action}`` are JSON objects, or urlencoded
forms when the page posts without JavaScript (then the answer is a redirect
back to the page). Who acts: the signed-in person for the page, else ``by`` in
the body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beacons.models import QUEUES, STATUSES
from beacons.queue import (
    QueueFilter,
    add_note,
    claim,
    dismiss,
    get_detail,
    list_entries,
    metric_counts,
    reroute,
    resolve,
    version,
)
from beacons.storage import is_postgres_url
from beacons.web.messages import HTTPError, Request, Response, safe_next

if TYPE_CHECKING:
    from beacons.web.app import App

MAX_LIMIT = 200


def _limit(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    # ASCII digits only: str.isdigit() and int() also take "²" and "٣" (issue 10), and int() refuses 5,000 digits.
    if not (value.isascii() and value.isdigit() and len(value) <= 4) or not 1 <= int(value) <= MAX_LIMIT:
        raise HTTPError(400, "invalid", f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {value[:20]!r}")
    return int(value)


def query_filter(query: dict[str, str], *, default_limit: int = 50) -> QueueFilter:
    return QueueFilter(
        queue=query.get("queue") or None,
        status=query.get("status") or None,
        brand=query.get("brand") or None,
        product=query.get("product") or None,
        team=query.get("team") or None,
        limit=_limit(query.get("limit"), default_limit),
        cursor=query.get("cursor") or None,
        threads=query.get("threads", "true").lower() not in ("0", "false", "no"),
    )


def list_beacons(app: App, req: Request) -> Response:
    f = query_filter(req.query)
    with app.store() as store:
        page = list_entries(store, f)
    return Response.json({"beacons": [e.to_json() for e in page.entries], "next_cursor": page.next_cursor})


def get_beacon(app: App, req: Request) -> Response:
    beacon_id = int(req.params["id"])
    with app.store() as store:
        detail = get_detail(store, beacon_id)
    if detail is None:
        raise HTTPError(404, "not_found", f"no beacon with id {beacon_id}")
    return Response.json(detail.to_json())


def act(app: App, req: Request) -> Response:
    """POST /api/beacons/{id}/claim|resolve|dismiss|reroute|note."""
    beacon_id, action = int(req.params["id"]), req.params["action"]
    data = req.data()
    app.require_csrf(req, data)
    assert req.identity is not None
    by: Any = req.identity.name or data.get("by")
    note = data.get("note") or None
    with app.store() as store:
        if action == "claim":
            result: dict[str, Any] = {
                "beacon": claim(store, beacon_id, by, assignee=data.get("assignee") or None).to_json()
            }
        elif action == "resolve":
            result = {"beacon": resolve(store, beacon_id, by, note=note).to_json()}
        elif action == "dismiss":
            result = {"beacon": dismiss(store, beacon_id, by, note=note).to_json()}
        elif action == "reroute":
            result = {"beacon": reroute(store, beacon_id, by, str(data.get("queue") or ""), note=note).to_json()}
        elif action == "note":
            result = {"note": add_note(store, beacon_id, by, data.get("text"))}
        else:
            raise HTTPError(
                404, "not_found", f"unknown action {action!r}; use claim, resolve, dismiss, reroute or note"
            )
    if req.is_form and req.wants_html:
        return Response.redirect(safe_next(data.get("next"), f"/beacons/{beacon_id}"))
    return Response.json(result, 201 if action == "note" else 200)


def get_version(app: App, req: Request) -> Response:
    with app.store() as store:
        return Response.json({"version": version(store)})


def healthz(app: App, req: Request) -> Response:
    """Liveness and database check; open to all (load balancers carry no token), so it names the backend
    and whether it answers, never the database URL (which may hold a password) or the error."""
    backend = "postgresql" if is_postgres_url(app.config.database) else "sqlite"
    try:
        with app.store() as store:
            store.ping()
    except Exception:
        return Response.json({"status": "error", "database": {"backend": backend, "ok": False}}, 503)
    return Response.json({"status": "ok", "database": {"backend": backend, "ok": True}})


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(app: App, req: Request) -> Response:
    """Prometheus text format 0.0.4: beacons per queue and status, polls and errors per source, the alert backlog."""
    with app.store() as store:
        rows = metric_counts(store)
    counts = {(q, s): n for q, s, n in rows["beacons"]}
    lines = ["# HELP beacons_beacons Beacons by queue and status.", "# TYPE beacons_beacons gauge"]
    for queue in QUEUES:
        for status in STATUSES:
            lines.append(f'beacons_beacons{{queue="{queue}",status="{status}"}} {counts.get((queue, status), 0)}')
    sources = rows["sources"]
    for name, help_text, kind, col in (
        ("beacons_source_polls_total", "Polls per source.", "counter", 1),
        ("beacons_source_poll_errors_total", "Failed polls per source.", "counter", 2),
        ("beacons_source_consecutive_errors", "Polls failed in a row per source (0 when healthy).", "gauge", 3),
    ):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f'{name}{{source="{_label(r[0])}"}} {r[col]}' for r in sources]
    lines += [
        "# HELP beacons_alert_backlog Alerts not yet sent, by channel and status.",
        "# TYPE beacons_alert_backlog gauge",
    ]
    lines += [f'beacons_alert_backlog{{channel="{_label(c)}",status="{_label(s)}"}} {n}' for c, s, n in rows["outbox"]]
    return Response(200, ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4; charset=utf-8")


def openapi(app: App, req: Request) -> Response:
    from beacons.web.openapi import document

    return Response.json(document(app.serve.public_url))


ROUTES = [
    ("GET", "/api/beacons", list_beacons, "api"),
    ("GET", "/api/beacons/{id}", get_beacon, "api"),
    ("POST", "/api/beacons/{id}/{action}", act, "api"),
    ("GET", "/api/version", get_version, "api"),
    ("GET", "/openapi.json", openapi, "api"),
    ("GET", "/metrics", metrics, "api"),
    ("GET", "/healthz", healthz, "public"),
]
ACTION_NAMES = ("claim", "resolve", "dismiss", "reroute", "note")
STATUS_FILTERS = (*STATUSES, "open")
