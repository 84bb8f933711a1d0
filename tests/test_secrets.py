"""Issue 10 §2: no secret reaches any output, end to end.

The daemon (``beacons run --once``) and the server (``beacons serve``) run as
subprocesses with known secrets in a bare environment (``env -i`` style), go
through every error path we can trigger on loopback, and then everything they
and the read commands print, and every text column of the database, is
searched for each secret value.

Two test-only hooks are installed by the subprocess wrapper below, so the
``status=bug`` and classify-error paths do not depend on any one real bug: a
collector kind ``boom_test`` that raises with ``os.environ`` and the feed URL in
its locals and message, and a classifier that fails on posts saying
"explode" with a secret in its message.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import running_feed_server
from helpers_feeds import BRANDS_YAML, SUPPORT_TEXTS, rss_feed, rss_item

from beacons.feedserver import FeedServer, Resource

HOOK_PATH = "whkPath7f3a9c55e1"
SLACK_PATH = "slackPathXoxb5521d0"
HOOK_SECRET = "hmacSecret0b1e5d77c2a94f18"
SERVE_TOKEN = "serveToken4c1d8e2f9a7b6350"
FEED_TOKEN = "feedTokA8f3e1c9d2"
FEED_PASSWORD = "feedPass77e1b0q"
GITHUB_TOKEN = "ghpTestToken0123456789abc"
DB_PASSWORD = "dbPass9d2c4e71zz"
COOKIE_SECRET = "cookieSecret3e8a1f0c"
SECRETS = (HOOK_PATH, SLACK_PATH, HOOK_SECRET, SERVE_TOKEN, FEED_TOKEN, FEED_PASSWORD, GITHUB_TOKEN, DB_PASSWORD)

# Runs the real CLI after registering the test-only collector and classifier.
WRAPPER = """
import os, sys
from dataclasses import dataclass
from collectors import register
from beacons import daemon
from beacons.cli import main

@dataclass(frozen=True, slots=True)
class BoomOptions:
    url: str

@register("boom_test", BoomOptions)
async def boom(ctx, options):
    environment = dict(os.environ)  # a local a traceback renderer with show_locals would print
    headers = {"Authorization": "Bearer " + environment["GITHUB_TOKEN"]}
    raise RuntimeError(f"collector bug while polling {options.url} with {headers}")

real_load = daemon.load_classifier

class Exploding:
    def __init__(self, inner):
        self.inner = inner
        self.name = "exploding"

    def classify(self, text, match):
        if "explode" in text:
            raise ValueError("model failed, secret " + os.environ["HOOK_SECRET"])
        return self.inner.classify(text, match)

    def classify_many(self, items):
        return [self.classify(t, m) for t, m in items]

daemon.load_classifier = lambda *a, **k: Exploding(real_load(*a, **k))
sys.exit(main(sys.argv[1:]))
"""


def _bare(tmp_path: Path) -> dict[str, str]:
    """The start of an ``env -i`` environment: PATH, HOME and the PYTHONPATH this test runs under."""
    keep = {k: os.environ[k] for k in ("PATH", "PYTHONPATH") if k in os.environ}
    return {**keep, "HOME": str(tmp_path)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _echo_500(req: BaseHTTPRequestHandler) -> None:
    """A receiver (or proxy) that echoes the request line and headers back in its error page."""
    body = f"upstream failed for {req.path} headers={dict(req.headers.items())}".encode()
    req.send_response(500)
    req.send_header("Content-Type", "text/plain")
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


def _environment(tmp_path: Path, server: FeedServer, dead_port: int) -> dict[str, str]:
    return {
        **_bare(tmp_path),
        "HOOK_URL": server.url(f"/hooks/{HOOK_PATH}"),
        "HOOK_SECRET": HOOK_SECRET,
        "SLACK_URL": f"http://127.0.0.1:{dead_port}/services/T0/B0/{SLACK_PATH}",
        "SERVE_TOKEN": SERVE_TOKEN,
        "FEED_TOKEN": FEED_TOKEN,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "DATABASE_URL": f"postgresql://beacons:{DB_PASSWORD}@db.internal/beacons",
    }


def _config(server: FeedServer, dead_port: int, database: Path, fmt: str) -> dict[str, Any]:
    creds = f"feeduser:{FEED_PASSWORD}@"
    base = server.base_url.replace("http://", f"http://{creds}")
    return {
        "database": str(database),
        "brands": BRANDS_YAML,
        "logging": {"format": fmt, "level": "debug"},
        "fetch": {"timeout": "1s", "connect_timeout": "1s", "per_host_delay": "0s", "max_backoff": "1m"},
        "classifier": {"model": "rules"},
        "serve": {"enabled": False, "tokens": ["${SERVE_TOKEN}"]},
        "sources": [
            {"kind": "boom_test", "id": "boom", "url": f"{base}/boom?token=${{FEED_TOKEN}}"},
            {"kind": "rss", "url": f"http://{creds}127.0.0.1:{dead_port}/refused.xml?auth=${{FEED_TOKEN}}"},
            {"kind": "rss", "url": f"{base}/err500.xml?token=${{FEED_TOKEN}}"},
            {"kind": "rss", "url": f"{base}/slow.xml?api_key=${{FEED_TOKEN}}"},
            {"kind": "rss", "url": f"{base}/good.xml?access_token=${{FEED_TOKEN}}"},
            {"kind": "rss", "id": "surrogate", "url": f"{base}/surrogate.xml"},
            {"kind": "github_issues", "id": "gh", "base_url": server.url("/gh"), "token_env": "GITHUB_TOKEN"},
        ],
        "alerts": [
            {
                "kind": "webhook",
                "name": "hook",
                "url": "${HOOK_URL}",
                "secret": "${HOOK_SECRET}",
                "ops": True,
                "max_attempts": 1,
                "health": {"after_errors": 1},
            },
            {"kind": "slack", "name": "slack", "url": "${SLACK_URL}", "ops": True, "max_attempts": 1},
        ],
    }


@pytest.fixture
def hostile_server() -> Iterator[FeedServer]:
    """Feeds on loopback: a good one with a beacon, 500s that echo the request, a slow one, a dead webhook."""
    with running_feed_server() as server:
        good = [rss_item(i, text) for i, text in enumerate(SUPPORT_TEXTS)]
        good.append(rss_item(9, "My Acme RouterX will explode, it is broken, please help"))
        server.add("/good.xml", Resource(rss_feed(good)))
        server.add("/surrogate.xml", Resource(rss_feed([rss_item(20, "Acme RouterX broken", title="Acme &#xD800;")])))
        server.add("/slow.xml", Resource(rss_feed(good), delay=3.0))
        for path in ("/err500.xml", "/gh/search/issues", f"/hooks/{HOOK_PATH}"):
            server.add(path, _echo_500)
        yield server


def _run(args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WRAPPER, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _text(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ beacons {' '.join(proc.args[3:])} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def _database_text(database: Path) -> str:
    """Every text value of every table, one per line."""
    conn = sqlite3.connect(database)
    try:
        lines = []
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                lines += [f"{table}: {v}" for v in row if isinstance(v, str | bytes)]
        return "\n".join(lines)
    finally:
        conn.close()


def _assert_no_secret(output: str) -> None:
    leaks = {s: output[max(0, output.find(s) - 200) : output.find(s) + 100] for s in SECRETS if s in output}
    assert not leaks, f"secrets in the output: {leaks}"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secrets_daemon_error_paths_never_print_a_secret(tmp_path: Path, hostile_server: FeedServer, fmt: str) -> None:
    dead_port = _free_port()
    database = tmp_path / "beacons.db"
    env = _environment(tmp_path, hostile_server, dead_port)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_config(hostile_server, dead_port, database, fmt)), encoding="utf-8")
    outputs = [_run(["run", "--once", "-c", str(config)], env, tmp_path)]
    for args in (
        ["sources"],
        ["sources", "--format", "json"],
        ["alerts", "list"],
        ["alerts", "list", "--format", "json"],
        ["doctor"],
        ["doctor", "--format", "json"],
        ["alerts", "test", "--channel", "hook"],
    ):
        outputs.append(_run([*args, "-c", str(config)], env, tmp_path))
    stored = _database_text(database)
    everything = "\n".join([*map(_text, outputs), stored])

    # The paths were taken: each failure is there, scrubbed.
    rows = {r["id"]: r for r in json.loads(outputs[2].stdout)}
    assert rows["boom"]["last_status"] == "bug" and "RuntimeError" in rows["boom"]["last_error"]
    statuses = {r["last_status"] for r in rows.values()}
    assert {"bug", "error", "ok"} <= statuses
    errors = " ".join(r["last_error"] or "" for r in rows.values())
    assert "HTTPStatusError" in errors and "FetchTimeout" in errors and "FetchError" in errors
    assert "[redacted]" in errors
    assert "ValueError: model failed, secret [redacted]" in stored  # the classify error is stored, scrubbed
    assert "alert.dead" in outputs[0].stderr or "alert.retry" in outputs[0].stderr
    assert "source_health" in outputs[4].stdout  # an ops alert about a broken source was written
    _assert_no_secret(everything)


def test_secrets_bad_config_error_never_prints_a_secret(tmp_path: Path) -> None:
    env = {
        **_bare(tmp_path),
        "HOOK_SECRET": HOOK_SECRET,
        "FEED_TOKEN": FEED_TOKEN,
        "HOOK_URL": f"ftp://127.0.0.1/hooks/{HOOK_PATH}",
    }
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": str(tmp_path / "b.db"),
                "brands": BRANDS_YAML,
                "sources": [
                    {"kind": "rss", "url": f"ftp://feeduser:{FEED_PASSWORD}@h/feed?token=${{FEED_TOKEN}}"},
                    {"kind": "rss", "url": "https://example.org/feed", "interval": "${HOOK_SECRET}"},
                ],
                "alerts": [{"kind": "webhook", "url": "${HOOK_URL}", "secret": "${HOOK_SECRET}x", "ops": "yes"}],
            }
        ),
        encoding="utf-8",
    )
    outputs = [_run([*args, "-c", str(config)], env, tmp_path) for args in (["run", "--once"], ["doctor"])]
    everything = "\n".join(map(_text, outputs))
    assert outputs[0].returncode == 2 and "sources[1].interval" in everything and "sources[0].url" in everything
    _assert_no_secret(everything)


def _request(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        status = conn.getresponse().status
    except (ConnectionError, http.client.HTTPException):
        status = 0  # a server that drops the connection leaks nothing either; the output is what is checked
    finally:
        conn.close()
    return status


def _wait_listening(port: int, proc: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline and proc.poll() is None:  # a bound on waiting, never an assertion
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("beacons serve did not start listening")


def test_secrets_server_bad_requests_never_print_a_secret(tmp_path: Path) -> None:
    port = _free_port()
    database = tmp_path / "beacons.db"
    env = {
        **_bare(tmp_path),
        "SERVE_TOKEN": SERVE_TOKEN,
        "HOOK_SECRET": HOOK_SECRET,
        "DATABASE_URL": f"postgresql://beacons:{DB_PASSWORD}@db.internal/beacons",
    }
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": str(database),
                "brands": BRANDS_YAML,
                "logging": {"format": "json", "level": "debug"},
                "serve": {"tokens": ["${SERVE_TOKEN}"], "port": port},
            }
        ),
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, "serve", "-c", str(config)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_listening(port, proc, time.monotonic() + 60)
        bearer = {"Authorization": f"Bearer {SERVE_TOKEN}", "Cookie": f"session={COOKIE_SECRET}; t={SERVE_TOKEN}"}
        statuses = [
            _request(port, "GET", "/no/such/page", bearer),
            _request(port, "GET", "/api/beacons?limit=%C2%B2", bearer),
            _request(port, "GET", f"/api/beacons?token={SERVE_TOKEN}&limit=x", {}),
            _request(port, "GET", "/api/beacons", {"Authorization": f"Bearer {SERVE_TOKEN}x"}),
            _request(
                port, "POST", "/api/beacons/1/claim", {**bearer, "Content-Type": "application/json"}, b"[" * 60_000
            ),
            _request(
                port, "POST", "/api/beacons/1/claim", {**bearer, "Content-Type": "application/json"}, b"[" * 10_000
            ),
            _request(
                port,
                "POST",
                "/login",
                {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"session={COOKIE_SECRET}"},
                f"token={SERVE_TOKEN}x&next=/".encode(),
            ),
            _request(port, "GET", "/api/beacons", bearer),
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert statuses[-1] == 200, statuses  # the token works: the secrets were really in use
    assert statuses[0] == 404
    _assert_no_secret("\n".join([out, err, _database_text(database)]))
    assert COOKIE_SECRET not in out + err
