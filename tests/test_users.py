"""People, not shared tokens (issue 13 section 1): the users CLI, roles over the API, password sign-in,
its rate limit (on an injected clock), sessions listed and revoked, disabled users locked out at once."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from helpers_clock import FakeClock
from helpers_db import scalar
from helpers_queue import (
    TOKEN,
    fresh_logging,  # noqa: F401  (autouse: structlog writes to the current stdout)
    make_config,
    seed,
)

from beacons import users
from beacons.cli import main
from beacons.config import Config
from beacons.storage import Storage
from beacons.web.server import WebServer

PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SERVICE = {"Authorization": f"Bearer {TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- CLI: main() on a real SQLite file --------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``beacons ARGS`` against a config with an SQLite file in tmp_path; (exit code, stdout, stderr)."""
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {tmp_path / 'beacons.db'}\n")

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*args[:2], "--config", str(config), *args[2:]])
        out, err = capsys.readouterr()
        return code, out, err

    run.database = str(tmp_path / "beacons.db")  # type: ignore[attr-defined]
    return run


def test_users_cli_add_list_and_roles(cli: Any) -> None:
    assert cli("users", "add", "alice", "--role", "admin")[0] == 0
    assert cli("users", "add", "bob")[0] == 0
    code, _, err = cli("users", "add", "alice")
    assert code == 1 and "already exists" in err
    code, out, _ = cli("users", "list", "--format", "json")
    listed = {u["name"]: u for u in json.loads(out)["users"]}
    assert (listed["alice"]["role"], listed["bob"]["role"]) == ("admin", "agent")
    assert listed["bob"]["active"] and not listed["bob"]["has_password"]
    _code, out, _ = cli("users", "list")
    assert re.search(r"^bob\s+agent\s+active", out, re.M)


@pytest.mark.parametrize("name", ["", ".alice", "a b", "x" * 65, "al/ice"])
def test_users_cli_refuses_odd_names(cli: Any, name: str) -> None:
    code, _, err = cli("users", "add", name)
    assert code == 1 and "name:" in err


def test_users_cli_token_is_printed_once_on_the_last_line_and_stored_hashed(cli: Any) -> None:
    cli("users", "add", "bob")
    code, out, err = cli("users", "token", "bob")
    token = out.rstrip("\n").splitlines()[-1]
    assert code == 0 and token.startswith(users.TOKEN_PREFIX) and len(token) > 40
    assert token not in err
    with Storage(cli.database) as store:
        assert scalar(store, "SELECT hash FROM user_tokens WHERE user_name = 'bob'") == users.secret_hash(token)
        assert store.user_for_token(users.secret_hash(token)).name == "bob"  # type: ignore[union-attr]
    assert token.encode() not in Path(cli.database).read_bytes()
    assert cli("users", "token", "nobody")[0] == 1


def test_users_cli_password_from_stdin_is_hashed_with_scrypt(cli: Any) -> None:
    cli("users", "add", "bob")
    code, out, err = cli("users", "password", "bob", stdin=PASSWORD + "\n")
    assert code == 0 and PASSWORD not in out + err
    with Storage(cli.database) as store:
        stored = store.password_hash("bob")
    assert stored is not None and stored.startswith("scrypt$") and PASSWORD not in stored
    assert users.verify_password(PASSWORD, stored) and not users.verify_password(PASSWORD + "!", stored)
    code, _, err = cli("users", "password", "bob", stdin="short\n")
    assert code == 1 and "at least" in err


def test_users_cli_disable_revokes_tokens_and_sessions(cli: Any) -> None:
    cli("users", "add", "bob")
    token = cli("users", "token", "bob")[1].splitlines()[-1]
    with Storage(cli.database) as store:
        store.add_user_session("bob", "s1", users.secret_hash("secret"), address="10.0.0.1", now=NOW, expires=NOW)
    code, out, _ = cli("users", "disable", "bob")
    assert code == 0 and "disabled bob" in out
    with Storage(cli.database) as store:
        assert store.user_for_token(users.secret_hash(token)) is None
        assert [s.revoked_at is not None for s in store.list_user_sessions("bob")] == [True]
    assert cli("users", "token", "bob")[0] == 1  # a disabled user gets no new token


def test_users_cli_sessions_listed_and_revoked(cli: Any) -> None:
    cli("users", "add", "bob")
    later = datetime(2099, 1, 1, tzinfo=UTC)
    with Storage(cli.database) as store:
        for sid in ("aaaa", "bbbb"):
            store.add_user_session("bob", sid, users.secret_hash(sid * 8), address="10.0.0.7", now=NOW, expires=later)
    code, out, _ = cli("users", "sessions", "bob", "--format", "json")
    sessions = json.loads(out)["sessions"]
    assert code == 0
    assert [(s["id"], s["state"], s["address"]) for s in sessions] == [
        ("aaaa", "active", "10.0.0.7"),
        ("bbbb", "active", "10.0.0.7"),
    ]
    assert "aaaa" * 8 not in out  # the secret is never listed, only the id
    assert "revoked 1 session of bob" in cli("users", "revoke", "bob", "--session", "aaaa")[1]
    assert "revoked 1 session" in cli("users", "revoke", "bob")[1]
    _code, out, _ = cli("users", "sessions", "bob")
    assert re.search(r"^aaaa\s+revoked", out, re.M) and re.search(r"^bbbb\s+revoked", out, re.M)


# -- the API and the page, on both backends ---------------------------------------------------------


class Team:
    """A served, seeded database with alice (admin), lena (lead), bob and carol (agents), each with a token."""

    def __init__(self, config: Config, server: WebServer, clock: FakeClock, beacons: list[int]) -> None:
        self.config, self.server, self.clock, self.beacons = config, server, clock, beacons
        self.tokens: dict[str, str] = {}
        with Storage(config.database) as store:
            for name, role in (("alice", "admin"), ("lena", "lead"), ("bob", "agent"), ("carol", "agent")):
                store.add_user(name, role, now=NOW)
                self.tokens[name] = users.issue_token(store, name, now=NOW)
            store.set_password("bob", users.hash_password(PASSWORD))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=10)

    def store(self) -> Storage:
        return Storage(self.config.database)


@pytest.fixture
def team(database: str) -> Iterator[Team]:
    config = make_config(database)
    beacons = seed(config)
    clock = FakeClock.starting_now()
    server = WebServer(config, clock=clock.time)
    server.start(poll_interval=0.05)
    try:
        yield Team(config, server, clock, beacons)
    finally:
        server.stop()


def sign_in(c: httpx.Client, name: str, password: str) -> httpx.Response:
    return c.post("/login", data={"name": name, "password": password, "next": "/"})


def test_users_api_me_names_the_person_or_the_service(team: Team) -> None:
    with team.client() as c:
        assert c.get("/api/me", headers=bearer(team.tokens["lena"])).json() == {
            "name": "lena",
            "role": "lead",
            "via": "personal_token",
        }
        assert c.get("/api/me", headers=SERVICE).json() == {"name": None, "role": None, "via": "service_token"}
        assert c.get("/api/me", headers=bearer(users.TOKEN_PREFIX + "x" * 43)).status_code == 401


@pytest.mark.parametrize("who", ["bob", "lena", "service"])
def test_users_api_only_admins_manage_users(team: Team, who: str) -> None:
    headers = SERVICE if who == "service" else bearer(team.tokens[who])
    with team.client() as c:
        assert c.get("/api/users", headers=headers).status_code == 403
        r = c.post("/api/users", json={"name": "mallory", "role": "admin"}, headers=headers)
        assert r.status_code == 403 and "admin role" in r.json()["error"]["message"]
        assert c.post("/api/users/carol/disable", headers=headers).status_code == 403
    with team.store() as store:
        assert store.get_user("mallory") is None and store.get_user("carol").is_active  # type: ignore[union-attr]


def test_users_api_admin_adds_lists_and_disables(team: Team) -> None:
    admin = bearer(team.tokens["alice"])
    with team.client() as c:
        r = c.post("/api/users", json={"name": "dora", "role": "lead"}, headers=admin)
        assert r.status_code == 201 and r.json()["user"]["role"] == "lead"
        assert c.post("/api/users", json={"name": "dora"}, headers=admin).status_code == 409
        assert c.post("/api/users", json={"name": "x", "role": "boss"}, headers=admin).status_code == 400
        names = [u["name"] for u in c.get("/api/users", headers=admin).json()["users"]]
        assert names == ["alice", "bob", "carol", "dora", "lena"]
        assert c.post("/api/users/carol/disable", headers=admin).json()["user"]["active"] is False
        assert c.post("/api/users/nobody/disable", headers=admin).status_code == 404


def test_users_api_actor_is_the_authenticated_user(team: Team) -> None:
    first, second = team.beacons[0], team.beacons[1]
    with team.client() as c:
        r = c.post(f"/api/beacons/{first}/claim", json={"by": "bob"}, headers=bearer(team.tokens["bob"]))
        assert r.status_code == 200 and r.json()["beacon"]["assignee"] == "bob"
        r = c.post(f"/api/beacons/{second}/note", json={"text": "on it"}, headers=bearer(team.tokens["bob"]))
        assert r.status_code == 201 and r.json()["note"]["author"] == "bob"
    with team.store() as store:
        assert (
            scalar(store, "SELECT actor FROM beacon_events WHERE beacon_id = ? AND action = 'claim'", [first]) == "bob"
        )


@pytest.mark.parametrize("who", ["bob", "lena"])
@pytest.mark.parametrize("action", ["claim", "resolve", "dismiss", "note"])
def test_users_api_by_naming_someone_else_is_403(team: Team, who: str, action: str) -> None:
    target = team.beacons[0]
    with team.client() as c:
        r = c.post(
            f"/api/beacons/{target}/{action}", json={"by": "carol", "text": "x"}, headers=bearer(team.tokens[who])
        )
    assert r.status_code == 403 and f"signed in as {who}" in r.json()["error"]["message"]
    with team.store() as store:
        assert scalar(store, "SELECT COUNT(*) FROM beacon_events WHERE beacon_id = ?", [target]) == 0


def test_users_api_only_a_lead_claims_for_someone_else(team: Team) -> None:
    first, second = team.beacons[0], team.beacons[1]
    with team.client() as c:
        r = c.post(f"/api/beacons/{first}/claim", json={"assignee": "carol"}, headers=bearer(team.tokens["bob"]))
        assert r.status_code == 403 and "only a lead or admin" in r.json()["error"]["message"]
        r = c.post(f"/api/beacons/{first}/claim", json={"assignee": "nobody"}, headers=bearer(team.tokens["lena"]))
        assert r.status_code == 400
        r = c.post(f"/api/beacons/{second}/claim", json={"assignee": "carol"}, headers=bearer(team.tokens["lena"]))
        assert r.status_code == 200 and r.json()["beacon"]["assignee"] == "carol"
    with team.store() as store:
        row = store.backend.read(
            "SELECT actor, assignee FROM beacon_events WHERE beacon_id = ? AND action = 'claim'", [second]
        ).one()
    assert row == ("lena", "carol")


def test_users_api_service_tokens_still_name_the_actor_with_by(team: Team) -> None:
    with team.client() as c:
        r = c.post(f"/api/beacons/{team.beacons[0]}/claim", json={"by": "deploy-bot"}, headers=SERVICE)
    assert r.status_code == 200 and r.json()["beacon"]["assignee"] == "deploy-bot"


def test_users_api_disabled_users_token_and_session_stop_at_once(team: Team) -> None:
    with team.client() as api, team.client() as page:
        assert sign_in(page, "bob", PASSWORD).status_code == 303
        assert page.get("/api/me").json()["name"] == "bob"
        assert api.get("/api/me", headers=bearer(team.tokens["bob"])).status_code == 200
        with team.store() as store:
            store.disable_user("bob", now=NOW)
        r = api.get("/api/beacons", headers=bearer(team.tokens["bob"]))
        assert r.status_code == 401
        assert page.get("/api/me").status_code == 401
        assert page.get("/").status_code == 401  # the sign-in form
        assert sign_in(page, "bob", PASSWORD).status_code == 401
        assert api.get("/api/me", headers=bearer(team.tokens["carol"])).status_code == 200


def test_users_page_password_sign_in_and_sign_out(team: Team) -> None:
    with team.client() as c:
        r = sign_in(c, "bob", PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and PASSWORD not in cookie
        page = c.get("/")
        assert page.status_code == 200
        assert c.get("/api/me").json() == {"name": "bob", "role": "agent", "via": "session"}
        csrf = re.search(r'data-csrf="([0-9a-f]+)"', page.text)
        assert csrf
        stolen = dict(c.cookies)
        assert c.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
    with team.client() as thief:
        thief.cookies.update(stolen)
        assert thief.get("/api/me").status_code == 401
    with team.store() as store:
        assert [s.revoked_at is not None for s in store.list_user_sessions("bob")] == [True]


def test_users_page_wrong_password_and_unknown_user_say_the_same(team: Team) -> None:
    with team.client() as c:
        wrong = sign_in(c, "bob", "not the password")
        unknown = sign_in(c, "nobody", PASSWORD)
        no_password = sign_in(c, "carol", PASSWORD)  # a user with only a token
    for r in (wrong, unknown, no_password):
        assert r.status_code == 401 and "Wrong name or password." in r.text


def test_users_page_service_token_sign_in_cannot_take_a_users_name(team: Team) -> None:
    with team.client() as c:
        r = c.post("/login", data={"name": "bob", "token": TOKEN})
        assert r.status_code == 401 and "sign in with your password" in r.text
        r = c.post("/login", data={"name": "visitor", "token": TOKEN, "next": "/"})
        assert r.status_code == 303
        assert c.get("/api/me").json() == {"name": "visitor", "role": None, "via": "session"}


def test_users_page_sign_in_is_limited_per_user(team: Team) -> None:
    with team.client() as c:
        for _ in range(users.MAX_FAILURES_PER_USER):
            assert sign_in(c, "bob", "guess guess guess").status_code == 401
        r = sign_in(c, "bob", PASSWORD)  # even the right password waits now
        assert r.status_code == 429 and "Too many failed sign-ins for bob" in r.text
        assert "try again in 15 minutes" in r.text and int(r.headers["retry-after"]) == 15 * 60
        team.clock.advance(10 * 60)
        r = sign_in(c, "bob", PASSWORD)
        assert r.status_code == 429 and "try again in 5 minutes" in r.text
        team.clock.advance(5 * 60 + 1)
        assert sign_in(c, "bob", PASSWORD).status_code == 303
        # A good sign-in forgets bob's failures: one more wrong password is not yet a lockout.
        assert sign_in(c, "bob", "guess guess guess").status_code == 401
        assert sign_in(c, "bob", PASSWORD).status_code == 303


def test_users_page_sign_in_is_limited_per_address(team: Team) -> None:
    with team.store() as store:
        for i in range(users.MAX_FAILURES_PER_ADDRESS):
            users.record_failure(store, f"guess{i}", "127.0.0.1", now=team.clock.now())
    with team.client() as c:
        r = sign_in(c, "bob", PASSWORD)
        assert r.status_code == 429 and "Too many failed sign-ins from your address" in r.text
        team.clock.advance(users.WINDOW.total_seconds() + 1)
        assert sign_in(c, "bob", PASSWORD).status_code == 303


def test_users_page_revoked_sessions_stop_working(team: Team) -> None:
    with team.client() as laptop, team.client() as phone:
        assert sign_in(laptop, "bob", PASSWORD).status_code == 303
        assert sign_in(phone, "bob", PASSWORD).status_code == 303
        with team.store() as store:
            sessions = store.list_user_sessions("bob")
            assert [s.address for s in sessions] == ["127.0.0.1", "127.0.0.1"]
            assert store.revoke_user_sessions("bob", now=NOW, session_id=sessions[0].id) == 1
        # Both signed in at the same (fake) instant: exactly one of the two is the session revoked.
        assert sorted(c.get("/api/me").status_code for c in (laptop, phone)) == [200, 401]
        with team.store() as store:
            assert store.revoke_user_sessions("bob", now=NOW) == 1
        assert [c.get("/api/me").status_code for c in (laptop, phone)] == [401, 401]


def test_users_page_session_expires_on_the_injected_clock(team: Team) -> None:
    with team.client() as c:
        assert sign_in(c, "bob", PASSWORD).status_code == 303
        team.clock.advance(team.config.serve.session_max_age - 1)
        assert c.get("/api/me").status_code == 200
        team.clock.advance(2)
        assert c.get("/api/me").status_code == 401


def test_users_secrets_never_reach_the_logs(team: Team) -> None:
    with structlog.testing.capture_logs() as logs, team.client() as c:
        sign_in(c, "bob", "a wrong password here")
        sign_in(c, "bob", PASSWORD)
        c.get("/api/me", headers=bearer(team.tokens["carol"]))
        c.post("/api/users", json={"name": "x"}, headers=bearer(team.tokens["carol"]))
        cookie = c.cookies.get("beacons_session") or ""
    text = json.dumps(logs, default=str)
    assert "user.login_failed" in {e["event"] for e in logs}
    for secret in (PASSWORD, "a wrong password here", team.tokens["carol"], cookie[2:]):
        assert secret and secret not in text


def test_users_personal_tokens_are_scrubbed_by_their_shape() -> None:
    from beacons.redact import scrub

    token = users.TOKEN_PREFIX + "A" * 43
    assert (
        scrub(f"curl -H 'Authorization: Bearer {token}' failed") == "curl -H 'Authorization: Bearer [redacted]' failed"
    )
