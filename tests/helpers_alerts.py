"""Shared pieces of the alert tests: a loopback webhook receiver and beacons written the real way.

``Receiver`` is a real HTTP server on 127.0.0.1 that records every request
and answers from a script: 200 ("ok", as Slack does), any status with
headers (500, 429 with Retry-After), ``HANG`` (holds the request until the
server stops) or, with ``down()``, nothing at all (connection refused), then
``up()`` again on the same port.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest
import structlog

from beacons.clock import SYSTEM, Clock
from beacons.models import Classification, Evidence, Match, MatchSpan, Mention, Route
from beacons.store import Item, Store

HANG = "hang"


@pytest.fixture(autouse=True)
def reset_logging() -> Any:
    """``beacons.cli.load`` points structlog at the captured stderr of one test; undo it after each test."""
    yield
    structlog.reset_defaults()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


class Receiver:
    """``with Receiver() as r: r.script(Reply(500), Reply(200)); ...; r.requests``."""

    def __init__(self, port: int = 0, *, clock: Clock = SYSTEM) -> None:
        self.clock = clock  # stamps Received.at: a test with a fake clock reads the sender's own time
        self.requests: list[Received] = []
        self._script: list[Reply | str] = []
        self.default: Reply | str = Reply()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self.port = port
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def script(self, *replies: Reply | str) -> None:
        """The next answers, in order; afterwards ``default``."""
        with self._lock:
            self._script.extend(replies)

    def keys(self) -> list[str | None]:
        with self._lock:
            return [r.key for r in self.requests]

    def wait_for(self, n: int, timeout: float = 60.0) -> list[Received]:
        """The requests once there are ``n``; ``timeout`` only guards against a hang."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.01)
        raise AssertionError(f"expected {n} request(s) within {timeout}s, got {len(self.requests)}")

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answer in one segment, as real servers do

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, dict(self.headers.items()), body, receiver.clock.time())
                    )
                    reply = receiver._script.pop(0) if receiver._script else receiver.default
                if reply == HANG:
                    receiver._release.wait(30)
                    return
                assert isinstance(reply, Reply)
                self.send_response(reply.status)
                for k, v in {"Content-Type": "text/plain", **reply.headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(reply.body)

        self._release.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        """Stop listening: the next request is refused."""
        if self._httpd is not None:
            self._release.set()
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def open_store(tmp_path: Path) -> Store:
    return Store(tmp_path / "beacons.db")


_counter = iter(range(1, 1_000_000))


def add_beacon(
    store: Store,
    channels: Sequence[str],
    *,
    text: str = "My Acme RouterX keeps dropping wifi, support please help",
    title: str = "RouterX drops wifi",
    brand: str = "Acme",
    product: str | None = "RouterX",
    queue: str = "support",
    priority: int = 70,
    author: str | None = "sam",
    url: str | None = None,
    source_id: str = "forum",
    team: str | None = None,
    evidence: str | None = None,
    now: datetime | None = None,
) -> int:
    """Store one routed mention the way the pipeline does (save_poll writes the outbox rows); its beacon id.

    ``now`` stamps the mention and the beacon (a test's fake clock); the real time when left out."""
    n = next(_counter)
    now = now or datetime.now(UTC)
    mention = Mention(
        source_id, url or f"https://forum.example/t/{n}", f"guid-{n}", title, text, author, now, now, "{}"
    )
    full = mention.full_text
    spans = []
    for term, kind in ((brand, "name"), (product, "product")):
        if term and term in full:
            start = full.index(term)
            spans.append(MatchSpan(start, start + len(term), term, brand, product if kind == "product" else None, kind))
    match = Match(brand, product, tuple(spans))
    scores = {"support": 0.9 if queue == "support" else 0.1, "advocacy": 0.9 if queue == "advocacy" else 0.1}
    found = Evidence(evidence, full.index(evidence), full.index(evidence) + len(evidence)) if evidence else None
    classification = Classification(queue, queue == "support", "negative", -0.6, 0.9, scores, evidence=found)  # type: ignore[arg-type]
    item = Item(mention, (f"key-{n}",), match, classification, Route(queue, priority, "test", team))  # type: ignore[arg-type]
    result = store.save_poll(source_id, [item], channels=channels, now=now)
    return result.beacon_ids[0]
