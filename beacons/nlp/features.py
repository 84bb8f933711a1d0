"""Extra words the classifier reads for a post that is not in English.

The bag of words learns English from thousands of posts and each other language
from a few dozen, and Russian, Polish, Czech or Turkish write one word in many
inflected forms ("работает", "работал", "работать"), so a form seen in training
is rarely the one in a new post. For a post not detected as English, each long
word also gives its first ``STEM`` letters, diacritics folded ("çalışmıyor" and
"calismiyor" both give ``zzs_calis``), and the post gives its language as a
word (``zzlang_ru``). English posts get none of these: affixes for every word
were measured and did worse (README, "The classifier").

Which of these a model was trained with is kept in its ``meta.json``
(``beacons_training.features``), so serving reads a post the way training did.
A model trained before this module reads no extra words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from beacons.nlp.lang import detect
from beacons.nlp.polarity import polarity_token

STEM = 5
STEM_MIN = 6  # words at least this long give a stem
# Letters only, outside the Han/kana ranges (those are one token per character already).
_LONG_WORD = re.compile(rf"[^\W\d_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{{{STEM_MIN},}}")
ENGLISH = frozenset({"en"})
CHARGRAM = 3
CHARGRAM_MIN = 5  # words at least this long give their inner character trigrams
_CHARGRAM_WORD = re.compile(rf"[^\W\d_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{{{CHARGRAM_MIN},}}")


@dataclass(frozen=True, slots=True)
class Features:
    stems: bool = False  # non-English posts: each long word's first STEM letters
    lang_token: bool = False  # non-English posts: zzlang_<code>
    chargrams: bool = False  # every post: the character trigrams inside each word of CHARGRAM_MIN+ letters
    polarity: bool = False  # non-English posts: one word for the polarity cues of beacons.nlp.polarity

    def any(self) -> bool:
        return self.stems or self.lang_token or self.chargrams or self.polarity

    def to_meta(self) -> dict[str, bool]:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None) -> Features:
        meta = meta or {}
        return cls(**{name: bool(meta.get(name, False)) for name in ("stems", "lang_token", "chargrams", "polarity")})


NONE = Features()


def post_lang(text: str) -> str:
    """The language the classifier reports for a post (``detect`` on its first 1,000 characters, lower-cased)."""
    return _lang(text[:1000].lower())


@lru_cache(maxsize=4096)
def _lang(head: str) -> str:
    # Cached: a post's language is asked for when its model input is built and again when it is decided.
    return detect(head)[0]


_UNDECOMPOSED = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe"})


def fold(word: str) -> str:
    """Diacritics removed, as people type without them: "çalış" -> "calis", "błąd" -> "blad"; Cyrillic unchanged."""
    decomposed = unicodedata.normalize("NFKD", word.translate(_UNDECOMPOSED))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def chargrams(masked: str) -> list[str]:
    """Each long word's character trigrams, once per post: "crashign" -> zc_cra, zc_ras, ..., zc_ign.

    A typo, a slang spelling or a word never seen in training still shares most of its trigrams with
    the words the model knows ("crashign" and "crashing" share four of six).
    """
    seen: set[str] = set()
    out: list[str] = []
    for m in _CHARGRAM_WORD.finditer(masked):
        w = m.group()
        if w.startswith("zz"):
            continue
        for i in range(len(w) - CHARGRAM + 1):
            gram = w[i : i + CHARGRAM]
            if gram not in seen:
                seen.add(gram)
                out.append(f"zc_{gram}")
    return out


def extra_words(masked: str, lang: str | None, features: Features) -> str:
    """The extra words for a post in ``lang`` whose masked, lower-cased text is ``masked``."""
    if not features.any() or lang is None:
        return ""
    words = chargrams(masked) if features.chargrams else []
    if lang in ENGLISH:
        return " ".join(words)
    if features.polarity:
        token = polarity_token(masked, lang)
        if token:
            words.append(token)
    if features.lang_token:
        words.append(f"zzlang_{lang}")
    if features.stems:
        seen: set[str] = set()
        for m in _LONG_WORD.finditer(masked):
            w = m.group()
            if w.startswith("zz"):
                continue
            stem = fold(w[:STEM])
            if stem not in seen:
                seen.add(stem)
                words.append(f"zzs_{stem}")
    return " ".join(words)
