"""Label names shared by the corpus, the trainer, the model and the evaluation."""

from __future__ import annotations

from typing import Literal

QUEUES = ("support", "advocacy", "none")
SENTIMENTS: tuple[Literal["negative", "neutral", "positive"], ...] = ("negative", "neutral", "positive")
SUPPORT_INTENTS = ("bug_outage", "account_billing", "how_to", "order_delivery", "complaint")
ADVOCACY_INTENTS = ("praise", "recommendation", "testimonial")
OTHER_INTENTS = ("news", "job_ad", "promo_spam", "comparison", "passing", "homonym")
INTENTS = SUPPORT_INTENTS + ADVOCACY_INTENTS + OTHER_INTENTS
STYLES = ("tweet", "toot", "reddit", "hn", "blog", "news", "review", "forum", "github", "stackexchange")

# doc.cats keys: one namespace per component so labels never collide.
QUEUE_CATS = tuple(f"q:{q}" for q in QUEUES)
SENTIMENT_CATS = tuple(f"s:{s}" for s in SENTIMENTS)
INTENT_CATS = (*tuple(f"i:{i}" for i in INTENTS), "relevant")
RELEVANCE_CATS = ("r:relevant", "r:other")
