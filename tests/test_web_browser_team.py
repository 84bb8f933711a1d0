"""Two people work the queue at once from the keyboard (issue 13 §3, §7): Debian's Chromium through Playwright.

alice and bob each sign in, in their own browser context. alice drives the board from the keyboard
(``?`` lists the keys, ``j``/``k`` move, ``c`` claims, ``r`` resolves, ``n`` writes a note, ``/`` searches),
bob's claim of the same beacon is refused, alice undoes from the message, bob takes it over and passes it
to alice, bob claims two cards at once, a saved reply is copied to the clipboard and recorded, and a post the
classifier sent to no queue is rescued.
Skipped, with the reason, only when /usr/bin/chromium or the playwright package is missing.

Regenerate the README screenshots: ``python tests/test_web_browser_team.py docs``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_queue import (
    TOKEN,
    config_data,
    fresh_logging,  # noqa: F401  (autouse: structlog writes to the current stdout)
    seed,
)

from beacons import queue as q
from beacons.config import Config, parse_config
from beacons.storage import Storage
from beacons.web.server import WebServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
OUTAGE, OUTAGE_TOO, WIFI, BILLING, GUEST, PRAISE = 1, 2, 3, 4, 5, 6
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
REPLIES = [{"name": "sorry", "text": "Hi {author}, sorry about your {product}! We are on it: {link}"}]
SECRET = "feed-token-s3cr3t-77"
SOURCES = [
    {"id": "status-watch", "kind": "rss", "url": "https://status.example/feed.xml", "interval": "5m"},
    {"id": "homenet-forum", "kind": "rss", "url": f"https://forum.example/latest.rss?token={SECRET}", "interval": "5m"},
    {"id": "hn-search", "kind": "hn_search", "interval": "10m"},
]

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


def make_config(database: Path) -> Config:
    data = config_data(database, serve={"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "refresh": 1})
    return parse_config(yaml.safe_dump({**data, "replies": REPLIES, "sources": SOURCES}), env={}, path="<test>")


def source_health(config: Config, now: datetime = NOW) -> None:
    """A healthy feed, and a broken one whose stored error quotes its token."""
    with Storage(config.database) as store:
        store.sync_sources(config.sources)
        with store.backend.transaction() as tx:
            tx.execute(
                "UPDATE sources SET last_status = 'ok', last_poll_at = ?, last_ok_at = ?, polls = 12 WHERE id = ?",
                [now, now, "status-watch"],
            )
        for _ in range(3):
            store.record_error(
                "homenet-forum", f"HTTPStatusError: 503 from https://forum.example/latest.rss?token={SECRET}", now=now
            )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[WebServer, Config]]:
    config = make_config(tmp_path / "page.db")
    seed(config)
    with Storage(config.database) as store:
        q.reroute(store, GUEST, "lena", "none")  # a real question the classifier would have missed
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


def watch(page: Any, problems: list[str]) -> None:
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "console",
        lambda m: (
            problems.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None
        ),
    )


def test_web_browser_team_keyboard_conflict_undo_reply_rescue_search(
    site: tuple[WebServer, Config], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    server, config = site
    problems: list[str] = []
    expect.set_options(timeout=15_000)  # a board redraws within serve.refresh (1 s), later on a loaded machine
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        ctx_a = browser.new_context(viewport={"width": 1440, "height": 900})
        ctx_a.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        ctx_b = browser.new_context(viewport={"width": 1440, "height": 900})
        alice, bob = ctx_a.new_page(), ctx_b.new_page()
        watch(alice, problems)
        watch(bob, problems)
        sign_in(alice, server.url, "alice")
        sign_in(bob, server.url, "bob")

        # ? shows the keys; Escape closes them.
        alice.keyboard.press("?")
        expect(alice.locator("#keys")).to_be_visible()
        expect(alice.locator("#keys")).to_contain_text("claim it")
        alice.screenshot(path=str(tmp_path / "queue-keys.png"))
        alice.keyboard.press("Escape")
        expect(alice.locator("#keys")).to_be_hidden()

        # j selects the first card, j/k move; c claims the selected one.
        cards = alice.locator("#board .card")
        first, second = cards.nth(0).get_attribute("data-id"), cards.nth(1).get_attribute("data-id")
        alice.keyboard.press("j")
        expect(alice.locator("#board .card.is-current")).to_have_attribute("data-id", str(first))
        alice.keyboard.press("j")
        expect(alice.locator("#board .card.is-current")).to_have_attribute("data-id", str(second))
        alice.keyboard.press("k")
        expect(alice.locator("#board .card.is-current")).to_have_attribute("data-id", str(first))
        # bob starts a note on the same card: while he types, his board does not redraw, so it stays stale.
        bob.locator(f"#b{first} details.card-note summary").click()
        bob.locator(f"#b{first} details.card-note textarea").fill("checking their firmware")
        expect(bob.locator(f"#b{first} details.card-note textarea")).to_be_focused()
        alice.keyboard.press("c")
        expect(alice.locator(f"#b{first} .chip.status")).to_have_text("claimed · alice")
        expect(alice.locator("#toast")).to_contain_text(f"Claimed #{first}")

        # bob, on his stale page, presses Claim on the same card: refused, and his board shows who has it.
        bob.locator(f"#b{first}").get_by_role("button", name="Claim").click()
        expect(bob.locator("#toast")).to_contain_text("already claimed by alice")
        expect(bob.locator(f"#b{first} .chip.status")).to_have_text("claimed · alice")

        # alice undoes from the message; bob claims it; alice's undo of a later action of hers is refused.
        alice.locator("#toast").get_by_role("button", name="Undo").click()
        expect(alice.locator(f"#b{first} .chip.status")).to_have_text("new")
        bob.reload()
        bob.locator(f"#b{first}").get_by_role("button", name="Claim").click()
        expect(bob.locator(f"#b{first} .chip.status")).to_have_text("claimed · bob")

        # bob passes it to alice from its page; alice's board shows it as hers once it refreshes.
        bob.goto(f"{server.url}/beacons/{first}")
        bob.locator("input[name=assignee]").fill("alice")
        bob.get_by_role("button", name="Reassign").click()
        expect(bob.locator(".chip.status").first).to_have_text("claimed · alice")
        expect(alice.locator(f"#b{first} .chip.status")).to_have_text("claimed · alice")  # live refresh

        # Bulk: bob ticks two advocacy cards and claims them at once; alice's board follows.
        bob.goto(server.url + "/")
        bob.locator(f"#b{PRAISE} input.pick").check()
        bob.locator("#b7 input.pick").check()
        bob.locator("#bulk").get_by_role("button", name="Claim").click()
        expect(bob.locator(f"#b{PRAISE} .chip.status")).to_have_text("claimed · bob")
        expect(alice.locator("#b7 .chip.status")).to_have_text("claimed · bob")

        # r resolves the selected card (the current card survives the refresh).
        alice.reload()
        alice.keyboard.press("j")
        alice.keyboard.press("j")
        target = alice.locator("#board .card.is-current").get_attribute("data-id")
        alice.keyboard.press("r")
        expect(alice.locator("#toast")).to_contain_text(f"Resolved #{target}")

        # n opens the note box of the selected card and focuses it.
        alice.reload()
        alice.keyboard.press("j")
        noted = alice.locator("#board .card.is-current").get_attribute("data-id")
        alice.keyboard.press("n")
        box = alice.locator(f"#b{noted} details.card-note textarea")
        expect(box).to_be_focused()
        box.fill("called them back")
        alice.locator(f"#b{noted} details.card-note").get_by_role("button", name="Add note").click()
        expect(alice.locator(f"#b{noted} details.card-note")).not_to_have_attribute("open", "")

        # A saved reply: copied to the clipboard and recorded.
        card = alice.locator(f"#b{WIFI}")
        card.locator("details.replies summary").click()
        card.get_by_role("button", name="Copy “sorry”").click()
        expect(alice.locator("#toast")).to_contain_text("Copied reply sorry")
        copied = alice.evaluate("navigator.clipboard.readText()")
        assert (
            copied
            == "Hi dbrennan, sorry about your RouterX! We are on it: https://forum.example/t/routerx-drops-wifi/4811"
        )
        expect(card.locator("a.original")).to_have_attribute("href", "https://forum.example/t/routerx-drops-wifi/4811")

        # / focuses the search box; a search narrows the board.
        alice.keyboard.press("/")
        expect(alice.locator("input[name=q]")).to_be_focused()
        alice.keyboard.type("RouterX wifi")
        alice.keyboard.press("Enter")
        alice.wait_for_url("**q=RouterX*")
        expect(alice.locator("#board .card")).to_have_count(1)
        expect(alice.locator(f"#b{WIFI}")).to_be_visible()

        # Rescue from Not queued: bob says it is support.
        bob.goto(server.url + "/?view=none")
        bob.locator(f"#b{GUEST}").get_by_role("button", name="This is support").click()
        expect(bob.locator(f"#b{GUEST}")).to_have_count(0)
        bob.goto(server.url + "/")
        expect(bob.locator(f"#h-support ~ #b{GUEST}")).to_be_visible()
        alice.goto(server.url + "/")
        alice.screenshot(path=str(tmp_path / "queue-page.png"))
        browser.close()

    with Storage(config.database) as store:
        first_history = [(e.actor, e.action) for e in q.history(store, int(str(first)))]
        notes = [n["text"] for n in q.get_detail(store, WIFI).notes]  # type: ignore[union-attr]
        noted_notes = [n["text"] for n in q.get_detail(store, int(str(noted))).notes]  # type: ignore[union-attr]
        guest = store.get_beacon(GUEST)
    assert first_history[:4] == [("alice", "claim"), ("alice", "undo"), ("bob", "claim"), ("bob", "reassign")]
    assert "replied with template sorry" in notes and "called them back" in noted_notes
    assert guest is not None and guest.queue == "support"
    assert problems == []


def test_web_browser_team_sources_page(site: tuple[WebServer, Config], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    server, config = site
    source_health(config)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 700})
        watch(page, problems)
        sign_in(page, server.url, "lena")
        page.get_by_role("link", name="Sources").click()
        rows = page.locator(".sources-table tbody tr")
        expect(rows.first).to_have_id("src-homenet-forum")  # broken first
        expect(rows.first).to_have_class("broken")
        expect(rows.first.locator(".backoff")).to_have_text("backing off: 3 failed polls in a row")
        assert SECRET not in page.content()
        page.screenshot(path=str(tmp_path / "sources-page.png"))
        blog = page.locator("#src-status-watch")
        blog.get_by_role("button", name="Pause").click()
        expect(blog.locator(".status")).to_have_text("paused")
        expect(blog.locator(".backoff")).to_have_text("paused by lena")
        blog.get_by_role("button", name="Resume").click()
        expect(blog.locator(".status")).to_have_text("ok")
        page.locator("#src-hn-search").get_by_role("button", name="Poll now").click()
        expect(page.locator("#src-hn-search")).to_be_visible()
        browser.close()
    with Storage(config.database) as store:
        paused, when = store.source_schedule("hn-search")
    assert not paused and when is not None
    assert problems == []


def take_screenshots(out: Path) -> None:
    """The README's pictures: the queue page, the keys (?) and the Sources page."""
    import tempfile

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(Path(tmp) / "shots.db")
        seed(config)
        source_health(config, datetime.now(UTC))  # a picture shows times against the real clock
        with Storage(config.database) as store:
            q.claim(store, WIFI, "alice")
            q.reroute(store, GUEST, "lena", "none")
        server = WebServer(config)
        server.start(poll_interval=0.05)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                sign_in(page, server.url, "alice")
                page.keyboard.press("j")
                page.screenshot(path=str(out / "queue-page.png"))
                page.keyboard.press("?")
                page.screenshot(path=str(out / "queue-keys.png"))
                page.keyboard.press("Escape")
                page.set_viewport_size({"width": 1440, "height": 520})
                page.goto(server.url + "/sources")
                page.screenshot(path=str(out / "sources-page.png"))
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    take_screenshots(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
