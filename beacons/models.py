"""The values that pass between pipeline stages.

Every stage takes and returns these frozen dataclasses, so stages can be
tested with plain values and never reach into each other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from beacons.text import full_text

Queue = Literal["support", "advocacy", "none"]
Sentiment = Literal["negative", "neutral", "positive"]
QUEUES: tuple[Queue, ...] = ("support", "advocacy", "none")
STATUSES = ("new", "claimed", "resolved", "dismissed")


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    aliases: tuple[str, ...] = ()
    team: str | None = None


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    aliases: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    products: tuple[Product, ...] = ()
    exclude: tuple[str, ...] = ()
    team: str | None = None

    def terms(self) -> tuple[str, ...]:
        """Every name a search query for this brand should include."""
        names = [self.name, *self.aliases]
        for product in self.products:
            names.append(product.name)
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    kind: str
    interval: float  # seconds
    options: Any  # the collector's frozen Options dataclass
    expect_every: float | None = None
    # A source about one brand (or product) by construction, an app's reviews, a vendor's forum:
    # each item is a mention of it even when its text doesn't name it (issue 15).
    implies_brand: str | None = None
    implies_product: str | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store remembers about a source between polls."""

    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None
    quota: str | None = None  # JSON a collector keeps between polls: API units spent today (youtube_search)


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    elapsed_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Mention:
    source_id: str
    url: str | None
    guid: str | None
    title: str
    text: str
    author: str | None
    published_at: datetime | None
    fetched_at: datetime
    raw: str  # the raw entry as JSON, kept so nothing is lost
    author_reach: int | None = None
    lang: str | None = None
    rating: int | None = None  # a review's stars, 1-5 (app_store_reviews); raises a low review's support priority

    @property
    def full_text(self) -> str:
        """Title and body as one text, the unit that is matched and classified."""
        return full_text(self.title, self.text)


@dataclass(frozen=True, slots=True)
class MatchSpan:
    start: int  # character offsets into Mention.full_text
    end: int
    text: str
    brand: str
    product: str | None
    kind: str  # name | alias | handle | hashtag | product


@dataclass(frozen=True, slots=True)
class Match:
    brand: str
    product: str | None
    spans: tuple[MatchSpan, ...]
    other_brands: tuple[str, ...] = ()
    implied_by: str | None = None  # the source whose implies_brand made this a match (no span in the text then)


@dataclass(frozen=True, slots=True)
class Evidence:
    """The passage that decided a classification: its text and character offsets into ``Mention.full_text``."""

    text: str
    start: int
    end: int

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, data: Any) -> Evidence | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(str(data["text"]), int(data["start"]), int(data["end"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class Classification:
    queue: Queue
    is_beacon: bool
    sentiment: Sentiment
    sentiment_score: float  # -1 (negative) .. 1 (positive)
    relevance: float
    scores: dict[str, float] = field(default_factory=dict)
    intents: dict[str, float] = field(default_factory=dict)
    lang: str | None = None
    model: str = "rules"
    evidence: Evidence | None = None
    urgency: float = 0.0  # 0..1, beacons.urgency.urgency_of


@dataclass(frozen=True, slots=True)
class Route:
    queue: Queue
    priority: int
    reason: str
    team: str | None = None


@dataclass(frozen=True, slots=True)
class Beacon:
    """A routed mention as the queue reader sees it."""

    id: int
    queue: Queue
    status: str
    priority: int
    brand: str | None
    product: str | None
    title: str
    text: str
    url: str | None
    source: str
    author: str | None
    published_at: str | None
    sentiment: str
    is_beacon: bool
    sentiment_score: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    team: str | None = None
    assignee: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    fetched_at: str | None = None
    author_reach: int | None = None
    evidence: dict[str, Any] | None = None  # {text, start, end}: the passage that decided it (Evidence.to_json)
    intents: dict[str, float] = field(default_factory=dict)  # intent -> score; a person's correction scores 1.0
    rating: int | None = None  # a review's stars, 1-5 (app_store_reviews)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
