"""Why a beacon is where it is, in one plain sentence for the card, the detail page and ``queue show`` (issue 13).

``beacons.route.decide`` stores a reason written for ``beacons route
--explain`` (``classifier rules: support score 1.00 >= support_threshold
0.50 (advocacy 0.10)``). ``why_routed`` turns that reason, the scores, the
team and the classifier's evidence passage into words a support agent reads
at a glance. A reason it does not know is shown as stored, never dropped.
"""

from __future__ import annotations

import re
from typing import Any

from beacons.models import Beacon

PASSAGE_CHARS = 160

_NUM = r"(\d+(?:\.\d+)?)"
_CLASSIFIER = re.compile(r"^classifier (?P<model>\S+): (?P<why>.*)$", re.S)
_ABOVE = re.compile(rf"^(?P<queue>support|advocacy) score {_NUM} >= \w+_threshold {_NUM}")
_BELOW = re.compile(rf"^support {_NUM} < {_NUM} and advocacy {_NUM} < {_NUM}")
_RELEVANCE = re.compile(rf"^relevance {_NUM} < relevance_threshold {_NUM}")
_RULE = re.compile(r"^rule (?P<name>.+?): (?P<actions>.*)$", re.S)
_MIN_PRIORITY = re.compile(r"min_priority (\d+)")
_REROUTED = re.compile(r"^re-routed by (?P<by>.+) from (?P<old>support|advocacy|none)$", re.S)
_STOPPED = {
    "brand": "it names none of the brands",
    "drop": "{detail}",
    "language": "{detail}",
}
_MEANING = {
    "support": "someone who needs help",
    "advocacy": "praise or a recommendation worth answering",
}


def _pct(value: str | float) -> str:
    return f"{round(float(value) * 100)}%"


def _passage(evidence: dict[str, Any] | None, text: str) -> str:
    """The classifier's deciding passage, quoted and shortened; empty when it is the whole post or missing."""
    if not evidence or not isinstance(evidence.get("text"), str):
        return ""
    passage = " ".join(evidence["text"].split())
    if not passage or passage == " ".join(text.split()):
        return ""
    if len(passage) > PASSAGE_CHARS:
        passage = passage[: PASSAGE_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return f", from the passage “{passage}”"


def _scores(scores: dict[str, float]) -> str:
    """The classifier's support and advocacy scores that are not (nearly) zero, e.g. ``support 62%``."""
    parts = [f"{q} {_pct(scores[q])}" for q in ("support", "advocacy") if round(float(scores.get(q, 0)) * 100)]
    return " and ".join(parts)


def _classifier(why: str, b: Beacon) -> str | None:
    if m := _ABOVE.match(why):
        queue, score, bar = m.group("queue"), m.group(2), m.group(3)
        sentence = f"The classifier read this as {_MEANING[queue]} ({queue} {_pct(score)}, the bar is {_pct(bar)})"
        return sentence + _passage(b.evidence, b.text)
    if m := _BELOW.match(why):
        support, s_bar, advocacy, a_bar = m.groups()
        return (
            f"Not queued: the classifier was not sure enough of either queue "
            f"(support {_pct(support)} of the {_pct(s_bar)} needed, advocacy {_pct(advocacy)} of {_pct(a_bar)})"
        )
    if m := _RELEVANCE.match(why):
        return (
            f"Not queued: the classifier found it hardly about the brand "
            f"(relevance {_pct(m.group(1))}, the bar is {_pct(m.group(2))})"
        )
    return None


def _sentence(b: Beacon) -> str | None:
    reason = b.reason.strip()
    if m := _CLASSIFIER.match(reason):
        return _classifier(m.group("why"), b)
    if m := _RULE.match(reason):
        sentence = f"The routing rule “{m.group('name')}” put it in {b.queue}"
        if floor := _MIN_PRIORITY.search(m.group("actions")):
            sentence += f" with a priority of at least {floor.group(1)}"
        said = _scores(b.scores)
        if said:
            sentence += f"; the classifier said {said}"
        return sentence + _passage(b.evidence, b.text)
    if m := _REROUTED.match(reason):
        sentence = f"{m.group('by')} moved it here from {m.group('old')}"
        said = _scores(b.scores)
        return sentence + (f" (the classifier had said {said})" if said else "")
    rule, _, detail = reason.partition(": ")
    if rule in _STOPPED and detail:
        return "Not queued: " + _STOPPED[rule].format(detail=detail)
    return None


def why_routed(b: Beacon) -> str:
    """One sentence: who or what put the beacon in its queue, with the scores, the passage and the team."""
    sentence = _sentence(b)
    if sentence is None:
        return f"Routed: {b.reason}" if b.reason else f"In {b.queue}."
    if b.team and b.queue != "none":
        sentence += f"; team {b.team} handles it"
    return sentence + "."
