"""Measure a classifier on the brand- and writer-disjoint test split: what ``beacons eval`` prints.

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
from beacons.models import Classification, Match
from beacons.nlp.corpus import TAGS, Corpus, Example
from beacons.nlp.labels import INTENTS, QUEUES, SENTIMENTS
from beacons.nlp.splits import Splits


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


TRADE_OFF = (0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8)
INTENT_PRECISION = 0.8
STYLE_TAGS = TAGS


def _acc(pairs: Sequence[tuple[Example, Classification]]) -> float:
    return round(sum(ex.queue == r.queue for ex, r in pairs) / len(pairs), 4) if pairs else 0.0


def trade_off(
    classifier: Classifier, items: Sequence[tuple[str, Match | None]], gold: Sequence[str]
) -> list[dict[str, float]]:
    """Support precision and recall at each ``routing.support_threshold`` in TRADE_OFF."""
    read = getattr(classifier, "read", None)
    decide = getattr(classifier, "decide", None)
    rows = []
    readings = read(items) if read is not None and decide is not None else None
    plain = classifier.classify_many(items) if readings is None else None
    for t in TRADE_OFF:
        if readings is not None and decide is not None:
            pred = [
                decide(text, match, whole, parts, compound, None, t).queue == "support"
                for (text, match), (whole, parts, compound) in zip(items, readings, strict=True)
            ]
        else:
            assert plain is not None
            pred = [
                r.scores.get("support", 0.0) >= t and r.scores.get("support", 0.0) >= r.scores.get("advocacy", 0.0)
                for r in plain
            ]
        tp = sum(p and g == "support" for p, g in zip(pred, gold, strict=True))
        fp = sum(p and g != "support" for p, g in zip(pred, gold, strict=True))
        fn = sum(not p and g == "support" for p, g in zip(pred, gold, strict=True))
        row = prf(tp, fp, fn)
        rows.append({"threshold": t, **row, "cards_per_100": round(100 * (tp + fp) / max(1, len(gold)), 1)})
    return rows


def items_of(corpus: Corpus, examples: Sequence[Example]) -> list[tuple[str, Match | None]]:
    """Each example's full text and the brand matcher's match of its brand: the product's own input."""
    matchers: dict[str, BrandMatcher] = {}
    items = []
    for ex in examples:
        m = matchers.get(ex.brand) or matchers.setdefault(ex.brand, BrandMatcher([corpus.brands[ex.brand]]))
        items.append((ex.full_text, m.match_text(ex.full_text)))
    return items


def evaluate(
    classifier: Classifier,
    corpus: Corpus,
    examples: Sequence[Example],
    *,
    splits: Splits | None = None,
    part: str = "test",
    with_trade_off: bool = True,
) -> dict[str, Any]:
    items = items_of(corpus, examples)
    started = time.perf_counter()
    results = classifier.classify_many(items)
    seconds = time.perf_counter() - started
    pairs = list(zip(examples, results, strict=True))
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
        for ex, r in pairs:
            hit, want = r.intents.get(label, 0.0) >= 0.5, label in ex.intents
            tp, fp, fn = tp + (hit and want), fp + (hit and not want), fn + (want and not hit)
        intents[label] = prf(tp, fp, fn)
    homonyms = [(ex, r) for ex, r in pairs if not ex.relevant]
    by_style: dict[str, list[tuple[Example, Classification]]] = defaultdict(list)
    by_lang: dict[str, list[tuple[Example, Classification]]] = defaultdict(list)
    by_tag: dict[str, list[tuple[Example, Classification]]] = defaultdict(list)
    for ex, r in pairs:
        by_style[ex.style].append((ex, r))
        by_lang[ex.lang].append((ex, r))
        for tag in ex.tags:
            by_tag[tag].append((ex, r))
    buried = [(ex, r) for ex, r in by_tag.get("buried", []) if ex.queue == "support"]
    long_posts = by_tag.get("long", [])
    non_en = [(ex, r) for ex, r in pairs if ex.lang != "en"]
    misses = sum(1 for ex, r in pairs if ex.queue != "none" and r.queue == "none")
    errors = sum(1 for ex, r in pairs if ex.queue != r.queue)
    evidence_hits = [
        ex.evidence in r.evidence.text or r.evidence.text in ex.evidence
        for ex, r in pairs
        if ex.evidence and r.evidence is not None and ex.queue == r.queue and ex.queue != "none"
    ]
    out: dict[str, Any] = {
        "part": part,
        "examples": len(examples),
        "brands": sorted({ex.brand for ex in examples}),
        "writers": len({ex.writer for ex in examples}),
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
        "long_queue_accuracy": _acc(long_posts),
        "buried_to_support": round(sum(r.queue == "support" for _, r in buried) / len(buried), 4) if buried else 0.0,
        "buried": len(buried),
        "emoji_queue_accuracy": _acc(by_tag.get("emoji", [])),
        "typos_queue_accuracy": _acc(by_tag.get("typos", [])),
        "sarcasm_queue_accuracy": _acc(by_tag.get("sarcasm", [])),
        "non_english_queue_accuracy": _acc(non_en),
        "misses": {"errors": errors, "missed_to_none": misses},
        "evidence_agrees": round(sum(evidence_hits) / len(evidence_hits), 4) if evidence_hits else None,
        "evidence_checked": len(evidence_hits),
        "intents": intents,
        "by_style": {k: {"n": len(v), "queue_accuracy": _acc(v)} for k, v in sorted(by_style.items())},
        "by_tag": {k: {"n": len(by_tag[k]), "queue_accuracy": _acc(by_tag[k])} for k in STYLE_TAGS if by_tag.get(k)},
        "by_lang": {k: {"n": len(v), "queue_accuracy": _acc(v)} for k, v in sorted(by_lang.items())},
        "language_detected": dict(Counter(r.lang for r in results).most_common(12)),
        "posts_per_second": round(len(examples) / seconds, 1) if seconds else None,
        "model": classifier.name,
    }
    if splits is not None:
        held = [(ex, r) for ex, r in pairs if splits.writers.get(ex.writer) in ("dev", "test")]
        held_q = per_label([ex.queue for ex, _ in held], [r.queue for _, r in held], QUEUES)
        leaks = splits.leaks.get(part)
        out["held_out_writers"] = {
            "n": len(held),
            "writers": len({ex.writer for ex, _ in held}),
            "queue_accuracy": _acc(held),
            "support_f1": held_q["support"]["f1"],
            "advocacy_f1": held_q["advocacy"]["f1"],
        }
        out["unseen"] = {name: _subset(sub) for name, sub in _unseen_subsets(pairs, splits).items()}
        out["leak_check"] = {
            "checked": leaks.checked if leaks else 0,
            "exact": len(leaks.exact) if leaks else 0,
            "near": len(leaks.near) if leaks else 0,
            "dropped": (len(leaks.exact) + len(leaks.near)) if leaks else 0,
            "unused_posts": splits.unused,
            "shingle": "word 5-grams after brand masking, Jaccard >= 0.8",
            "sample": [list(p) for p in (leaks.pairs[:5] if leaks else ())],
        }
    if with_trade_off:
        out["trade_off"] = trade_off(classifier, items, gold_q)
    return out


def _unseen_subsets(pairs: Sequence[tuple[Example, Classification]], splits: Splits) -> dict[str, list[Any]]:
    """Evaluated posts by what the model never saw: their brand only, their writer only, or both."""
    out: dict[str, list[Any]] = {"brand": [], "writer": [], "brand+writer": []}
    for ex, r in pairs:
        brand = splits.brands.get(ex.brand, "train") != "train"
        writer = splits.writers.get(ex.writer, "train") != "train"
        key = "brand+writer" if brand and writer else "brand" if brand else "writer" if writer else None
        if key:
            out[key].append((ex, r))
    return out


def _subset(pairs: Sequence[tuple[Example, Classification]]) -> dict[str, Any]:
    q = per_label([ex.queue for ex, _ in pairs], [r.queue for _, r in pairs], QUEUES)
    long_posts = [(ex, r) for ex, r in pairs if "long" in ex.tags]
    return {
        "n": len(pairs),
        "queue_accuracy": _acc(pairs),
        "support_f1": q["support"]["f1"],
        "advocacy_f1": q["advocacy"]["f1"],
        "long_queue_accuracy": _acc(long_posts),
        "long": len(long_posts),
    }


TARGETS = {
    "support_f1": 0.93,
    "advocacy_f1": 0.88,
    "queue_accuracy": 0.91,
    "sentiment_macro_f1": 0.85,
    "homonym_to_none": 0.92,
    "long_queue_accuracy": 0.85,
    "buried_to_support": 0.85,
    "emoji_queue_accuracy": 0.80,
    "typos_queue_accuracy": 0.80,
    "sarcasm_queue_accuracy": 0.80,
    "non_english_queue_accuracy": 0.85,
}


def format_report(m: dict[str, Any]) -> str:
    lines = [
        f"model {m['model']} on {m['examples']} held-out {m.get('part', 'test')} posts ({len(m['brands'])} brands, "
        f"{m.get('writers', '?')} writers), each about a brand or by a writer never seen in training",
        f"brands: {', '.join(m['brands'])}",
        "",
    ]
    if "leak_check" in m:
        lc = m["leak_check"]
        lines.append(
            f"leak check: {lc['checked']} posts against train ({lc['shingle']}): {lc['exact']} exact and {lc['near']} near "
            f"copies dropped; {lc['unused_posts']} posts unused (brand and writer held out in different parts)"
        )
        lines.append("")
    lines.append(f"{'queue':10} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}")
    for label, v in m["queue"].items():
        lines.append(f"{label:10} {v['precision']:9.3f} {v['recall']:7.3f} {v['f1']:6.3f} {v['support']:5}")
    lines += ["", "confusion (rows gold, columns predicted)", f"{'':10}" + "".join(f"{q:>10}" for q in QUEUES)]
    for g in QUEUES:
        lines.append(f"{g:10}" + "".join(f"{m['confusion'][g][p]:10}" for p in QUEUES))
    lines.append(
        f"errors {m['misses']['errors']}, of which support/advocacy routed to none: {m['misses']['missed_to_none']}"
    )
    lines += ["", f"{'sentiment':10} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}"]
    for label, v in m["sentiment"].items():
        lines.append(f"{label:10} {v['precision']:9.3f} {v['recall']:7.3f} {v['f1']:6.3f} {v['support']:5}")
    lines += ["", f"{'intent':16} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}"]
    for label, v in m["intents"].items():
        lines.append(f"{label:16} {v['precision']:9.3f} {v['recall']:7.3f} {v['f1']:6.3f} {v['support']:5}")
    if m.get("trade_off"):
        lines += [
            "",
            "support threshold trade-off (routing.support_threshold; 0.5 = the operating point chosen on dev)",
            f"{'threshold':>9} {'precision':>9} {'recall':>7} {'f1':>6} {'cards/100 posts':>16}",
        ]
        for row in m["trade_off"]:
            lines.append(
                f"{row['threshold']:9.2f} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} {row['cards_per_100']:16.1f}"
            )
    lines += ["", "queue accuracy by tag:"]
    lines += [f"  {k:17} {v['queue_accuracy']:.3f}  (n={v['n']})" for k, v in m["by_tag"].items()]
    lines.append(
        "queue accuracy by source style: "
        + ", ".join(f"{k} {v['queue_accuracy']:.2f} (n={v['n']})" for k, v in m["by_style"].items())
    )
    lines.append(
        "queue accuracy by language: "
        + ", ".join(f"{k} {v['queue_accuracy']:.2f} (n={v['n']})" for k, v in m["by_lang"].items())
    )
    if "held_out_writers" in m:
        h = m["held_out_writers"]
        lines.append(
            f"held-out writers only ({h['writers']} writers, {h['n']} posts): queue accuracy {h['queue_accuracy']:.3f}, "
            f"support F1 {h['support_f1']:.3f}, advocacy F1 {h['advocacy_f1']:.3f}"
        )
    for name, v in (m.get("unseen") or {}).items():
        lines.append(
            f"unseen {name:14} n={v['n']:<5} queue accuracy {v['queue_accuracy']:.3f}, support F1 {v['support_f1']:.3f}, "
            f"advocacy F1 {v['advocacy_f1']:.3f}, long {v['long_queue_accuracy']:.3f} (n={v['long']})"
        )
    if m.get("evidence_agrees") is not None:
        lines.append(
            f"evidence passage agrees with the labeled evidence: {m['evidence_agrees']:.3f} (n={m['evidence_checked']})"
        )
    lines += ["", f"{'headline':28} {'value':>7} {'target':>7}"]
    for key, target in TARGETS.items():
        mark = "ok" if m[key] >= target else "below"
        lines.append(f"{key:28} {m[key]:7.3f} {target:7.2f}  {mark}")
    lines.append(
        f"(homonym posts: {m['homonyms']}; buried support posts: {m['buried']}; posts whose brand the matcher missed: {m['unmatched']})"
    )
    return "\n".join(lines)
