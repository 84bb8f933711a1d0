"""`beacons sources test ID` and `beacons sources add KIND ...` (issue 15), against loopback servers and a temp config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_search import ACME_YAML, SPECS, FixtureSite, source_yaml

from beacons import cli
from beacons.config import load_config
from beacons.feedserver import FeedServer

COMMENTED = """\
# Acme's listening config: keep these comments
database: {database}   # the SQLite file

brands:
  - name: Acme   # the company
    aliases: [Acme Corp]
    products:
      - name: RouterX
        aliases: [RX-200]

sources:
  # the status page, read slowly
  - id: acme-status
    kind: rss
    url: https://status.acme.example/history.rss   # keep this one
    interval: 15m   # slow page

# rules keep the test fast and offline
classifier:
  model: rules
"""


def _config(tmp_path: Path, sources: list[dict[str, Any]]) -> Path:
    path = tmp_path / "config.yaml"
    data = {"database": str(tmp_path / "beacons.db"), "brands": [ACME_YAML], "sources": sources}
    data["classifier"] = {"model": "rules"}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_sources_test_previews_every_kind_and_stores_nothing(
    kind: str, feed_server: FeedServer, tmp_path: Path, capsys: Any
) -> None:
    spec = SPECS[kind]
    site = FixtureSite(feed_server, spec)
    path = _config(tmp_path, [source_yaml(spec, site.base_url)])
    code, out, err = _run(capsys, "sources", "test", f"{kind}-test", "--config", str(path), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    expected = spec.expected("page1") if kind != "rss" else None
    assert report["source"] == f"{kind}-test" and report["kind"] == kind
    if expected is not None:
        assert [m["url"] for m in report["mentions"]] == [m["url"] for m in expected]
        assert [m["published_at"] for m in report["mentions"]] == [m["published_at"] for m in expected]
    assert report["entries"] == len(report["mentions"]) > 0
    for row in report["mentions"]:
        assert (row["brand"] is None) == (row["queue"] is None), "only a post naming a brand would be queued"
    assert len(site.requests) == 1, "one fetch, no paging back"
    assert not (tmp_path / "beacons.db").exists(), "sources test writes no database"


def test_sources_test_prints_brand_queue_and_no_brand_named(
    feed_server: FeedServer, tmp_path: Path, capsys: Any
) -> None:
    site = FixtureSite(feed_server, SPECS["json_api"])
    path = _config(tmp_path, [source_yaml(SPECS["json_api"], site.base_url, id="steam-reviews")])
    code, out, _ = _run(capsys, "sources", "test", "steam-reviews", "--config", str(path))
    assert code == 0
    assert out.splitlines()[0] == "steam-reviews (json_api): 3 entries, 2 name a brand, 0 skipped; nothing stored"
    blocks = out.split("\n\n")[1:]
    crash, _, deck = blocks
    assert "url:       https://steamcommunity.com/profiles/76561198054127723/recommended/2784470/" in crash
    assert "published: 2026-11-23T16:40:00+00:00" in crash
    assert "brand:     Acme / RouterX" in crash and "queue:     support (priority" in crash
    assert "brand:     no brand named" in deck and "queue:     not stored (no brand named)" in deck


def test_sources_test_reports_a_source_error_and_an_unknown_id(
    feed_server: FeedServer, tmp_path: Path, capsys: Any
) -> None:
    site = FixtureSite(feed_server, SPECS["hn_search"])
    site.serve_error(500)
    path = _config(tmp_path, [source_yaml(SPECS["hn_search"], site.base_url)])
    code, _, err = _run(capsys, "sources", "test", "hn_search-test", "--config", str(path))
    assert code == 1 and "hn_search-test: HTTPStatusError" in err and "500" in err
    code, _, err = _run(capsys, "sources", "test", "nope", "--config", str(path))
    assert code == 2 and "no source 'nope' in the config; configured sources: hn_search-test" in err


def test_sources_list_still_works_without_an_action(tmp_path: Path, capsys: Any) -> None:
    path = _config(tmp_path, [{"id": "blog", "kind": "rss", "url": "https://acme.example/feed"}])
    code, out, _ = _run(capsys, "sources", "--config", str(path), "--format", "json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["blog"]


def test_sources_add_keeps_comments_and_writes_a_source_that_loads(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "config.yaml"
    original = COMMENTED.format(database=tmp_path / "b.db")
    path.write_text(original, encoding="utf-8")
    code, out, err = _run(
        capsys,
        "sources",
        "add",
        "json_api",
        "url=https://store.steampowered.com/appreviews/2784470?json=1&filter=recent&cursor={cursor}",
        "items=reviews",
        "fields.id=recommendationid",
        "fields.text=review",
        "fields.published=timestamp_created",
        "next_page=cursor",
        "first_cursor=*",
        "max_pages=3",
        "--id",
        "steam-reviews",
        "--interval",
        "1h",
        "--config",
        str(path),
    )
    assert code == 0, err
    assert "added source steam-reviews (json_api)" in out and "beacons sources test steam-reviews" in out
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for line in original.splitlines():
        assert line in lines, f"lost: {line!r}"
    assert text.index("interval: 15m   # slow page") < text.index("id: steam-reviews") < text.index("# rules keep")
    source = load_config(path).source("steam-reviews")
    assert source is not None and source.interval == 3600
    assert source.options.fields == {"id": "recommendationid", "text": "review", "published": "timestamp_created"}
    assert source.options.max_pages == 3 and source.options.first_cursor == "*"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["json_api", "url=https://x.example/", "items=reviews[?", "fields.text=review", "fields.id=id"],
            r"sources[1].items: is not a valid JMESPath",
        ),
        (
            ["html_page", "url=https://x.example/", "items=li", "fields.title=h3 >> a", "fields.id=::attr(id)"],
            r"sources[1].fields.title: is not a valid CSS selector",
        ),
        (["rss", "url=https://x.example/", "intervall=5m"], "sources[1].intervall: unknown key"),
        (
            ["rss", "url=https://status.acme.example/history.rss", "--id", "acme-status"],
            "duplicate source id 'acme-status'",
        ),
        (["twitter", "query=acme"], "unknown source kind 'twitter'"),
        (["rss", "url"], "expected KEY=VALUE, got 'url'"),
    ],
)
def test_sources_add_refuses_an_invalid_source_and_changes_nothing(
    argv: list[str], message: str, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "config.yaml"
    original = COMMENTED.format(database=tmp_path / "b.db")
    path.write_text(original, encoding="utf-8")
    code, _, err = _run(capsys, "sources", "add", *argv, "--config", str(path))
    assert code == 2
    assert message in err
    assert path.read_text(encoding="utf-8") == original, "a refused source leaves the file as it was"


@pytest.mark.parametrize("tail", ["", "sources: []\n", "sources:\n"])
def test_sources_add_to_a_config_without_sources(tail: str, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"# mine\ndatabase: {tmp_path / 'b.db'}  # here\n{tail}", encoding="utf-8")
    code, _, err = _run(capsys, "sources", "add", "rss", "url=https://acme.example/feed", "--config", str(path))
    assert code == 0, err
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# mine\ndatabase: {tmp_path / 'b.db'}  # here\n")
    assert yaml.safe_load(text)["sources"] == [{"kind": "rss", "url": "https://acme.example/feed"}]
    assert "[" not in text.split("sources:", 1)[1], "a block list, not a flow one"


def test_sources_add_dry_run_prints_and_writes_nothing(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "config.yaml"
    original = COMMENTED.format(database=tmp_path / "b.db")
    path.write_text(original, encoding="utf-8")
    code, out, _ = _run(
        capsys,
        "sources",
        "add",
        "youtube_search",
        "query=RouterX",
        "token_env=YOUTUBE_API_KEY",
        "--dry-run",
        "--config",
        str(path),
    )
    assert code == 0
    assert yaml.safe_load(out)["sources"] == [
        {"kind": "youtube_search", "query": "RouterX", "token_env": "YOUTUBE_API_KEY"}
    ]
    assert "would add source youtube_search:RouterX" in out
    assert path.read_text(encoding="utf-8") == original


def test_sources_add_then_test_against_a_loopback_page(feed_server: FeedServer, tmp_path: Path, capsys: Any) -> None:
    site = FixtureSite(feed_server, SPECS["html_page"])
    path = tmp_path / "config.yaml"
    path.write_text(COMMENTED.format(database=tmp_path / "b.db"), encoding="utf-8")
    code, _, err = _run(
        capsys,
        "sources",
        "add",
        "html_page",
        f"url={site.base_url}/c/routerx",
        "items=ol.topic-list > li.topic",
        "fields.title=h3.topic-title a::text",
        "fields.url=h3.topic-title a::attr(href)",
        "fields.published=time::attr(datetime)",
        "--id",
        "acme-forum",
        "--config",
        str(path),
    )
    assert code == 0, err
    code, out, err = _run(capsys, "sources", "test", "acme-forum", "--config", str(path), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [m["title"] for m in report["mentions"]] == [m["title"] for m in SPECS["html_page"].expected("page1")]
    assert not (tmp_path / "b.db").exists()
