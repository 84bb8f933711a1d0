"""A loopback HTTP server that plays 10,000 feeds on many hosts, for ``bench/scale.py`` and the load test.

    python bench/loadserver.py --feeds 10000 --hosts 200 [--entries 10] [--changed 0.05]
                               [--slow 0.01] [--failing 0.01] [--slow-hosts 0] [--max-seconds 7200]

It listens on ``--hosts`` loopback addresses (127.0.0.2, 127.0.0.3, ...; all of
127.0.0.0/8 is loopback on Linux), the same port on each, and a control address
on 127.0.0.1. Each address is a distinct "host" to the client's per-host
politeness. Feed ``n`` is served at ``/feed/{n}.xml``; which host a client uses
for it is the client's choice (``bench/scale.py`` uses ``n % hosts``). Every
feed has a fixed behaviour, chosen from ``n`` so both sides agree:

* static (most): RSS 2.0 with an ETag; ``304 Not Modified`` when ``If-None-Match`` matches;
* changed (``--changed``): every request finds a new version with 3 new entries;
* slow (``--slow``): answers like a static feed after 2-5 s;
* failing (``--failing``): even ``n`` answer 500, odd ``n`` hang (send nothing)
  until the client gives up or ``--hang`` seconds pass.

A host listed by ``--slow-hosts`` (the first k hosts) answers every feed after
``--slow-min``..``--slow-max`` s: the "one slow host" of the load test.

Separate from the daemon on purpose: run as its own process, its CPU and memory
are not counted in the daemon's. It prints one JSON line (``{"port": ...,
"hosts": [...]}``) when ready, then serves until stdin closes (its parent went
away), ``--max-seconds`` pass, or it is killed. ``GET /stats`` on any address
returns request counts and the largest number of requests in flight overall and
per host (counted from the request line until the answer is written);
``GET /stats?reset=1`` also resets the maxima.

For tests that must not depend on timing, ``GET /hold?fast=N`` makes the slow
hosts hold every answer until N answers from the other hosts were written, and
``GET /hold?in_flight=K`` until K requests are in flight at once (a hold ends
after ``--hold-timeout`` s anyway, a guard against hangs; ``/stats`` then says
``hold_timed_out``). ``/stats`` lists the order of answers by host kind
(``answers``: "slow" or "fast") so a test asserts order, not seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

NEW_PER_CHANGE = 3  # entries a changed feed gains per version
_BRANDED = (
    "My Acme RouterX drops wifi every night since the last firmware update, is anyone else seeing this?",
    "Charged twice for Acme Cloud this month and support closed my ticket. I want a refund.",
    "Six months with the RX-200: coverage is excellent and the app is clear. Would recommend Acme.",
    "How do I set up a guest network on the Acme RouterX? The app only shows the main network.",
)
_PLAIN = (
    "Council approves the new cycle lane on the high street after a long consultation.",
    "Notes from the weekend: a broken fence, two new tomato beds and far too much coffee.",
    "A short review of three mechanical keyboards for people who type all day.",
    "The museum reopens on Saturday with a new wing dedicated to early computing.",
    "Trying out a new static site generator; the build is fast but the docs are thin.",
)
_SYLLABLES = ("ka", "zu", "mor", "tel", "vix", "dra", "pon", "qui", "sel", "bru", "ny", "lo")
_EPOCH = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def kind_of(n: int, *, changed: float, slow: float, failing: float) -> str:
    """The fixed behaviour of feed ``n``: static, changed, slow, error or hang."""
    r = ((n * 2654435761 + 12345) % 2**32) / 2**32  # Knuth's multiplicative hash: spread, deterministic
    if r < failing:
        return "error" if n % 2 == 0 else "hang"
    if r < failing + slow:
        return "slow"
    if r < failing + slow + changed:
        return "changed"
    return "static"


def feed_body(n: int, version: int, entries: int) -> bytes:
    """An RSS 2.0 document: feed ``n``'s newest ``entries`` items at ``version``; about 1 in 5 names the brand."""
    newest = version * NEW_PER_CHANGE + entries
    items = []
    for k in range(newest - 1, max(newest - entries, 0) - 1, -1):
        rng = random.Random(n * 1_000_003 + k)
        text = rng.choice(_BRANDED) if rng.random() < 0.2 else rng.choice(_PLAIN)
        # Two made-up words per entry: a soak reads vocabulary no post had before (issue 16).
        text += " Tagged " + " ".join("".join(rng.choice(_SYLLABLES) for _ in range(4)) for _ in range(2)) + "."
        when = format_datetime(_EPOCH - timedelta(minutes=n % 600) + timedelta(minutes=k), usegmt=True)
        items.append(
            f"<item><title>{text[:60]}</title><link>https://site{n}.example/p/{k}</link>"
            f'<guid isPermaLink="false">site{n}-{k}</guid><pubDate>{when}</pubDate>'
            f"<description>&lt;p&gt;{text} Post {k} of site {n}.&lt;/p&gt;</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Site {n}</title>'
        f"<link>https://site{n}.example/</link><description>Posts</description>{''.join(items)}</channel></rss>"
    ).encode()


@dataclass
class Stats:
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    host_in_flight: dict[str, int] = field(default_factory=dict)
    host_max: dict[str, int] = field(default_factory=dict)
    answers: list[str] = field(default_factory=list)  # "slow" / "fast", in the order answers were written
    hold_timed_out: bool = False

    def enter(self, host: str) -> None:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        now = self.host_in_flight[host] = self.host_in_flight.get(host, 0) + 1
        self.host_max[host] = max(self.host_max.get(host, 0), now)

    def leave(self, host: str, status: str) -> None:
        self.in_flight -= 1
        self.host_in_flight[host] -= 1
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "statuses": self.statuses,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "max_in_flight_per_host": max(self.host_max.values(), default=0),
            "host_max": self.host_max,
            "answers": self.answers,
            "hold_timed_out": self.hold_timed_out,
        }


class LoadServer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stats = Stats()
        self.versions: dict[int, int] = {}  # changed feeds: requests so far
        self.slow_hosts: set[str] = set()
        self._static: dict[int, bytes] = {}
        self._hold: tuple[str, int] | None = None  # ("fast", N) or ("in_flight", K) until released
        self._released = asyncio.Event()

    def _check_hold(self) -> None:
        if self._hold is None:
            return
        what, n = self._hold
        fast = sum(1 for a in self.stats.answers if a == "fast")
        if (what == "fast" and fast >= n) or (what == "in_flight" and self.stats.in_flight >= n):
            self._released.set()

    def _kind(self, n: int) -> str:
        return kind_of(n, changed=self.args.changed, slow=self.args.slow, failing=self.args.failing)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=120)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                path = parts[1] if len(parts) > 1 else "/"
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
                if path.startswith("/stats"):  # the control paths are not counted as load
                    await self._stats(path, writer)
                    continue
                if path.startswith("/hold"):
                    await self._arm(path, writer)
                    continue
                self.stats.enter(host)
                self._check_hold()
                status = "closed"
                try:
                    status = await self._answer(path, headers, host, reader, writer)
                finally:
                    self.stats.leave(host, status)
                    if status not in ("closed", "hang"):
                        self.stats.answers.append("slow" if host in self.slow_hosts else "fast")
                    self._check_hold()
                if status == "hang" or headers.get("connection", "").lower() == "close":
                    return
        finally:
            writer.close()

    async def _stats(self, path: str, writer: asyncio.StreamWriter) -> None:
        body = json.dumps(self.stats.snapshot()).encode()
        if "reset=1" in path:
            self.stats.max_in_flight = self.stats.in_flight
            self.stats.host_max = {h: n for h, n in self.stats.host_in_flight.items() if n}
        await _send(writer, 200, body, "application/json")

    async def _arm(self, path: str, writer: asyncio.StreamWriter) -> None:
        what, _, n = path.partition("?")[2].partition("=")
        self._hold = (what, int(n)) if what in ("fast", "in_flight") and n.isdigit() else None
        self._released = asyncio.Event()
        self.stats.answers = []
        self.stats.hold_timed_out = False
        self._check_hold()
        await _send(writer, 200, json.dumps({"hold": self._hold}).encode(), "application/json")

    async def _wait_hold(self) -> None:
        try:
            await asyncio.wait_for(self._released.wait(), timeout=self.args.hold_timeout)
        except TimeoutError:
            self.stats.hold_timed_out = True
            self._released.set()

    async def _answer(
        self, path: str, headers: dict[str, str], host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str:
        if not (path.startswith("/feed/") and path.endswith(".xml") and path[6:-4].isdigit()):
            return await _send(writer, 404, b"not found", "text/plain")
        n = int(path[6:-4])
        kind = self._kind(n)
        if self.args.latency_max > 0:  # every request: a far-away server (bench/workers.py)
            await asyncio.sleep(random.uniform(self.args.latency_min, self.args.latency_max))
        if host in self.slow_hosts and self._hold is not None:
            await self._wait_hold()
        elif host in self.slow_hosts:
            await asyncio.sleep(random.uniform(self.args.slow_min, self.args.slow_max))
        elif kind == "slow":
            await asyncio.sleep(self.args.slow_min + (n % 97) / 96 * (self.args.slow_max - self.args.slow_min))
        elif kind == "error":
            return await _send(writer, 500, b"internal error", "text/plain")
        elif kind == "hang":
            # until the client gives up (EOF) or --hang seconds
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(reader.read(1), timeout=self.args.hang)
            return "hang"
        version = 0
        if kind == "changed":
            version = self.versions[n] = self.versions.get(n, 0) + 1
        etag = f'"{n}-{version}"'
        if headers.get("if-none-match") == etag:
            return await _send(writer, 304, b"", None, etag)
        if version == 0:
            body = self._static.get(n) or self._static.setdefault(n, feed_body(n, 0, self.args.entries))
        else:
            body = feed_body(n, version, self.args.entries)
        return await _send(writer, 200, body, "application/rss+xml; charset=utf-8", etag)


async def _send(
    writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str | None, etag: str | None = None
) -> str:
    reason = {200: "OK", 304: "Not Modified", 404: "Not Found", 500: "Internal Server Error"}[status]
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    if content_type:
        head.append(f"Content-Type: {content_type}")
    if etag:
        head.append(f"ETag: {etag}")
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
    except ConnectionError:
        return "closed"
    return str(status)


def _free_port(hosts: list[str]) -> int:
    """A port free on every address (the kernel picks one for the first; retried if another is taken)."""
    for _ in range(20):
        probe = socket.socket()
        probe.bind((hosts[0], 0))
        port = int(probe.getsockname()[1])
        probe.close()
        ok = True
        for h in hosts:
            s = socket.socket()
            try:
                s.bind((h, port))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return port
    raise OSError("no port free on every loopback address")


async def serve(args: argparse.Namespace) -> None:
    hosts = [f"127.0.{i // 250}.{2 + i % 250}" for i in range(args.hosts)]
    port = args.port or _free_port(["127.0.0.1", *hosts])
    server = LoadServer(args)
    server.slow_hosts = set(hosts[: args.slow_hosts])
    servers = [
        await asyncio.start_server(server.handle, h, port, backlog=1024, reuse_address=True)
        for h in ["127.0.0.1", *hosts]
    ]
    print(json.dumps({"port": port, "hosts": hosts}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def watch_stdin() -> None:  # the parent closing our stdin (or dying) ends the server
        try:
            sys.stdin.buffer.read()
        finally:
            loop.call_soon_threadsafe(stop.set)

    if not args.ignore_stdin:
        threading.Thread(target=watch_stdin, daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feeds", type=int, default=10_000, help="feeds (informational; any /feed/{n}.xml is served)")
    p.add_argument("--hosts", type=int, default=200, help="loopback addresses to listen on (127.0.0.2, ...)")
    p.add_argument("--port", type=int, default=0, help="port on every address (default: a free one)")
    p.add_argument("--entries", type=int, default=10, help="entries per feed")
    p.add_argument("--changed", type=float, default=0.05, help="share of feeds that change on every request")
    p.add_argument("--slow", type=float, default=0.01, help="share of feeds that answer after --slow-min..--slow-max s")
    p.add_argument("--failing", type=float, default=0.01, help="share of feeds that fail (500 or hang)")
    p.add_argument("--slow-min", type=float, default=2.0)
    p.add_argument("--slow-max", type=float, default=5.0)
    p.add_argument("--slow-hosts", type=int, default=0, help="the first k hosts answer every feed slowly")
    p.add_argument("--hold-timeout", type=float, default=60.0, help="longest a /hold keeps slow answers back")
    p.add_argument("--latency-min", type=float, default=0.0, help="every answer waits at least this long (s)")
    p.add_argument("--latency-max", type=float, default=0.0, help="... and at most this long (s); 0: no added latency")
    p.add_argument("--hang", type=float, default=60.0, help="longest a hanging feed holds a connection")
    p.add_argument("--max-seconds", type=float, default=7200.0, help="exit after this long whatever happens")
    p.add_argument("--ignore-stdin", action="store_true", help="do not exit when stdin closes")
    args = p.parse_args(argv)
    if not 1 <= args.hosts <= 250 * 250:
        p.error("--hosts must be 1..62500")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
