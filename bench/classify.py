"""Classifier throughput, load time and size: ``python bench/classify.py``.

Runs the shipped spaCy classifier (match + mask + three textcats + VADER +
language id) over the corpus texts in one process, pinned to one core when
the OS allows, and prints posts/second beside VADER alone (the reference).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=20_000, help="posts to classify (the corpus, repeated)")
    parser.add_argument("--model", help="model directory (default: shipped)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the figures on stdout (the table goes to stderr)",
    )
    args = parser.parse_args()
    out = sys.stderr if args.json else sys.stdout
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from beacons.match import BrandMatcher
    from beacons.nlp.corpus import load_corpus
    from beacons.nlp.model import SpacyClassifier, find_model

    corpus = load_corpus()
    path = find_model(args.model)
    if path is None:
        print("no model: run `beacons train` first", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    t = time.perf_counter()
    clf = SpacyClassifier(path)
    load_s = time.perf_counter() - t
    matchers = {name: BrandMatcher([b]) for name, b in corpus.brands.items()}
    base = [(ex.full_text, matchers[ex.brand].match_text(ex.full_text)) for ex in corpus.examples]
    items = (base * (args.posts // len(base) + 1))[: args.posts]
    print(f"classifying {len(items)} posts on one core...", file=sys.stderr)
    clf.classify_many(items[:500])  # warm up
    t = time.perf_counter()
    for i in range(0, len(items), 1000):
        clf.classify_many(items[i : i + 1000])
    model_s = time.perf_counter() - t
    vader = SentimentIntensityAnalyzer()
    t = time.perf_counter()
    for text, _ in items:
        vader.polarity_scores(text[:1000])
    vader_s = time.perf_counter() - t
    print(f"{'measure':34} {'value':>12} {'target':>10}", file=out)
    print(f"{'classifier posts/second (1 core)':34} {len(items) / model_s:12,.0f} {'>= 2,000':>10}", file=out)
    print(f"{'VADER alone posts/second':34} {len(items) / vader_s:12,.0f} {'(ref)':>10}", file=out)
    print(f"{'model load time (s)':34} {load_s:12.2f} {'< 2':>10}", file=out)
    print(f"{'model size on disk (MB)':34} {size / 1e6:12.1f} {'< 30':>10}", file=out)
    if args.json:
        figures = {
            "posts": len(items),
            "posts_per_s": round(len(items) / model_s),
            "vader_posts_per_s": round(len(items) / vader_s),
            "load_s": round(load_s, 2),
            "size_mb": round(size / 1e6, 1),
        }
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
