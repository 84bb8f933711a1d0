"""The JSON API, ``/healthz`` and Prometheus ``/metrics``; described in ``openapi.py``.

Bodies of ``POST /api/beacons/{id}/{action}`` are JSON objects, or urlencoded
forms when the page posts without JavaScript (then the answer is a redirect
back to the page). Who acts: the signed-in person for the page, else ``by`` in
the body.

Who acts (issue 13): a person (personal token or password sign-in) always acts
as themself; a ``by`` naming someone else is refused with 403, and only a lead
or admin may claim for someone else, through ``assignee``. Service tokens and a
sign-in with one name the actor with ``by``, as before users existed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from beacons.errors import BeaconNotFound, UserExists, UserNotFound
from beacons.feedback import relabel
from beacons.log import get_logger
from beacons.models import QUEUES, STATUSES, Beacon
from beacons.queue import (
    QueueFilter,
    Sla,
    add_note,
    bulk,
    check_intent,
    check_sentiment,
    claim,
    clean_ids,
    dismiss,
    get_detail,
    list_entries,
    metric_counts,
    parse_when,
    reassign,
    reopen,
    reroute,
    reroute_options,
    resolve,
    undo,
    version,
)
from beacons.queue.replies import reply as use_reply
from beacons.storage import Storage, is_postgres_url
from beacons.storage.users import User
from beacons.users import at_least, clean_role, clean_user_name
from beacons.web.auth import Identity
from beacons.web.messages import HTTPError, Request, Response, safe_next

if TYPE_CHECKING:
    from beacons.storage import Storage
    from beacons.web.app import App

MAX_LIMIT = 200
log = get_logger("beacons.web")


def _limit(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    # ASCII digits only: str.isdigit() and int() also take "²" and "٣" (issue 10), and int() refuses 5,000 digits.
    if not (value.isascii() and value.isdigit() and len(value) <= 4) or not 1 <= int(value) <= MAX_LIMIT:
        raise HTTPError(400, "invalid", f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {value[:20]!r}")
    return int(value)


LIST_PARAMS = (
    "queue",
    "status",
    "brand",
    "product",
    "team",
    "limit",
    "cursor",
    "threads",
    # issue 13 §2: the inbox's search and filters
    "q",
    "assignee",
    "since",
    "until",
    "sentiment",
    "intent",
    "source",
)


def query_filter(
    query: dict[str, str],
    *,
    default_limit: int = 50,
    identity: Identity | None = None,
    now: datetime | None = None,
    sla: Sla | None = None,
) -> QueueFilter:
    """The list filter of ``GET /api/beacons`` (and the page): an unknown parameter is a 400 naming it."""
    for key in query:
        if key not in LIST_PARAMS:
            raise HTTPError(400, "invalid", f"{key[:40]}: unknown parameter; known: {', '.join(LIST_PARAMS)}")
    when = now or datetime.now(UTC)
    since, until = query.get("since"), query.get("until")
    return QueueFilter(
        queue=query.get("queue") or None,
        status=query.get("status") or None,
        brand=query.get("brand") or None,
        product=query.get("product") or None,
        team=query.get("team") or None,
        limit=_limit(query.get("limit"), default_limit),
        cursor=query.get("cursor") or None,
        threads=query.get("threads", "true").lower() not in ("0", "false", "no"),
        q=query.get("q") or None,
        assignee=_assignee(query.get("assignee") or None, identity),
        since=parse_when(since, "since", when) if since else None,
        until=parse_when(until, "until", when, end=True) if until else None,
        sentiment=check_sentiment(query["sentiment"]) if query.get("sentiment") else None,
        intent=check_intent(query["intent"]) if query.get("intent") else None,
        source=query.get("source") or None,
        sla=sla,
        now=now,
    )


def _assignee(value: str | None, identity: Identity | None) -> str | None:
    """``me`` is whoever asks: the signed-in person, or the name a service token's sign-in gave."""
    if value != "me":
        return value
    if identity is None or not identity.name:
        raise HTTPError(400, "invalid", "assignee: me needs a signed-in person or a personal token; give a name")
    return identity.name


def list_beacons(app: App, req: Request) -> Response:
    f = query_filter(req.query, identity=req.identity, now=app.now(), sla=app.sla)
    with app.store() as store:
        page = list_entries(store, f)
    return Response.json({"beacons": [e.to_json() for e in page.entries], "next_cursor": page.next_cursor})


def get_beacon(app: App, req: Request) -> Response:
    beacon_id = int(req.params["id"])
    with app.store() as store:
        detail = get_detail(store, beacon_id, now=app.now(), sla=app.sla)
    if detail is None:
        raise HTTPError(404, "not_found", f"no beacon with id {beacon_id}")
    return Response.json(detail.to_json())


def act(app: App, req: Request) -> Response:
    """POST /api/beacons/{id}/claim|resolve|dismiss|reroute|reopen|reassign|note|label|undo|reply."""
    beacon_id, action = int(req.params["id"]), req.params["action"]
    data = req.data()
    app.require_csrf(req, data)
    by = actor(req.identity, data)
    note = data.get("note") or None
    with app.store() as store:
        if action == "claim":
            assignee = check_assignee(store, req.identity, data.get("assignee") or None)
            result: dict[str, Any] = {"beacon": claim(store, beacon_id, by, assignee=assignee).to_json()}
        elif action == "resolve":
            result = {"beacon": resolve(store, beacon_id, by, note=note).to_json()}
        elif action == "dismiss":
            result = {"beacon": dismiss(store, beacon_id, by, note=note).to_json()}
        elif action == "reroute":
            queue = str(data.get("queue") or "")
            result = {"beacon": reroute(store, beacon_id, by, queue, note=note, **_reroute_kw(app)).to_json()}
        elif action == "reopen":
            result = {"beacon": reopen(store, beacon_id, by, note=note).to_json()}
        elif action == "reassign":
            result = {"beacon": _reassign(store, req.identity, beacon_id, by, data.get("assignee"), note).to_json()}
        elif action == "note":
            result = {"note": add_note(store, beacon_id, by, data.get("text"))}
        elif action == "undo":
            result = {"beacon": undo(store, beacon_id, by).to_json()}
        elif action == "reply":
            template = data.get("template")
            text = use_reply(store, app.config.replies, beacon_id, by, template)
            result = {"beacon_id": beacon_id, "template": template, "text": text}
        elif action == "label":
            sentiment, intents = _labels(req, data)
            if req.is_form:
                sentiment, intents = _changed(store, beacon_id, sentiment, intents)
            result = {"beacon": relabel(store, beacon_id, by, sentiment=sentiment, intents=intents).to_json()}
        else:
            raise HTTPError(
                404,
                "not_found",
                f"unknown action {action!r}; use claim, resolve, dismiss, reroute, reopen, reassign, note, label,"
                " undo or reply",
            )
    if req.is_form and req.wants_html:
        return Response.redirect(safe_next(data.get("next"), f"/beacons/{beacon_id}"))
    return Response.json(result, 201 if action in ("note", "reply") else 200)


def _reroute_kw(app: App) -> dict[str, Any]:
    """The routing rules and alert channels a re-route redoes routing with, built once per config."""
    cached: tuple[Any, dict[str, Any]] | None = getattr(app, "_reroute_kw", None)
    if cached is None or cached[0] is not app.config:  # a reloaded config brings its own rules
        cached = (app.config, reroute_options(app.config))
        app._reroute_kw = cached  # type: ignore[attr-defined]
    return cached[1]


def _reassign(
    store: Storage, identity: Identity | None, beacon_id: int, by: str, assignee: Any, note: str | None
) -> Beacon:
    """A lead or admin reassigns any claimed beacon; an agent only the one they hold, and only to an active user.

    Service tokens name anyone, as they do when claiming. The holder's check is repeated inside the
    ``UPDATE`` (``holder=``), so it cannot pass while someone else reassigns the beacon at the same moment.
    """
    assert identity is not None
    if not isinstance(assignee, str) or not assignee.strip():
        raise HTTPError(400, "invalid", 'assignee: is required: the name of the person to give it to, e.g. "bob"')
    holder: str | None = None
    if identity.is_user:
        user = store.get_user(assignee.strip())
        if user is None or not user.is_active:
            raise HTTPError(400, "invalid", f"assignee: no active user named {assignee.strip()[:100]!r}")
        if not at_least(identity.role, "lead"):
            current = store.get_beacon(beacon_id)
            if current is None:
                raise BeaconNotFound(beacon_id)
            if current.status == "claimed" and current.assignee != identity.name:
                raise HTTPError(
                    403,
                    "forbidden",
                    f"reassign: beacon {beacon_id} is held by {current.assignee}; only its holder, a lead or an admin"
                    f" may give it to someone else ({identity.name} is an agent)",
                )
            holder = identity.name
    return reassign(store, beacon_id, by, assignee, holder=holder, note=note)


def bulk_action(app: App, req: Request) -> Response:
    """POST /api/beacons/bulk {"ids": [...], "action": "claim|resolve|dismiss|reroute", ...}: a result per id.

    One failure does not undo the others. Only a lead or admin re-routes in bulk (service tokens act as
    before users existed). From the page's form (no JavaScript) the answer is a redirect back, or a page
    listing what failed.
    """
    data = req.data()
    app.require_csrf(req, data)
    by = actor(req.identity, data)
    action = data.get("action")
    ids = clean_ids(req.form_values("ids") if req.is_form else data.get("ids"))
    assert req.identity is not None
    if action == "reroute" and req.identity.is_user and not at_least(req.identity.role, "lead"):
        raise HTTPError(
            403, "forbidden", f"reroute in bulk needs the lead role ({req.identity.name} is {req.identity.role})"
        )
    with app.store() as store:
        assignee = check_assignee(store, req.identity, data.get("assignee") or None) if action == "claim" else None
        outcomes = bulk(
            store,
            ids,
            str(action or ""),
            by,
            queue=data.get("queue") or None,
            note=data.get("note") or None,
            assignee=assignee,
            **(_reroute_kw(app) if action == "reroute" else {}),
        )
    done = sum(o.ok for o in outcomes)
    log.info("queue.bulk", action=action, by=by, done=done, failed=len(outcomes) - done)
    if req.is_form and req.wants_html:
        back = safe_next(data.get("next"), "/")
        failed = [o for o in outcomes if not o.ok]
        if not failed:
            return Response.redirect(back)
        return app.pages.render(
            req,
            "message.html",
            409,
            title=f"{done} of {len(outcomes)} done",
            message="; ".join(f"#{o.id}: {(o.error or {}).get('message')}" for o in failed),
        )
    return Response.json({"results": [o.to_json() for o in outcomes], "done": done, "failed": len(outcomes) - done})


def _labels(req: Request, data: dict[str, Any]) -> tuple[str | None, list[str] | None]:
    """``sentiment`` and ``intents`` of a label correction, from JSON or from the page's form (issue 12).

    In the form, ``intents`` is a hidden empty field plus one checkbox per intent, so a form with every
    box cleared still says "none of the intents". The values themselves are checked by ``relabel``.
    """
    if "queue" in data:
        raise HTTPError(400, "invalid", "queue: change the queue with POST /api/beacons/{id}/reroute")
    sentiment = data.get("sentiment")
    if sentiment is not None and not isinstance(sentiment, str):
        raise HTTPError(400, "invalid", "sentiment: expected one of negative, neutral, positive")
    intents: Any = data.get("intents")
    if req.is_form:
        intents = [v for v in req.form_values("intents") if v] if "intents" in data else None
    elif intents is not None and not (isinstance(intents, list) and all(isinstance(i, str) for i in intents)):
        raise HTTPError(400, "invalid", 'intents: expected a list of intent names, e.g. ["bug_outage"]')
    if not sentiment and intents is None:
        raise HTTPError(400, "invalid", "label: give sentiment and/or intents")
    return sentiment or None, intents


def _changed(
    store: Storage, beacon_id: int, sentiment: str | None, intents: list[str] | None
) -> tuple[str | None, list[str] | None]:
    """What the page's form actually changes: a field left as the model had it is not a person's label."""
    current = store.get_beacon(beacon_id)
    if current is None:
        raise BeaconNotFound(beacon_id)
    if sentiment == current.sentiment:
        sentiment = None
    if intents is not None and set(intents) == {k for k, v in current.intents.items() if v >= 0.5}:
        intents = None
    if sentiment is None and intents is None:
        raise HTTPError(400, "invalid", "label: nothing changed; pick another sentiment or other intents")
    return sentiment, intents


def actor(identity: Identity | None, data: dict[str, Any]) -> Any:
    """The name the history records: the person, or for service callers the ``by`` they give."""
    assert identity is not None
    given = data.get("by")
    if not identity.is_user:
        return identity.name or given
    if given not in (None, "") and given != identity.name:
        if at_least(identity.role, "lead"):
            hint = 'to give a beacon to someone, claim it with "assignee"'
        else:
            hint = "an agent acts only as themself"
        raise HTTPError(403, "forbidden", f"by: you are signed in as {identity.name}, not {str(given)[:100]!r}; {hint}")
    return identity.name


def check_assignee(store: Storage, identity: Identity | None, assignee: Any) -> Any:
    """A person may claim for someone else only as a lead or admin, and only for an active user."""
    assert identity is not None
    if not identity.is_user or assignee is None or assignee == identity.name:
        return assignee
    if not at_least(identity.role, "lead"):
        raise HTTPError(
            403, "forbidden", f"assignee: only a lead or admin may claim for someone else ({identity.name} is an agent)"
        )
    user = store.get_user(str(assignee)) if isinstance(assignee, str) else None
    if user is None or not user.is_active:
        raise HTTPError(400, "invalid", f"assignee: no active user named {str(assignee)[:100]!r}")
    return assignee


def me(app: App, req: Request) -> Response:
    """GET /api/me: who the server takes the caller for."""
    assert req.identity is not None
    ident = req.identity
    via = {"bearer": "service_token", "token": "personal_token"}.get(ident.via, ident.via)
    return Response.json({"name": ident.name, "role": ident.role, "via": via})


def _user_json(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "created_at": user.created_at,
        "disabled_at": user.disabled_at,
        "active": user.is_active,
        "has_password": user.has_password,
        "tokens": user.tokens,
        "sessions": user.sessions,
    }


def list_users(app: App, req: Request) -> Response:
    app.require_role(req, "admin", "listing users")
    with app.store() as store:
        return Response.json({"users": [_user_json(u) for u in store.list_users()]})


def add_user(app: App, req: Request) -> Response:
    """POST /api/users {"name", "role"?}: a new user without password or token (the CLI gives those)."""
    data = req.data()
    app.require_csrf(req, data)
    app.require_role(req, "admin", "adding a user")
    name, role = clean_user_name(data.get("name")), clean_role(data.get("role") or "agent")
    with app.store() as store:
        try:
            user = store.add_user(name, role, now=datetime.fromtimestamp(app.clock(), UTC))
        except UserExists as exc:
            raise HTTPError(409, "conflict", str(exc)) from None
    log.info("user.added", user=name, role=role, by=req.identity.name if req.identity else None)
    return Response.json({"user": _user_json(user)}, 201)


def disable_user(app: App, req: Request) -> Response:
    """POST /api/users/{name}/disable: the user's tokens and sessions stop working on the next request."""
    data = req.data()
    app.require_csrf(req, data)
    app.require_role(req, "admin", "disabling a user")
    name = req.params["name"]
    with app.store() as store:
        try:
            store.disable_user(name, now=datetime.fromtimestamp(app.clock(), UTC))
        except UserNotFound as exc:
            raise HTTPError(404, "not_found", str(exc)) from None
        user = store.get_user(name)
    assert user is not None
    log.info("user.disabled", user=name, by=req.identity.name if req.identity else None)
    return Response.json({"user": _user_json(user)})


def get_version(app: App, req: Request) -> Response:
    with app.store() as store:
        return Response.json({"version": version(store)})


HEALTH_WAIT = 2.0  # seconds /healthz waits for a database connection before it answers 503


def healthz(app: App, req: Request) -> Response:
    """Liveness and database check; open to all (load balancers carry no token), so it names the backend
    and whether it answers, never the database URL (which may hold a password) or the error."""
    backend = "postgresql" if is_postgres_url(app.config.database) else "sqlite"
    try:
        with app.store() as store:
            store.ping(timeout=HEALTH_WAIT)
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
    ("POST", "/api/beacons/bulk", bulk_action, "api"),
    ("GET", "/api/version", get_version, "api"),
    ("GET", "/api/me", me, "api"),
    ("GET", "/api/users", list_users, "api"),
    ("POST", "/api/users", add_user, "api"),
    ("POST", "/api/users/{name}/disable", disable_user, "api"),
    ("GET", "/openapi.json", openapi, "api"),
    ("GET", "/metrics", metrics, "api"),
    ("GET", "/healthz", healthz, "public"),
]
ACTION_NAMES = ("claim", "resolve", "dismiss", "reroute", "note", "label", "reopen", "reassign", "undo", "reply")
STATUS_FILTERS = (*STATUSES, "open")
