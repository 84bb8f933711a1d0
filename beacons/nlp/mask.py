"""Replace brand and product mentions with placeholder words before classification.

The classifier must judge "my Xbrand router drops wifi" the same whatever the
brand is called. Placeholders keep one signal that matters for homonyms: a
brand written in lower case ("walked through a bramble patch") is more often
the ordinary word than one written with a capital.
"""

from __future__ import annotations

from beacons.models import Match
from beacons.nlp.features import NONE, Features, extra_words
from beacons.urgency import reports_harm, urgency_of

BRAND = "zzbrand"
BRAND_LOWER = "zzbrandlc"
BRAND_START = "zzbrandst"
PRODUCT = "zzproduct"
HANDLE = "zzhandle"
MAX_CLASSIFY_CHARS = 6_000  # the classifier reads this much; long posts are cut


def placeholder(kind: str, surface: str, *, at_start: bool = False) -> str:
    """The word that stands for a matched span; a capital at a sentence start says nothing."""
    if kind == "handle":
        return HANDLE
    if kind == "product":
        return PRODUCT
    if surface.startswith("#"):
        surface = surface[1:]
    if surface.islower():
        return BRAND_LOWER
    return BRAND_START if at_start else BRAND


def _at_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \t\"'“‘([*-")
    return not before or before[-1] in ".!?:\n"


def mask_text(text: str, match: Match | None) -> str:
    """Text with every matched span replaced, lower-cased, cut to MAX_CLASSIFY_CHARS."""
    if match is not None and match.spans:
        parts: list[str] = []
        pos = 0
        for span in sorted(match.spans, key=lambda s: s.start):
            if span.start < pos:
                continue
            parts.append(text[pos : span.start])
            parts.append(f" {placeholder(span.kind, span.text, at_start=_at_start(text, span.start))} ")
            pos = span.end
        parts.append(text[pos:])
        text = "".join(parts)
    return text[:MAX_CLASSIFY_CHARS].lower()


def vader_token(compound: float) -> str:
    """VADER's compound score as one of five words the bag-of-words model can weigh."""
    if compound <= -0.5:
        return "zzvneg2"
    if compound <= -0.05:
        return "zzvneg1"
    if compound < 0.05:
        return "zzvneu"
    return "zzvpos1" if compound < 0.5 else "zzvpos2"


def cue_tokens(text: str) -> str:
    """Urgency and harm cues (``beacons.urgency``) as words the model can weigh: zzurgent, zzharm."""
    words = []
    if urgency_of(text).score >= 0.5:
        words.append("zzurgent")
    if reports_harm(text):
        words.append("zzharm")
    return " ".join(words)


def model_input(
    text: str, match: Match | None, compound: float, *, lang: str | None = None, features: Features = NONE
) -> str:
    """What the textcat components read: masked, lower-cased text plus the VADER and cue words, and for a
    post not in English (``lang``, the whole post's) the extra words of ``beacons.nlp.features``."""
    masked = mask_text(text, match)
    out = f"{masked} {vader_token(compound)} {cue_tokens(text[:MAX_CLASSIFY_CHARS])}"
    extra = extra_words(masked, lang, features)
    return f"{out} {extra}" if extra else out
