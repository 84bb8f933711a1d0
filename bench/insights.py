"""Insights (issue 14): /insights over 30 days with 200,000 mentions and 50,000 beacons, through the real HTTP server.

    python bench/insights.py                      # SQLite: 200,000 mentions, 50,000 beacons over 90 days
    python bench/insights.py --quick              # CI-sized: 20,000 mentions, 5,000 beacons
    BEACONS_BENCH_PG_URL=postgresql://... python bench/insights.py   # PostgreSQL too (in a database it creates and drops)
    python bench/insights.py --json               # figures as one JSON object on the last line
    python bench/insights.py --pending 0          # PostgreSQL: skip the second measure with pending deltas

Seeds a database with rows in the stored format (mentions over 90 days, a quarter of them
beacons in support, advocacy or no queue, with claims, resolutions, notes-free history,
thread words, spike incidents and source outages), migrates it with the real migrations, then
starts ``beacons serve``'s ``WebServer`` on 127.0.0.1 and times, over loopback with httpx:

- ``/insights`` (the page: every figure, its tables) and ``/api/insights`` for the last 30 days;
- cold: the first request after the server started; warm: the median of ``--repeat`` requests,
  each with a different ``until`` (a minute apart), so nothing answers from a cache;
- with each figure, the CPU time this process (server and client) used for it, and the load
  average: on a machine shared with other work, wall time also counts the waits for a core;
- PostgreSQL again after ``--pending`` more posts whose rollup deltas are left uncompacted (the
  seeded database is compacted, as the daemon's maintenance keeps it): what reads add up then.

Target (issue 14): under 500 ms for 30 days, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx
import yaml

from beacons.config import Config, parse_config
from beacons.storage import Storage
from beacons.web.server import WebServer

TOKEN = "bench-token-0123456789abcdef"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAYS = 90
TARGET_MS = 500.0
BRANDS = [
    ("Acme", "RouterX", "networking"),
    ("Acme", "Acme Cloud", "cloud"),
    ("Acme", None, None),
    ("Globex", None, None),
]
SOURCES = [f"source-{i:02d}" for i in range(12)]  # source-11 never yields a beacon
AUTHORS = [f"author{i}" for i in range(3000)]
AGENTS = ["alice", "bob", "carol", "dmitri", "eve"]
WORDS = [
    "wifi",
    "drops",
    "firmware",
    "invoice",
    "login",
    "outage",
    "slow",
    "router",
    "update",
    "refund",
    "crash",
    "dashboard",
    "deploy",
    "sync",
]
SUPPORT_INTENTS = ["bug_outage", "account_billing", "how_to", "order_delivery", "complaint"]


def _config(database: str) -> Config:
    data = {
        "database": database,
        "brands": [
            {"name": "Acme", "products": [{"name": "RouterX"}, {"name": "Acme Cloud", "team": "cloud"}]},
            {"name": "Globex"},
        ],
        "routing": {"sla": {"support": "2h", "advocacy": "1d"}},
        "serve": {"host": "127.0.0.1", "port": 0, "tokens": [TOKEN]},
        "logging": {"level": "warning"},
    }
    return parse_config(yaml.safe_dump(data), env={}, path="<bench>")


def seed(database: str, *, mentions: int, beacons: int, rng: random.Random) -> None:
    """Fill a migrated database with ``mentions`` posts, ``beacons`` of them with a beacon, over ``DAYS`` days."""
    store = Storage(database)
    start = NOW - timedelta(days=DAYS)
    span = DAYS * 86400
    beacon_of = set(rng.sample(range(mentions), beacons))
    with store.backend.transaction() as tx:
        tx.executemany("INSERT INTO sources (id, kind) VALUES (?, 'rss')", [(s,) for s in SOURCES])
    m_rows, b_rows, e_rows, t_rows = [], [], [], []
    beacon_id = 0
    for i in range(mentions):
        at = start + timedelta(seconds=rng.random() * span)
        brand, product, team = rng.choice(BRANDS)
        has_beacon = i in beacon_of
        source = rng.choice(SOURCES[:-1]) if has_beacon else rng.choice(SOURCES)
        author = rng.choice(AUTHORS)
        m_rows.append(
            (
                i + 1,
                source,
                f"https://{source}.example/{i}",
                f"post {i}",
                f"text of post {i} about {brand}",
                author,
                rng.choice([None, rng.randint(10, 50_000)]),
                at,
                at + timedelta(minutes=5),
                brand,
                product,
                "{}",
                "ok" if has_beacon else "pending",
                at + timedelta(minutes=5),
            )
        )
        if not has_beacon:
            continue
        beacon_id += 1
        queue = rng.choices(["support", "advocacy", "none"], [40, 25, 35])[0]
        sentiment = {"support": "negative", "advocacy": "positive"}.get(queue, "neutral")
        if rng.random() < 0.25:
            sentiment = rng.choice(["negative", "neutral", "positive"])
        intents = {rng.choice(SUPPORT_INTENTS): 0.9} if queue == "support" else {}
        created = at + timedelta(minutes=5)
        status, assignee = "new", None
        if queue != "none" and created < NOW - timedelta(hours=6) and rng.random() < 0.85:
            assignee = rng.choice(AGENTS)
            claim_at = created + timedelta(seconds=rng.expovariate(1 / 3600))
            e_rows.append((beacon_id, claim_at, assignee, "claim", "new", "claimed", queue, queue, assignee))
            status = "claimed"
            if rng.random() < 0.8:
                done = claim_at + timedelta(seconds=rng.expovariate(1 / 7200))
                e_rows.append((beacon_id, done, assignee, "resolve", "claimed", "resolved", queue, queue, assignee))
                status = "resolved"
        b_rows.append(
            (
                beacon_id,
                i + 1,
                queue,
                status,
                50,
                int(queue == "support"),
                sentiment,
                json.dumps(intents),
                team if queue != "none" else None,
                assignee,
                created,
                created,
            )
        )
        words = " ".join(sorted(set(rng.sample(WORDS, 3))))
        t_rows.append((beacon_id, beacon_id, created, queue, brand, product, at, words))
    with store.backend.transaction() as tx:
        tx.executemany(
            "INSERT INTO mentions (id, source_id, url, title, text, author, author_reach, published_at, fetched_at,"
            " brand, product, raw, classify_status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            m_rows,
        )
        tx.executemany(
            "INSERT INTO beacons (id, mention_id, queue, status, priority, is_beacon, sentiment, intents_json, team,"
            " assignee, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            b_rows,
        )
        tx.executemany(
            "INSERT INTO beacon_events (beacon_id, at, actor, action, from_status, to_status, from_queue, to_queue,"
            " assignee) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            e_rows,
        )
        tx.executemany(
            "INSERT INTO beacon_threads (beacon_id, thread_id, linked_at, queue, brand, product, at, words)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            t_rows,
        )
    for day in range(0, DAYS, 9):  # a spike incident and an outage every nine days
        opened = start + timedelta(days=day, hours=10)
        event = f"incident-{day}"
        store.outbox.add_event("ops", event, "incident", {"beacon_ids": [1, 2, 3]}, now=opened.timestamp())
        with store.backend.transaction() as tx:
            tx.execute(
                "INSERT INTO alert_incidents (channel, brand, product, status, threshold, opened_at, closed_at,"
                " event_id) VALUES ('ops', 'Acme', 'RouterX', 'closed', 6, ?, ?, ?)",
                [opened, opened + timedelta(hours=3), event],
            )
        since = (opened + timedelta(hours=2)).isoformat()
        for state, hours in (("failing", 2), ("recovered", 8)):
            store.outbox.add_event(
                "ops",
                f"health-{day}-{state}",
                "source_health",
                {"source": SOURCES[day % len(SOURCES)], "state": state, "since": since},
                now=(opened + timedelta(hours=hours)).timestamp(),
            )
    # PostgreSQL: the triggers appended a +1/-1 row per write; the daemon's maintenance folds them into
    # the rollup every five minutes, so a database that has been running has only recent ones pending.
    store.insight_compact()
    store.backend.read("ANALYZE")  # the planner's statistics, as a database that has been running has them
    store.close()


def add_pending(database: str, posts: int, rng: random.Random) -> int:
    """Store ``posts`` more posts of the last day (a quarter with a beacon) and leave the rollup's deltas
    they make uncompacted (PostgreSQL): 10,000 posts make 15,000 deltas, near the 20,000 past which a
    read compacts first, and far more than a daemon leaves between two compactions (five minutes).
    Returns the deltas pending (0 on SQLite, whose triggers update the rollup itself)."""
    store = Storage(database)
    try:
        first = int(store.backend.read("SELECT COALESCE(MAX(id), 0) FROM mentions").scalar()) + 1
        beacon_id = int(store.backend.read("SELECT COALESCE(MAX(id), 0) FROM beacons").scalar())
        m_rows, b_rows = [], []
        for i in range(first, first + posts):
            at = NOW - timedelta(seconds=rng.random() * 86400)  # new posts: published in the last day
            brand, product, team = rng.choice(BRANDS)
            source = rng.choice(SOURCES[:-1])
            m_rows.append(
                (
                    i,
                    source,
                    f"https://{source}.example/{i}",
                    f"post {i}",
                    f"text of post {i} about {brand}",
                    rng.choice(AUTHORS),
                    None,
                    at,
                    at + timedelta(minutes=5),
                    brand,
                    product,
                    "{}",
                    "ok",
                    at,
                )
            )
            if rng.random() < 0.25:
                queue = rng.choice(["support", "advocacy", "none"])
                sentiment = {"support": "negative", "advocacy": "positive"}.get(queue, "neutral")
                created = at + timedelta(minutes=5)
                beacon_id += 1  # the seed wrote its ids itself, so the identity has not counted them
                b_rows.append(
                    (
                        beacon_id,
                        i,
                        queue,
                        "new",
                        50,
                        int(queue == "support"),
                        sentiment,
                        "{}",
                        team if queue != "none" else None,
                        None,
                        created,
                        created,
                    )
                )
        with store.backend.transaction() as tx:
            tx.executemany(
                "INSERT INTO mentions (id, source_id, url, title, text, author, author_reach, published_at,"
                " fetched_at, brand, product, raw, classify_status, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                m_rows,
            )
            tx.executemany(
                "INSERT INTO beacons (id, mention_id, queue, status, priority, is_beacon, sentiment, intents_json,"
                " team, assignee, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                b_rows,
            )
        if store.backend.name != "postgresql":
            return 0
        return int(store.backend.read("SELECT COUNT(*) FROM insight_deltas").scalar())
    finally:
        store.close()


def _time(client: httpx.Client, path: str, until: datetime) -> tuple[float, float]:
    """(wall ms, CPU ms of this process: the server's handler and the client) for one request."""
    since = until - timedelta(days=30)
    params = {"since": since.isoformat(), "until": until.isoformat(), "tz": "Europe/Berlin"}
    if path == "/insights":
        params["range"] = "custom"
    started, cpu = time.perf_counter(), time.process_time()
    r = client.get(path, params=params)
    elapsed, used = (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000
    if r.status_code != 200:
        raise SystemExit(f"{path} answered {r.status_code}: {r.text[:300]}")
    return elapsed, used


def measure(database: str, repeat: int) -> dict[str, Any]:
    config = _config(database)
    server = WebServer(config)
    server.start(poll_interval=0.05)
    out: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
            for path in ("/insights", "/api/insights"):
                cold, _ = _time(c, path, NOW)
                warm = [_time(c, path, NOW - timedelta(minutes=k + 1)) for k in range(repeat)]
                out[path] = {
                    "cold_ms": round(cold, 1),
                    "warm_median_ms": round(statistics.median(w for w, _ in warm), 1),
                    # On a busy machine wall time counts the waits for a core; CPU time does not.
                    "warm_cpu_median_ms": round(statistics.median(u for _, u in warm), 1),
                }
    finally:
        server.stop()
    return out


def _report(backend: str, label: str, figures: dict[str, Any]) -> None:
    for path, f in figures.items():
        print(
            f"{backend}: {path} 30 days{label}: cold {f['cold_ms']:.0f} ms, warm median {f['warm_median_ms']:.0f} ms"
            f" (CPU {f['warm_cpu_median_ms']:.0f} ms in this process; target < {TARGET_MS:.0f} ms)",
            file=sys.stderr,
        )


def run(backend: str, database: str, mentions: int, beacons: int, repeat: int, pending: int) -> dict[str, Any]:
    rng = random.Random(14)
    started = time.perf_counter()
    Storage(database).close()  # migrate
    seed(database, mentions=mentions, beacons=beacons, rng=rng)
    seeded = time.perf_counter() - started
    print(f"{backend}: seeded {mentions:,} mentions, {beacons:,} beacons in {seeded:.0f} s", file=sys.stderr)
    figures = measure(database, repeat)
    _report(backend, "", figures)
    load = os.getloadavg()[0]
    out = {"backend": backend, "mentions": mentions, "beacons": beacons, "load_average": round(load, 1), **figures}
    if pending and backend == "postgresql":
        deltas = add_pending(database, pending, rng)
        with_deltas = measure(database, repeat)
        _report(backend, f", {pending:,} more posts, {deltas:,} deltas pending", with_deltas)
        out["pending"] = {"posts": pending, "deltas": deltas, **with_deltas}
    print(f"{backend}: load average {load:.1f} on {os.cpu_count()} cores", file=sys.stderr)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=200_000)
    parser.add_argument("--beacons", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7, help="warm requests per path (median)")
    parser.add_argument("--quick", action="store_true", help="20,000 mentions and 5,000 beacons")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    parser.add_argument(
        "--pending",
        type=int,
        default=10_000,
        help="PostgreSQL: then store this many more posts and measure again with their rollup deltas not compacted",
    )
    args = parser.parse_args()
    if args.quick:
        args.mentions, args.beacons = 20_000, 5_000
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(
            run("sqlite", str(Path(tmp) / "insights.db"), args.mentions, args.beacons, args.repeat, args.pending)
        )
    pg = os.environ.get("BEACONS_BENCH_PG_URL")
    if pg:
        from helpers_pg import Cluster, fresh_database  # the tests' new-database-and-drop-it, as bench/workers.py

        with fresh_database(Cluster(pg)) as database:
            results.append(run("postgresql", database, args.mentions, args.beacons, args.repeat, args.pending))
    ok = all(r[p]["warm_median_ms"] < TARGET_MS for r in results for p in ("/insights", "/api/insights"))
    if args.json:
        print(json.dumps({"results": results, "target_ms": TARGET_MS, "ok": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
