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

TOKEN = re.compile(r"[\w]+(?:['’][\w]+)*|[^\w\s]")
NAME = "beacons.RegexTokenizer.v1"


class RegexTokenizer:
    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        return Doc(self.vocab, words=TOKEN.findall(text))

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
def create_tokenizer() -> Callable[[Language], RegexTokenizer]:
    def make(nlp: Language) -> RegexTokenizer:
        return RegexTokenizer(nlp.vocab)

    return make
