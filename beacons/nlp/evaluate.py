"""Measure a classifier on the brand-disjoint test split: what ``beacons eval`` prints.

Every example goes through the product's own path: the brand matcher (with
that example's brand), masking, the classifier and its thresholds. Figures are
computed only on brands that were held out of training.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from beacons.classify import Classifier
from beacons.match import BrandMatcher
from beacons.nlp.corpus import Corpus, Example
from beacons.nlp.labels import INTENTS, QUEUES, SENTIMENTS


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": tp + fn}


def per_label(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, dict[str, float]]:
    out = {}
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        out[label] = prf(tp, fp, fn)
    return out


def evaluate(classifier: Classifier, corpus: Corpus, examples: Sequence[Example]) -> dict[str, Any]:
    matchers: dict[str, BrandMatcher] = {}
    items = []
    for ex in examples:
        m = matchers.get(ex.brand) or matchers.setdefault(ex.brand, BrandMatcher([corpus.brands[ex.brand]]))
        items.append((ex.full_text, m.match_text(ex.full_text)))
    started = time.perf_counter()
    results = classifier.classify_many(items)
    seconds = time.perf_counter() - started
    gold_q = [ex.queue for ex in examples]
    pred_q = [r.queue for r in results]
    gold_s = [ex.sentiment for ex in examples]
    pred_s = [r.sentiment for r in results]
    queue = per_label(gold_q, pred_q, QUEUES)
    sentiment = per_label(gold_s, pred_s, SENTIMENTS)
    confusion = {
        g: {p: sum(1 for a, b in zip(gold_q, pred_q, strict=True) if a == g and b == p) for p in QUEUES} for g in QUEUES
    }
    intents: dict[str, dict[str, float]] = {}
    for label in INTENTS:
        tp = fp = fn = 0
        for ex, r in zip(examples, results, strict=True):
            hit, want = r.intents.get(label, 0.0) >= 0.5, label in ex.intents
            tp, fp, fn = tp + (hit and want), fp + (hit and not want), fn + (want and not hit)
        intents[label] = prf(tp, fp, fn)
    homonyms = [(ex, r) for ex, r in zip(examples, results, strict=True) if not ex.relevant]
    by_style: dict[str, list[bool]] = defaultdict(list)
    by_lang: dict[str, list[bool]] = defaultdict(list)
    for ex, r in zip(examples, results, strict=True):
        by_style[ex.style].append(ex.queue == r.queue)
        by_lang["en" if ex.lang == "en" else "non-en"].append(ex.queue == r.queue)
    return {
        "examples": len(examples),
        "brands": sorted({ex.brand for ex in examples}),
        "unmatched": sum(1 for _, m in items if m is None),
        "queue_accuracy": round(sum(g == p for g, p in zip(gold_q, pred_q, strict=True)) / max(1, len(examples)), 4),
        "queue": queue,
        "confusion": confusion,
        "support_f1": queue["support"]["f1"],
        "advocacy_f1": queue["advocacy"]["f1"],
        "sentiment": sentiment,
        "sentiment_macro_f1": round(sum(v["f1"] for v in sentiment.values()) / len(SENTIMENTS), 4),
        "homonym_to_none": round(sum(r.queue == "none" for _, r in homonyms) / max(1, len(homonyms)), 4),
        "homonyms": len(homonyms),
        "intents": intents,
        "by_style": {
            k: {"n": len(v), "queue_accuracy": round(sum(v) / len(v), 4)} for k, v in sorted(by_style.items())
        },
        "by_lang": {k: {"n": len(v), "queue_accuracy": round(sum(v) / len(v), 4)} for k, v in sorted(by_lang.items())},
        "language_detected": dict(Counter(r.lang for r in results).most_common(8)),
        "posts_per_second": round(len(examples) / seconds, 1) if seconds else None,
        "model": classifier.name,
    }


TARGETS = {
    "support_f1": 0.92,
    "advocacy_f1": 0.85,
    "queue_accuracy": 0.90,
    "sentiment_macro_f1": 0.80,
    "homonym_to_none": 0.90,
}


def format_report(m: dict[str, Any]) -> str:
    lines = [
        f"model {m['model']} on {m['examples']} held-out examples from {len(m['brands'])} brands never seen in training",
        f"brands: {', '.join(m['brands'])}",
        "",
    ]
    lines.append(f"{'queue':10} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}")
    for label, v in m["queue"].items():
        lines.append(f"{label:10} {v['precision']:9.3f} {v['recall']:7.3f} {v['f1']:6.3f} {v['support']:5}")
    lines += ["", "confusion (rows gold, columns predicted)", f"{'':10}" + "".join(f"{q:>10}" for q in QUEUES)]
    for g in QUEUES:
        lines.append(f"{g:10}" + "".join(f"{m['confusion'][g][p]:10}" for p in QUEUES))
    lines += ["", f"{'sentiment':10} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}"]
    for label, v in m["sentiment"].items():
        lines.append(f"{label:10} {v['precision']:9.3f} {v['recall']:7.3f} {v['f1']:6.3f} {v['support']:5}")
    lines += ["", f"{'intent':16} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}"]
    for label, v in m["intents"].items():
        lines.append(f"{label:16} {v['precision']:9.3f} {v['recall']:7.3f} {v['f1']:6.3f} {v['support']:5}")
    lines += [
        "",
        "queue accuracy by source style: "
        + ", ".join(f"{k} {v['queue_accuracy']:.2f} (n={v['n']})" for k, v in m["by_style"].items()),
    ]
    lines.append(
        "queue accuracy by language: "
        + ", ".join(f"{k} {v['queue_accuracy']:.2f} (n={v['n']})" for k, v in m["by_lang"].items())
    )
    lines += ["", f"{'headline':22} {'value':>7} {'target':>7}"]
    for key, target in TARGETS.items():
        mark = "ok" if m[key] >= target else "below"
        lines.append(f"{key:22} {m[key]:7.3f} {target:7.2f}  {mark}")
    lines.append(f"(homonym posts: {m['homonyms']}; posts whose brand the matcher missed: {m['unmatched']})")
    return "\n".join(lines)
