"""The inbox in a real browser (issue 13 §2): rescue a post from Not queued, search, the views and the SLA mark.

Debian's Chromium, headless, driven by Playwright, as ``test_web_browser.py``
(skipped with the reason when Chromium or playwright is missing).

Regenerate the README screenshots: ``python tests/test_inbox_browser.py docs``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers_db import write
from helpers_queue import (
    ROUTING,
    TOKEN,
    fresh_logging,  # noqa: F401  (autouse: structlog writes to the current stdout)
    make_config,
    mention,
    seed,
)
from test_web_browser import launch, pytestmark, sign_in  # noqa: F401  (the same skips and browser)

from beacons.config import Config
from beacons.queue import add_note, claim
from beacons.store import Store
from beacons.web.server import WebServer

BILLING, GUEST, NOT_QUEUED = 4, 5, 9
SERVE = {"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 1}
ROUTING_SLA = {**ROUTING, "sla": {"support": "2h", "advocacy": "1d", "teams": {"networking": "30m"}}}


def _site(folder: Path) -> Config:
    config = make_config(folder / "inbox.db", serve=SERVE, routing=ROUTING_SLA)
    seed(config)
    now = datetime.now(UTC)
    seed(
        config,
        [
            mention(
                "news-wire",
                "wire",
                "Acme posts its quarterly results",
                "Acme posts its quarterly results on Tuesday; the RouterX line grew, analysts expect flat revenue.",
                "https://news.example/acme-q3",
            )
        ],
    )
    with Store(config.database) as store:
        for beacon_id in range(1, 10):  # beacon n arrived n hours ago: some are past their SLA
            write(
                store, "UPDATE beacons SET created_at = ? WHERE id = ?", [now - timedelta(hours=beacon_id), beacon_id]
            )
        claim(store, BILLING, "maria")
        add_note(store, GUEST, "maria", "Asked for the wizard log; suspect the 2.4.1 firmware")
    return config


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[WebServer, Config]]:
    config = _site(tmp_path)
    server = WebServer(config)
    server.start(poll_interval=0.05)
    yield server, config
    server.stop()


def test_inbox_browser_rescue_search_and_views(site: tuple[WebServer, Config], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    server, config = site
    problems: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        # Chromium logs every 4xx as "Failed to load resource" (the 401 sign-in page): expected.
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, server.url, "maria")

        # The SLA mark on a beacon past its limit (GUEST: networking, 30m; it has waited 5h).
        expect(page.locator(f"#b{GUEST} .chip.waited")).to_contain_text("SLA breached · waited 5h")

        # Not queued: the post the classifier sent nowhere, rescued with one click.
        page.get_by_role("link", name="Not queued").click()
        card = page.locator(f"#b{NOT_QUEUED}")
        expect(card).to_contain_text("quarterly results")
        page.screenshot(path=str(tmp_path / "inbox-not-queued.png"))
        card.get_by_role("button", name="This is support").click()
        expect(page.locator(f"#b{NOT_QUEUED}")).to_have_count(0)
        page.get_by_role("link", name="All open").click()
        expect(page.locator(f"#h-support ~ #b{NOT_QUEUED}")).to_have_count(1)

        # Search finds a word of a note; the counts follow it.
        page.fill("input[name=q]", "firmware")
        page.press("input[name=q]", "Enter")
        expect(page.locator(".card")).to_have_count(2)  # GUEST by its note, WIFI by its text
        expect(page.locator("#h-support .counts")).to_have_text("2 new · 0 claimed")
        page.screenshot(path=str(tmp_path / "inbox-search.png"))

        # Mine: what maria holds.
        page.goto(server.url + "/?view=mine")
        expect(page.locator(".card")).to_have_count(1)
        expect(page.locator(f"#b{BILLING}")).to_be_visible()
        browser.close()
    with Store(config.database) as store:
        assert store.get_beacon(NOT_QUEUED).queue == "support"  # type: ignore[union-attr]
    assert problems == []  # no CSP violation, no script error


def take_screenshots(out: Path) -> None:
    """The README pictures of the inbox: Not queued, and a search."""
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="beacons-inbox-shot-"))
    config = _site(folder)
    server = WebServer(config)
    server.start(poll_interval=0.05)
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page: Any = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
            sign_in(page, server.url, "maria")
            page.goto(server.url + "/?view=none")
            page.screenshot(path=str(out / "inbox-not-queued.png"))
            page.goto(server.url + "/?q=firmware")
            page.screenshot(path=str(out / "inbox-search.png"))
            page.goto(server.url + "/")
            page.screenshot(path=str(out / "inbox-sla.png"))
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("BEACONS_CONFIG", "")
    take_screenshots(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
