"""Issue 10, the web server: Starlette on uvicorn, no loopback bypass, sessions that end, 400 for malformed input.

Every test talks to a real uvicorn on 127.0.0.1 (raw sockets where httpx would
refuse to send the malformed request) and a real SQLite file.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from helpers_queue import (
    TOKEN,
    fresh_logging,  # noqa: F401  (autouse: structlog writes to the current stdout)
    make_config,
    seed,
)

from beacons.cli import main
from beacons.config import Config
from beacons.errors import ConfigError
from beacons.web.app import safe_next
from beacons.web.server import WebServer

WIFI = 3
PUBLIC = "beacons.example.com"
HOUR = 3600.0


class FakeClock:
    """Seconds since the epoch, moved by the test (sessions are timestamped with it)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "web.db"
    seed(make_config(path))
    return path


def _config(tmp_path: Path, template_db: Path, **serve: Any) -> Config:
    db = tmp_path / "web.db"
    if not db.exists():
        db.write_bytes(template_db.read_bytes())
    base: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 1}
    if serve.get("auth") == "none-on-loopback":
        base.pop("tokens")
    return make_config(db, serve={**base, **serve})


@pytest.fixture
def running(tmp_path: Path, template_db: Path) -> Iterator[Any]:
    """``running(**serve_keys, clock=...)`` starts a server; every one started is stopped at the end."""
    servers: list[WebServer] = []

    def start(clock: FakeClock | None = None, **serve: Any) -> WebServer:
        server = WebServer(_config(tmp_path, template_db, **serve), **({"clock": clock} if clock else {}))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def sign_in(client: httpx.Client, *, token: str | None = TOKEN, **headers: str) -> httpx.Response:
    data = {"name": "alice", "next": "/"} | ({"token": token} if token else {})
    return client.post("/login", data=data, headers=headers)


def csrf_of(client: httpx.Client) -> str:
    found = re.search(r'data-csrf="([0-9a-f]+)"', client.get("/").text)
    assert found
    return found.group(1)


def raw(server: WebServer, data: bytes, *, timeout: float = 10) -> bytes:
    """Send bytes as they are; everything the server answers until it closes (or b"<timeout>")."""
    url = httpx.URL(server.url)
    host, port = url.host, url.port
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(data)
        out = b""
        try:
            while chunk := conn.recv(65536):
                out += chunk
        except TimeoutError:
            return out + b"<timeout>"
    return out


def status_of(answer: bytes) -> int:
    found = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert found, answer[:200]
    return int(found.group(1))


def request(method: str, target: bytes, *headers: bytes, body: bytes = b"", length: bytes | None = None) -> bytes:
    head = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close", *headers]
    if body or length is not None:
        head.append(b"Content-Length: " + (length if length is not None else str(len(body)).encode()))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


BEARER = b"Authorization: Bearer " + TOKEN.encode()
JSON = b"Content-Type: application/json"


# -- §3: auth: none-on-loopback cannot be bypassed ------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}, {"Host": PUBLIC}],
    ids=["x-forwarded-for", "forwarded", "public-host"],
)
def test_web_none_on_loopback_sign_in_through_a_proxy_is_refused(running: Any, headers: dict[str, str]) -> None:
    """Issue 10 §3: POST /login minted a working cookie for a request that came through a reverse proxy."""
    server = running(auth="none-on-loopback", public_url=f"https://{PUBLIC}")
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = sign_in(c, token=None, **headers)
        assert r.status_code == 401 and "only sign in on this machine" in r.text
        assert "beacons_session" not in r.headers.get("set-cookie", "")
        assert c.get("/api/beacons", headers=headers).status_code == 401
        assert c.get("/api/beacons").status_code == 200  # straight from this machine: still open


def test_web_none_on_loopback_cookie_does_not_work_through_a_proxy(running: Any) -> None:
    server = running(auth="none-on-loopback", public_url=f"https://{PUBLIC}")
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert sign_in(c, token=None).status_code == 303
        assert c.get("/api/beacons").status_code == 200
        for headers in ({"X-Forwarded-For": "203.0.113.9"}, {"Host": PUBLIC}):
            assert c.get("/api/beacons", headers=headers).status_code == 401
            assert c.get("/", headers=headers).status_code == 401


# -- §6: safe_next -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["//evil.com", "/\\evil.com", "/\t/evil.com", "/\n/evil.com", "/\r/evil.com", "/ /evil.com", "\\/evil.com",
     "https://evil.com/", "evil.com", "/ok\\..\\evil", "/ok\x00", "", None],
)  # fmt: skip
def test_web_safe_next_refuses_anything_but_a_local_path(value: str | None) -> None:
    assert safe_next(value) == "/"


@pytest.mark.parametrize("value", ["/", "/?status=open&brand=Acme", "/beacons/3", "/beacons/3#notes", "/?q=a%20b"])
def test_web_safe_next_keeps_local_paths(value: str) -> None:
    assert safe_next(value) == value


def test_web_sign_in_never_redirects_to_a_tab_hidden_host(running: Any) -> None:
    server = running()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post("/login", data={"name": "alice", "token": TOKEN, "next": "/\t/evil.example/"})
        assert (r.status_code, r.headers["location"]) == (303, "/")


# -- §6: sessions expire and sign-out revokes them -----------------------------------------------------------


def test_web_session_expires_after_session_max_age(running: Any) -> None:
    clock = FakeClock()
    server = running(clock=clock)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = sign_in(c)
        assert "Max-Age=43200" in r.headers["set-cookie"]  # the default, 12 h
        clock.now += 12 * HOUR - 60
        assert c.get("/api/version").status_code == 200
        clock.now += 120
        assert c.get("/api/version").status_code == 401
        assert c.get("/").status_code == 401


def test_web_session_max_age_is_configurable(running: Any) -> None:
    clock = FakeClock()
    server = running(clock=clock, session_max_age="30m")
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert "Max-Age=1800" in sign_in(c).headers["set-cookie"]
        clock.now += 31 * 60
        assert c.get("/api/version").status_code == 401


def test_web_sign_out_revokes_the_session_server_side(running: Any, tmp_path: Path) -> None:
    server = running()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        sign_in(c)
        stolen = dict(c.cookies)
        r = c.post("/logout", data={"csrf": csrf_of(c)})
        assert (r.status_code, r.headers["location"]) == (303, "/login")
    with httpx.Client(base_url=server.url, timeout=10, cookies=stolen) as replay:
        assert replay.get("/api/version").status_code == 401
        assert replay.get("/").status_code == 401
    rows = sqlite3.connect(tmp_path / "web.db").execute("SELECT COUNT(*) FROM revoked_sessions").fetchone()
    assert rows == (1,)
    with httpx.Client(base_url=server.url, timeout=10) as again:  # signing in again works
        sign_in(again)
        assert again.get("/api/version").status_code == 200


@pytest.mark.parametrize(
    ("serve", "problem"),
    [
        ({"session_max_age": "10s"}, "serve.session_max_age: must be 5m..30d, got 10s"),
        ({"session_max_age": "soon"}, "serve.session_max_age"),
        ({"client_timeout": "0s"}, "serve.client_timeout: must be 100ms..10m"),
        ({"forwarded_allow_ips": ["proxy.local"]}, "serve.forwarded_allow_ips[0]: expected an IP address"),
    ],
)
def test_web_serve_config_new_keys_are_validated(tmp_path: Path, serve: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        make_config(tmp_path / "x.db", serve={"tokens": [TOKEN], **serve})


# -- §6: malformed input answers 400, never 500 or a dropped connection ---------------------------------------

CURSOR_TOO_BIG = b"OTk5OTk5OTk5OTk5OTk5OTk5OTk5OjE"  # base64 of "999999999999999999999:1"
MALFORMED = {
    "unicode-digit-limit": request("GET", b"/api/beacons?limit=%C2%B2", BEARER),
    "arabic-digit-limit": request("GET", b"/api/beacons?limit=%D9%A3", BEARER),
    "5000-digit-limit": request("GET", b"/api/beacons?limit=" + b"9" * 5000, BEARER),
    "cursor-past-int64": request("GET", b"/api/beacons?cursor=" + CURSOR_TOO_BIG, BEARER),
    "unicode-digit-content-length": request("POST", f"/api/beacons/{WIFI}/claim".encode(), BEARER, JSON,
                                            body=b'{"by": "a"}', length=b"\xb2"),
    "deeply-nested-json": request("POST", f"/api/beacons/{WIFI}/claim".encode(), BEARER, JSON, body=b"[" * 60_000),
    "bad-utf8-json": request("POST", f"/api/beacons/{WIFI}/note".encode(), BEARER, JSON,
                             body=b'{"by": "a", "text": "\xff\xfe"}'),
    "lone-surrogate": request("POST", f"/api/beacons/{WIFI}/note".encode(), BEARER, JSON,
                              body=b'{"by": "a", "text": "\\ud800"}'),
    "huge-json-number": request("POST", f"/api/beacons/{WIFI}/claim".encode(), BEARER, JSON,
                                body=b'{"by": ' + b"9" * 5000 + b"}"),
    "8bit-path": request("GET", b"/api/beacons/\xff", BEARER),
    "unparsable-origin": request("POST", b"/login", b"Origin: http://[zz",
                                 b"Content-Type: application/x-www-form-urlencoded", body=b"name=a&token=b"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(MALFORMED))
def test_web_malformed_input_answers_400(running: Any, name: str) -> None:
    server = running()
    answer = raw(server, MALFORMED[name])
    assert status_of(answer) in (400, 403), answer[:300]
    assert b'{"error": {"code": "' in answer and b"content-security-policy: default-src 'none'" in answer.lower()
    assert status_of(raw(server, request("GET", b"/healthz"))) == 200


def test_web_beacon_id_past_int64_is_not_found(running: Any) -> None:
    server = running()
    assert status_of(raw(server, request("GET", b"/api/beacons/" + b"9" * 30, BEARER))) == 404


@pytest.mark.parametrize(
    "extra",
    [(b"X-CSRF-Token: \xe9t\xe9",), (b"Host: [zz",), (b"Origin: http://[zz", b"Sec-Fetch-Site: same-origin")],
    ids=["non-ascii-csrf", "unparsable-host", "unparsable-origin"],
)
def test_web_malformed_headers_on_loopback_are_refused_not_crashed(running: Any, extra: tuple[bytes, ...]) -> None:
    server = running(auth="none-on-loopback")
    head = [h for h in extra if not h.startswith(b"Host:")]
    data = request("POST", f"/api/beacons/{WIFI}/claim".encode(), *head, body=b"by=me")
    if any(h.startswith(b"Host:") for h in extra):
        data = data.replace(b"Host: 127.0.0.1", b"Host: [zz")
    data = data.replace(b"Connection: close", b"Connection: close\r\nContent-Type: application/x-www-form-urlencoded")
    assert status_of(raw(server, data)) == 403


# -- limits and slow clients -----------------------------------------------------------------------------------


def test_web_oversized_url_and_headers_are_refused(running: Any) -> None:
    server = running()
    assert status_of(raw(server, request("GET", b"/api/beacons?q=" + b"a" * 9000, BEARER))) == 414
    assert status_of(raw(server, request("GET", b"/api/beacons", BEARER, b"X-Big: " + b"b" * 17_000))) == 431
    assert status_of(raw(server, request("POST", b"/api/beacons/3/note", BEARER, JSON, length=b"70000"))) == 413


def test_web_chunked_bodies_are_refused(running: Any) -> None:
    server = running()
    data = request("POST", b"/api/beacons/3/claim", BEARER, JSON, b"Transfer-Encoding: chunked")
    assert status_of(raw(server, data + b"2\r\n{}\r\n0\r\n\r\n")) == 411


def test_web_a_client_that_stops_sending_its_head_is_disconnected(running: Any) -> None:
    server = running(client_timeout="200ms")
    # Half a request head, then silence (slowloris): the server closes the connection without an answer.
    assert raw(server, b"GET /api/beacons HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1") == b""
    assert status_of(raw(server, request("GET", b"/healthz"))) == 200


def test_web_a_client_that_stops_sending_its_body_gets_408(running: Any) -> None:
    server = running(client_timeout="200ms")
    data = request("POST", b"/api/beacons/3/note", BEARER, JSON, length=b"100") + b'{"by": '
    answer = raw(server, data)
    assert status_of(answer) == 408 and b"serve.client_timeout" in answer


# -- reverse proxy ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("proxy_headers", "secure"), [(True, True), (False, False)])
def test_web_proxy_headers_are_trusted_only_when_configured(running: Any, proxy_headers: bool, secure: bool) -> None:
    server = running(proxy_headers=proxy_headers, forwarded_allow_ips=["127.0.0.1"])
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = sign_in(c, **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 303
        assert ("; Secure" in r.headers["set-cookie"]) is secure


def test_web_serve_command_refuses_a_bad_forwarded_allow_ips_flag(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"database": str(tmp_path / "x.db"), "serve": {"tokens": [TOKEN]}}), encoding="utf-8")
    assert main(["serve", "-c", str(path), "--port", "0", "--forwarded-allow-ips", "10.0.0.1,proxy"]) == 2
    assert "serve.forwarded_allow_ips[1]: expected an IP address" in capsys.readouterr().err


# -- §2: what the server logs ----------------------------------------------------------------------------------


def test_web_a_bug_logs_one_http_error_without_request_data(
    running: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10 §2: a 500 logged the request (Authorization, cookies, body). Now one http.error, no request data."""
    server = running()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        sign_in(c)
        cookie = c.cookies["beacons_session"]
        db = sqlite3.connect(tmp_path / "web.db")
        db.execute("UPDATE beacons SET scores_json = '{broken'")  # a real fault no handler expects: a corrupt row
        db.commit()
        db.close()
        with structlog.testing.capture_logs() as events, caplog.at_level(logging.DEBUG):
            r = c.request(
                "GET",
                "/api/beacons?queue=support&threads=query-secret-0123456789",
                headers={"Authorization": f"Bearer {TOKEN}", "X-Api-Key": "header-secret-0123456789"},
                content=b'{"body": "body-secret-0123456789"}',
            )
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal"
    errors = [e for e in events if e["event"] == "http.error"]
    assert len(errors) == 1 and len(events) == 1, events
    assert errors[0] | {"ms": 0, "where": ""} == {
        "event": "http.error",
        "log_level": "error",
        "method": "GET",
        "path": "/api/beacons",
        "status": 500,
        "error": "JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "where": "",
        "ms": 0,
    }
    server_records = [rec for rec in caplog.records if not rec.name.startswith(("httpx", "httpcore"))]
    assert server_records == []  # no uvicorn access log or traceback
    for secret in (TOKEN, cookie, "query-secret", "header-secret", "body-secret"):
        assert secret not in repr(events)


def test_web_request_lines_carry_no_query_or_headers(running: Any) -> None:
    server = running()
    with httpx.Client(base_url=server.url, timeout=10) as c, structlog.testing.capture_logs() as events:
        r = c.post(  # a refused note: logged at warning, the level these tests log at
            f"/api/beacons/{WIFI}/note?token=query-secret-0123",
            json={"by": "a", "text": "", "secret": "body-secret-0123"},
            headers={"Authorization": f"Bearer {TOKEN}", "Cookie": "beacons_session=cookie-secret-0123"},
        )
    assert r.status_code == 400
    assert events == [
        {"event": "http.request", "log_level": "warning", "method": "POST", "path": f"/api/beacons/{WIFI}/note",
         "status": 400, "ms": events[0]["ms"]}
    ]  # fmt: skip


def test_web_session_check_without_its_table_answers_503(running: Any, tmp_path: Path) -> None:
    server = running()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        sign_in(c)
        db = sqlite3.connect(tmp_path / "web.db")
        db.execute("DROP TABLE revoked_sessions")
        db.commit()
        db.close()
        r = c.get("/api/version")
    assert (r.status_code, r.json()["error"]["code"]) == (503, "unavailable")


def test_web_store_prunes_revocations_past_their_session(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from beacons.store import Store

    store = Store(tmp_path / "s.db")
    try:
        now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
        store.revoke_session("old", now + timedelta(hours=1), now=now)
        store.revoke_session("new", now + timedelta(hours=14), now=now + timedelta(hours=2))
        assert (store.session_revoked("old"), store.session_revoked("new"), store.session_revoked("x")) == (
            False,
            True,
            False,
        )
    finally:
        store.close()
