"""Slack Block Kit bodies: untrusted post text cannot ping anyone or disguise a link; excerpts highlight the match."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers_alerts import Receiver, add_beacon, open_store, reset_logging  # noqa: F401

from beacons.alerts.config import AlertChannel, SpikeRule
from beacons.alerts.message import Segment, excerpt
from beacons.alerts.outbox import Outbox
from beacons.alerts.sender import ChannelSender
from beacons.alerts.slack import escape, link
from beacons.models import Match, MatchSpan

INJECTIONS = ["<!channel>", "<!here>", "<@U123>", "<https://evil.example|click>", "<!subteam^S1>", "<#C42>"]
PUBLIC = "https://beacons.example.org"


def mrkdwn_texts(node: Any) -> list[str]:
    """Every string Slack parses as mrkdwn in a message body."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            found.append(node["text"])
        for value in node.values():
            found += mrkdwn_texts(value)
    elif isinstance(node, list):
        for value in node:
            found += mrkdwn_texts(value)
    return found


def send_slack(tmp_path: Path, **beacon: Any) -> tuple[dict[str, Any], int]:
    store = open_store(tmp_path)
    beacon_id = add_beacon(store, ["slack"], **beacon)
    with Receiver() as r:
        chan = AlertChannel(kind="slack", url=r.url, name="slack", spikes=SpikeRule(enabled=False), timeout=2.0)

        async def go() -> None:
            sender = ChannelSender(chan, Outbox(store), public_url=PUBLIC)
            await sender.drain()
            await sender.aclose()

        asyncio.run(go())
        (req,) = r.requests
    assert req.headers["Content-Type"].startswith("application/json")
    return req.json, beacon_id


def test_alerts_slack_escapes_every_injection(tmp_path: Path) -> None:
    hostile = " ".join(INJECTIONS)
    body, beacon_id = send_slack(
        tmp_path,
        title=f"Acme RouterX {hostile}",
        text=f"Acme RouterX is down & so is <b>support</b> {hostile} {'x' * 3000}",
        author=f"mallory {hostile}",
        url="https://forum.example/t/1|click here>",
    )
    texts = [*mrkdwn_texts(body), body["text"]]
    assert len(texts) >= 8
    own_links = {
        f"<{PUBLIC}/beacons/{beacon_id}|Beacon #{beacon_id} in beacons>",
        "<https://forum.example/t/1%7Cclick%20here%3E|Original post>",
    }
    for text in texts:
        for inj in INJECTIONS:
            assert inj not in text
        rest = text.removeprefix("> ").replace("\n> ", "\n")  # our own quote markers
        for own in own_links:
            rest = rest.replace(own, "")
        assert "<" not in rest and ">" not in rest.replace("&gt;", ""), text
        assert not re.search(r"&(?!amp;|lt;|gt;)", rest), text  # every & is an entity we wrote
    assert "&lt;!channel&gt;" in json.dumps(body)
    assert any(own in t for t in texts for own in own_links)
    section = next(t for t in texts if t.startswith("> "))
    assert len(section) < 2000 and section.endswith("…")  # long posts are cut
    assert "*Acme*" in section and "*RouterX*" in section  # the match is highlighted


def test_alerts_slack_shows_the_evidence_passage_escaped_issue_12(tmp_path: Path) -> None:
    buried = "The Acme RouterX app <!channel> charged me twice & support never answered."
    text = "We spent a week by the sea, the weather was kind and the food was better. " * 6 + buried
    body, _ = send_slack(tmp_path, text=text, evidence=buried)
    why = [t for t in mrkdwn_texts(body) if t.startswith("*Why:*")]
    assert why == ["*Why:* _The Acme RouterX app &lt;!channel&gt; charged me twice &amp; support never answered._"]
    plain_body, _ = send_slack(tmp_path / "b")
    assert not any(t.startswith("*Why:*") for t in mrkdwn_texts(plain_body))  # no evidence, no section


def test_alerts_slack_body_has_the_issue_fields(tmp_path: Path) -> None:
    body, beacon_id = send_slack(tmp_path, author="sam", url="https://forum.example/t/9")
    flat = json.dumps(body)
    assert (
        body["blocks"][0]["type"] == "header" and "Support beacon: Acme / RouterX" in body["blocks"][0]["text"]["text"]
    )
    for label in ("*Queue*", "*Priority*", "*Brand / product*", "*Sentiment*", "*Author*", "*Source*"):
        assert label in flat
    assert f"{PUBLIC}/beacons/{beacon_id}" in flat and "https://forum.example/t/9" in flat
    assert body["unfurl_links"] is False
    assert len(body["blocks"]) <= 50 and len(body["blocks"][0]["text"]["text"]) <= 150


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ok.example/a?b=1&c=2", "<https://ok.example/a?b=1&amp;c=2|go>"),
        ("https://x.example/|<!channel>", "<https://x.example/%7C%3C!channel%3E|go>"),
        ("javascript:alert(1)", "go"),
        ("https://x.example/ space", "<https://x.example/%20space|go>"),
        (None, "go"),
    ],
)
def test_alerts_slack_link_only_wraps_safe_http_urls(url: str | None, expected: str) -> None:
    assert link(url, "go") == expected


def test_alerts_slack_escape_is_only_the_three_control_characters() -> None:
    assert escape("a & b < c > d 'e' \"f\"") == "a &amp; b &lt; c &gt; d 'e' \"f\""


def test_alerts_message_excerpt_centres_on_the_match_and_cuts() -> None:
    text = "filler " * 100 + "my Acme RouterX died " + "tail " * 100
    start = text.index("Acme")
    match = Match(
        "Acme",
        "RouterX",
        (
            MatchSpan(start, start + 4, "Acme", "Acme", None, "name"),
            MatchSpan(start + 5, start + 12, "RouterX", "Acme", "RouterX", "product"),
        ),
    )
    segs = excerpt(text, match, limit=120)
    joined = "".join(s.text for s in segs)
    assert joined.startswith("… ") and joined.endswith(" …") and len(joined) <= 125
    assert [s.text for s in segs if s.highlight] == ["Acme", "RouterX"]


def test_alerts_message_excerpt_finds_names_without_spans() -> None:
    segs = excerpt("Is the routerx from ACME any good?", None, brand="Acme", product="RouterX")
    assert [s for s in segs if s.highlight] == [Segment("routerx", True), Segment("ACME", True)]


@pytest.mark.parametrize(
    ("kind", "data", "header"),
    [
        (
            "source_health",
            {
                "source": "acme-blog",
                "state": "failing",
                "reason": "3 failed polls in a row",
                "consecutive_errors": 3,
                "last_error": "HTTP 500: <!channel> <@U123> server says hi",
                "since": "2026-11-23T10:00:00+00:00",
            },
            "Source acme-blog is failing",
        ),
        (
            "source_health",
            {"source": "acme-blog", "state": "recovered", "consecutive_errors": 0},
            "Source acme-blog recovered",
        ),
        (
            "incident",
            {
                "state": "open",
                "brand": "Acme",
                "product": "RouterX",
                "window": 3600,
                "count": 60,
                "mean": 1.2,
                "stddev": 0.8,
                "threshold": 5,
                "beacon_ids": [1],
            },
            "Incident: spike of support beacons for Acme / RouterX",
        ),
        (
            "incident",
            {
                "state": "ended",
                "brand": "Acme",
                "product": None,
                "window": 3600,
                "threshold": 5,
                "grouped": 12,
                "beacon_ids": [1],
            },
            "Incident over: Acme",
        ),
        (
            "digest",
            {"beacon_ids": [1], "window_start": None, "window_end": "2026-11-23T10:30:00+00:00"},
            "Digest: 1 beacon",
        ),
        ("test", {}, "beacons test alert"),
    ],
)
def test_alerts_slack_system_messages_are_escaped(kind: str, data: dict[str, Any], header: str) -> None:
    from beacons.alerts.message import BeaconCard, Event
    from beacons.alerts.slack import render

    hostile = BeaconCard(
        1,
        "support",
        "new",
        90,
        "Acme",
        "RouterX",
        None,
        "negative",
        -0.8,
        "t",
        (Segment("<!here> Acme", False),),
        "https://x.example/1",
        None,
        "<@U999>",
        "forum",
        None,
        None,
    )
    body = render(Event(f"{kind}-1-ops", kind, "ops", "2026-11-23T10:00:00+00:00", (hostile,), data), PUBLIC)
    assert header in body["blocks"][0]["text"]["text"]
    for text in [*mrkdwn_texts(body), body["text"]]:
        assert not any(inj in text for inj in INJECTIONS) and "<@U999>" not in text
    if kind == "incident" and data["state"] == "open":
        flat = json.dumps(body, ensure_ascii=False)
        assert "*60* support beacons in the last 1h" in flat and "…and 59 more" in flat


def test_alerts_slack_broadcast_words_in_post_text_notify_no_one(tmp_path: Path) -> None:
    shout = "@channel @here @everyone @Channel"
    body, _ = send_slack(tmp_path, title=f"Acme RouterX {shout}", text=f"Acme RouterX down {shout}", author="@here")
    payload = json.dumps(body, ensure_ascii=False)
    assert not re.search(r"@(channel|here|everyone)\b", payload, re.IGNORECASE), payload
    assert "@\u2060channel" in payload and "@\u2060everyone" in payload  # still readable as text
    objects: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                objects.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    assert objects and all(o.get("verbatim") is True for o in objects)


def test_alerts_slack_escape_neutralises_broadcasts_only_as_words() -> None:
    assert escape("mail me at ops@channelpartner.example") == "mail me at ops@channelpartner.example"
    assert escape("hey @here!") == "hey @\u2060here!"
