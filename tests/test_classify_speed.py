"""Issue 16: ``beacons classify``'s speed-ups give the same answers as the straightforward path.

Each test runs corpus posts (short and long, in every corpus language) through
the optimised code and through the plain one it replaces, and compares the
outcome, never the time:

- the classifier's pipeline as ``beacons.nlp.speed`` tunes it (lexemes with no
  unused attributes, n-grams counted once for the four textcats) against the
  same model as ``spacy.load`` returns it;
- the matcher's vocabulary with only the LOWER attribute against spaCy's full
  English attributes, its one-regex needle prefilter against testing each
  needle in turn, and its tokenizing only the stretches around the needles
  against tokenizing the whole post;
- the whole ``beacons classify`` record (queue, scores to 1e-6, sentiment,
  intents, language, evidence) from both paths.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import spacy

from beacons.match import BrandMatcher, _matcher_nlp, _trie
from beacons.nlp import speed
from beacons.nlp.corpus import Corpus, load_corpus
from beacons.nlp.model import SpacyClassifier, find_model
from beacons.pipeline import classify_texts


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus()


@pytest.fixture(scope="module")
def posts(corpus: Corpus) -> list[tuple[str, str]]:
    """(title, text): 300 corpus posts (every language, titles kept) and 40 long ones built from several."""
    rng = random.Random(16)
    examples = list(corpus.examples)
    by_lang: dict[str, list[Any]] = {}
    for ex in examples:
        by_lang.setdefault(ex.lang, []).append(ex)
    chosen = [ex for group in by_lang.values() for ex in group[:8]]  # every language, English included
    chosen += rng.sample(examples, 300 - len(chosen))
    out = [(ex.title or "", ex.text) for ex in chosen]
    for i in range(40):
        lang = rng.choice(sorted(by_lang)) if i % 2 else "en"
        group = by_lang[lang]
        parts = [rng.choice(examples).text for _ in range(4)] + [rng.choice(group).text for _ in range(3)]
        rng.shuffle(parts)
        out.append(("", "\n\n".join(parts) if i % 3 else " ".join(parts)))
    assert sum(len(t) > 1_000 for _, t in out) >= 40
    assert len({lang for lang in by_lang}) >= 5
    return out


def _plain_classifier() -> SpacyClassifier:
    """The shipped model exactly as ``spacy.load`` gives it: no ``beacons.nlp.speed`` shortcut."""
    path = find_model(None)
    if path is None:
        pytest.skip("no shipped model")
    clf = SpacyClassifier(path, lazy=True)
    from beacons.nlp import tokenizer  # noqa: F401  (registers the model's tokenizer)

    clf._nlp = spacy.load(path)
    return clf


def _plain_matcher(corpus: Corpus) -> BrandMatcher:
    """The matcher's tokenizer with every lexeme attribute spaCy's English computes, on the whole text."""
    nlp = _matcher_nlp()
    nlp.vocab.lex_attr_getters = dict(spacy.blank("en").vocab.lex_attr_getters)
    matcher = BrandMatcher(corpus.brands.values(), nlp=nlp)
    matcher._windows = False
    return matcher


def _close(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """Where two JSON-like values differ (floats to 1e-6)."""
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) <= 1e-6):
            yield f"{path}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            yield f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a.keys() & b.keys():
            yield from _close(a[k], b[k], f"{path}.{k}")
    elif a != b:
        yield f"{path}: {a!r} != {b!r}"


def test_classify_speed_tune_applies_to_the_shipped_model() -> None:
    path = find_model(None)
    if path is None:
        pytest.skip("no shipped model")
    tuned = SpacyClassifier(path)
    assert tuned._shared_ngrams is not None  # the shipped model is plain bag of words: both shortcuts apply
    assert tuned.nlp.vocab.lex_attr_getters == {}  # textcats read ORTH only, which every lexeme has


def test_classify_speed_tune_leaves_other_architectures_alone() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("textcat")  # spaCy's default: a bag of words beside a tok2vec that reads NORM, PREFIX, SHAPE...
    getters = dict(nlp.vocab.lex_attr_getters)
    assert speed.token_attrs(nlp) is None
    assert speed.tune(nlp) is None
    assert nlp.vocab.lex_attr_getters == getters


def test_classify_speed_records_identical_to_the_plain_path(corpus: Corpus, posts: list[tuple[str, str]]) -> None:
    path = find_model(None)
    if path is None:
        pytest.skip("no shipped model")
    fast_clf, plain_clf = SpacyClassifier(path), _plain_classifier()
    fast_matcher, plain_matcher = BrandMatcher(corpus.brands.values()), _plain_matcher(corpus)
    fast: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    for i in range(0, len(posts), 170):  # calls of over 256 model inputs: the n-grams must follow each batch
        fast += classify_texts(posts[i : i + 170], fast_matcher, fast_clf)
        plain += classify_texts(posts[i : i + 170], plain_matcher, plain_clf)
    assert len(fast) == len(posts)
    diffs = [f"post {i}{d}" for i, (f, p) in enumerate(zip(fast, plain, strict=True)) for d in _close(f, p)]
    assert not diffs, diffs[:10]
    # The comparison covers what it claims: branded posts in each queue, long posts with evidence, non-English.
    queues = Counter(r["queue"] for r in fast)
    assert queues["support"] > 20 and queues["advocacy"] > 20 and queues["none"] > 20, queues
    assert sum(r["lang"] not in ("en", "und") for r in fast) > 30
    assert sum(r["evidence"] is not None and len(t) > 1_000 for r, (_, t) in zip(fast, posts, strict=True)) > 20


def test_classify_speed_classify_many_identical_in_one_batch_and_one_by_one(
    corpus: Corpus, posts: list[tuple[str, str]]
) -> None:
    path = find_model(None)
    if path is None:
        pytest.skip("no shipped model")
    clf = SpacyClassifier(path)
    matcher = BrandMatcher(corpus.brands.values())
    items = [(text, matcher.match_text(text)) for _, text in posts[:60] + posts[-20:]]
    assert clf.classify_many(items) == [clf.classify(text, match) for text, match in items]


def test_classify_speed_needle_regex_finds_what_testing_each_needle_finds(
    corpus: Corpus, posts: list[tuple[str, str]]
) -> None:
    matcher = BrandMatcher(corpus.brands.values())
    matcher.match_text("warm up")
    needles = matcher._needles
    pattern = matcher._seeds  # the prefilter, which also finds the longest needle where one starts
    rng = random.Random(3)
    texts = [t.lower() for _, t in posts]
    texts += [t.replace("a", "q").replace("o", "0") for t in texts]  # most needles broken: mostly misses
    texts += [n for n in rng.sample(sorted(needles), 200)] + [n[:-1] for n in sorted(needles) if len(n) > 1][:200]
    got = [pattern.search(t) is not None for t in texts]
    assert got == [any(n in t for n in needles) for t in texts]
    assert 0 < sum(got) < len(got)
    shortest = re.compile(_trie(needles, longest=False))
    assert [shortest.search(t) is not None for t in texts] == got
    by_first: dict[str, list[str]] = {}
    for n in needles:
        by_first.setdefault(n[0], []).append(n)
    for t in texts[:60] + texts[340:360]:  # searching on from each seed's start + 1 visits every needle
        seeds = []
        found = pattern.search(t)
        while found is not None:
            seeds.append((found.start(), found.group()))
            found = pattern.search(t, found.start() + 1)
        starting = [(p, [n for n in by_first.get(ch, []) if t.startswith(n, p)]) for p, ch in enumerate(t)]
        assert seeds == [(p, max(ns, key=len)) for p, ns in starting if ns]
    assert re.compile(_trie([], longest=True)).search("anything") is None


def test_classify_speed_matcher_identical_with_every_lexeme_attribute(
    corpus: Corpus, posts: list[tuple[str, str]]
) -> None:
    fast, plain = BrandMatcher(corpus.brands.values()), _plain_matcher(corpus)
    with fast.batch():
        got = [fast.match_text(f"{title} {text}") for title, text in posts]
    with plain.batch():
        want = [plain.match_text(f"{title} {text}") for title, text in posts]
    assert got == want
    assert sum(m is not None for m in got) > 250


def _whole_text_matcher(brands: list[Any]) -> BrandMatcher:
    matcher = BrandMatcher(brands)
    matcher.match_text("warm up")
    matcher._windows = False  # tokenize the whole post, as before the pieces
    return matcher


@pytest.mark.parametrize(
    "text",
    [
        "Acme RouterX",
        "my router x died, acme corp support?",
        "ACME CORP!!! RouterX (RX-200) keeps rebooting",
        "acme looney tunes marathon tonight, and my Acme Cloud bill doubled",
        "Acme " + "filler words here " * 30 + "acme looney tunes",
        "acme looney " + "x " * 40 + "tunes and Acme",
        "Router\n\nX is down, #RouterX #AcmeCloud @AcmeSupport",
        "Router  X and Router\tX and Router X.",
        "İstanbul'da Acme'nin RouterX'i çalışmıyor, İİİ acme.com",
        "RouterXが壊れた。Acmeのサポートは？",
        "x" * 300 + " acme " + "y" * 300,
        "nothing to see here",
    ],
)
def test_classify_speed_matcher_pieces_match_like_the_whole_text(text: str) -> None:
    from helpers_feeds import ACME

    brands = [ACME, *list(load_corpus().brands.values())[:20]]
    got = BrandMatcher(brands).match_text(text)
    assert got == _whole_text_matcher(brands).match_text(text)


def test_classify_speed_matcher_pieces_on_corpus_posts(corpus: Corpus, posts: list[tuple[str, str]]) -> None:
    brands = list(corpus.brands.values())
    fast, whole = BrandMatcher(brands), _whole_text_matcher(brands)
    texts = [f"{title}\n\n{text}" if title else text for title, text in posts]
    with fast.batch():
        got = [fast.match_text(t) for t in texts]
    assert got == [whole.match_text(t) for t in texts]
    assert fast._windows and sum(len(fast._pieces(t, t.lower())) > 1 for t in texts) > 20  # pieces were used


def test_classify_speed_matcher_tokenizer_built_once_splits_like_one_patched_after(
    posts: list[tuple[str, str]],
) -> None:
    """The matcher's English tokenizer, built with its extra suffixes and infixes, gives the tokens of
    a blank English whose suffix_search and infix_finditer are replaced afterwards (the old way)."""
    from beacons.match import CJK, OTHER_SCRIPTS

    old = spacy.blank("en")
    suffixes = [*old.Defaults.suffixes, r"(?<=[A-Z0-9])\.", r"(?<=\w)['’]\w{1,6}$"]  # type: ignore[misc]
    old.tokenizer.suffix_search = spacy.util.compile_suffix_regex(suffixes).search  # type: ignore[union-attr]
    infixes = [
        *old.Defaults.infixes,  # type: ignore[misc]
        rf"(?<=[{CJK}])|(?=[{CJK}])",
        rf"(?<=[A-Za-z0-9])(?=[{OTHER_SCRIPTS}])|(?<=[{OTHER_SCRIPTS}])(?=[A-Za-z0-9])",
    ]
    old.tokenizer.infix_finditer = spacy.util.compile_infix_regex(infixes).finditer  # type: ignore[union-attr]
    new = _matcher_nlp()
    texts = [text for _, text in posts] + [
        "U.S. RouterX. Kolibri'den RouterXが壊れた Okkulo는 RouterXом e-mail acme.com/x?"
    ]
    for text in texts:
        assert [(t.text, t.idx) for t in new.make_doc(text)] == [(t.text, t.idx) for t in old.make_doc(text)]


def test_classify_speed_shared_ngrams_released_after_each_call(corpus: Corpus, posts: list[tuple[str, str]]) -> None:
    path = find_model(None)
    if path is None:
        pytest.skip("no shipped model")
    clf = SpacyClassifier(path)
    matcher = BrandMatcher(corpus.brands.values())
    items = [(text, matcher.match_text(text)) for _, text in posts[:40]]
    first = clf.classify_many(items)
    assert clf._shared_ngrams.held() == 0  # no doc outlives the batch's memory zone
    assert clf.classify_many(items[::-1]) == first[::-1]  # the next call reads its own batch
