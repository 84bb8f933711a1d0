"""Corpus hygiene (issue 12): the loader's new fields, writer-disjoint splits, and the leak check after masking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from beacons.nlp.corpus import check, load_corpus
from beacons.nlp.splits import Masker, find_leaks, jaccard, make_splits, part_of, shingles, split_writers

BRANDS = [
    {"name": n, "industry": "x", "aliases": [], "handles": [], "products": [{"name": f"{n} One"}]}
    for n in ("Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir")
]


def _line(i: int, brand: str, text: str, **extra: Any) -> str:
    base = {
        "id": f"t-{i}",
        "brand": brand,
        "style": extra.pop("style", "tweet"),
        "lang": extra.pop("lang", "en"),
        "title": extra.pop("title", None),
        "text": text,
        "queue": extra.pop("queue", "support"),
        "intents": ["bug_outage"],
        "relevant": True,
        "sentiment": "negative",
    }
    return json.dumps({**base, **extra})


def _corpus(folder: Path, lines: list[str]) -> Path:
    (folder / "brands-1.json").write_text(json.dumps(BRANDS), encoding="utf-8")
    (folder / "part-1.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_nlp_corpus_loader_reads_writer_tags_and_evidence_with_defaults(tmp_path: Path) -> None:
    long_text = "Birch One is fine most days. " * 30 + "But it crashed twice today."
    folder = _corpus(
        tmp_path,
        [
            _line(1, "Alder", "my Alder One died 😭", writer="w6-03", tags=["emoji", "slang"], evidence="died"),
            _line(2, "Birch", long_text),
            _line(3, "Cedar", "Cedar One se bloquea cada noche", lang="es", style="forum"),
            _line(4, "Dogwood", "Dogwood One broke", evidence="not in the text"),
        ],
    )
    corpus = load_corpus(folder)
    a, b, c, _d = corpus.examples
    assert (a.writer, a.tags, a.evidence) == ("w6-03", ("emoji", "slang"), "died")
    assert b.writer == "base-part-1" and "long" in b.tags  # derived when absent
    assert set(c.tags) == {"non_english", "forum_thread"}
    assert check(corpus) == ["t-4: evidence is not a substring of the title and text"]


def test_nlp_leak_check_finds_exact_and_near_copies_after_masking(tmp_path: Path) -> None:
    story = "my {b} One keeps rebooting every night since the firmware update and support never answered my ticket"
    folder = _corpus(
        tmp_path,
        [
            _line(1, "Alder", story.format(b="Alder")),
            _line(2, "Birch", story.format(b="Birch")),  # the same post about another brand: masked, it is a copy
            _line(3, "Cedar", story.format(b="Cedar") + " at all"),  # a near copy
            _line(4, "Dogwood", "the Dogwood One app shows a blank screen after login on every phone we tried"),
        ],
    )
    corpus = load_corpus(folder)
    train, held = [corpus.examples[0]], list(corpus.examples[1:])
    leaks = find_leaks(held, train, Masker(corpus))
    assert leaks.exact == ("t-2",) and leaks.near == ("t-3",)
    assert leaks.checked == 3


def test_nlp_shingles_and_jaccard() -> None:
    a = shingles("one two three four five six")
    assert a == frozenset({"one two three four five", "two three four five six"})
    assert shingles("too short") == frozenset({"too short"})
    assert jaccard(a, a) == 1.0 and jaccard(a, frozenset()) == 0.0


def test_nlp_split_is_writer_disjoint_and_shipped_corpus_has_no_leaks_left() -> None:
    corpus = load_corpus()
    splits = make_splits(corpus, dedupe=("test",))
    train_writers = {ex.writer for ex in splits.train}
    held = {w for w, p in splits.writers.items() if p in ("dev", "test")}
    assert not (train_writers & held)
    train_brands = {ex.brand for ex in splits.train}
    # Every test post is about a brand or by a writer that training never read.
    assert all(ex.brand not in train_brands or ex.writer in held for ex in splits.test)
    assert {p for b, p in splits.brands.items() if b in train_brands} == {"train"}
    masker = Masker(corpus)
    again = find_leaks(splits.test, splits.train, masker)
    assert again.exact == () and again.near == ()  # what eval reads has no copies of train
    assert splits.leaks["test"].checked >= len(splits.test)


def test_nlp_split_writers_holds_out_a_quarter_per_style(tmp_path: Path) -> None:
    lines = [
        _line(i, BRANDS[i % 6]["name"], f"{BRANDS[i % 6]['name']} One post {i}", writer=f"w6-{i:02d}", style=style)
        for i, style in enumerate(["tweet"] * 8 + ["blog"] * 4)
    ]
    corpus = load_corpus(_corpus(tmp_path, lines))
    writers = split_writers(corpus)
    tweet = [writers[f"w6-{i:02d}"] for i in range(8)]
    blog = [writers[f"w6-{i:02d}"] for i in range(8, 12)]
    assert tweet.count("train") == 6 and blog.count("train") == 3
    ex = corpus.examples[0]
    assert part_of(ex, {ex.brand: "test"}, {}) == "test"  # base writers follow their brand
    # Trained on only when brand and writer are both train's; otherwise held out where something is unseen.
    assert part_of(ex, {ex.brand: "train"}, {ex.writer: "train"}) == "train"
    assert part_of(ex, {ex.brand: "train"}, {ex.writer: "test"}) == "test"  # unseen writer
    assert part_of(ex, {ex.brand: "test"}, {ex.writer: "train"}) == "test"  # unseen brand
    assert part_of(ex, {ex.brand: "dev"}, {ex.writer: "train"}) == "dev"
    assert part_of(ex, {ex.brand: "dev"}, {ex.writer: "test"}) is None  # held out in two parts: unused
    assert part_of(ex, {ex.brand: "test"}, {ex.writer: "dev"}) is None


def test_nlp_no_held_out_writer_or_brand_reaches_train(tmp_path: Path) -> None:
    lines = [
        _line(
            i, BRANDS[i % 6]["name"], f"{BRANDS[i % 6]['name']} post number {i} about things", writer=f"w6-{i % 12:02d}"
        )
        for i in range(72)
    ]
    corpus = load_corpus(_corpus(tmp_path, lines))
    splits = make_splits(corpus, dedupe=())
    held_writers = {w for w, p in splits.writers.items() if p != "train"}
    held_brands = {b for b, p in splits.brands.items() if p != "train"}
    assert held_writers and held_brands
    assert not any(ex.writer in held_writers or ex.brand in held_brands for ex in splits.train)
    assert len(splits.train) + len(splits.dev) + len(splits.test) + splits.unused == len(lines)
