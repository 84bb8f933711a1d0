"""The insights page in a real browser (issue 14): Debian's Chromium, headless, driven by Playwright.

Charts present and drawn, their numbers the API's, dates in the viewer's time zone, switching the range
and a filter, downloading a CSV, at desktop and phone widths, with no CSP violation or script error.
Skipped, with the reason, only when /usr/bin/chromium or the playwright package is missing.

Regenerate the README screenshots: ``python tests/test_insights_browser.py docs``.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers_clock import FakeClock
from helpers_insights import NOW, seed
from helpers_queue import ROUTING as QUEUE_ROUTING
from helpers_queue import TOKEN, make_config
from test_web_browser import CHROMIUM, launch

from beacons.storage import Storage
from beacons.web.server import WebServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="the playwright package is not installed"
    ),
]
SERVE = {"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 60}
ROUTING = {**QUEUE_ROUTING, "sla": {"support": "2h", "advocacy": "1d"}}  # teams: networking
RANGE = "range=custom&since=2026-11-20&until=2026-11-22"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[WebServer]:
    config = make_config(tmp_path / "insights.db", serve=SERVE, routing=ROUTING)
    with Storage(config.database) as store:
        seed(store)
    server = WebServer(config, clock=FakeClock(NOW).time)
    server.start(poll_interval=0.05)
    try:
        yield server
    finally:
        server.stop()


def sign_in(page: Any, url: str, next_path: str) -> None:
    page.goto(f"{url}/login?next={next_path}")
    page.fill("input[name=name]", "lena")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")


def _watch(page: Any, problems: list[str]) -> None:
    page.on(
        "console",
        lambda m: (
            problems.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))


def _table(page: Any, chart: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"table[data-table={chart}] tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
    )


def _api(page: Any) -> dict[str, Any]:
    return page.evaluate(
        "() => fetch(document.getElementById('insights').dataset.api, {credentials: 'same-origin'}).then(r => r.json())"
    )


def test_insights_browser_charts_tables_ranges_filters_and_csv(site: WebServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(
            viewport={"width": 1440, "height": 900}, timezone_id="Europe/Berlin", accept_downloads=True
        )
        page = context.new_page()
        _watch(page, problems)
        sign_in(page, site.url, f"/insights?{RANGE.replace('&', '%26')}")
        # The page asks again in the viewer's zone: day buckets are Berlin days.
        page.wait_for_url("**tz=Europe%2FBerlin**")
        expect(page.locator("#insights")).to_have_attribute("data-ready", "1")
        api = _api(page)
        assert api["tz"] == "Europe/Berlin" and api["buckets"][0] == "2026-11-20T00:00:00+01:00"

        # Every time series is drawn (a canvas each), from the API's numbers.
        for chart in ("volume", "sentiment", "backlog", "sources"):
            figure = page.locator(f"figure[data-chart={chart}]")
            expect(figure).to_have_attribute("data-drawn", "1")
            assert figure.locator("canvas").count() >= 1
        volume = api["volume"]["queues"]
        assert page.get_attribute("figure[data-chart=volume]", "data-total") == str(api["volume"]["total"])
        assert page.get_attribute("figure[data-chart=backlog]", "data-total") == str(
            sum(n or 0 for n in api["response"]["backlog"]["open"])
        )
        # The x axis is labelled with the viewer's zone and the y axis with its unit.
        expect(page.locator("figure[data-chart=volume] .u-axis").first).to_be_visible()
        assert page.get_attribute("figure[data-chart=volume]", "data-axes") == "Day (Europe/Berlin) | posts"
        assert (
            page.get_attribute("figure[data-chart=sentiment]", "data-axes")
            == "Day (Europe/Berlin) | % of classified posts"
        )

        # The tables under the charts hold the same numbers as the API.
        rows = _table(page, "volume")
        assert [[int(c) for c in r[1:4]] for r in rows] == [
            [volume["support"][i], volume["advocacy"][i], volume["none"][i]] for i in range(len(api["buckets"]))
        ]
        response = _table(page, "response")
        assert response[0][:6] == ["all", "all", "7", "4", "2700.0", "10800.0"]
        page.screenshot(path=str(tmp_path / "insights.png"), full_page=True)

        # A CSV one click away, the same numbers again.
        with page.expect_download() as download:
            page.click("#panel-volume a.csv")
        text = Path(download.value.path()).read_text(encoding="utf-8")
        assert [[int(c) for c in r[1:4]] for r in list(csv.reader(io.StringIO(text)))[1:]] == [
            [volume["support"][i], volume["advocacy"][i], volume["none"][i]] for i in range(len(api["buckets"]))
        ]

        # A filter: the team's posts only (the form submits itself on change).
        page.select_option("select[name=team]", "networking")
        page.wait_for_url("**team=networking**")
        expect(page.locator("#insights")).to_have_attribute("data-ready", "1")
        filtered = _api(page)
        assert filtered["filters"]["team"] == "networking"
        assert [int(r[1]) for r in _table(page, "volume")] == filtered["volume"]["queues"]["support"]
        assert sum(filtered["volume"]["queues"]["support"]) == 3

        # Another range: the last 24 hours by hour.
        page.select_option("select[name=range]", "24h")
        page.wait_for_url("**range=24h**")
        expect(page.locator("#insights")).to_have_attribute("data-ready", "1")
        day = _api(page)
        assert day["bucket"] == "hour" and len(_table(page, "volume")) == len(day["buckets"]) >= 24

        # At 390 px wide the charts fit the screen.
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{site.url}/insights?{RANGE}&tz=Europe/Berlin")
        expect(page.locator("#insights")).to_have_attribute("data-ready", "1")
        box = page.locator("figure[data-chart=volume] canvas").first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(tmp_path / "insights-mobile.png"), full_page=False)
        context.close()
        browser.close()
    assert problems == []  # no CSP violation, no script error


def take_screenshots(out: Path) -> None:
    """The README pictures: 30 days of a busier database (bench/insights.py's seeding, at a small size)."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import insights as bench  # type: ignore[import-not-found]

    folder = Path(tempfile.mkdtemp(prefix="beacons-insights-"))
    config = make_config(folder / "shot.db", serve=SERVE, routing=ROUTING)
    Storage(config.database).close()
    bench.seed(config.database, mentions=6000, beacons=2400, rng=random.Random(3))
    server = WebServer(config, clock=FakeClock(bench.NOW).time)
    server.start(poll_interval=0.05)
    since = (bench.NOW - timedelta(days=30)).date().isoformat()
    query = f"range=custom&since={since}&until={bench.NOW.date().isoformat()}&tz=Europe/Berlin"
    try:
        with sync_playwright() as p:
            browser = launch(p)
            for name, size, full in (
                ("insights.png", {"width": 1280, "height": 900}, True),
                ("insights-mobile.png", {"width": 390, "height": 844}, False),
            ):
                context = browser.new_context(viewport=size, timezone_id="Europe/Berlin")
                page = context.new_page()
                sign_in(page, server.url, "/insights")
                page.goto(f"{server.url}/insights?{query}")
                page.wait_for_selector("#insights[data-ready='1']")
                page.screenshot(path=str(out / name), full_page=full)
                context.close()
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    take_screenshots(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
