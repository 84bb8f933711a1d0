"""The HTTP server: standard library ``ThreadingHTTPServer``, a small route table, and the security rules.

One thread per connection and one SQLite connection per request (WAL lets
readers and the daemon's writer work side by side). Every response carries a
strict Content-Security-Policy (no inline script, nothing from other origins),
``nosniff`` and ``no-store``. One log line per request: ``http.request``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from beacons.config import Config
from beacons.errors import ConfigError, Problem, StoreError
from beacons.log import get_logger
from beacons.queue import BeaconNotFound, InvalidInput, TransitionConflict
from beacons.storage import Storage
from beacons.web.auth import Auth, Identity
from beacons.web.config import ServeConfig

log = get_logger("beacons.web")

SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on our own form posts,
    # which the CSRF check must refuse. Links to posts carry rel="noreferrer" anyway.
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
QUIET_PATHS = ("/healthz", "/metrics", "/api/version", "/static/")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client: str
    params: dict[str, str] = field(default_factory=dict)
    identity: Identity | None = None

    @property
    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except CookieError:
            return {}
        return {k: m.value for k, m in jar.items()}

    @property
    def is_form(self) -> bool:
        return self.headers.get("content-type", "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded"

    def data(self) -> dict[str, Any]:
        """The body as a mapping: a JSON object, or a urlencoded form (from the page without JavaScript)."""
        if not self.body.strip():
            return {}
        if self.is_form:
            return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HTTPError(415, "unsupported_media_type", "send a JSON object with Content-Type: application/json")
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, "bad_json", f"the body is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise HTTPError(400, "bad_json", "the body must be a JSON object")
        return value

    @property
    def wants_html(self) -> bool:
        accept = self.headers.get("accept", "")
        return "text/html" in accept and "application/json" not in accept


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode(), "text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> Response:
        return cls(status, b"", "text/plain", [("Location", location)])


class HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def error(status: int, code: str, message: str) -> Response:
    return Response.json({"error": {"code": code, "message": message}}, status)


Handler = Callable[["App", Request], Response]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    kind: str  # api | page | public
    template: str  # the documented path, e.g. /api/beacons/{id}


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a local path: never an open redirect to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value
    return default


class App:
    """The routes, the auth rules and the database path: everything a request needs."""

    def __init__(self, config: Config, serve: ServeConfig | None = None, *, secret: bytes | None = None) -> None:
        from beacons.web import api, page

        self.config = config
        self.serve = serve or config.serve
        problems = [Problem(f"serve.{k}", m) for k, m in self.serve.validate(require_tokens=True)]
        if problems:
            raise ConfigError(problems, config.path)
        self.auth = Auth(self.serve, secret)
        self.pages = page.Pages(self)
        self.routes: list[RouteSpec] = []
        for method, template, handler, kind in [*api.ROUTES, *page.ROUTES]:
            regex = (
                "^"
                + re.sub(
                    r"\{(\w+)\}",
                    lambda m: (
                        r"(?P<" + m.group(1) + r">[0-9]+)"
                        if m.group(1) == "id"
                        else r"(?P<" + m.group(1) + r">[\w.-]+)"
                    ),
                    template,
                )
                + "$"
            )
            self.routes.append(RouteSpec(method, re.compile(regex), handler, kind, template))

    @contextmanager
    def store(self) -> Iterator[Storage]:
        store = Storage(self.config.database, migrate=False)  # WebServer migrated once at start
        try:
            yield store
        finally:
            store.close()

    def handle(self, req: Request) -> Response:
        spec, allowed = None, []
        for candidate in self.routes:
            m = candidate.pattern.match(req.path)
            if m:
                allowed.append(candidate.method)
                if candidate.method == req.method or (req.method == "HEAD" and candidate.method == "GET"):
                    spec, req.params = candidate, m.groupdict()
                    break
        if spec is None:
            if allowed:
                methods = ", ".join(sorted(set(allowed)))
                resp = error(405, "method_not_allowed", f"{req.method} is not allowed here; use {methods}")
                resp.headers.append(("Allow", methods))
                return resp
            return self.pages.not_found(req) if req.wants_html else error(404, "not_found", f"no such path {req.path}")
        if not self.auth.host_allowed(req.headers.get("host")):
            return error(403, "bad_host", "this server only answers to a loopback host name (see serve.public_url)")
        req.identity = self.auth.authenticate(req.headers, req.client, req.cookies)
        if spec.kind != "public" and req.identity is None:
            if spec.kind == "page":
                return self.pages.login(req, status=401)
            resp = error(401, "unauthorized", "send Authorization: Bearer <one of serve.tokens>")
            resp.headers.append(("WWW-Authenticate", 'Bearer realm="beacons"'))
            return resp
        resp = self._dispatch(spec, req)
        if resp.status >= 400 and req.is_form and req.wants_html and resp.content_type == "application/json":
            # A button pressed without JavaScript: answer with a readable page and a way back, not JSON.
            message = json.loads(resp.body).get("error", {}).get("message", "")
            return self.pages.render(req, "message.html", resp.status, title="That did not work", message=message)
        return resp

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


def _make_handler(app: App) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "beacons"
        sys_version = ""
        timeout = 30  # a client that stops sending cannot hold a thread for ever
        disable_nagle_algorithm = True  # headers and body leave in two writes; without this, delayed ACKs add 40 ms

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _run(self) -> None:
            started = time.monotonic()
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            length = headers.get("content-length")
            if "chunked" in headers.get("transfer-encoding", "").lower():
                resp = error(411, "length_required", "send a Content-Length; chunked bodies are not accepted")
                body = b""
            elif length and (not length.isdigit() or int(length) > app.serve.max_body):
                resp = error(413, "too_large", f"the body is larger than serve.max_body ({app.serve.max_body} bytes)")
                body = b""
                self.close_connection = True
            else:
                body = self.rfile.read(int(length)) if length else b""
                query = dict(parse_qsl(parts.query, keep_blank_values=False))
                req = Request(self.command, parts.path or "/", query, headers, body, self.client_address[0])
                try:
                    resp = app.handle(req)
                except Exception as exc:  # the request boundary: a bug answers 500 and is logged, the server goes on
                    log.exception(
                        "http.request",
                        method=self.command,
                        path=parts.path,
                        status=500,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    resp = error(500, "internal", "internal error; see the server log")
            self._send(resp)
            status = resp.status
            fields = {
                "method": self.command,
                "path": parts.path,
                "status": status,
                "ms": round((time.monotonic() - started) * 1000, 1),
            }
            if status >= 500:
                log.error("http.request", **fields)
            elif status in (401, 403) or (self.command != "GET" and status >= 400):
                log.warning("http.request", **fields)
            elif self.command != "GET":
                log.info("http.request", **fields)
            elif not parts.path.startswith(QUIET_PATHS):
                log.debug("http.request", **fields)

        def _send(self, resp: Response) -> None:
            try:
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.content_type)
                self.send_header("Content-Length", str(len(resp.body)))
                names = {k.lower() for k, _ in resp.headers}
                if "cache-control" not in names:
                    self.send_header("Cache-Control", "no-store")
                for k, v in (*SECURITY_HEADERS, *resp.headers):
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _run

    return _Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebServer:
    """``with WebServer(config) as server: server.url`` (tests), or ``serve_forever()`` (``beacons serve``)."""

    def __init__(self, config: Config, serve: ServeConfig | None = None, *, secret: bytes | None = None) -> None:
        self.app = App(config, serve, secret=secret)
        # Migrations once, before request threads open connections; kept open for the server's life so a
        # PostgreSQL pool outlives each request's Storage (one per request, as SQLite wants one per thread).
        self._storage = Storage(config.database)
        serve = self.app.serve
        server_class: type[_Server] = _Server
        if ":" in serve.host:
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            self.httpd = server_class((serve.host.strip("[]"), serve.port), _make_handler(self.app))
        except BaseException:
            self._storage.close()
            raise
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self, *, poll_interval: float = 0.5) -> None:
        """Serve from a background thread; ``stop`` returns within ``poll_interval`` seconds."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": poll_interval}, name="beacons-web", daemon=True
        )
        self._thread.start()
        log.info("serve.started", url=self.url, auth=self.app.serve.auth, database=self.app.config.database)

    def serve_forever(self) -> None:
        log.info("serve.started", url=self.url, auth=self.app.serve.auth, database=self.app.config.database)
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.close()

    def close(self) -> None:
        """Close the socket and the database (after ``serve_forever`` returned)."""
        self.httpd.server_close()
        self._storage.close()
        log.info("serve.stopped", url=self.url)

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
