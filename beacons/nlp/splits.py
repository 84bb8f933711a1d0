"""Train, dev and test: disjoint in brands AND writers, and free of leaked duplicates.

Brands go wholly to one part (``corpus.split_brands``). Writers do too
(``split_writers``): a writer persona of the new corpus files (``writer`` =
"w6-03") is assigned train, dev or test, about a quarter of each source style's
writers held out, so the test figures are for voices the model never read.
A post is trained on only when its brand and its writer are both train's; every
dev or test post is unseen in its brand, its writer, or both (``part_of``), and
``beacons eval`` reports each of those subsets. The base corpus (one team,
``writer`` = "base-part-N") follows its brand alone.

Then leaks: after brand masking, a dev or test post whose text equals a train
post, or shares at least ``NEAR`` of its word 5-gram shingles with one
(Jaccard), is dropped from evaluation and counted (issue 12: 16 of 1,345 test
posts were in training word for word).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from beacons.match import BrandMatcher
from beacons.nlp.corpus import Corpus, Example, split_brands
from beacons.nlp.mask import mask_text

SHINGLE = 5
NEAR = 0.8
HELD_SHARE = 4  # one writer in this many per style goes to a held-out part
_WORD = re.compile(r"\w+")


def is_base(writer: str) -> bool:
    return writer.startswith("base")


def _rank(name: str, salt: str) -> str:
    return hashlib.sha1(f"{salt}:{name}".encode()).hexdigest()


def split_writers(corpus: Corpus, *, salt: str = "beacons-writers-v1") -> dict[str, str]:
    """writer -> "train" | "dev" | "test" for the new-corpus writers (base writers are not listed).

    Writers are grouped by their most frequent style; in each group of two or
    more, the lowest-hash quarter (at least one) is held out, alternating test
    and dev, test first.
    """
    styles: dict[str, Counter[str]] = defaultdict(Counter)
    for ex in corpus.examples:
        if not is_base(ex.writer):
            styles[ex.writer][ex.style] += 1
    groups: dict[str, list[str]] = defaultdict(list)
    for writer, counter in styles.items():
        groups[counter.most_common(1)[0][0]].append(writer)
    out: dict[str, str] = {}
    turn = 0
    for _style, writers in sorted(groups.items()):
        ordered = sorted(writers, key=lambda w: _rank(w, salt))
        held = max(1, len(ordered) // HELD_SHARE) if len(ordered) >= 2 else 0
        for i, writer in enumerate(ordered):
            if i < held:
                out[writer] = "test" if turn % 3 != 2 else "dev"
                turn += 1
            else:
                out[writer] = "train"
    return out


def part_of(ex: Example, brands: dict[str, str], writers: dict[str, str]) -> str | None:
    """The part a post belongs to, or None when it can be in no part.

    A post is trained on only when both its brand and its writer are train's. A post whose brand
    is held out goes to that brand's part even when a train writer wrote it (it is unseen in its
    brand); one by a held-out writer about a train brand goes to that writer's part (unseen in its
    voice; its brand is masked anyway). Only a post whose brand and writer are held out in
    *different* parts (one dev, one test) is not used.
    """
    brand_part = brands.get(ex.brand, "train")
    writer_part = writers.get(ex.writer)
    if writer_part is None or writer_part == brand_part or writer_part == "train":
        return brand_part
    if brand_part == "train":
        return writer_part
    return None


def shingles(text: str, n: int = SHINGLE) -> frozenset[str]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


class Masker:
    """Masked text of corpus posts, one BrandMatcher per brand."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._matchers: dict[str, BrandMatcher] = {}

    def matcher(self, brand: str) -> BrandMatcher:
        found = self._matchers.get(brand)
        if found is None:
            found = self._matchers[brand] = BrandMatcher([self.corpus.brands[brand]])
        return found

    def mask(self, ex: Example) -> str:
        text = ex.full_text
        return mask_text(text, self.matcher(ex.brand).match_text(text))


@dataclass(frozen=True, slots=True)
class Leaks:
    exact: tuple[str, ...] = ()  # ids of held-out posts equal to a train post after masking
    near: tuple[str, ...] = ()  # ids sharing >= NEAR of their shingles with a train post
    checked: int = 0
    pairs: tuple[tuple[str, str, float], ...] = field(default=())  # (held-out id, train id, jaccard), a sample


def find_leaks(held: Sequence[Example], train: Sequence[Example], masker: Masker) -> Leaks:
    """Held-out posts that duplicate a train post after masking, exactly or nearly."""
    exact_index: dict[str, str] = {}
    index: dict[str, list[int]] = defaultdict(list)
    train_sets: list[frozenset[str]] = []
    for i, ex in enumerate(train):
        masked = masker.mask(ex)
        exact_index.setdefault(" ".join(_WORD.findall(masked)), ex.id)
        sh = shingles(masked)
        train_sets.append(sh)
        for s in sh:
            index[s].append(i)
    exact: list[str] = []
    near: list[str] = []
    pairs: list[tuple[str, str, float]] = []
    for ex in held:
        masked = masker.mask(ex)
        key = " ".join(_WORD.findall(masked))
        if key in exact_index:
            exact.append(ex.id)
            pairs.append((ex.id, exact_index[key], 1.0))
            continue
        sh = shingles(masked)
        shared: Counter[int] = Counter()
        for s in sh:
            shared.update(index.get(s, ()))
        best, best_j = -1, 0.0
        for i, n in shared.most_common(20):
            j = n / (len(sh) + len(train_sets[i]) - n)
            if j > best_j:
                best, best_j = i, j
        if best_j >= NEAR:
            near.append(ex.id)
            pairs.append((ex.id, train[best].id, round(best_j, 3)))
    return Leaks(tuple(exact), tuple(near), len(held), tuple(pairs[:20]))


@dataclass(frozen=True, slots=True)
class Splits:
    train: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: tuple[Example, ...]
    unused: int  # posts whose brand and writer fell in different parts
    leaks: dict[str, Leaks]  # "dev" / "test" -> what was dropped
    brands: dict[str, str]
    writers: dict[str, str]

    def part(self, name: str) -> tuple[Example, ...]:
        return {"train": self.train, "dev": self.dev, "test": self.test}[name]


def make_splits(corpus: Corpus, *, dedupe: Sequence[str] = ("dev", "test"), masker: Masker | None = None) -> Splits:
    """The brand- and writer-disjoint parts, dev and test cleaned of posts leaked from train."""
    brands = split_brands(corpus)
    writers = split_writers(corpus)
    parts: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    unused = 0
    for ex in corpus.examples:
        part = part_of(ex, brands, writers)
        if part is None:
            unused += 1
        else:
            parts[part].append(ex)
    leaks: dict[str, Leaks] = {}
    if dedupe:
        masker = masker or Masker(corpus)
        for name in dedupe:
            found = find_leaks(parts[name], parts["train"], masker)
            drop = set(found.exact) | set(found.near)
            parts[name] = [ex for ex in parts[name] if ex.id not in drop]
            leaks[name] = found
    return Splits(tuple(parts["train"]), tuple(parts["dev"]), tuple(parts["test"]), unused, leaks, brands, writers)


def held_out_writers(examples: Iterable[Example], writers: dict[str, str]) -> list[Example]:
    """The posts by writers that are in no training part (the strictest subset of test)."""
    return [ex for ex in examples if writers.get(ex.writer) in ("dev", "test")]
