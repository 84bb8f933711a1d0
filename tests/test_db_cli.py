"""``beacons db migrate|status|copy``: an SQLite install moved into a real PostgreSQL database, verified."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from helpers_alerts import add_beacon
from helpers_db import rows
from helpers_queue import config_data, make_config, seed

from beacons import queue as q
from beacons.cli import main
from beacons.storage import Storage
from beacons.storage.schema import TABLES


def cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write_config(tmp_path: Path, database: str) -> str:
    path = tmp_path / f"config-{abs(hash(database))}.yaml"
    path.write_text(yaml.safe_dump(config_data(database)), encoding="utf-8")
    return str(path)


def populated(tmp_path: Path) -> str:
    """An SQLite install with something in every table: beacons, history, notes, threads, labels, alerts."""
    database = str(tmp_path / "old.db")
    config = make_config(database)
    ids = seed(config)
    with Storage(database) as store:
        q.claim(store, ids[0], "alice")
        q.add_note(store, ids[0], "alice", "called the customer")
        q.reroute(store, ids[1], "bob", "none", note="not a support post")
        q.resolve(store, ids[2], "carol")
        add_beacon(store, ["ops"])
        store.outbox.save_health(
            "ops",
            "homenet-forum",
            {"state": "ok", "first_seen": "2026-11-23T09:00:00+00:00", "episode": 0, "reminders": 0},
            None,
            now=1.7e9,
        )
        store.outbox.create_incident("ops", "Acme", None, threshold=3.0, payload={"count": 4}, now=1.7e9)
        store.outbox.make_digest("ops", now=1.7e9, since=None)
    return database


def test_db_copy_moves_every_table_and_verifies_it(tmp_path: Path, pg_url: str, capsys: Any) -> None:
    source = populated(tmp_path)
    config = write_config(tmp_path, source)
    code, out, err = cli(capsys, "db", "copy", "--to", pg_url, "--format", "json", "-c", config)
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and {t["table"] for t in report["tables"]} == {t.name for t in TABLES if t.copied}
    assert all(
        t["source_rows"] == t["target_rows"] and t["source_checksum"] == t["target_checksum"] for t in report["tables"]
    )
    assert next(t for t in report["tables"] if t["table"] == "feedback_labels")["target_rows"] == 1
    with Storage(source) as old, Storage(pg_url) as new:
        want = q.list_entries(old, q.QueueFilter(queue="all", limit=500))
        got = q.list_entries(new, q.QueueFilter(queue="all", limit=500))
        assert [e.to_json() for e in got.entries] == [e.to_json() for e in want.entries]
        first = want.entries[0].beacon.id
        assert q.get_detail(new, first) == q.get_detail(old, first)
        # new ids continue after the copied ones
        assert q.add_note(new, first, "dan", "after the move")["id"] > max(
            r[0] for r in rows(old, "SELECT id FROM beacon_notes")
        )


def test_db_copy_is_safe_to_run_again(tmp_path: Path, pg_url: str, capsys: Any) -> None:
    source = populated(tmp_path)
    config = write_config(tmp_path, source)
    assert cli(capsys, "db", "copy", "--to", pg_url, "-c", config)[0] == 0
    with Storage(source) as store:  # the install keeps working before the switch
        q.dismiss(store, q.list_entries(store).entries[0].beacon.id, "erin")
    code, out, err = cli(capsys, "db", "copy", "--to", pg_url, "-c", config)
    assert code == 0, err
    assert "NO" not in out and "every table verified" in err
    with Storage(source) as old, Storage(pg_url) as new:
        assert new.counts() == old.counts() and new.mention_count() == old.mention_count()


def test_db_status_and_migrate(tmp_path: Path, database: str, capsys: Any) -> None:
    config = write_config(tmp_path, database)
    code, out, _ = cli(capsys, "db", "migrate", "-c", config)
    assert code == 0 and "applied" in out
    assert cli(capsys, "db", "migrate", "-c", config)[1] == ""  # nothing left to apply
    code, out, _ = cli(capsys, "db", "status", "--format", "json", "-c", config)
    status = json.loads(out)
    assert code == 0 and status["pending"] == [] and status["rows"]["mentions"] == 0
    assert status["backend"] == ("postgresql" if database.startswith("postgresql") else "sqlite")


def test_db_copy_to_an_unreachable_server_names_it_without_the_password(tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, str(tmp_path / "a.db"))
    code, _, err = cli(capsys, "db", "copy", "--to", "postgresql://u:s3cretpw@127.0.0.1:1/x", "-c", config)
    assert code == 1 and "s3cretpw" not in err and "postgresql://u:***@127.0.0.1:1/x" in err
