"""The insights rollup under several writers (issue 14): no deadlock between workers, figures exact after compaction.

Several workers write one PostgreSQL database (README "Running several workers"). The rollup of posts
per hour must not make two of their transactions wait on each other: the interleaving below deadlocked
when the row triggers added +1/-1 to shared rollup rows. Each test opens its own connections to a fresh
database of the real cluster and drives them step by step.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import structlog
import yaml
from helpers_feeds import rss_source_config, rules_classifier, texts_feed
from helpers_insights import NOW, SINCE, UNTIL, seed

from beacons.config import parse_config
from beacons.daemon import run
from beacons.feedserver import FeedServer, Resource
from beacons.insights import build, make_query
from beacons.storage import Storage
from beacons.storage.insights import InsightFilter, hour_of
from beacons.storage.types import Sla

HOUR = datetime(2026, 11, 20, 9, tzinfo=UTC)
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
KEYS = ("hour", "brand", "product", "source", "team", "queue", "sentiment")


def _connect(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url)  # not autocommit: each step below runs inside one open transaction
    conn.execute("SET lock_timeout = '20s'")  # a lock wait that is never resolved fails the test, never hangs it
    conn.commit()
    return conn


def _mention(conn: psycopg.Connection[Any], guid: str, at: datetime, source: str = "forum") -> int:
    row = conn.execute(
        "INSERT INTO mentions (source_id, guid, title, text, published_at, fetched_at, brand, product, raw, created_at)"
        " VALUES (%s, %s, 'Wifi drops', 'the wifi drops at night', %s, %s, 'Acme', 'RouterX', '{}', %s) RETURNING id",
        [source, guid, at, at + timedelta(minutes=10), at + timedelta(minutes=10)],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _beacon(
    conn: psycopg.Connection[Any], mention_id: int, queue: str, at: datetime, sentiment: str = "negative"
) -> int:
    row = conn.execute(
        "INSERT INTO beacons (mention_id, queue, is_beacon, sentiment, team, created_at, updated_at)"
        " VALUES (%s, %s, 1, %s, 'networking', %s, %s) RETURNING id",
        [mention_id, queue, sentiment, at, at],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _run_until_blocked_or_done(
    url: str, conn: psycopg.Connection[Any], step: Callable[[], None]
) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``step`` on ``conn`` in a thread; return once it finished or waits for a lock another transaction holds."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            step()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    pid = conn.info.backend_pid
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    with psycopg.connect(url, autocommit=True) as watcher:
        while thread.is_alive():
            row = watcher.execute("SELECT cardinality(pg_blocking_pids(%s))", [pid]).fetchone()
            if row is not None and row[0] > 0:
                break
            thread.join(0.02)
    return thread, errors


def _summed(rows: list[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    for r in rows:
        out[tuple(v or "" for v in r[:-1])] += int(r[-1])
    return +out  # net-zero keys dropped


def _posts_read(store: Storage) -> Counter[tuple[Any, ...]]:
    """What the charts read: the rollup rows (and pending deltas) over every whole hour."""
    return _summed(store.insight_post_rows(*EVER, InsightFilter()))


def _posts_counted(store: Storage) -> Counter[tuple[Any, ...]]:
    """The same split counted from the posts themselves."""
    hour = hour_of(store.backend.name, "COALESCE(m.published_at, m.fetched_at)")
    return _summed(
        store.backend.read(
            f"SELECT {hour}, m.brand, m.product, m.source_id, b.team, COALESCE(b.queue, 'none'), b.sentiment, COUNT(*)"
            " FROM mentions m LEFT JOIN beacons b ON b.mention_id = m.id GROUP BY 1, 2, 3, 4, 5, 6, 7"
        ).rows
    )


def _rollup_table(store: Storage) -> Counter[tuple[Any, ...]]:
    return _summed(
        store.backend.read(
            "SELECT hour, brand, product, source_id, team, queue, sentiment, posts FROM insight_posts WHERE posts != 0"
        ).rows
    )


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Storage]:
    store = Storage(pg_url)  # migrates
    try:
        yield store
    finally:
        store.close()


def test_insights_rollup_two_workers_with_crossed_locks_do_not_deadlock(pg_url: str, pg_store: Storage) -> None:
    """Worker A stores a post and then its support beacon while worker B re-routes a support beacon of the
    same hour and source to advocacy, in between: with shared rollup rows A held 'none' and wanted
    'support', B held 'support' and wanted 'none', and PostgreSQL aborted one of them (deadlock detected)."""
    setup = _connect(pg_url)
    a, b = _connect(pg_url), _connect(pg_url)
    try:
        old = _beacon(setup, _mention(setup, "old", HOUR), "support", HOUR)
        setup.commit()

        _mention(a, "new", HOUR + timedelta(minutes=20))  # A: +1 post of the hour, no beacon yet

        def reroute() -> None:  # B: the old beacon goes from support to advocacy
            b.execute("UPDATE beacons SET queue = 'advocacy' WHERE id = %s", [old])

        thread, errors = _run_until_blocked_or_done(pg_url, b, reroute)
        try:
            # A: the new post's beacon, in support (before the fix: waits for B, which waits for A)
            _beacon(a, int(a.execute("SELECT id FROM mentions WHERE guid = 'new'").fetchone()[0]), "support", HOUR)
            a.commit()
        except psycopg.Error as exc:
            errors.append(exc)
            a.rollback()
        thread.join(30)
        assert not thread.is_alive()
        if not errors:
            b.commit()
        assert errors == [], f"a worker's write failed: {errors[0]!r}"
    finally:
        for conn in (setup, a, b):
            conn.close()

    hour = HOUR.strftime("%Y-%m-%dT%H")
    expected = {
        (hour, "Acme", "RouterX", "forum", "networking", "support", "negative"): 1,
        (hour, "Acme", "RouterX", "forum", "networking", "advocacy", "negative"): 1,
    }
    assert _posts_read(pg_store) == _posts_counted(pg_store) == expected
    assert pg_store.insight_compact() == 8  # each post's +1 'none', -1 'none' +1 'support'; the re-route's -1/+1
    assert _rollup_table(pg_store) == _posts_read(pg_store) == expected
    assert pg_store.insight_compact() == 0


def test_insights_rollup_exact_with_concurrent_writers_and_compactions(pg_url: str, pg_store: Storage) -> None:
    """Four workers store posts, beacons and re-routes in the same few hours while two others compact:
    nothing fails, and the rollup (with its pending deltas, then compacted) is the count of the posts."""
    stop = threading.Event()
    errors: list[BaseException] = []
    compacted: list[int] = []

    def writer(n: int) -> None:
        rng = random.Random(n)
        conn = _connect(pg_url)
        mine: list[int] = []
        try:
            for i in range(40):
                at = HOUR + timedelta(hours=rng.randrange(2), minutes=rng.randrange(60))
                mention = _mention(conn, f"w{n}-{i}", at, source=rng.choice(["forum", "social"]))
                if rng.random() < 0.8:
                    mine.append(_beacon(conn, mention, rng.choice(["support", "advocacy", "none"]), at))
                if mine and rng.random() < 0.5:
                    conn.execute(
                        "UPDATE beacons SET queue = %s, sentiment = %s WHERE id = %s",
                        [rng.choice(["support", "advocacy"]), rng.choice(["negative", "positive"]), rng.choice(mine)],
                    )
                conn.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    def compactor() -> None:
        try:  # runs while the workers write, and until it has folded something (the last deltas at least)
            while not (stop.is_set() and sum(compacted)):
                compacted.append(pg_store.insight_compact())
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    compactors = [threading.Thread(target=compactor) for _ in range(2)]
    for thread in (*writers, *compactors):
        thread.start()
    for thread in writers:
        thread.join(120)
    stop.set()
    for thread in compactors:
        thread.join(120)
    assert errors == [] and sum(compacted) > 0
    assert _posts_read(pg_store) == _posts_counted(pg_store)
    assert sum(_posts_counted(pg_store).values()) == 160
    pg_store.insight_compact()
    assert pg_store.backend.read("SELECT COUNT(*) FROM insight_deltas").scalar() == 0
    assert _rollup_table(pg_store) == _posts_counted(pg_store)


def test_insights_compaction_keeps_every_figure(database: str) -> None:
    """Compacting (a no-op on SQLite, where one writer updates the rollup itself) changes no figure."""
    store = Storage(database)
    try:
        seed(store)
        sla = Sla(queues=(("support", 7200.0), ("advocacy", 86400.0)))
        query = make_query(SINCE, UNTIL, tz="Europe/Berlin")
        before = build(store, query, sla=sla, now=NOW)
        assert store.insight_compact(min_deltas=10**9) == 0  # fewer deltas than asked for: nothing to do
        folded = store.insight_compact()
        assert (folded > 0) == (store.backend.name == "postgresql")
        assert store.insight_compact() == 0
        assert build(store, query, sla=sla, now=NOW) == before
        assert _posts_read(store) == _posts_counted(store)
        # One hour with pending deltas, the others compacted: a re-route to support, then what it reads.
        with store.backend.transaction() as tx:
            tx.execute(
                "UPDATE beacons SET queue = 'support', team = 'networking' WHERE queue = 'advocacy'"
                " AND id = (SELECT MAX(id) FROM beacons WHERE queue = 'advocacy')"
            )
        assert _posts_read(store) == _posts_counted(store)
        mixed = build(store, query, sla=sla, now=NOW)
        assert mixed["volume"]["queues"] != before["volume"]["queues"]
        store.insight_compact()
        assert build(store, query, sla=sla, now=NOW) == mixed
    finally:
        store.close()


def test_insights_daemon_cycle_folds_the_deltas_it_wrote(database: str, feed_server: FeedServer) -> None:
    """The daemon's periodic maintenance compacts: after one cycle no delta is pending and the rollup is exact."""
    texts = ["Acme router wifi keeps dropping, please help", "Love my Acme router", "Acme router arrived today"]
    feed_server.add("/feed.xml", Resource(texts_feed(texts)))
    config = parse_config(
        yaml.safe_dump(rss_source_config({"feed": feed_server.url("/feed.xml")}, database=database)), env={}
    )
    with structlog.testing.capture_logs() as logs:
        results = asyncio.run(run(config, once=True, install_signals=False, classifier=rules_classifier()))
    assert [r.status for r in results] == ["ok"]
    store = Storage(database)
    try:
        assert sum(_posts_counted(store).values()) == 3
        assert _rollup_table(store) == _posts_counted(store)
        folded = [e["deltas"] for e in logs if e["event"] == "insights.compacted"]
        if store.backend.name == "postgresql":
            assert store.backend.read("SELECT COUNT(*) FROM insight_deltas").scalar() == 0
            assert folded and sum(folded) >= 3  # a +1 per post, and a -1/+1 per beacon
        else:
            assert folded == []
    finally:
        store.close()
