"""A fast regex tokenizer for the classifier's masked, lower-cased input.

spaCy's rule-based English tokenizer was half of the classifier's time. The
bag-of-words textcats need words, contractions and punctuation marks, not
exact token boundaries, so a registered regex tokenizer does (5x faster). It is
saved in the model's config, so ``spacy.load`` needs this module imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import registry
from spacy.vocab import Vocab

TOKEN_V1 = re.compile(r"[\w]+(?:['’][\w]+)*|[^\w\s]")
# v2: Chinese characters and Japanese kana are one token each (those scripts put no spaces between
# words), so the bag of words and word pairs sees characters and character bigrams, not whole sentences.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN = re.compile(rf"[{CJK}]|[^\W{CJK}]+(?:['’][^\W{CJK}]+)*|[^\w\s]")
NAME_V1 = "beacons.RegexTokenizer.v1"
NAME = "beacons.RegexTokenizer.v2"


AFFIX_MIN = 6  # words at least this long also give their first and last four letters


def affix_words(words: list[str]) -> list[str]:
    """Shadow tokens for typo and inflection robustness: "crashign" -> "zp_cras", "zs_sign"."""
    out = []
    for w in words:
        if len(w) >= AFFIX_MIN and w.isalpha() and not w.startswith("zz"):
            out.append(f"zp_{w[:4]}")
            out.append(f"zs_{w[-4:]}")
    return out


class RegexTokenizer:
    def __init__(self, vocab: Vocab, pattern: re.Pattern[str] = TOKEN, affixes: bool = False) -> None:
        self.vocab = vocab
        self.pattern = pattern
        self.affixes = affixes

    def __call__(self, text: str) -> Doc:
        words = self.pattern.findall(text)
        if self.affixes:
            words += affix_words(words)
        return Doc(self.vocab, words=words)

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterable[Doc]:
        for text in texts:
            yield self(text)

    # Nothing to save: the pattern is code. spaCy calls these when saving and loading.
    def to_bytes(self, **kwargs: Any) -> bytes:
        return b""

    def from_bytes(self, data: bytes, **kwargs: Any) -> RegexTokenizer:
        return self

    def to_disk(self, path: str | Path, **kwargs: Any) -> None:
        pass

    def from_disk(self, path: str | Path, **kwargs: Any) -> RegexTokenizer:
        return self


@registry.tokenizers(NAME)  # type: ignore[untyped-decorator]
def create_tokenizer(affixes: bool = False) -> Callable[[Language], RegexTokenizer]:
    """``affixes``: also emit each long word's first and last four letters as extra tokens."""

    def make(nlp: Language) -> RegexTokenizer:
        return RegexTokenizer(nlp.vocab, affixes=affixes)

    return make


@registry.tokenizers(NAME_V1)  # type: ignore[untyped-decorator]
def create_tokenizer_v1() -> Callable[[Language], RegexTokenizer]:
    """Models trained before v2 load with the tokenizer they were trained with."""

    def make(nlp: Language) -> RegexTokenizer:
        return RegexTokenizer(nlp.vocab, TOKEN_V1)

    return make
