"""Nothing stranded, nothing surprising (issue 13 §3) in a real browser: Debian's Chromium through Playwright.

Tick two cards and claim them at once; a re-route needs a queue chosen and a click; a resolved beacon
is reopened from its page and a claimed one reassigned. Skipped, with the reason, only when
/usr/bin/chromium or the playwright package is missing (no browser is ever downloaded).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_queue import (
    TOKEN,
    fresh_logging,  # noqa: F401  (autouse: structlog writes to the current stdout)
    make_config,
    seed,
)

from beacons.config import Config
from beacons.storage import Storage
from beacons.web.server import WebServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WIFI, BILLING, GUEST = 3, 4, 5

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="the playwright package is not installed (pip install playwright)",
    ),
]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[WebServer, Config]]:
    config = make_config(tmp_path / "page.db", serve={"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 1})
    seed(config)
    server = WebServer(config)
    server.start(poll_interval=0.05)
    yield server, config
    server.stop()


def sign_in(page: Any, url: str, name: str) -> None:
    page.goto(url + "/")
    page.fill("input[name=name]", name)
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#board")


def test_web_browser_lifecycle_bulk_reroute_reopen_reassign(site: tuple[WebServer, Config]) -> None:
    from playwright.sync_api import expect, sync_playwright

    server, config = site
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        sign_in(page, server.url, "alice")
        expect(page.locator(f"#b{WIFI} .why")).to_contain_text("someone who needs help")

        # Bulk: tick two cards, press Claim in the bar above the queues.
        page.locator(f"#b{WIFI} input.pick").check()
        page.locator(f"#b{BILLING} input.pick").check()
        page.locator("#bulk").get_by_role("button", name="Claim").click()
        expect(page.locator(f"#b{WIFI} .chip.status")).to_have_text("claimed · alice")
        expect(page.locator(f"#b{BILLING} .chip.status")).to_have_text("claimed · alice")

        # No one-click queue change: Move with nothing chosen does nothing; choosing and pressing Move does.
        card = page.locator(f"#b{GUEST}")
        card.get_by_role("button", name="Move").click()
        expect(card.locator("select[name=queue]")).to_have_value("")
        card.locator("select[name=queue]").select_option("advocacy")
        card.get_by_role("button", name="Move").click()
        expect(page.locator("#h-advocacy").locator("xpath=..").locator(f"#b{GUEST}")).to_be_visible()

        # Reassign a claimed beacon from its page, then resolve and reopen it.
        page.goto(f"{server.url}/beacons/{WIFI}")
        page.locator("input[name=assignee]").fill("bob")
        page.get_by_role("button", name="Reassign").click()
        expect(page.locator(".chip.status").first).to_have_text("claimed · bob")
        page.locator(".card").get_by_role("button", name="Resolve").click()
        expect(page.locator(".chip.status").first).to_have_text("resolved · bob")
        page.locator(".card").get_by_role("button", name="Reopen").click()
        expect(page.locator(".chip.status").first).to_have_text("new")
        browser.close()
    with Storage(config.database) as store:
        actions = [
            r[0]
            for r in store.backend.read("SELECT action FROM beacon_events WHERE beacon_id = ? ORDER BY id", [WIFI]).rows
        ]
        guest = store.get_beacon(GUEST)
    assert actions == ["claim", "reassign", "resolve", "reopen"]
    assert guest is not None and (guest.queue, guest.team) == ("advocacy", "networking")
    assert problems == []
