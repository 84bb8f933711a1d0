"""Language of a post, with py3langid (its model ships inside the wheel).

Short posts are hard to identify. A post whose language is not clear is
reported as ``und`` (undetermined) unless it is plain ASCII, which in practice
is English; it is never silently called English when it has non-ASCII letters.
"""

from __future__ import annotations

import re
from functools import lru_cache

LANGUAGES = (
    "en",
    "es",
    "de",
    "fr",
    "pt",
    "it",
    "nl",
    "sv",
    "da",
    "no",
    "fi",
    "pl",
    "cs",
    "tr",
    "ru",
    "uk",
    "ja",
    "zh",
    "ko",
    "ar",
    "id",
)
MIN_CONFIDENCE = 0.6
_STRIP = re.compile(r"(https?://\S+|[@#]\w+|zz(brand|brandlc|product|handle))")


# Frequent English function words: a post where they are at least a fifth of the
# words is English, and the slower statistical model is not asked.
_ENGLISH = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "i",
        "my",
        "me",
        "we",
        "our",
        "you",
        "your",
        "it",
        "its",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "have",
        "has",
        "had",
        "do",
        "does",
        "did",
        "not",
        "no",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "this",
        "that",
        "there",
        "they",
        "them",
        "he",
        "she",
        "his",
        "her",
        "just",
        "so",
        "if",
        "can",
        "can't",
        "don't",
        "doesn't",
        "won't",
        "isn't",
        "what",
        "how",
        "why",
        "when",
        "anyone",
    ]
)
_WORD = re.compile(r"[a-z']+")


def _ascii_letters(body: str) -> bool:
    """No letter outside ASCII (emoji, curly quotes and dashes are fine; "é", "ß", "я" are not)."""
    return body.isascii() or not any(ord(ch) > 127 and ch.isalpha() for ch in body)


def _clearly_english(body: str) -> bool:
    words = _WORD.findall(body.lower())
    return len(words) >= 4 and _ascii_letters(body) and sum(w in _ENGLISH for w in words) * 5 >= len(words)


@lru_cache(maxsize=1)
def _identifier():  # type: ignore[no-untyped-def]
    from py3langid import langid

    ident = langid.LanguageIdentifier.from_modelpath(langid.MODEL_DIR / langid.MODEL_FILE, norm_probs=True)
    ident.set_languages(list(LANGUAGES))
    return ident


def detect(text: str) -> tuple[str, float]:
    """(ISO 639-1 code or "und", confidence)."""
    body = _STRIP.sub(" ", text[:300]).strip()
    letters = sum(map(str.isalpha, body))
    if letters < 3:
        return "und", 0.0
    if _clearly_english(body):
        return "en", 0.99
    lang, prob = _identifier().classify(body)
    if prob >= MIN_CONFIDENCE and (lang == "en" or letters >= 8):
        return str(lang), float(prob)
    if lang != "en" and prob >= 0.4 and letters >= 12:
        return str(lang), float(prob)
    if body.isascii():
        return "en", 0.5  # short plain-ASCII text: English is the likely reading, with low confidence
    return "und", float(prob)
