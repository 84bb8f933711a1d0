"""beacons beside the feed reader people already trust, on identical bytes: ``python bench/peers.py``

Needs the bench extra: ``pip install '.[bench]'`` (lemon24/reader).

200 feeds x 50 entries (``bench/ingest.make_feeds``: varied posts, one brand
named in 20 % of entries) are written to a folder and served by
``bench/feedhost.py`` from a separate process on 20 loopback hosts, with ETag
and Last-Modified. Each contender runs as a whole, cold process, every import
and model load inside the figure:

- **beacons**: ``python daemon.py --config C --once`` (the shipped spaCy model,
  a fresh SQLite file; ``fetch.per_host_delay: 0``, other settings default);
  then the same command again, when every feed answers 304;
- **reader** (lemon24/reader): ``make_reader``, ``add_feed`` for each URL,
  ``update_feeds(workers=4)`` into a fresh database; then again (all 304);
- **feedparser** parse only: ``feedparser.parse`` of each file from disk, no
  HTTP and no storage: the floor.

Wall time and CPU time (user + system) come from ``os.wait4`` on the child;
beacons' parse workers are its children, joined before it exits, so their CPU
is in that figure (it is also printed on its own line, from the daemon's
``parsepool.stopped`` log line).
Peak RSS is each child's own ``VmHWM``, read from ``/proc/self/status`` as it
exits (a small wrapper runs the command): ``ru_maxrss`` would not do, since
Linux carries the parent's peak across ``exec`` into it. The RSS of the whole
process tree (the daemon and its parse workers) is sampled every 50 ms
beside it, and the larger of the two is the figure. Each figure is the median
of ``--repeat`` runs, taken in turns so a machine that gets busier moves
every contender alike. The ratios (beacons / reader) are the figures to read
on a shared machine.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from feedhost import FeedHost, write_feeds  # noqa: E402
from ingest import make_feeds  # noqa: E402

TARGETS = {"cold_wall": 0.8, "cold_cpu": 1.0, "not_modified_wall": 1.0, "peak_rss": 1.5}

READER = """
import sys
from reader import make_reader
db, urls, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = make_reader(db)
for url in open(urls).read().split():
    r.add_feed(url, exist_ok=True)
r.update_feeds(workers=workers)
print(r.get_entry_counts().total)
r.close()
"""

FEEDPARSER = """
import io, sys
from pathlib import Path
import feedparser
n = 0
for path in sorted(Path(sys.argv[1]).glob("*.xml")):
    n += len(feedparser.parse(io.BytesIO(path.read_bytes())).entries)
print(n)
"""


# Runs ``python SCRIPT ARGS`` or ``python -c CODE ARGS`` in this process and writes its own VmHWM (KiB)
# to the file named first as it exits: the child's exact peak, not one carried over from its parent.
WRAP = """
import atexit, os, runpy, sys
out = sys.argv[1]
def hwm():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(kib)
atexit.register(hwm)
if sys.argv[2] == "-c":
    sys.argv = ["-c", *sys.argv[4:]]
    exec(compile(CODE, "<string>", "exec"), {"__name__": "__main__"})
else:
    sys.argv = sys.argv[2:]
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as `python SCRIPT` would have it
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _wrapped(cmd: list[str], hwm_file: Path) -> list[str]:
    """``cmd`` (``[python, script, ...]`` or ``[python, "-c", code, ...]``) run through WRAP."""
    python, rest = cmd[0], cmd[1:]
    if rest[0] == "-c":
        wrap = WRAP.replace("CODE", repr(rest[1]))
        return [python, "-c", wrap, str(hwm_file), "-c", "code", *rest[2:]]
    return [python, "-c", WRAP.replace("CODE", "''"), str(hwm_file), *rest]


def _tree_rss_kib(pid: int) -> int:
    """RSS of ``pid`` and its descendants now (KiB); 0 for those already gone."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{p}/task/{p}/children") as children:
                todo += [int(c) for c in children.read().split()]
        except (OSError, ValueError):
            continue
    return total


def measure(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Wall, CPU and peak RSS of one child process (and its parse workers), and the last line it printed."""
    hwm_file = cwd / "vmhwm.txt"
    hwm_file.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(_wrapped(cmd, hwm_file), cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        tree_peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal tree_peak
            while not done.wait(0.05):
                tree_peak = max(tree_peak, _tree_rss_kib(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            done.set()
            sampler.join()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])} exited {proc.returncode}: {err.read()[-2000:].decode()}")
        lines = out.read().decode().strip().splitlines()
        workers_cpu = 0.0
        for line in err.read().decode(errors="replace").splitlines():
            if '"parsepool.stopped"' in line:
                workers_cpu += float(json.loads(line)["cpu_s"])
    own = int(hwm_file.read_text()) / 1024
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,  # parse workers included: the daemon joins (reaps) them
        "workers_cpu": workers_cpu,
        "rss": max(own, tree_peak / 1024),
        "own_rss": own,
        "said": lines[-1] if lines else "",
    }


def beacons_config(path: Path, database: Path, urls: list[str], model: str, parse_processes: int | None = None) -> Path:
    config = {
        "database": str(database),
        "brands": [
            {
                "name": "Acme",
                "aliases": ["Acme Corp"],
                "handles": ["@acme", "@AcmeSupport"],
                "products": [{"name": "RouterX", "aliases": ["RX-200"]}, {"name": "Acme Cloud"}],
            }
        ],
        "sources": [{"id": f"feed-{n}", "kind": "rss", "url": url} for n, url in enumerate(urls)],
        "classifier": {"model": model},
        "fetch": {"per_host_delay": "0s"},
    }
    if parse_processes is not None:
        config["fetch"]["parse_processes"] = parse_processes
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def one_round(
    folder: Path, urls: list[str], work: Path, n: int, model: str, workers: int, parse_processes: int | None = None
) -> dict[str, Any]:
    """One cold and one all-304 run of each contender, each on a fresh database."""
    python = sys.executable
    config = beacons_config(work / f"beacons-{n}.yaml", work / f"beacons-{n}.db", urls, model, parse_processes)
    url_file = work / "urls.txt"
    url_file.write_text("\n".join(urls), encoding="utf-8")
    daemon = [python, str(ROOT / "daemon.py"), "--config", str(config), "--once"]
    reader = [python, "-c", READER, str(work / f"reader-{n}.sqlite"), str(url_file), str(workers)]
    runs: dict[str, Any] = {}
    order = ["beacons", "reader", "feedparser"] if n % 2 == 0 else ["feedparser", "reader", "beacons"]
    for who in order:
        print(f"  round {n + 1}: {who}", file=sys.stderr, flush=True)
        if who == "beacons":
            runs["beacons_cold"] = measure(daemon, work)
            runs["beacons_304"] = measure(daemon, work)
        elif who == "reader":
            runs["reader_cold"] = measure(reader, work)
            runs["reader_304"] = measure(reader, work)
        else:
            runs["feedparser"] = measure([python, "-c", FEEDPARSER, str(folder)], work)
    return runs


def median(rounds: list[dict[str, Any]], run: str, key: str) -> float:
    return statistics.median(r[run][key] for r in rounds)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feeds", type=int, default=200, help="feeds (default 200)")
    p.add_argument("--entries", type=int, default=50, help="entries per feed (default 50)")
    p.add_argument("--brand-share", type=float, default=0.2, help="share of entries naming the brand (default 0.2)")
    p.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported (default 3)")
    p.add_argument("--model", default="auto", help="beacons classifier.model (default auto: the shipped model)")
    p.add_argument("--reader-workers", type=int, default=4, help="reader's update_feeds(workers=) (default 4)")
    p.add_argument("--hosts", type=int, default=20, help="loopback hosts serving the feeds (default 20)")
    p.add_argument(
        "--parse-processes",
        type=int,
        help="beacons' fetch.parse_processes (default: the config default); 0 parses in the daemon's process",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout, the table on stderr")
    args = p.parse_args(argv)
    try:
        import reader  # noqa: F401
    except ImportError:
        print("lemon24/reader is not installed: pip install '.[bench]'", file=sys.stderr)
        return 1
    out = sys.stderr if args.json else sys.stdout
    bodies = make_feeds(args.feeds, args.entries, args.brand_share)
    megabytes = sum(map(len, bodies)) / 1e6
    entries = args.feeds * args.entries
    # A pip-installed beacons ships its bytecode; a checkout writes it on first run, unless
    # PYTHONDONTWRITEBYTECODE is set (as on the project's machine): then every run would compile
    # ~100 modules from source. Compile them once here, as pip would (reader's come from its wheel).
    for package in ("beacons", "collectors"):
        compileall.compile_dir(ROOT / package, quiet=1)
    with tempfile.TemporaryDirectory(prefix="beacons-peers-") as tmp:
        work = Path(tmp)
        write_feeds(work / "feeds", bodies)
        with FeedHost(work / "feeds", args.hosts) as host:
            urls = [host.url(n) for n in range(args.feeds)]
            rounds = [
                one_round(work / "feeds", urls, work, n, args.model, args.reader_workers, args.parse_processes)
                for n in range(args.repeat)
            ]
    m = {
        run: {k: median(rounds, run, k) for k in ("wall", "cpu", "rss", "own_rss", "workers_cpu")} for run in rounds[0]
    }
    ratios = {
        "cold_wall": m["beacons_cold"]["wall"] / m["reader_cold"]["wall"],
        "cold_cpu": m["beacons_cold"]["cpu"] / m["reader_cold"]["cpu"],
        "not_modified_wall": m["beacons_304"]["wall"] / m["reader_304"]["wall"],
        "peak_rss": max(m["beacons_cold"]["rss"], m["beacons_304"]["rss"])
        / max(m["reader_cold"]["rss"], m["reader_304"]["rss"]),
        "entries_vs_parse_only": (entries / m["beacons_cold"]["cpu"]) / (entries / m["feedparser"]["cpu"]),
    }
    load = os.getloadavg()[0]
    print(
        f"\nbeacons vs lemon24/reader vs feedparser: {args.feeds} feeds x {args.entries} entries ({megabytes:.1f} MB), "
        f"brand in {args.brand_share:.0%}; medians of {args.repeat}; load average {load:.1f}",
        file=out,
    )
    print(f"{'':34} {'beacons':>10} {'reader':>10} {'feedparser':>11} {'beacons/reader':>15} {'target':>7}", file=out)

    def row(name: str, b: float, r: float | None, f: float | None, unit: str, ratio: str, target: str = "") -> None:
        cells = [f"{v:.2f}{unit}" if v is not None else "-" for v in (b, r, f)]
        print(f"{name:34} {cells[0]:>10} {cells[1]:>10} {cells[2]:>11} {ratio:>15} {target:>7}", file=out)

    row(
        "cold run --once, wall",
        m["beacons_cold"]["wall"],
        m["reader_cold"]["wall"],
        m["feedparser"]["wall"],
        " s",
        f"{ratios['cold_wall']:.2f}x",
        "<= 0.8x",
    )
    row(
        "cold, CPU",
        m["beacons_cold"]["cpu"],
        m["reader_cold"]["cpu"],
        m["feedparser"]["cpu"],
        " s",
        f"{ratios['cold_cpu']:.2f}x",
        "<= 1.0x",
    )
    row(
        "second cycle (all 304), wall",
        m["beacons_304"]["wall"],
        m["reader_304"]["wall"],
        None,
        " s",
        f"{ratios['not_modified_wall']:.2f}x",
        "<= 1.0x",
    )
    row(
        "second cycle (all 304), CPU",
        m["beacons_304"]["cpu"],
        m["reader_304"]["cpu"],
        None,
        " s",
        f"{m['beacons_304']['cpu'] / m['reader_304']['cpu']:.2f}x",
    )
    row(
        "peak RSS (MB)",
        max(m["beacons_cold"]["rss"], m["beacons_304"]["rss"]),
        max(m["reader_cold"]["rss"], m["reader_304"]["rss"]),
        m["feedparser"]["rss"],
        "",
        f"{ratios['peak_rss']:.2f}x",
        "<= 1.5x",
    )
    row(
        "peak RSS, all-304 cycle (MB)",
        m["beacons_304"]["rss"],
        m["reader_304"]["rss"],
        None,
        "",
        f"{m['beacons_304']['rss'] / m['reader_304']['rss']:.2f}x",
    )
    row(
        "beacons' own process, peak RSS (MB)",
        m["beacons_cold"]["own_rss"],
        None,
        None,
        "",
        "",
    )
    print(f"{'beacons parse workers, CPU (in cold)':34} {m['beacons_cold']['workers_cpu']:>8.2f} s", file=out)
    rates = [entries / m[k]["wall"] for k in ("beacons_cold", "reader_cold", "feedparser")]
    print(f"{'entries/s, cold (wall)':34} {rates[0]:>10.0f} {rates[1]:>10.0f} {rates[2]:>11.0f}", file=out)
    print(
        f"\nbeacons' whole cold run reaches {ratios['entries_vs_parse_only']:.0%} of feedparser's parse-only rate "
        f"(CPU). reader stored {rounds[-1]['reader_cold']['said']} entries; beacons: {rounds[-1]['beacons_cold']['said'][:120]}",
        file=out,
    )
    met = {k: ratios[k] <= t for k, t in TARGETS.items()}
    print("targets: " + ", ".join(f"{k} {'OK' if ok else 'MISSED'}" for k, ok in met.items()), file=out)
    if args.json:
        print(
            json.dumps(
                {
                    "feeds": args.feeds,
                    "entries": args.entries,
                    "repeat": args.repeat,
                    "load_average": round(load, 1),
                    "medians": {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in m.items()},
                    "ratios": {k: round(v, 3) for k, v in ratios.items()},
                    "targets": TARGETS,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
