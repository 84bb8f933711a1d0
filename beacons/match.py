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

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

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
    import spacy

    nlp = spacy.blank("en")
    # A case ending after an apostrophe is its own token, as "'s" already is: Turkish writes
    # "Kolibri'den", "Skyvolo'nun" (the name, then its suffix).
    suffixes = [*nlp.Defaults.suffixes, r"(?<=[A-Z0-9])\.", r"(?<=\w)['’]\w{1,6}$"]  # type: ignore[misc]
    nlp.tokenizer.suffix_search = spacy.util.compile_suffix_regex(suffixes).search  # type: ignore[union-attr]
    # Japanese and Chinese put no space between words ("RouterXが壊れた"), Korean attaches its
    # particles ("RouterX는"): every Han, kana or Hangul character and CJK punctuation mark is its
    # own token, so a Latin name touching them, or a name written in them, matches.
    infixes = [
        *nlp.Defaults.infixes,  # type: ignore[misc]
        rf"(?<=[{CJK}])|(?=[{CJK}])",
        # "Frostelем", "Acmeнинг": a Latin name, then a case ending in another script
        rf"(?<=[A-Za-z0-9])(?=[{OTHER_SCRIPTS}])|(?<=[{OTHER_SCRIPTS}])(?=[A-Za-z0-9])",
    ]
    nlp.tokenizer.infix_finditer = spacy.util.compile_infix_regex(infixes).finditer  # type: ignore[union-attr]
    return nlp


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
        for b, brand in enumerate(self.brands):
            self._add(b, None, "name", [brand.name])
            self._add(b, None, "alias", brand.aliases)
            self._add(b, None, "handle", brand.handles)
            self._add(b, None, "hashtag", [_hashtag(t) for t in (brand.name, *brand.aliases)])
            for p, product in enumerate(brand.products):
                self._add(b, p, "product", [product.name, *product.aliases])
                self._add(b, p, "product", [_hashtag(t) for t in (product.name, *product.aliases)])
            if brand.exclude:
                self._exclude.add(f"exclude|{b}", [self.nlp.make_doc(t) for t in brand.exclude])

    def _add(self, b: int, p: int | None, kind: str, terms: Iterable[str | None]) -> None:
        docs = [self.nlp.make_doc(t) for t in dict.fromkeys(t for t in terms if t and t.strip())]
        if not docs:
            return
        label = f"{b}|{p}|{kind}"
        self._needles.update(max((t.lower_ for t in doc), key=len) for doc in docs)
        self._matcher.add(label, docs)
        key = self.nlp.vocab.strings[label]
        self._labels[key] = (b, p, kind)
        for doc in docs:
            if len(doc) == 1 and doc[0].is_alpha and len(doc[0].text) >= 4:
                self._stems.setdefault(doc[0].lower_, []).append(key)

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
        if not any(needle in lowered for needle in self._needles):
            return None
        nlp = self.nlp
        # The post's words are new strings in the vocabulary: the zone drops them when the
        # doc is done, so a months-long run does not keep every word it ever read.
        with self._zone():
            doc = nlp.make_doc(text)
            vetoed = {int(nlp.vocab.strings[mid].split("|")[1]) for mid, _, _ in self._exclude(doc)}
            spans: list[MatchSpan] = []
            for match_id, start, end in self._matcher(doc):
                b, p, kind = self._labels[match_id]
                if b in vetoed:
                    continue
                span = doc[start:end]
                brand = self.brands[b]
                product = brand.products[p].name if p is not None else None
                spans.append(MatchSpan(span.start_char, span.end_char, span.text, brand.name, product, kind))
            if self._stems:
                spans += self._with_endings(doc, vetoed)
        if not spans:
            return None
        spans = _longest_first(spans)
        per_brand = Counter(s.brand for s in spans)
        order = {brand.name: i for i, brand in enumerate(self.brands)}
        brand_name = min(per_brand, key=lambda n: (-per_brand[n], order[n]))
        products = Counter(s.product for s in spans if s.brand == brand_name and s.product)
        product = products.most_common(1)[0][0] if products else None
        return Match(
            brand=brand_name,
            product=product,
            spans=tuple(s for s in spans if s.brand == brand_name),
            other_brands=tuple(n for n in per_brand if n != brand_name),
        )

    def _with_endings(self, doc: Doc, vetoed: set[int]) -> list[MatchSpan]:
        """Names with a Turkish ending glued on ("Skootradan"): the span is the name, the ending stays outside."""
        found: list[MatchSpan] = []
        for token in doc:
            low = token.lower_
            if len(low) < 6 or not token.is_alpha or low in self._stems:
                continue
            for k in _ENDING_LENGTHS:
                stem = low[:-k]
                if len(stem) < 4:
                    break
                if low[-k:] not in TURKISH_ENDINGS or stem not in self._stems:
                    continue
                for key in self._stems[stem]:
                    b, p, kind = self._labels[key]
                    if b in vetoed:
                        continue
                    brand = self.brands[b]
                    product = brand.products[p].name if p is not None else None
                    start = token.idx
                    found.append(
                        MatchSpan(start, start + len(stem), token.text[: len(stem)], brand.name, product, kind)
                    )
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
