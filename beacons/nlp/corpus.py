"""The labeled corpus: load it, check it, split it by brand.

``beacons/data/corpus/part-*.jsonl`` holds the examples and ``brands-*.json``
the invented brands they talk about (see docs/labeling.md). The evaluation
split is brand-disjoint: every brand is wholly in train, dev or test, so the
figures say how the model does on brands it never saw.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from beacons.models import Brand, Product
from beacons.nlp.labels import INTENTS, QUEUES, SENTIMENTS
from beacons.text import full_text

CORPUS_DIR = Path(str(resources.files("beacons").joinpath("data/corpus")))


TAGS = (
    "long",
    "buried",
    "emoji",
    "sarcasm",
    "typos",
    "slang",
    "no_punct",
    "calm_breakage",
    "urgent",
    "question_no_mark",
    "mixed",
    "forum_thread",
    "review",
    "non_english",
    "news",
    "homonym",
)
LONG_CHARS = 600  # a post at least this long is "long" when its line gives no tags
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2764]")


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    brand: str
    text: str
    title: str | None
    style: str
    lang: str
    queue: str
    intents: tuple[str, ...]
    relevant: bool
    sentiment: str
    writer: str = "base"  # one writer persona ("w6-03"); the base corpus is "base-part-N"
    tags: tuple[str, ...] = ()
    evidence: str | None = None  # the exact substring of full_text that carries the decision

    @property
    def full_text(self) -> str:
        return full_text(self.title, self.text)


def derived_tags(d: dict[str, Any], text: str) -> tuple[str, ...]:
    """Tags a line without a ``tags`` field obviously has, from its style, language, length and labels."""
    tags = []
    if len(text) >= LONG_CHARS:
        tags.append("long")
    if _EMOJI.search(text):
        tags.append("emoji")
    if d.get("style") == "forum":
        tags.append("forum_thread")
    if d.get("style") == "review":
        tags.append("review")
    if d.get("lang", "en") != "en":
        tags.append("non_english")
    if d.get("style") == "news":
        tags.append("news")
    if not d.get("relevant", True) or "homonym" in (d.get("intents") or ()):
        tags.append("homonym")
    return tuple(tags)


def _example(d: dict[str, Any], part: str) -> Example:
    title, text = d.get("title"), d["text"]
    whole = full_text(title, text)
    tags = d.get("tags")
    tags = tuple(tags) if tags is not None else derived_tags(d, whole)
    if "non_english" not in tags and d.get("lang", "en") != "en":
        tags = (*tags, "non_english")
    return Example(
        id=d["id"],
        brand=d["brand"],
        text=text,
        title=title,
        style=d["style"],
        lang=d.get("lang", "en"),
        queue=d["queue"],
        intents=tuple(d.get("intents") or ()),
        relevant=bool(d.get("relevant", True)),
        sentiment=d["sentiment"],
        writer=d.get("writer") or f"base-{part}",
        tags=tags,
        evidence=d.get("evidence") or None,
    )


@dataclass(frozen=True, slots=True)
class Corpus:
    examples: tuple[Example, ...]
    brands: dict[str, Brand]
    industries: dict[str, str]


def load_corpus(folder: str | Path | None = None) -> Corpus:
    folder = Path(folder) if folder else CORPUS_DIR
    brands: dict[str, Brand] = {}
    industries: dict[str, str] = {}
    for path in sorted(folder.glob("brands-*.json")):
        for n, b in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            products = tuple(Product(p["name"], tuple(p.get("aliases") or ())) for p in b.get("products") or ())
            brands[b["name"]] = Brand(b["name"], tuple(b.get("aliases") or ()), tuple(b.get("handles") or ()), products)
            # Each brands file lists its industries three brands at a time; that triple is the group.
            industries[b["name"]] = f"{path.stem}:{n // 3}"
    examples: list[Example] = []
    for path in sorted(folder.glob("part-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            examples.append(_example(json.loads(line), path.stem))
    return Corpus(tuple(examples), brands, industries)


def check(corpus: Corpus) -> list[str]:
    """Problems in the corpus: unknown labels or brands, duplicate ids."""
    problems = []
    seen: set[str] = set()
    for ex in corpus.examples:
        if ex.id in seen:
            problems.append(f"{ex.id}: duplicate id")
        seen.add(ex.id)
        if ex.brand not in corpus.brands:
            problems.append(f"{ex.id}: brand {ex.brand!r} not in any brands-*.json")
        if ex.queue not in QUEUES:
            problems.append(f"{ex.id}: queue {ex.queue!r}")
        if ex.sentiment not in SENTIMENTS:
            problems.append(f"{ex.id}: sentiment {ex.sentiment!r}")
        problems.extend(f"{ex.id}: intent {i!r}" for i in ex.intents if i not in INTENTS)
        problems.extend(f"{ex.id}: tag {t!r}" for t in ex.tags if t not in TAGS)
        if ex.evidence is not None and ex.evidence not in ex.full_text:
            problems.append(f"{ex.id}: evidence is not a substring of the title and text")
    return problems


def _rank(name: str, salt: str) -> str:
    return hashlib.sha1(f"{salt}:{name}".encode()).hexdigest()


def split_brands(corpus: Corpus, *, salt: str = "beacons-split-v1") -> dict[str, str]:
    """brand -> "train" | "dev" | "test", whole brands only.

    Brands come in industry groups. In three groups out of four the brand with
    the lowest salted hash goes to test; in the fourth it goes to dev. So about
    a quarter of the brands, from most industries, are never trained on.
    """
    by_industry: dict[str, list[str]] = defaultdict(list)
    for brand, industry in corpus.industries.items():
        by_industry[industry].append(brand)
    split: dict[str, str] = {}
    for i, (_industry, names) in enumerate(sorted(by_industry.items())):
        ordered = sorted(names, key=lambda n: _rank(n, salt))
        for j, name in enumerate(ordered):
            held = "dev" if i % 4 == 3 else "test"
            split[name] = held if j == 0 and len(ordered) > 1 else "train"
    return split


def examples_in(corpus: Corpus, split: dict[str, str], part: str) -> list[Example]:
    return [ex for ex in corpus.examples if split.get(ex.brand, "train") == part]


def counts(examples: Iterable[Example], field: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for ex in examples:
        out[str(getattr(ex, field))] += 1
    return dict(sorted(out.items()))
