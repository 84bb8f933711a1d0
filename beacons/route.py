"""Put a classified mention in a queue, with a priority from 0 to 100, a team and the reason.

``decide`` applies the ``routing:`` rules in a fixed order and records every
step, so ``beacons route --explain ID`` can print why a beacon went where it did:

1. brand       no brand matched: none.
2. drop        the author or the link's domain is on ``routing.drop``: none.
3. language    ``non_english: none|drop`` and the post is not English: none.
4. classifier  ``routing.relevance_threshold`` first, then the queue whose score
               reaches its threshold (support wins a tie with advocacy), else none.
5. rules       the first ``routing.rules`` entry whose conditions all hold sets
               the queue, a priority floor and/or the team.
6. priority    the formula below for the final queue, raised to the rule's
               ``min_priority``, clamped to 0..100.
7. team        the rule's team, else ``routing.teams`` (product, then brand),
               else the ``team:`` of the product or brand under ``brands:``.

Priority (documented in the README):

    support:  35 + 20*support_score + 10*negativity + 25*urgency + reach + recency + low_rating
    advocacy: 10 + 30*advocacy_score + 10*positivity + 2*reach + recency
    none:     0

negativity = max(0, -sentiment_score) and positivity = max(0, sentiment_score),
both 0..1; urgency (0..1, ``beacons.urgency.urgency_of``) grows with each kind
of urgency cue in the text: "URGENT", an outage, payments failing, a security
hole, lost data, many users affected (one kind 0.55-0.7, two 0.9, three 0.95+);
reach = min(10, 2.5*log10(1 + author_reach)), 0 when the source does not give
it; recency = 0 for the first day, then falls linearly to -10 at seven days
old; low_rating = 10 for a one-star review, 5 for two stars, else 0 (a
review's stars, ``Mention.rating``: app_store_reviews). A one- or two-star
review goes to support when its support score reaches half the threshold and
beats advocacy: the stars already say something is wrong. Urgency weighs more than the tone (issue 12): a calm "all our payment
terminals are offline" outranks an angry sync bug. Support tops out at 100,
advocacy at 70: a problem waits less well than a compliment.

Nothing here does I/O; ``similarity`` and ``content_words`` (grouping posts
about the same problem into one thread) are pure too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from beacons.models import Brand, Classification, Match, Mention, Queue, Route
from beacons.urgency import urgency_of

if TYPE_CHECKING:
    from beacons.config import RoutingConfig

FRESH_FOR = timedelta(days=1)
LOW_RATING = {1: 10.0, 2: 5.0}  # a review's stars -> support priority points (issue 15)
STALE_AT = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Override:
    """A compiled ``routing.rules`` entry. Empty conditions are not checked; the given ones must all hold."""

    name: str
    keywords: re.Pattern[str] | None = None
    sources: frozenset[str] = frozenset()
    brands: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    queue: Queue | None = None
    min_priority: int | None = None
    team: str | None = None

    def check(self, mention: Mention, match: Match, proposed: Queue) -> tuple[bool, str]:
        """Whether the rule applies, and what held or failed, for the explanation."""
        held = []
        if self.keywords is not None:
            found = self.keywords.search(mention.full_text)
            if not found:
                return False, "no keyword in the text"
            held.append(f"keyword {found.group(0)!r}")
        for label, wanted, value in (
            ("source", self.sources, mention.source_id),
            ("brand", self.brands, match.brand),
            ("product", self.products, match.product),
            ("classifier queue", self.queues, proposed),
        ):
            if wanted:
                if (value or "").lower() not in wanted:
                    return False, f"{label} {value!r} is not one of {', '.join(sorted(wanted))}"
                held.append(f"{label} {value}")
        return True, " and ".join(held)

    def actions(self) -> str:
        parts = [f"queue {self.queue}"] if self.queue else []
        parts += [f"min_priority {self.min_priority}"] if self.min_priority is not None else []
        parts += [f"team {self.team}"] if self.team else []
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything routing needs from the config, compiled once (``Rules.from_config``)."""

    support_threshold: float = 0.5
    advocacy_threshold: float = 0.5
    relevance_threshold: float = 0.5
    non_english: str = "keep"
    drop_authors: frozenset[str] = frozenset()
    drop_domains: tuple[str, ...] = ()
    overrides: tuple[Override, ...] = ()
    product_teams: tuple[tuple[str, str, str], ...] = ()  # (product lower, team, where it was set)
    brand_teams: tuple[tuple[str, str, str], ...] = ()
    brand_support: tuple[tuple[str, float], ...] = ()  # (brand lower, support threshold) from the per-brand form

    @classmethod
    def from_config(cls, routing: RoutingConfig, brands: Sequence[Brand] = ()) -> Rules:
        product_teams = [
            (p.lower(), t.name, f"routing.teams[{i}]") for i, t in enumerate(routing.teams) for p in t.products
        ]
        brand_teams = [
            (b.lower(), t.name, f"routing.teams[{i}]") for i, t in enumerate(routing.teams) for b in t.brands
        ]
        for brand in brands:
            product_teams += [
                (p.name.lower(), p.team, f"brands: {brand.name} / {p.name}") for p in brand.products if p.team
            ]
            if brand.team:
                brand_teams.append((brand.name.lower(), brand.team, f"brands: {brand.name}"))
        overrides = tuple(
            Override(
                name=r.name,
                keywords=keyword_pattern(r.keywords),
                sources=frozenset(s.lower() for s in r.sources),
                brands=frozenset(b.lower() for b in r.brands),
                products=frozenset(p.lower() for p in r.products),
                queues=frozenset(r.queues),
                queue=r.queue,
                min_priority=r.min_priority,
                team=r.team,
            )
            for r in routing.rules
        )
        per_brand = routing.support_threshold if isinstance(routing.support_threshold, dict) else {}
        return cls(
            routing.support_threshold_for(None),
            routing.advocacy_threshold,
            routing.relevance_threshold,
            routing.non_english,
            frozenset(a.lower().lstrip("@") for a in routing.drop.authors),
            tuple(d.lower().strip(".") for d in routing.drop.domains),
            overrides,
            tuple(product_teams),
            tuple(brand_teams),
            tuple((str(k).lower(), float(v)) for k, v in per_brand.items() if k != "default"),
        )

    def support_for(self, brand: str | None) -> float:
        """``routing.support_threshold`` for this brand: its own value, else the default."""
        key = (brand or "").lower()
        return next((v for name, v in self.brand_support if name == key), self.support_threshold)


DEFAULT_RULES = Rules()


@dataclass(frozen=True, slots=True)
class Step:
    """One line of an explanation: which rule, what it concluded, and why."""

    rule: str
    outcome: str  # pass | decided | matched | skipped | a number (priority) | a team name
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    route: Route
    steps: tuple[Step, ...]


def keyword_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """Whole words or phrases, case-insensitive; any run of spaces in a phrase matches any whitespace."""
    parts = [r"\s+".join(re.escape(w) for w in word.split()) for word in words if word.strip()]
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE) if parts else None


def _reach(author_reach: int | None) -> float:
    return min(10.0, 2.5 * math.log10(1 + max(0, author_reach or 0)))


def _recency(mention: Mention, now: datetime) -> float:
    when = mention.published_at or mention.fetched_at
    age = now - when if when else timedelta(0)
    if age <= FRESH_FOR:
        return 0.0
    return -10.0 * min(1.0, (age - FRESH_FOR) / (STALE_AT - FRESH_FOR))


def urgency(mention: Mention, classification: Classification) -> float:
    """0..1: the urgency cues in the text (``beacons.urgency``), or the classifier's own figure if higher."""
    return max(urgency_of(mention.full_text).score, float(classification.urgency))


def priority_terms(
    mention: Mention, classification: Classification, queue: Queue, *, now: datetime | None = None
) -> dict[str, float]:
    """The weighted terms of the priority formula for ``queue``; their sum is the raw priority."""
    now = now or datetime.now(UTC)
    s = classification.sentiment_score
    if queue == "support":
        return {
            "base": 35.0,
            "score": 20 * float(classification.scores.get("support", 0.0)),
            "negativity": 10 * max(0.0, -s),
            "urgency": 25 * urgency(mention, classification),
            "reach": _reach(mention.author_reach),
            "recency": _recency(mention, now),
            **({"low_rating": LOW_RATING[mention.rating]} if mention.rating in LOW_RATING else {}),
        }
    if queue == "advocacy":
        return {
            "base": 10.0,
            "score": 30 * float(classification.scores.get("advocacy", 0.0)),
            "positivity": 10 * max(0.0, s),
            "reach": 2 * _reach(mention.author_reach),
            "recency": _recency(mention, now),
        }
    return {}


def priority(
    mention: Mention, classification: Classification, *, queue: Queue | None = None, now: datetime | None = None
) -> int:
    """The documented formula, 0..100, for ``queue`` (default: the classifier's queue)."""
    terms = priority_terms(mention, classification, queue or classification.queue, now=now)
    return round(min(100.0, max(0.0, sum(terms.values())))) if terms else 0


def _proposed(
    classification: Classification, rules: Rules, brand: str | None = None, rating: int | None = None
) -> tuple[Queue, str]:
    """The queue the scores reach under the thresholds (the classifiers' own rule), and why.

    A one- or two-star review needs half the support threshold: its stars already say something is wrong.
    """
    threshold = rules.support_for(brand)
    if rating in LOW_RATING:
        threshold /= 2
    support = float(classification.scores.get("support", 0.0))
    advocacy = float(classification.scores.get("advocacy", 0.0))
    if classification.relevance < rules.relevance_threshold:
        return "none", f"relevance {classification.relevance:.2f} < relevance_threshold {rules.relevance_threshold:.2f}"
    if support >= threshold and support >= advocacy:
        return (
            "support",
            f"support score {support:.2f} >= support_threshold {threshold:.2f}"
            + (f" (halved for a {rating}-star review)" if rating in LOW_RATING else "")
            + f" (advocacy {advocacy:.2f})",
        )
    if advocacy >= rules.advocacy_threshold:
        return (
            "advocacy",
            f"advocacy score {advocacy:.2f} >= advocacy_threshold {rules.advocacy_threshold:.2f} (support {support:.2f})",
        )
    return (
        "none",
        f"support {support:.2f} < {threshold:.2f} and advocacy {advocacy:.2f} < {rules.advocacy_threshold:.2f}",
    )


def _dropped(mention: Mention, rules: Rules) -> str | None:
    author = (mention.author or "").lower().lstrip("@")
    if author and author in rules.drop_authors:
        return f"author {mention.author!r} is on routing.drop.authors"
    host = (urlsplit(mention.url).hostname or "") if mention.url else ""
    for domain in rules.drop_domains:
        if host == domain or host.endswith("." + domain):
            return f"link domain {host} is on routing.drop.domains ({domain})"
    return None


def _team(match: Match, override: Override | None, rules: Rules) -> tuple[str | None, str]:
    if override is not None and override.team:
        return override.team, f"rule {override.name}"
    for key, table in ((match.product, rules.product_teams), (match.brand, rules.brand_teams)):
        for name, team, where in table:
            if key and key.lower() == name:
                return team, where
    return None, "no team configured for this brand or product"


def decide(
    mention: Mention,
    match: Match | None,
    classification: Classification,
    rules: Rules = DEFAULT_RULES,
    *,
    now: datetime | None = None,
) -> Decision:
    """Route a mention and keep every step of the reasoning."""
    steps: list[Step] = []

    def stop(rule: str, detail: str) -> Decision:
        steps.append(Step(rule, "decided", f"none: {detail}"))
        return Decision(Route("none", 0, f"{rule}: {detail}"), tuple(steps))

    if match is None:
        return stop("brand", "no brand mentioned")
    implied = f", implied by source {match.implied_by} (implies_brand)" if match.implied_by else ""
    steps.append(Step("brand", "pass", match.brand + (f" / {match.product}" if match.product else "") + implied))
    dropped = _dropped(mention, rules)
    if dropped:
        return stop("drop", dropped)
    steps.append(Step("drop", "pass", "author and link domain are not on the drop list"))
    lang = classification.lang or mention.lang
    if rules.non_english != "keep" and lang and not lang.lower().startswith("en"):
        return stop("language", f"language {lang} and non_english: {rules.non_english}")
    steps.append(Step("language", "pass", f"language {lang or 'unknown'}, non_english: {rules.non_english}"))
    queue, why = _proposed(classification, rules, match.brand, mention.rating)
    steps.append(Step("classifier", "decided", f"{queue}: {why} (model {classification.model})"))
    reason = f"classifier {classification.model}: {why}"
    chosen: Override | None = None
    for override in rules.overrides:
        applies, detail = override.check(mention, match, queue)
        if applies and chosen is None:
            chosen = override
            steps.append(Step(f"rule {override.name}", "matched", f"{detail} -> {override.actions()}"))
        elif applies:
            steps.append(Step(f"rule {override.name}", "skipped", f"{detail}, but an earlier rule already matched"))
        else:
            steps.append(Step(f"rule {override.name}", "skipped", detail))
    if chosen is not None:
        queue = chosen.queue or queue
        reason = f"rule {chosen.name}: {chosen.actions()}"
    terms = priority_terms(mention, classification, queue, now=now)
    raw = sum(terms.values())
    value = round(min(100.0, max(0.0, raw))) if terms else 0
    formula = " + ".join(f"{k} {v:.1f}" for k, v in terms.items()) + f" = {raw:.1f}" if terms else "queue none"
    if chosen is not None and chosen.min_priority is not None and value < chosen.min_priority:
        value = chosen.min_priority
        formula += f", raised to min_priority {value} by rule {chosen.name}"
    steps.append(Step("priority", str(value), formula))
    team, where = _team(match, chosen, rules) if queue != "none" else (None, "queue none has no team")
    steps.append(Step("team", team or "-", where))
    return Decision(Route(queue, value, reason, team), tuple(steps))


def route(
    mention: Mention,
    match: Match | None,
    classification: Classification,
    rules: Rules = DEFAULT_RULES,
    *,
    now: datetime | None = None,
) -> Route:
    """The queue, priority, team and reason for a classified mention (see ``decide``)."""
    return decide(mention, match, classification, rules, now=now).route


def reroute_route(
    mention: Mention,
    match: Match | None,
    classification: Classification,
    queue: Queue,
    rules: Rules = DEFAULT_RULES,
    *,
    now: datetime | None = None,
) -> Route:
    """Routing redone for a queue a person chose (issue 13: a re-route recomputes team and priority).

    The person's queue takes the classifier's place: the first ``routing.rules`` entry that holds for it
    and does not send the post elsewhere gives its ``min_priority`` and team; the priority is the formula
    for ``queue`` and the team comes from the rule, else ``routing.teams``, else ``brands:``. The
    ``none`` queue has no priority and no team.
    """
    if queue == "none":
        return Route(queue, 0, "re-routed to none")
    if match is None:  # no stored match (an old row): the formula still holds, no rule or team can
        return Route(queue, priority(mention, classification, queue=queue, now=now), f"re-routed to {queue}")
    chosen = next(
        (o for o in rules.overrides if o.queue in (None, queue) and o.check(mention, match, queue)[0]),
        None,
    )
    value = priority(mention, classification, queue=queue, now=now)
    if chosen is not None and chosen.min_priority is not None:
        value = max(value, chosen.min_priority)
    team, _where = _team(match, chosen, rules)
    return Route(queue, value, f"re-routed to {queue}" + (f", rule {chosen.name}" if chosen else ""), team)


# -- grouping posts about the same problem ------------------------------------

_WORD = re.compile(r"[a-z0-9][a-z0-9'._-]*[a-z0-9]|[a-z0-9]", re.IGNORECASE)
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "anyone",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "done",
        "for",
        "from",
        "get",
        "got",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hey",
        "hi",
        "how",
        "i",
        "i'm",
        "if",
        "in",
        "into",
        "is",
        "it",
        "it's",
        "its",
        "just",
        "know",
        "let",
        "like",
        "me",
        "my",
        "no",
        "not",
        "now",
        "of",
        "on",
        "or",
        "our",
        "out",
        "over",
        "please",
        "really",
        "same",
        "so",
        "some",
        "still",
        "than",
        "thanks",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "up",
        "us",
        "very",
        "via",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "yet",
        "you",
        "your",
        "anybody",
        "else",
        "ever",
        "every",
        "everyone",
        "getting",
        "help",
        "today",
        "since",
    ]
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str, names: Iterable[str] = ()) -> frozenset[str]:
    """The words that say what a post is about: lower-cased, crudely stemmed, without stopwords or the brand's names."""
    skip = {w for name in names for w in name.lower().split()}
    return frozenset(
        _stem(w) for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOPWORDS and w not in skip
    )


def similarity(a: frozenset[str], b: frozenset[str]) -> tuple[float, int]:
    """(shared words / the smaller set, shared words): a short post inside a long one still counts."""
    if not a or not b:
        return 0.0, 0
    shared = len(a & b)
    return shared / min(len(a), len(b)), shared
