"""Find configured brands and products in a mention's text.

A spaCy ``PhraseMatcher`` on lower-cased tokens matches brand names, aliases,
handles, hashtags and product names case-insensitively and on token
boundaries ("Acme's" matches Acme, "Acmeville" does not). An ``exclude``
phrase of a brand anywhere in the text vetoes that brand for the post.

spaCy is imported and the patterns are built on the first text to match, so a
poll cycle that reads no entry (every feed answered 304) never loads spaCy
(issue 16). Texts are tokenized inside ``nlp.memory_zone()``: the words of a
post are forgotten after it (after a whole poll's batch, inside ``batch()``), so
the vocabulary of a daemon that reads new words for months stays the size of
its patterns.
"""

from __future__ import annotations

import bisect
import contextlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from beacons.models import Brand, Match, MatchSpan, Mention

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.matcher import PhraseMatcher
    from spacy.tokens import Doc

MAX_MATCH_CHARS = 100_000
# Scripts written without spaces between words, or whose grammatical particles attach to the word
# before them: CJK punctuation (、。「」【】), kana, Han, Hangul (as in "Okkulo는"), full-width forms.
CJK = "\u3000-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
# Alphabets other than Latin whose case endings are glued to a Latin name ("Frostelем", "Frostel-а"):
# Greek, Cyrillic, Armenian, Hebrew, Arabic, Devanagari, Thai, Georgian. A change of script is a word boundary.
OTHER_SCRIPTS = (
    "\u0370-\u03ff\u0400-\u052f\u0530-\u058f\u0590-\u05ff\u0600-\u06ff\u0900-\u097f\u0e00-\u0e7f\u10a0-\u10ff"
)
# Turkish case and possessive endings that people write straight after a name, without the apostrophe
# ("Skootraya", "Skootradan", "Skootranın"). Endings of one or two letters that English words also end in
# ("-a", "-e", "-in", "-la", "-le", "-ler", "-ca", ...) are left out, and the name must be one word of 4 letters or more,
# so "Star" never matches "stare" and "Rob" never matches "robin".
TURKISH_ENDINGS = frozenset(
    [
        "ya",
        "ye",
        "yı",
        "yi",
        "yu",
        "yü",
        "da",
        "de",
        "ta",
        "te",
        "dan",
        "den",
        "tan",
        "ten",
        "nın",
        "nin",
        "nun",
        "nün",
        "ın",
        "ün",
        "yla",
        "yle",
        "nda",
        "nde",
        "ndan",
        "nden",
        "daki",
        "deki",
        "taki",
        "teki",
        "ndaki",
        "ndeki",
        "dır",
        "dir",
        "dur",
        "dür",
        "nı",
        "ni",
        "nu",
        "nü",
        "sı",
        "si",
        "su",
        "sü",
    ]
)
_ENDING_LENGTHS = sorted({len(e) for e in TURKISH_ENDINGS})


def _matcher_nlp() -> Language:
    """A blank English tokenizer that also splits a full stop after a capital.

    spaCy keeps "X." together (abbreviations like "U.S."), so "my RouterX." would
    never match the product RouterX. Names matter more than initials here.
    """
    from spacy.lang.en import English, EnglishDefaults

    # The tokenizer is built once with these rules: setting suffix_search and infix_finditer on a
    # built one reloads its 1,300 special cases each time (a third of matching's start-up, issue 16).
    class MatcherDefaults(EnglishDefaults):
        # A case ending after an apostrophe is its own token, as "'s" already is: Turkish writes
        # "Kolibri'den", "Skyvolo'nun" (the name, then its suffix).
        suffixes = [*EnglishDefaults.suffixes, r"(?<=[A-Z0-9])\.", r"(?<=\w)['’]\w{1,6}$"]  # type: ignore[misc]  # noqa: RUF012
        # Japanese and Chinese put no space between words ("RouterXが壊れた"), Korean attaches its
        # particles ("RouterX는"): every Han, kana or Hangul character and CJK punctuation mark is its
        # own token, so a Latin name touching them, or a name written in them, matches.
        infixes = [  # noqa: RUF012
            *EnglishDefaults.infixes,
            rf"(?<=[{CJK}])|(?=[{CJK}])",
            # "Frostelем", "Acmeнинг": a Latin name, then a case ending in another script
            rf"(?<=[A-Za-z0-9])(?=[{OTHER_SCRIPTS}])|(?<=[{OTHER_SCRIPTS}])(?=[A-Za-z0-9])",
        ]

    class MatcherEnglish(English):  # type: ignore[no-untyped-call]
        Defaults = MatcherDefaults

    nlp = MatcherEnglish()
    # The phrase matchers compare LOWER only, and nothing else reads this vocabulary's lexemes:
    # computing the other 22 attributes (shape, like_num, is_stop...) for every new word of every
    # post was a third of matching (issue 16). Matches are identical (tests/test_classify_speed.py).
    from spacy.attrs import LOWER  # type: ignore[import-not-found]

    vocab: Any = nlp.vocab  # lex_attr_getters is a Cython attribute the stubs leave out
    vocab.lex_attr_getters = {k: f for k, f in vocab.lex_attr_getters.items() if k == LOWER}
    return nlp


def _trie(needles: Iterable[str], *, longest: bool) -> str:
    """The needles as one regex trie, so a search tries each position once instead of each of
    thousands of needles in turn (issue 16). ``longest``: match the longest needle at a position;
    else stop at the shortest (its longer extensions are dropped: the shorter one already answers)."""
    root: dict[str, dict[str, Any]] = {}
    for needle in needles:
        node = root
        for ch in needle:
            node = node.setdefault(ch, {})
        node[""] = {}

    def alternatives(node: dict[str, Any]) -> str:
        if "" in node and (len(node) == 1 or not longest):
            return ""
        alts = [re.escape(ch) + alternatives(sub) for ch, sub in sorted(node.items()) if ch]
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return alternatives(root) if root else r"(?!)"


# What spaCy's tokenizer splits on first: each run of non-space characters is tokenized on its own.
_CHUNK = re.compile(r"\S+")


def _hashtag(term: str) -> str | None:
    """``#RouterX`` for "Router X": hashtags drop spaces and punctuation."""
    tag = "".join(ch for ch in term if ch.isalnum())
    return f"#{tag}" if tag else None


class BrandMatcher:
    """Case-insensitive phrase matching of every configured brand term."""

    def __init__(self, brands: Iterable[Brand], nlp: Language | None = None) -> None:
        self.brands = tuple(brands)
        self._nlp = nlp
        self._built = False
        self._batch: contextlib.ExitStack | None = None  # the open batch(), whose zone opens on its first text
        self._zone_open = False
        if nlp is not None:  # spaCy is loaded already: nothing to save by waiting
            self._build()

    @property
    def nlp(self) -> Language:
        """The tokenizer the patterns were built with (built with them on first use)."""
        if not self._built:
            self._build()
        assert self._nlp is not None
        return self._nlp

    def _build(self) -> None:
        from spacy.matcher import PhraseMatcher

        self._built = True
        if self._nlp is None:
            self._nlp = _matcher_nlp()
        self._matcher: PhraseMatcher = PhraseMatcher(self._nlp.vocab, attr="LOWER")
        self._exclude: PhraseMatcher = PhraseMatcher(self._nlp.vocab, attr="LOWER")
        self._labels: dict[int, tuple[int, int | None, str]] = {}
        self._needles: set[str] = set()  # per pattern its longest token, lower-cased: see match_text
        self._stems: dict[str, list[int]] = {}  # one-word terms of 4+ letters -> labels, for Turkish endings
        # Per needle (exclude phrases' too), the most tokens of a pattern it is the longest token of:
        # a match lies within that many runs of non-space text either side of the needle (_pieces).
        self._reach: dict[str, int] = {}
        self._windows = True  # False when a pattern holds a whitespace token: match the whole text
        for b, brand in enumerate(self.brands):
            self._add(b, None, "name", [brand.name])
            self._add(b, None, "alias", brand.aliases)
            self._add(b, None, "handle", brand.handles)
            self._add(b, None, "hashtag", [_hashtag(t) for t in (brand.name, *brand.aliases)])
            for p, product in enumerate(brand.products):
                self._add(b, p, "product", [product.name, *product.aliases])
                self._add(b, p, "product", [_hashtag(t) for t in (product.name, *product.aliases)])
            if brand.exclude:
                excludes = [self.nlp.make_doc(t) for t in brand.exclude]
                self._exclude.add(f"exclude|{b}", excludes)
                for doc in excludes:
                    self._note_reach(doc)
        self._order = {brand.name: i for i, brand in enumerate(self.brands)}
        self._seeds = re.compile(_trie(self._reach, longest=True))
        # The seed regex reports the longest needle at a position; every needle that is its prefix
        # occurs there too, so a needle's reach is the largest among its prefixes.
        reach = self._reach
        self._reach = {n: max(reach.get(n[:k], 0) for k in range(1, len(n) + 1)) for n in reach}

    def _add(self, b: int, p: int | None, kind: str, terms: Iterable[str | None]) -> None:
        docs = [self.nlp.make_doc(t) for t in dict.fromkeys(t for t in terms if t and t.strip())]
        if not docs:
            return
        label = f"{b}|{p}|{kind}"
        for doc in docs:
            self._needles.add(self._note_reach(doc))
        self._matcher.add(label, docs)
        key = self.nlp.vocab.strings[label]
        self._labels[key] = (b, p, kind)
        for doc in docs:
            if len(doc) == 1 and doc[0].text.isalpha() and len(doc[0].text) >= 4:
                self._stems.setdefault(doc[0].lower_, []).append(key)

    def _note_reach(self, doc: Any) -> str:
        """The pattern's needle (its longest token, lower-cased), its reach noted."""
        needle: str = max((t.lower_ for t in doc), key=len, default="")
        self._reach[needle] = max(self._reach.get(needle, 0), len(doc))
        if not needle or any(not t.text.strip() for t in doc):
            self._windows = False
        return needle

    def _pieces(self, text: str, lowered: str) -> list[tuple[int, str]]:
        """(offset, piece): the stretches of ``text`` a match or an exclude phrase can lie in.

        spaCy tokenizes each run of non-space characters on its own, so a piece made of whole runs
        gives the tokens the whole text gives there. A pattern of n tokens spans at most n runs, so the
        runs within its needle's reach of each needle found are enough. Tokenizing those instead of the
        whole post is most of the matcher's saving on long posts (issue 16); the matches are the same
        (tests/test_classify_speed.py).
        """
        if not self._windows or len(lowered) != len(text):  # lower() changed a length: offsets differ
            return [(0, text)]
        runs = [m.span() for m in _CHUNK.finditer(text)]
        starts = [a for a, _ in runs]
        pieces: list[tuple[int, str]] = []
        lo = hi = -1  # the runs of the piece being grown, lo..hi inclusive
        found = self._seeds.search(lowered)
        while found is not None:  # every position where a needle starts, in text order
            i = bisect.bisect_right(starts, found.start()) - 1
            reach = self._reach[found.group()]
            found = self._seeds.search(lowered, found.start() + 1)
            a, b = max(0, i - reach + 1), min(len(runs) - 1, i + reach - 1)
            if a <= hi + 1 and hi >= 0:
                hi = max(hi, b)
                continue
            if hi >= 0:
                pieces.append((runs[lo][0], text[runs[lo][0] : runs[hi][1]]))
            lo, hi = a, b
        if hi >= 0:
            pieces.append((runs[lo][0], text[runs[lo][0] : runs[hi][1]]))
        return pieces

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Match many texts in one memory zone: a word the batch repeats is made once, and every
        word of the batch is forgotten at its end. The zone opens on the first text that gets past the
        substring prefilter. Synchronous callers only: nothing else may match on this matcher while a
        batch is open."""
        if self._batch is not None:  # nested: the outer batch holds the zone
            yield
            return
        self._batch = contextlib.ExitStack()
        try:
            yield
        finally:
            stack, self._batch, self._zone_open = self._batch, None, False
            stack.close()

    def _zone(self) -> contextlib.AbstractContextManager[object]:
        if self._batch is None:
            return self.nlp.memory_zone()
        if not self._zone_open:
            self._batch.enter_context(self.nlp.memory_zone())
            self._zone_open = True
        return contextlib.nullcontext()

    def match(self, mention: Mention) -> Match | None:
        return self.match_text(mention.full_text)

    def match_text(self, text: str) -> Match | None:
        """The brand this text is about (most mentioned), or None."""
        if not text or not self.brands:
            return None
        if not self._built:
            self._build()
        text = text[:MAX_MATCH_CHARS]
        # A pattern matches only if each of its tokens occurs in the text, so when no
        # pattern's longest token is a substring of the lower-cased text, skip the
        # tokenizer: most feed entries name no brand (bench/ingest.py).
        lowered = text.lower()
        if self._seeds.search(lowered) is None:  # exclude phrases' needles pass too, to match nothing
            return None
        nlp = self.nlp
        # The post's words are new strings in the vocabulary: the zone drops them when the
        # doc is done, so a months-long run does not keep every word it ever read.
        with self._zone():
            vetoed: set[int] = set()
            found: list[tuple[int, int, int, str]] = []  # (match id, start char, end char, text)
            for offset, piece in self._pieces(text, lowered):
                doc = nlp.make_doc(piece)
                vetoed.update(int(nlp.vocab.strings[mid].split("|")[1]) for mid, _, _ in self._exclude(doc))
                for match_id, start, end in self._matcher(doc):
                    span = doc[start:end]
                    found.append((match_id, span.start_char + offset, span.end_char + offset, span.text))
                if self._stems:
                    found += self._with_endings(doc, offset)
            spans: list[MatchSpan] = []
            for match_id, start_char, end_char, surface in found:
                b, p, kind = self._labels[match_id]
                if b in vetoed:
                    continue
                brand = self.brands[b]
                product = brand.products[p].name if p is not None else None
                spans.append(MatchSpan(start_char, end_char, surface, brand.name, product, kind))
        if not spans:
            return None
        spans = _longest_first(spans)
        per_brand = Counter(s.brand for s in spans)
        order = self._order
        brand_name = min(per_brand, key=lambda n: (-per_brand[n], order[n]))
        products = Counter(s.product for s in spans if s.brand == brand_name and s.product)
        product = products.most_common(1)[0][0] if products else None
        return Match(
            brand=brand_name,
            product=product,
            spans=tuple(s for s in spans if s.brand == brand_name),
            other_brands=tuple(n for n in per_brand if n != brand_name),
        )

    def _with_endings(self, doc: Doc, offset: int) -> list[tuple[int, int, int, str]]:
        """Names with a Turkish ending glued on ("Skootradan"): (match id, start, end, text) of the name alone,
        the ending left outside."""
        found: list[tuple[int, int, int, str]] = []
        for token in doc:
            low = token.lower_
            if len(low) < 6 or low in self._stems or not token.text.isalpha():
                continue
            for k in _ENDING_LENGTHS:
                stem = low[:-k]
                if len(stem) < 4:
                    break
                if low[-k:] not in TURKISH_ENDINGS or stem not in self._stems:
                    continue
                start = token.idx + offset
                found += [(key, start, start + len(stem), token.text[: len(stem)]) for key in self._stems[stem]]
                break
        return found


def _longest_first(spans: list[MatchSpan]) -> list[MatchSpan]:
    """Drop spans nested in a longer one ("Acme" inside "Acme Corp"), keep text order."""
    kept: list[MatchSpan] = []
    for span in sorted(spans, key=lambda s: (-(s.end - s.start), s.start)):
        if not any(k.start <= span.start and span.end <= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def implied_match(found: Match | None, brand: Brand, product: str | None, source_id: str) -> Match:
    """The match of a mention from a source about ``brand`` by construction (``implies_brand``).

    When the text names the brand, that match stands (its spans are real
    evidence) and only a missing product is filled in. Otherwise the match has
    no spans and says which source implied it, so nobody reads a name that the
    text does not contain; brands the text does name are kept as ``other_brands``.
    An ``exclude`` phrase does not veto it: the source, not the name, says what the post is about.
    """
    if found is not None and found.brand == brand.name:
        return replace(found, product=found.product or product)
    others = () if found is None else tuple(b for b in (found.brand, *found.other_brands) if b != brand.name)
    return Match(brand=brand.name, product=product, spans=(), other_brands=others, implied_by=source_id)
