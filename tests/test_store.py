"""beacons.storage on a real SQLite file and a real PostgreSQL database: migrations, idempotent writes, outbox, counters, queue reads."""

from __future__ import annotations

import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers_db import rows, scalar

from beacons.dedupe import dedupe_keys
from beacons.errors import StoreError
from beacons.models import (
    Beacon,
    Classification,
    Match,
    MatchSpan,
    Mention,
    Route,
    Source,
    SourceState,
)
from beacons.queue import QueueFilter, list_entries
from beacons.storage import schema
from beacons.storage.mentions import _insert_mention
from beacons.store import Item, Store

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def item(
    n: int, queue: str = "support", *, classified: bool = True, source: str = "blog", text: str | None = None
) -> Item:
    m = Mention(
        source,
        f"https://example.org/p/{n}",
        f"g{n}",
        f"Acme post {n}",
        text or f"Acme RouterX text {n}",
        "ann",
        NOW,
        NOW,
        f'{{"n": {n}}}',
        author_reach=10,
    )
    match = Match("Acme", "RouterX", (MatchSpan(0, 4, "Acme", "Acme", None, "name"),))
    if not classified:
        return Item(m, tuple(dedupe_keys(m)), match, None, None, classify_error="ValueError: boom")
    c = Classification(queue, queue == "support", "negative", -0.5, 1.0, {"support": 0.9, "advocacy": 0.1, "none": 0.1})  # type: ignore[arg-type]
    return Item(m, tuple(dedupe_keys(m)), match, c, Route(queue, 60 if queue == "support" else 0, "test"))  # type: ignore[arg-type]


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    s = Store(database)
    s.sync_sources([Source("blog", "rss", 60.0, None), Source("forum", "rss", 60.0, None)])
    yield s
    s.close()


def test_store_sqlite_opens_in_wal_mode(db_path: Path) -> None:
    with Store(db_path) as store:
        assert scalar(store, "PRAGMA journal_mode") == "wal"


def test_store_schema_matches_its_declaration(store: Store) -> None:
    for table in schema.TABLES:
        found = store.backend.read(f"SELECT * FROM {table.name} LIMIT 0").columns
        assert set(found) == set(table.columns), table.name


def test_store_migrations_apply_once(store: Store, database: str) -> None:
    version = store.schema_version
    applied, known = store.backend.migrations()
    assert version >= 1 and applied == known
    assert store.backend.migrate() == []
    again = Store(database)  # reopening applies nothing twice
    assert again.schema_version == version
    again.close()


def test_store_save_poll_is_idempotent(store: Store) -> None:
    first = store.save_poll("blog", [item(1), item(2, "advocacy"), item(3, "none")], seen=3)
    assert (first.new, first.duplicates) == (3, 0)
    assert first.queued == {"support": 1, "advocacy": 1, "none": 1}
    again = store.save_poll("blog", [item(1), item(2, "advocacy"), item(3, "none")], seen=3)
    assert (again.new, again.duplicates) == (0, 3)
    assert store.mention_count() == 3


def test_store_survives_a_restart(database: str, store: Store) -> None:
    store.save_poll("blog", [item(1)], state=SourceState('"e1"', "Mon, 23 Nov 2026 09:45:00 GMT", "c1"))
    store.close()
    reopened = Store(database)
    assert reopened.save_poll("blog", [item(1)]).new == 0
    assert reopened.source_state("blog") == SourceState('"e1"', "Mon, 23 Nov 2026 09:45:00 GMT", "c1")
    assert reopened.mention_count() == 1
    reopened.close()


def test_store_any_shared_key_is_a_duplicate(store: Store) -> None:
    store.save_poll("blog", [item(1)])
    m = item(1).mention
    moved = Mention("forum", "https://example.org/elsewhere", None, "other title", "other text", None, None, NOW, "{}")
    same_url_other_text = Item(moved, (f"url:{m.url}", "hash:other"), None, None, None)
    assert store.save_poll("forum", [same_url_other_text]).duplicates == 1


def test_store_outbox_rows_only_for_queued_beacons(store: Store) -> None:
    result = store.save_poll("blog", [item(1), item(2, "advocacy"), item(3, "none")], channels=["slack-0", "webhook-1"])
    found = rows(store, "SELECT event_id, channel, beacon_id, status FROM outbox ORDER BY id")
    support_id, advocacy_id, _none_id = result.beacon_ids
    assert found == [
        (f"beacon-{support_id}-slack-0", "slack-0", support_id, "pending"),
        (f"beacon-{support_id}-webhook-1", "webhook-1", support_id, "pending"),
        (f"beacon-{advocacy_id}-slack-0", "slack-0", advocacy_id, "pending"),
        (f"beacon-{advocacy_id}-webhook-1", "webhook-1", advocacy_id, "pending"),
    ]


def test_store_transaction_rolls_back_on_a_crash(store: Store) -> None:
    with pytest.raises(RuntimeError), store.backend.transaction() as tx:
        _insert_mention(tx, item(1), NOW)
        raise RuntimeError("crash mid-poll")
    assert store.mention_count() == 0
    assert store.known_keys(item(1).keys) == set()
    assert store.save_poll("blog", [item(1)]).new == 1


def test_store_counts_polls_errors_and_items(store: Store) -> None:
    store.save_poll("blog", [item(1), item(2)], seen=5, skipped=1)
    store.save_poll("blog", [], status="not_modified")
    assert store.record_error("blog", "FetchTimeout: too slow") == 1
    assert store.record_error("blog", "ParseError: html") == 2
    row = next(r for r in store.sources() if r["id"] == "blog")
    assert (row["polls"], row["errors"], row["consecutive_errors"], row["not_modified"]) == (4, 2, 2, 1)
    assert (row["items_seen"], row["items_new"], row["skipped"]) == (5, 2, 1)
    assert (row["last_status"], row["last_error"]) == ("error", "ParseError: html")
    store.save_poll("blog", [], seen=0)
    row = next(r for r in store.sources() if r["id"] == "blog")
    assert (row["last_status"], row["last_error"], row["consecutive_errors"], row["errors"]) == ("ok", None, 0, 2)


def _list(store: Store, **kw: object) -> list[Beacon]:
    return [e.beacon for e in list_entries(store, QueueFilter(**kw)).entries]  # type: ignore[arg-type]


def test_store_list_beacons_filters_and_orders(store: Store) -> None:
    store.save_poll("blog", [item(1), item(2, "advocacy"), item(3, "none")])
    store.save_poll("forum", [item(4, source="forum")])
    default = _list(store)
    assert [b.queue for b in default] == ["support", "support", "advocacy"]  # priority first
    assert [b.title for b in _list(store, queue="support")] == ["Acme post 4", "Acme post 1"]
    assert len(_list(store, queue="all")) == 4
    assert _list(store, queue="none")[0].title == "Acme post 3"
    assert _list(store, status="claimed") == []
    assert len(_list(store, brand="acme", product="routerx")) == 3
    page = list_entries(store, QueueFilter(queue="all", limit=2))
    rest = list_entries(store, QueueFilter(queue="all", cursor=page.next_cursor))
    assert len(page.entries) == 2 and len(rest.entries) == 2 and rest.next_cursor is None
    assert not {e.beacon.id for e in page.entries} & {e.beacon.id for e in rest.entries}
    beacon = store.get_beacon(default[0].id)
    assert beacon is not None and beacon.author_reach == 10 and beacon.scores["support"] == 0.9
    assert store.counts() == {"support/new": 2, "advocacy/new": 1, "none/new": 1}


def test_store_failed_classification_is_kept_and_retried(store: Store) -> None:
    store.save_poll("blog", [item(1, classified=False)])
    assert _list(store, queue="all") == []
    assert rows(store, "SELECT classify_status, classify_error, raw FROM mentions") == [
        ("error", "ValueError: boom", '{"n": 1}')
    ]
    [(mention_id, mention, match)] = store.unclassified()
    assert mention == item(1).mention
    assert match == item(1).match
    store.save_classification(mention_id, item(1), channels=["slack-0"])
    assert store.unclassified() == []
    assert len(_list(store)) == 1
    assert scalar(store, "SELECT COUNT(*) FROM outbox") == 1


def test_store_keeps_odd_text(store: Store) -> None:
    odd = item(1, text="emoji 🙌, RTL \u202e, surrogate-free")
    store.save_poll("blog", [odd])
    assert store.get_beacon(_list(store)[0].id).text == odd.mention.text  # type: ignore[union-attr]


def test_store_readers_and_a_writer_share_the_database(database: str, store: Store) -> None:
    errors: list[Exception] = []

    def read() -> None:
        reader = Store(database)
        try:
            for _ in range(30):
                _list(reader)
        except Exception as exc:
            errors.append(exc)
        finally:
            reader.close()

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for n in range(30):
        store.save_poll("blog", [item(n)])
    for t in threads:
        t.join()
    assert errors == []
    assert store.mention_count() == 30


def test_store_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open database"):
        Store(tmp_path / "file" / "beacons.db")


def test_store_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(path)


def test_store_next_poll_is_recorded(store: Store) -> None:
    store.set_next_poll("blog", datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    assert next(r for r in store.sources() if r["id"] == "blog")["next_poll_at"] == "2026-11-23T10:00:00.000000+00:00"


def test_store_sqlite_is_real_file(db_path: Path) -> None:
    store = Store(db_path)
    store.sync_sources([Source("blog", "rss", 60.0, None)])
    store.save_poll("blog", [item(1)])
    store.close()
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT COUNT(*) FROM mentions").fetchone()[0] == 1
    conn.close()


def test_store_creates_the_database_and_its_wal_files_private(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    store = Store(path)
    try:
        with store.backend.transaction() as tx:  # a write creates the -wal file; WAL mode has created -shm
            tx.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        made = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
        assert path in made and len(made) >= 2
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in made} == {p.name: 0o600 for p in made}
    finally:
        store.close()


def test_store_keeps_the_mode_an_operator_gave_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Store(path).close()
    path.chmod(0o640)
    Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_store_keeps_the_evidence_passage_issue_12(store: Store) -> None:
    from dataclasses import replace

    from beacons.models import Evidence

    plain, second_item = item(1), item(2)
    whole = second_item.mention.full_text
    start = whole.index("RouterX")
    assert second_item.classification is not None
    evidence = Evidence(whole[start:], start, len(whole))
    with_evidence = replace(second_item, classification=replace(second_item.classification, evidence=evidence))
    result = store.save_poll("blog", [plain, with_evidence])
    first, second = (store.get_beacon(i) for i in result.beacon_ids)
    assert first is not None and first.evidence is None  # e.g. the rules classifier gives none
    assert second is not None
    assert second.evidence == {"text": "RouterX text 2", "start": start, "end": len(whole)}
    assert second.to_json()["evidence"] == second.evidence  # the API JSON carries it
