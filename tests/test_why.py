"""Why it is here (issue 13 §3): the stored route reason and classification as one plain sentence."""

from __future__ import annotations

from typing import Any

import pytest

from beacons.models import Beacon
from beacons.queue import why_routed


def beacon(reason: str, *, queue: str = "support", team: str | None = None, **kw: Any) -> Beacon:
    text = kw.pop("text", "My RouterX drops wifi every night. Firmware 2.4.1. How do I fix this?")
    return Beacon(
        1, queue, "new", 60, "Acme", "RouterX", "", text, None, "forum", None, None, "negative", True,  # type: ignore[arg-type]
        reason=reason, team=team, **kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("b", "sentence"),
    [
        (
            beacon("classifier rules: support score 1.00 >= support_threshold 0.50 (advocacy 0.00)"),
            "The classifier read this as someone who needs help (support 100%, the bar is 50%).",
        ),
        (
            beacon(
                "classifier spacy-1: advocacy score 0.83 >= advocacy_threshold 0.60 (support 0.10)",
                queue="advocacy",
                team="community",
            ),
            "The classifier read this as praise or a recommendation worth answering (advocacy 83%, the bar is 60%);"
            " team community handles it.",
        ),
        (
            beacon("classifier rules: support 0.20 < 0.50 and advocacy 0.10 < 0.50", queue="none", team="x"),
            "Not queued: the classifier was not sure enough of either queue"
            " (support 20% of the 50% needed, advocacy 10% of 50%).",
        ),
        (
            beacon("classifier rules: relevance 0.30 < relevance_threshold 0.50", queue="none"),
            "Not queued: the classifier found it hardly about the brand (relevance 30%, the bar is 50%).",
        ),
        (
            beacon(
                "rule urgent: queue support, min_priority 80",
                team="cloud",
                scores={"support": 0.62, "advocacy": 0.0},
            ),
            "The routing rule “urgent” put it in support with a priority of at least 80; the classifier said"
            " support 62%; team cloud handles it.",
        ),
        (
            beacon("re-routed by maria from advocacy", team="networking", scores={"support": 0.3, "advocacy": 0.7}),
            "maria moved it here from advocacy (the classifier had said support 30% and advocacy 70%);"
            " team networking handles it.",
        ),
        (beacon("brand: no brand mentioned", queue="none"), "Not queued: it names none of the brands."),
        (
            beacon("drop: author 'spambot' is on routing.drop.authors", queue="none"),
            "Not queued: author 'spambot' is on routing.drop.authors.",
        ),
        (beacon("imported from the old tool"), "Routed: imported from the old tool"),
        (beacon(""), "In support."),
    ],
)
def test_why_routed_says_it_in_one_sentence(b: Beacon, sentence: str) -> None:
    assert why_routed(b) == sentence


def test_why_routed_quotes_the_deciding_passage() -> None:
    passage = "My RouterX drops wifi every night."
    b = beacon(
        "classifier spacy-1: support score 0.91 >= support_threshold 0.50 (advocacy 0.02)",
        evidence={"text": passage, "start": 0, "end": len(passage)},
    )
    assert why_routed(b) == (
        "The classifier read this as someone who needs help (support 91%, the bar is 50%),"
        " from the passage “My RouterX drops wifi every night.”."
    )


@pytest.mark.parametrize("evidence", [None, {"text": 3}, {"text": "   "}])
def test_why_routed_without_a_usable_passage_says_no_passage(evidence: Any) -> None:
    b = beacon("classifier rules: support score 0.91 >= support_threshold 0.50 (advocacy 0.02)", evidence=evidence)
    assert "passage" not in why_routed(b)


def test_why_routed_shortens_a_long_passage_and_skips_one_that_is_the_whole_post() -> None:
    long = "The dashboard " + "returns 502 errors again " * 20
    b = beacon(
        "classifier spacy-1: support score 0.91 >= support_threshold 0.50 (advocacy 0.02)",
        text=long + "and more.",
        evidence={"text": long, "start": 0, "end": len(long)},
    )
    quoted = why_routed(b).split("“")[1].split("”")[0]
    assert quoted.endswith("…") and len(quoted) <= 160 and long.startswith(quoted[:-1])
    whole = beacon(
        "classifier spacy-1: support score 0.91 >= support_threshold 0.50 (advocacy 0.02)",
        text="RouterX down",
        evidence={"text": "RouterX down", "start": 0, "end": 12},
    )
    assert "passage" not in why_routed(whole)
