"""The trained classifier: hard cases pinned, the JSONL contract, reproducible training, honest evaluation."""

from __future__ import annotations

import io
import json

import pytest

from beacons.cli import classify_stream
from beacons.match import BrandMatcher
from beacons.models import Brand, Product
from beacons.nlp.corpus import check, examples_in, load_corpus, split_brands
from beacons.nlp.evaluate import evaluate
from beacons.nlp.lang import detect
from beacons.nlp.mask import mask_text
from beacons.nlp.model import SpacyClassifier, find_model
from beacons.nlp.train import train

# Brands that are not in the training corpus: the model must generalise to them.
ACME = Brand("Acme", ("Acme Corp",), ("@AcmeSupport", "@acme"), (Product("RouterX", ("Router X",)),))
PEBBLE = Brand("Pebble", (), ("@pebblehelp",), (Product("Pebble Loop"),))


@pytest.fixture(scope="module")
def classifier() -> SpacyClassifier:
    path = find_model()
    assert path is not None, "the trained model must ship in beacons/data/model"
    return SpacyClassifier(path)


def _classify(classifier: SpacyClassifier, text: str, brand: Brand = ACME):  # type: ignore[no-untyped-def]
    return classifier.classify(text, BrandMatcher([brand]).match_text(text))


@pytest.mark.parametrize(
    ("case", "text", "queue"),
    [
        ("plain bug", "My Acme RouterX drops wifi every night since the update. Rebooted twice, no luck.", "support"),
        (
            "sarcasm",
            "Oh great, the RouterX app logged me out AGAIN and the password reset email never arrives. Fantastic work, really.",
            "support",
        ),
        (
            "sarcastic delivery",
            "love how my Acme order has been 'arriving today' for six days straight. amazing service",
            "support",
        ),
        (
            "negation praise",
            "Six months with the RouterX and not a single dropout. Can't recommend it enough.",
            "advocacy",
        ),
        (
            "buried complaint",
            (
                "Spent the weekend repainting the spare room, the kids helped and we ordered pizza. "
                "The only downer was the Acme app, it keeps logging me out and the password reset email never arrives, so I "
                "could not even check the router. Anyway the room looks great and the cat approves."
            ),
            "support",
        ),
        ("bare ping", "@AcmeSupport help", "support"),
        ("thanks for fix", "Acme support sorted my refund in ten minutes. Thank you, that was painless!", "advocacy"),
        (
            "outage news",
            "Acme Corp shares fell 4% on Tuesday after the company confirmed a cloud outage that hit router owners.",
            "none",
        ),
        (
            "job ad",
            "We're hiring! Acme is looking for a senior firmware engineer, remote in the EU. Apply now.",
            "none",
        ),
        ("giveaway", "GIVEAWAY: follow us and retweet to win a brand new Acme RouterX! Ends Friday.", "none"),
        (
            "pre-purchase",
            "Acme RouterX or a Brightwave mesh kit for a three bedroom house? Which one should I buy?",
            "none",
        ),
    ],
)
def test_nlp_hard_cases(classifier: SpacyClassifier, case: str, text: str, queue: str) -> None:
    result = _classify(classifier, text)
    assert result.queue == queue, f"{case}: {result.queue} {result.scores}"
    assert result.is_beacon == (queue == "support")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "Wow, thanks Acme, the RouterX has rebooted itself 4 times today. Truly world class engineering 🙃",
            marks=pytest.mark.xfail(
                strict=True,
                reason="known weakness of the 8,577- and 9,597-post models: 'thanks' and 'world class' outweigh "
                "'rebooted itself' (sarcasm 0.69 on the test split; the 6,525-post model got this one right)",
            ),
        ),
        pytest.param(
            "Thanks Acme for charging me twice this month, really appreciate it 🙄",
            marks=pytest.mark.xfail(
                strict=True,
                reason="known weakness: sarcasm whose only problem words are mild reads as thanks (README, The classifier)",
            ),
        ),
    ],
)
def test_nlp_dry_sarcasm_is_support(classifier: SpacyClassifier, text: str) -> None:
    assert _classify(classifier, text).queue == "support"


@pytest.mark.parametrize(
    "text",
    [
        "Skipping a pebble across the lake with my niece, seven bounces!",
        "there's a pebble in my shoe and I refuse to stop walking to remove it",
    ],
)
def test_nlp_homonym_routes_to_none(classifier: SpacyClassifier, text: str) -> None:
    result = _classify(classifier, text, PEBBLE)
    real = _classify(classifier, "my Pebble Loop watch died after the update, anyone else?", PEBBLE)
    assert result.queue == "none"
    assert result.relevance < real.relevance
    assert real.queue == "support"


@pytest.mark.xfail(
    strict=True,
    reason="known weakness: a capitalised place name with praise reads as advocacy; brands[].exclude "
    "('pebble beach') is the fix (next test)",
)
def test_nlp_capitalised_place_homonym_routes_to_none(classifier: SpacyClassifier) -> None:
    assert _classify(classifier, "Pebble beach golf trip was worth every penny", PEBBLE).queue == "none"


def test_nlp_exclude_phrase_handles_the_place_homonym() -> None:
    brand = Brand("Pebble", (), (), (), ("pebble beach",))
    assert BrandMatcher([brand]).match_text("Pebble beach golf trip was worth every penny") is None


def test_nlp_sentiment_of_frustrated_and_happy_posts(classifier: SpacyClassifier) -> None:
    angry = _classify(classifier, "Acme RouterX is garbage. Third outage this week and support ignores me. Furious.")
    happy = _classify(classifier, "Love my new Acme RouterX, fastest wifi I've ever had, setup took five minutes!")
    assert angry.sentiment == "negative" and angry.sentiment_score < 0
    assert happy.sentiment == "positive" and happy.sentiment_score > 0


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Mi router Acme se desconecta cada noche desde la actualización, alguien sabe cómo arreglarlo?", "es"),
        ("Mein Acme RouterX verliert jede Nacht das WLAN. Hat jemand eine Lösung?", "de"),
        ("Mon routeur Acme plante tous les soirs depuis la mise à jour, aidez-moi", "fr"),
    ],
)
def test_nlp_non_english_carries_its_language(classifier: SpacyClassifier, text: str, lang: str) -> None:
    result = _classify(classifier, text)
    assert result.lang == lang
    assert result.queue == "support"


def test_nlp_html_remnants_are_cleaned_before_classifying(classifier: SpacyClassifier) -> None:
    from beacons.pipeline import classify_texts

    html = "<p>My <b>Acme</b> RouterX&nbsp;won't connect to 5GHz any more &amp; support hasn't replied <script>x()</script></p>"
    plain = "My Acme RouterX won't connect to 5GHz any more & support hasn't replied"
    [record, clean] = classify_texts([("", html), ("", plain)], BrandMatcher([ACME]), classifier)
    assert record["brand"] == "Acme" and record["product"] == "RouterX"
    # The markup, entities and script leave no trace: the post reads exactly as its plain text does.
    assert (record["queue"], record["scores"]) == (clean["queue"], clean["scores"])
    assert "script" not in str(record.get("evidence") or "") and "&nbsp;" not in str(record.get("evidence") or "")
    [ok] = classify_texts(
        [("", "<p>My <b>Acme</b> RouterX&nbsp;keeps crashing, please help</p>")], BrandMatcher([ACME]), classifier
    )
    assert ok["queue"] == "support"


@pytest.mark.xfail(
    strict=True,
    reason="known weakness of the 9,597-post model (the plain recipe retrained on it too; the 8,577-post model "
    "got it right): 'won't connect' with 'support hasn't replied' scores support 0.33, none 0.50",
)
def test_nlp_calm_connection_complaint_is_support(classifier: SpacyClassifier) -> None:
    text = "My Acme RouterX won't connect to 5GHz any more & support hasn't replied"
    assert _classify(classifier, text).queue == "support"


def test_nlp_empty_and_huge_texts(classifier: SpacyClassifier) -> None:
    empty = classifier.classify("", None)
    assert empty.queue == "none" and not empty.is_beacon
    huge = "My Acme RouterX keeps crashing. " + "filler words about the weather. " * 3300  # ~100 KB
    result = _classify(classifier, huge)
    assert result.queue in ("support", "advocacy", "none")
    assert len(mask_text(huge, BrandMatcher([ACME]).match_text(huge))) <= 6_000


def test_nlp_mask_hides_names_but_keeps_case_signal() -> None:
    text = "Acme RouterX broke. my acme router is fine. ping @AcmeSupport"
    masked = mask_text(text, BrandMatcher([ACME]).match_text(text))
    assert "acme" not in masked and "routerx" not in masked
    assert "zzbrandst" in masked and "zzbrandlc" in masked and "zzproduct" in masked and "zzhandle" in masked


def test_nlp_language_detection_never_defaults_non_ascii_to_english() -> None:
    assert detect("Привет, мой роутер не работает")[0] == "ru"
    assert detect("ça plante")[0] != "en"


def test_nlp_classify_jsonl_contract(classifier: SpacyClassifier) -> None:
    lines = [
        {"id": 1, "text": "@AcmeSupport my RouterX drops wifi every night, help"},
        {
            "id": "b",
            "title": "Loving it",
            "text": "Switched to the Acme RouterX last month. Not a single dropout since!",
        },
        {"id": 3, "text": "A recipe for apple pie"},
    ]
    out = io.StringIO()
    code = classify_stream(
        io.StringIO("\n".join(json.dumps(x) for x in lines) + "\nnot json\n"), out, BrandMatcher([ACME]), classifier
    )
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert code == 1  # one bad line
    assert [r["id"] for r in records] == [1, "b", 3, None]
    for r in records[:3]:
        assert {"id", "brand", "product", "queue", "is_beacon", "sentiment", "scores"} <= r.keys()
        assert r["is_beacon"] == (r["queue"] == "support")
    assert records[0]["queue"] == "support" and records[0]["brand"] == "Acme" and records[0]["product"] == "RouterX"
    assert records[1]["queue"] == "advocacy"
    assert records[2]["brand"] is None and records[2]["queue"] == "none"
    assert "error" in records[3]


def test_nlp_corpus_is_clean_and_large_enough() -> None:
    corpus = load_corpus()
    assert check(corpus) == []
    assert len(corpus.examples) >= 4000
    assert len(corpus.brands) >= 40
    assert len(set(corpus.industries.values())) >= 12


def test_nlp_eval_split_is_brand_disjoint_and_covers_every_style() -> None:
    corpus = load_corpus()
    split = split_brands(corpus)
    train_brands = {b for b, p in split.items() if p != "test"}
    test = examples_in(corpus, split, "test")
    assert test and not ({ex.brand for ex in test} & train_brands)
    assert {ex.style for ex in test} == {ex.style for ex in corpus.examples}
    # the shipped model records the brands it was not trained on
    meta = json.loads((find_model() / "meta.json").read_text())  # type: ignore[operator]
    assert set(meta["beacons_training"]["test_brands"]) == {ex.brand for ex in test}


def test_nlp_training_is_deterministic_and_eval_uses_held_out_brands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    corpus = load_corpus()
    quiet = lambda _msg: None  # noqa: E731
    nlp_a, info_a = train(tmp_path / "a", corpus=corpus, seed=7, epochs=1, limit=300, progress=quiet)
    nlp_b, _ = train(tmp_path / "b", corpus=corpus, seed=7, epochs=1, limit=300, progress=quiet)
    texts = ["zzbrand router keeps crashing zzvneg1", "love my zzproduct zzvpos2", "zzbrand is hiring zzvneu"]
    cats_a = [d.cats for d in nlp_a.pipe(texts)]
    cats_b = [d.cats for d in nlp_b.pipe(texts)]
    assert cats_a == cats_b
    split = split_brands(corpus)
    metrics = evaluate(SpacyClassifier(tmp_path / "a"), corpus, examples_in(corpus, split, "test"))
    assert set(metrics["brands"]).isdisjoint(b for b, p in split.items() if p != "test")
    assert set(metrics["brands"]) == set(info_a["test_brands"])


def test_nlp_feedback_labels_train_only_the_queue() -> None:
    from beacons.nlp.train import COMPONENTS, TrainText, _examples, build_pipeline

    nlp = build_pipeline()
    texts = [
        TrainText("zzbrand mesh has dead spots zzvneu", "support", (), True, "neutral", 0.0, queue_only=True),
        TrainText("zzbrand is hiring zzvneu", "none", ("job_ad",), True, "neutral"),
    ]
    counts = {name: len(_examples(nlp, texts, name)) for name in COMPONENTS}
    assert counts == {"textcat_queue": 2, "textcat_intent": 1, "textcat_sentiment": 1, "textcat_relevance": 1}


def test_nlp_train_with_feedback_reads_reroutes_from_the_database(tmp_path, write_config) -> None:  # type: ignore[no-untyped-def]
    import argparse
    import asyncio

    from helpers_db import listed

    from beacons.config import load_config
    from beacons.daemon import run
    from beacons.feedserver import FeedServer, Resource
    from beacons.nlp.cli import _feedback
    from beacons.queue import reroute
    from beacons.store import Store

    feed = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://x/</link><description>d</description>'
        b"<item><title>Mesh review</title><link>http://x/p/1</link><description>Two Acme RouterX units fixed our dead spots. "
        b"Setup took ten minutes.</description></item></channel></rss>"
    )
    with FeedServer() as server:
        server.add("/feed.xml", Resource(feed))
        path = write_config(
            {
                "brands": [{"name": "Acme", "products": [{"name": "RouterX"}]}],
                "sources": [{"id": "f", "kind": "rss", "url": server.url("/feed.xml")}],
                "fetch": {"per_host_delay": "0s"},
            }
        )
        config = load_config(path)
        asyncio.run(run(config, once=True, install_signals=False))
    store = Store(config.database)
    [beacon] = listed(store, queue="all")
    target = "support" if beacon.queue != "support" else "none"
    reroute(store, beacon.id, "maria", target)
    examples = _feedback(argparse.Namespace(config=str(path)), load_corpus())
    assert [(e.queue, e.brand, e.style) for e in examples] == [(target, "Acme", "feedback")]
    assert "dead spots" in examples[0].text
