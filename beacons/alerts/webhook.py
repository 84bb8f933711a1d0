"""Signed JSON webhooks: body schema ``beacons.alert.v1`` and its HMAC-SHA256 signature.

The recipe follows the well-known payment and code-hosting webhooks: the
``X-Beacons-Signature`` header is ``t=<unix seconds>,v1=<hex>`` where hex is
HMAC-SHA256(secret, f"{t}." + raw body). A receiver recomputes it over the raw
bytes, compares in constant time, rejects a ``t`` too far from its clock
(replays), and de-duplicates on ``Idempotency-Key`` (the event id, also
``id`` in the body): a retry carries the same key. The README documents the
schema and a verification snippet, which the tests run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from beacons import USER_AGENT
from beacons.alerts.message import BeaconCard, Event, plain

SCHEMA = "beacons.alert.v1"
SIGNATURE_HEADER = "X-Beacons-Signature"
TOLERANCE = 300  # seconds a receiver should accept between t and its clock


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, now: float | None = None, tolerance: int = TOLERANCE) -> bool:
    """Receiver side: True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds."""
    try:
        items = [part.split("=", 1) for part in header.split(",")]
        t = int(next(v for k, v in items if k.strip() == "t"))
        candidates = [v.strip() for k, v in items if k.strip() == "v1"]
    except (StopIteration, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, c) for c in candidates)


def beacon_json(b: BeaconCard) -> dict[str, Any]:
    text, highlights, pos = plain(b.excerpt), [], 0
    for seg in b.excerpt:
        if seg.highlight:
            highlights.append({"start": pos, "end": pos + len(seg.text), "text": seg.text})
        pos += len(seg.text)
    return {
        "id": b.id,
        "queue": b.queue,
        "status": b.status,
        "priority": b.priority,
        "brand": b.brand,
        "product": b.product,
        "team": b.team,
        "sentiment": b.sentiment,
        "sentiment_score": b.sentiment_score,
        "title": b.title,
        "excerpt": text,
        "highlights": highlights,
        "evidence": b.evidence,
        "url": b.url,
        "link": b.link,
        "author": b.author,
        "source": b.source,
        "published_at": b.published_at,
        "created_at": b.created_at,
    }


def body(event: Event) -> dict[str, Any]:
    """The documented JSON body (README "Webhook body, schema v1")."""
    d = event.data
    data: dict[str, Any]
    if event.type == "beacon":
        data = {"beacon": beacon_json(event.beacons[0])}
    elif event.type == "digest":
        data = {
            "window_start": d.get("window_start"),
            "window_end": d.get("window_end"),
            "count": len(d.get("beacon_ids", [])),
            "beacons": [beacon_json(b) for b in event.beacons],
        }
    elif event.type == "source_health":
        health_keys = (
            "source",
            "state",
            "reason",
            "consecutive_errors",
            "last_error",
            "last_ok_at",
            "last_new_at",
            "since",
            "reminder",
        )
        data = {k: d.get(k) for k in health_keys}
    elif event.type == "report":
        report_keys = ("title", "since", "until", "brand", "lines", "link", "posts", "support_beacons")
        data = {k: d.get(k) for k in (*report_keys, "sla_breaches", "claim_median_s")}
    elif event.type == "incident":
        incident_keys = (
            "incident_id",
            "state",
            "brand",
            "product",
            "window",
            "count",
            "mean",
            "stddev",
            "threshold",
            "opened_at",
            "grouped",
        )
        data = {k: d.get(k) for k in incident_keys}
        data["beacons"] = [beacon_json(b) for b in event.beacons]
    elif event.type == "sla_breach":
        sla_keys = ("queue", "team", "limit_seconds", "waited_seconds", "status", "assignee")
        data = {k: d.get(k) for k in sla_keys}
        data["beacon"] = beacon_json(event.beacons[0]) if event.beacons else None
    else:
        data = {"message": f"test alert from beacons to channel {event.channel}"}
    return {
        "schema": SCHEMA,
        "id": event.id,
        "type": event.type,
        "channel": event.channel,
        "created_at": event.created_at,
        "data": data,
    }


def request(event: Event, secret: str, *, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers, signed now."""
    raw = json.dumps(body(event), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": event.id,
        "X-Beacons-Event": event.type,
        SIGNATURE_HEADER: sign(secret, raw, int(time.time() if now is None else now)),
    }
    return raw, headers
