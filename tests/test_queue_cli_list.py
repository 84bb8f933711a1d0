"""Issue 13 §5: `beacons queue list` matches the page (open by default, mine, assignee, search, threads), `queue show` prints for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_queue import config_data, make_config, seed

from beacons import queue as q
from beacons.cli import EXIT_CONFIG, EXIT_OK, main
from beacons.queue_view import ELLIPSIS, fit
from beacons.store import Store

OUTAGE, OUTAGE_TOO, WIFI, BILLING, GUEST, PRAISE = 1, 2, 3, 4, 5, 6  # beacon ids of helpers_queue.POSTS


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    """A seeded SQLite database: #3 claimed by a long-named person, #4 resolved, #5 claimed by bob."""
    db = tmp_path / "beacons.db"
    seed(make_config(db))
    with Store(str(db)) as store:
        q.claim(store, WIFI, "alexandra.montgomery-smith")
        q.resolve(store, BILLING, "alice")
        q.claim(store, GUEST, "bob")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(db)), encoding="utf-8")
    return str(path)


def cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys: Any, config_file: str, *args: str) -> list[dict[str, Any]]:
    code, out, err = cli(capsys, "queue", "list", "-c", config_file, "--format", "json", *args)
    assert code == EXIT_OK, err
    result: list[dict[str, Any]] = json.loads(out)
    return result


def test_queue_cli_list_defaults_to_open_beacons(capsys: Any, config_file: str) -> None:
    statuses = {b["id"]: b["status"] for b in listed(capsys, config_file)}
    assert BILLING not in statuses and set(statuses.values()) == {"new", "claimed"}
    assert listed(capsys, config_file, "--status", "open") == listed(capsys, config_file)
    assert [b["id"] for b in listed(capsys, config_file, "--status", "resolved")] == [BILLING]
    assert BILLING in {b["id"] for b in listed(capsys, config_file, "--status", "all")}


@pytest.mark.parametrize(
    ("args", "env", "ids"),
    [
        (["--assignee", "bob"], {}, [GUEST]),
        (["--assignee", "BOB"], {}, [GUEST]),
        (["--mine", "--as", "bob"], {}, [GUEST]),
        (["--mine"], {"BEACONS_USER": "alexandra.montgomery-smith"}, [WIFI]),
        (["--assignee", "nobody"], {}, []),
    ],
)
def test_queue_cli_list_by_assignee_and_mine(
    capsys: Any, config_file: str, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], ids: list[int]
) -> None:
    monkeypatch.delenv("BEACONS_USER", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert [b["id"] for b in listed(capsys, config_file, *args)] == ids


def test_queue_cli_list_mine_needs_to_know_who(capsys: Any, config_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEACONS_USER", raising=False)
    code, out, err = cli(capsys, "queue", "list", "-c", config_file, "--mine")
    assert code == EXIT_CONFIG and not out
    assert "--as NAME" in err and "BEACONS_USER" in err


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("guest network", [GUEST]),  # title and text
        ("RAVI", [7]),  # author, any case
        ("no such words anywhere", []),
    ],
)
def test_queue_cli_list_q_searches_title_text_and_author(
    capsys: Any, config_file: str, text: str, ids: list[int]
) -> None:
    assert [b["id"] for b in listed(capsys, config_file, "--q", text)] == ids


def test_queue_cli_list_q_is_the_full_text_search_of_the_page(capsys: Any, config_file: str) -> None:
    """Issue 13 §5: --q searches notes and matches word prefixes, as GET /api/beacons?q= does (no substring test)."""
    with Store(config_file.replace("config.yaml", "beacons.db")) as store:
        q.add_note(store, PRAISE, "alice", "asked them for a testimonial quote")
        api = [e.beacon.id for e in q.list_entries(store, q.QueueFilter(q="testimon")).entries]
    assert [b["id"] for b in listed(capsys, config_file, "--q", "testimon")] == api == [PRAISE]
    assert listed(capsys, config_file, "--q", "estimonia") == []  # words and prefixes, not any substring


def test_queue_cli_list_collapses_threads_like_the_page(capsys: Any, config_file: str) -> None:
    beacons = {b["id"]: b for b in listed(capsys, config_file)}
    assert OUTAGE in beacons and OUTAGE_TOO not in beacons  # the second outage post is in the first one's thread
    assert beacons[OUTAGE]["related"] == 1
    _, out, _ = cli(capsys, "queue", "list", "-c", config_file)
    [row] = [line for line in out.splitlines() if line.split()[0] == str(OUTAGE)]
    assert "+1" in row.split()


def test_queue_cli_list_table_shows_assignee_and_never_cuts_a_name_silently(capsys: Any, config_file: str) -> None:
    code, out, _ = cli(capsys, "queue", "list", "-c", config_file)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["id", "queue", "pri", "status", "assignee"]
    [wifi] = [line for line in lines if line.split()[0] == str(WIFI)]
    assert "alexandra.montgomery-smith" not in wifi and f"alexandra.m{ELLIPSIS}" in wifi  # cut, and marked as cut
    assert any("--wide" in line for line in lines)  # says how to see it whole
    code, wide, _ = cli(capsys, "queue", "list", "-c", config_file, "--wide")
    assert "alexandra.montgomery-smith" in wide and ELLIPSIS not in wide
    [guest] = [line for line in lines if line.split()[0] == str(GUEST)]
    assert guest.split()[4] == "bob"


@pytest.mark.parametrize(("value", "width", "shown"), [("bob", 12, "bob"), ("abcdefghij", 5, "abcd…"), (None, 5, "-")])
def test_queue_view_fit_marks_what_it_cuts(value: str | None, width: int, shown: str) -> None:
    assert fit(value, width) == shown


def test_queue_cli_list_pages_past_the_storage_page_size(tmp_path: Path, capsys: Any) -> None:
    """--limit is validated (1-10000) and honoured above the 1000 rows one storage page holds."""
    from helpers_queue import mention

    from beacons.storage.beacons import MAX_PAGE

    db = tmp_path / "beacons.db"
    config = make_config(db, routing={"grouping": {"enabled": False}})
    posts = [
        mention("bulk", f"user{i}", f"Acme RouterX post {i}", f"My Acme RouterX is broken, case {i}, please help", None)
        for i in range(MAX_PAGE + 5)
    ]
    seed(config, posts)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(db, routing={"grouping": {"enabled": False}})), encoding="utf-8")
    code, out, _ = cli(
        capsys, "queue", "list", "-c", str(path), "--queue", "all", "--limit", "1003", "--format", "json"
    )
    assert code == EXIT_OK and len(json.loads(out)) == 1003


def test_queue_cli_show_prints_for_people(capsys: Any, config_file: str) -> None:
    with Store(yaml.safe_load(Path(config_file).read_text())["database"]) as store:
        q.add_note(store, WIFI, "alice", "asked for logs")
    code, out, _ = cli(capsys, "queue", "show", str(WIFI), "-c", config_file)
    assert code == EXIT_OK
    for python_repr in ("{'", "None", "True", "False", "[]", "{}"):
        assert python_repr not in out, python_repr
    fields = out.split("\n\n")[0].splitlines()
    width = fields[0].index("id") + 2  # "     id  3": labels end in one column
    assert all(line[width : width + 2] == "  " and line[width - 1] != " " for line in fields)  # one aligned column
    assert any(line.strip().startswith("assignee  alexandra.montgomery-smith") for line in out.splitlines())
    assert "Notes:" in out and "alice: asked for logs" in out and "History:" in out and "claim" in out
    code, out, _ = cli(capsys, "queue", "show", str(WIFI), "-c", config_file, "--format", "json")
    shown = json.loads(out)
    assert shown["id"] == WIFI and shown["assignee"] == "alexandra.montgomery-smith"
    assert isinstance(shown["scores"], dict) and shown["notes"][0]["text"] == "asked for logs"
