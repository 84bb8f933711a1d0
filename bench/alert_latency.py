"""Alert latency: from a beacon committed to the store to its request received by a local receiver.

Run: ``python bench/alert_latency.py [--beacons 300] [--every 0.02]``. A real
SQLite file in a temporary folder, ``Store.save_poll`` writing each beacon
and its outbox row in one transaction (as the pipeline does), the real
``ChannelSender`` in the same event loop (as in the daemon), and a threaded
HTTP receiver on 127.0.0.1 that timestamps each request by its
``Idempotency-Key``. Prints p50/p95/max latency per channel kind and sender
tick, and the drain rate of a 1,000-alert backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from beacons.alerts.config import AlertChannel, SpikeRule
from beacons.alerts.outbox import Outbox
from beacons.alerts.sender import ChannelSender
from beacons.log import configure
from beacons.models import Classification, Match, MatchSpan, Mention, Route
from beacons.store import Item, Store

TEXT = "Since the update my Acme RouterX drops wifi every night. Support, please help, this is the third reset."


class Receiver:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        recv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answer in one segment, as real servers do

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time()
                key = self.headers.get("Idempotency-Key")
                if key is None:  # Slack bodies carry no event id: the context line names the beacon
                    found = re.search(r"beacon #(\d+)", json.loads(body)["blocks"][-1]["elements"][0]["text"])
                    key = f"beacon #{found.group(1)}" if found else "?"
                recv.seen.setdefault(key, at)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def store_beacon(store: Store, n: int, channels: list[str]) -> int:
    now = datetime.now(UTC)
    mention = Mention(
        "bench", f"https://forum.example/t/{n}", f"g{n}", f"RouterX wifi #{n}", TEXT, "sam", now, now, "{}"
    )
    start = mention.full_text.index("Acme")
    match = Match("Acme", "RouterX", (MatchSpan(start, start + 4, "Acme", "Acme", None, "name"),))
    c = Classification("support", True, "negative", -0.5, 0.9, {"support": 0.9})
    return store.save_poll(
        "bench", [Item(mention, (f"k{n}",), match, c, Route("support", 80, "bench"))], channels=channels
    ).beacon_ids[0]


async def latency_run(kind: str, tick: float, beacons: int, every: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        recv = Receiver()
        channel = AlertChannel(
            kind=kind,
            url=recv.url,
            name="bench",
            secret="bench-secret-0123456789",  # type: ignore[arg-type]
            rate_limit=10_000,
            spikes=SpikeRule(enabled=False),
        )
        sender = ChannelSender(channel, Outbox(store), tick=tick)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))
        stored: dict[str, float] = {}
        for n in range(beacons):
            beacon_id = store_beacon(store, n, ["bench"])
            key = f"beacon-{beacon_id}-bench" if kind == "webhook" else f"beacon #{beacon_id}"
            stored[key] = time.time()
            await asyncio.sleep(every)
        deadline = time.monotonic() + 10
        while len(recv.seen) < beacons and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop.set()
        await task
        await sender.aclose()
        recv.close()
        store.close()
        return [(recv.seen[k] - t) * 1000 for k, t in stored.items() if k in recv.seen]


async def backlog_run(size: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        for n in range(size):
            store_beacon(store, n, ["bench"])
        recv = Receiver()
        channel = AlertChannel(
            kind="webhook",
            url=recv.url,
            name="bench",
            secret="bench-secret-0123456789",
            rate_limit=100_000,
            spikes=SpikeRule(enabled=False),
        )
        sender = ChannelSender(channel, Outbox(store))
        started = time.monotonic()
        await sender.drain(budget=120)
        elapsed = time.monotonic() - started
        await sender.aclose()
        recv.close()
        store.close()
        assert len(recv.seen) == size, len(recv.seen)
        return size / elapsed


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beacons", type=int, default=300)
    parser.add_argument("--every", type=float, default=0.02, help="seconds between stored beacons")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the figures on stdout (the table goes to stderr)",
    )
    args = parser.parse_args()
    out = sys.stderr if args.json else sys.stdout
    configure("error")
    figures: dict[str, Any] = {"beacons": args.beacons, "latency_ms": {}}
    print(f"{'kind':8} {'tick':>6} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}", file=out)
    for kind in ("webhook", "slack"):
        for tick in (0.1, 0.02):  # 0.1 s is the default tick
            lat = asyncio.run(latency_run(kind, tick, args.beacons, args.every))
            print(
                f"{kind:8} {tick:6.2f} {len(lat):5} {pct(lat, 50):8.1f} {pct(lat, 95):8.1f} {max(lat):8.1f}", file=out
            )
            figures["latency_ms"][f"{kind}@{tick:g}"] = {
                "n": len(lat),
                "p50": round(pct(lat, 50), 1),
                "p95": round(pct(lat, 95), 1),
                "max": round(max(lat), 1),
            }
    figures["backlog_per_s"] = round(asyncio.run(backlog_run(1000)))
    print(
        f"backlog of 1000 webhook alerts drained at {figures['backlog_per_s']} alerts/s (one channel, no rate limit)",
        file=out,
    )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
