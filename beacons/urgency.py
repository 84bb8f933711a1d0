"""How urgent a post is, and whether it reports harm: pure cue phrases, no model.

Two questions the trained classifier answers badly from a calm voice (issue 12):

- **urgency** (0..1): an outage, payments failing, a security hole, lost data,
  "URGENT", many people affected. It raises a support beacon's priority
  whatever the sentiment (``beacons.route.priority_terms``).
- **harm**: the post reports something broken, money lost or work blocked.
  A support post that does is not neutral toward the brand, however calmly it
  is written ("double charged my card"): the classifier makes it negative.

Cues are English plus the commonest words in the corpus languages; a post in
another language still gets the model's sentiment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


def _cue(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# (kind, weight, pattern). Weights add up; urgency = 1 - exp(-sum), so one strong cue is ~0.7.
URGENCY_CUES: tuple[tuple[str, float, re.Pattern[str]], ...] = (
    (
        "urgent",
        1.2,
        _cue(r"\b(urgent(ly)?|asap|emergency|critical|sev ?1|p0)\b|\bcan'?t wait\b|紧急|至急|срочно|urgente|dringend"),
    ),
    (
        "outage",
        1.0,
        _cue(
            r"\b(outage|offline|(is|are|was|went|goes|been|still|all|totally|completely|site|service|server|servers|app|system) down"
            r"|down (again|for|since|right now)|not loading for anyone|503|500 error)\b"
        ),
    ),
    (
        "payments",
        1.2,
        _cue(
            r"\b((card |contactless )?payments? (are |is )?(fail\w*|declin\w*|reject\w*|down|not going through)"
            r"|can(no|')?t (take|accept|process) (card )?(payments?|orders|cards)|checkout (fails|is broken|broken|down)"
            r"|payouts? (held|missing|delayed|not arrived)|terminals? (are |is )?(offline|down|dead)|lost (sales|revenue|\$?\d[\d,.]* in sales))"
        ),
    ),
    (
        "security",
        1.2,
        _cue(
            r"\b(hacked|breach\w*|compromised|account takeover|vulnerab\w*|exploit\w*|leak(ed|ing|s)? (my |our |customer |user )?(data|passwords?|emails?|keys?)"
            r"|unauthori[sz]ed (login|access|charges?|transactions?)|fraud\w*|stolen)\b"
        ),
    ),
    (
        "data_loss",
        1.1,
        _cue(
            r"\b((lost|deleted|wiped|erased|gone) (all|every|my|our|the|\d+|years?|months?|weeks?)\b.{0,30}\b(data|files?|photos?|records?|notes?|history|weigh-ins|backups?|projects?|messages)"
            r"|data loss|(data|files|records|photos|notes|history) (are|is|were|was) (gone|lost|deleted|wiped))"
        ),
    ),
    (
        "many_users",
        0.8,
        _cue(
            r"\b(all (of )?our (users|customers|staff|stores|sites|terminals|devices|learners|employees|team)|every (customer|user|store|site|one of our)"
            r"|nobody (can|could)|no ?one (can|could)|our (\d+|whole|entire) (users|customers|staff|stores|sites|team|company|learners|employees|office)"
            r"|(\d{2,}|hundreds of|thousands of) (users|customers|people|stores) (are |were )?(affected|can'?t|cannot|unable))\b"
        ),
    ),
)

HARM = _cue(
    r"\b(broken|broke|crash\w*|bricked|dead|died|fail\w*|error\w*|stuck|frozen|freez\w*|(not|isn'?t|doesn'?t|don'?t|won'?t|can'?t|cannot|never|no longer|stopped) "
    r"(work\w*|connect\w*|load\w*|sync\w*|open\w*|start\w*|charg\w*|arriv\w*|turn\w* on|respond\w*|record\w*|appear\w*|let me|print\w*|pair\w*|boot\w*)"
    r"|(double|twice|over)[ -]?charg\w*|charged (me |us )?(twice|two times|again|for \d+)|refund (has not|hasn'?t|never|not)\w*|unauthori[sz]ed charge\w*"
    r"|lost|deleted|wiped|missing|gone|locked out|declin\w*|reject\w*|offline|outage|down|drops?|dropping|disconnect\w*|resets?|corrupt\w*"
    r"|blocked|can'?t (work|log ?in|sign ?in|access|pay|use)|unusable|held our|overcharge\w*)\b"
)


# Substrings one of which every cue of that kind contains: a text with none of them skips the regex
# (most posts are not urgent, and the regexes are the slow part; bench/classify.py).
_NEEDLES = {
    "urgent": ("urgent", "asap", "emergenc", "critical", "sev", "p0", "wait", "紧急", "至急", "срочно", "dringend"),
    "outage": ("outage", "offline", "down", "loading", "503", "500"),
    "payments": ("payment", "payout", "checkout", "terminal", "sales", "revenue", "cannot", "can't", "cant"),
    "security": (
        "hack",
        "breach",
        "compromis",
        "takeover",
        "vulnerab",
        "exploit",
        "leak",
        "unauthori",
        "fraud",
        "stolen",
    ),
    "data_loss": ("lost", "deleted", "wiped", "erased", "gone", "data loss"),
    "many_users": (
        "all our",
        "all of our",
        "every",
        "nobody",
        "no one",
        "noone",
        "our whole",
        "our entire",
        "hundreds",
        "thousands",
        "affected",
        "unable",
        "can't",
        "cannot",
        *(f"our {d}" for d in "123456789"),
    ),
}
_HARM_NEEDLES = (
    "broke",
    "crash",
    "brick",
    "dead",
    "died",
    "fail",
    "error",
    "stuck",
    "frozen",
    "freez",
    "not",
    "n't",
    "cannot",
    "never",
    "no longer",
    "stopped",
    "charg",
    "refund",
    "lost",
    "delet",
    "wiped",
    "missing",
    "gone",
    "locked",
    "declin",
    "reject",
    "offline",
    "outage",
    "down",
    "drop",
    "disconnect",
    "reset",
    "corrupt",
    "blocked",
    "unusable",
    "held our",
)


@dataclass(frozen=True, slots=True)
class Urgency:
    score: float  # 0..1
    kinds: tuple[str, ...]  # which cues fired: urgent, outage, payments, security, data_loss, many_users


def urgency_of(text: str) -> Urgency:
    """How urgent a post reads, from cue phrases (see ``URGENCY_CUES``)."""
    if not text:
        return Urgency(0.0, ())
    head = text[:20_000]
    lowered = head.lower()
    total = 0.0
    kinds: list[str] = []
    for kind, weight, pattern in URGENCY_CUES:
        if any(n in lowered for n in _NEEDLES[kind]) and pattern.search(head):
            total += weight
            kinds.append(kind)
    return Urgency(round(1.0 - math.exp(-total), 4), tuple(kinds))


def reports_harm(text: str) -> bool:
    """Whether the text reports something broken, money lost or work blocked."""
    if not text:
        return False
    head = text[:20_000]
    lowered = head.lower()
    return any(n in lowered for n in _HARM_NEEDLES) and HARM.search(head) is not None
