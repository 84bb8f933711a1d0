"""Decide what a brand mention is: a support beacon, advocacy, or neither.

``Classifier`` is the seam: ``classify(text, match)`` returns a
``Classification``. ``RulesClassifier`` is the first honest implementation,
cue phrases plus VADER sentiment; the trained spaCy pipeline
(``beacons.nlp``) replaces it behind the same interface. ``load_classifier``
picks one from the config.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Protocol

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from beacons.errors import ConfigError, Problem
from beacons.models import Classification, Match, Queue, Sentiment

SENTIMENT_CHARS = 2_000  # VADER reads the opening of a long post; the tone is set early


class Classifier(Protocol):
    name: str

    def classify(self, text: str, match: Match | None) -> Classification: ...

    def classify_many(self, items: Sequence[tuple[str, Match | None]]) -> list[Classification]: ...


def _cues(*patterns: tuple[str, float]) -> list[tuple[re.Pattern[str], float]]:
    return [(re.compile(p, re.IGNORECASE), w) for p, w in patterns]


_SUPPORT = _cues(
    (
        r"\b(not|isn'?t|doesn'?t|won'?t|can'?t|cannot|never|stopped|no longer)\s+(work\w*|connect\w*|load\w*|turn\w* on|charg\w*|sync\w*|open\w*|start\w*|boot\w*|respond\w*)",
        1.2,
    ),
    (
        r"\b(broken|crash\w*|bug(gy|s)?|error\w*|fail\w*|freez\w*|frozen|stuck|glitch\w*|outage|laggy|unusable|bricked)\b",
        0.9,
    ),
    (
        r"\b(is (it|\w+) down|went down|(is|still|keeps?|goes) (going )?down|keeps? (dropping|crashing|disconnecting|restarting|logging me out))",
        1.2,
    ),
    (
        r"\b(refund\w*|charged|overcharg\w*|double.?charg\w*|billing|invoice|cancel\w* my|locked out|can'?t (log ?in|sign ?in|access)|password reset|hacked|suspended|banned)\b",
        1.1,
    ),
    (
        r"\b(where is my|still (waiting|hasn'?t|haven'?t|no sign)|never (arrived|came|showed)|(order|package|delivery|parcel)\b.{0,40}\b(late|lost|missing|delayed|wrong|damaged))",
        1.1,
    ),
    (
        r"\b(how (do|can|to|would) (i|we|you)|anyone (know|else)|any (idea|fix|workaround)s?|is there a way|what am i doing wrong)\b",
        1.0,
    ),
    (r"\b(help|support|please fix|fix (this|it)|wtf|why (does|is|won'?t|can'?t))\b", 0.6),
    (r"\b(vulnerab\w*|exploit|security (hole|issue|flaw)|leak\w*|xss|csrf|rce)\b", 0.8),
    (r"\?{2,}|!{3,}", 0.3),
)
_ADVOCACY = _cues(
    (
        r"\b(love|loving|adore|amazing|awesome|fantastic|excellent|brilliant|superb|flawless|perfect|wonderful|outstanding)\b",
        0.9,
    ),
    (r"\b(recommend\w*|go with|get (a|an|the) |worth (it|every)|can'?t go wrong|must.have)\b", 0.9),
    (r"\b(thank(s| you)|kudos|shout.?out|props to|hats off|grateful|appreciate)\b", 0.9),
    (
        r"\b(switched (to|from)|never going back|best (decision|purchase|thing)|game.?changer|so (happy|glad|impressed)|impressed)\b",
        1.0,
    ),
    (r"\b(5|five) stars?\b|★★★★★|❤️|😍|🙌", 0.8),
)
_NONE = _cues(
    (
        r"\b(announc\w*|unveil\w*|launch(es|ed)|according to|reported(ly)?|shares (rose|fell|jumped|dropped)|quarter(ly)?|revenue|earnings|lawsuit|fined|recall(s|ed)?|acquir\w*|ceo|spokes(person|man|woman)|press release)\b",
        1.1,
    ),
    (
        r"\b(we'?re hiring|now hiring|job (opening|opportunity)|apply (now|here|today)|careers?|full.time|part.time|remote role|salary)\b",
        1.4,
    ),
    (
        r"\b(giveaway|win (a|an|one|free)|promo code|coupon|discount code|referral|affiliate|use (my )?code|sweepstakes|airdrop|dm (me|us) to claim)\b",
        1.4,
    ),
    (
        r"\b(vs\.?|versus|or should i|should i (buy|get)|which (one|is better)|thinking (of|about) (buying|getting))\b",
        0.8,
    ),
)
_FIXED = re.compile(
    r"\b(fixed|sorted|resolved|solved|got it working|works now|working again)\b.{0,60}\b(thank|thanks|great|awesome|quick)",
    re.IGNORECASE,
)


def _strength(text: str, cues: list[tuple[re.Pattern[str], float]]) -> float:
    total = sum(w * min(len(p.findall(text)), 2) for p, w in cues)
    return 1.0 - math.exp(-total)


def sentiment_of(compound: float) -> Sentiment:
    if compound >= 0.3:
        return "positive"
    if compound <= -0.25:
        return "negative"
    return "neutral"


class RulesClassifier:
    """Cue phrases for intent, VADER for sentiment. Honest, fast and easy to read."""

    name = "rules"

    def __init__(self, support_threshold: float = 0.5, advocacy_threshold: float = 0.5) -> None:
        self.support_threshold = support_threshold
        self.advocacy_threshold = advocacy_threshold
        self._vader = SentimentIntensityAnalyzer()

    def classify(self, text: str, match: Match | None) -> Classification:
        compound = self._vader.polarity_scores(text[:SENTIMENT_CHARS])["compound"] if text.strip() else 0.0
        if match is None:
            return Classification(
                "none",
                False,
                sentiment_of(compound),
                compound,
                0.0,
                {"support": 0.0, "advocacy": 0.0, "none": 1.0},
                model=self.name,
            )
        support = _strength(text, _SUPPORT)
        advocacy = _strength(text, _ADVOCACY)
        other = _strength(text, _NONE)
        if _FIXED.search(text):  # thanks for a problem already fixed is advocacy
            advocacy, support = max(advocacy, 0.8), support * 0.4
        if any(s.kind == "handle" for s in match.spans) and len(text) < 60:
            support = max(support, 0.6)  # a bare ping to a support handle
        support *= 1.0 - 0.7 * other
        advocacy *= 1.0 - 0.7 * other
        if compound > 0.5:
            support *= 0.8
        if compound < -0.3:
            advocacy *= 0.6
        none = max(0.0, 1.0 - max(support, advocacy))
        queue: Queue = "none"
        if support >= self.support_threshold and support >= advocacy:
            queue = "support"
        elif advocacy >= self.advocacy_threshold:
            queue = "advocacy"
        scores = {"support": round(support, 4), "advocacy": round(advocacy, 4), "none": round(none, 4)}
        return Classification(
            queue, queue == "support", sentiment_of(compound), round(compound, 4), 1.0, scores, model=self.name
        )

    def classify_many(self, items: Sequence[tuple[str, Match | None]]) -> list[Classification]:
        return [self.classify(text, match) for text, match in items]


def load_classifier(
    model: str = "auto",
    *,
    support_threshold: float = 0.5,
    advocacy_threshold: float = 0.5,
    relevance_threshold: float = 0.5,
    lazy: bool = False,
) -> Classifier:
    """``rules``, ``auto`` (the shipped spaCy model when present) or a model directory.

    ``lazy``: load spaCy and the pipeline on the first post to classify (the daemon: a
    cycle of 304s classifies nothing and need not pay for them, issue 16).
    """
    if model == "rules":
        return RulesClassifier(support_threshold, advocacy_threshold)
    from beacons import nlp  # spaCy loads only when a model is wanted

    found = nlp.find_model(None if model == "auto" else model)
    if found is not None:
        try:
            return nlp.SpacyClassifier(
                found,
                support_threshold=support_threshold,
                advocacy_threshold=advocacy_threshold,
                relevance_threshold=relevance_threshold,
                lazy=lazy,
            )
        except (OSError, ValueError, KeyError) as exc:  # a damaged or foreign folder: spaCy raises these
            raise ConfigError(
                [
                    Problem(
                        "classifier.model",
                        f"cannot load the model at {str(found)!r}: {exc} (retrain with `beacons train`)",
                    )
                ]
            ) from exc
    if model != "auto":
        raise ConfigError(
            [Problem("classifier.model", f"no trained model at {model!r} (run `beacons train`, or use auto or rules)")]
        )
    return RulesClassifier(support_threshold, advocacy_threshold)
