"""``beacons rescan``: match and classify stored posts again after brands, aliases, excludes or the model change.

Two passes over what is stored (issue 13 §4), each in pages of ``batch``:

1. beacons nobody has worked (status ``new``, no event by a person): matched,
   classified and routed again; a changed result updates the beacon (with a
   ``rescan`` event in its history), a beacon moving out of ``none`` gets its
   alerts. A beacon a person claimed, resolved, re-routed, relabelled or noted
   is never changed (the storage update is guarded, so this holds even while
   people work the queue during a rescan).
2. posts that named no brand, kept for ``retention.unmatched``: one that
   matches now is classified, routed and stored with its beacon and alerts
   (outbox rows), exactly as a poll would have stored it; its kept row goes.
   Re-running adds nothing: the row is gone and the post's keys are taken.

Kept unmatched posts older than ``retention.unmatched`` are pruned first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from beacons.classify import Classifier, load_classifier
from beacons.config import Config, RetentionConfig
from beacons.dedupe import dedupe_keys
from beacons.fetch import FetchLimits
from beacons.log import get_logger
from beacons.models import Match, Mention
from beacons.pipeline import Pipeline
from beacons.queue import link_threads
from beacons.storage import Storage
from beacons.storage.unmatched import Stored

log = get_logger("beacons.rescan")

Progress = Callable[[dict[str, int]], None]
COUNTS = ("checked", "total", "new", "duplicate", "still_unmatched", "updated", "unchanged", "unmatched_now", "pruned")


def pipeline_for(config: Config, store: Storage, classifier: Classifier | None = None) -> Pipeline:
    """A pipeline that fetches nothing: the config's brands, routing, alert channels and classifier."""
    from beacons.alerts.config import channel_names

    classifier = classifier or load_classifier(
        config.classifier.model,
        support_threshold=config.routing.support_threshold_for(None),
        advocacy_threshold=config.routing.advocacy_threshold,
        relevance_threshold=config.routing.relevance_threshold,
    )
    return Pipeline(
        store=store,
        client=cast(Any, None),  # rescan reads the database only
        classifier=classifier,
        brands=config.brand_models(),
        limits=FetchLimits.from_config(config.fetch),
        channels=channel_names(config.alerts),
        routing=config.routing,
        retention=config.retention,
        sources=config.sources,
    )


def prune_unmatched(store: Storage, retention: RetentionConfig, now: datetime) -> int:
    """Forget kept unmatched posts older than ``retention.unmatched`` (all of them when it is 0)."""
    pruned = store.prune_unmatched(now - timedelta(seconds=retention.unmatched))
    if pruned:
        log.info("unmatched.pruned", count=pruned, retention_s=retention.unmatched)
    return pruned


def _match(pipeline: Pipeline, mention: Mention) -> Match | None:
    try:
        return pipeline.match(mention)  # implies_brand included: a source set to imply one adopts its posts
    except Exception as exc:  # one odd post costs that post, never the rescan
        log.info("rescan.skipped", source=mention.source_id, error=f"{type(exc).__name__}: {exc}"[:300])
        return None


def rescan(
    pipeline: Pipeline,
    *,
    now: datetime,
    since: datetime | None = None,
    source: str | None = None,
    progress: Progress | None = None,
    batch: int = 200,
) -> dict[str, int]:
    """Both passes (see the module docstring); returns the counts, and reports them after each page."""
    store = pipeline.store
    counts = dict.fromkeys(COUNTS, 0)
    counts["pruned"] = prune_unmatched(store, pipeline.retention, now)
    counts["total"] = store.unmatched_count(since=since, source=source) + store.unworked_count(
        since=since, source=source
    )
    # Beacons first, so the beacons the second pass creates are not classified twice.
    after = 0
    while worked := store.unworked_page(after, batch, since=since, source=source):
        after = worked[-1].id
        _reclassify(pipeline, worked, counts, now)
        if progress:
            progress(dict(counts))
    after = 0
    while page := store.unmatched_page(after, batch, since=since, source=source):
        after = page[-1].id
        _adopt(pipeline, page, counts, now)
        if progress:
            progress(dict(counts))
    log.info("rescan.done", **counts)
    return counts


def _adopt(pipeline: Pipeline, page: list[Stored], counts: dict[str, int], now: datetime) -> None:
    candidates = []
    done = []
    for stored in page:
        match = _match(pipeline, stored.mention)
        if match is None:
            counts["still_unmatched"] += 1
            continue
        candidates.append((stored.mention, tuple(dedupe_keys(stored.mention)), match))
        done.append(stored.id)
    tally: dict[str, int] = {"classify_errors": 0}
    items = pipeline.classify_items(candidates, tally)
    saved = pipeline.store.adopt_unmatched(done, items, channels=pipeline.channels, now=now)
    if saved.beacon_ids:
        link_threads(pipeline.store, pipeline.routing.grouping, saved.beacon_ids)
    counts["checked"] += len(page)
    counts["new"] += saved.new
    counts["duplicate"] += saved.duplicates


def _reclassify(pipeline: Pipeline, page: list[Stored], counts: dict[str, int], now: datetime) -> None:
    candidates = []
    for stored in page:
        match = _match(pipeline, stored.mention)
        if match is None:  # an exclude or a removed alias: left as it is, for a person to dismiss
            counts["unmatched_now"] += 1
            continue
        candidates.append((stored, match))
    tally: dict[str, int] = {"classify_errors": 0}
    items = pipeline.classify_items([(s.mention, (), m) for s, m in candidates], tally)
    for (stored, _), item in zip(candidates, items, strict=True):
        if item.classification is None:  # the classifier failed on it: keep what it has
            counts["unchanged"] += 1
        elif pipeline.store.update_rescanned(stored.id, item, channels=pipeline.channels, now=now):
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    counts["checked"] += len(page)
