"""End-to-end ingest throughput: parse + match + classify + route + store, beside feedparser alone.

    python bench/ingest.py [--feeds 200] [--entries 50] [--brand-share 0.2] [--model rules|auto]
                           [--no-grouping] [--repeat 2]

Generates feeds x entries RSS 2.0 documents in memory (varied, realistic
posts; a share of them mention the Acme brand), then times

  1. feedparser.parse on every body: the floor, nothing can be faster;
  2. collectors._feed.parse_feed + Pipeline.ingest into a fresh SQLite file.

and prints entries/second for both and their ratio. The target is an
end-to-end rate of at least 60% of the parse-only rate. The two stages are
timed feed by feed, alternately, and the ratio is taken on CPU time
(time.process_time), so other work on a shared machine moves neither much;
wall-clock seconds are printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import httpx

from beacons.classify import load_classifier
from beacons.config import GroupingConfig, RoutingConfig
from beacons.fetch import FetchLimits
from beacons.models import Brand, Product
from beacons.pipeline import Pipeline
from beacons.store import Store
from collectors._feed import parse_feed

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


def _progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        print(f"  {done}/{total} feeds", file=sys.stderr, flush=True)


@dataclass
class Totals:
    parse_cpu: float = 0.0
    parse_wall: float = 0.0
    e2e_cpu: float = 0.0
    e2e_wall: float = 0.0
    parsed: int = 0
    ingested: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def run(bodies: list[bytes], model: str, database: Path, *, grouping: bool = True) -> tuple[Totals, str]:
    """Time both stages feed by feed, alternating which goes first, so a machine that
    speeds up or slows down during the run moves both figures alike."""
    store = Store(database)
    client = httpx.AsyncClient()
    classifier = load_classifier(model)
    routing = RoutingConfig(grouping=GroupingConfig(enabled=grouping))
    pipeline = Pipeline(
        store=store, client=client, classifier=classifier, brands=BRANDS, limits=FetchLimits(), routing=routing
    )
    t = Totals()

    def parse_only(body: bytes) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        t.parsed += len(feedparser.parse(io.BytesIO(body), sanitize_html=True, resolve_relative_uris=True).entries)
        t.parse_cpu += time.process_time() - cpu
        t.parse_wall += time.perf_counter() - wall

    def end_to_end(source_id: str, body: bytes) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        mentions = parse_feed(body, source_id=source_id)
        counts = pipeline.ingest(source_id, mentions)
        t.e2e_cpu += time.process_time() - cpu
        t.e2e_wall += time.perf_counter() - wall
        t.ingested += len(mentions)
        for key, value in counts.items():
            t.counts[key] = t.counts.get(key, 0) + value

    for i, body in enumerate(bodies, 1):
        if i % 2:
            parse_only(body)
            end_to_end(f"feed-{i}", body)
        else:
            end_to_end(f"feed-{i}", body)
            parse_only(body)
        _progress(i, len(bodies))
    asyncio.run(client.aclose())
    store.close()
    return t, classifier.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200, help="feeds to generate (default 200)")
    parser.add_argument("--entries", type=int, default=50, help="entries per feed (default 50)")
    parser.add_argument(
        "--brand-share", type=float, default=0.2, help="share of entries that mention the brand (default 0.2)"
    )
    parser.add_argument("--model", default="rules", help="classifier.model: rules (default), auto or a model path")
    parser.add_argument(
        "--no-grouping",
        action="store_true",
        help="routing.grouping.enabled: false (skip linking similar posts into threads)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs of each stage; the best is reported (default 2)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the figures on stdout (the table goes to stderr)",
    )
    args = parser.parse_args(argv)
    out = sys.stderr if args.json else sys.stdout

    print(
        f"Generating {args.feeds} feeds x {args.entries} entries ({args.brand_share:.0%} mention the brand)...",
        file=sys.stderr,
    )
    bodies = make_feeds(args.feeds, args.entries, args.brand_share, args.seed)
    megabytes = sum(map(len, bodies)) / 1e6
    with tempfile.TemporaryDirectory(prefix="beacons-bench-") as tmp:
        run(bodies[:5], args.model, Path(tmp) / "warmup.db")  # lazy imports and first-call caches, uncounted
    runs = []
    for n in range(1, args.repeat + 1):
        print(f"run {n} of {args.repeat}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="beacons-bench-") as tmp:  # a fresh database each run
            runs.append(run(bodies, args.model, Path(tmp) / "bench.db", grouping=not args.no_grouping))
    t, classifier = min(runs, key=lambda r: r[0].e2e_cpu)  # the best run, as timeit reports
    parse_rate, e2e_rate = t.parsed / t.parse_cpu, t.ingested / t.e2e_cpu
    ratio = e2e_rate / parse_rate
    totals = t.counts

    grouping = "off" if args.no_grouping else "on"
    print(
        f"\nbeacons ingest benchmark: {args.feeds} feeds x {args.entries} entries, {megabytes:.1f} MB of RSS, best of {args.repeat}",
        file=out,
    )
    print(f"classifier: {classifier} (classifier.model: {args.model}); routing.grouping: {grouping}", file=out)
    print(f"{'stage':34} {'entries':>8} {'CPU s':>7} {'wall s':>7} {'entries/s':>10}", file=out)
    print(
        f"{'feedparser.parse only (floor)':34} {t.parsed:8} {t.parse_cpu:7.2f} {t.parse_wall:7.2f} {parse_rate:10.0f}",
        file=out,
    )
    print(
        f"{'parse + match + classify + store':34} {t.ingested:8} {t.e2e_cpu:7.2f} {t.e2e_wall:7.2f} {e2e_rate:10.0f}",
        file=out,
    )
    print(
        f"\nend to end = {ratio:.0%} of the parse-only rate (CPU time; target >= {TARGET:.0%}): {'OK' if ratio >= TARGET else 'BELOW TARGET'}",
        file=out,
    )
    print(
        f"matched {totals.get('new', 0) + totals.get('duplicate', 0)} of {t.ingested} entries; stored {totals.get('new', 0)} "
        f"(support {totals.get('support', 0)}, advocacy {totals.get('advocacy', 0)}); dropped without a brand {totals.get('dropped_no_brand', 0)}",
        file=out,
    )
    if args.json:
        figures = {
            "feeds": args.feeds,
            "entries": args.entries,
            "classifier": classifier,
            "grouping": grouping,
            "parse_rate": round(parse_rate),
            "e2e_rate": round(e2e_rate),
            "ratio": round(ratio, 3),
            "target_ratio": TARGET,
        }
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
