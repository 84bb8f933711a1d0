"""``beacons train`` and ``beacons eval``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from beacons.classify import Classifier
from beacons.cli import EXIT_ERROR, EXIT_OK, Subparsers, command, parser_hook
from beacons.nlp.corpus import Corpus, Example

if TYPE_CHECKING:
    from beacons.nlp.model import SpacyClassifier


@parser_hook
def _add(groups: dict[str, Subparsers]) -> None:
    sub = groups[""]
    t = sub.add_parser(
        "train",
        help="rebuild the classifier from the corpus (fixed seed, a few minutes)",
        description="Train the spaCy classifier on the train split of beacons/data/corpus and save it. "
        "The default output replaces the model shipped in the package.",
    )
    t.add_argument("--out", metavar="DIR", help="where to save the model (default: the package's beacons/data/model)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same model")
    t.add_argument(
        "--epochs",
        type=int,
        default=4,
        help="most training epochs; the best count on the dev brands is used for the final fit (default 4; every run so far chose 1 or 2)",
    )
    t.add_argument("--corpus", metavar="DIR", help="corpus folder (default: the package's beacons/data/corpus)")
    t.add_argument(
        "--with-feedback",
        action="store_true",
        help="also learn from the team's corrections stored in the database: re-routes (queue) and "
        "`beacons queue relabel` (sentiment, intents)",
    )
    t.add_argument(
        "--config", "-c", metavar="FILE", help="config whose database holds the feedback (with --with-feedback)"
    )
    t.add_argument("--eval", action="store_true", help="print the evaluation on the held-out brands when done")
    e = sub.add_parser(
        "eval",
        help="precision/recall/F1 of the classifier on brands and writers it never saw",
        description="Evaluate a model on the test split of the corpus: brands and writers it never saw, with posts "
        "that copy a training post (after brand masking, exactly or nearly) dropped. Prints per-queue, sentiment and "
        "intent figures, the support threshold trade-off, figures per tag (long, buried, emoji, sarcasm, typos, "
        "non-English, news, homonyms...), per source style and per language, and the targets.",
    )
    e.add_argument(
        "--model", metavar="DIR", help="model directory (default: the shipped model); 'rules' for the rules classifier"
    )
    e.add_argument("--corpus", metavar="DIR", help="corpus folder (default: the package's)")
    e.add_argument("--split", choices=["test", "dev"], default="test", help="which held-out split (default test)")
    e.add_argument("--format", choices=["table", "json"], default="table")
    e.add_argument(
        "--tune-intents",
        action="store_true",
        help="choose each intent's threshold on the dev split (precision >= 0.8), write intent_thresholds.json "
        "beside the model, and print each intent's precision and recall before and after (no retraining)",
    )


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@command("train")
def cmd_train(args: argparse.Namespace) -> int:
    from beacons.nlp.corpus import check, load_corpus
    from beacons.nlp.model import MODEL_DIR
    from beacons.nlp.train import train

    corpus = load_corpus(args.corpus)
    problems = check(corpus)
    if problems:
        for p in problems[:20]:
            print(f"beacons: corpus: {p}", file=sys.stderr)
        return EXIT_ERROR
    extra = []
    if args.with_feedback:
        extra = _feedback(args, corpus)
        _progress(f"feedback: {len(extra)} corrected labels from the database")
    out = Path(args.out) if args.out else MODEL_DIR
    train(out, corpus=corpus, seed=args.seed, epochs=args.epochs, extra=extra, progress=_progress)
    if args.eval:
        return cmd_eval(argparse.Namespace(model=str(out), corpus=args.corpus, split="test", format="table"))
    return EXIT_OK


def _feedback(args: argparse.Namespace, corpus: Corpus) -> list[Example]:
    from beacons.cli import load
    from beacons.queue import feedback_examples
    from beacons.storage import Storage

    config = load(args)
    with Storage(config.database) as store:
        rows = feedback_examples(store)
    out = []
    for i, row in enumerate(rows):
        brand = row.get("brand")
        if not brand:
            continue
        if brand not in corpus.brands:
            # A feedback brand is not in the corpus brand table: register it so masking finds it.
            from beacons.config import to_brand

            match = next((b for b in config.brands if b.name == brand), None)
            if match is None:
                continue
            corpus.brands[brand] = to_brand(match)
        queue = row["queue"]
        labels = row.get("labels") or ["queue"]
        sentiment = row.get("sentiment") or ("positive" if queue == "advocacy" else "neutral")
        out.append(
            Example(
                f"feedback-{i}",
                brand,
                row.get("text") or "",
                row.get("title"),
                "feedback",
                "en",
                queue,
                tuple(row.get("intents") or ()),
                True,
                sentiment,
                writer="feedback",
                tags=tuple(f"label:{name}" for name in labels),
            )
        )
    return out


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    from beacons.classify import RulesClassifier
    from beacons.nlp.corpus import load_corpus
    from beacons.nlp.evaluate import evaluate, format_report
    from beacons.nlp.model import SpacyClassifier, find_model
    from beacons.nlp.splits import make_splits

    corpus = load_corpus(args.corpus)
    classifier: Classifier
    if args.model == "rules":
        classifier = RulesClassifier()
    else:
        path = find_model(args.model)
        if path is None:
            print(
                f"beacons: no trained model at {args.model or 'the package default'}; run `beacons train` first",
                file=sys.stderr,
            )
            return EXIT_ERROR
        classifier = SpacyClassifier(path)
    if getattr(args, "tune_intents", False):
        if not isinstance(classifier, SpacyClassifier):
            print("beacons: --tune-intents needs a trained model, not the rules classifier", file=sys.stderr)
            return EXIT_ERROR
        return _tune_intents(classifier, corpus)
    splits = make_splits(corpus, dedupe=(args.split,))
    metrics = evaluate(classifier, corpus, splits.part(args.split), splits=splits, part=args.split)
    if args.format == "json":
        print(json.dumps(metrics, indent=2))
    else:
        print(format_report(metrics))
    return EXIT_OK


def _tune_intents(classifier: SpacyClassifier, corpus: Corpus) -> int:
    """``beacons eval --tune-intents``: per-intent thresholds chosen on dev, written beside the model."""
    from beacons.nlp.evaluate import items_of
    from beacons.nlp.intents import INTENT_PRECISION, choose_thresholds, intent_table, raw_readings, write_thresholds
    from beacons.nlp.splits import make_splits

    splits = make_splits(corpus, dedupe=("dev", "test"))
    parts = {}
    for part in ("dev", "test"):
        examples = splits.part(part)
        items = items_of(corpus, examples)
        parts[part] = (items, raw_readings(classifier, items), [frozenset(ex.intents) for ex in examples])
    before = dict(classifier.intent_thresholds)
    after = choose_thresholds(classifier, *parts["dev"])
    training = classifier.nlp.meta.get("beacons_training", {})
    seen_dev = bool(training.get("refit", training.get("dev_examples", 0)))
    if seen_dev:
        _progress("note: this model was refit on train + dev, so dev figures are in-sample; test is the honest one")
    path = write_thresholds(
        classifier.path, after, chosen_on="dev (beacons eval --tune-intents)", model_seen_dev=seen_dev
    )
    print(f"intent thresholds (raw score reported as 0.5; target precision {INTENT_PRECISION} on dev) -> {path}")
    print(
        f"{'intent':16} {'before':>6} {'after':>6}   {'dev P/R before':>15} {'dev P/R after':>14}   "
        f"{'test P/R before':>15} {'test P/R after':>14} {'n test':>6}"
    )
    tables = {
        (part, when): intent_table(classifier, parts[part], th)
        for part in ("dev", "test")
        for when, th in (("before", before), ("after", after))
    }
    for name in after:
        cells = [tables[(part, when)][name] for part in ("dev", "test") for when in ("before", "after")]
        pr = [f"{p:.3f}/{r:.3f}" for p, r, _n in cells]
        print(
            f"{name:16} {before.get(name, 0.5):6.2f} {after[name]:6.2f}   {pr[0]:>15} {pr[1]:>14}   "
            f"{pr[2]:>15} {pr[3]:>14} {cells[2][2]:6}"
        )
    return EXIT_OK
