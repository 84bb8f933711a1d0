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

from beacons.nlp.model import MODEL_DIR, SpacyClassifier, find_model

__all__ = ["MODEL_DIR", "SpacyClassifier", "find_model"]
