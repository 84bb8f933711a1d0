"""The trained spaCy classifier: relevance, intents, queue and sentiment.

Built from ``spacy.blank("en")`` plus three ``TextCatBOW`` components trained
on the project's own corpus (``beacons/data/corpus``). Brand and product names
are masked to placeholders before classification, so the model learns how
people talk about *a* product, not about the brands it was trained on. The
trained pipeline ships in ``beacons/data/model``: no download, no training on
install. ``beacons train`` rebuilds it; ``beacons eval`` measures it on brands
it never saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beacons.nlp.model import MODEL_DIR, SpacyClassifier, find_model

__all__ = ["MODEL_DIR", "SpacyClassifier", "find_model"]


def __getattr__(name: str) -> Any:
    # Importing a light submodule (beacons.nlp.labels, for the web page) must not import
    # spaCy: the model module loads only when one of its names is asked for (issue 16).
    if name in __all__:
        from beacons.nlp import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
