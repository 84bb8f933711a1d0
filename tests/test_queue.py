"""The queue lifecycle (issue 5) on a real SQLite file: states, history, notes, re-routes as labels, threads, paging, CLI."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_db import rows as db_rows
from helpers_db import scalar
from helpers_queue import config_data, make_config, mention, seed

from beacons import queue as q
from beacons.cli import main
from beacons.config import Config
from beacons.store import Store


def count_beacons(database: str) -> int:
    with Store(database) as store:
        return int(scalar(store, "SELECT COUNT(*) FROM beacons"))


OUTAGE, OUTAGE_TOO, WIFI, BILLING, GUEST, PRAISE = 1, 2, 3, 4, 5, 6  # beacon ids of helpers_queue.POSTS


@pytest.fixture
def config(database: str) -> Config:
    config = make_config(database)
    seed(config)
    return config


@pytest.fixture
def store(config: Config) -> Any:
    s = Store(config.database)
    yield s
    s.close()


def events(store: Store, beacon_id: int) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return [(e.actor, e.action, e.from_status, e.to_status, e.assignee) for e in q.history(store, beacon_id)]


def test_queue_claim_then_resolve_keeps_history(store: Store) -> None:
    claimed = q.claim(store, WIFI, "alice")
    assert (claimed.status, claimed.assignee) == ("claimed", "alice")
    resolved = q.resolve(store, WIFI, "alice", note="Sent the firmware 2.4.2 link")
    assert (resolved.status, resolved.assignee) == ("resolved", "alice")
    assert events(store, WIFI) == [
        ("alice", "claim", "new", "claimed", "alice"),
        ("alice", "resolve", "claimed", "resolved", "alice"),
    ]
    assert [n["text"] for n in q.get_detail(store, WIFI).notes] == ["Sent the firmware 2.4.2 link"]  # type: ignore[union-attr]
    assert resolved.updated_at is not None


def test_queue_claim_twice_is_a_conflict_naming_the_owner(store: Store) -> None:
    q.claim(store, WIFI, "alice")
    with pytest.raises(q.TransitionConflict) as info:
        q.claim(store, WIFI, "bob")
    assert (info.value.status, info.value.assignee) == ("claimed", "alice")
    assert "already claimed by alice" in str(info.value)
    assert store.get_beacon(WIFI).assignee == "alice"  # type: ignore[union-attr]


def test_queue_claim_for_someone_else(store: Store) -> None:
    beacon = q.claim(store, WIFI, "lead", assignee="carol")
    assert beacon.assignee == "carol"
    assert events(store, WIFI) == [("lead", "claim", "new", "claimed", "carol")]


@pytest.mark.parametrize(
    ("first", "second"), [("resolve", "resolve"), ("dismiss", "resolve"), ("resolve", "claim"), ("dismiss", "dismiss")]
)
def test_queue_closed_beacons_cannot_change_state(store: Store, first: str, second: str) -> None:
    getattr(q, first)(store, WIFI, "alice")
    with pytest.raises(q.TransitionConflict):
        getattr(q, second)(store, WIFI, "bob")


def test_queue_dismiss_from_new_assigns_the_dismisser(store: Store) -> None:
    beacon = q.dismiss(store, WIFI, "bob", note="duplicate of a forum thread")
    assert (beacon.status, beacon.assignee) == ("dismissed", "bob")


def test_queue_concurrent_claims_exactly_one_wins(config: Config) -> None:
    """Two people (two connections, two threads) claim the same beacon at the same moment, ten times over."""
    for beacon_id in (WIFI, BILLING, GUEST, PRAISE):
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def attempt(
            person: str,
            beacon_id: int = beacon_id,
            barrier: threading.Barrier = barrier,
            outcomes: dict[str, str] = outcomes,
        ) -> None:
            store = Store(config.database)
            try:
                barrier.wait()
                q.claim(store, beacon_id, person)
                outcomes[person] = "won"
            except q.TransitionConflict:
                outcomes[person] = "lost"
            finally:
                store.close()

        threads = [threading.Thread(target=attempt, args=(p,)) for p in ("alice", "bob")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(outcomes.values()) == ["lost", "won"]
        winner = next(p for p, o in outcomes.items() if o == "won")
        check = Store(config.database)
        assert check.get_beacon(beacon_id).assignee == winner  # type: ignore[union-attr]
        assert [e.action for e in q.history(check, beacon_id)] == ["claim"]
        check.close()


def test_queue_unknown_beacon(store: Store) -> None:
    with pytest.raises(q.BeaconNotFound):
        q.claim(store, 999, "alice")
    assert q.get_detail(store, 999) is None


@pytest.mark.parametrize(
    ("by", "message"),
    [
        ("", "by: is required"),
        ("   ", "by: is required"),
        ("x" * 101, "by: is longer than 100"),
        (None, "by: is required"),
    ],
)
def test_queue_actions_need_a_name(store: Store, by: Any, message: str) -> None:
    with pytest.raises(q.InvalidInput, match=message):
        q.claim(store, WIFI, by)


def test_queue_notes(store: Store) -> None:
    note = q.add_note(store, WIFI, "alice", "  Asked for the router's log  ")
    assert note["text"] == "Asked for the router's log" and note["author"] == "alice"
    with pytest.raises(q.InvalidInput, match="text: must be non-empty"):
        q.add_note(store, WIFI, "alice", " ")
    with pytest.raises(q.InvalidInput, match="longer than 5000"):
        q.add_note(store, WIFI, "alice", "x" * 5001)
    assert events(store, WIFI) == [("alice", "note", "new", "new", None)]


def test_queue_reroute_is_a_training_label(store: Store) -> None:
    q.claim(store, GUEST, "alice")
    before = store.get_beacon(GUEST)
    moved = q.reroute(store, GUEST, "alice", "advocacy", note="pre-sales question, not a problem")
    assert (moved.queue, moved.status, moved.assignee, moved.is_beacon) == ("advocacy", "new", None, False)
    assert moved.priority != before.priority  # type: ignore[union-attr]  # recomputed with the advocacy formula
    assert moved.reason == "re-routed by alice from support"
    last = q.history(store, GUEST)[-1]
    assert (last.action, last.from_queue, last.to_queue, last.detail) == (
        "reroute",
        "support",
        "advocacy",
        "pre-sales question, not a problem",
    )
    q.reroute(store, GUEST, "bob", "none")
    examples = q.feedback_examples(store)
    assert examples == [
        {
            "text": store.get_beacon(GUEST).text,
            "title": "How do I set up a guest network on the RX-200?",
            "queue": "none",
            "brand": "Acme",
            "sentiment": None,
            "intents": None,
            "labels": ["queue"],
        }
    ]  # type: ignore[union-attr]
    assert scalar(store, "SELECT COUNT(*) FROM feedback_labels") == 2  # every correction is kept


def test_queue_reroute_to_the_same_queue_or_an_unknown_one(store: Store) -> None:
    with pytest.raises(q.TransitionConflict, match="already in the support queue"):
        q.reroute(store, WIFI, "alice", "support")
    with pytest.raises(q.InvalidInput, match="queue: expected one of support, advocacy, none"):
        q.reroute(store, WIFI, "alice", "urgent")


# -- threads ------------------------------------------------------------------------------------


def test_queue_similar_posts_share_a_thread_and_list_once(store: Store) -> None:
    assert q.get_entry(store, OUTAGE_TOO).thread_id == OUTAGE  # type: ignore[union-attr]
    page = q.list_entries(store, q.QueueFilter(queue="support"))
    ids = [e.beacon.id for e in page.entries]
    assert OUTAGE in ids and OUTAGE_TOO not in ids
    assert next(e for e in page.entries if e.beacon.id == OUTAGE).related == 1
    flat = [e.beacon.id for e in q.list_entries(store, q.QueueFilter(queue="support", threads=False)).entries]
    assert OUTAGE_TOO in flat
    assert [t["id"] for t in q.get_detail(store, OUTAGE).thread] == [OUTAGE_TOO]  # type: ignore[union-attr]
    assert [t["id"] for t in q.get_detail(store, OUTAGE_TOO).thread] == [OUTAGE]  # type: ignore[union-attr]


def test_queue_resolving_a_thread_resolves_its_open_posts(store: Store) -> None:
    q.claim(store, OUTAGE, "alice")
    assert store.get_beacon(OUTAGE_TOO).status == "claimed"  # type: ignore[union-attr]
    q.resolve(store, OUTAGE, "alice", note="status page updated")
    assert store.get_beacon(OUTAGE_TOO).status == "resolved"  # type: ignore[union-attr]
    assert q.history(store, OUTAGE_TOO)[-1].detail == f"with its thread #{OUTAGE}"


def test_queue_a_claimed_member_shows_when_its_thread_is_filtered_out(store: Store) -> None:
    q.claim(store, OUTAGE_TOO, "bob")  # only the second post: the thread's first is still new
    claimed = [e.beacon.id for e in q.list_entries(store, q.QueueFilter(queue="support", status="claimed")).entries]
    assert claimed == [OUTAGE_TOO]


def test_queue_new_post_after_the_thread_closed_starts_a_new_thread(config: Config, store: Store) -> None:
    q.resolve(store, OUTAGE, "alice")
    seed(
        config,
        [
            mention(
                "status-watch",
                "late",
                "Acme Cloud dashboard 502 again",
                "Acme Cloud dashboard returns 502 errors again, deploys stuck.",
                "https://social.example/@late/1",
                minutes_ago=1,
            )
        ],
    )
    newest = scalar(store, "SELECT MAX(id) FROM beacons")
    assert q.get_entry(store, newest).thread_id == newest  # type: ignore[union-attr]


def test_queue_reroute_leaves_the_thread(store: Store) -> None:
    q.reroute(store, OUTAGE, "alice", "advocacy")
    assert q.get_entry(store, OUTAGE).thread_id == OUTAGE  # type: ignore[union-attr]
    assert q.get_entry(store, OUTAGE_TOO).thread_id == OUTAGE_TOO  # type: ignore[union-attr]  # it now starts its own


def test_queue_grouping_can_be_turned_off(tmp_path: Path) -> None:
    config = make_config(tmp_path / "flat.db", routing={"grouping": {"enabled": False}})
    seed(config)
    store = Store(config.database)
    assert q.get_entry(store, OUTAGE_TOO).thread_id == OUTAGE_TOO  # type: ignore[union-attr]
    store.close()


# -- reading ------------------------------------------------------------------------------------


def test_queue_pages_cover_every_beacon_once_in_priority_order(store: Store) -> None:
    seen: list[tuple[int, int]] = []
    cursor = None
    while True:
        page = q.list_entries(store, q.QueueFilter(queue="all", limit=3, cursor=cursor, threads=False))
        seen += [(e.beacon.priority, e.beacon.id) for e in page.entries]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    everything = db_rows(store, "SELECT priority, id FROM beacons")
    assert seen == sorted(everything, key=lambda r: (-r[0], -r[1]))


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        (q.QueueFilter(queue="advocacy"), {6, 7, 8}),
        (q.QueueFilter(queue="support", team="networking"), {3, 5}),
        (q.QueueFilter(product="acme cloud"), {1, 4, 7}),  # filters ignore case
        (q.QueueFilter(status="open", brand="Acme", queue="support"), {1, 3, 4, 5}),
    ],
)
def test_queue_filters(store: Store, f: q.QueueFilter, expected: set[int]) -> None:
    assert {e.beacon.id for e in q.list_entries(store, f).entries} == expected


@pytest.mark.parametrize(
    "bad", [q.QueueFilter(status="pending"), q.QueueFilter(queue="urgent"), q.QueueFilter(cursor="not-a-cursor")]
)
def test_queue_bad_filters(store: Store, bad: q.QueueFilter) -> None:
    with pytest.raises(q.InvalidInput):
        q.list_entries(store, bad)


def test_queue_version_changes_with_every_action(store: Store) -> None:
    v0 = q.version(store)
    q.add_note(store, WIFI, "alice", "looking")
    v1 = q.version(store)
    q.claim(store, WIFI, "alice")
    assert len({v0, v1, q.version(store)}) == 3


def test_queue_migrations_apply_once(config: Config) -> None:
    first = Store(config.database)
    version_before = first.schema_version
    first.close()
    again = Store(config.database)
    assert again.schema_version == version_before
    applied, known = again.backend.migrations()
    assert applied == known and again.backend.migrate() == []
    again.close()


# -- CLI ----------------------------------------------------------------------------------------


def cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config_file(tmp_path: Path, config: Config) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(config.database, serve={"tokens": ["x" * 20]})), encoding="utf-8")
    return str(path)


def test_queue_cli_lifecycle(capsys: Any, config_file: str) -> None:
    assert cli(capsys, "queue", "claim", "3", "--by", "alice", "-c", config_file)[1].startswith(
        "#3 support claimed (alice)"
    )
    code, _, err = cli(capsys, "queue", "claim", "3", "--by", "bob", "-c", config_file)
    assert code == 1 and "already claimed by alice" in err
    assert cli(capsys, "queue", "note", "3", "asked for logs", "--by", "alice", "-c", config_file)[1].startswith(
        "note "
    )
    assert cli(capsys, "queue", "resolve", "3", "--by", "alice", "--note", "fixed by 2.4.2", "-c", config_file)[
        1
    ].startswith("#3 support resolved")
    code, out, _ = cli(
        capsys, "queue", "reroute", "5", "advocacy", "--by", "bob", "--format", "json", "-c", config_file
    )
    assert code == 0 and json.loads(out)["queue"] == "advocacy"
    assert cli(capsys, "queue", "dismiss", "4", "--by", "bob", "-c", config_file)[0] == 0
    code, out, _ = cli(capsys, "queue", "show", "3", "--format", "json", "-c", config_file)
    shown = json.loads(out)
    assert [e["action"] for e in shown["history"]] == ["claim", "note", "resolve"]
    assert [n["text"] for n in shown["notes"]] == ["asked for logs", "fixed by 2.4.2"]
    code, out, _ = cli(capsys, "queue", "show", "1", "-c", config_file)
    assert "same problem: #2" in out


def test_queue_cli_by_defaults_to_beacons_user(capsys: Any, config_file: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("BEACONS_USER", "dana")
    cli(capsys, "queue", "claim", "3", "-c", config_file)
    _code, out, _ = cli(capsys, "queue", "show", "3", "--format", "json", "-c", config_file)
    assert json.loads(out)["assignee"] == "dana"


def test_queue_cli_export_csv_neutralises_formulas(capsys: Any, config_file: str, config: Config) -> None:
    seed(
        config,
        [
            mention(
                "forum",
                '=HYPERLINK("http://evil")',
                "=cmd|' /C calc'!A0 Acme RouterX broken",
                "RouterX is broken, help",
                "https://forum.example/t/9",
            )
        ],
    )
    code, out, _ = cli(capsys, "queue", "export", "--format", "csv", "--queue", "all", "-c", config_file)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == count_beacons(config.database)
    hostile = next(r for r in rows if "calc" in r["title"])
    assert hostile["title"].startswith("'=") and hostile["author"].startswith("'=")
    assert rows[0].keys() >= {"id", "queue", "status", "priority", "brand", "team", "assignee", "thread_id"}


def test_queue_cli_export_json_to_file(capsys: Any, config_file: str, tmp_path: Path) -> None:
    out_path = tmp_path / "export.json"
    code, _, err = cli(
        capsys, "queue", "export", "--format", "json", "--status", "open", "-o", str(out_path), "-c", config_file
    )
    data = json.loads(out_path.read_text(encoding="utf-8"))
    assert code == 0 and f"wrote {len(data)} beacons" in err
    assert {b["id"] for b in data} == {1, 2, 3, 4, 5, 6, 7, 8}  # exports list every post of a thread


def test_queue_cli_route_explain(capsys: Any, config_file: str) -> None:
    code, out, _ = cli(capsys, "route", "--explain", "1", "-c", config_file)
    assert code == 0
    assert "rule urgent  matched  keyword 'outage' -> queue support, min_priority 80" in out
    assert out.splitlines()[-2].startswith("decision: support, priority 8")
    code, out, _ = cli(capsys, "route", "--explain", "1", "--format", "json", "-c", config_file)
    data = json.loads(out)
    assert data["decision"]["team"] == "cloud" and [s["rule"] for s in data["steps"]][:4] == [
        "brand",
        "drop",
        "language",
        "classifier",
    ]
    assert cli(capsys, "route", "--explain", "999", "-c", config_file)[0] == 1


def test_queue_cli_list_and_the_api_list_the_same_beacons(capsys: Any, config_file: str, store: Any) -> None:
    """Issue 11: `queue list` once showed thread members the page hides; both now use one query."""
    code, out, _ = cli(capsys, "queue", "list", "--format", "json", "-c", config_file)
    listed = [b["id"] for b in json.loads(out)]
    page = q.list_entries(store, q.QueueFilter())
    assert code == 0 and listed == [e.beacon.id for e in page.entries]
    assert OUTAGE in listed and OUTAGE_TOO not in listed  # the second outage post is in the first one's thread
