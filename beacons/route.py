"""Put a classified mention in a queue, with a priority from 0 to 100.

Priority (documented in the README):

    support:  40 + 25*support_score + 15*negativity + 10*urgency + reach + recency
    advocacy: 10 + 30*advocacy_score + 10*positivity + 2*reach + recency
    none:     0

where negativity = max(0, -sentiment_score), positivity = max(0, sentiment_score),
urgency = 1 when the text has an urgency word (down, outage, refund, hacked,
data loss, ...), reach = min(10, 2.5*log10(1 + author_reach)) and recency is
-10 for posts older than 7 days. The result is clamped to 0..100.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from beacons.models import Classification, Match, Mention, Route

URGENCY = re.compile(
    r"\b(down|outage|offline|refund\w*|hacked|breach|data loss|lost (all|my) data|charged twice|double.?charged|"
    r"fraud\w*|stolen|urgent|asap|emergency|security|locked out|can'?t (log ?in|access))\b",
    re.IGNORECASE,
)
STALE_AFTER = timedelta(days=7)


def _reach(author_reach: int | None) -> float:
    return min(10.0, 2.5 * math.log10(1 + max(0, author_reach or 0)))


def priority(mention: Mention, classification: Classification, *, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    stale = -10.0 if mention.published_at and now - mention.published_at > STALE_AFTER else 0.0
    s = classification.sentiment_score
    if classification.queue == "support":
        urgent = 1.0 if URGENCY.search(mention.full_text) else 0.0
        value = 40 + 25 * classification.scores.get("support", 0.0) + 15 * max(0.0, -s) + 10 * urgent + _reach(mention.author_reach) + stale
    elif classification.queue == "advocacy":
        value = 10 + 30 * classification.scores.get("advocacy", 0.0) + 10 * max(0.0, s) + 2 * _reach(mention.author_reach) + stale
    else:
        return 0
    return int(round(min(100.0, max(0.0, value))))


def route(mention: Mention, match: Match | None, classification: Classification, *, now: datetime | None = None) -> Route:
    """The queue the classifier chose, with a priority and the reason for both."""
    if match is None:
        return Route("none", 0, "no brand mentioned")
    queue = classification.queue
    score = classification.scores.get(queue, 0.0)
    reason = f"classifier {classification.model}: {queue} score {score:.2f}"
    return Route(queue, priority(mention, classification, now=now), reason)
