"""The HTTP API and page (issue 5) against a real server on 127.0.0.1 and a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import yaml
from helpers_db import scalar, write
from helpers_pg import fresh_database
from helpers_queue import (
    HOSTILE_AUTHOR,
    HOSTILE_TITLE,
    OTHER_TOKEN,
    TOKEN,
    config_data,
    fresh_logging,  # noqa: F401  (autouse: structlog writes to the current stdout)
    hostile_mention,
    make_config,
    mention,
    seed,
)

from beacons import queue as q
from beacons.config import Config
from beacons.errors import ConfigError
from beacons.store import Store
from beacons.web import api, insights, sources
from beacons.web.openapi import document
from beacons.web.server import WebServer

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SSL = ssl.create_default_context()  # loaded once: every httpx.Client would otherwise read the CA bundle (100 ms)
WIFI, BILLING, GUEST, PRAISE = 3, 4, 5, 6
DB_PASSWORD = "healthz-db-password-0123"


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded database, built once; each test gets its own copy."""
    path = tmp_path_factory.mktemp("template") / "api.db"
    seed(make_config(path))
    return path


@pytest.fixture
def config(tmp_path: Path, template_db: Path, database: str) -> Config:
    """The seeded queue on each backend (SQLite: a copy of the template file; PostgreSQL: seeded afresh)."""
    if database.startswith("postgresql://"):
        config = make_config(database)
        seed(config)
        return config
    shutil.copyfile(template_db, tmp_path / "api.db")
    return make_config(tmp_path / "api.db")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def shared(
    request: pytest.FixtureRequest, shared_backend: str, tmp_path_factory: pytest.TempPathFactory, template_db: Path
) -> Iterator[httpx.Client]:
    """A client of one server for the tests that change nothing, on each backend."""
    with ExitStack() as stack:
        if shared_backend == "postgresql":
            config = make_config(stack.enter_context(fresh_database(request.getfixturevalue("pg_cluster"))))
            seed(config)
        else:
            path = tmp_path_factory.mktemp("shared") / "api.db"
            shutil.copyfile(template_db, path)
            config = make_config(path)
        server = start(config)
        stack.callback(server.stop)
        yield stack.enter_context(httpx.Client(base_url=server.url, timeout=10, verify=SSL))


def start(config: Config, **kw: Any) -> WebServer:
    server = WebServer(config, **kw)
    server.start(poll_interval=0.05)
    return server


@pytest.fixture
def server(config: Config) -> Iterator[WebServer]:
    server = start(config)
    yield server
    server.stop()


@pytest.fixture
def client(server: WebServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, verify=SSL) as c:
        yield c


def sign_in(client: httpx.Client, name: str = "alice", token: str = TOKEN) -> str:
    """Sign in through the login form like a browser; returns the page's CSRF token."""
    r = client.post("/login", data={"name": name, "token": token, "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    found = re.search(r'data-csrf="([0-9a-f]+)"', page.text)
    assert found
    return found.group(1)


# -- auth -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/beacons", "/api/beacons/3", "/api/version", "/metrics", "/openapi.json"])
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_api_requires_a_token(shared: httpx.Client, path: str, headers: dict[str, str]) -> None:
    r = shared.get(path, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="beacons"'
    assert r.json()["error"]["code"] == "unauthorized"


def test_api_post_requires_a_token(client: httpx.Client, config: Config) -> None:
    assert client.post(f"/api/beacons/{WIFI}/claim", json={"by": "mallory"}).status_code == 401
    assert Store(config.database).get_beacon(WIFI).status == "new"  # type: ignore[union-attr]


def test_api_page_without_a_session_answers_401_with_the_sign_in_form(shared: httpx.Client) -> None:
    r = shared.get("/")
    assert r.status_code == 401
    assert 'action="/login"' in r.text and 'name="token"' in r.text


@pytest.mark.parametrize("token", [TOKEN, OTHER_TOKEN])
def test_api_any_configured_token_works(shared: httpx.Client, token: str) -> None:
    assert shared.get("/api/beacons", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_api_healthz_is_open_and_says_nothing_but_the_backend(shared: httpx.Client, shared_backend: str) -> None:
    r = shared.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok", "database": {"backend": shared_backend, "ok": True}})


def test_api_healthz_reports_a_lost_database_without_its_url(
    request: pytest.FixtureRequest, database: str, tmp_path: Path
) -> None:
    """503 once the database is gone; neither answer shows the URL or its password (issue 11)."""
    backend = "postgresql" if database.startswith("postgresql://") else "sqlite"
    if backend == "postgresql":  # a password in the URL (trust auth ignores it) that must never be shown
        database = re.sub(r"^postgresql://([^:@/]*)@", rf"postgresql://\1:{DB_PASSWORD}@", database)
    name = urlsplit(database).path.rsplit("/", 1)[-1]  # the database's name or file
    server = start(make_config(database))
    try:
        with httpx.Client(base_url=server.url, timeout=10, verify=SSL) as c:
            ok = c.get("/healthz")
            if backend == "postgresql":
                with psycopg.connect(request.getfixturevalue("pg_cluster").url, autocommit=True) as admin:
                    admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            else:
                Path(database).unlink()
                Path(database).mkdir()  # SQLite cannot open a folder
            lost = c.get("/healthz")
    finally:
        server.stop()
    assert (ok.status_code, ok.json()) == (200, {"status": "ok", "database": {"backend": backend, "ok": True}})
    assert (lost.status_code, lost.json()) == (
        503,
        {"status": "error", "database": {"backend": backend, "ok": False}},
    )
    assert not [r.text for r in (ok, lost) if DB_PASSWORD in r.text or name in r.text]


def test_api_security_headers(shared: httpx.Client) -> None:
    r = shared.get("/api/beacons", headers=AUTH)
    assert (
        "script-src 'self'" in r.headers["content-security-policy"]
        and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    )
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


def test_api_sign_in_with_a_wrong_token(shared: httpx.Client) -> None:
    r = shared.post("/login", data={"name": "mallory", "token": "nope", "next": "/"})
    assert r.status_code == 401 and "not one of serve.tokens" in r.text
    assert "beacons_session" not in r.headers.get("set-cookie", "")


def test_api_session_cookie_flags(client: httpx.Client) -> None:
    r = client.post("/login", data={"name": "alice", "token": TOKEN, "next": "//evil.example/"})
    assert r.headers["location"] == "/"  # never an open redirect
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie


def test_api_session_dies_with_its_token(config: Config, tmp_path: Path) -> None:
    first = start(config)
    with httpx.Client(base_url=first.url, timeout=10, verify=SSL) as c:
        sign_in(c, token=OTHER_TOKEN)
        cookies = dict(c.cookies)
    first.stop()
    rotated = make_config(config.database, serve={"host": "127.0.0.1", "port": 0, "tokens": [TOKEN]})
    second = start(rotated)
    try:
        with httpx.Client(base_url=second.url, timeout=10, cookies=cookies, verify=SSL) as c:
            assert c.get("/api/version").status_code == 401
    finally:
        second.stop()


# -- CSRF -------------------------------------------------------------------------------------------


def test_api_csrf_form_post_needs_the_page_token(client: httpx.Client, config: Config) -> None:
    csrf = sign_in(client)
    r = client.post(f"/api/beacons/{WIFI}/claim", data={"next": "/"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = client.post(f"/api/beacons/{WIFI}/claim", data={"csrf": "0" * 40})
    assert r.status_code == 403
    r = client.post(
        f"/api/beacons/{WIFI}/claim", data={"csrf": csrf, "next": "/?status=open"}, headers={"Accept": "text/html"}
    )
    assert (r.status_code, r.headers["location"]) == (303, "/?status=open")
    assert Store(config.database).get_beacon(WIFI).assignee == "alice"  # type: ignore[union-attr]  # the session's name, not a body field


@pytest.mark.parametrize(
    "headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}]
)
def test_api_csrf_cross_site_requests_are_refused(client: httpx.Client, headers: dict[str, str]) -> None:
    csrf = sign_in(client)
    assert (
        client.post(f"/api/beacons/{WIFI}/claim", json={}, headers={**headers, "X-CSRF-Token": csrf}).status_code == 403
    )
    assert client.post(f"/api/beacons/{WIFI}/claim", json={}, headers=headers).status_code == 403


def test_api_csrf_same_site_json_and_header_token_pass(client: httpx.Client) -> None:
    csrf = sign_in(client)
    assert (
        client.post(
            f"/api/beacons/{WIFI}/note", json={"text": "hi"}, headers={"Origin": str(client.base_url).rstrip("/")}
        ).status_code
        == 201
    )
    assert client.post(f"/api/beacons/{WIFI}/claim", content=b"", headers={"X-CSRF-Token": csrf}).status_code == 200


def test_api_sign_in_from_another_site_is_refused(shared: httpx.Client) -> None:
    r = shared.post("/login", data={"name": "alice", "token": TOKEN}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


# -- reading ----------------------------------------------------------------------------------------


def test_api_list_and_filters(shared: httpx.Client) -> None:
    data = shared.get("/api/beacons", headers=AUTH).json()
    assert {b["queue"] for b in data["beacons"]} == {"support", "advocacy"} and data["next_cursor"] is None
    assert [b["priority"] for b in data["beacons"]] == sorted((b["priority"] for b in data["beacons"]), reverse=True)
    outage = next(b for b in data["beacons"] if b["id"] == 1)
    assert outage["related"] == 1 and 2 not in {b["id"] for b in data["beacons"]}
    advocacy = shared.get("/api/beacons", params={"queue": "advocacy"}, headers=AUTH).json()["beacons"]
    assert {b["id"] for b in advocacy} == {6, 7, 8}
    team = shared.get(
        "/api/beacons", params={"team": "networking", "status": "new", "brand": "acme"}, headers=AUTH
    ).json()["beacons"]
    assert {b["id"] for b in team} == {3, 5, 6, 8}


def test_api_cursor_pages(shared: httpx.Client) -> None:
    ids: list[int] = []
    params: dict[str, Any] = {"queue": "all", "limit": 3, "threads": "false"}
    while True:
        data = shared.get("/api/beacons", params=params, headers=AUTH).json()
        ids += [b["id"] for b in data["beacons"]]
        if not data["next_cursor"]:
            break
        params["cursor"] = data["next_cursor"]
    assert sorted(ids) == list(range(1, 9)) and len(ids) == 8


@pytest.mark.parametrize(
    "params",
    [{"status": "pending"}, {"queue": "urgent"}, {"limit": "0"}, {"limit": "201"}, {"limit": "ten"}, {"cursor": "zzz"}],
)
def test_api_list_bad_parameters(shared: httpx.Client, params: dict[str, str]) -> None:
    r = shared.get("/api/beacons", params=params, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"


def test_api_get_one_with_notes_history_and_thread(client: httpx.Client) -> None:
    client.post("/api/beacons/1/note", json={"by": "alice", "text": "status page updated"}, headers=AUTH)
    data = client.get("/api/beacons/1", headers=AUTH).json()
    assert data["title"].startswith("Acme Cloud outage")
    assert [n["text"] for n in data["notes"]] == ["status page updated"]
    assert [h["action"] for h in data["history"]] == ["note"]
    assert [t["id"] for t in data["thread"]] == [2]
    assert client.get("/api/beacons/999", headers=AUTH).status_code == 404


# -- actions ----------------------------------------------------------------------------------------


def test_api_lifecycle(client: httpx.Client) -> None:
    r = client.post(f"/api/beacons/{WIFI}/claim", json={"by": "alice"}, headers=AUTH)
    assert r.status_code == 200 and (r.json()["beacon"]["status"], r.json()["beacon"]["assignee"]) == (
        "claimed",
        "alice",
    )
    r = client.post(f"/api/beacons/{WIFI}/claim", json={"by": "bob"}, headers=AUTH)
    assert r.status_code == 409 and r.json()["error"] | {"message": ""} == {
        "code": "conflict",
        "message": "",
        "status": "claimed",
        "assignee": "alice",
    }
    r = client.post(f"/api/beacons/{WIFI}/resolve", json={"by": "alice", "note": "firmware 2.4.2"}, headers=AUTH)
    assert r.json()["beacon"]["status"] == "resolved"
    assert client.post(f"/api/beacons/{WIFI}/dismiss", json={"by": "alice"}, headers=AUTH).status_code == 409
    r = client.post(f"/api/beacons/{GUEST}/reroute", json={"by": "bob", "queue": "advocacy"}, headers=AUTH)
    assert r.json()["beacon"]["queue"] == "advocacy"
    r = client.post(f"/api/beacons/{BILLING}/dismiss", json={"by": "bob"}, headers=AUTH)
    assert r.json()["beacon"]["status"] == "dismissed"
    history = client.get(f"/api/beacons/{WIFI}", headers=AUTH).json()["history"]
    assert [(h["actor"], h["action"]) for h in history] == [("alice", "claim"), ("alice", "resolve")]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (f"/api/beacons/{WIFI}/claim", {}, 400),  # who?
        (f"/api/beacons/{WIFI}/reroute", {"by": "bob", "queue": "urgent"}, 400),
        (f"/api/beacons/{WIFI}/note", {"by": "bob", "text": ""}, 400),
        (f"/api/beacons/{WIFI}/note", {"by": "bob", "text": 42}, 400),
        (f"/api/beacons/{WIFI}/escalate", {"by": "bob"}, 404),
        ("/api/beacons/999/claim", {"by": "bob"}, 404),
    ],
)
def test_api_bad_actions(client: httpx.Client, path: str, body: dict[str, Any], status: int) -> None:
    assert client.post(path, json=body, headers=AUTH).status_code == status


@pytest.mark.parametrize(
    ("content", "ctype", "status"),
    [(b"[1, 2]", "application/json", 400), (b"{not json", "application/json", 400), (b"by=x", "text/plain", 415)],
)
def test_api_bad_bodies(client: httpx.Client, content: bytes, ctype: str, status: int) -> None:
    assert (
        client.post(f"/api/beacons/{WIFI}/claim", content=content, headers={**AUTH, "Content-Type": ctype}).status_code
        == status
    )


def test_api_body_too_large(client: httpx.Client) -> None:
    r = client.post(f"/api/beacons/{WIFI}/note", json={"by": "bob", "text": "x" * 70_000}, headers=AUTH)
    assert r.status_code == 413


def test_api_wrong_method(shared: httpx.Client) -> None:
    r = shared.delete("/api/beacons/3", headers=AUTH)
    assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_api_concurrent_claims_exactly_one_wins(client: httpx.Client, server: WebServer) -> None:
    """Two people press Claim on the same beacon at the same moment: one 200, one 409, on every beacon."""
    people = {p: httpx.Client(base_url=server.url, timeout=10, verify=SSL) for p in ("alice", "bob")}
    try:
        for beacon_id in (WIFI, BILLING, GUEST, PRAISE, 7, 8):
            barrier = threading.Barrier(2)
            codes: dict[str, int] = {}

            def press(
                person: str,
                beacon_id: int = beacon_id,
                barrier: threading.Barrier = barrier,
                codes: dict[str, int] = codes,
            ) -> None:
                barrier.wait()
                codes[person] = (
                    people[person]
                    .post(f"/api/beacons/{beacon_id}/claim", json={"by": person}, headers=AUTH)
                    .status_code
                )

            threads = [threading.Thread(target=press, args=(p,)) for p in people]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            assert sorted(codes.values()) == [200, 409], codes
            winner = next(p for p, c in codes.items() if c == 200)
            assert client.get(f"/api/beacons/{beacon_id}", headers=AUTH).json()["assignee"] == winner
    finally:
        for c in people.values():
            c.close()


# -- metrics, OpenAPI, version -----------------------------------------------------------------------


def test_api_metrics(client: httpx.Client, config: Config) -> None:
    client.post(f"/api/beacons/{WIFI}/claim", json={"by": "alice"}, headers=AUTH)
    store = Store(config.database)
    write(store, "UPDATE sources SET polls = 7, errors = 2 WHERE id = 'homenet-forum'")
    write(
        store,
        "INSERT INTO outbox (event_id, channel, beacon_id, created_at) VALUES ('e1', 'slack \"ops\"', 1, '2026-11-23T00:00:00+00:00')",
    )
    store.close()
    r = client.get("/metrics", headers=AUTH)
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(r.text.splitlines())
    assert 'beacons_beacons{queue="support",status="claimed"} 1' in lines
    assert 'beacons_beacons{queue="support",status="new"} 4' in lines  # 1, 2, 4, 5
    assert 'beacons_beacons{queue="advocacy",status="resolved"} 0' in lines  # every combination, zeros included
    assert 'beacons_source_poll_errors_total{source="homenet-forum"} 2' in lines
    assert 'beacons_alert_backlog{channel="slack \\"ops\\"",status="pending"} 1' in lines


def test_api_openapi_documents_every_api_route(shared: httpx.Client) -> None:
    doc = shared.get("/openapi.json", headers=AUTH).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    routes = {(m, p) for m, p, _, _ in api.ROUTES if "{action}" not in p}
    routes |= {("POST", f"/api/beacons/{{id}}/{a}") for a in api.ACTION_NAMES}
    routes |= {(m, p) for m, p, _, _ in sources.ROUTES if p.startswith("/api/") and "{action}" not in p}
    routes |= {("POST", f"/api/sources/{{source}}/{a}") for a in sources.ACTIONS}
    routes |= {(m, p) for m, p, _, kind in insights.ROUTES if kind == "api"}
    assert documented == routes
    assert document()["components"]["schemas"]["Beacon"]["properties"].keys() >= {
        "id",
        "queue",
        "status",
        "priority",
        "thread_id",
    }


def test_api_version_changes_when_a_beacon_arrives(client: httpx.Client, config: Config) -> None:
    before = client.get("/api/version", headers=AUTH).json()["version"]
    seed(config, [hostile_mention()])
    assert client.get("/api/version", headers=AUTH).json()["version"] != before


# -- the page, without a browser ---------------------------------------------------------------------


def test_api_page_escapes_untrusted_text(client: httpx.Client, config: Config) -> None:
    seed(config, [hostile_mention()])
    sign_in(client)
    html = client.get("/").text
    assert "<script>window" not in html and "<svg" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert (
        'href="javascript' not in html and "javascript:alert(document.cookie)" not in html
    )  # the post's link is not rendered at all
    assert re.search(
        r'<a href="https://forum.example/t/routerx-drops-wifi/4811" rel="noopener noreferrer" target="_blank">', html
    )
    with Store(config.database) as store:
        hostile_id = scalar(store, "SELECT MAX(id) FROM beacons")
    detail = client.get(f"/beacons/{hostile_id}").text
    assert "&lt;img src=x onerror=" in detail and HOSTILE_TITLE not in detail and HOSTILE_AUTHOR not in detail


def test_api_page_highlights_the_brand(client: httpx.Client) -> None:
    sign_in(client)
    html = client.get("/", params={"brand": "Acme"}).text
    assert "<mark>RouterX</mark>" in html and "<mark>Acme Cloud</mark>" in html


def test_api_page_static_files_and_unknown_paths(shared: httpx.Client) -> None:
    assert shared.get("/static/page.js").headers["content-type"].startswith("text/javascript")
    assert shared.get("/static/../server.py").status_code == 404
    assert shared.get("/static/nope.css").status_code == 404
    assert shared.get("/nowhere", headers=AUTH).status_code == 404


# -- auth: none-on-loopback --------------------------------------------------------------------------


@pytest.fixture
def open_server(tmp_path: Path) -> Iterator[WebServer]:
    config = make_config(tmp_path / "open.db", serve={"host": "127.0.0.1", "port": 0, "auth": "none-on-loopback"})
    seed(config)
    server = start(config)
    yield server
    server.stop()


def test_api_loopback_without_tokens(open_server: WebServer) -> None:
    with httpx.Client(base_url=open_server.url, timeout=10, verify=SSL) as c:
        assert c.get("/api/beacons").status_code == 200
        assert c.post(f"/api/beacons/{WIFI}/claim", json={"by": "me"}).status_code == 200
        assert (
            c.post(f"/api/beacons/{BILLING}/claim", data={"by": "me"}).status_code == 403
        )  # a form needs the page's CSRF token
        assert c.get("/").status_code == 303  # asks for a name first
        assert c.get("/api/beacons", headers={"Host": "rebind.evil.example"}).status_code == 403  # DNS rebinding
        assert (
            c.get("/api/beacons", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
        )  # came through a proxy


def test_api_loopback_mode_refuses_a_public_host(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"serve\.auth: none-on-loopback needs a loopback host"):
        make_config(tmp_path / "x.db", serve={"host": "0.0.0.0", "auth": "none-on-loopback"})


@pytest.mark.parametrize(
    ("serve", "problem"),
    [
        ({}, "serve.tokens: at least one token is required"),
        ({"tokens": ["short"]}, "serve.tokens[0]: is shorter than 16"),
        ({"tokens": [TOKEN], "public_url": "beacons.example.com"}, "serve.public_url: expected an http(s) URL"),
    ],
)
def test_api_serve_config_errors(tmp_path: Path, serve: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        make_config(tmp_path / "x.db", serve=serve)


def test_api_no_serve_section_means_no_server(tmp_path: Path) -> None:
    from beacons.config import parse_config

    bare = parse_config("brands: [{name: Acme}]", env={})
    assert bare.serve.enabled is False and bare.serve.link(3) is None
    assert (
        make_config(tmp_path / "y.db", serve={"tokens": [TOKEN], "public_url": "https://q.example/"}).serve.link(3)
        == "https://q.example/beacons/3"
    )


# -- the daemon starts and stops the server ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_api_daemon_task_serves_until_stopped(tmp_path: Path) -> None:
    from beacons.daemon import EXTRA_TASKS
    from beacons.web.task import serve_task

    port = _free_port()
    config = make_config(tmp_path / "d.db", serve={"host": "127.0.0.1", "port": port, "tokens": [TOKEN]})
    assert serve_task in EXTRA_TASKS

    async def scenario() -> tuple[int, bool]:
        stop = asyncio.Event()
        task = asyncio.create_task(serve_task(SimpleNamespace(config=config), stop))  # type: ignore[arg-type]
        status = 0
        for _ in range(3000):  # up to 60 s for the server to listen: a hang guard, not a speed bound
            try:
                async with httpx.AsyncClient(verify=SSL) as c:
                    status = (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 60)
        with socket.socket() as s:
            refused = s.connect_ex(("127.0.0.1", port)) != 0
        return status, refused

    assert asyncio.run(scenario()) == (200, True)


def test_api_daemon_task_does_nothing_without_serve_or_in_once_mode(tmp_path: Path) -> None:
    from beacons.config import parse_config
    from beacons.web.task import serve_task

    port = _free_port()
    bare = parse_config(f"database: {tmp_path / 'e.db'}", env={})
    configured = make_config(tmp_path / "f.db", serve={"host": "127.0.0.1", "port": port, "tokens": [TOKEN]})

    async def scenario() -> None:
        done = asyncio.Event()
        done.set()
        # Both return at once (a hang here fails the wait_for): no section, or --once's already-set event.
        await asyncio.wait_for(serve_task(SimpleNamespace(config=bare), asyncio.Event()), 60)  # type: ignore[arg-type]
        await asyncio.wait_for(serve_task(SimpleNamespace(config=configured), done), 60)  # type: ignore[arg-type]

    asyncio.run(scenario())
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing was listening


def test_api_page_highlights_a_title_the_text_starts_with(client: httpx.Client, config: Config) -> None:
    seed(
        config,
        [
            mention(
                "forum",
                "kim",
                "RouterX keeps rebooting",
                "RouterX keeps rebooting every hour, broken since the update",
                "https://forum.example/t/77",
            )
        ],
    )
    sign_in(client)
    html = client.get("/").text
    assert "<mark>RouterX</mark> keeps rebooting</a></h3>" in html


# -- beacons serve -------------------------------------------------------------------------------------


def test_api_beacons_serve_command(tmp_path: Path, template_db: Path) -> None:
    """A support person runs `beacons serve`; it answers on loopback and stops cleanly on SIGTERM."""
    db = tmp_path / "serve.db"
    shutil.copyfile(template_db, db)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(db, serve={"tokens": ["${QUEUE_TOKEN}"]})), encoding="utf-8")
    env = {**os.environ, "QUEUE_TOKEN": TOKEN}
    code = "import sys; from beacons.cli import main; sys.exit(main())"
    with subprocess.Popen(
        [sys.executable, "-c", code, "serve", "-c", str(path), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            found = re.search(r"serving the queue on (http://127\.0\.0\.1:\d+)/", line)
            assert found, line
            with httpx.Client(base_url=found.group(1), timeout=10, verify=SSL) as c:
                assert c.get("/healthz").status_code == 200
                assert len(c.get("/api/beacons", headers=AUTH).json()["beacons"]) == 7
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0  # a hang guard: it exits at once
        finally:
            if proc.poll() is None:
                proc.kill()


def test_api_beacons_serve_needs_a_token(tmp_path: Path, capsys: Any) -> None:
    from beacons.cli import main

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"database": str(tmp_path / "x.db")}), encoding="utf-8")
    assert main(["serve", "-c", str(path)]) == 2
    assert "serve.tokens: at least one token is required" in capsys.readouterr().err


def test_api_form_post_error_without_javascript_is_a_page(client: httpx.Client) -> None:
    csrf = sign_in(client)
    client.post(f"/api/beacons/{WIFI}/claim", json={}, headers={"X-CSRF-Token": csrf})
    r = client.post(f"/api/beacons/{WIFI}/claim", data={"csrf": csrf, "next": "/"}, headers={"Accept": "text/html"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")
    assert "already claimed by alice" in r.text and 'href="/"' in r.text


# -- correcting sentiment and intents (issue 12) -------------------------------------------------------


def test_api_label_corrects_sentiment_and_intents_as_training_labels(client: httpx.Client, config: Config) -> None:
    r = client.post(
        f"/api/beacons/{WIFI}/label",
        json={"by": "maria", "sentiment": "negative", "intents": ["bug_outage", "complaint"]},
        headers=AUTH,
    )
    assert r.status_code == 200
    beacon = r.json()["beacon"]
    assert (beacon["sentiment"], beacon["intents"]) == ("negative", {"bug_outage": 1.0, "complaint": 1.0})
    r = client.post(f"/api/beacons/{WIFI}/label", json={"by": "maria", "intents": []}, headers=AUTH)
    assert (r.json()["beacon"]["sentiment"], r.json()["beacon"]["intents"]) == ("negative", {})
    history = client.get(f"/api/beacons/{WIFI}", headers=AUTH).json()["history"]
    assert [(h["actor"], h["action"], h["detail"]) for h in history] == [
        ("maria", "relabel", "sentiment negative, intents bug_outage, complaint"),
        ("maria", "relabel", "intents (none)"),
    ]
    with Store(config.database) as store:
        [example] = q.feedback_examples(store)  # what `beacons train --with-feedback` reads
    assert (example["sentiment"], example["intents"], example["labels"]) == ("negative", [], ["sentiment", "intents"])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"by": "bob", "sentiment": "angry"}, 400, "sentiment"),
        ({"by": "bob", "sentiment": 1}, 400, "sentiment"),
        ({"by": "bob", "intents": ["bug_outage", "bugs"]}, 400, "intents"),
        ({"by": "bob", "intents": "bug_outage"}, 400, "intents"),
        ({"by": "bob", "intents": [1]}, 400, "intents"),
        ({"by": "bob"}, 400, "label"),
        ({"by": "bob", "queue": "none", "sentiment": "neutral"}, 400, "queue"),
        ({"sentiment": "neutral"}, 400, "by"),
    ],
)
def test_api_label_refuses_unknown_values_naming_the_field(
    client: httpx.Client, config: Config, body: dict[str, Any], status: int, field: str
) -> None:
    r = client.post(f"/api/beacons/{WIFI}/label", json=body, headers=AUTH)
    assert r.status_code == status and r.json()["error"]["message"].startswith(f"{field}:")
    assert (
        client.post("/api/beacons/999/label", json={"by": "bob", "sentiment": "neutral"}, headers=AUTH).status_code
        == 404
    )
    with Store(config.database) as store:
        assert q.feedback_examples(store) == []  # nothing half-written
        assert q.history(store, WIFI) == []


def test_api_page_label_form_works_without_javascript(client: httpx.Client, config: Config) -> None:
    csrf = sign_in(client)
    page = client.get(f"/beacons/{WIFI}").text
    assert f'action="/api/beacons/{WIFI}/label"' in page and 'name="intents" value="bug_outage"' in page
    form = {"next": f"/beacons/{WIFI}", "sentiment": "positive", "intents": ["", "praise", "testimonial"]}
    assert client.post(f"/api/beacons/{WIFI}/label", data=form, headers={"Accept": "text/html"}).status_code == 403
    r = client.post(f"/api/beacons/{WIFI}/label", data={"csrf": csrf, **form}, headers={"Accept": "text/html"})
    assert (r.status_code, r.headers["location"]) == (303, f"/beacons/{WIFI}")
    page = client.get(f"/beacons/{WIFI}").text
    assert 'value="positive" selected' in page and 'value="praise" checked' in page
    assert 'value="bug_outage" checked' not in page
    # Every box cleared: the hidden empty field still says "none of the intents"; the unchanged sentiment is no label.
    r = client.post(
        f"/api/beacons/{WIFI}/label",
        data={"csrf": csrf, "next": f"/beacons/{WIFI}", "sentiment": "positive", "intents": ""},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 303
    r = client.post(
        f"/api/beacons/{WIFI}/label",
        data={"csrf": csrf, "sentiment": "positive", "intents": ""},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 400 and "nothing changed" in r.text
    with Store(config.database) as store:
        details = [(e.actor, e.action, e.detail) for e in q.history(store, WIFI)]
        [example] = q.feedback_examples(store)
    assert details == [
        ("alice", "relabel", "sentiment positive, intents praise, testimonial"),
        ("alice", "relabel", "intents (none)"),
    ]
    assert (example["sentiment"], example["intents"]) == ("positive", [])
