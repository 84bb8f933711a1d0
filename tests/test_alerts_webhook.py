"""Webhook bodies and signatures: the README's verification recipe works on what beacons really sends."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers_alerts import Received, Receiver, add_beacon, open_store, reset_logging  # noqa: F401

from beacons.alerts.config import AlertChannel, SpikeRule
from beacons.alerts.outbox import Outbox
from beacons.alerts.sender import ChannelSender
from beacons.alerts.webhook import sign, verify

DOC = Path(__file__).resolve().parent.parent / "README.md"
SECRET = "s3cret-signing-key-0123456789"


def readme_recipe(name: str = "verify_beacons_signature") -> Callable[..., Any]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("#### Verifying the signature") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code, "the README must show the verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "README snippet", "exec"), namespace)
    fn = namespace[name]
    assert callable(fn)
    return fn  # type: ignore[no-any-return]


def readme_verifier() -> Callable[..., bool]:
    return readme_recipe("verify_beacons_signature")


def send_one(tmp_path: Path) -> tuple[Received, int]:
    store = open_store(tmp_path)
    beacon_id = add_beacon(
        store,
        ["hook"],
        text="Acme RouterX lost all my settings after the update",
        team="networking",
        evidence="lost all my settings after the update",
    )
    with Receiver() as r:

        async def go() -> None:
            chan = AlertChannel(kind="webhook", url=r.url, name="hook", secret=SECRET, spikes=SpikeRule(enabled=False))
            sender = ChannelSender(chan, Outbox(store), public_url="https://beacons.example.org/")
            await sender.drain()
            await sender.aclose()

        asyncio.run(go())
        return r.requests[0], beacon_id


def test_alerts_webhook_readme_recipe_verifies_a_real_request(tmp_path: Path) -> None:
    verify_readme = readme_verifier()
    req, _ = send_one(tmp_path)
    header = req.headers["X-Beacons-Signature"]
    assert verify_readme(SECRET, req.body, header)
    assert verify(SECRET, req.body, header)
    assert not verify_readme(SECRET, req.body.replace(b"RouterX", b"RouterY", 1), header)  # tampered body
    assert not verify_readme("another-secret-0000000", req.body, header)
    t = int(time.time()) - 3600
    assert not verify_readme(SECRET, req.body, sign(SECRET, req.body, t))  # replayed an hour later


def test_alerts_webhook_body_matches_schema_v1(tmp_path: Path) -> None:
    req, beacon_id = send_one(tmp_path)
    body = req.json
    assert set(body) == {"schema", "id", "type", "channel", "created_at", "data"}
    assert (body["schema"], body["id"], body["type"], body["channel"]) == (
        "beacons.alert.v1",
        f"beacon-{beacon_id}-hook",
        "beacon",
        "hook",
    )
    assert req.headers["Idempotency-Key"] == body["id"] and req.headers["X-Beacons-Event"] == "beacon"
    b = body["data"]["beacon"]
    documented = {
        "id",
        "queue",
        "status",
        "priority",
        "brand",
        "product",
        "team",
        "sentiment",
        "sentiment_score",
        "title",
        "excerpt",
        "highlights",
        "evidence",
        "url",
        "link",
        "author",
        "source",
        "published_at",
        "created_at",
    }
    assert set(b) == documented
    # issue 12: the passage that decided the queue, with offsets into the post's title + body
    assert b["evidence"]["text"] == "lost all my settings after the update"
    full = "RouterX drops wifi\n\nAcme RouterX lost all my settings after the update"
    assert full[b["evidence"]["start"] : b["evidence"]["end"]] == b["evidence"]["text"]
    assert b["link"] == f"https://beacons.example.org/beacons/{beacon_id}" and b["team"] == "networking"
    for h in b["highlights"]:
        assert b["excerpt"][h["start"] : h["end"]] == h["text"]
    assert {h["text"] for h in b["highlights"]} == {"Acme", "RouterX"}
    doc = DOC.read_text(encoding="utf-8")
    for key in documented:
        assert f'"{key}"' in doc  # the README example shows every field


def test_alerts_webhook_readme_example_is_valid_json() -> None:
    doc = DOC.read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", doc[doc.index("### Webhooks") :], re.DOTALL)
    assert example
    assert json.loads(example.group(1))["schema"] == "beacons.alert.v1"


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1", "garbage"])
def test_alerts_webhook_verify_rejects_malformed_headers(header: str) -> None:
    assert not verify(SECRET, b"{}", header)
    assert not readme_verifier()(SECRET, b"{}", header)


def test_alerts_webhook_readme_receiver_deduplicates_on_the_signed_id_not_the_header(tmp_path: Path) -> None:
    receive = readme_recipe("receive_beacons_alert")
    req, _ = send_one(tmp_path)
    seen: set[str] = set()
    headers = dict(req.headers)
    assert receive(SECRET, req.body, headers, seen) == 200
    assert seen == {req.json["id"]}
    # A replay of the same signed body with another Idempotency-Key is still the same alert.
    replay = {**headers, "Idempotency-Key": "attacker-chosen-key"}
    assert receive(SECRET, req.body, replay, seen) == 200 and seen == {req.json["id"]}
    assert receive(SECRET, req.body.replace(b"RouterX", b"RouterY", 1), headers, seen) == 400
