"""``beacons doctor`` against loopback feeds and receivers, JSON logs off a TTY, and the deploy/ files."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import WriteConfig
from helpers_alerts import Receiver, Reply
from helpers_feeds import BRANDS_YAML, FAST_FETCH, HTML_PAGE, SUPPORT_TEXTS, texts_feed

from beacons.cli import main
from beacons.feedserver import FeedServer, Resource
from beacons.log import configure, get_logger
from beacons.store import Store

ROOT = Path(__file__).resolve().parent.parent
SECRET = "doctor-secret-0123456789"


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["doctor", "--format", "json", *args])
    out, err = capsys.readouterr()
    assert out, err
    return code, json.loads(out)


def by_name(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in report["checks"]:
        out.setdefault(c["name"], []).append(c)
    return out


def test_doctor_all_good_exits_zero(
    feed_server: FeedServer, write_config: WriteConfig, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.add("/feed.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    Store(db_path).close()
    with Receiver() as r:
        cfg = write_config(
            {
                "brands": BRANDS_YAML,
                "classifier": {"model": "rules"},
                "fetch": FAST_FETCH,
                "sources": [{"id": "blog", "kind": "rss", "url": feed_server.url("/feed.xml")}],
                "alerts": [
                    {"kind": "webhook", "name": "hook", "url": r.url, "secret": SECRET},
                    {"kind": "slack", "name": "team", "url": r.url},
                ],
            }
        )
        code, report = doctor(capsys, "--config", str(cfg))
        assert r.requests == []  # a dry run sends nothing
    checks = by_name(report)
    assert code == 0 and report["ok"] is True
    assert [c["status"] for c in checks["database"]] == ["ok", "ok", "ok"]
    assert "integrity_check ok" in checks["database"][0]["detail"]
    [blog] = checks["source:blog"]
    assert blog["status"] == "ok" and blog["detail"].startswith("3 entries, 3 mention a brand")
    assert len(feed_server.hits("/feed.xml")) == 1
    assert "If-None-Match" not in feed_server.hits("/feed.xml")[0]["headers"]
    assert all(
        c[0]["status"] == "ok" and "not sent" in c[0]["detail"] for k, c in checks.items() if k.startswith("alert:")
    )
    with sqlite3.connect(db_path) as conn:  # nothing was stored by the source check
        assert conn.execute("SELECT count(*) FROM mentions").fetchone()[0] == 0


def test_doctor_reports_what_is_wrong(
    feed_server: FeedServer, write_config: WriteConfig, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.add("/page.html", Resource(HTML_PAGE, content_type="text/html"))
    store = Store(db_path)
    store.close()
    with Receiver() as r:
        r.default = Reply(500, b"receiver down")
        cfg = write_config(
            {
                "brands": BRANDS_YAML,
                "classifier": {"model": "rules"},
                "fetch": FAST_FETCH,
                "sources": [
                    {"id": "page", "kind": "rss", "url": feed_server.url("/page.html")},
                    {"id": "gone", "kind": "rss", "url": feed_server.url("/missing.xml")},
                ],
                "alerts": [{"kind": "webhook", "name": "hook", "url": r.url, "secret": SECRET}],
            }
        )
        code, report = doctor(capsys, "--config", str(cfg), "--send-test")
    checks = by_name(report)
    assert code == 1 and report["ok"] is False
    assert "got an HTML page" in checks["source:page"][0]["detail"] and checks["source:page"][0]["status"] == "fail"
    assert "HTTP 404" in checks["source:gone"][0]["detail"]
    [hook] = checks["alert:hook"]
    assert hook["status"] == "fail" and "HTTP 500: receiver down" in hook["detail"]
    assert r.url not in json.dumps(report) and SECRET not in json.dumps(report)


def test_doctor_locked_database_is_a_warning(
    write_config: WriteConfig, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Store(db_path).close()
    cfg = write_config({"brands": BRANDS_YAML, "classifier": {"model": "rules"}, "sources": []})
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        code, report = doctor(capsys, "--config", str(cfg))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    database = by_name(report)["database"]
    assert code == 0  # a busy lock is a warning: the running daemon may hold it
    assert database[0]["status"] == "ok"  # it still reads and passes integrity_check
    assert database[-1]["status"] == "warn" and "another process holds a write lock" in database[-1]["detail"]


def test_doctor_corrupt_database_fails_integrity(
    write_config: WriteConfig, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(db_path)
    store.close()
    data = bytearray(db_path.read_bytes())
    page = 4096
    data[page * 2 : page * 2 + 200] = b"\xff" * 200  # garble a b-tree page
    db_path.write_bytes(bytes(data))
    cfg = write_config({"brands": BRANDS_YAML, "classifier": {"model": "rules"}, "sources": []})
    code, report = doctor(capsys, "--config", str(cfg))
    assert code == 1
    [bad] = [c for c in by_name(report)["database"] if c["status"] == "fail"][:1]
    assert "restore" in bad["detail"]


def test_doctor_bad_config_exits_2_listing_problems(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(
        {
            "sources": [{"kind": "rss", "url": "ftp://x", "intervall": "5m"}],
            "alerts": [{"kind": "slack", "url": "${NO_SUCH_VAR_FOR_DOCTOR}"}],
        }
    )
    code = main(["doctor", "--config", str(cfg)])
    out = capsys.readouterr().out
    assert code == 2
    assert "sources[0].intervall" in out and "NO_SUCH_VAR_FOR_DOCTOR" in out
    assert re.search(r"^config\s+fail", out, re.MULTILINE)


def test_log_json_lines_when_not_a_tty() -> None:
    stream = io.StringIO()  # not a TTY, like journald or docker logs
    configure("info", "auto", stream=stream)
    get_logger("t").info("source.polled", source="blog", status="ok", token="abc")
    structlog.reset_defaults()
    line = json.loads(stream.getvalue())
    assert (line["event"], line["source"], line["level"], line["token"]) == (
        "source.polled",
        "blog",
        "info",
        "[redacted]",
    )
    assert "timestamp" in line


# -- deploy/: no container engine or systemd here, so the files are parsed for what they must say ----------


def unit_file() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = ""
    for raw in (ROOT / "deploy" / "beacons.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = {}
            continue
        key, _, value = line.partition("=")
        sections[current].setdefault(key.strip(), []).append(value.strip())
    return sections


def test_deploy_systemd_unit_has_required_directives() -> None:
    from beacons.config import FetchConfig
    from beacons.daemon import GRACE_EXTRA

    unit = unit_file()
    service = unit["Service"]
    assert service["Type"] == ["simple"]
    assert service["ExecStart"] == ["/opt/beacons/.venv/bin/beacons run --config /etc/beacons/config.yaml"]
    assert service["Restart"] == ["on-failure"] and service["KillSignal"] == ["SIGTERM"]
    assert service["User"] == ["beacons"] and service["StateDirectory"] == ["beacons"]
    assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
    assert service["ReadWritePaths"] == ["/var/lib/beacons"]
    assert service["EnvironmentFile"][0].endswith("/etc/beacons/beacons.env")
    # systemd must wait out the daemon's grace period (fetch.timeout + GRACE_EXTRA) before SIGKILL.
    stop = int(service["TimeoutStopSec"][0].rstrip("s"))
    assert stop > FetchConfig().timeout + GRACE_EXTRA
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_deploy_dockerfile_has_required_instructions() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    lines = [
        ln.strip() for ln in re.sub(r"\\\n", " ", text).splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    instructions = [ln.split(None, 1) for ln in lines]
    ops = [op.upper() for op, _ in instructions]
    assert lines[0].startswith("FROM python:3.11-slim")
    assert any(op == "RUN" and "pip install" in arg and "." in arg.split() for op, arg in instructions)
    users = [arg for op, arg in instructions if op.upper() == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert "VOLUME" in ops and "HEALTHCHECK" in ops
    health = next(arg for op, arg in instructions if op.upper() == "HEALTHCHECK")
    probe = json.loads(health.split("CMD", 1)[1])
    assert probe[:2] == ["beacons", "doctor"] and "--no-sources" in probe  # a health probe must not hit every source
    cmd = next(arg for op, arg in reversed(instructions) if op.upper() == "CMD")
    assert json.loads(cmd) == ["beacons", "run", "--config", "/config/config.yaml"]
    assert ops.index("USER") < ops.index("CMD")


def test_doctor_fails_when_no_brand_is_configured(
    write_config: WriteConfig, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config({"classifier": {"model": "rules"}, "database": str(db_path)})
    code, report = doctor(capsys, "--config", str(cfg), "--no-sources")
    fails = [c["detail"] for c in report["checks"] if c["status"] == "fail"]
    assert code == 1
    assert any("no brands" in d for d in fails), fails


def test_doctor_checks_a_postgresql_database(pg_url: str) -> None:
    from beacons.doctor import check_database

    fresh = check_database(pg_url)
    assert [c.status for c in fresh] == ["ok", "warn", "ok"]  # answers, not migrated yet, writable
    Store(pg_url).close()
    checks = check_database(pg_url)
    assert [c.status for c in checks] == ["ok", "ok", "ok"] and "PostgreSQL" in checks[0].detail
    down = check_database("postgresql://beacons:pw-in-url@127.0.0.1:1/none")
    assert [c.status for c in down] == ["fail"] and "pw-in-url" not in down[0].detail
