"""Load the shipped spaCy pipeline and turn its scores into a ``Classification``.

With ``lazy=True`` (the daemon) spaCy, the pipeline and VADER load on the first
post to classify, once: a poll cycle where every feed answered 304 loads none of
them (issue 16). Each batch runs inside ``nlp.memory_zone()``, so the words of
the posts it read leave the vocabulary afterwards and a daemon that reads new
words for months keeps a flat memory (``bench/soak.py``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from beacons.log import get_logger
from beacons.models import Classification, Evidence, Match, Queue, Sentiment
from beacons.nlp import speed
from beacons.nlp.features import ENGLISH, Features, post_lang
from beacons.nlp.intents import read_thresholds
from beacons.nlp.labels import INTENTS, QUEUES, SENTIMENTS
from beacons.nlp.mask import model_input
from beacons.nlp.passages import evidence_span, passages
from beacons.nlp.polarity import polarity
from beacons.urgency import reports_harm, urgency_of

if TYPE_CHECKING:
    from spacy.language import Language

log = get_logger("beacons.nlp")

MODEL_DIR = Path(str(resources.files("beacons").joinpath("data/model")))
VADER_WEIGHT = (
    0.3  # share of VADER in the sentiment when the model does not record its own (chosen on dev by `beacons train`)
)
VADER_CHARS = 1_000
PASSAGE_ALPHA = 0.5
# A passage this sure of support decides the post on its own, whatever the rest of it is about: one
# complaint paragraph in a long post about a holiday (issue 12). Chosen on dev by ``beacons train``;
# this default serves models trained before the key existed.
PASSAGE_SUPPORT = 0.9


def find_model(path: str | Path | None = None) -> Path | None:
    """The model directory to load: ``path`` if given, else the shipped one; None if absent."""
    folder = Path(path) if path else MODEL_DIR
    return folder if (folder / "meta.json").is_file() and (folder / "config.cfg").is_file() else None


def vader_probs(compound: float) -> dict[str, float]:
    """VADER's compound score as a distribution over negative / neutral / positive."""
    neg, pos = max(0.0, -compound), max(0.0, compound)
    return {"negative": neg, "neutral": 1.0 - neg - pos, "positive": pos}


def calibrate(score: float, raw_threshold: float) -> float:
    """A raw support score on a scale where ``raw_threshold`` is 0.5 (piecewise linear, 0 and 1 kept)."""
    t = min(0.95, max(0.05, raw_threshold))
    return score * 0.5 / t if score < t else 0.5 + (score - t) * 0.5 / (1 - t)


def recalibrate(cats: dict[str, float], advocacy_raw: float, relevance_raw: float) -> dict[str, float]:
    """The advocacy and relevance scores on the scale where their dev-chosen raw thresholds are 0.5."""
    if "q:advocacy" in cats and advocacy_raw != 0.5:
        cats["q:advocacy"] = calibrate(cats["q:advocacy"], advocacy_raw)
    for key in ("r:relevant", "relevant"):
        if key in cats and relevance_raw != 0.5:
            cats[key] = calibrate(cats[key], relevance_raw)
    return cats


def sub_match(match: Match | None, start: int, end: int) -> Match | None:
    """The match's spans inside ``text[start:end]``, shifted to offsets into that slice."""
    if match is None:
        return None
    spans = tuple(
        replace(s, start=s.start - start, end=s.end - start) for s in match.spans if start <= s.start and s.end <= end
    )
    return replace(match, spans=spans) if spans else None


@dataclass(frozen=True, slots=True)
class Reading:
    """The model's scores for one piece of a post: the whole (start 0, end len) or a passage."""

    start: int
    end: int
    cats: dict[str, float]

    def q(self, label: str) -> float:
        return self.cats.get(f"q:{label}", 0.0)


@dataclass(frozen=True, slots=True)
class Combined:
    """How passage and whole scores were mixed (chosen on dev by ``beacons train``, kept in meta.json)."""

    queue_alpha: float = PASSAGE_ALPHA  # share of the deciding passage in the queue scores
    sentiment_alpha: float = PASSAGE_ALPHA  # ... and in the sentiment
    passage_support: float = PASSAGE_SUPPORT  # a passage's own support score that routes the post to support


def decide_passage(
    whole: Reading,
    parts: Sequence[Reading],
    support_threshold: float,
    advocacy_threshold: float,
    alpha: float,
    passage_support: float = 2.0,
) -> Reading | None:
    """The strongest support passage that is sure on its own (``passage_support``) or whose mix with the
    whole reaches the threshold, else the advocacy one, else None."""
    if not parts:
        return None
    best = max(parts, key=lambda r: r.q("support"))
    if best.q("support") > whole.q("support") and (
        best.q("support") >= passage_support
        or (alpha > 0 and (1 - alpha) * whole.q("support") + alpha * best.q("support") >= support_threshold)
    ):
        return best
    if alpha <= 0:
        return None
    best = max(parts, key=lambda r: r.q("advocacy"))
    mixed_support = (1 - alpha) * whole.q("support") + alpha * best.q("support")
    if (
        whole.q("support") < support_threshold
        and (1 - alpha) * whole.q("advocacy") + alpha * best.q("advocacy") >= advocacy_threshold
        and best.q("advocacy") > whole.q("advocacy")
        and mixed_support < support_threshold
    ):
        return best
    return None


def mix(whole: dict[str, float], part: dict[str, float] | None, alpha: float) -> dict[str, float]:
    if part is None:
        return whole
    return {k: (1 - alpha) * v + alpha * part.get(k, 0.0) for k, v in whole.items()}


class SpacyClassifier:
    """The trained pipeline behind the ``Classifier`` interface, reading long posts passage by passage."""

    # False keeps every word read in the vocabulary, as spaCy does outside a memory zone: only for
    # bench/soak.py and the tests to show the growth the zone prevents.
    forget_words = True

    def __init__(
        self,
        path: str | Path,
        *,
        support_threshold: float = 0.5,
        advocacy_threshold: float = 0.5,
        relevance_threshold: float = 0.5,
        lazy: bool = False,
    ) -> None:
        self.path = Path(path)
        meta = json.loads((self.path / "meta.json").read_text(encoding="utf-8"))
        self._setup(None, meta, support_threshold, advocacy_threshold, relevance_threshold)
        if not lazy:
            self._load()
        tuned = read_thresholds(self.path)  # re-tuned without retraining (beacons eval --tune-intents)
        if tuned is not None:
            self.intent_thresholds = tuned

    @classmethod
    def from_nlp(cls, nlp: Language, *, support_threshold: float = 0.5) -> SpacyClassifier:
        """A classifier over a pipeline in memory (``beacons train`` tunes the mixing on dev with it)."""
        self = cls.__new__(cls)
        self.path = Path(".")
        self._setup(nlp, dict(nlp.meta), support_threshold, 0.5, 0.5)
        return self

    def _setup(
        self,
        nlp: Language | None,
        meta: dict[str, Any],
        support_threshold: float,
        advocacy_threshold: float,
        relevance_threshold: float,
    ) -> None:
        self._nlp = nlp
        self._shared_ngrams: Any = None  # beacons.nlp.speed: set when the pipeline is loaded from disk
        self._vader_analyzer: SentimentIntensityAnalyzer | None = None
        training = meta.get("beacons_training", {})
        self.name = f"spacy:{meta.get('name', 'beacons')}-{meta.get('version', '0')}"
        self.vader_weight = float(training.get("vader_weight", VADER_WEIGHT))
        self.combined = Combined(
            float(training.get("passage_alpha", PASSAGE_ALPHA)),
            float(training.get("sentiment_alpha", PASSAGE_ALPHA)),
            float(training.get("passage_support", PASSAGE_SUPPORT)),
        )
        # The raw support score chosen on dev (best recall at the stated precision) is reported as 0.5, so
        # routing.support_threshold keeps one meaning across models: 0.5 is the calibrated operating point.
        self.raw_threshold = float(training.get("support_raw_threshold", 0.5))
        # Advocacy and relevance likewise (chosen on dev for queue accuracy; 0.5, no change, for older models).
        self.advocacy_raw_threshold = float(training.get("advocacy_raw_threshold", 0.5))
        self.relevance_raw_threshold = float(training.get("relevance_raw_threshold", 0.5))
        self.support_threshold = support_threshold
        # Intent scores likewise: each intent's dev threshold (precision >= 0.8) is reported as 0.5.
        self.intent_thresholds = {k: float(v) for k, v in training.get("intent_raw_thresholds", {}).items()}
        self.advocacy_threshold = advocacy_threshold
        self.relevance_threshold = relevance_threshold
        self.features = Features.from_meta(training.get("features"))

    def _load(self) -> Language:
        import spacy

        from beacons.nlp import tokenizer as _tokenizer  # noqa: F401  (registers the model's tokenizer)

        nlp = spacy.load(self.path)
        self._shared_ngrams = speed.tune(nlp)  # the same scores, faster (issue 16)
        self._nlp = nlp
        log.debug("classifier.loaded", model=self.name)
        return self._nlp

    @property
    def nlp(self) -> Language:
        """The spaCy pipeline, loaded on first use (``lazy=True``)."""
        if self._nlp is not None:
            return self._nlp
        try:
            return self._load()
        except Exception as exc:  # the posts are stored unclassified and retried; say why once per try
            log.error("classifier.load_failed", path=str(self.path), error=f"{type(exc).__name__}: {exc}")
            raise

    @property
    def _vader(self) -> SentimentIntensityAnalyzer:
        if self._vader_analyzer is None:
            self._vader_analyzer = SentimentIntensityAnalyzer()
        return self._vader_analyzer

    def classify(self, text: str, match: Match | None) -> Classification:
        return self.classify_many([(text, match)])[0]

    def _compound(self, text: str) -> float:
        return float(self._vader.polarity_scores(text[:VADER_CHARS])["compound"]) if text.strip() else 0.0

    def read(self, items: Sequence[tuple[str, Match | None]]) -> list[tuple[Reading, list[Reading], float]]:
        """Model scores of each post's whole and of its passages, and the whole's VADER compound."""
        compounds = [self._compound(text) for text, _ in items]
        inputs: list[str] = []
        owners: list[tuple[int, int, int]] = []  # (item, start, end)
        for i, (text, match) in enumerate(items):
            if match is None or not text.strip():
                continue
            lang = post_lang(text) if self.features.any() else None
            inputs.append(model_input(text, match, compounds[i], lang=lang, features=self.features))
            owners.append((i, 0, len(text)))
            for a, b in passages(text, match):
                piece = text[a:b]
                inputs.append(
                    model_input(piece, sub_match(match, a, b), self._compound(piece), lang=lang, features=self.features)
                )
                owners.append((i, a, b))
        readings: dict[int, list[Reading]] = {}
        if inputs:
            nlp = self.nlp
            # Strings and lexemes the batch adds are dropped when the zone ends (spaCy >= 3.8):
            # nothing of a Doc is kept past the loop, only its scores copied into a dict.
            with (
                nlp.memory_zone() if self.forget_words else contextlib.nullcontext(),
                speed.batch(self._shared_ngrams),
            ):
                for (i, a, b), doc in zip(owners, nlp.pipe(inputs, batch_size=256), strict=True):
                    cats = recalibrate(dict(doc.cats), self.advocacy_raw_threshold, self.relevance_raw_threshold)
                    cats["q:support"] = calibrate(cats.get("q:support", 0.0), self.raw_threshold)
                    for name, t in self.intent_thresholds.items():
                        key = f"i:{name}"
                        cats[key] = calibrate(cats.get(key, 0.0), t)
                    readings.setdefault(i, []).append(Reading(a, b, cats))
        out: list[tuple[Reading, list[Reading], float]] = []
        for i, (text, _) in enumerate(items):
            found = readings.get(i)
            if not found:
                out.append((Reading(0, len(text), {}), [], compounds[i]))
            else:
                out.append((found[0], found[1:], compounds[i]))
        return out

    def classify_many(self, items: Sequence[tuple[str, Match | None]]) -> list[Classification]:
        return [
            self.decide(text, match, whole, parts, compound)
            for (text, match), (whole, parts, compound) in zip(items, self.read(items), strict=True)
        ]

    def decide(
        self,
        text: str,
        match: Match | None,
        whole: Reading,
        parts: Sequence[Reading],
        compound: float,
        combined: Combined | None = None,
        support_threshold: float | None = None,
    ) -> Classification:
        """Combine the whole and passage readings into a Classification (pure; ``beacons train`` tunes it)."""
        c = combined or self.combined
        threshold = self.support_threshold if support_threshold is None else support_threshold
        cats = whole.cats
        decisive = decide_passage(whole, parts, threshold, self.advocacy_threshold, c.queue_alpha, c.passage_support)
        queue_cats = mix(cats, decisive.cats if decisive else None, c.queue_alpha)
        if decisive is not None and decisive.q("support") >= c.passage_support:
            # The sure passage decides: its own scores, not diluted by 800 words about something else.
            queue_cats = {**queue_cats, **{k: v for k, v in decisive.cats.items() if k.startswith("q:")}}
        # Sentiment is toward the brand: read from the passages around it, the whole as context.
        toward = decisive or (max(parts, key=lambda r: abs(r.q("support") - r.q("none"))) if parts else None)
        sentiment_cats = mix(cats, toward.cats if toward else None, c.sentiment_alpha)
        lang = post_lang(text)
        vader = vader_probs(compound)
        w = self.vader_weight if cats else 1.0  # no model output: VADER alone
        sentiment_p = {s: (1 - w) * sentiment_cats.get(f"s:{s}", 0.0) + w * vader[s] for s in SENTIMENTS}
        sentiment: Sentiment = max(SENTIMENTS, key=sentiment_p.__getitem__)
        score = round(sentiment_p["positive"] - sentiment_p["negative"], 4)
        relevance = cats.get("r:relevant", cats.get("relevant", 1.0)) if match is not None else 0.0
        q = {name: queue_cats.get(f"q:{name}", 0.0) for name in QUEUES}
        queue: Queue = "none"
        if match is not None and text.strip() and relevance >= self.relevance_threshold:
            if q["support"] >= threshold and q["support"] >= q["advocacy"]:
                queue = "support"
            elif q["advocacy"] >= self.advocacy_threshold:
                queue = "advocacy"
        span = (decisive.start, decisive.end) if decisive else _first_passage(text, match, parts)
        evidence = _evidence(text, match, span) if match is not None and text.strip() else None
        focus = evidence.text if evidence else text
        sentiment, score = _toward_brand(queue, sentiment, score, sentiment_p, self._harm(focus, lang))
        intents = {name: round(queue_cats.get(f"i:{name}", 0.0), 4) for name in INTENTS}
        if not cats:
            q = {"support": 0.0, "advocacy": 0.0, "none": 1.0}
        scores: dict[str, Any] = {name: round(v, 4) for name, v in q.items()}
        return Classification(
            queue=queue,
            is_beacon=queue == "support",
            sentiment=sentiment,
            sentiment_score=score,
            relevance=round(relevance, 4),
            scores=scores,
            intents={k: v for k, v in intents.items() if v >= 0.05},
            lang=lang,
            model=self.name,
            evidence=evidence,
            urgency=urgency_of(text).score if queue == "support" or text.strip() else 0.0,
        )

    # The polarity cues' negative words count as a harm report for a post not in English (reports_harm reads
    # English only). On with Features(polarity=True); a module switch so dev can measure it alone.
    polarity_harm = True

    def _harm(self, focus: str, lang: str) -> bool:
        if reports_harm(focus):
            return True
        if not (self.features.polarity and self.polarity_harm) or lang in ENGLISH:
            return False
        counts = polarity(focus, lang)
        return counts is not None and counts[0] > counts[1]


def _toward_brand(
    queue: Queue, sentiment: Sentiment, score: float, p: dict[Sentiment, float], harm: bool
) -> tuple[Sentiment, float]:
    """Sentiment toward the brand, consistent with the queue (docs/labeling.md, issue 12).

    A support post is never positive toward the brand (a mixed "love it but it crashes" is about the
    crash), and one that reports something broken, money lost or work blocked is negative however
    calmly written. Praise, recommendations and thanks are positive.
    """
    if queue == "support":
        if harm or p["negative"] >= p["neutral"]:
            return "negative", min(score, -0.3)
        return "neutral", min(max(score, -0.2), 0.2)
    if queue == "advocacy":
        return "positive", max(score, 0.3)
    return sentiment, score


def _first_passage(text: str, match: Match | None, parts: Sequence[Reading]) -> tuple[int, int]:
    if parts:
        return parts[0].start, parts[0].end
    return 0, len(text)


def _evidence(text: str, match: Match | None, span: tuple[int, int]) -> Evidence:
    start, end = span
    focus = next((s.start for s in match.spans if start <= s.start < end), None) if match else None
    a, b = evidence_span(text, start, end, focus)
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return Evidence(text[a:b], a, b)
