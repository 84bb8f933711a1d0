"""Correcting sentiment and intents as well as the queue (issue 12): CLI -> database -> training labels."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_queue import config_data, make_config, seed

from beacons import queue as q
from beacons.cli import main
from beacons.config import Config
from beacons.feedback import relabel
from beacons.nlp.corpus import load_corpus
from beacons.nlp.train import COMPONENTS, MatcherCache, _examples, build_pipeline, to_train_texts
from beacons.queue import InvalidInput
from beacons.store import Store

WIFI, PRAISE = 3, 6  # beacon ids of helpers_queue.POSTS


@pytest.fixture
def config(tmp_path: Path) -> Config:
    config = make_config(tmp_path / "queue.db")
    seed(config)
    return config


@pytest.fixture
def config_file(tmp_path: Path, config: Config) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(Path(config.database), serve={"tokens": ["x" * 20]})), encoding="utf-8")
    return str(path)


def test_feedback_relabel_cli_stores_sentiment_and_intents(capsys: Any, config: Config, config_file: str) -> None:
    code = main(
        [
            *("queue", "relabel", str(WIFI), "--sentiment", "negative", "--intent", "bug_outage"),
            *("--intent", "complaint", "--by", "maria", "-c", config_file, "--format", "json"),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["sentiment"] == "negative" and out["sentiment_score"] < 0
    store = Store(config.database)
    try:
        last = q.history(store, WIFI)[-1]
        assert (last.actor, last.action, last.detail) == (
            "maria",
            "relabel",
            "sentiment negative, intents bug_outage, complaint",
        )
        [example] = q.feedback_examples(store)
        assert example["sentiment"] == "negative" and example["intents"] == ["bug_outage", "complaint"]
        assert example["labels"] == ["sentiment", "intents"]  # the queue was not corrected
    finally:
        store.close()


def test_feedback_relabel_refuses_unknown_labels(config: Config) -> None:
    store = Store(config.database)
    try:
        with pytest.raises(InvalidInput, match="sentiment: expected one of negative, neutral, positive"):
            relabel(store, WIFI, "maria", sentiment="angry")
        with pytest.raises(InvalidInput, match="unknown 'bugs'"):
            relabel(store, WIFI, "maria", intents=["bugs"])
        with pytest.raises(InvalidInput, match="at least one of"):
            relabel(store, WIFI, "maria")
        assert q.feedback_examples(store) == []  # nothing half-written
    finally:
        store.close()


def test_feedback_train_with_feedback_learns_all_three_fields(config: Config, config_file: str) -> None:
    from beacons.nlp.cli import _feedback

    store = Store(config.database)
    try:
        relabel(store, WIFI, "maria", sentiment="negative", intents=["bug_outage"])
        relabel(store, PRAISE, "maria", queue="none")  # a re-route through relabel
    finally:
        store.close()
    corpus = load_corpus()
    examples = _feedback(argparse.Namespace(config=config_file), corpus)  # registers the config's brands in it
    by_queue = {e.queue: e for e in examples}
    assert set(by_queue) == {"support", "none"}
    fixed = by_queue["support"]
    assert (fixed.sentiment, fixed.intents, fixed.style) == ("negative", ("bug_outage",), "feedback")
    texts = to_train_texts(examples, MatcherCache(corpus))
    nlp = build_pipeline()
    per_component = {name: len(_examples(nlp, texts, name)) for name in COMPONENTS}
    # the relabel teaches sentiment and intents; the re-route teaches the queue; neither teaches relevance
    assert per_component == {"textcat_queue": 1, "textcat_intent": 1, "textcat_sentiment": 1, "textcat_relevance": 0}
