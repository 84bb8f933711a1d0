"""A simulated month of polls with fresh vocabulary: does the daemon's memory stay flat? ``python bench/soak.py``

Every poll of every feed brings new entries: new words (made-up, never seen by
the model), new authors, new URLs and guids, one in five naming the brand. They
go through the real path of a poll (``Pipeline.poll_source``: fetch over an
in-process httpx transport, ``collectors.rss``, match, dedupe, the shipped spaCy
classifier, route, thread, store into a SQLite file), with a simulated clock
that moves a month forward, and ``retention.unmatched`` pruned daily as the
daemon does. After each simulated day the process's RSS (``VmRSS``) and the
classifier's vocabulary are sampled.

Target (issue 16): RSS after the month within 10 % of RSS after the first day.
``--keep-words`` runs the classifier without its memory zone (spaCy's default),
to show the growth the zone prevents.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beacons.classify import load_classifier
from beacons.config import BrandConfig, ProductConfig, RetentionConfig, to_brand
from beacons.fetch import FetchLimits
from beacons.log import configure
from beacons.models import Source
from beacons.pipeline import Pipeline
from beacons.rescan import prune_unmatched
from beacons.storage import Storage
from collectors.rss import Options as RssOptions

TARGET_GROWTH_PCT = 10.0
BRAND = BrandConfig(
    "Acme", aliases=("Acme Corp",), products=(ProductConfig("RouterX", ("RX-200",)), ProductConfig("Acme Cloud"))
)
_SYLLABLES = ("ka", "zu", "mor", "tel", "vix", "dra", "pon", "qui", "sel", "bru", "ny", "lo", "fen", "gar", "hu")
_BRANDED = (
    "My Acme RouterX {w0} keeps dropping wifi every night since the {w1} update, anyone else?",
    "Charged twice for Acme Cloud this month, the {w0} page says {w1}. I want a refund.",
    "Six months with the Acme RouterX in our {w0}: coverage is excellent, I would recommend it.",
    "Acme Corp announced the {w0} programme today, with {w1} as the first partner.",
    "Is Acme Cloud down? The {w0} dashboard shows {w1} errors for everyone here.",
)
_PLAIN = (
    "Sourdough notes: the {w0} starter finally behaves after a week of {w1}.",
    "Local council approves the new {w0} lane on the high street near {w1}.",
    "Trying out the {w0} static site generator; the {w1} docs are thin.",
)


class SimClock:
    """Simulated time: moves only when the bench says so."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._mono = 0.0

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def time(self) -> float:
        return self._now.timestamp()

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return self._now

    async def wait(self, event: asyncio.Event | None, seconds: float) -> bool:
        await asyncio.sleep(0)
        return bool(event and event.is_set())


class Feeds:
    """Feed bodies with fresh entries on every request: new words, authors, links and guids."""

    def __init__(self, entries: int, brand_share: float, seed: int, clock: SimClock) -> None:
        self.entries = entries
        self.brand_share = brand_share
        self.rng = random.Random(seed)
        self.clock = clock
        self.serial = 0
        self.branded = 0

    def word(self) -> str:
        return "".join(self.rng.choice(_SYLLABLES) for _ in range(self.rng.randint(3, 5)))

    def body(self, feed: int) -> bytes:
        items = []
        for _ in range(self.entries):
            self.serial += 1
            n = self.serial
            words = [self.word() for _ in range(8)]
            branded = self.rng.random() < self.brand_share
            self.branded += branded
            text = self.rng.choice(_BRANDED if branded else _PLAIN).format(w0=words[0], w1=words[1])
            extra = " ".join(words[2:6])
            author = f"{words[6].title()} {words[7].title()}"
            link = f"https://{words[2]}.example/{words[3]}/{n}?utm_source=rss&ref={words[4]}"
            html = f"<p>{escape(text)}</p><p>{escape(extra)}</p>"
            when = format_datetime(self.clock.now() - timedelta(minutes=n % 50), usegmt=True)
            items.append(
                f"<item><title>{escape(text[:70])}</title><link>{escape(link)}</link>"
                f'<guid isPermaLink="false">e-{n}</guid><pubDate>{when}</pubDate>'
                f"<author>{words[6]}@{words[7]}.example ({escape(author)})</author>"
                f"<description>{escape(html)}</description></item>"
            )
        return (
            f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Feed {feed}</title>'
            f"<link>https://feed{feed}.example/</link><description>Posts</description>{''.join(items)}</channel></rss>"
        ).encode()

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            feed = int(request.url.path.rsplit("/", 1)[1].split(".")[0])
            return httpx.Response(200, content=self.body(feed), headers={"Content-Type": "application/rss+xml"})

        return httpx.MockTransport(handle)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(args: argparse.Namespace, database: Path) -> dict[str, Any]:
    # Starts at the real now: a feed entry's fetched_at is the real clock's, and the daily prune of
    # unmatched posts compares it with the simulated one (so they go after a simulated week).
    clock = SimClock(datetime.now(UTC))
    feeds = Feeds(args.entries, args.brand_share, args.seed, clock)
    classifier = load_classifier(args.model)
    nlp_owner: Any = classifier
    if args.keep_words and hasattr(classifier, "forget_words"):
        nlp_owner.forget_words = False
    store = Storage(str(database))
    sources = [
        Source(f"feed-{f}", "rss", 3600.0, RssOptions(f"http://feeds.example/feed/{f}.xml")) for f in range(args.feeds)
    ]
    store.sync_sources(sources)
    retention = RetentionConfig()
    client = httpx.AsyncClient(transport=feeds.transport())
    pipeline = Pipeline(
        store=store,
        client=client,
        classifier=classifier,
        brands=[to_brand(BRAND)],
        limits=FetchLimits(timeout=30.0),
        clock=clock,
        retention=retention,
    )
    samples: list[dict[str, Any]] = []
    started = time.perf_counter()
    cpu = time.process_time()
    counts: dict[str, int] = {}

    async def one_day() -> None:
        for _ in range(args.polls_per_day):
            for source in sources:
                result = await pipeline.poll_source(source)
                for k, v in result.counts.items():
                    counts[k] = counts.get(k, 0) + v
            clock.advance(86400 / args.polls_per_day)

    loop = asyncio.new_event_loop()
    try:
        for day in range(1, args.days + 1):
            loop.run_until_complete(one_day())
            prune_unmatched(store, retention, clock.now())
            gc.collect()
            vocab = getattr(getattr(classifier, "_nlp", None), "vocab", None)
            samples.append(
                {
                    "day": day,
                    "rss_mb": round(rss_mb(), 1),
                    "strings": len(vocab.strings) if vocab is not None else 0,
                    "matcher_strings": len(pipeline.matcher.nlp.vocab.strings) if pipeline.matcher._built else 0,
                    "entries": feeds.serial,
                }
            )
            if day == 1 or day % max(1, args.days // 6) == 0 or day == args.days:
                s = samples[-1]
                print(
                    f"  day {day:3}: RSS {s['rss_mb']:7.1f} MB, model strings {s['strings']:,}, "
                    f"entries so far {s['entries']:,}",
                    file=sys.stderr,
                    flush=True,
                )
        loop.run_until_complete(client.aclose())
    finally:
        loop.close()
        store.close()
    first, last = samples[0], samples[-1]
    growth = (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"] * 100
    return {
        "days": args.days,
        "polls": args.days * args.polls_per_day * args.feeds,
        "entries": feeds.serial,
        "branded_entries": feeds.branded,
        "classified": counts.get("new", 0),
        "classifier": classifier.name,
        "keep_words": bool(args.keep_words),
        "rss_day1_mb": first["rss_mb"],
        "rss_last_mb": last["rss_mb"],
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "rss_growth_pct": round(growth, 1),
        "strings_day1": first["strings"],
        "strings_last": last["strings"],
        "matcher_strings_day1": first["matcher_strings"],
        "matcher_strings_last": last["matcher_strings"],
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "target_growth_pct": TARGET_GROWTH_PCT,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    p.add_argument("--polls-per-day", type=int, default=4, help="polls of each feed per simulated day (default 4)")
    p.add_argument("--feeds", type=int, default=25, help="feeds (default 25)")
    p.add_argument("--entries", type=int, default=20, help="new entries per poll of a feed (default 20)")
    p.add_argument("--brand-share", type=float, default=0.2, help="share of entries naming the brand (default 0.2)")
    p.add_argument("--model", default="auto", help="classifier.model (default auto: the shipped spaCy model)")
    p.add_argument("--keep-words", action="store_true", help="classifier without its memory zone (spaCy's default)")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--quick", action="store_true", help="CI-sized: 30 days of 2 polls of 10 feeds x 10 entries")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout, the table on stderr")
    args = p.parse_args(argv)
    if args.quick:
        args.polls_per_day, args.feeds, args.entries = 2, 10, 10
    configure(level="warning", fmt="json", stream=sys.stderr)
    out = sys.stderr if args.json else sys.stdout
    print(
        f"beacons soak: {args.days} simulated days, {args.polls_per_day} polls/day of {args.feeds} feeds, "
        f"{args.entries} new entries per poll (new words, authors, URLs)",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="beacons-soak-") as tmp:
        f = soak(args, Path(tmp) / "soak.db")
    ok = f["rss_growth_pct"] <= TARGET_GROWTH_PCT
    rows = [
        ("polls / entries / classified", f"{f['polls']:,} / {f['entries']:,} / {f['classified']:,}", ""),
        ("classifier", f"{f['classifier']}{' (no memory zone)' if f['keep_words'] else ''}", ""),
        ("RSS after day 1", f"{f['rss_day1_mb']:.1f} MB", ""),
        (f"RSS after day {f['days']}", f"{f['rss_last_mb']:.1f} MB", ""),
        ("RSS growth", f"{f['rss_growth_pct']:+.1f} %", f"<= {TARGET_GROWTH_PCT:.0f} %"),
        ("model vocabulary strings, day 1 -> last", f"{f['strings_day1']:,} -> {f['strings_last']:,}", ""),
        ("matcher strings, day 1 -> last", f"{f['matcher_strings_day1']:,} -> {f['matcher_strings_last']:,}", ""),
        ("wall / CPU", f"{f['wall_s']} s / {f['cpu_s']} s", ""),
    ]
    for name, value, target in rows:
        print(f"{name:42} {value:>28} {target:>8}", file=out)
    print(f"memory flat: {'OK' if ok else 'MISSED'}", file=out)
    if args.json:
        print(json.dumps({k: v for k, v in f.items() if k != "samples"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
