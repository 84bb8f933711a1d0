"""What an alert says, independent of where it goes: events, excerpts, highlights, links.

``build_event`` turns an outbox row into an ``Event`` at send time, reading
the beacon(s) from the store, so a row never holds a stale copy of a post or
anything secret. ``excerpt`` cuts the mention's text around the first brand
or product match and returns it as segments, the matched words flagged, so
each renderer (Slack mrkdwn, webhook JSON) can highlight them its own way.
Post text is untrusted: this module only measures and cuts it; escaping is
the renderer's job (``slack.escape``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from beacons.alerts.outbox import BeaconView, Outbox, Row
from beacons.models import Match
from beacons.redact import cut

EXCERPT_CHARS = 280
MAX_CARDS = 100  # beacons read into one digest or incident event; the count covers the rest
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")  # incl. bidi overrides


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    highlight: bool = False


@dataclass(frozen=True, slots=True)
class BeaconCard:
    """One beacon as an alert shows it."""

    id: int
    queue: str
    status: str
    priority: int
    brand: str | None
    product: str | None
    team: str | None
    sentiment: str
    sentiment_score: float
    title: str
    excerpt: tuple[Segment, ...]
    url: str | None
    link: str | None  # the beacon in the web page (serve.public_url), or None
    author: str | None
    source: str
    published_at: str | None
    created_at: str | None
    evidence: dict[str, Any] | None = None  # {text, start, end}: the passage that decided the queue (issue 12)

    @property
    def what(self) -> str:
        """ "Acme / RouterX", or "Acme"."""
        return " / ".join(x for x in (self.brand, self.product) if x) or "unknown brand"


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str  # beacon | digest | source_health | incident | test
    channel: str
    created_at: str
    beacons: tuple[BeaconCard, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)  # the row's payload (facts, never secrets)
    missing: int = 0  # beacons the payload named that no longer exist


class GoneError(Exception):
    """The beacon an alert is about no longer exists: the row is dead, not retried."""


EVIDENCE_CHARS = 600


def excerpt(
    full_text: str,
    match: Match | None,
    *,
    brand: str | None = None,
    product: str | None = None,
    limit: int = EXCERPT_CHARS,
) -> tuple[Segment, ...]:
    """The text around the first match, at most ``limit`` chars, the matched terms flagged for highlighting."""
    text = _CONTROL.sub(" ", full_text)
    spans = sorted({(s.start, s.end) for s in match.spans if 0 <= s.start < s.end <= len(text)}) if match else []
    if not spans:  # no stored spans: find the names themselves
        for term in (product, brand):
            if term:
                spans += [(m.start(), m.end()) for m in re.finditer(re.escape(term), text, re.IGNORECASE)]
        spans = sorted(set(spans))
    start = 0
    if spans and spans[0][0] > limit // 3:
        start = spans[0][0] - limit // 3
        space = text.rfind(" ", 0, start)
        start = space + 1 if space > start - 30 else start
    end = min(len(text), start + limit)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + limit * 0.7 else end
    segments: list[Segment] = [Segment("… ")] if start > 0 else []
    pos = start
    for s, e in spans:
        s, e = max(s, pos), min(e, end)
        if s >= e:
            continue
        segments.append(Segment(text[pos:s]))
        segments.append(Segment(text[s:e], True))
        pos = e
    segments.append(Segment(text[pos:end]))
    if end < len(text):
        segments.append(Segment(" …"))
    folded = [Segment(_SPACE.sub(" ", seg.text), seg.highlight) for seg in segments]
    return tuple(seg for seg in _strip_ends(folded) if seg.text)


def _strip_ends(segments: list[Segment]) -> list[Segment]:
    if segments:
        segments[0] = Segment(segments[0].text.lstrip(), segments[0].highlight)
        segments[-1] = Segment(segments[-1].text.rstrip(), segments[-1].highlight)
    return segments


def plain(segments: tuple[Segment, ...]) -> str:
    return "".join(s.text for s in segments)


def beacon_link(public_url: str | None, beacon_id: int) -> str | None:
    return f"{public_url.rstrip('/')}/beacons/{beacon_id}" if public_url else None


def card(view: BeaconView, public_url: str | None) -> BeaconCard:
    b = view.beacon
    return BeaconCard(
        id=b.id,
        queue=b.queue,
        status=b.status,
        priority=b.priority,
        brand=b.brand,
        product=b.product,
        team=b.team,
        sentiment=b.sentiment,
        sentiment_score=b.sentiment_score,
        title=cut(_CONTROL.sub(" ", b.title), 200),
        excerpt=excerpt(view.full_text, view.match, brand=b.brand, product=b.product),
        url=b.url,
        link=beacon_link(public_url, b.id),
        author=cut(_CONTROL.sub(" ", b.author), 100) if b.author else None,
        source=b.source,
        published_at=b.published_at,
        created_at=b.created_at,
        evidence=_evidence(b.evidence),
    )


def _evidence(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored evidence passage, control characters blanked and folded, cut for an alert."""
    if not data or not isinstance(data.get("text"), str) or not data["text"].strip():
        return None
    text = cut(_SPACE.sub(" ", _CONTROL.sub(" ", data["text"])).strip(), EVIDENCE_CHARS)
    return {"text": text, "start": int(data.get("start", 0)), "end": int(data.get("end", 0))}


def build_event(row: Row, outbox: Outbox, public_url: str | None) -> Event:
    """The full event for a row, read from the store now; ``GoneError`` when its beacon was deleted."""
    if row.kind == "beacon":
        view = outbox.beacon_view(row.beacon_id) if row.beacon_id is not None else None
        if view is None:
            raise GoneError(f"beacon {row.beacon_id} no longer exists")
        return Event(row.event_id, "beacon", row.channel, row.created_at, (card(view, public_url),), row.payload)
    ids = [int(i) for i in row.payload.get("beacon_ids", [])]
    views = [v for v in (outbox.beacon_view(i) for i in ids[:MAX_CARDS]) if v is not None]
    views.sort(key=lambda v: (-v.beacon.priority, -v.beacon.id))
    missing = min(len(ids), MAX_CARDS) - len(views)
    return Event(
        row.event_id,
        row.kind,
        row.channel,
        row.created_at,
        tuple(card(v, public_url) for v in views),
        row.payload,
        missing,
    )
