"""Load the shipped spaCy pipeline and turn its scores into a ``Classification``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import spacy
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from beacons.models import Classification, Match, Queue, Sentiment
from beacons.nlp import tokenizer as _tokenizer  # noqa: F401  (registers the model's tokenizer)
from beacons.nlp.labels import INTENTS, QUEUES, SENTIMENTS
from beacons.nlp.lang import detect
from beacons.nlp.mask import model_input

MODEL_DIR = Path(str(resources.files("beacons").joinpath("data/model")))
VADER_WEIGHT = (
    0.3  # share of VADER in the sentiment when the model does not record its own (chosen on dev by `beacons train`)
)
VADER_CHARS = 1_000


def find_model(path: str | Path | None = None) -> Path | None:
    """The model directory to load: ``path`` if given, else the shipped one; None if absent."""
    folder = Path(path) if path else MODEL_DIR
    return folder if (folder / "meta.json").is_file() and (folder / "config.cfg").is_file() else None


def vader_probs(compound: float) -> dict[str, float]:
    """VADER's compound score as a distribution over negative / neutral / positive."""
    neg, pos = max(0.0, -compound), max(0.0, compound)
    return {"negative": neg, "neutral": 1.0 - neg - pos, "positive": pos}


class SpacyClassifier:
    """The trained pipeline behind the ``Classifier`` interface."""

    def __init__(
        self,
        path: str | Path,
        *,
        support_threshold: float = 0.5,
        advocacy_threshold: float = 0.5,
        relevance_threshold: float = 0.5,
    ) -> None:
        self.path = Path(path)
        self.nlp = spacy.load(self.path)
        meta = json.loads((self.path / "meta.json").read_text(encoding="utf-8"))
        self.name = f"spacy:{meta.get('name', 'beacons')}-{meta.get('version', '0')}"
        self.vader_weight = float(meta.get("beacons_training", {}).get("vader_weight", VADER_WEIGHT))
        self.support_threshold = support_threshold
        self.advocacy_threshold = advocacy_threshold
        self.relevance_threshold = relevance_threshold
        self._vader = SentimentIntensityAnalyzer()

    def classify(self, text: str, match: Match | None) -> Classification:
        return self.classify_many([(text, match)])[0]

    def classify_many(self, items: Sequence[tuple[str, Match | None]]) -> list[Classification]:
        compounds = [
            self._vader.polarity_scores(text[:VADER_CHARS])["compound"] if text.strip() else 0.0 for text, _ in items
        ]
        # Only posts that name a brand go through the model; the others are queue none.
        todo = [i for i, (text, match) in enumerate(items) if match is not None and text.strip()]
        inputs = {i: model_input(items[i][0], items[i][1], compounds[i]) for i in todo}
        cats = dict(
            zip(todo, (doc.cats for doc in self.nlp.pipe([inputs[i] for i in todo], batch_size=256)), strict=True)
        )
        return [
            self._decide(text, inputs.get(i) or text[:1000].lower(), match, compounds[i], cats.get(i, {}))
            for i, (text, match) in enumerate(items)
        ]

    def _decide(
        self, text: str, masked: str, match: Match | None, compound: float, cats: dict[str, float]
    ) -> Classification:
        lang, _ = detect(masked)
        vader = vader_probs(compound)
        w = self.vader_weight if cats else 1.0  # no model output: VADER alone
        sentiment_p = {s: (1 - w) * cats.get(f"s:{s}", 0.0) + w * vader[s] for s in SENTIMENTS}
        sentiment: Sentiment = max(SENTIMENTS, key=sentiment_p.__getitem__)
        score = round(sentiment_p["positive"] - sentiment_p["negative"], 4)
        relevance = cats.get("r:relevant", cats.get("relevant", 1.0)) if match is not None else 0.0
        q = {name: cats.get(f"q:{name}", 0.0) for name in QUEUES}
        queue: Queue = "none"
        if match is not None and text.strip() and relevance >= self.relevance_threshold:
            if q["support"] >= self.support_threshold and q["support"] >= q["advocacy"]:
                queue = "support"
            elif q["advocacy"] >= self.advocacy_threshold:
                queue = "advocacy"
        intents = {name: round(cats.get(f"i:{name}", 0.0), 4) for name in INTENTS}
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
        )
