"""The passages of a post around its brand mentions: what the classifier reads besides the whole.

One complaint paragraph in 800 words about a holiday is lost in a bag of words
of the whole post (issue 12). So a long post is also read passage by passage:
each paragraph that names the brand, or, in a paragraph too long to be one
thought, the sentence with the mention and one sentence either side. Sentences
end at ``. ! ?`` (and ``。！？``, which need no space after them) or a line
break. Pure functions on character offsets into the full text, so the passage
that decided a post can be shown highlighted where it stands.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from beacons.models import Match

LONG_POST_CHARS = 280  # shorter posts are one passage: the whole post
MAX_PARAGRAPH_CHARS = 600  # a longer paragraph is cut into sentence windows
MAX_PASSAGES = 6
WINDOW = 1  # sentences either side of the one with the mention
MAX_EVIDENCE_CHARS = 600

_SENTENCE_END = re.compile(r"(?:[.!?…]+[\"'”’)\]]*\s+|[。！？]+[」』”）]*\s*|\n+)")
_PARAGRAPH = re.compile(r"\n\s*\n")


def _spans(text: str, pattern: re.Pattern[str], start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Pieces of ``text[start:end]`` between the pattern's matches, stripped, as offsets."""
    end = len(text) if end is None else end
    out: list[tuple[int, int]] = []
    pos = start
    for m in pattern.finditer(text, start, end):
        out.append((pos, m.end()))
        pos = m.end()
    out.append((pos, end))
    return [s for s in (_strip(text, a, b) for a, b in out) if s[1] > s[0]]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence offsets in ``text[start:end]``."""
    return _spans(text, _SENTENCE_END, start, end)


def paragraphs(text: str) -> list[tuple[int, int]]:
    return _spans(text, _PARAGRAPH)


def passages(text: str, match: Match | None) -> list[tuple[int, int]]:
    """The passages around the mentions, in text order, merged where they overlap; [] for a short post."""
    if len(text) < LONG_POST_CHARS or match is None or not match.spans:
        return []
    starts = sorted({s.start for s in match.spans})
    out: list[tuple[int, int]] = []
    paras = paragraphs(text)
    for p_start, p_end in paras:
        inside = [s for s in starts if p_start <= s < p_end]
        if not inside:
            continue
        if p_end - p_start <= MAX_PARAGRAPH_CHARS and len(paras) > 1:
            out.append((p_start, p_end))
            continue
        sents = sentences(text, p_start, p_end)
        for pos in inside:
            i = next((k for k, (a, b) in enumerate(sents) if a <= pos < b), None)
            if i is None:
                continue
            lo, hi = max(0, i - WINDOW), min(len(sents) - 1, i + WINDOW)
            out.append((sents[lo][0], sents[hi][1]))
    merged = _merge(out)
    if len(merged) == 1 and merged[0] == _strip(text, 0, len(text)):
        return []  # the passage is the whole post
    return merged[:MAX_PASSAGES]


def _merge(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def evidence_span(text: str, start: int, end: int, focus: int | None = None) -> tuple[int, int]:
    """A passage cut to at most MAX_EVIDENCE_CHARS at sentence ends, keeping the sentence at ``focus``."""
    if end - start <= MAX_EVIDENCE_CHARS:
        return start, end
    sents = sentences(text, start, end)
    if not sents:
        return start, start + MAX_EVIDENCE_CHARS
    focus = sents[0][0] if focus is None else focus
    i = next((k for k, (a, b) in enumerate(sents) if a <= focus < b), 0)
    lo = hi = i
    while True:
        grown = False
        if hi + 1 < len(sents) and sents[hi + 1][1] - sents[lo][0] <= MAX_EVIDENCE_CHARS:
            hi, grown = hi + 1, True
        if lo > 0 and sents[hi][1] - sents[lo - 1][0] <= MAX_EVIDENCE_CHARS:
            lo, grown = lo - 1, True
        if not grown:
            break
    a, b = sents[lo][0], sents[hi][1]
    return (a, b) if b - a <= MAX_EVIDENCE_CHARS else (a, a + MAX_EVIDENCE_CHARS)
