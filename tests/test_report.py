"""``beacons report`` (issue 14): the insights as Markdown, JSON and a self-contained HTML file opened in Chromium."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_insights import seed
from helpers_queue import config_data
from test_web_browser import CHROMIUM, launch

from beacons.cli import main
from beacons.storage import Storage

ROUTING = {"sla": {"support": "2h", "advocacy": "1d"}}
RANGE = ["--since", "2026-11-20", "--until", "2026-11-22"]
HAS_BROWSER = Path(CHROMIUM).exists() and importlib.util.find_spec("playwright") is not None


@pytest.fixture
def config_path(tmp_path: Path, database: str) -> Iterator[Path]:
    with Storage(database) as store:
        seed(store)
    data = config_data(database, routing=ROUTING)
    data["serve"] = {"public_url": "https://beacons.example.com", "tokens": ["report-test-token-0123456789"]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    yield path


def run(*args: str) -> int:
    return main(list(args))


def test_report_json_has_the_pages_figures(config_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "week.json"
    assert run("report", "--config", str(config_path), *RANGE, "--format", "json", "--out", str(out)) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["volume"]["queues"] == {"support": [2, 1, 1], "advocacy": [1, 2, 0], "none": [1, 1, 0]}
    assert report["response"]["overall"]["claim_median_s"] == 2700.0
    assert report["response"]["overall"]["sla_breaches"] == 3


def test_report_markdown_tables_and_summary(config_path: Path, capsys: Any) -> None:
    assert run("report", "--config", str(config_path), *RANGE, "--brand", "Acme") == 0
    text = capsys.readouterr().out
    assert text.startswith("# beacons insights: 2026-11-20 00:00 – 2026-11-23 00:00 UTC")
    assert "- 9 posts; 4 support beacons (1 in the period before)" in text
    assert "- negative: 38 % (-12.5 pp)" in text
    assert "- page: https://beacons.example.com/insights" in text
    assert "| 2026-11-20T00:00:00+00:00 | 2 | 1 | 1 | 4 |" in text
    assert (
        "| intent | bug_outage | 3 | 0 | [queue](https://beacons.example.com/?queue=support&intent=bug_outage" in text
    )


def test_report_bad_range_names_the_option(config_path: Path, capsys: Any) -> None:
    assert run("report", "--config", str(config_path), "--since", "last week") == 1
    assert "since: expected a date" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BROWSER, reason=f"{CHROMIUM} or the playwright package is missing")
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_report_html_is_self_contained_and_draws_in_chromium(config_path: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    out = tmp_path / "week.html"
    assert run("report", "--config", str(config_path), *RANGE, "--format", "html", "--out", str(out)) == 0
    html = out.read_text(encoding="utf-8")
    assert "<script src" not in html and "<link" not in html and "http://" not in html.split("<body>")[0]
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(out.as_uri())
        expect(page.locator("#insights")).to_have_attribute("data-ready", "1")
        for chart in ("volume", "sentiment", "backlog", "sources"):
            expect(page.locator(f"figure[data-chart={chart}]")).to_have_attribute("data-drawn", "1")
        assert page.get_attribute("figure[data-chart=volume]", "data-total") == "9"
        rows = page.eval_on_selector_all(
            "table[data-table=volume] tbody tr", "rows => rows.map(r => r.cells[1].textContent.trim())"
        )
        assert rows == ["2", "1", "1"]
        page.screenshot(path=str(tmp_path / "report.png"))
        browser.close()
    assert problems == []
    assert requests == [out.as_uri()]  # nothing fetched: the file carries everything


def take_screenshot(out: Path) -> None:
    """docs/report.png: the HTML report of 30 days of bench/insights.py's seeding, opened in Chromium."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import insights as bench  # type: ignore[import-not-found]

    folder = Path(tempfile.mkdtemp(prefix="beacons-report-"))
    db = str(folder / "report.db")
    Storage(db).close()
    bench.seed(db, mentions=6000, beacons=2400, rng=random.Random(3))
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(config_data(db, routing=ROUTING)), encoding="utf-8")
    html = folder / "report.html"
    since = (bench.NOW - timedelta(days=7)).date().isoformat()
    main(
        [
            "report",
            "--config",
            str(config),
            "--since",
            since,
            "--until",
            bench.NOW.date().isoformat(),
            "--format",
            "html",
            "--tz",
            "Europe/Berlin",
            "--out",
            str(html),
        ]
    )
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin")
        page = context.new_page()
        page.goto(html.as_uri())
        page.wait_for_selector("#insights[data-ready='1']")
        page.screenshot(path=str(out))
        browser.close()


if __name__ == "__main__":
    take_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/report.png"))
