"""Serving-only shortcuts for a bag-of-words pipeline, each leaving every score unchanged (issue 16).

The shipped model is four ``TextCatBOW`` components. Each reads only the hash
of every token's text (``extract_ngrams`` on ``ORTH``), so:

- the vocabulary need not compute the 22 other lexeme attributes (shape,
  like_num, is_stop...) for each new word of each post, which was as costly as
  the four textcats together;
- the four components read the same docs, so the unigram and bigram keys of a
  batch are counted once and handed to all four instead of four times.

``tune`` applies both only when every layer of every component is one it
knows; any other architecture (a tok2vec, vectors) is left exactly as loaded.
``tests/test_classify_speed.py`` checks the scores against an untuned pipeline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spacy.language import Language
    from thinc.api import Model

# Leaf layers of TextCatBOW (v2, v3) and their combinators: nothing here reads a token but extract_ngrams.
_KNOWN_LEAVES = frozenset({"extract_ngrams", "sparse_linear", "softmax_activation", "logistic", "softmax", "sigmoid"})
_COMBINATORS = (">>", "with_cpu(", "resizable(")


class _SharedNgrams:
    """The ``extract_ngrams`` forward of one batch, computed once per (attribute, n) for all components.

    Kept per thread, so two threads classifying with one pipeline never read each other's batch.
    """

    def __init__(self, forward: Any) -> None:
        self._forward = forward
        self._local = threading.local()

    def __call__(self, model: Model[Any, Any], docs: Sequence[Any], is_train: bool) -> Any:
        # thinc's with_cpu calls begin_update (is_train=True) even to predict; this pipeline is never
        # trained (``beacons train`` builds its own), and the n-grams have no gradient anyway.
        local = self._local
        held: list[Any] = getattr(local, "docs", [])
        out: dict[tuple[int, int], Any] = getattr(local, "out", {})
        if len(docs) != len(held) or any(a is not b for a, b in zip(docs, held, strict=True)):
            local.docs, local.out = list(docs), {}
            out = local.out
        key = (int(model.attrs["attr"]), int(model.attrs["ngram_size"]))
        if key not in out:
            out[key] = self._forward(model, docs, is_train)
        return out[key]

    def clear(self) -> None:
        """Let go of this thread's last batch (its docs may point into a memory zone that has ended)."""
        self._local.docs, self._local.out = [], {}

    def held(self) -> int:
        """How many docs this thread's cache holds (0 after ``clear``)."""
        return len(getattr(self._local, "docs", []))


def token_attrs(nlp: Language) -> set[int] | None:
    """The token attributes the pipeline reads, if it is made only of bag-of-words layers; else None."""
    attrs: set[int] = set()
    for _, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if model is None:
            return None
        for layer in model.walk():
            name = layer.name
            if name == "extract_ngrams":
                attrs.add(int(layer.attrs["attr"]))
            elif name not in _KNOWN_LEAVES and not any(c in name for c in _COMBINATORS):
                return None
    return attrs


def tune(nlp: Language) -> _SharedNgrams | None:
    """Apply the shortcuts to a loaded pipeline for classification; returns the n-gram cache to clear
    after each batch, or None when the pipeline is not plain bag of words (left untouched)."""
    from spacy.attrs import ORTH  # type: ignore[import-not-found]
    from spacy.ml.extract_ngrams import forward

    attrs = token_attrs(nlp)
    if attrs is None or not nlp.pipeline:
        return None
    # ORTH is the string's own hash, set for every lexeme; any other attribute keeps its getter.
    vocab: Any = nlp.vocab  # lex_attr_getters is a Cython attribute the stubs leave out
    vocab.lex_attr_getters = {k: f for k, f in vocab.lex_attr_getters.items() if k in attrs and k != ORTH}
    shared = _SharedNgrams(forward)
    for _, proc in nlp.pipeline:
        for layer in getattr(proc, "model").walk():  # a component's model is untyped
            if layer.name == "extract_ngrams":
                layer._func = shared
    return shared


@contextmanager
def batch(shared: _SharedNgrams | None) -> Iterator[None]:
    """Clear the shared n-grams when a batch is done, so no doc outlives its memory zone."""
    try:
        yield
    finally:
        if shared is not None:
            shared.clear()
