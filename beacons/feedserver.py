"""A small threaded HTTP server on loopback that serves feeds like a real site.

Used by ``beacons demo`` (the bundled sample feeds) and by the tests and
benchmarks: it answers conditional GETs with 304, sends ETag and
Last-Modified, gzips when asked, and can be told to misbehave per path.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Resource:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = True  # answer 304 when the validators match
    gzip: bool = True  # gzip when the client accepts it
    delay: float = 0.0  # seconds before answering (a slow host)
    drip: float = 0.0  # seconds between body bytes (a slow-drip host)
    # Answer only once this is set (at most HOLD_LIMIT s): a test decides when a slow host answers.
    hold: threading.Event | None = None

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


Handler = Callable[[BaseHTTPRequestHandler], None]
LAST_MODIFIED = "Mon, 23 Nov 2026 09:45:00 GMT"
HOLD_LIMIT = 120.0  # seconds a held answer waits at most: a guard against a test that never releases it


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a daemon cycle connects to many feeds at once
    daemon_threads = True


class FeedServer:
    """``with FeedServer() as s: s.add("/feed.xml", Resource(...)); s.url("/feed.xml")``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.resources: dict[str, Resource | Handler] = {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self)

            def do_POST(self) -> None:
                server._serve(self)

        self.httpd = _Server((host, port), _Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="feedserver", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(self, path: str, resource: Resource | Handler) -> None:
        self.resources[path] = resource

    def hits(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    def __enter__(self) -> FeedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append(
                {
                    "path": parts.path,
                    "query": parts.query,
                    "headers": dict(req.headers.items()),
                    "body": body,
                    "method": req.command,
                    "at": time.time(),
                    "peer": req.client_address[1],  # the client's port: one per TCP connection
                }
            )
        resource = self.resources.get(parts.path)
        if resource is None:
            req.send_response(404)
            req.send_header("Content-Type", "text/plain")
            req.send_header("Content-Length", "9")
            req.end_headers()
            req.wfile.write(b"not found")
            return
        if callable(resource):
            resource(req)
            return
        if resource.hold is not None:
            resource.hold.wait(HOLD_LIMIT)
        if resource.delay:
            time.sleep(resource.delay)
        if (resource.conditional and resource.status == 200) and (
            req.headers.get("If-None-Match") == resource.etag
            or (req.headers.get("If-Modified-Since") == LAST_MODIFIED and not req.headers.get("If-None-Match"))
        ):
            req.send_response(304)
            req.send_header("ETag", resource.etag)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        payload = resource.body
        req.send_response(resource.status)
        req.send_header("Content-Type", resource.content_type)
        if resource.conditional:
            req.send_header("ETag", resource.etag)
            req.send_header("Last-Modified", LAST_MODIFIED)
        if resource.gzip and "gzip" in (req.headers.get("Accept-Encoding") or ""):
            payload = gzip.compress(payload)
            req.send_header("Content-Encoding", "gzip")
        for k, v in resource.headers.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        try:
            if resource.drip:
                for i in range(len(payload)):
                    req.wfile.write(payload[i : i + 1])
                    req.wfile.flush()
                    time.sleep(resource.drip)
            else:
                req.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
