"""The redaction step (beacons/redact.py) and the log chain that runs it last (issue 10 §2)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from beacons import redact
from beacons.config import parse_config
from beacons.log import configure, get_logger, redact_secrets
from beacons.redact import REDACTED, public_url, register, scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET http://bob:hunter2@feeds.example/rss failed", f"GET http://{REDACTED}@feeds.example/rss failed"),
        ("https://ghp_abc123@github.com/x", f"https://{REDACTED}@github.com/x"),
        ("postgresql://app:s3cret@db:5432/b", f"postgresql://{REDACTED}@db:5432/b"),
        ("postgresql://app:***@db:5432/b", "postgresql://app:***@db:5432/b"),
        ("https://h/f?token=abc&page=2", f"https://h/f?token={REDACTED}&page=2"),
        ("https://h/f?page=2&api_key=abc", f"https://h/f?page=2&api_key={REDACTED}"),
        ("https://h/f?auth=a&key=b&sig=c", f"https://h/f?auth={REDACTED}&key={REDACTED}&sig={REDACTED}"),
        (
            "x?access_token=a&signature=b&password=c",
            f"x?access_token={REDACTED}&signature={REDACTED}&password={REDACTED}",
        ),
        ("https://h/f?author=jane&page=2", "https://h/f?author=jane&page=2"),
        ("no url here, author: jane", "no url here, author: jane"),
        ("bell\x07 and \u202eoverride", "bell  and  override"),
    ],
)
def test_redact_scrub_blanks_url_credentials(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_redact_scrub_blanks_registered_secrets_anywhere_also_percent_encoded() -> None:
    register("p@ss word/1", "short"[:3])
    assert scrub("failed: p@ss word/1 in body") == f"failed: {REDACTED} in body"
    assert scrub("GET /x?q=p%40ss%20word%2F1") == f"GET /x?q={REDACTED}"
    assert scrub("sho is too short to register") == "sho is too short to register"


def test_redact_scrub_cuts_only_when_asked() -> None:
    long = "word " * 200
    assert scrub(long) == long
    assert len(scrub(long, 50)) <= 50 and scrub(long, 50).endswith("…")


def test_redact_nested_values_secret_keys_and_exceptions() -> None:
    register("hmac-signing-key-0123")
    event = {
        "event": "alert.failed",
        "headers": {"Authorization": "Bearer x", "Accept": "*/*"},
        "request": {"Cookie": "s=1", "X-Api-Key": "k", "url": "https://u:p@h/?token=t"},
        "attempts": [1, "sig=abc", ("hmac-signing-key-0123",)],
        "error": ValueError("bad key hmac-signing-key-0123"),
        "count": 3,
        "ok": True,
        "nothing": None,
    }
    out = redact_secrets(None, "error", dict(event))
    assert out["headers"] == REDACTED
    assert out["request"] == {
        "Cookie": REDACTED,
        "X-Api-Key": REDACTED,
        "url": f"https://{REDACTED}@h/?token={REDACTED}",
    }
    assert out["attempts"] == [1, f"sig={REDACTED}", (REDACTED,)]
    assert out["error"] == f"ValueError: bad key {REDACTED}"
    assert (out["count"], out["ok"], out["nothing"], out["event"]) == (3, True, None, "alert.failed")


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "api_key",
        "Authorization",
        "set-cookie",
        "github_token",
        "db_password",
        "sentry_dsn",
        "tokens",
        "secret",
    ],
)
def test_redact_secret_named_keys(key: str) -> None:
    assert redact.is_secret_key(key)


@pytest.mark.parametrize("key", ["source", "url", "event", "status", "token_env", "kind", "error"])
def test_redact_ordinary_keys_are_kept(key: str) -> None:
    assert not redact.is_secret_key(key)


def test_redact_public_url_drops_credentials_and_keeps_the_rest() -> None:
    assert public_url("http://u:p@h:8080/feed?token=t&page=2#top") == "http://h:8080/feed?page=2#top"
    assert public_url("https://h/feed?q=a+b") == "https://h/feed?q=a+b"


def _boom(url: str) -> None:
    environment = {"HOOK_SECRET": "hmac-signing-key-0123", "url": url}  # a local show_locals would print
    raise RuntimeError(f"failed fetching {environment['url']}")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_log_tracebacks_have_no_locals_and_are_scrubbed(fmt: str) -> None:
    register("hmac-signing-key-0123")
    stream = io.StringIO()
    configure("info", fmt, stream=stream)
    try:
        _boom("http://bob:hunter2@h/f?token=tok123")
    except RuntimeError:
        get_logger().exception("source.polled", status="bug", cookie="c=1")
    text = stream.getvalue()
    assert "RuntimeError" in text and "_boom" in text  # the traceback is there
    for secret in ("hmac-signing-key-0123", "hunter2", "tok123", "c=1", "HOOK_SECRET"):
        assert secret not in text
    if fmt == "json":
        frames = json.loads(text)["exception"][0]["frames"]
        assert all("locals" not in f for f in frames)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_log_stdlib_records_pass_the_same_redaction(fmt: str) -> None:
    register("hmac-signing-key-0123")
    stream = io.StringIO()
    configure("info", fmt, stream=stream)
    logging.getLogger("uvicorn.error").warning("request from %s", "http://a:b@h/?key=k1 hmac-signing-key-0123")
    try:
        _boom("http://h/?sig=s1")
    except RuntimeError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    logging.getLogger("httpx").info("HTTP Request: GET http://h/?token=quiet")  # below warning: not shown
    text = stream.getvalue()
    assert "request from" in text and "Task exception was never retrieved" in text and "RuntimeError" in text
    for secret in ("hmac-signing-key-0123", "a:b@", "k1", "s1", "quiet", "HOOK_SECRET"):
        assert secret not in text


def test_log_redaction_runs_last_before_rendering() -> None:
    configure("info", "json", stream=io.StringIO())
    processors: list[Any] = structlog.get_config()["processors"]
    assert processors[-2] is redact_secrets


def test_log_capture_sees_redacted_values_after_config_load() -> None:
    """Values from ${ENV} under secret keys, secret-named variables and token_env are registered at config load."""
    env = {
        "HOOK": "https://hooks.example/services/T1/B2/abcdefgh",
        "HMAC": "0123456789abcdef0",
        "FEED_TOKEN": "ft-99887766",
        "GH": "ghp-5544332211",
    }
    parse_config(
        """
brands: [{name: Acme}]
sources:
  - {kind: rss, url: "https://feeds.example/rss?x=${FEED_TOKEN}"}
  - {kind: github_issues, token_env: GH}
alerts:
  - {kind: webhook, url: "${HOOK}", secret: "${HMAC}"}
""",
        env=env,
    )
    with capture_logs(processors=[redact_secrets]) as logs:
        get_logger().warning("x", detail=" ".join(env.values()), path="/services/T1/B2/abcdefgh")
    assert logs[0]["detail"] == " ".join([REDACTED] * 4)
    assert logs[0]["path"] == REDACTED


def test_log_uncaught_exception_goes_through_redaction(tmp_path: Any) -> None:
    script = tmp_path / "crash.py"
    script.write_text(
        "from beacons import log, redact\n"
        "redact.register('crash-secret-4411')\n"
        "log.configure('info', 'json')\n"
        "token = 'crash-secret-4411'\n"
        "raise RuntimeError(f'crashed with {token} at http://u:pw@h/')\n",
        encoding="utf-8",
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    event = json.loads(proc.stderr.strip().splitlines()[-1])
    assert event["event"] == "beacons.crashed"
    assert event["exception"][0]["exc_value"] == f"crashed with {REDACTED} at http://{REDACTED}@h/"
    assert "crash-secret-4411" not in proc.stderr + proc.stdout and "pw@" not in proc.stderr


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("FEED_TOKEN", True),
        ("DB_PASSWORD", True),
        ("SLACK_WEBHOOK_URL", True),
        ("API_KEY", True),
        ("HOOK_SECRET", True),
        ("SESSION_TIMEOUT", False),
        ("AUTHOR_NAME", False),
        ("SIGNAL", False),
        ("FEED_HOST", False),
    ],
)
def test_redact_secret_env_names(name: str, secret: bool) -> None:
    assert redact.is_secret_env_name(name) is secret


def test_redact_url_secrets_skip_short_user_names() -> None:
    assert redact.url_secrets("https://reader:pw-1234@h/f?token=abcd&page=2") == ["pw-1234", "abcd"]
    assert redact.url_secrets("https://ghp_0123456789abcdef@github.com/x") == ["ghp_0123456789abcdef"]
    assert redact.url_secrets("https://admin@h/") == []


def test_log_thread_exception_goes_through_redaction() -> None:
    register("thread-secret-5522")
    stream = io.StringIO()
    configure("info", "json", stream=stream)

    def work() -> None:
        raise RuntimeError("thread failed with thread-secret-5522")

    thread = threading.Thread(target=work, name="worker")
    thread.start()
    thread.join()
    event = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert (event["event"], event["thread"]) == ("thread.crashed", "worker")
    assert event["exception"][0]["exc_value"] == f"thread failed with {REDACTED}"


def test_redact_scrub_removes_lone_surrogates() -> None:
    """Issue 10 §5: a "\\ud800" from a feed must not make a log line or a stored error unwritable."""
    assert scrub("title \ud800 here").encode("utf-8") == b"title   here"
