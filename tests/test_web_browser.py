"""The team's page in a real browser (issue 5): Debian's Chromium, headless, driven by Playwright.

Sign in, see a beacon, claim and resolve it, watch a new beacon arrive by
itself, and check that a hostile post (``<script>``, ``<img onerror>``) shows as
text. Skipped, with the reason, only when /usr/bin/chromium or the playwright
package is missing (``.ci/run`` installs both; no browser is ever downloaded).

Regenerate the README screenshot: ``python tests/test_web_browser.py docs/queue-page.png``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_db import one, scalar
from helpers_queue import (
    HOSTILE_AUTHOR,
    HOSTILE_TITLE,
    TOKEN,
    fresh_logging,  # noqa: F401  (autouse: structlog writes to the current stdout)
    hostile_mention,
    make_config,
    mention,
    seed,
)

from beacons.config import Config
from beacons.queue import claim
from beacons.store import Store
from beacons.web.server import WebServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIFI = 3

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


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[WebServer, Config, int]]:
    config = make_config(tmp_path / "page.db", serve={"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 1})
    seed(config)
    seed(config, [hostile_mention(minutes_ago=1)])
    store = Store(config.database)
    hostile_id = int(scalar(store, "SELECT MAX(id) FROM beacons"))
    store.close()
    server = WebServer(config)
    server.start(poll_interval=0.05)
    yield server, config, hostile_id
    server.stop()


def sign_in(page: Any, url: str, name: str = "alice") -> None:
    page.goto(url + "/")
    page.fill("input[name=name]", name)
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#board")


def test_web_browser_work_the_queue(site: tuple[WebServer, Config, int], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    server, config, hostile_id = site
    problems: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        # Chromium logs every 4xx as "Failed to load resource" (the 401 sign-in page, the 409 below): expected.
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, server.url)

        # Both queues side by side, the beacon visible with its details.
        expect(page.locator("#h-support")).to_contain_text("Support")
        expect(page.locator("#h-advocacy")).to_contain_text("Advocacy")
        card = page.locator(f"#b{WIFI}")
        expect(card).to_contain_text("RouterX drops wifi every night")
        expect(card.locator(".source")).to_have_text("homenet-forum")
        expect(card.locator(".author")).to_have_text("dbrennan")
        expect(card.locator("mark").first).to_have_text("RouterX")
        expect(card.locator(".title a")).to_have_attribute("rel", "noopener noreferrer")
        expect(card.locator("time")).to_contain_text("min ago")

        # Claim, then resolve: the buttons post with the CSRF token and the board refreshes.
        card.get_by_role("button", name="Claim").click()
        expect(card.locator(".chip.status")).to_have_text("claimed · alice")
        card.get_by_role("button", name="Resolve").click()
        expect(page.locator(f"#b{WIFI}")).to_have_count(0)  # the default view shows open beacons
        store = Store(config.database)
        beacon = store.get_beacon(WIFI)
        assert beacon is not None and (beacon.status, beacon.assignee) == ("resolved", "alice")

        # Bob, in his own browser, claims #5 first; Alice's page is stale (its refresh is held back) and
        # her Claim gets the server's answer: already claimed by bob.
        page.route("**/api/version", lambda route: route.abort())
        bob = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        sign_in(bob, server.url, "bob")
        bob.locator("#b5").get_by_role("button", name="Claim").click()
        expect(bob.locator("#b5 .chip.status")).to_have_text("claimed · bob")
        page.locator("#b5").get_by_role("button", name="Claim").click()
        expect(page.locator("#toast")).to_contain_text("already claimed by bob")
        expect(page.locator("#b5 .chip.status")).to_have_text("claimed · bob")
        page.unroute("**/api/version")

        # A new beacon arrives: the page shows it without a reload.
        seed(
            config,
            [
                mention(
                    "status-watch",
                    "newcomer",
                    "Acme Cloud login broken",
                    "I can't log in to Acme Cloud since this morning, the login page is broken. How do I fix this?",
                    "https://social.example/@newcomer/9",
                    minutes_ago=0,
                )
            ],
        )
        newest, queue = one(store, "SELECT id, queue FROM beacons ORDER BY id DESC LIMIT 1")  # type: ignore[misc]
        store.close()
        assert queue == "support"
        expect(page.locator(f"#b{newest}")).to_be_visible(
            timeout=60_000
        )  # a hang guard: the page refreshes every second
        expect(page.locator(f"#b{newest}")).to_have_class(re.compile(r"\bis-new\b"))

        # The hostile post is text: no script ran, no image or svg element, no javascript: link.
        hostile = page.locator(f"#b{hostile_id}")
        expect(hostile.locator(".title")).to_have_text(HOSTILE_TITLE)
        expect(hostile.locator(".author")).to_have_text(HOSTILE_AUTHOR)
        expect(hostile.locator(".excerpt")).to_contain_text('<img src=x onerror="window.__pwned=2">')
        assert hostile.locator("img, svg, script, b, a[href^='javascript']").count() == 0
        assert hostile.locator(".title a").count() == 0
        assert page.evaluate("window.__pwned") is None
        page.goto(f"{server.url}/beacons/{hostile_id}")
        expect(page.locator(".fulltext")).to_contain_text("<img src=x")
        assert page.evaluate("window.__pwned") is None

        page.screenshot(path=str(tmp_path / "queue-page.png"), full_page=False)
        browser.close()
    assert problems == []  # no CSP violation, no script error


def take_screenshot(out: Path) -> None:
    """The README picture: realistic beacons, one claimed, one thread of two posts."""
    import tempfile

    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="beacons-shot-"))
    config = make_config(folder / "shot.db", serve={"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 15})
    seed(config)
    store = Store(config.database)
    claim(store, 4, "maria")
    store.close()
    server = WebServer(config)
    server.start(poll_interval=0.05)
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
            sign_in(page, server.url, "maria")
            page.screenshot(path=str(out))
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("BEACONS_CONFIG", "")
    take_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/queue-page.png"))
