"""Scale: 10,000 feeds on one machine, one full poll cycle, then a compressed soak.

    python bench/scale.py                       # 10,000 sources, 30 simulated minutes of soak (4.5 real minutes)
    python bench/scale.py --quick               # CI-sized: 500 sources, 30 simulated minutes in ~20 s
    python bench/scale.py --sources 2000 --duration 10m --interval 10 --json

``bench/loadserver.py`` runs as a separate process and plays the feeds on 200
loopback hosts (127.0.0.2...): most answer 304 Not Modified, ~5 % change on
every poll, ~1 % answer after 2-5 s, ~1 % fail (500, or hang until fetch.timeout).
This process is the daemon (``beacons.daemon.run``) with a real SQLite file, so
the CPU time and memory figures are the daemon's alone:

1. a cold cycle (every feed new: parse, match, classify, store), reported only;
2. the measured cycle: ``run(config, once=True)`` again, in steady state;
3. a soak: the daemon's loop mode (one schedule, bounded polls) with intervals
   compressed (``--interval`` real seconds stand for ``--sim-interval``),
   sampling RSS and open file descriptors every ``--sample`` seconds.

The config is the default one except ``fetch.per_host_delay: 0`` (the default
1 s spacing would make a host with 50 feeds take 50 s alone) and a
``fetch.per_host_concurrency`` of 2 (the default). Targets on a 2-core machine:
a cycle under 60 s, peak RSS under 400 MB, RSS growth over the soak under 10 %,
no file descriptor leaked.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Self

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beacons.classify import Classifier, load_classifier
from beacons.config import (
    BrandConfig,
    ClassifierConfig,
    Config,
    FetchConfig,
    ProductConfig,
)
from beacons.daemon import run
from beacons.log import configure
from beacons.models import Source
from beacons.pipeline import PollResult
from collectors.rss import Options as RssOptions

HERE = Path(__file__).resolve().parent
BRAND = BrandConfig(
    "Acme", aliases=("Acme Corp",), products=(ProductConfig("RouterX", ("RX-200",)), ProductConfig("Acme Cloud"))
)
TARGETS = {"cycle_s": 60.0, "peak_rss_mb": 400.0, "rss_growth_pct": 10.0, "fd_leaked": 0}


class LoadServer:
    """``bench/loadserver.py`` in a child process; its stdin is our lifeline (closing it stops the server)."""

    def __init__(self, *, hosts: int, entries: int, extra: list[str] | None = None) -> None:
        cmd = [
            sys.executable,
            str(HERE / "loadserver.py"),
            "--hosts",
            str(hosts),
            "--entries",
            str(entries),
            *(extra or []),
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.kill()
            raise RuntimeError(f"load server did not start: {' '.join(cmd)}")
        ready = json.loads(line)
        self.port: int = ready["port"]
        self.hosts: list[str] = ready["hosts"]

    def url(self, n: int) -> str:
        return f"http://{self.hosts[n % len(self.hosts)]}:{self.port}/feed/{n}.xml"

    def stats(self, *, reset: bool = False) -> dict[str, Any]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/stats{'?reset=1' if reset else ''}", timeout=10
        ) as r:
            return dict(json.loads(r.read()))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()  # the server exits on EOF
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def make_config(
    server: LoadServer,
    sources: int,
    database: Path,
    *,
    interval: float = 300.0,
    timeout: float = 30.0,
    concurrency: int = 64,
    per_host: int = 2,
    model: str = "auto",
) -> Config:
    return Config(
        database=str(database),
        brands=(BRAND,),
        sources=tuple(Source(f"feed-{n}", "rss", interval, RssOptions(server.url(n))) for n in range(sources)),
        fetch=FetchConfig(timeout=timeout, per_host_delay=0.0, concurrency=concurrency, per_host_concurrency=per_host),
        classifier=ClassifierConfig(model=model),
    )


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Progress:
    """Prints the server's request count every few seconds while a phase runs (on stderr)."""

    def __init__(self, server: LoadServer, label: str, every: float = 5.0) -> None:
        self.server, self.label, self.every = server, label, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self.every):
            s = self.server.stats()
            print(
                f"  {self.label}: {time.monotonic() - started:5.0f} s, {s['requests']} requests, {s['in_flight']} in flight, "
                f"RSS {rss_mb():.0f} MB",
                file=sys.stderr,
                flush=True,
            )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _finishes(log_path: Path, offset: int, started: float) -> list[tuple[float, bool]]:
    """(seconds after ``started``, hung) of each source.polled line written since ``offset`` in the JSON log."""
    out = []
    with open(log_path, encoding="utf-8") as log:
        log.seek(offset)
        for line in log:
            if '"source.polled"' not in line:
                continue
            event = json.loads(line)
            at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp() - started
            out.append((at, "FetchTimeout" in str(event.get("error", ""))))
    return out


def cycle(server: LoadServer, config: Config, classifier: Classifier, label: str, log: Any) -> dict[str, Any]:
    """One ``run(config, once=True)``: wall, CPU per source, polls/s, statuses, when sources were done.

    Completion times come from the JSON log's ``source.polled`` timestamps (the worker pool starts a
    source only when a worker is free, so a poll's own duration says nothing of when it was done). The
    hanging feeds, which end at fetch.timeout, are reported on their own line.
    """
    before = server.stats(reset=True)
    log.flush()
    offset = log.tell()
    started = time.time()
    cpu, wall = cpu_seconds(), time.perf_counter()
    with Progress(server, label):
        results: list[PollResult] = asyncio.run(run(config, once=True, install_signals=False, classifier=classifier))
    wall = time.perf_counter() - wall
    cpu = cpu_seconds() - cpu
    after = server.stats()
    requests = after["requests"] - before["requests"]
    log.flush()
    finishes = _finishes(Path(log.name), offset, started)
    done = sorted(at for at, _ in finishes) or [wall]
    others = [at for at, hung in finishes if not hung]
    statuses = Counter(r.status for r in results)
    return {
        "sources": len(results),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_source": round(cpu / max(1, len(results)) * 1000, 2),
        "polls_per_s": round(len(results) / wall, 1),
        "hanging": sum(hung for _, hung in finishes),
        "wall_without_hanging_s": round(max(others, default=wall), 2),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "statuses": dict(statuses),
        "new_mentions": sum(r.counts.get("new", 0) for r in results),
        "done_p50_s": round(statistics.median(done), 2),
        "done_p99_s": round(done[int(len(done) * 0.99) - 1], 2),
        "max_in_flight": after["max_in_flight"],
        "max_in_flight_per_host": after["max_in_flight_per_host"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


@dataclass
class Samples:
    at: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)


def soak(
    server: LoadServer, config: Config, classifier: Classifier, *, seconds: float, sample: float
) -> dict[str, Any]:
    """The daemon's loop mode for ``seconds``; RSS and fds sampled from a thread every ``sample`` s."""
    gc.collect()
    fds_before = open_fds()
    samples = Samples()
    started = time.monotonic()
    req0 = server.stats()["requests"]
    cpu0 = cpu_seconds()
    done = threading.Event()

    def sampler() -> None:
        while not done.wait(sample):
            samples.at.append(time.monotonic() - started)
            samples.rss.append(rss_mb())
            samples.fds.append(open_fds())
            s = server.stats()
            print(
                f"  soak: {samples.at[-1]:5.0f}/{seconds:.0f} s, {s['requests'] - req0} requests, RSS {samples.rss[-1]:.0f} MB, "
                f"{samples.fds[-1]} fds",
                file=sys.stderr,
                flush=True,
            )

    stopping: list[float] = []

    async def main() -> None:
        stop = asyncio.Event()
        daemon = asyncio.create_task(run(config, stop=stop, install_signals=False, classifier=classifier))
        await asyncio.sleep(seconds)
        stopping.append(time.monotonic())
        stop.set()
        await daemon  # polls in flight finish first: a hanging feed until fetch.timeout

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    asyncio.run(main())
    done.set()
    thread.join()
    wall = time.monotonic() - started
    cpu = cpu_seconds() - cpu0
    gc.collect()
    fds_after = open_fds()
    requests = server.stats()["requests"] - req0
    # Growth: the settled start (samples 10-30 % in, after the first polls' stagger) against
    # the last 20 % before the stop (the shutdown, waiting on polls in flight, is not the soak).
    rss = [r for at, r in zip(samples.at, samples.rss, strict=True) if at <= seconds] or samples.rss[:1] or [rss_mb()]
    n = len(rss)
    head = rss[max(1, n // 10) : max(2, n * 3 // 10)] or rss[:1]
    tail = rss[n * 8 // 10 :] or rss[-1:]
    base, end = statistics.median(head), statistics.median(tail)
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "rss_start_mb": round(base, 1),
        "rss_end_mb": round(end, 1),
        "rss_max_mb": round(max(samples.rss, default=0), 1),
        "rss_growth_pct": round((end - base) / base * 100, 1) if base else 0.0,
        "fds_before": fds_before,
        "fds_after": fds_after,
        "fds_max": max(samples.fds, default=fds_before),
        "fd_leaked": fds_after - fds_before,
        "samples": n,
        "shutdown_s": round(time.monotonic() - stopping[0], 1) if stopping else None,
    }


def parse_duration(text: str) -> float:
    from beacons.settings import parse_duration as parse

    return parse(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", type=int, help="feeds (default 10000; 500 with --quick)")
    p.add_argument("--hosts", type=int, help="loopback hosts the feeds are spread over (default 200; 20 with --quick)")
    p.add_argument("--entries", type=int, default=10, help="entries per feed (default 10)")
    p.add_argument("--duration", default="30m", help="simulated soak time (default 30m; 0 skips the soak)")
    p.add_argument(
        "--interval", type=float, help="real seconds between a source's polls in the soak (default 45; 3 with --quick)"
    )
    p.add_argument(
        "--sim-interval",
        default="5m",
        help="the interval --interval stands for (default 5m, the default source interval)",
    )
    p.add_argument("--sample", type=float, help="seconds between RSS/fd samples (default 5; 1 with --quick)")
    p.add_argument(
        "--timeout", type=float, help="fetch.timeout in seconds (default 30, the default config's; 5 with --quick)"
    )
    p.add_argument("--model", default="auto", help="classifier.model: auto (default), rules or a path")
    p.add_argument(
        "--log-level",
        default="info",
        help="daemon log level; logs go to a JSON file in the temporary folder (default info)",
    )
    p.add_argument("--quick", action="store_true", help="CI-sized run")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="write a cProfile of the measured (steady) cycle to FILE (read it with python -m pstats FILE)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the figures on stdout (the table goes to stderr)",
    )
    args = p.parse_args(argv)
    sources = args.sources or (500 if args.quick else 10_000)
    hosts = args.hosts or (20 if args.quick else 200)
    interval = args.interval or (3.0 if args.quick else 45.0)
    sample = args.sample or (1.0 if args.quick else 5.0)
    timeout = args.timeout or (5.0 if args.quick else 30.0)
    compression = parse_duration(args.sim_interval) / interval
    soak_seconds = parse_duration(args.duration) / compression
    out = sys.stderr if args.json else sys.stdout

    with tempfile.TemporaryDirectory(prefix="beacons-scale-") as tmp:
        log_file = open(Path(tmp) / "daemon.log", "w")  # noqa: SIM115  (closed below, after the daemon)
        configure(args.log_level, "json", stream=log_file)
        server = LoadServer(hosts=hosts, entries=args.entries)
        try:
            config = make_config(server, sources, Path(tmp) / "scale.db", timeout=timeout, model=args.model)
            print(
                f"{sources} sources on {hosts} loopback hosts (load server pid {server.proc.pid}); classifier {args.model}",
                file=sys.stderr,
            )
            classifier = load_classifier(args.model)
            print("cold cycle (every feed new)...", file=sys.stderr)
            cold = cycle(server, config, classifier, "cold cycle", log_file)
            print("measured cycle (steady state)...", file=sys.stderr)
            if args.profile:
                import cProfile

                with cProfile.Profile() as profile:
                    steady = cycle(server, config, classifier, "cycle", log_file)
                profile.dump_stats(args.profile)
            else:
                steady = cycle(server, config, classifier, "cycle", log_file)
            soaked: dict[str, Any] | None = None
            if soak_seconds > 0:
                print(
                    f"soak: {args.duration} simulated = {soak_seconds:.0f} s real (interval {interval:g} s stands for {args.sim_interval})",
                    file=sys.stderr,
                )
                soak_config = replace(config, sources=tuple(replace(s, interval=interval) for s in config.sources))
                soaked = soak(server, soak_config, classifier, seconds=soak_seconds, sample=sample)
            with open(log_file.name) as written:
                log_lines = sum(1 for _ in written)
        finally:
            server.close()
            log_file.close()
    figures = {
        "sources": sources,
        "hosts": hosts,
        "classifier": classifier.name,
        "cold": cold,
        "cycle": steady,
        "soak": soaked,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "log_lines": log_lines,
        "timeout_s": timeout,
        "targets": TARGETS,
    }
    report(figures, out)
    if args.json:
        print(json.dumps(figures))
    return 0


def report(f: dict[str, Any], out: Any) -> None:
    c, cold, s = f["cycle"], f["cold"], f["soak"]

    def row(name: str, value: str, target: str = "") -> None:
        print(f"{name:44} {value:>14} {target:>10}", file=out)

    print(
        f"\nbeacons scale benchmark: {f['sources']} sources on {f['hosts']} hosts, classifier {f['classifier']}",
        file=out,
    )
    row("measure", "value", "target")
    row("cold cycle wall time (every feed new)", f"{cold['wall_s']:.1f} s")
    row("cycle wall time (steady state)", f"{c['wall_s']:.1f} s", "< 60 s")
    row("  half the sources done after", f"{c['done_p50_s']:.1f} s")
    row("  99 % of the sources done after", f"{c['done_p99_s']:.1f} s")
    row("  every source but the hanging ones done after", f"{c['wall_without_hanging_s']:.1f} s")
    row(f"  hanging feeds (each ends at fetch.timeout, {f['timeout_s']:g} s)", f"{c['hanging']}")
    row("cycle polls per second (sources / wall)", f"{c['polls_per_s']:.0f}")
    row("cycle requests per second", f"{c['requests_per_s']:.0f}")
    row("cycle CPU time (daemon)", f"{c['cpu_s']:.1f} s")
    row("cycle CPU per source", f"{c['cpu_ms_per_source']:.2f} ms")
    row("cold cycle CPU per source", f"{cold['cpu_ms_per_source']:.2f} ms")
    row("cycle statuses", " ".join(f"{k}={v}" for k, v in sorted(c["statuses"].items())))
    row("requests in flight, max overall / per host", f"{c['max_in_flight']} / {c['max_in_flight_per_host']}")
    row("peak RSS (daemon)", f"{f['peak_rss_mb']:.0f} MB", "< 400 MB")
    if s:
        row("soak requests per second", f"{s['requests_per_s']:.0f}")
        row("soak RSS start -> end", f"{s['rss_start_mb']:.0f} -> {s['rss_end_mb']:.0f} MB")
        row("soak RSS growth", f"{s['rss_growth_pct']:+.1f} %", "< 10 %")
        row("soak open fds before / max / after", f"{s['fds_before']} / {s['fds_max']} / {s['fds_after']}")
        row("soak fds leaked", f"{s['fd_leaked']}", "0")
        row("shutdown after the soak (polls in flight finish)", f"{s['shutdown_s']:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
