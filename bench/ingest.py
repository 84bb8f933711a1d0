"""End-to-end ingest throughput of the real ``run --once`` path, beside feedparser parsing the same bytes.

    python bench/ingest.py [--feeds 200] [--entries 50] [--brand-share 0.2] [--models rules auto]

Generates feeds x entries RSS 2.0 documents (varied, realistic posts; a share
of them mention the Acme brand), serves them with ETag and Last-Modified from
``bench/feedhost.py`` in a separate process on 20 loopback hosts, and for each
classifier case runs a fresh child process, pinned to one core, that times

  1. ``feedparser.parse`` of every body, with the options beacons uses
     (``collectors._feed.FEEDPARSER_OPTIONS``): the floor;
  2. ``beacons.daemon.run(config, once=True)``: the real machinery of
     ``beacons run --once`` (HTTP over loopback, asyncio, the worker pool,
     JSON logging to a file, parse, match, classify, route, thread, store into
     a fresh SQLite file), every lazy import and model load included.

The ratio of the two rates is taken on the child's CPU time
(``time.process_time``; the server's CPU is its own), so a busy machine moves
both alike; wall-clock seconds are printed beside it. Target: the real path at
least 60 % of the parse-only rate, for the rules case; the model case is
reported beside it. Process start-up and imports of beacons itself are left
out (``bench/peers.py`` measures the whole command).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from beacons.models import Brand, Product  # noqa: E402

BRANDS = (
    Brand(
        "Acme",
        aliases=("Acme Corp", "acme.com"),
        handles=("@acme", "@AcmeSupport"),
        products=(Product("RouterX", ("Router X", "RX-200")), Product("Acme Cloud")),
        exclude=("acme looney tunes",),
    ),
)
TARGET = 0.60

_BRANDED = (
    "My {p} keeps dropping wifi every night since the last firmware update. Is anyone else seeing this?",
    "Charged twice for {p} this month and support closed my ticket without an answer. I want a refund.",
    "@AcmeSupport my {p} will not connect after a factory reset, the light just blinks orange.",
    "Six months with the {p}: coverage is excellent and the app is clear. I would recommend it.",
    "Thank you to the Acme support team, they replaced my {p} in two days. Awesome service.",
    "Acme Corp announced quarterly revenue up 12%, driven by {p} sales in Europe, according to a filing.",
    "Thinking about buying the {p} or something from Globex. Which one is better for a large flat?",
    "We're hiring: remote support engineer to work on {p}. Apply now, full-time role.",
    "How do I set up a guest network on the {p}? The app only shows the main network.",
    "Switched from my ISP box to the {p} last month. Not a single dropout since, so happy.",
)
_PRODUCTS = ("Acme RouterX", "RX-200", "Acme Cloud", "Router X", "Acme router", "#RouterX")
_PLAIN = (
    "The starter finally behaves after a week of feeding, and the crumb is open and glossy.",
    "Council approves the new cycle lane on the high street after a long consultation.",
    "Notes from the weekend: a broken fence, two new tomato beds and far too much coffee.",
    "Our team shipped the new billing page today; thanks to everyone who tested the beta.",
    "A short review of three mechanical keyboards for people who type all day.",
    "Why my home lab moved from a rack to a shelf, and what I learned about noise.",
    "The museum reopens on Saturday with a new wing dedicated to early computing.",
    "Five things I wish I had known before adopting a rescue greyhound.",
    "Local election results are in: turnout was the highest in twenty years.",
    "Trying out a new static site generator; the build is fast but the docs are thin.",
)
_TAILS = (
    "More in the thread below.",
    "Photos at the end of the post.",
    "Update: still the same after a reboot.",
    "Comments are open as always.",
    "",
)


def make_feeds(feeds: int, entries: int, brand_share: float, seed: int = 7) -> list[bytes]:
    """``feeds`` RSS 2.0 documents of ``entries`` items each, deterministic for a seed."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    bodies = []
    for f in range(feeds):
        items = []
        for e in range(entries):
            n = f * entries + e
            if rng.random() < brand_share:
                text = rng.choice(_BRANDED).format(p=rng.choice(_PRODUCTS))
            else:
                text = rng.choice(_PLAIN)
            paragraphs = [text, *rng.sample(_PLAIN, 2), rng.choice(_TAILS)]
            html = (
                "".join(f"<p>{escape(p)}</p>" for p in paragraphs if p)
                + f'<p><a href="https://site{f}.example/p/{n}">Read more</a></p>'
            )
            when = format_datetime(start - timedelta(minutes=n), usegmt=True)
            items.append(
                f"<item><title>{escape(text[:70])}</title><link>https://site{f}.example/p/{n}?utm_source=rss</link>"
                f'<guid isPermaLink="false">site{f}-{n}</guid><pubDate>{when}</pubDate>'
                f"<author>user{n % 97}@site{f}.example (User {n % 97})</author>"
                f"<description>{escape(html)}</description></item>"
            )
        bodies.append(
            (
                f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Site {f}</title>'
                f"<link>https://site{f}.example/</link><description>Posts</description>{''.join(items)}</channel></rss>"
            ).encode()
        )
    return bodies


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One case in this (fresh) process: the floor, then the real run --once; CPU and wall of each."""
    import asyncio

    import feedparser
    import yaml

    from beacons.config import brand_config, load_config
    from beacons.daemon import run
    from beacons.log import configure
    from collectors._feed import FEEDPARSER_OPTIONS

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    work = Path(args.work)
    bodies = [p.read_bytes() for p in sorted((work / "feeds").glob("*.xml"), key=lambda p: int(p.stem))]
    cpu, wall = time.process_time(), time.perf_counter()
    parsed = sum(len(feedparser.parse(io.BytesIO(b), **FEEDPARSER_OPTIONS).entries) for b in bodies)
    parse_cpu, parse_wall = time.process_time() - cpu, time.perf_counter() - wall
    urls = (work / "urls.txt").read_text(encoding="utf-8").split()
    raw = {
        "database": str(work / f"ingest-{args.child}.db"),
        "brands": [brand_config(b) for b in BRANDS],
        "sources": [{"id": f"feed-{n}", "kind": "rss", "url": url} for n, url in enumerate(urls)],
        "classifier": {"model": args.child},
        # One core, as the target says: feeds are parsed in this process, not by a parse worker
        # (whose CPU process_time would not see). bench/peers.py runs the default, with the pool.
        "fetch": {"per_host_delay": "0s", "parse_processes": 0},
    }
    path = work / f"ingest-{args.child}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_config(path, env={})
    with open(work / f"ingest-{args.child}.log", "w", encoding="utf-8") as log:
        configure(level="info", fmt="json", stream=log)
        cpu, wall = time.process_time(), time.perf_counter()
        results = asyncio.run(run(config, once=True, install_signals=False))
        run_cpu, run_wall = time.process_time() - cpu, time.perf_counter() - wall
    counts: dict[str, int] = {}
    for r in results:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    lines = (work / f"ingest-{args.child}.log").read_text(encoding="utf-8").splitlines()
    classifier = json.loads(next(line for line in lines if "daemon.started" in line))
    return {
        "case": args.child,
        "classifier": classifier.get("classifier", args.child),
        "parsed": parsed,
        "parse_cpu": parse_cpu,
        "parse_wall": parse_wall,
        "entries": counts.get("entries", 0),
        "run_cpu": run_cpu,
        "run_wall": run_wall,
        "statuses": sorted({r.status for r in results}),
        "counts": counts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200, help="feeds to generate (default 200)")
    parser.add_argument("--entries", type=int, default=50, help="entries per feed (default 50)")
    parser.add_argument(
        "--brand-share", type=float, default=0.2, help="share of entries that mention the brand (default 0.2)"
    )
    parser.add_argument(
        "--models", nargs="+", default=["rules", "auto"], help="classifier.model cases (default: rules auto)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (the table goes to stderr)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    out = sys.stderr if args.json else sys.stdout
    from feedhost import FeedHost, write_feeds

    print(
        f"Generating {args.feeds} feeds x {args.entries} entries ({args.brand_share:.0%} mention the brand)...",
        file=sys.stderr,
    )
    bodies = make_feeds(args.feeds, args.entries, args.brand_share, args.seed)
    megabytes = sum(map(len, bodies)) / 1e6
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="beacons-ingest-") as tmp:
        work = Path(tmp)
        write_feeds(work / "feeds", bodies)
        with FeedHost(work / "feeds") as host:
            (work / "urls.txt").write_text("\n".join(host.url(n) for n in range(args.feeds)), encoding="utf-8")
            for model in args.models:
                print(f"case {model}: a fresh process, one core", file=sys.stderr, flush=True)
                done = subprocess.run(
                    [sys.executable, __file__, "--child", model, "--work", str(work)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    print(done.stderr[-3000:], file=sys.stderr)
                    return 1
                cases.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"\nbeacons ingest benchmark: {args.feeds} feeds x {args.entries} entries, {megabytes:.1f} MB, "
        f"the real run --once path over loopback HTTP, one core; load average {os.getloadavg()[0]:.1f}",
        file=out,
    )
    print(f"{'case':40} {'entries':>8} {'CPU s':>7} {'wall s':>7} {'entries/s':>10} {'of floor':>9}", file=out)
    figures: dict[str, Any] = {"feeds": args.feeds, "entries": args.entries, "target_ratio": TARGET, "cases": {}}
    for c in cases:
        parse_rate = c["parsed"] / c["parse_cpu"]
        rate = c["entries"] / c["run_cpu"]
        ratio = rate / parse_rate
        print(
            f"{'feedparser.parse only (floor)':40} {c['parsed']:8} {c['parse_cpu']:7.2f} {c['parse_wall']:7.2f} "
            f"{parse_rate:10.0f}",
            file=out,
        )
        print(
            f"{'run --once, ' + c['classifier']:40} {c['entries']:8} {c['run_cpu']:7.2f} {c['run_wall']:7.2f} "
            f"{rate:10.0f} {ratio:9.0%}",
            file=out,
        )
        n = c["counts"]
        print(
            f"  stored {n.get('new', 0)} (support {n.get('support', 0)}, advocacy {n.get('advocacy', 0)}); "
            f"dropped without a brand {n.get('dropped_no_brand', 0)}; statuses {', '.join(c['statuses'])}",
            file=out,
        )
        figures["cases"][c["case"]] = {
            "classifier": c["classifier"],
            "parse_rate": round(parse_rate),
            "e2e_rate": round(rate),
            "ratio": round(ratio, 3),
            "run_wall": round(c["run_wall"], 2),
        }
    first = figures["cases"][cases[0]["case"]]
    figures.update(first)  # the first case (rules by default) is the one with the target
    print(
        f"\nreal path ({cases[0]['case']}) = {first['ratio']:.0%} of the parse-only rate (CPU; target >= {TARGET:.0%}): "
        f"{'OK' if first['ratio'] >= TARGET else 'BELOW TARGET'}",
        file=out,
    )
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
