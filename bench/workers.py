"""Several daemon workers on one PostgreSQL: does the fleet scale, and does it keep its guarantees?

    python bench/workers.py                               # 10,000 sources; 1, 2 and 4 workers
    python bench/workers.py --sources 2000 --workers 1 2 --model rules --json

``bench/loadserver.py`` runs as its own process and plays the feeds on
``--hosts`` loopback hosts, every answer 100-300 ms late; most feeds answer
304, ``--changed`` of them gain 3 entries on every request. A throwaway
PostgreSQL cluster is started (Debian's ``initdb``/``pg_ctl``, as in the
tests), or ``--database URL`` is used. For each worker count, a fresh database:

1. the cold cycle: W ``python daemon.py`` processes poll every source once
   (every feed new), timed until every source has one poll in the database;
2. the measured cycle: every source is made due again (``next_poll_at``),
   timed until every source has two polls; polls per source, new and
   duplicate mentions, connections (``pg_stat_activity``, sampled) and CPU per
   worker (``/proc/<pid>/stat``) are read at its end;
3. with 2 or more workers, a third cycle in which one worker is SIGKILLed
   once a third of the sources are done: the time until its leased sources
   are polled by the others, and mentions lost (changed feeds whose new
   entries never reached the database).

Every worker also sends the beacons' alerts to one signed webhook channel,
received by a small HTTP server in this process that counts deliveries per
body ``id``. After each run: alerts in the outbox, alerts delivered, alerts
delivered twice or more (at-least-once delivery: a SIGKILL mid-send repeats
one), and alerts never delivered.

Intervals are 1 h, so a second poll of a source inside a cycle is a fault.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from beacons.alerts.webhook import verify  # noqa: E402
from beacons.storage import Storage  # noqa: E402
from bench.scale import LoadServer  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
SECRET = "bench-workers-secret-0123456789"


def cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def one(store: Storage, sql: str, args: list[Any] | None = None) -> Any:
    return store.backend.read(sql, args or []).scalar()


class Receiver:
    """The webhook receiver: answers 200 at once and counts deliveries per signed body ``id``."""

    def __init__(self) -> None:
        self.deliveries: Counter[str] = Counter()
        self.bad_signatures = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                good = verify(SECRET, body, self.headers.get("X-Beacons-Signature", ""))
                with lock:
                    if good:
                        receiver.deliveries[json.loads(body)["id"]] += 1
                    else:
                        receiver.bad_signatures += 1
                self.send_response(200 if good else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.deliveries.clear()
        self.bad_signatures = 0

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def write_config(
    folder: Path, url: str, server: LoadServer, sources: int, model: str, timeout: float, hook: str
) -> Path:
    config = {
        "database": url,
        "brands": [
            {"name": "Acme", "aliases": ["Acme Corp"], "products": [{"name": "RouterX", "aliases": ["RX-200"]}]}
        ],
        "sources": [{"id": f"feed-{n}", "kind": "rss", "url": server.url(n), "interval": "1h"} for n in range(sources)],
        "fetch": {"timeout": f"{timeout:g}s", "per_host_delay": "0s", "concurrency": 64, "per_host_concurrency": 2},
        "classifier": {"model": model},
        "logging": {"level": "warning"},
        "alerts": [
            {
                "kind": "webhook",
                "name": "hook",
                "url": hook,
                "secret": SECRET,
                "rate_limit": 1000,
                "timeout": "5s",
                "retry_base": "1s",
                "spikes": {"enabled": False},
            }
        ],
    }
    path = folder / f"config-{abs(hash(url))}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Sampler:
    """Samples the database's connections every second while a cycle runs."""

    def __init__(self, store: Storage) -> None:
        self.store, self.max_connections = store, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            n = one(self.store, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()")
            self.max_connections = max(self.max_connections, int(n) - 1)  # less the sampler's own

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_polls(store: Storage, sources: int, polls: int, *, timeout: float, on_third: Any = None) -> float:
    started = time.monotonic()
    fired = False
    while time.monotonic() - started < timeout:
        done = int(one(store, "SELECT COUNT(*) FROM sources WHERE polls >= ?", [polls]))
        if on_third is not None and not fired and done >= sources // 3:
            on_third()
            fired = True
        if done >= sources:
            return time.monotonic() - started
        time.sleep(0.25)
    raise TimeoutError(f"cycle did not finish in {timeout:.0f} s ({done} of {sources} sources)")


def wait_alerts(store: Storage, *, timeout: float) -> None:
    """Until no alert is waiting or in flight (a SIGKILLed sender's claim runs out first)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not int(one(store, "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')")):
            return
        time.sleep(0.25)
    raise TimeoutError(f"alerts not drained in {timeout:.0f} s")


def alert_figures(store: Storage, receiver: Receiver) -> dict[str, int]:
    ids = [r[0] for r in store.backend.read("SELECT event_id FROM outbox WHERE status = 'sent'").rows]
    return {
        "alerts": len(ids),
        "alerts_dead": int(one(store, "SELECT COUNT(*) FROM outbox WHERE status = 'dead'")),
        "alerts_delivered": len(receiver.deliveries),
        "alerts_sent_twice": sum(1 for n in receiver.deliveries.values() if n >= 2),
        "alerts_not_delivered": sum(1 for i in ids if i not in receiver.deliveries),
        "bad_signatures": receiver.bad_signatures,
    }


def measure(
    workers: int, url: str, config: Path, sources: int, receiver: Receiver, *, kill: bool, timeout: float
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "daemon.py"), "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for _ in range(workers)
    ]
    out: dict[str, Any] = {"workers": workers}
    store = Storage(url)
    try:
        out["cold_cycle_s"] = round(wait_polls(store, sources, 1, timeout=timeout), 1)
        time.sleep(1.0)
        mentions_before = int(one(store, "SELECT COUNT(*) FROM mentions"))
        cpu_before = [cpu_of(p.pid) for p in procs]
        with store.backend.transaction() as tx:
            tx.execute("UPDATE sources SET next_poll_at = NULL")
        with Sampler(store) as sampler:
            out["cycle_s"] = round(wait_polls(store, sources, 2, timeout=timeout), 1)
        time.sleep(1.0)
        out["cpu_s_per_worker"] = [round(cpu_of(p.pid) - c, 1) for p, c in zip(procs, cpu_before, strict=True)]
        out["db_connections"] = sampler.max_connections
        polls = store.backend.read("SELECT MIN(polls), MAX(polls) FROM sources").rows[0]
        out["polls_per_source"] = [int(polls[0]) - 1, int(polls[1]) - 1]
        out["new_mentions"] = int(one(store, "SELECT COUNT(*) FROM mentions")) - mentions_before
        out["duplicate_mentions"] = int(
            one(store, "SELECT COUNT(*) - COUNT(DISTINCT COALESCE(url, guid, title)) FROM mentions")
        )
        if kill and workers > 1:
            with store.backend.transaction() as tx:
                tx.execute("UPDATE sources SET next_poll_at = NULL")
            killed: dict[str, float] = {}

            def sigkill() -> None:
                killed["at"] = time.monotonic()
                procs[0].send_signal(signal.SIGKILL)

            before = int(one(store, "SELECT COUNT(*) FROM mentions"))
            wait_polls(store, sources, 3, timeout=timeout + 300, on_third=sigkill)
            out["after_kill_s"] = round(time.monotonic() - killed["at"], 1)
            out["mentions_after_kill"] = int(one(store, "SELECT COUNT(*) FROM mentions")) - before
        wait_alerts(store, timeout=120)
        out.update(alert_figures(store, receiver))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=90)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", type=int, default=10_000)
    p.add_argument("--hosts", type=int, default=200)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--changed", type=float, default=0.02, help="share of feeds with new entries on every request")
    p.add_argument("--model", default="auto", help="classifier model (auto: the packaged one; rules: no spaCy)")
    p.add_argument("--timeout", type=float, default=10.0, help="fetch.timeout (the lease is 2 x (this + 10 s) + 60 s)")
    p.add_argument("--cycle-timeout", type=float, default=1800.0)
    p.add_argument(
        "--database", help="a PostgreSQL URL to use instead of a throwaway cluster (its databases are dropped)"
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from helpers_pg import Cluster, fresh_database, start_cluster, stop_cluster

    cluster: Cluster | None
    if args.database:
        cluster = Cluster(args.database)
    else:
        cluster, why = start_cluster()
        if cluster is None:
            print(f"bench/workers.py: {why}", file=sys.stderr)
            return 1
    server = LoadServer(
        hosts=args.hosts,
        entries=10,
        extra=[
            "--changed",
            str(args.changed),
            "--slow",
            "0",
            "--failing",
            "0",
            "--latency-min",
            "0.1",
            "--latency-max",
            "0.3",
        ],
    )
    rows = []
    receiver = Receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for w in args.workers:
                with fresh_database(cluster) as url:
                    Storage(url).close()  # migrate once before the workers start
                    receiver.reset()
                    config = write_config(Path(tmp), url, server, args.sources, args.model, args.timeout, receiver.url)
                    print(f"bench/workers.py: {w} worker(s), {args.sources} sources ...", file=sys.stderr, flush=True)
                    rows.append(measure(w, url, config, args.sources, receiver, kill=True, timeout=args.cycle_timeout))
                    print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        receiver.close()
        server.close()
        if not args.database:
            stop_cluster(cluster)
    if args.json:
        # One line: bench/run_all.py reads the last line of stdout.
        print(json.dumps({"sources": args.sources, "hosts": args.hosts, "model": args.model, "rows": rows}))
        return 0
    print(
        f"{args.sources} sources on {args.hosts} loopback hosts, 100-300 ms per answer, {args.changed:.0%} changed, model {args.model}"
    )
    print(
        "| workers | cold cycle | cycle | polls/source | new mentions | duplicates | DB connections | CPU s per worker"
        " | after SIGKILL | alerts: delivered / sent twice / not delivered |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        kill = f"{r['after_kill_s']} s, {r['mentions_after_kill']} new" if "after_kill_s" in r else "-"
        alerts = f"{r['alerts_delivered']} of {r['alerts']} / {r['alerts_sent_twice']} / {r['alerts_not_delivered']}"
        print(
            f"| {r['workers']} | {r['cold_cycle_s']} s | {r['cycle_s']} s | {r['polls_per_source'][0]}..{r['polls_per_source'][1]} "
            f"| {r['new_mentions']} | {r['duplicate_mentions']} | {r['db_connections']} | {', '.join(map(str, r['cpu_s_per_worker']))} "
            f"| {kill} | {alerts} |"
        )
        if r["bad_signatures"]:
            print(
                f"{r['workers']} worker(s): {r['bad_signatures']} request(s) refused for a bad signature (a body cut off by the SIGKILL)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
