"""The team's web page: the support and advocacy queues side by side, one beacon in full, sign-in.

Server-rendered with Jinja2 and autoescaping on for every template, so post
text, titles and author names always reach the browser as text. Links to the
original post are only rendered for http(s) URLs and carry
``rel="noopener noreferrer"``. ``static/page.js`` (no inline script: the CSP
forbids it) refreshes the board when ``/api/version`` changes and posts the
buttons with the page's CSRF token; without JavaScript the buttons still work
as plain forms.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import jinja2

from beacons import users
from beacons.errors import StoreError
from beacons.log import get_logger
from beacons.nlp.labels import INTENTS, SENTIMENTS
from beacons.queue import (
    Entry,
    InvalidInput,
    QueueFilter,
    check_intent,
    check_sentiment,
    clean_name,
    facets,
    get_detail,
    list_entries,
    parse_when,
    version,
    waited_text,
    why_routed,
)
from beacons.queue.replies import rendered as rendered_replies
from beacons.storage.undo import UNDOABLE
from beacons.text import title_and_body
from beacons.web.api import STATUS_FILTERS
from beacons.web.auth import USER_SESSION_PREFIX
from beacons.web.messages import HTTPError, Request, Response, safe_next

if TYPE_CHECKING:
    from beacons.web.app import App

log = get_logger("beacons.web")
EXCERPT_CHARS = 320
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) with a host, else None (no javascript:, data: or relative links from posts)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def full_text(title: str, text: str) -> tuple[str, int]:
    """``Mention.full_text`` and where the body starts in it (match spans are offsets into it)."""
    return title_and_body(title, text)


def segments(text: str, spans: tuple[tuple[int, int], ...], start: int, end: int) -> list[tuple[str, bool]]:
    """``text[start:end]`` cut into (piece, is_match) pieces for highlighting."""
    out: list[tuple[str, bool]] = []
    pos = start
    for s, e in sorted(spans):
        s, e = max(s, pos), min(e, end)
        if s >= e:
            continue
        if s > pos:
            out.append((text[pos:s], False))
        out.append((text[s:e], True))
        pos = e
    if pos < end:
        out.append((text[pos:end], False))
    return out


def excerpt(entry: Entry, limit: int = EXCERPT_CHARS) -> dict[str, Any]:
    """The title and a window of the body around the first brand match, both as highlight segments."""
    b = entry.beacon
    whole, body_at = full_text(b.title, b.text)
    # The title is at the start of the matched text: prepended to the body, or the body starts with it.
    title_end = len(b.title) if b.title and whole.startswith(b.title) else 0
    title = segments(whole, entry.spans, 0, title_end) if title_end else []
    body_spans = [s for s in entry.spans if s[0] >= body_at]
    start = body_at
    if body_spans and body_spans[0][0] - body_at > limit // 2:
        start = max(body_at, body_spans[0][0] - limit // 3)
        space = whole.find(" ", start, body_spans[0][0])
        start = space + 1 if space != -1 else start
    end = min(len(whole), start + limit)
    if end < len(whole):
        space = whole.rfind(" ", start + limit // 2, end)
        end = space if space != -1 else end
    return {
        "title": title or ([(b.title, False)] if b.title else []),
        "body": segments(whole, entry.spans, start, end),
        "before": start > body_at,
        "after": end < len(whole),
    }


def when_text(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


@dataclass(frozen=True, slots=True)
class Column:
    queue: str
    entries: list[Entry]
    more: str | None  # link to the next page of this queue
    counts: dict[str, int]


class Pages:
    def __init__(self, app: App) -> None:
        self.app = app
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("beacons.web", "templates"),
            autoescape=True,  # every template, whatever its name
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(safe_url=safe_url, excerpt=excerpt, when=when_text, waited=waited_text, why=why_routed)
        # Saved replies filled in for a card, from the config in use (a reloaded config brings its own).
        self.env.filters["replies"] = lambda beacon: rendered_replies(self.app.config.replies, beacon)
        self.static = {
            p.name: p.read_bytes() for p in resources.files("beacons.web").joinpath("static").iterdir() if p.is_file()
        }
        self.env.globals["asset"] = lambda name: (
            f"/static/{name}?v={hashlib.sha256(self.static[name]).hexdigest()[:12]}"
        )

    def render(self, req: Request, template: str, status: int = 200, **context: Any) -> Response:
        identity = req.identity
        context.setdefault("me", identity.name if identity else None)
        context.setdefault(
            "is_lead", identity is not None and (not identity.is_user or users.at_least(identity.role, "lead"))
        )
        context.setdefault("csrf", self.app.auth.csrf_token(identity) if identity else "")
        context.setdefault("signed_in", identity is not None and identity.via == "session")
        context.setdefault("refresh", int(self.app.serve.refresh))
        return Response.html(self.env.get_template(template).render(**context), status)

    def login(self, req: Request, *, status: int = 200, message: str | None = None) -> Response:
        next_path = safe_next(
            req.query.get("next") or (req.path if req.method == "GET" and req.path != "/login" else None)
        )
        return self.render(
            req,
            "login.html",
            status,
            needs_token=self.app.auth.needs_token,
            token_open=self._no_users(),
            message=message,
            next=next_path,
        )

    def _no_users(self) -> bool:
        """Before the first user is added, the service-token sign-in is the one shown open."""
        try:
            with self.app.store() as store:
                return store.count_users() == 0
        except StoreError:
            return True

    def not_found(self, req: Request) -> Response:
        return self.render(req, "message.html", 404, title="Not found", message=f"There is nothing at {req.path}.")


def _needs_name(req: Request) -> Response | None:
    """Loopback users without a session are asked for a name first, so the history says who did what."""
    if req.identity is not None and req.identity.via == "loopback":
        return Response.redirect(
            "/login?" + urlencode({"next": req.path + ("?" + urlencode(req.query) if req.query else "")})
        )
    return None


# The inbox's views (issue 13 §2): (name, label, status by default, queues shown).
VIEWS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("mine", "Mine", "open", ("support", "advocacy")),
    ("unassigned", "Unassigned", "open", ("support", "advocacy")),
    ("open", "All open", "open", ("support", "advocacy")),
    ("resolved", "Resolved", "resolved", ("support", "advocacy")),
    ("none", "Not queued", "open", ("none",)),
)
SEARCH_KEYS = ("q", "since", "until", "sentiment", "intent", "source", "assignee")


def _view(q: dict[str, str]) -> tuple[str, str, tuple[str, ...]]:
    """The view asked for (``/?queue=none`` is the Not queued view), its status and its queues."""
    name = q.get("view") or ("none" if q.get("queue") == "none" else "open")
    for view, _label, status, queues in VIEWS:
        if view == name:
            return view, status, queues
    raise HTTPError(400, "invalid", f"view: expected one of {', '.join(v[0] for v in VIEWS)}; got {name[:40]!r}")


def _inbox_filter(app: App, req: Request, view: str, status: str) -> QueueFilter:
    """The filters of the form, as one QueueFilter without queue or paging (the columns add those)."""
    q, now = req.query, app.now()
    me = req.identity.name if req.identity else None
    assignee = q.get("assignee") or None
    if view == "mine" or assignee == "me":
        if not me:
            raise HTTPError(400, "invalid", "assignee: Mine needs a signed-in name; sign in first")
        assignee = me
    since, until = q.get("since"), q.get("until")
    return QueueFilter(
        status=None if status == "all" else status,
        brand=q.get("brand") or None,
        product=q.get("product") or None,
        team=q.get("team") or None,
        limit=app.serve.page_size,
        q=q.get("q") or None,
        assignee=assignee,
        unassigned=view == "unassigned",
        since=parse_when(since, "since", now) if since else None,
        until=parse_when(until, "until", now, end=True) if until else None,
        sentiment=check_sentiment(q["sentiment"]) if q.get("sentiment") else None,
        intent=check_intent(q["intent"]) if q.get("intent") else None,
        source=q.get("source") or None,
        sla=app.sla,
        now=now,
    )


def board(app: App, req: Request) -> Response:
    """GET /: the view's queues side by side, searched and filtered; ?queue=support&cursor=... pages through one."""
    if (redirect := _needs_name(req)) is not None:
        return redirect
    q = req.query
    view, view_status, queues = _view(q)
    status = q.get("status", view_status)
    if status not in (*STATUS_FILTERS, "all"):
        raise HTTPError(400, "invalid", f"status: expected one of {', '.join(STATUS_FILTERS)}, all")
    filters = {key: q.get(key, "") for key in ("brand", "product", "team", *SEARCH_KEYS)}
    filters["status"] = status
    base = _inbox_filter(app, req, view, status)
    only = q.get("queue") if q.get("queue") in queues and len(queues) > 1 else None
    kept = {k: v for k, v in filters.items() if v and not (k == "status" and v == view_status)}
    if view != "open":
        kept["view"] = view
    columns = []
    with app.store() as store:
        counts = store.counts(base)  # the column counts follow the filters, not the whole database
        for queue in [only] if only else queues:
            f = replace(base, queue=queue, cursor=q.get("cursor") if only or len(queues) == 1 else None)
            page = list_entries(store, f)
            more = "/?" + urlencode({**kept, "queue": queue, "cursor": page.next_cursor}) if page.next_cursor else None
            per = {s: counts.get(f"{queue}/{s}", 0) for s in ("new", "claimed", "resolved", "dismissed")}
            columns.append(Column(queue, page.entries, more, per))
        options, current = facets(store), version(store)
    here = req.path + ("?" + urlencode(q) if q else "")
    views = [
        (name, label, "/?" + urlencode({k: v for k, v in {**kept, "view": name}.items() if k != "status"}))
        for name, label, _s, _q in VIEWS
    ]
    return app.pages.render(
        req,
        "board.html",
        columns=columns,
        filters=filters,
        options=options,
        statuses=(*STATUS_FILTERS, "all"),
        sentiments=SENTIMENTS,
        intents=INTENTS,
        only=only,
        view=view,
        views=views,
        version=current,
        here=here,
    )


def beacon_page(app: App, req: Request) -> Response:
    """GET /beacons/{id}: one beacon with its notes, history and thread (alerts link here)."""
    if (redirect := _needs_name(req)) is not None:
        return redirect
    beacon_id = int(req.params["id"])
    with app.store() as store:
        detail = get_detail(store, beacon_id, now=app.now(), sla=app.sla)
        current = version(store)
        people = [u.name for u in store.list_users() if u.is_active]  # whom a claimed beacon can be given to
        last = store.last_change(beacon_id)
    me = req.identity.name if req.identity else None
    # The Undo button without JavaScript (issue 13 §3): the newest change is the signed-in person's own.
    undoable = last["action"] if last and last["actor"] == me and last["action"] in UNDOABLE else None
    if detail is None:
        return app.pages.render(req, "message.html", 404, title="Not found", message=f"There is no beacon {beacon_id}.")
    return app.pages.render(
        req,
        "beacon.html",
        d=detail,
        entry=detail.entry,
        version=current,
        here=req.path,
        sentiments=SENTIMENTS,
        intents=INTENTS,
        people=people,
        undoable=undoable,
    )


def login_form(app: App, req: Request) -> Response:
    return app.pages.login(req)


def login(app: App, req: Request) -> Response:
    """POST /login: name and password (a user), or name and a service token; then the cookie, and back."""
    form = req.data()
    if not app.auth.same_site(req.headers):
        raise HTTPError(403, "csrf", "sign-in from another site is not accepted")
    req.query["next"] = str(form.get("next") or "/")
    try:
        name = clean_name(form.get("name"), "name")
    except InvalidInput as exc:
        return app.pages.login(req, status=400, message=str(exc))
    if not app.auth.needs_token and (req.identity is None or req.identity.via in ("bearer", "token")):
        # The loopback rule holds here too: through a proxy or by public_url's host, nobody signs in without a token.
        return app.pages.login(
            req, status=401, message="Without tokens (auth: none-on-loopback) you can only sign in on this machine."
        )
    password = form.get("password")
    if isinstance(password, str) and password:
        return _password_login(app, req, name, password, str(form.get("next") or "/"))
    with app.store() as store:
        if store.get_user(name) is not None:
            return app.pages.login(
                req, status=401, message=f"{name} is a user of this server: sign in with your password."
            )
    cookie = app.auth.make_session(name, str(form.get("token") or ""), loopback=req.identity is not None)
    if cookie is None:
        message = "Enter your password, or a service token (one of serve.tokens)."
        if form.get("token"):
            message = "That token is not one of serve.tokens."
        return app.pages.login(req, status=401, message=message)
    return _signed_in(app, req, cookie, str(form.get("next") or "/"))


def _signed_in(app: App, req: Request, cookie: str, next_path: str) -> Response:
    resp = Response.redirect(safe_next(next_path))
    resp.headers.append(("Set-Cookie", app.auth.cookie_header(cookie, https=req.scheme == "https")))
    return resp


def _password_login(app: App, req: Request, name: str, password: str, next_path: str) -> Response:
    """Rate-limited per user and per address (beacons.users); a good password starts a session row."""
    now = datetime.fromtimestamp(app.clock(), UTC)
    with app.store() as store:
        refusal = users.login_refusal(store, name, req.client, now=now)
        if refusal is not None:
            log.warning("user.login_limited", user=name, retry_after=refusal.retry_after)
            resp = app.pages.login(req, status=429, message=refusal.message)
            resp.headers.append(("Retry-After", str(refusal.retry_after)))
            return resp
        if not users.verify_password(password, store.password_hash(name)):
            users.record_failure(store, name, req.client, now=now)
            log.warning("user.login_failed", user=name)
            return app.pages.login(req, status=401, message="Wrong name or password.")
        store.clear_login_failures(name)
        session_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=app.serve.session_max_age)
        store.add_user_session(
            name, session_id, users.secret_hash(secret), address=req.client or None, now=now, expires=expires
        )
    log.info("user.signed_in", user=name, session_id=session_id)
    return _signed_in(app, req, USER_SESSION_PREFIX + secret, next_path)


def logout(app: App, req: Request) -> Response:
    """POST /logout: the session id is revoked in the database, so a copy of the cookie stops working too."""
    form = req.data()
    app.require_csrf(req, form)
    assert req.identity is not None
    if req.identity.session is not None:
        now = datetime.fromtimestamp(app.clock(), UTC)
        with app.store() as store:
            if req.identity.is_user and req.identity.name:
                store.revoke_user_sessions(req.identity.name, now=now, session_id=req.identity.session)
            else:
                until = now + timedelta(seconds=app.serve.session_max_age + 60)
                store.revoke_session(req.identity.session, until, now=now)
    resp = Response.redirect("/login")
    resp.headers.append(("Set-Cookie", app.auth.cookie_header("", clear=True, https=req.scheme == "https")))
    return resp


def static(app: App, req: Request) -> Response:
    name = req.params["name"]
    body = app.pages.static.get(name)
    suffix = name[name.rfind(".") :] if "." in name else ""
    if body is None or suffix not in STATIC_TYPES:
        raise HTTPError(404, "not_found", f"no static file {name}")
    return Response(200, body, STATIC_TYPES[suffix], [("Cache-Control", "public, max-age=86400")])


ROUTES = [
    ("GET", "/", board, "page"),
    ("GET", "/beacons/{id}", beacon_page, "page"),
    ("GET", "/login", login_form, "public"),
    ("POST", "/login", login, "public"),
    ("POST", "/logout", logout, "page"),
    ("GET", "/static/{name}", static, "public"),
]
