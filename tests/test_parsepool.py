"""The parse pool (issue 16): feeds parsed in worker processes are stored exactly as those parsed in place,
and a worker that crashes or hangs costs the feed it was parsing, never the other feeds or the daemon."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import WriteConfig
from helpers_feeds import (
    ADVOCACY_TEXTS,
    NOISE_TEXTS,
    SUPPORT_TEXTS,
    rss_feed,
    rss_item,
    rss_source_config,
    rules_classifier,
)
from helpers_parsepool import failing_job
from structlog.testing import capture_logs

from beacons import parsepool
from beacons.config import load_config
from beacons.daemon import run
from beacons.feedserver import FeedServer, Resource
from beacons.fetch import FetchLimits
from beacons.models import Source
from beacons.parsepool import MIN_BYTES, ParsePool, default_processes, spare_core
from beacons.pipeline import Pipeline
from beacons.store import Store
from collectors._feed import parse_feed
from collectors.rss import Options

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the pool is capped at the CPUs less one")

COLUMNS = "source_id, url, guid, title, text, author, author_reach, published_at, lang, raw"


def _big_rss(seed: int, items: int = 80) -> bytes:
    """A feed well over MIN_BYTES: HTML bodies with relative links, entities, non-ASCII, authors, dates."""
    rng = random.Random(seed)
    texts = [*SUPPORT_TEXTS, *ADVOCACY_TEXTS, *NOISE_TEXTS]
    out = []
    for n in range(items):
        text = rng.choice(texts)
        html = (
            f"<p>{text} ({seed}-{n})</p><p>Voilà: <a href='/help/{n}?utm_source=rss'>the guide</a> &amp; "
            f"<img src='img/{n}.png' alt='a shot'> <script>alert({n})</script> naïve café ✓</p>"
        )
        author = None if n % 7 == 0 else f"user{n}@example.org (User {n})"
        link = f"http://feeds.example.org/p/{seed}/{n}?utm_source=rss" if n % 5 else f"/rel/{seed}/{n}"
        out.append(rss_item(seed * 1000 + n, html, title=f"{text[:50]} #{seed}-{n}", link=link, author=author))
    # One entry with a reference to no character: skipped with a reason, the rest of the feed kept.
    out.append(rss_item(seed * 1000 + items, "Acme RouterX is broken", title="Acme RouterX poisoned POISON-REF"))
    return rss_feed(out, title=f"Feed {seed}").replace(b"POISON-REF", b"&#xD800;")


def _big_atom(seed: int, entries: int = 60) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
        'xml:base="http://blog.example.org/news/"><title>t</title><id>urn:t</id><updated>2026-11-23T09:00:00Z</updated>'
    ]
    for n in range(entries):
        text = SUPPORT_TEXTS[n % len(SUPPORT_TEXTS)] if n % 3 == 0 else NOISE_TEXTS[n % len(NOISE_TEXTS)]
        parts.append(
            f'<entry><title type="html">{text[:40]} &lt;b&gt;#{n}&lt;/b&gt;</title><link href="2026/{seed}-{n}"/>'
            f"<id>urn:{seed}:{n}</id><updated>2026-11-2{n % 9}T09:{n % 60:02d}:00Z</updated>"
            f"<author><name>Ann Ö {n}</name></author>"
            f'<content type="html">&lt;p&gt;{text} &lt;a href="../more/{n}"&gt;more&lt;/a&gt; {"x" * 300}&lt;/p&gt;</content>'
            "</entry>"
        )
    body = ("".join(parts) + "</feed>").encode()
    assert len(body) >= MIN_BYTES
    return body


def _rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(database)
    try:
        return {
            table: sorted(conn.execute(f"SELECT {COLUMNS} FROM {table}").fetchall())
            for table in ("mentions", "unmatched")
        }
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("cpus", "load", "spare"), [(2, 0.4, True), (2, 1.9, True), (2, 2.0, False), (2, 7.5, False), (8, 7.9, True)]
)
def test_parsepool_starts_only_with_a_spare_core(cpus: int, load: float, spare: bool) -> None:
    assert spare_core(cpus, load) is spare
    pool = ParsePool(1, min_bytes=10, gate=lambda: spare_core(cpus, load))
    assert pool.wants(b"x" * 10) is spare and pool.declined == (0 if spare else 1)
    assert not pool.wants(b"x" * 9)  # small bodies never go to a worker


def test_parsepool_stores_the_same_mentions_as_parsing_in_place(
    feed_server: FeedServer, write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The machine's load decides whether a pool starts (spare_core); here it must, whatever the load.
    monkeypatch.setattr(parsepool, "spare_core", lambda: True)
    bodies = {f"r{i}": _big_rss(i) for i in range(3)} | {"atom": _big_atom(9)}
    assert min(map(len, bodies.values())) >= MIN_BYTES  # each goes to the pool
    sources = {}
    for sid, body in bodies.items():
        feed_server.add(f"/{sid}.xml", Resource(body))
        sources[sid] = feed_server.url(f"/{sid}.xml")
    stored = {}
    for processes in (0, 1):
        raw = rss_source_config(
            sources, fetch={"per_host_delay": "0s", "timeout": "120s", "parse_processes": processes}
        )
        raw["database"] = str(tmp_path / f"p{processes}.db")
        config = load_config(write_config(raw), env={})
        assert default_processes(config.fetch.parse_processes) == processes
        with capture_logs() as logs:
            results = asyncio.run(run(config, once=True, install_signals=False, classifier=rules_classifier()))
        assert [r.status for r in results] == ["ok"] * 4, results
        assert sum(r.counts["duplicate"] for r in results) == 0  # else which feed's copy is kept depends on timing
        pool = [e for e in logs if e["event"] == "parsepool.stopped"]
        assert pool == [] if processes == 0 else [pool[0] | {"started": 1, "parsed": 4, "workers": 1}]
        skipped = [(e["reason"], e["detail"]) for e in logs if e["event"] == "mention.skipped"]
        stored[processes] = (_rows(Path(raw["database"])), [r.counts for r in results], sorted(skipped))
    in_place, pooled = stored[0], stored[1]
    assert len(in_place[0]["mentions"]) > 20 and len(in_place[0]["unmatched"]) > 100
    assert len(in_place[2]) == 3  # each rss feed's poisoned entry, with its reason
    assert pooled == in_place


def _source(sid: str, url: str) -> Source:
    return Source(sid, "rss", 60.0, Options(url))


def test_parsepool_crash_or_hang_fails_only_that_source(feed_server: FeedServer, tmp_path: Path) -> None:
    good = {f"good{i}": _big_rss(20 + i, items=20) for i in range(3)}
    bad = {
        "crash": _big_rss(30, items=20).replace(b"Feed 30", b"CRASH-WORKER"),
        "hang": _big_rss(31, items=20).replace(b"Feed 31", b"HANG-WORKER"),
    }
    sources = []
    for sid, body in {**good, **bad}.items():
        feed_server.add(f"/{sid}.xml", Resource(body))
        sources.append(_source(sid, feed_server.url(f"/{sid}.xml")))
    # 20 s: a spawned worker's start-up counts against its first body, and this machine may be loaded.
    pool = ParsePool(1, timeout=20.0, min_bytes=0, job=failing_job, gate=lambda: True)
    store = Store(tmp_path / "b.db")

    async def go() -> list[Any]:
        async with httpx.AsyncClient() as client:
            pipeline = Pipeline(
                store=store,
                client=client,
                classifier=rules_classifier(),
                brands=_brands(),
                limits=FetchLimits(timeout=30.0),
                parse_pool=pool,
            )
            return list(await asyncio.gather(*(pipeline.poll_source(s) for s in sources)))

    try:
        store.sync_sources(sources)
        with capture_logs() as logs:
            results = {r.source_id: r for r in asyncio.run(go())}
    finally:
        pool.close()
        store.close()
    for sid, body in good.items():
        assert results[sid].status == "ok", results[sid]
        assert results[sid].counts["entries"] == len(parse_feed(body, source_id=sid))
    assert results["crash"].status == "error" and "worker process died" in (results["crash"].error or "")
    assert results["hang"].status == "error" and "longer than 20 s" in (results["hang"].error or "")
    polled = sorted(
        (e["status"], e["log_level"], e.get("error", "")[:31]) for e in logs if e["event"] == "source.polled"
    )
    assert polled == [
        ("error", "warning", "ParseError: parsing took longer"),
        ("error", "warning", "ParseError: the feed parser's w"),
        *[("ok", "info", "")] * 3,
    ]
    # The pool still works after both: a new one is started for the next large body.
    after = asyncio.run(_parse_again(pool, good["good0"]))
    assert after == parse_feed(good["good0"], source_id="again", fetched_at=after[0].fetched_at)


async def _parse_again(pool: ParsePool, body: bytes) -> list[Any]:
    return await pool.parse(body, source_id="again", headers={}, url=None, skip=None)


def _brands() -> Any:
    from helpers_feeds import ACME

    return (ACME,)
