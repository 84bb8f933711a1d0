"""The ASGI application: Starlette routes over the handlers in ``api.py`` and ``page.py``, and the security rules.

Starlette does the HTTP work (routing, 404/405, query strings, cookies,
streaming the body); this module adds what beacons promises on top of it. The
handlers are plain synchronous functions over ``messages.Request`` and ``Response`` (SQLite is synchronous), run in
Starlette's thread pool so a slow query never stalls the event loop, each with
its own database connection (WAL lets readers and the daemon's writer work side
by side; claims stay one guarded ``UPDATE``).

Every response carries a strict Content-Security-Policy (no inline script,
nothing from other origins), ``nosniff`` and ``no-store``. One log line per
request, ``http.request`` (method, path without its query, status, ms); a bug
answers 500 and logs one ``http.error`` with the exception's type and message.
Headers, cookies, query strings and bodies are never logged.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beacons.config import Config
from beacons.errors import ConfigError, Problem, StoreError
from beacons.log import get_logger
from beacons.queue import BeaconNotFound, InvalidInput, TransitionConflict, sla_policy
from beacons.storage import Storage
from beacons.storage.users import Principal
from beacons.users import at_least
from beacons.web.auth import Auth
from beacons.web.config import ServeConfig
from beacons.web.messages import SECURITY_HEADERS, SECURITY_RAW, HTTPError, Request, Response, error, safe_next

__all__ = ["SECURITY_HEADERS", "App", "HTTPError", "Request", "Response", "error", "safe_next"]

log = get_logger("beacons.web")

QUIET_PATHS = ("/healthz", "/metrics", "/api/version", "/static/")
MAX_URL_BYTES = 8 * 1024  # path and query: 414 above
MAX_HEADER_BYTES = 16 * 1024  # all header names and values: 431 above
MAX_ID = 2**63 - 1  # SQLite's INTEGER; a larger id in a path is simply not found

Handler = Callable[["App", Request], Response]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    handler: Handler
    kind: str  # api | page | public
    template: str  # the documented path, e.g. /api/beacons/{id}


def _starlette_path(template: str) -> str:
    """``/api/beacons/{id}`` -> ``/api/beacons/{id:int}`` (ASCII digits only); other names stay plain."""
    return template.replace("{id}", "{id:int}")


class App:
    """The routes, the auth rules and the database path: everything a request needs."""

    def __init__(
        self,
        config: Config,
        serve: ServeConfig | None = None,
        *,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from beacons.web import api, insights, page, sources

        self.config = config
        self.serve = serve or config.serve
        problems = [Problem(f"serve.{k}", m) for k, m in self.serve.validate(require_tokens=True)]
        if problems:
            raise ConfigError(problems, config.path)
        self.clock = clock
        self.sla = sla_policy(config.routing.sla)  # issue 13 §2: waiting beacons marked and sorted up
        self._request = threading.local()  # the request a thread-pool thread is working on
        self.auth = Auth(self.serve, secret, clock=clock)
        self.pages = page.Pages(self)
        self.specs: dict[str, dict[str, RouteSpec]] = {}
        for method, template, handler, kind in [*api.ROUTES, *page.ROUTES, *sources.ROUTES, *insights.ROUTES]:
            self.specs.setdefault(template, {})[method] = RouteSpec(method, handler, kind, template)
        self.asgi: ASGIApp = _Guard(self, self._starlette())

    def now(self) -> datetime:
        """The injected clock as an aware UTC time (what the inbox measures waits against)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    @contextmanager
    def store(self) -> Iterator[Storage]:
        """The database; inside ``handle`` one connection serves the whole request (the session check and the handler)."""
        current: Storage | None = getattr(self._request, "store", None)
        if current is not None:
            yield current
            return
        store = Storage(self.config.database, migrate=False)  # WebServer migrated once at start
        if getattr(self._request, "active", False):
            self._request.store = store  # closed when handle() returns
            yield store
            return
        try:
            yield store
        finally:
            store.close()

    # -- the synchronous part: run in the thread pool, one request at a time per thread ----------------

    def handle(self, spec: RouteSpec, req: Request) -> Response:
        self._request.active = True
        try:
            return self._handle(spec, req)
        finally:
            store = getattr(self._request, "store", None)
            self._request.store, self._request.active = None, False
            if store is not None:
                store.close()

    def _handle(self, spec: RouteSpec, req: Request) -> Response:
        if not self.auth.host_allowed(req.headers.get("host")):
            return error(403, "bad_host", "this server only answers to a loopback host name (see serve.public_url)")
        try:
            req.identity = self.auth.authenticate(req.headers, req.client, req.cookies, self._revoked, self._people)
        except StoreError as exc:  # the revocation list could not be read: refuse rather than guess
            log.error("http.store_error", path=req.path, error=str(exc))
            return error(503, "unavailable", "the database is busy or unavailable; try again")
        if spec.kind != "public" and req.identity is None:
            if spec.kind == "page":
                return self.pages.login(req, status=401)
            resp = error(
                401, "unauthorized", "send Authorization: Bearer <your personal token, or one of serve.tokens>"
            )
            resp.headers.append(("WWW-Authenticate", 'Bearer realm="beacons"'))
            return resp
        resp = self._dispatch(spec, req)
        if resp.status >= 400 and req.is_form and req.wants_html and resp.content_type == "application/json":
            # A button pressed without JavaScript: answer with a readable page and a way back, not JSON.
            message = json.loads(resp.body).get("error", {}).get("message", "")
            return self.pages.render(req, "message.html", resp.status, title="That did not work", message=message)
        return resp

    def _revoked(self, session_id: str) -> bool:
        with self.store() as store:
            return store.session_revoked(session_id)

    def _people(self, kind: str, digest: str, now: datetime) -> Principal | None:
        with self.store() as store:
            if kind == "token":
                return store.user_for_token(digest)
            return store.user_for_session(digest, now=now)

    def require_role(self, req: Request, role: str, what: str) -> None:
        """403 unless the caller is a person with at least ``role`` (service tokens act for no one in particular)."""
        assert req.identity is not None
        if not at_least(req.identity.role, role):
            who = (
                f"{req.identity.name} is {req.identity.role}"
                if req.identity.is_user
                else "this is not a person's sign-in"
            )
            raise HTTPError(403, "forbidden", f"{what} needs the {role} role ({who})")

    def _dispatch(self, spec: RouteSpec, req: Request) -> Response:
        """Run the handler; expected errors become JSON error responses."""
        try:
            return spec.handler(self, req)
        except HTTPError as exc:
            return error(exc.status, exc.code, exc.message)
        except InvalidInput as exc:
            return error(400, "invalid", str(exc))
        except BeaconNotFound as exc:
            return error(404, "not_found", str(exc))
        except TransitionConflict as exc:
            return Response.json(
                {"error": {"code": "conflict", "message": str(exc), "status": exc.status, "assignee": exc.assignee}},
                409,
            )
        except StoreError as exc:
            log.error("http.store_error", path=req.path, error=str(exc))
            return error(503, "unavailable", "the database is busy or unavailable; try again")

    def require_csrf(self, req: Request, form: dict[str, Any]) -> None:
        assert req.identity is not None
        token = form.get("csrf") if isinstance(form.get("csrf"), str) else None
        if not self.auth.csrf_ok(req.identity, req.headers, token):
            raise HTTPError(403, "csrf", "missing or wrong CSRF token, or a request from another site; reload the page")

    # -- the asynchronous part: Starlette ---------------------------------------------------------------

    def _starlette(self) -> Starlette:
        routes = [
            Route(_starlette_path(template), self._endpoint(specs), methods=list(specs))
            for template, specs in self.specs.items()
        ]
        return Starlette(
            routes=routes,
            # Exception: what Starlette's ServerErrorMiddleware answers to a bug (logged there as http.error).
            exception_handlers={HTTPException: self._http_exception, Exception: _internal_error},
        )

    def _endpoint(self, specs: dict[str, RouteSpec]) -> Callable[[StarletteRequest], Any]:
        async def endpoint(request: StarletteRequest) -> StarletteResponse:
            spec = specs.get(request.method) or specs["GET"]  # HEAD is GET without the body
            params = {k: str(v) for k, v in request.path_params.items()}
            if int(request.path_params.get("id", 0)) > MAX_ID:
                return error(404, "not_found", f"no beacon with id {params['id']}").to_starlette()
            body = await self._read_body(request)
            if isinstance(body, Response):
                return body.to_starlette()
            req = Request(
                request.method,
                request.url.path,
                {k: v for k, v in request.query_params.items() if v},
                {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]},
                body,
                request.client.host if request.client else "",
                params,
                cookies=dict(request.cookies),
                scheme=request.url.scheme,
            )
            return (await run_in_threadpool(self.handle, spec, req)).to_starlette()

        return endpoint

    async def _read_body(self, request: StarletteRequest) -> bytes | Response:
        """The body, at most ``serve.max_body`` bytes, sent within ``serve.client_timeout``."""
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(self.serve.client_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.serve.max_body:
                        return _too_large(self.serve)
                    chunks.append(chunk)
        except TimeoutError:
            resp = error(
                408, "timeout", f"the body did not arrive within serve.client_timeout ({self.serve.client_timeout:g}s)"
            )
            resp.headers.append(("Connection", "close"))
            return resp
        except ClientDisconnect:
            return error(400, "disconnected", "the client went away before sending its body")
        return b"".join(chunks)

    async def _http_exception(self, request: StarletteRequest, exc: Exception) -> StarletteResponse:
        """Starlette's 404 and 405 (and any other HTTPException) in our JSON shape, or the page's 404."""
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = sorted(m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip() != "HEAD")
            methods = ", ".join(allowed)
            resp = error(405, "method_not_allowed", f"{request.method} is not allowed here; use {methods}")
            resp.headers.append(("Allow", methods))
            return resp.to_starlette()
        if exc.status_code == 404:
            accept = request.headers.get("accept", "")
            if "text/html" in accept and "application/json" not in accept:
                req = Request(request.method, request.url.path, {}, {"accept": accept}, b"", "")
                return self.pages.not_found(req).to_starlette()
            return error(404, "not_found", f"no such path {request.url.path}").to_starlette()
        return error(exc.status_code, "http", str(exc.detail)).to_starlette()


def _too_large(serve: ServeConfig) -> Response:
    resp = error(413, "too_large", f"the body is larger than serve.max_body ({serve.max_body} bytes)")
    resp.headers.append(("Connection", "close"))  # the rest of the body is never read
    return resp


def _where(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame: where a bug is, without its locals."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"{last.filename.rsplit('/beacons/', 1)[-1]}:{last.lineno} in {last.name}"


_STARTED = "beacons.started"  # scope keys: when the request arrived, and that its bug is logged
_LOGGED = "beacons.error_logged"


def _log_error(scope: Scope, exc: BaseException) -> None:
    """The one ``http.error`` line of a bug: where and what, never the request's headers, query or body."""
    scope[_LOGGED] = True
    log.error(
        "http.error",
        method=str(scope["method"]),
        path=str(scope["path"]),
        status=500,
        error=f"{type(exc).__name__}: {exc}"[:500],
        where=_where(exc),
        ms=round((time.monotonic() - scope.get(_STARTED, time.monotonic())) * 1000, 1),
    )


async def _internal_error(request: StarletteRequest, exc: Exception) -> StarletteResponse:
    """Starlette's answer to a bug: logged before the 500 leaves, so the log line is there when the client reads."""
    _log_error(request.scope, exc)
    return error(500, "internal", "internal error; see the server log").to_starlette()


def _log_request(scope: Scope, status: int) -> None:
    method, path = str(scope["method"]), str(scope["path"])
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "ms": round((time.monotonic() - scope[_STARTED]) * 1000, 1),
    }
    if status >= 500:
        log.error("http.request", **fields)
    elif status in (401, 403) or (method != "GET" and status >= 400):
        log.warning("http.request", **fields)
    elif method != "GET":
        log.info("http.request", **fields)
    elif not path.startswith(QUIET_PATHS):
        log.debug("http.request", **fields)


class _Guard:
    """Outermost ASGI layer: refuse what we will not read, add the security headers, log, turn a bug into a 500.

    The ``http.request`` line is written just before the last bytes of the answer, so it is
    in the log by the time the client has the whole response.
    """

    def __init__(self, app: App, inner: ASGIApp) -> None:
        self.app, self.inner = app, inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        scope[_STARTED] = time.monotonic()
        status = 0

        async def send_secured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + SECURITY_RAW}
            elif message["type"] == "http.response.body" and not message.get("more_body") and not scope.get(_LOGGED):
                _log_request(scope, status)
            await send(message)

        try:
            refusal = self._refuse(scope)
            if refusal is not None:
                await refusal.to_starlette()(scope, receive, send_secured)
            else:
                await self.inner(scope, receive, send_secured)
        except Exception as exc:  # the request boundary: a bug answers 500 and is logged, the server goes on
            if not scope.get(_LOGGED):
                _log_error(scope, exc)
            if not status:
                await error(500, "internal", "internal error; see the server log").to_starlette()(
                    scope, receive, send_secured
                )

    def _refuse(self, scope: Scope) -> Response | None:
        """Oversized URLs and headers, chunked bodies and a Content-Length over serve.max_body: answered at once."""
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_URL_BYTES:
            return error(414, "uri_too_long", f"the path and query are longer than {MAX_URL_BYTES} bytes")
        if sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > MAX_HEADER_BYTES:
            resp = error(431, "headers_too_large", f"the request headers are larger than {MAX_HEADER_BYTES} bytes")
            resp.headers.append(("Connection", "close"))
            return resp
        headers = dict(scope["headers"])
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            resp = error(411, "length_required", "send a Content-Length; chunked bodies are not accepted")
            resp.headers.append(("Connection", "close"))
            return resp
        length = headers.get(b"content-length")
        # h11 has already refused a Content-Length that is not ASCII digits with a 400.
        if length is not None and length.isdigit() and int(length) > self.app.serve.max_body:
            return _too_large(self.app.serve)
        return None
