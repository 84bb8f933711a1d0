"""Serve a folder of feed files over loopback, with ETag and Last-Modified, in a process of its own.

    python bench/feedhost.py DIR [--hosts 20]

Used by ``bench/peers.py`` and ``bench/ingest.py`` so every reader of the feeds
(beacons, lemon24/reader, ...) fetches identical bytes from a server whose CPU
and memory are not counted as theirs. File ``DIR/{n}.xml`` is served at
``http://127.0.0.{2 + n % hosts}:{port}/feed/{n}.xml`` (distinct loopback hosts,
so per-host politeness spreads the load as on the real web); a request whose
``If-None-Match`` or ``If-Modified-Since`` matches gets ``304 Not Modified``.
HTTP/1.1 with Content-Length, so clients keep their connections. It prints one
JSON line (``{"port": ..., "hosts": [...]}``) when ready and exits when its stdin
closes. All traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import subprocess
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

LAST_MODIFIED = formatdate(1_795_000_000, usegmt=True)


def _handler(folder: Path) -> type[BaseHTTPRequestHandler]:
    bodies: dict[str, tuple[bytes, str]] = {}
    for path in folder.glob("*.xml"):
        body = path.read_bytes()
        bodies[f"/feed/{path.name}"] = (body, '"' + hashlib.sha1(body).hexdigest()[:16] + '"')

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            found = bodies.get(self.path.split("?", 1)[0])
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body, etag = found
            if self.headers.get("If-None-Match") == etag or self.headers.get("If-Modified-Since") == LAST_MODIFIED:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing its kept-alive connection
            super().handle_error(request, client_address)


def _bind(addresses: list[str], handler: type[BaseHTTPRequestHandler]) -> list[ThreadingHTTPServer]:
    """One server per address, all on one port: the first address's free port, tried again if another has it."""
    for _ in range(20):
        servers: list[ThreadingHTTPServer] = []
        try:
            for address in addresses:
                port = servers[0].server_address[1] if servers else 0
                server = _Server((address, port), handler)
                servers.append(server)
            return servers
        except OSError:
            for server in servers:
                server.server_close()
    raise RuntimeError("no port free on every loopback address")


def serve(folder: Path, hosts: int) -> None:
    handler = _handler(folder)
    addresses = [f"127.0.0.{2 + i}" for i in range(hosts)]
    servers = _bind(addresses, handler)
    port = servers[0].server_address[1]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": port, "hosts": addresses}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    for server in servers:
        server.shutdown()
        server.server_close()


class FeedHost:
    """``feedhost.py`` in a child process; closing its stdin stops it."""

    def __init__(self, folder: Path, hosts: int = 20) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(folder), "--hosts", str(hosts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready = json.loads(self.proc.stdout.readline())
        self.port: int = ready["port"]
        self.hosts: list[str] = ready["hosts"]

    def url(self, n: int) -> str:
        return f"http://{self.hosts[n % len(self.hosts)]}:{self.port}/feed/{n}.xml"

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_feeds(folder: Path, bodies: list[bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, body in enumerate(bodies):
        (folder / f"{n}.xml").write_bytes(body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--hosts", type=int, default=20, help="loopback hosts, 127.0.0.2 up (default 20)")
    args = parser.parse_args()
    socket.setdefaulttimeout(60)
    serve(args.folder, args.hosts)
