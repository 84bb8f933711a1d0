"""The ``beacons`` command line: JSON contracts, exit codes, ``run --once`` and ``demo`` end to end."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import WriteConfig, config_writer, running_feed_server
from helpers_feeds import (
    ADVOCACY_TEXTS,
    HTML_PAGE,
    NOISE_TEXTS,
    SUPPORT_TEXTS,
    rss_source_config,
    texts_feed,
)

from beacons.cli import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, main
from beacons.feedserver import FeedServer, Resource

REPO = Path(__file__).resolve().parents[1]
QUEUE_FIELDS = {
    "id",
    "queue",
    "status",
    "priority",
    "brand",
    "product",
    "title",
    "text",
    "url",
    "source",
    "author",
    "published_at",
    "sentiment",
    "is_beacon",
}
CLASSIFY_FIELDS = {"id", "brand", "product", "queue", "is_beacon", "sentiment", "scores"}


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The CLI configures structlog for the process; put the defaults back after each test."""
    yield
    structlog.reset_defaults()


def cli(
    *args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None, capsys: Any
) -> tuple[int, str, str]:
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def polled_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A config with a good and a broken source, polled once with ``beacons run --once`` (shared, read-only)."""
    folder = tmp_path_factory.mktemp("polled")
    with running_feed_server() as server:
        server.add("/good.xml", Resource(texts_feed([*SUPPORT_TEXTS, *ADVOCACY_TEXTS, *NOISE_TEXTS])))
        server.add("/broken.xml", Resource(HTML_PAGE, content_type="text/html"))
        path = config_writer(folder, folder / "beacons.db")(
            rss_source_config({"good": server.url("/good.xml"), "broken": server.url("/broken.xml")})
        )
        assert main(["run", "--config", str(path), "--once"]) == EXIT_OK
    structlog.reset_defaults()
    yield path


def test_cli_run_once_prints_a_summary(feed_server: FeedServer, write_config: WriteConfig, capsys: Any) -> None:
    feed_server.add("/good.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    path = write_config(rss_source_config({"good": feed_server.url("/good.xml")}))
    code, out, _ = cli("run", "--config", str(path), "--once", capsys=capsys)
    assert code == EXIT_OK
    header, line = out.strip().splitlines()[:2]
    assert header.split()[:4] == ["source", "status", "entries", "new"]
    assert line.split()[:4] == ["good", "ok", "3", "3"]


def test_cli_run_once_exits_1_when_every_source_fails(
    feed_server: FeedServer, write_config: WriteConfig, capsys: Any
) -> None:
    path = write_config(rss_source_config({"gone": feed_server.url("/gone.xml")}))
    code, out, _ = cli("run", "--config", str(path), "--once", capsys=capsys)
    assert code == EXIT_ERROR
    assert "HTTP 404" in out


def test_cli_queue_list_json_contract(polled_config: Path, capsys: Any) -> None:
    code, out, _ = cli("queue", "list", "--config", str(polled_config), "--format", "json", capsys=capsys)
    assert code == EXIT_OK
    beacons = json.loads(out)
    assert isinstance(beacons, list) and len(beacons) == 5
    for b in beacons:
        assert set(b) >= QUEUE_FIELDS
        assert (
            b["queue"] in ("support", "advocacy")
            and b["status"] == "new"
            and b["brand"] == "Acme"
            and b["source"] == "good"
        )
        assert isinstance(b["is_beacon"], bool) and isinstance(b["priority"], int) and isinstance(b["id"], int)
        assert b["sentiment"] in ("negative", "neutral", "positive")
    assert [b["priority"] for b in beacons] == sorted((b["priority"] for b in beacons), reverse=True)


@pytest.mark.parametrize(
    ("args", "count"),
    [
        (["--queue", "support"], 3),
        (["--queue", "advocacy"], 2),
        (["--queue", "support", "--status", "new"], 3),
        (["--status", "resolved"], 0),
    ],
)
def test_cli_queue_list_filters(polled_config: Path, capsys: Any, args: list[str], count: int) -> None:
    code, out, _ = cli("queue", "list", "--config", str(polled_config), "--format", "json", *args, capsys=capsys)
    assert code == EXIT_OK
    beacons = json.loads(out)
    assert len(beacons) == count
    if "--queue" in args:
        assert {b["queue"] for b in beacons} <= {args[args.index("--queue") + 1]}


def test_cli_queue_list_table(polled_config: Path, capsys: Any) -> None:
    code, out, _ = cli("queue", "list", "--config", str(polled_config), capsys=capsys)
    assert code == EXIT_OK
    assert out.splitlines()[0].split()[:3] == ["id", "queue", "pri"]
    assert len(out.strip().splitlines()) == 6


def test_cli_sources_counts_polls_and_errors(polled_config: Path, capsys: Any) -> None:
    code, out, _ = cli("sources", "--config", str(polled_config), "--format", "json", capsys=capsys)
    assert code == EXIT_OK
    rows = {r["id"]: r for r in json.loads(out)}
    assert set(rows) == {"good", "broken"}
    assert rows["good"]["last_status"] == "ok" and rows["good"]["items_seen"] == 7 and rows["good"]["errors"] == 0
    assert rows["broken"]["last_status"] == "error" and rows["broken"]["errors"] == 1
    assert "got an HTML page" in rows["broken"]["last_error"]
    assert all(r["last_poll_at"] for r in rows.values())
    code, table, _ = cli("sources", "--config", str(polled_config), capsys=capsys)
    assert "got an HTML page" in table and "never" not in table


def test_cli_classify_jsonl_contract(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    path = write_config(rss_source_config({}))
    lines = [
        {"id": 1, "text": SUPPORT_TEXTS[1]},
        {"id": "b", "title": "Six months with the RouterX", "text": ADVOCACY_TEXTS[0]},
        {"id": 3, "text": NOISE_TEXTS[0]},
    ]
    code, out, _ = cli(
        "classify",
        "--config",
        str(path),
        stdin="\n".join(json.dumps(x) for x in lines) + "\n\n",
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert code == EXIT_OK
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in records] == [1, "b", 3]
    for r in records:
        assert set(r) >= CLASSIFY_FIELDS
        assert isinstance(r["is_beacon"], bool) and isinstance(r["scores"], dict)
    assert (records[0]["brand"], records[0]["product"], records[0]["queue"], records[0]["is_beacon"]) == (
        "Acme",
        "Acme Cloud",
        "support",
        True,
    )
    assert (records[1]["brand"], records[1]["queue"], records[1]["is_beacon"]) == ("Acme", "advocacy", False)
    assert (records[2]["brand"], records[2]["product"], records[2]["queue"], records[2]["is_beacon"]) == (
        None,
        None,
        "none",
        False,
    )


def test_cli_classify_reports_bad_lines_and_goes_on(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = write_config(rss_source_config({}))
    stdin = (
        '{"id": 1, "text": "Acme is down"}\nnot json\n[1, 2]\n{"id": 4, "text": 5}\n{"id": 5, "text": "Acme rocks"}\n'
    )
    code, out, err = cli("classify", "--config", str(path), stdin=stdin, monkeypatch=monkeypatch, capsys=capsys)
    assert code == EXIT_ERROR
    records = [json.loads(line) for line in out.splitlines()]
    assert [r.get("id") for r in records] == [1, None, None, None, 5]
    assert [r.get("line") for r in records[1:4]] == [2, 3, 4]
    assert err.count("beacons: classify: line") == 3


def test_cli_config_error_exits_2_naming_the_key(write_config: WriteConfig, capsys: Any) -> None:
    path = write_config({"sources": [{"id": "a", "kind": "rss", "url": "https://a.example.org/f", "interval": "soon"}]})
    for command in (["run", "--once"], ["sources"], ["queue", "list"], ["classify"]):
        code, _, err = cli(*command, "--config", str(path), capsys=capsys)
        assert code == EXIT_CONFIG, command
        assert 'sources[0].interval: expected a duration like 5m, got "soon"' in err


def test_cli_run_without_sources_exits_2(write_config: WriteConfig, capsys: Any) -> None:
    code, _, err = cli("run", "--config", str(write_config({"sources": []})), "--once", capsys=capsys)
    assert code == EXIT_CONFIG
    assert "no sources configured" in err


def test_cli_config_from_env(
    feed_server: FeedServer, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    feed_server.add("/good.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    monkeypatch.setenv(
        "BEACONS_CONFIG", str(write_config(rss_source_config({"from-env": feed_server.url("/good.xml")})))
    )
    code, out, _ = cli("sources", "--format", "json", capsys=capsys)
    assert code == EXIT_OK
    assert [r["id"] for r in json.loads(out)] == ["from-env"]


def test_cli_no_command_prints_help(capsys: Any) -> None:
    code, out, _ = cli(capsys=capsys)
    assert code == EXIT_OK
    for name in ("run", "queue", "classify", "sources", "demo"):
        assert name in out


def _subprocess(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning"}
    env.pop("BEACONS_CONFIG", None)
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, check=False, **kw)


def test_cli_demo_works_offline(tmp_path: Path, capsys: Any) -> None:
    code, out, err = cli("demo", "--format", "json", "--database", str(tmp_path / "demo.db"), capsys=capsys)
    assert code == EXIT_OK
    queues = json.loads(out)
    assert set(queues) == {"support", "advocacy", "none"}
    assert queues["support"] and queues["advocacy"]
    assert all(set(b) >= QUEUE_FIELDS for q in queues.values() for b in q)
    assert "second cycle: 6 not modified, 0 new" in err


def test_cli_daemon_py_once_end_to_end(
    feed_server: FeedServer, write_config: WriteConfig, db_path: Path, tmp_path: Path
) -> None:
    feed_server.add("/good.xml", Resource(texts_feed(SUPPORT_TEXTS)))
    path = write_config(rss_source_config({"good": feed_server.url("/good.xml")}, logging={"format": "json"}))
    proc = _subprocess([sys.executable, str(REPO / "daemon.py"), "--config", str(path), "--once"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split()[:4] == ["good", "ok", "3", "3"]
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    polled = [e for e in events if e["event"] == "source.polled"]
    assert polled and polled[0]["source"] == "good" and polled[0]["new"] == 3
    import sqlite3

    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT COUNT(*) FROM mentions").fetchone()[0] == 3
    conn.close()


def test_cli_classify_with_a_missing_model_is_a_one_line_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"brands: [{{name: Acme}}]\nclassifier: {{model: {tmp_path / 'no-model'}}}\n", encoding="utf-8")
    proc = _subprocess(
        [sys.executable, "-m", "beacons", "classify", "-c", str(cfg)], input='{"id": 1, "text": "Acme broke"}\n'
    )
    assert proc.returncode == EXIT_CONFIG
    assert "Traceback" not in proc.stderr
    assert "classifier.model: no trained model at" in proc.stderr


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_cli_export_into_a_closed_pipe_exits_quietly(tmp_path: Path, fmt: str) -> None:
    from helpers_queue import make_config, mention, seed

    db = tmp_path / "many.db"
    # More rows than a pipe buffer (64 KiB) holds, so the writer is still writing when the reader leaves.
    long_text = "RouterX from Acme is broken again after the update, it drops wifi every night. " * 8
    seed(
        make_config(db),
        [
            mention("blog", f"user{i}", f"Acme RouterX down #{i}", long_text, f"https://x.example/{i}")
            for i in range(200)
        ],
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"brands: [{{name: Acme}}]\nclassifier: {{model: rules}}\ndatabase: {db}\n", encoding="utf-8")
    env = {**os.environ}
    env.pop("BEACONS_CONFIG", None)
    # The reader takes one byte and leaves, as `| head -c 1` does; the writer then meets a closed pipe.
    with subprocess.Popen(
        [sys.executable, "-m", "beacons", "queue", "export", "--format", fmt, "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(1)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
    assert code in (EXIT_OK, 141)


@pytest.mark.parametrize("limit", ["0", "-5", "²", "abc", "10001"])
def test_cli_queue_list_refuses_a_bad_limit(limit: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        main(["queue", "list", "--limit", limit])
    assert info.value.code == 2
    assert "--limit: expected a whole number from 1 to 10000" in capsys.readouterr().err
