"""Intents of the shipped model on the brand- and writer-disjoint test split, and per-intent thresholds (issue 12).

The target: each intent with enough test posts is found with recall >= 0.6 at precision >= 0.8. The
intents the shipped model misses are strict expected failures with its figures, so a retrained model
that reaches the target turns them into XPASS failures and this list gets shorter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from beacons.match import BrandMatcher
from beacons.models import Brand
from beacons.nlp.corpus import load_corpus
from beacons.nlp.evaluate import evaluate
from beacons.nlp.intents import THRESHOLDS_FILE, choose_thresholds, read_thresholds, write_thresholds
from beacons.nlp.labels import INTENTS
from beacons.nlp.model import Reading, SpacyClassifier, calibrate, find_model
from beacons.nlp.splits import make_splits

PRECISION, RECALL = 0.8, 0.6
ENOUGH = 30  # test posts with the intent; fewer say too little to assert on

# Test figures of the shipped model (seed 0, 9,597 posts, 2,608 test posts; intent thresholds chosen on dev
# before the refit, never below 0.5). High precision, low recall: the intents a post has besides its main one
# are usually missed. A retrained model that reaches the target turns its line into an XPASS failure.
MISSES = {
    "bug_outage": "precision 0.909, recall 0.490",
    "account_billing": "precision 0.876, recall 0.332",
    "how_to": "precision 0.808, recall 0.331",
    "order_delivery": "precision 0.870, recall 0.263",
    "complaint": "precision 0.746, recall 0.167",
    "praise": "precision 0.938, recall 0.151",
    "recommendation": "precision 0.714, recall 0.253",
    "testimonial": "precision 0.639, recall 0.190",
    "comparison": "precision 0.940, recall 0.431",
    "passing": "precision 0.958, recall 0.110",
    "homonym": "precision 0.845, recall 0.353",
}


@pytest.fixture(scope="module")
def test_figures() -> dict[str, dict[str, float]]:
    """Per-intent precision, recall and support of the shipped model on the test split (``beacons eval``)."""
    path = find_model()
    assert path is not None
    corpus = load_corpus()
    splits = make_splits(corpus, dedupe=("test",))
    metrics = evaluate(SpacyClassifier(path), corpus, splits.part("test"), splits=splits, with_trade_off=False)
    figures: dict[str, dict[str, float]] = metrics["intents"]
    print(f"\n{'intent':16} {'precision':>9} {'recall':>7} {'n':>5}")
    for name, v in figures.items():
        print(f"{name:16} {v['precision']:9.3f} {v['recall']:7.3f} {v['support']:5}")
    return figures


@pytest.mark.parametrize(
    "intent",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f"shipped model: {MISSES[name]}"))
        if name in MISSES
        else name
        for name in INTENTS
    ],
)
def test_nlp_intent_recall_at_precision_on_held_out_brands(test_figures: dict[str, Any], intent: str) -> None:
    v = test_figures[intent]
    if v["support"] < ENOUGH:
        pytest.skip(f"{intent}: {v['support']} test posts, fewer than {ENOUGH}")
    assert v["precision"] >= PRECISION and v["recall"] >= RECALL, (
        f"{intent}: precision {v['precision']:.3f}, recall {v['recall']:.3f} on {v['support']} test posts"
    )


# -- per-intent thresholds ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier() -> SpacyClassifier:
    path = find_model()
    assert path is not None
    return SpacyClassifier(path)


def _reading(text: str, cats: dict[str, float]) -> tuple[Reading, list[Reading], float]:
    return Reading(0, len(text), cats), [], 0.0


def test_nlp_intent_threshold_is_the_lowest_keeping_precision(classifier: SpacyClassifier) -> None:
    # job_ad: five true posts at 0.9, false ones at 0.55, 0.6 and 0.7: precision 5/8 at 0.5, 5/7 at 0.6, 5/6 at 0.65.
    scores = [(0.9, True)] * 5 + [(0.55, False), (0.6, False), (0.7, False)] + [(0.1, False)] * 3
    items = [(f"post {i}", None) for i in range(len(scores))]
    raw = [_reading(text, {"i:job_ad": s}) for (text, _), (s, _) in zip(items, scores, strict=True)]
    gold = [frozenset({"job_ad"}) if g else frozenset() for _, g in scores]
    chosen = choose_thresholds(classifier, items, raw, gold)
    assert chosen["job_ad"] == 0.65
    assert {chosen[name] for name in INTENTS if name != "job_ad"} == {0.5}  # no gold posts: the model's own 0.5


def test_nlp_intent_thresholds_beside_the_model_apply_at_classify_time(tmp_path: Path) -> None:
    shipped = find_model()
    assert shipped is not None
    model = tmp_path / "model"
    shutil.copytree(shipped, model)
    acme = Brand("Acme")
    text = "Acme dashboard is down, 502 errors since this morning"
    match = BrandMatcher([acme]).match_text(text)
    write_thresholds(model, dict.fromkeys(INTENTS, 0.5))
    raw = SpacyClassifier(model).classify(text, match).intents["bug_outage"]  # 0.5 leaves a score as it is
    assert 0.5 <= raw < 0.95
    write_thresholds(model, {**dict.fromkeys(INTENTS, 0.5), "bug_outage": 0.95})
    assert read_thresholds(model) == {**dict.fromkeys(INTENTS, 0.5), "bug_outage": 0.95}
    stricter = SpacyClassifier(model).classify(text, match).intents.get("bug_outage", 0.0)
    assert stricter == pytest.approx(calibrate(raw, 0.95), abs=1e-3) and stricter < 0.5
    assert json.loads((model / THRESHOLDS_FILE).read_text())["target_precision"] == PRECISION
