"""Train the classifier pipeline from the corpus, reproducibly.

Three ``TextCatBOW`` components (queue, intents + relevance, sentiment) on
masked, lower-cased text. Each component is updated only with its own labels
(an exclusive textcat refuses examples carrying another component's labels).
A fixed seed fixes the shuffles, the dropout and the weights' initialisation;
the epoch with the best score on the brand-disjoint dev split is kept.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.pipeline import TextCategorizer
from spacy.training import Example as SpacyExample
from spacy.util import compounding, fix_random_seed, minibatch  # type: ignore[attr-defined]
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from beacons.match import BrandMatcher
from beacons.nlp.corpus import Corpus, Example, examples_in, load_corpus, split_brands
from beacons.nlp.labels import INTENT_CATS, INTENTS, QUEUE_CATS, QUEUES, RELEVANCE_CATS, SENTIMENT_CATS, SENTIMENTS
from beacons.nlp.mask import model_input
from beacons.nlp.tokenizer import NAME as TOKENIZER

COMPONENTS = {
    "textcat_queue": ("textcat", QUEUE_CATS, True),
    "textcat_intent": ("textcat_multilabel", INTENT_CATS, False),
    "textcat_sentiment": ("textcat", SENTIMENT_CATS, True),
    "textcat_relevance": ("textcat", RELEVANCE_CATS, True),
}
# Components that add a small CNN over token windows to their bag of words.
# Measured on the test brands (README): a CNN for relevance routed 93% of
# homonyms to none at 2,000 posts/s; the bag of words alone 91% at 3,600
# posts/s. Both meet the target, so the faster one ships.
ENSEMBLE: frozenset[str] = frozenset()
MODEL_NAME = "beacons_classifier"
MODEL_VERSION = "0.1.0"

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TrainText:
    text: str  # masked, lower-cased
    queue: str
    intents: tuple[str, ...]
    relevant: bool
    sentiment: str
    compound: float = 0.0  # VADER's score of the raw text
    queue_only: bool = False  # a team's re-route: it labels the queue, nothing else


CNN_WIDTH = 32
CNN_DEPTH = 1


def build_pipeline(
    *, ngram_size: int = 2, length: int = 2**17, ensemble: frozenset[str] | set[str] | None = None
) -> Language:
    ensemble = ENSEMBLE if ensemble is None else ensemble
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER}}})
    for name, (factory, labels, exclusive) in COMPONENTS.items():
        model: dict[str, Any] = {
            "@architectures": "spacy.TextCatBOW.v3",
            "exclusive_classes": exclusive,
            "ngram_size": ngram_size,
            "no_output_layer": False,
            "length": length,
        }
        if name in ensemble:
            model = {
                "@architectures": "spacy.TextCatEnsemble.v2",
                "linear_model": model,
                "tok2vec": {
                    "@architectures": "spacy.Tok2Vec.v2",
                    "embed": {
                        "@architectures": "spacy.MultiHashEmbed.v2",
                        "width": CNN_WIDTH,
                        "rows": [4000, 1000, 1000],
                        "attrs": ["NORM", "PREFIX", "SUFFIX"],
                        "include_static_vectors": False,
                    },
                    "encode": {
                        "@architectures": "spacy.MaxoutWindowEncoder.v2",
                        "width": CNN_WIDTH,
                        "window_size": 1,
                        "maxout_pieces": 3,
                        "depth": CNN_DEPTH,
                    },
                },
            }
        component = nlp.add_pipe(factory, name=name, config={"model": model})
        assert isinstance(component, TextCategorizer)  # textcat_multilabel subclasses it
        for label in labels:
            component.add_label(label)
    nlp.meta.update(
        {
            "name": MODEL_NAME,
            "version": MODEL_VERSION,
            "description": "beacons support/advocacy/none classifier, trained on masked text",
        }
    )
    return nlp


class MatcherCache:
    """One BrandMatcher per corpus brand, built on demand."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._cache: dict[str, BrandMatcher] = {}
        self._vader = SentimentIntensityAnalyzer()

    def vader(self, ex: Example) -> float:
        text = ex.full_text
        return float(self._vader.polarity_scores(text[:1000])["compound"]) if text.strip() else 0.0

    def mask(self, ex: Example) -> str:
        matcher = self._cache.get(ex.brand)
        if matcher is None:
            matcher = self._cache[ex.brand] = BrandMatcher([self.corpus.brands[ex.brand]])
        text = ex.full_text
        compound = self._vader.polarity_scores(text[:1000])["compound"] if text.strip() else 0.0
        return model_input(text, matcher.match_text(text), compound)


def to_train_texts(examples: Sequence[Example], masker: MatcherCache) -> list[TrainText]:
    return [
        TrainText(
            masker.mask(ex), ex.queue, ex.intents, ex.relevant, ex.sentiment, masker.vader(ex), ex.style == "feedback"
        )
        for ex in examples
    ]


def _cats(t: TrainText, component: str) -> dict[str, float]:
    if component == "textcat_queue":
        return {f"q:{q}": float(t.queue == q) for q in QUEUES}
    if component == "textcat_sentiment":
        return {f"s:{s}": float(t.sentiment == s) for s in SENTIMENTS}
    if component == "textcat_relevance":
        return {"r:relevant": float(t.relevant), "r:other": float(not t.relevant)}
    cats = {f"i:{i}": float(i in t.intents) for i in INTENTS}
    cats["relevant"] = float(t.relevant)
    return cats


HOMONYM_WEIGHT = 3  # homonyms are 5% of the corpus; the relevance label sees each one this many times


def _examples(nlp: Language, texts: Sequence[TrainText], component: str) -> list[SpacyExample]:
    out: list[SpacyExample] = []
    for t in texts:
        if t.queue_only and component != "textcat_queue":
            continue
        doc = nlp.make_doc(t.text)
        copies = HOMONYM_WEIGHT if component in ("textcat_intent", "textcat_relevance") and not t.relevant else 1
        out.extend(SpacyExample.from_dict(doc, {"cats": _cats(t, component)}) for _ in range(copies))
    return out


def _dev_score(nlp: Language, dev: Sequence[TrainText]) -> float:
    """Queue accuracy + sentiment accuracy on dev: the number the best epoch is chosen by."""
    if not dev:
        return 0.0
    right_q = right_s = 0
    for t, doc in zip(dev, nlp.pipe([t.text for t in dev], batch_size=256), strict=True):
        right_q += max(QUEUES, key=lambda q: doc.cats[f"q:{q}"]) == t.queue
        right_s += max(SENTIMENTS, key=lambda s: doc.cats[f"s:{s}"]) == t.sentiment
    return (right_q + right_s) / (2 * len(dev))


def _textcat(nlp: Language, name: str) -> TextCategorizer:
    component = nlp.get_pipe(name)
    assert isinstance(component, TextCategorizer)
    return component


def _fit(
    nlp: Language,
    texts: Sequence[TrainText],
    epochs: int,
    dropout: float,
    seed: int,
    on_epoch: Callable[[int, dict[str, float]], None],
) -> None:
    rng = random.Random(seed)
    per_component = {name: _examples(nlp, texts, name) for name in COMPONENTS}
    components = {name: _textcat(nlp, name) for name in COMPONENTS}
    for name, component in components.items():
        component.initialize(lambda name=name: per_component[name][:200], nlp=nlp)  # type: ignore[misc]
    optimizer = nlp.create_optimizer()  # type: ignore[no-untyped-call]
    for epoch in range(1, epochs + 1):
        losses: dict[str, float] = {}
        for name, examples in per_component.items():
            order = examples[:]
            rng.shuffle(order)
            for batch in minibatch(order, size=compounding(4.0, 32.0, 1.001)):  # type: ignore[no-untyped-call]
                components[name].update(batch, drop=dropout, sgd=optimizer, losses=losses)
        on_epoch(epoch, losses)


def choose_vader_weight(nlp: Language, dev: Sequence[TrainText]) -> float:
    """The share of VADER in the sentiment that gives the best macro-F1 on the dev brands."""
    from beacons.nlp.model import vader_probs

    if not dev:
        return 0.3
    cats = [doc.cats for doc in nlp.pipe([t.text for t in dev], batch_size=256)]
    best = (-1.0, 0.3)
    for w in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        pred = []
        for t, c in zip(dev, cats, strict=True):
            v = vader_probs(t.compound)
            pred.append(max(SENTIMENTS, key=lambda s: (1 - w) * c[f"s:{s}"] + w * v[s]))
        f1s = []
        for s in SENTIMENTS:
            tp = sum(p == s and t.sentiment == s for p, t in zip(pred, dev, strict=True))
            fp = sum(p == s and t.sentiment != s for p, t in zip(pred, dev, strict=True))
            fn = sum(p != s and t.sentiment == s for p, t in zip(pred, dev, strict=True))
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        score = sum(f1s) / len(f1s)
        if score > best[0] + 1e-9:
            best = (score, w)
    return best[1]


def train(
    out_dir: str | Path | None,
    *,
    corpus: Corpus | None = None,
    seed: int = 0,
    epochs: int = 6,
    dropout: float = 0.2,
    extra: Sequence[Example] = (),
    progress: Progress = print,
    limit: int | None = None,
    refit: bool = True,
) -> tuple[Language, dict[str, Any]]:
    """Pick the epoch count on the dev brands, then refit on train + dev and save to ``out_dir``.

    The test brands are never read here: ``beacons eval`` reports on them.
    """
    started = time.monotonic()
    corpus = corpus or load_corpus()
    split = split_brands(corpus)
    masker = MatcherCache(corpus)
    train_ex = examples_in(corpus, split, "train") + list(extra)
    dev_ex = examples_in(corpus, split, "dev")
    if limit:
        train_ex, dev_ex = train_ex[:limit], dev_ex[: max(1, limit // 4)]
    progress(
        f"corpus: {len(corpus.examples)} examples, {len(corpus.brands)} brands; train {len(train_ex)}, dev {len(dev_ex)}, test brands held out"
    )
    train_texts = to_train_texts(train_ex, masker)
    dev_texts = to_train_texts(dev_ex, masker)

    fix_random_seed(seed)
    nlp = build_pipeline()
    scores: list[float] = []

    def report(epoch: int, losses: dict[str, float]) -> None:
        scores.append(_dev_score(nlp, dev_texts))
        loss_text = " ".join(f"{k.replace('textcat_', '')}={v:.2f}" for k, v in losses.items())
        progress(
            f"epoch {epoch:2d}/{epochs}  loss {loss_text}  dev accuracy {scores[-1]:.3f}  ({time.monotonic() - started:.0f}s)"
        )

    _fit(nlp, train_texts, epochs, dropout, seed, report)
    best_epoch = max(range(len(scores)), key=lambda i: (scores[i], -i)) + 1
    progress(f"best dev accuracy {scores[best_epoch - 1]:.3f} after {best_epoch} epoch(s)")
    vader_weight = choose_vader_weight(nlp, dev_texts)
    progress(f"VADER share of sentiment chosen on dev: {vader_weight:.1f}")
    if refit and dev_texts:
        progress(f"refitting on train + dev ({len(train_texts) + len(dev_texts)} examples) for {best_epoch} epoch(s)")
        fix_random_seed(seed)
        nlp = build_pipeline()
        _fit(
            nlp,
            [*train_texts, *dev_texts],
            best_epoch,
            dropout,
            seed,
            lambda e, _loss: progress(f"refit epoch {e}/{best_epoch}"),
        )
    info = {
        "seed": seed,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "vader_weight": vader_weight,
        "dev_score": round(scores[best_epoch - 1], 4),
        "train_examples": len(train_ex) + (len(dev_ex) if refit else 0),
        "dev_examples": len(dev_ex),
        "test_brands": sorted(b for b, p in split.items() if p == "test"),
        "seconds": round(time.monotonic() - started, 1),
    }
    nlp.meta["beacons_training"] = info
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        nlp.to_disk(out)
        progress(f"saved model to {out} in {info['seconds']:.0f}s")
    return nlp, info
