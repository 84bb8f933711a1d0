"""Undo and saved replies (issue 13 §3), on both backends: the queue, the API with named people, the page's
forms without JavaScript, the CLI's ``queue undo``; and the ``replies:`` config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers_queue import (
    TOKEN,
    config_data,
    fresh_logging,  # noqa: F401  (autouse: structlog writes to the current stdout)
    seed,
)

from beacons import queue as q
from beacons import users
from beacons.cli import main
from beacons.config import Config, ReplyTemplate, parse_config
from beacons.errors import ConfigError, TransitionConflict
from beacons.queue import reroute_options
from beacons.queue.replies import render
from beacons.storage import Storage
from beacons.web.server import WebServer

OUTAGE, OUTAGE_TOO, WIFI, BILLING, GUEST, PRAISE = 1, 2, 3, 4, 5, 6  # tests/helpers_queue.py's seeded beacons
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HOOK = {"kind": "webhook", "name": "team-hook", "url": "http://127.0.0.1:9/hook", "secret": "s" * 32}
REPLIES = [
    {"name": "sorry", "text": "Hi {author}, sorry about your {product}! We are on it: {link}"},
    {"name": "thanks", "text": "Thank you {author} for the kind words about {brand} {{and us}}."},
]


def make_config(database: str) -> Config:
    data = config_data(database, serve={"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 1})
    return parse_config(yaml.safe_dump({**data, "alerts": [HOOK], "replies": REPLIES}), env={}, path="<test>")


@pytest.fixture
def config(database: str) -> Config:
    config = make_config(database)
    seed(config)
    return config


@pytest.fixture
def store(config: Config) -> Iterator[Storage]:
    with Storage(config.database) as s:
        yield s


def state(store: Storage, beacon_id: int) -> tuple[Any, ...]:
    b = store.get_beacon(beacon_id)
    assert b is not None
    return (b.status, b.queue, b.assignee, b.priority, b.team, b.reason)


def actions(store: Storage, beacon_id: int) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in q.history(store, beacon_id)]


# -- the queue ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "act"),
    [
        ([], lambda s, i: q.claim(s, i, "bob")),
        ([], lambda s, i: q.resolve(s, i, "bob")),
        ([lambda s, i: q.claim(s, i, "carol")], lambda s, i: q.dismiss(s, i, "bob")),
        ([lambda s, i: q.claim(s, i, "carol")], lambda s, i: q.reroute(s, i, "bob", "advocacy")),
    ],
    ids=["claim", "resolve-new", "dismiss-claimed", "reroute-claimed"],
)
def test_undo_restores_exactly_what_the_action_changed(store: Storage, setup: list[Any], act: Any) -> None:
    for step in setup:
        step(store, WIFI)
    before = state(store, WIFI)
    act(store, WIFI)
    assert state(store, WIFI) != before
    undone = q.undo(store, WIFI, "bob")
    assert state(store, WIFI) == before and undone.id == WIFI
    last = q.history(store, WIFI)[-1]
    assert (last.actor, last.action) == ("bob", "undo")


def test_undo_of_a_reroute_withdraws_its_label_and_its_unsent_alert(config: Config, store: Storage) -> None:
    q.reroute(store, GUEST, "bob", "none")
    q.reroute(store, GUEST, "bob", "support", **reroute_options(config))
    assert store.backend.read("SELECT COUNT(*) FROM outbox WHERE beacon_id = ?", [GUEST]).scalar() == 1
    q.undo(store, GUEST, "bob")
    b = store.get_beacon(GUEST)
    assert b is not None and b.queue == "none"
    assert store.backend.read("SELECT COUNT(*) FROM outbox WHERE beacon_id = ?", [GUEST]).scalar() == 0
    labels = store.backend.read("SELECT from_queue, to_queue FROM feedback_labels WHERE beacon_id = ?", [GUEST]).rows
    assert [tuple(r) for r in labels] == [("support", "none")]  # the first re-route is still a correction


def test_undo_a_thread_claim_releases_the_thread_too(store: Storage) -> None:
    q.claim(store, OUTAGE, "bob")
    assert store.get_beacon(OUTAGE_TOO).status == "claimed"  # type: ignore[union-attr]
    q.undo(store, OUTAGE, "bob")
    for beacon_id in (OUTAGE, OUTAGE_TOO):
        b = store.get_beacon(beacon_id)
        assert b is not None and (b.status, b.assignee) == ("new", None)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "nobody has acted on it"),
        ([("claim", "bob"), ("resolve", "carol")], "carol resolved it since"),
        ([("claim", "bob"), ("undo", "bob")], "already undone by bob"),
        ([("resolve", "bob"), ("reopen", "bob")], "only claim, resolve, dismiss and re-route"),
    ],
)
def test_undo_is_refused_when_someone_else_acted_since(
    store: Storage, steps: list[tuple[str, str]], message: str
) -> None:
    fns = {"claim": q.claim, "resolve": q.resolve, "undo": q.undo, "reopen": q.reopen}
    for action, who in steps:
        fns[action](store, WIFI, who)
    before = state(store, WIFI)
    with pytest.raises(TransitionConflict, match=message):
        q.undo(store, WIFI, "bob")
    assert state(store, WIFI) == before


def test_undo_passes_over_notes(store: Storage) -> None:
    q.claim(store, WIFI, "bob")
    q.add_note(store, WIFI, "carol", "I can take it if you are busy")
    q.undo(store, WIFI, "bob")
    assert state(store, WIFI)[:3] == ("new", "support", None)
    assert actions(store, WIFI) == [("bob", "claim"), ("carol", "note"), ("bob", "undo")]


# -- saved replies ----------------------------------------------------------------------------------------


def test_replies_render_with_the_beacons_values_and_record_a_note(config: Config, store: Storage) -> None:
    from beacons.queue.replies import reply

    text = reply(store, config.replies, WIFI, "bob", "sorry")
    assert (
        text == "Hi dbrennan, sorry about your RouterX! We are on it: https://forum.example/t/routerx-drops-wifi/4811"
    )
    assert q.get_detail(store, WIFI).notes[-1]["text"] == "replied with template sorry"  # type: ignore[union-attr]
    b = store.get_beacon(PRAISE)
    assert b is not None
    assert render(config.replies[1], b) == "Thank you lena for the kind words about Acme {and us}."


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        ([{"name": "x", "text": "Hi {user}"}], "replies[0].text: unknown placeholder {user}"),
        ([{"name": "x", "text": "Hi {author.__class__}"}], "unknown placeholder {author.__class__}"),
        ([{"name": "x", "text": "Hi {"}], "replies[0].text: Single '{' encountered"),
        ([{"name": "x", "text": "a"}, {"name": "x", "text": "b"}], "replies[1].name: 'x' is used twice"),
        ([{"name": "x", "txt": "a"}], "replies[0].txt: unknown key"),
        ([{"name": "", "text": "a"}], "replies[0].name: expected a name"),
    ],
)
def test_replies_config_names_the_bad_key(replies: list[dict[str, str]], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump({"replies": replies}), env={})
    assert expected in str(caught.value)


def test_replies_config_keeps_the_templates() -> None:
    config = parse_config(yaml.safe_dump({"replies": REPLIES}), env={})
    assert config.replies[0] == ReplyTemplate("sorry", REPLIES[0]["text"])


# -- the API and the page, with named people --------------------------------------------------------------


class Team:
    def __init__(self, config: Config, server: WebServer) -> None:
        self.config, self.server, self.tokens = config, server, {}
        with Storage(config.database) as store:
            for name, role in (("lena", "lead"), ("bob", "agent"), ("carol", "agent")):
                store.add_user(name, role, now=NOW)
                self.tokens[name] = users.issue_token(store, name, now=NOW)

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
def team(config: Config) -> Iterator[Team]:
    server = WebServer(config)
    server.start(poll_interval=0.05)
    try:
        yield Team(config, server)
    finally:
        server.stop()


def test_undo_api_restores_and_409s_when_someone_else_acted(team: Team) -> None:
    with httpx.Client(base_url=team.server.url, timeout=10) as c:
        assert c.post(f"/api/beacons/{WIFI}/claim", json={}, headers=team.as_("bob")).status_code == 200
        r = c.post(f"/api/beacons/{WIFI}/undo", json={}, headers=team.as_("bob"))
        assert r.status_code == 200 and (r.json()["beacon"]["status"], r.json()["beacon"]["assignee"]) == ("new", None)
        c.post(f"/api/beacons/{WIFI}/resolve", json={}, headers=team.as_("bob"))
        c.post(f"/api/beacons/{WIFI}/reopen", json={}, headers=team.as_("carol"))
        r = c.post(f"/api/beacons/{WIFI}/undo", json={}, headers=team.as_("bob"))
        assert r.status_code == 409 and "carol reopen" in r.json()["error"]["message"]
        r = c.post(f"/api/beacons/{GUEST}/reroute", json={"queue": "advocacy"}, headers=team.as_("lena"))
        assert c.post(f"/api/beacons/{GUEST}/undo", json={}, headers=team.as_("bob")).status_code == 409
        r = c.post(f"/api/beacons/{GUEST}/undo", json={}, headers=team.as_("lena"))
        assert r.status_code == 200 and r.json()["beacon"]["queue"] == "support"
        assert c.post("/api/beacons/999/undo", json={}, headers=team.as_("lena")).status_code == 404
        detail = c.get(f"/api/beacons/{GUEST}", headers=team.as_("lena")).json()
        assert [(h["actor"], h["action"]) for h in detail["history"]] == [("lena", "reroute"), ("lena", "undo")]


def test_reply_api_renders_and_records(team: Team) -> None:
    with httpx.Client(base_url=team.server.url, timeout=10) as c:
        r = c.post(f"/api/beacons/{PRAISE}/reply", json={"template": "thanks"}, headers=team.as_("bob"))
        assert r.status_code == 201
        assert r.json() == {
            "beacon_id": PRAISE,
            "template": "thanks",
            "text": "Thank you lena for the kind words about Acme {and us}.",
        }
        r = c.post(f"/api/beacons/{PRAISE}/reply", json={"template": "nope"}, headers=team.as_("bob"))
        assert r.status_code == 400 and "known: sorry, thanks" in r.json()["error"]["message"]
        notes = c.get(f"/api/beacons/{PRAISE}", headers=team.as_("bob")).json()["notes"]
        assert [(n["author"], n["text"]) for n in notes] == [("bob", "replied with template thanks")]


def test_card_links_the_original_post_and_shows_replies(team: Team) -> None:
    with httpx.Client(base_url=team.server.url, timeout=10) as c:
        page = c.get("/", headers={**team.as_("bob"), "Accept": "text/html"}).text
    assert 'class="tag original" href="https://forum.example/t/routerx-drops-wifi/4811"' in page
    assert "Open original post" in page
    assert (
        "Hi dbrennan, sorry about your RouterX! We are on it: https://forum.example/t/routerx-drops-wifi/4811" in page
    )
    assert f'action="/api/beacons/{WIFI}/reply"' in page and 'id="keys"' in page


# -- the CLI ---------------------------------------------------------------------------------------------


def test_undo_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = str(tmp_path / "beacons.db")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(database)), encoding="utf-8")
    seed(make_config(database))

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args[:2], "--config", str(path), *args[2:]])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("queue", "claim", str(WIFI), "--by", "bob")[0] == 0
    code, _, err = run("queue", "undo", str(WIFI), "--by", "carol")
    assert code == 1 and "bob claimed it since" in err
    code, out, _ = run("queue", "undo", str(WIFI), "--by", "bob", "--format", "json")
    assert code == 0 and (json.loads(out)["status"], json.loads(out)["assignee"]) == ("new", None)


def test_undo_page_offers_undo_without_javascript(team: Team) -> None:
    """The detail page shows an Undo form for the signed-in person's own last action; a plain form post works."""
    with httpx.Client(base_url=team.server.url, timeout=10) as c:
        r = c.post("/login", data={"name": "sam", "token": TOKEN, "next": "/"}, headers={"Origin": team.server.url})
        assert r.status_code == 303
        c.post(f"/api/beacons/{WIFI}/claim", json={"by": "carol"}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert "Undo your" not in c.get(f"/beacons/{WIFI}").text  # carol's claim, not sam's
        page = c.get(f"/beacons/{BILLING}").text
        assert "Undo your" not in page
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        c.post(f"/api/beacons/{BILLING}/resolve", data={"csrf": csrf, "next": f"/beacons/{BILLING}"})
        page = c.get(f"/beacons/{BILLING}").text
        assert "Undo your resolve" in page
        r = c.post(
            f"/api/beacons/{BILLING}/undo",
            data={"csrf": csrf, "next": f"/beacons/{BILLING}"},
            headers={"Accept": "text/html"},
        )
        assert r.status_code == 303
    with Storage(team.config.database) as store:
        b = store.get_beacon(BILLING)
        assert b is not None and b.status == "new"
