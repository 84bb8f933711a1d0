"""Several writers on one database (threads with their own connections, as workers would be), on both
backends; PostgreSQL restarted under a running pipeline; the SQLite time-format migration."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers_alerts import add_beacon
from helpers_db import rows, scalar
from helpers_feeds import SUPPORT_TEXTS, make_pipeline, texts_feed
from helpers_pg import start_cluster, stop_cluster

from beacons.alerts.outbox import Outbox
from beacons.config import GroupingConfig
from beacons.dedupe import dedupe_keys
from beacons.errors import StoreError, TransitionConflict
from beacons.feedserver import FeedServer, Resource
from beacons.fetch import FetchLimits, make_client
from beacons.models import Classification, Match, MatchSpan, Mention, Route, Source
from beacons.queue import QueueFilter, claim, link_threads, list_entries
from beacons.storage import Item, Storage
from collectors.rss import Options

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in n threads released at once; their results (or exceptions) in order."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def item(n: int, text: str | None = None) -> Item:
    body = text or f"Acme RouterX keeps dropping wifi, post {n}"
    m = Mention("blog", f"https://example.org/p/{n}", f"g{n}", f"Acme post {n}", body, "ann", NOW, NOW, "{}")
    match = Match("Acme", "RouterX", (MatchSpan(0, 4, "Acme", "Acme", None, "name"),))
    c = Classification("support", True, "negative", -0.5, 1.0, {"support": 0.9})
    return Item(m, tuple(dedupe_keys(m)), match, c, Route("support", 60, "test"))


@pytest.fixture
def stores(database: str) -> Iterator[list[Storage]]:
    """Four storages on one database: four workers' connections."""
    opened = [Storage(database) for _ in range(4)]
    opened[0].sync_sources([Source("blog", "rss", 60.0, None)])
    yield opened
    for s in opened:
        s.close()


def test_storage_two_workers_storing_one_poll_store_it_once(stores: list[Storage]) -> None:
    batch = [item(n) for n in range(30)]
    results = race(4, lambda i: stores[i].save_poll("blog", batch, channels=["ops"]))
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r.new for r in results) == 30 and sum(r.duplicates for r in results) == 90
    assert stores[0].mention_count() == 30
    assert scalar(stores[0], "SELECT COUNT(*) FROM beacons") == 30
    assert scalar(stores[0], "SELECT COUNT(*) FROM outbox") == 30  # one alert row per beacon, never two


def test_storage_one_claim_wins_across_workers(stores: list[Storage]) -> None:
    [beacon_id] = stores[0].save_poll("blog", [item(1)]).beacon_ids
    results = race(4, lambda i: claim(stores[i], beacon_id, f"agent{i}"))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1 and all(isinstance(r, TransitionConflict) for r in results if r not in winners)
    events = rows(stores[0], "SELECT action, to_status FROM beacon_events WHERE beacon_id = ?", [beacon_id])
    assert events == [("claim", "claimed")]


def test_storage_each_alert_is_claimed_by_one_sender(stores: list[Storage]) -> None:
    ids = {add_beacon(stores[0], ["ops"]) for _ in range(40)}
    now = datetime.now(UTC).timestamp() + 1

    def drain(i: int) -> list[int]:
        outbox, got = Outbox(stores[i]), []
        while (row := outbox.claim_next("ops", now=now, lease=600)) is not None:
            got.append(row.beacon_id)
        return got

    results = race(4, drain)
    claimed = [b for r in results for b in r]
    assert sorted(claimed) == sorted(ids)  # every row once: none twice, none missed


def test_storage_posts_about_one_problem_stored_at_once_form_one_thread(stores: list[Storage]) -> None:
    text = "Acme RouterX firmware update bricked the router, stuck on orange light after reboot"
    saved = race(4, lambda i: stores[i].save_poll("blog", [item(i, f"{text} ({i})")]).beacon_ids[0])
    grouping = GroupingConfig()
    race(4, lambda i: link_threads(stores[i], grouping, [saved[i]]))
    threads = rows(stores[0], "SELECT DISTINCT thread_id FROM beacon_threads")
    assert len(threads) == 1 and scalar(stores[0], "SELECT COUNT(*) FROM beacon_threads") == 4
    page = list_entries(stores[0], QueueFilter())
    assert len(page.entries) == 1 and page.entries[0].related == 3


def test_storage_keyset_pages_never_skip_or_repeat_rows_under_priority_ties(database: str) -> None:
    with Storage(database) as store:
        store.sync_sources([Source("blog", "rss", 60.0, None)])
        for n in range(25):
            i = item(n)
            store.save_poll("blog", [Item(i.mention, i.keys, i.match, i.classification, Route("support", n % 3, "t"))])
        seen: list[int] = []
        cursor = None
        while True:
            page = list_entries(store, QueueFilter(limit=4, cursor=cursor, threads=False))
            seen += [e.beacon.id for e in page.entries]
            if page.entries:  # a row arriving between pages (a higher priority, a lower one) moves nothing
                store.save_poll("blog", [item(1000 + len(seen))])
            if not (cursor := page.next_cursor):
                break
        assert len(seen) == len(set(seen))
        everything = rows(store, "SELECT priority, id FROM beacons ORDER BY priority DESC, id DESC")
        first_pass = [bid for _, bid in everything if bid <= 25]
        assert [b for b in seen if b <= 25] == first_pass


def test_storage_list_opens_no_write_transaction(database: str) -> None:
    """A read request only reads: with the database made read-only for the session, listing still works."""
    with Storage(database) as store:
        store.sync_sources([Source("blog", "rss", 60.0, None)])
        store.save_poll("blog", [item(1)])
    with Storage(database) as store:
        if store.kind == "sqlite":
            store.backend.conn.execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
        else:
            store.backend.pool.close()  # type: ignore[attr-defined]
            from psycopg_pool import ConnectionPool

            store.backend.pool = ConnectionPool(  # type: ignore[attr-defined]
                database,
                min_size=1,
                max_size=1,
                kwargs={"autocommit": True, "options": "-c default_transaction_read_only=on"},
                open=True,
            )
        page = list_entries(store, QueueFilter())
        assert len(page.entries) == 1
        with pytest.raises(StoreError):
            store.save_poll("blog", [item(2)])


def test_storage_sqlite_times_migrate_to_one_format(db_path: Path) -> None:
    from beacons.storage import sqlite_migrations

    conn = sqlite3.connect(db_path, isolation_level=None)
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    for migrations in sqlite_migrations.SETS[:3]:  # a database from before this change
        migrations.apply(db)
    conn.execute("INSERT INTO sources (id, kind, last_poll_at) VALUES ('blog', 'rss', '2026-11-23T09:00:00+00:00')")
    conn.execute(
        "INSERT INTO outbox (event_id, channel, created_at, next_attempt_at) VALUES"
        " ('e1', 'ops', '2026-11-23T09:00:00.500000+00:00', '2026-11-23T09:00:00+00:00')"
    )
    conn.close()
    with Storage(db_path) as store:
        assert store.sources()[0]["last_poll_at"] == "2026-11-23T09:00:00.000000+00:00"
        row = store.outbox.get("e1")
        assert row is not None and (row.created_at, row.next_attempt_at) == (
            "2026-11-23T09:00:00.500000+00:00",
            "2026-11-23T09:00:00.000000+00:00",
        )
        assert row.next_attempt_at < row.created_at  # text order is time order again


def test_storage_postgres_password_never_in_errors() -> None:
    url = "postgresql://beacons:hunter2secret@127.0.0.1:1/nodb"
    with pytest.raises(StoreError) as err:
        Storage(url, timeout=1)
    assert "hunter2secret" not in str(err.value) and "***" in str(err.value)


def test_storage_postgres_restarted_under_a_running_pipeline(feed_server: FeedServer) -> None:
    """The server goes down and comes back: the poll in flight fails as a StoreError, the next one stores
    everything (the failed poll's state was rolled back with it, so nothing is skipped)."""
    cluster, why = start_cluster()
    if cluster is None:
        pytest.skip(f"PostgreSQL TESTS SKIPPED: {why}")
    try:
        feed_server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS[:2])))
        src = Source("blog", "rss", 60.0, Options(feed_server.url("/feed.xml")))
        store = Storage(cluster.url)
        try:
            store.sync_sources([src])

            async def cycle() -> list[str]:
                async with make_client(FetchLimits(timeout=5.0)) as client:
                    p = make_pipeline(store, client)
                    statuses = [(await p.poll_source(src)).status]
                    feed_server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS)))
                    cluster.restart()
                    for _ in range(5):
                        statuses.append((await p.poll_source(src)).status)
                        if statuses[-1] == "ok":
                            break
                    return statuses

            statuses = asyncio.run(cycle())
            assert statuses[0] == "ok" and statuses[-1] == "ok"
            assert store.mention_count() == len(SUPPORT_TEXTS)
        finally:
            store.close()
    finally:
        stop_cluster(cluster)
