"""Nothing stranded, nothing surprising (issue 13 §3): reopen, reassign, a re-route that redoes routing, bulk
actions, on both backends; over real HTTP with named people and their roles; the page's forms without
JavaScript; and the CLI's ``queue reopen`` and ``queue reassign``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers_db import scalar
from helpers_queue import (
    TOKEN,
    config_data,
    fresh_logging,  # noqa: F401  (autouse: structlog writes to the current stdout)
    seed,
)

from beacons import queue as q
from beacons import users
from beacons.cli import main
from beacons.config import Config, parse_config
from beacons.queue import reroute_options
from beacons.route import priority
from beacons.storage import Storage
from beacons.web.server import WebServer

# The seeded queue (tests/helpers_queue.py): 1 and 2 are one thread (an Acme Cloud outage; 1 matched the
# "urgent" rule), 3 and 5 are RouterX support posts, 4 an Acme Cloud billing post, 6 to 8 advocacy.
OUTAGE, OUTAGE_TOO, WIFI, BILLING, GUEST, PRAISE = 1, 2, 3, 4, 5, 6
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SERVICE = {"Authorization": f"Bearer {TOKEN}"}
PASSWORD = "correct horse battery staple"
HOOK = {"kind": "webhook", "name": "team-hook", "url": "http://127.0.0.1:9/hook", "secret": "s" * 32}


def make_config(database: str) -> Config:
    """The seeded queue's config with one alert channel, so a re-route's outbox rows can be counted."""
    data = config_data(database, serve={"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 1})
    return parse_config(yaml.safe_dump({**data, "alerts": [HOOK]}), env={}, path="<test>")


@pytest.fixture
def config(database: str) -> Config:
    config = make_config(database)
    seed(config)
    return config


@pytest.fixture
def store(config: Config) -> Iterator[Storage]:
    with Storage(config.database) as s:
        yield s


def outbox(store: Storage, beacon_id: int) -> list[tuple[str, str]]:
    rows = store.backend.read("SELECT event_id, channel FROM outbox WHERE beacon_id = ? ORDER BY id", [beacon_id])
    return [(r[0], r[1]) for r in rows.rows]


# -- the queue, on both backends ----------------------------------------------------------------------


def test_lifecycle_reopen_takes_a_closed_beacon_back_to_new_with_its_history(store: Storage) -> None:
    q.claim(store, WIFI, "alice")
    q.resolve(store, WIFI, "alice", note="firmware 2.4.2")
    q.dismiss(store, BILLING, "bob")
    for beacon_id, was in ((WIFI, "resolved by alice"), (BILLING, "dismissed by bob")):
        b = q.reopen(store, beacon_id, "carol", note="the customer wrote back")
        assert (b.status, b.assignee) == ("new", None)
        last = q.history(store, beacon_id)[-1]
        assert (last.actor, last.action, last.to_status, last.detail) == ("carol", "reopen", "new", f"was {was}")
    assert q.claim(store, WIFI, "bob").assignee == "bob"  # claimable again
    with pytest.raises(q.TransitionConflict, match="only a resolved or dismissed beacon is reopened"):
        q.reopen(store, WIFI, "carol")
    with pytest.raises(q.BeaconNotFound):
        q.reopen(store, 999, "carol")


def test_lifecycle_reassign_passes_the_beacon_and_what_its_holder_held_of_the_thread(store: Storage) -> None:
    q.claim(store, OUTAGE, "alice")  # claims its thread (OUTAGE_TOO) too
    b = q.reassign(store, OUTAGE, "lena", "bob", note="bob knows the cloud dashboard")
    assert (b.status, b.assignee) == ("claimed", "bob")
    assert store.get_beacon(OUTAGE_TOO).assignee == "bob"  # type: ignore[union-attr]
    events = [(e.beacon_id, e.action, e.assignee, e.detail) for e in q.history(store, OUTAGE)]
    assert events[-1] == (OUTAGE, "reassign", "bob", "from alice")
    assert q.history(store, OUTAGE_TOO)[-1].detail == f"from alice, with its thread #{OUTAGE}"
    assert [n["text"] for n in store.notes(OUTAGE)] == ["bob knows the cloud dashboard"]
    with pytest.raises(q.TransitionConflict, match="claimed by bob, not alice"):
        q.reassign(store, OUTAGE, "alice", "carol", holder="alice")  # alice no longer holds it
    with pytest.raises(q.TransitionConflict, match="already assigned to bob"):
        q.reassign(store, OUTAGE, "lena", "bob")
    with pytest.raises(q.TransitionConflict, match="only a claimed beacon is reassigned"):
        q.reassign(store, WIFI, "lena", "bob")
    with pytest.raises(q.InvalidInput, match="assignee"):
        q.reassign(store, OUTAGE, "lena", "  ")


def test_lifecycle_reroute_redoes_team_priority_and_alerts(config: Config, store: Storage) -> None:
    """Regression (issue 13): a re-route to support kept team None and wrote no alert."""
    routing = reroute_options(config)
    assert routing["channels"] == ("team-hook",)
    b = q.reroute(store, GUEST, "lena", "none", **routing)
    assert (b.queue, b.team, b.priority) == ("none", None, 0) and outbox(store, GUEST) == []
    b = q.reroute(store, GUEST, "lena", "support", **routing)
    mention, _match, classification, _ = q.routing_input(store, GUEST)  # type: ignore[misc]
    assert (b.queue, b.status, b.team) == ("support", "new", "networking")  # routing.teams: RouterX
    assert abs(b.priority - priority(mention, classification, queue="support")) <= 1  # the same formula
    assert outbox(store, GUEST) == [(f"beacon-{GUEST}-reroute2-team-hook", "team-hook")]
    assert why_text(store, GUEST) == (
        "lena moved it here from none (the classifier had said support 94%); team networking handles it."
    )


def test_lifecycle_reroute_applies_the_rules_that_hold_for_the_new_queue(config: Config, store: Storage) -> None:
    routing = reroute_options(config)
    b = q.reroute(store, OUTAGE, "lena", "advocacy", **routing)  # "urgent" sends to support: not for advocacy
    assert (b.team, b.priority < 80) == ("cloud", True)
    b = q.reroute(store, OUTAGE, "lena", "support", **routing)
    assert (b.team, b.priority >= 80) == ("cloud", True)  # the rule's min_priority again
    assert len(outbox(store, OUTAGE)) == 2


def test_lifecycle_reroute_of_a_closed_beacon_sends_no_alert(config: Config, store: Storage) -> None:
    q.resolve(store, WIFI, "alice")
    b = q.reroute(store, WIFI, "lena", "advocacy", **reroute_options(config))
    assert (b.queue, b.status) == ("advocacy", "resolved") and outbox(store, WIFI) == []


def why_text(store: Storage, beacon_id: int) -> str:
    entry = q.get_entry(store, beacon_id)
    assert entry is not None
    return str(entry.to_json()["why"])


def test_lifecycle_bulk_gives_a_result_per_id_and_one_failure_undoes_nothing(store: Storage) -> None:
    q.claim(store, BILLING, "carol")
    results = [o.to_json() for o in q.bulk(store, [WIFI, 999, BILLING, GUEST, WIFI], "claim", "bob")]
    assert [(r["id"], r["ok"]) for r in results] == [(WIFI, True), (999, False), (BILLING, False), (GUEST, True)]
    assert results[1]["error"]["code"] == "not_found"
    assert results[2]["error"] | {"message": ""} == {
        "code": "conflict",
        "message": "",
        "status": "claimed",
        "assignee": "carol",
    }
    assert results[0]["beacon"]["assignee"] == "bob" and "error" not in results[0]
    assert store.get_beacon(GUEST).assignee == "bob"  # type: ignore[union-attr]


def test_lifecycle_bulk_counts_a_beacon_its_thread_already_moved_as_done(store: Storage) -> None:
    outcomes = q.bulk(store, [OUTAGE, OUTAGE_TOO], "resolve", "bob", note="status page says fixed")
    assert [(o.id, o.ok, o.beacon.status if o.beacon else None) for o in outcomes] == [
        (OUTAGE, True, "resolved"),
        (OUTAGE_TOO, True, "resolved"),
    ]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"action": "escalate"}, "action"),
        ({"action": "reroute"}, "queue"),
        ({"action": "reroute", "queue": "urgent"}, "queue"),
        ({"action": "claim", "by": ""}, "by"),
    ],
)
def test_lifecycle_bulk_checks_its_inputs_before_writing(store: Storage, kw: dict[str, Any], field: str) -> None:
    args = {"by": "bob", **kw}
    with pytest.raises(q.InvalidInput, match=f"^{field}:"):
        q.bulk(store, [WIFI, BILLING], args.pop("action"), args.pop("by"), **args)
    assert q.history(store, WIFI) == [] and q.history(store, BILLING) == []


@pytest.mark.parametrize("ids", [[], "3", [3, "x"], [True], [-1], list(range(201))])
def test_lifecycle_bulk_ids_are_checked(ids: Any) -> None:
    with pytest.raises(q.InvalidInput, match=r"^ids:"):
        q.clean_ids(ids)


# -- the API and the page, with named people, on both backends ------------------------------------------


class Team:
    """A served, seeded queue with alice (admin), lena (lead), bob and carol (agents), each with a token."""

    def __init__(self, config: Config, server: WebServer) -> None:
        self.config, self.server = config, server
        self.tokens: dict[str, str] = {}
        with Storage(config.database) as store:
            for name, role in (("alice", "admin"), ("lena", "lead"), ("bob", "agent"), ("carol", "agent")):
                store.add_user(name, role, now=NOW)
                self.tokens[name] = users.issue_token(store, name, now=NOW)
            store.add_user("gone", "agent", now=NOW)
            store.disable_user("gone", now=NOW)
            store.set_password("bob", users.hash_password(PASSWORD))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=10)

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def store(self) -> Storage:
        return Storage(self.config.database)


@pytest.fixture
def team(config: Config) -> Iterator[Team]:
    server = WebServer(config)
    server.start(poll_interval=0.05)
    try:
        yield Team(config, server)
    finally:
        server.stop()


def test_lifecycle_api_reopen(team: Team) -> None:
    with team.client() as c:
        c.post(f"/api/beacons/{WIFI}/resolve", json={}, headers=team.as_("bob"))
        r = c.post(f"/api/beacons/{WIFI}/reopen", json={"note": "still broken"}, headers=team.as_("carol"))
        assert r.status_code == 200 and (r.json()["beacon"]["status"], r.json()["beacon"]["assignee"]) == ("new", None)
        history = c.get(f"/api/beacons/{WIFI}", headers=team.as_("carol")).json()["history"]
        assert [(h["actor"], h["action"], h["from_status"], h["to_status"]) for h in history] == [
            ("bob", "resolve", "new", "resolved"),
            ("carol", "reopen", "resolved", "new"),
        ]
        r = c.post(f"/api/beacons/{WIFI}/reopen", json={}, headers=team.as_("carol"))
        assert r.status_code == 409 and r.json()["error"]["status"] == "new"
        assert c.post("/api/beacons/999/reopen", json={}, headers=team.as_("carol")).status_code == 404
        r = c.post(f"/api/beacons/{BILLING}/reopen", json={"by": "bob"}, headers=team.as_("carol"))
        assert r.status_code == 403  # an agent acts only as themself


def test_lifecycle_api_reassign_holder_lead_or_admin(team: Team) -> None:
    with team.client() as c:
        assert c.post(f"/api/beacons/{WIFI}/claim", json={}, headers=team.as_("bob")).status_code == 200

        def give(who: str, to: Any, beacon_id: int = WIFI) -> httpx.Response:
            return c.post(f"/api/beacons/{beacon_id}/reassign", json={"assignee": to}, headers=team.as_(who))

        r = give("carol", "carol")
        assert r.status_code == 403 and "held by bob" in r.json()["error"]["message"]
        r = give("bob", "carol")  # the holder passes it on
        assert r.status_code == 200 and r.json()["beacon"]["assignee"] == "carol"
        r = give("lena", "bob")  # a lead takes it from carol
        assert r.status_code == 200 and r.json()["beacon"]["assignee"] == "bob"
        assert give("alice", "lena").json()["beacon"]["assignee"] == "lena"  # an admin
        for nobody in ("nobody", "gone", "", None, 7):
            r = give("alice", nobody)
            assert r.status_code == 400 and r.json()["error"]["message"].startswith("assignee:"), nobody
        assert give("lena", "bob", BILLING).status_code == 409  # not claimed
        assert give("lena", "bob", 999).status_code == 404
        r = c.post(f"/api/beacons/{WIFI}/reassign", json={"assignee": "deploy-bot", "by": "ci"}, headers=SERVICE)
        assert r.status_code == 200 and r.json()["beacon"]["assignee"] == "deploy-bot"  # service tokens name anyone
    with team.store() as store:
        rows = store.backend.read(
            "SELECT actor, assignee, detail FROM beacon_events WHERE beacon_id = ? AND action = 'reassign' ORDER BY id",
            [WIFI],
        ).rows
    assert [tuple(r) for r in rows] == [
        ("bob", "carol", "from bob"),
        ("lena", "bob", "from carol"),
        ("alice", "lena", "from bob"),
        ("ci", "deploy-bot", "from lena"),
    ]


def test_lifecycle_api_reroute_redoes_routing(team: Team) -> None:
    with team.client() as c:
        r = c.post(f"/api/beacons/{PRAISE}/reroute", json={"queue": "none"}, headers=team.as_("bob"))
        assert (r.json()["beacon"]["team"], r.json()["beacon"]["priority"]) == (None, 0)
        r = c.post(f"/api/beacons/{PRAISE}/reroute", json={"queue": "support"}, headers=team.as_("bob"))
        beacon = r.json()["beacon"]
        assert (beacon["queue"], beacon["team"]) == ("support", "networking")
        why = c.get(f"/api/beacons/{PRAISE}", headers=team.as_("bob")).json()["why"]
        assert why.startswith("bob moved it here from none")
    with team.store() as store:
        assert outbox(store, PRAISE) == [(f"beacon-{PRAISE}-reroute2-team-hook", "team-hook")]


def test_lifecycle_api_bulk(team: Team) -> None:
    with team.client() as c:
        r = c.post("/api/beacons/bulk", json={"ids": [WIFI, 999, BILLING], "action": "claim"}, headers=team.as_("bob"))
        assert r.status_code == 200
        body = r.json()
        assert [(x["id"], x["ok"]) for x in body["results"]] == [(WIFI, True), (999, False), (BILLING, True)]
        assert (body["done"], body["failed"]) == (2, 1)
        assert body["results"][1]["error"]["code"] == "not_found" and "beacon" not in body["results"][1]
        r = c.post("/api/beacons/bulk", json={"ids": [WIFI, BILLING], "action": "resolve"}, headers=team.as_("carol"))
        assert [x["beacon"]["status"] for x in r.json()["results"]] == ["resolved", "resolved"]
        reroute = {"ids": [GUEST, PRAISE], "action": "reroute", "queue": "none"}
        r = c.post("/api/beacons/bulk", json=reroute, headers=team.as_("bob"))
        assert r.status_code == 403 and "lead role" in r.json()["error"]["message"]
        r = c.post("/api/beacons/bulk", json=reroute, headers=team.as_("lena"))
        assert [(x["beacon"]["queue"], x["beacon"]["team"]) for x in r.json()["results"]] == [("none", None)] * 2
        r = c.post("/api/beacons/bulk", json={**reroute, "queue": "advocacy", "by": "bot"}, headers=SERVICE)
        assert [x["beacon"]["team"] for x in r.json()["results"]] == ["networking", "networking"]
        r = c.post(
            "/api/beacons/bulk", json={"ids": [OUTAGE], "action": "claim", "assignee": "carol"}, headers=team.as_("bob")
        )
        assert r.status_code == 403 and "only a lead or admin" in r.json()["error"]["message"]
        r = c.post(
            "/api/beacons/bulk",
            json={"ids": [OUTAGE], "action": "claim", "assignee": "carol"},
            headers=team.as_("lena"),
        )
        assert r.json()["results"][0]["beacon"]["assignee"] == "carol"
        r = c.post(
            "/api/beacons/bulk", json={"ids": [OUTAGE], "action": "claim", "by": "carol"}, headers=team.as_("bob")
        )
        assert r.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ids": [], "action": "claim"}, "ids"),
        ({"ids": "3", "action": "claim"}, "ids"),
        ({"action": "claim"}, "ids"),
        ({"ids": [3], "action": "label"}, "action"),
        ({"ids": [3]}, "action"),
        ({"ids": [3], "action": "reroute", "queue": "urgent"}, "queue"),
    ],
)
def test_lifecycle_api_bulk_refuses_bad_input_naming_the_field(team: Team, body: dict[str, Any], field: str) -> None:
    with team.client() as c:
        r = c.post("/api/beacons/bulk", json=body, headers=team.as_("lena"))
    assert r.status_code == 400 and r.json()["error"]["message"].startswith(f"{field}:")
    with team.store() as store:
        assert scalar(store, "SELECT COUNT(*) FROM beacon_events") == 0


def page_csrf(c: httpx.Client, path: str = "/") -> tuple[str, str]:
    page = c.get(path)
    assert page.status_code == 200
    found = re.search(r'data-csrf="([0-9a-f]+)"', page.text)
    assert found
    return found.group(1), page.text


def test_lifecycle_page_bulk_form_works_without_javascript(team: Team) -> None:
    html = {"Accept": "text/html"}
    with team.client() as c:
        assert c.post("/login", data={"name": "bob", "password": PASSWORD, "next": "/"}).status_code == 303
        csrf, page = page_csrf(c)
        assert '<form id="bulk"' in page and f'name="ids" value="{WIFI}" form="bulk"' in page
        form = {"csrf": csrf, "next": "/", "action": "claim", "ids": [str(WIFI), str(GUEST)], "queue": ""}
        r = c.post("/api/beacons/bulk", data=form, headers=html)
        assert (r.status_code, r.headers["location"]) == (303, "/")
        r = c.post("/api/beacons/bulk", data={**form, "ids": [str(WIFI), str(BILLING)]}, headers=html)
        assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")
        assert (
            "1 of 2 done" in r.text and f"#{WIFI}: cannot claim beacon {WIFI}: it is already claimed by bob" in r.text
        )
        r = c.post("/api/beacons/bulk", data={**form, "ids": []}, headers=html)
        assert r.status_code == 400 and "tick at least one card" in r.text
        r = c.post("/api/beacons/bulk", data={**form, "action": "reroute", "queue": "none"}, headers=html)
        assert r.status_code == 403 and "lead role" in r.text
    with team.store() as store:
        assert [store.get_beacon(i).assignee for i in (WIFI, GUEST, BILLING)] == ["bob", "bob", "bob"]  # type: ignore[union-attr]


def test_lifecycle_page_reroute_needs_a_choice_and_reopen_and_reassign_are_buttons(team: Team) -> None:
    with team.client() as c:
        assert c.post("/login", data={"name": "bob", "password": PASSWORD, "next": "/"}).status_code == 303
        csrf, page = page_csrf(c)
        card = page[page.index(f'id="b{WIFI}"') :]
        select = re.search(r'<select name="queue" required[^>]*>(.*?)</select>', card, re.S)
        assert select and select.group(1).startswith('<option value="" selected>Re-route to…</option>')
        assert "The classifier read this as someone who needs help" in card  # why it is here
        c.post(f"/api/beacons/{WIFI}/claim", data={"csrf": csrf}, headers={"Accept": "text/html"})
        _, detail = page_csrf(c, f"/beacons/{WIFI}")
        assert f'action="/api/beacons/{WIFI}/reassign"' in detail
        people = re.search(r'<select name="assignee" required>(.*?)</select>', detail, re.S)
        assert people and re.findall(r'<option value="(\w+)">', people.group(1)) == ["alice", "carol", "lena"]
        r = c.post(
            f"/api/beacons/{WIFI}/reassign",
            data={"csrf": csrf, "assignee": "carol", "next": f"/beacons/{WIFI}"},
            headers={"Accept": "text/html"},
        )
        assert (r.status_code, r.headers["location"]) == (303, f"/beacons/{WIFI}")
        c.post(f"/api/beacons/{WIFI}/resolve", json={}, headers={"X-CSRF-Token": csrf})  # bob may resolve it
        _, detail = page_csrf(c, f"/beacons/{WIFI}")
        assert f'action="/api/beacons/{WIFI}/reopen"' in detail and 'name="assignee"' not in detail


# -- the CLI on a real SQLite file ----------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    database = str(tmp_path / "beacons.db")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**config_data(database), "alerts": [HOOK]}), encoding="utf-8")
    seed(make_config(database))

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args[:2], "--config", str(path), *args[2:]])
        out, err = capsys.readouterr()
        return code, out, err

    run.database = database  # type: ignore[attr-defined]
    return run


def test_lifecycle_cli_reopen_and_reassign(cli: Any) -> None:
    assert cli("queue", "claim", str(WIFI), "--by", "alice")[0] == 0
    code, out, _ = cli("queue", "reassign", str(WIFI), "bob", "--by", "lena", "--note", "bob has a RouterX")
    assert code == 0 and out.startswith(f"#{WIFI} support claimed (bob)")
    assert cli("queue", "resolve", str(WIFI), "--by", "bob")[0] == 0
    code, out, _ = cli("queue", "reopen", str(WIFI), "--by", "carol", "--format", "json")
    assert code == 0 and (json.loads(out)["status"], json.loads(out)["assignee"]) == ("new", None)
    code, _, err = cli("queue", "reopen", str(WIFI), "--by", "carol")
    assert code == 1 and "only a resolved or dismissed beacon is reopened" in err
    code, _, err = cli("queue", "reassign", str(BILLING), "bob", "--by", "lena")
    assert code == 1 and "only a claimed beacon is reassigned" in err
    with Storage(cli.database) as store:
        assert [e.action for e in q.history(store, WIFI)] == ["claim", "reassign", "resolve", "reopen"]
        store.add_user("bob", "agent", now=NOW)  # once users exist, NAME must be one
    assert cli("queue", "claim", str(BILLING), "--by", "alice")[0] == 0
    code, _, err = cli("queue", "reassign", str(BILLING), "mallory", "--by", "lena")
    assert code == 1 and "assignee: no active user named 'mallory'" in err
    assert cli("queue", "reassign", str(BILLING), "bob", "--by", "lena")[0] == 0


def test_lifecycle_cli_reroute_redoes_team_and_writes_the_alert(cli: Any) -> None:
    assert cli("queue", "reroute", str(GUEST), "none", "--by", "lena")[0] == 0
    code, out, _ = cli("queue", "reroute", str(GUEST), "support", "--by", "lena", "--format", "json")
    assert code == 0 and json.loads(out)["team"] == "networking"
    with Storage(cli.database) as store:
        assert outbox(store, GUEST) == [(f"beacon-{GUEST}-reroute2-team-hook", "team-hook")]


@pytest.mark.parametrize("command", ["reopen", "reassign"])
def test_lifecycle_cli_help_has_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["queue", command, "--help"])
    assert f"Example: beacons queue {command} 42" in " ".join(capsys.readouterr().out.split())


def test_lifecycle_reroute_route_without_a_stored_match_keeps_the_formula() -> None:
    from helpers_queue import classification, mention

    from beacons.route import Rules, reroute_route

    post = mention("forum", "dana", "RouterX down", "Acme RouterX is down, how do I fix this?", None)
    c = classification("advocacy", support=0.4, advocacy=0.7)
    rules = Rules.from_config(make_config("unused.db").routing)
    no_match = reroute_route(post, None, c, "support", rules)
    assert (no_match.queue, no_match.team, no_match.priority) == ("support", None, priority(post, c, queue="support"))
    assert reroute_route(post, None, c, "none", rules).priority == 0
