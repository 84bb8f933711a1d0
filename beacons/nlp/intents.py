"""Per-intent thresholds: for each intent, the raw score from which it is reported, chosen on dev (issue 12).

The intent classifier is multi-label and its scores are not calibrated alike: a
rare intent (``job_ad``) is sure of itself at 0.3, a broad one (``complaint``)
needs more. ``choose_thresholds`` picks, per intent, the lowest raw score whose
precision on the given posts reaches ``INTENT_PRECISION`` (so the highest recall
at that precision), going through the product's own path (passages mixed with
the whole post, as ``SpacyClassifier.decide`` does). At classify time each
intent's threshold is mapped to 0.5 (``model.calibrate``), so "an intent the
post has" stays ``score >= 0.5`` whatever the model.

The thresholds live in ``intent_thresholds.json`` beside the model: ``beacons
train`` writes it from the dev split before the final refit, and ``beacons eval
--tune-intents`` re-tunes a model already trained, with no retraining.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beacons.models import Match
from beacons.nlp.labels import INTENTS

if TYPE_CHECKING:
    from beacons.nlp.model import Combined, Reading, SpacyClassifier

THRESHOLDS_FILE = "intent_thresholds.json"
INTENT_PRECISION = 0.8
MIN_SUPPORT = 5  # fewer gold posts than this on dev: keep the model's own 0.5
# Never below the model's own 0.5. Thresholds chosen lower on dev (0.15..0.4, the first shipped model) lost
# their precision on the test brands and writers: on test, 3 of 14 intents kept precision >= 0.8 with recall
# >= 0.6, against 5 of 14 at 0.5 for every intent (README, "The classifier").
GRID = tuple(round(x / 100, 2) for x in range(50, 96, 5))
DEFAULT = 0.5

Readings = Sequence[tuple["Reading", Sequence["Reading"], float]]


def read_thresholds(model_dir: str | Path) -> dict[str, float] | None:
    """The thresholds in ``intent_thresholds.json`` beside a model, or None when it has none."""
    path = Path(model_dir) / THRESHOLDS_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: float(v) for name, v in data.get("thresholds", {}).items() if name in INTENTS}


def write_thresholds(model_dir: str | Path, thresholds: dict[str, float], **info: Any) -> Path:
    """Write ``intent_thresholds.json`` beside the model: the thresholds and how they were chosen."""
    path = Path(model_dir) / THRESHOLDS_FILE
    body = {"target_precision": INTENT_PRECISION, **info, "thresholds": {k: thresholds[k] for k in INTENTS}}
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def hits_at(
    clf: SpacyClassifier,
    items: Sequence[tuple[str, Match | None]],
    raw: Readings,
    thresholds: dict[str, float],
    combined: Combined | None = None,
    support_threshold: float | None = None,
) -> list[frozenset[str]]:
    """The intents each post is given with these raw thresholds (``raw``: readings without intent calibration)."""
    from beacons.nlp.model import Reading, calibrate

    def cal(r: Reading) -> Reading:
        cats = dict(r.cats)
        for name, t in thresholds.items():
            key = f"i:{name}"
            if key in cats:
                cats[key] = calibrate(cats[key], t)
        return Reading(r.start, r.end, cats)

    out = []
    for (text, match), (whole, parts, compound) in zip(items, raw, strict=True):
        c = clf.decide(text, match, cal(whole), [cal(p) for p in parts], compound, combined, support_threshold)
        out.append(frozenset(name for name, score in c.intents.items() if score >= 0.5))
    return out


def counts(gold: Sequence[frozenset[str]], pred: Sequence[frozenset[str]], name: str) -> tuple[int, int, int]:
    tp = sum(name in g and name in p for g, p in zip(gold, pred, strict=True))
    fp = sum(name not in g and name in p for g, p in zip(gold, pred, strict=True))
    fn = sum(name in g and name not in p for g, p in zip(gold, pred, strict=True))
    return tp, fp, fn


def choose_thresholds(
    clf: SpacyClassifier,
    items: Sequence[tuple[str, Match | None]],
    raw: Readings,
    gold: Sequence[frozenset[str]],
    *,
    precision: float = INTENT_PRECISION,
    combined: Combined | None = None,
    support_threshold: float | None = None,
) -> dict[str, float]:
    """Per intent, the lowest raw threshold in GRID whose precision on these posts is at least ``precision``.

    An intent with fewer than MIN_SUPPORT gold posts, or none reaching the precision, keeps 0.5.
    ``combined`` and ``support_threshold``: how to decide (``beacons train`` passes what it just chose on dev).
    """
    by_t = {t: hits_at(clf, items, raw, dict.fromkeys(INTENTS, t), combined, support_threshold) for t in GRID}
    out: dict[str, float] = {}
    for name in INTENTS:
        out[name] = DEFAULT
        if sum(name in g for g in gold) < MIN_SUPPORT:
            continue
        for t in GRID:
            tp, fp, _fn = counts(gold, by_t[t], name)
            if tp and tp / (tp + fp) >= precision:
                out[name] = t
                break
    return out


def raw_readings(clf: SpacyClassifier, items: Sequence[tuple[str, Match | None]]) -> Readings:
    """The model's readings with no intent calibration (thresholds are then tried on them)."""
    kept = clf.intent_thresholds
    clf.intent_thresholds = {}
    try:
        return clf.read(items)
    finally:
        clf.intent_thresholds = kept


def intent_table(
    clf: SpacyClassifier,
    part: tuple[Sequence[tuple[str, Match | None]], Readings, Sequence[frozenset[str]]],
    thresholds: dict[str, float],
) -> dict[str, tuple[float, float, int]]:
    """intent -> (precision, recall, gold posts) on one part (items, raw readings, gold intents)."""
    items, raw, gold = part
    pred = hits_at(clf, items, raw, thresholds)
    out = {}
    for name in INTENTS:
        tp, fp, fn = counts(gold, pred, name)
        out[name] = (tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0, tp + fn)
    return out
