"""One poll of one source, through every stage: fetch, parse, match, dedupe, classify, route, store.

``Pipeline.poll_source`` never raises for an expected failure: it returns a
``PollResult`` with status ``ok``, ``not_modified`` or ``error``, logs one
canonical ``source.polled`` line and counts it in the sources table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from structlog.contextvars import bound_contextvars

from beacons.classify import Classifier
from beacons.clock import SYSTEM, Clock
from beacons.config import RetentionConfig, RoutingConfig
from beacons.dedupe import content_hash, dedupe_keys, link_problem
from beacons.errors import HTTPStatusError, NotModified, SourceError, StoreError
from beacons.fetch import FetchLimits, Politeness, fetch
from beacons.log import get_logger
from beacons.match import BrandMatcher, implied_match
from beacons.models import Brand, Fetched, Match, Mention, Source, SourceState
from beacons.parsepool import ParsePool
from beacons.queue import link_pending, link_threads
from beacons.redact import scrub
from beacons.route import Rules, route
from beacons.storage import Item, Storage
from collectors import REGISTRY, Poll, PollContext

log = get_logger("beacons.pipeline")


@dataclass(frozen=True, slots=True)
class PollResult:
    source_id: str
    status: str  # ok | not_modified | error | bug
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    retry_after: float | None = None
    consecutive_errors: int = 0
    ms: float = 0.0


class Pipeline:
    def __init__(
        self,
        *,
        store: Storage,
        client: httpx.AsyncClient,
        classifier: Classifier,
        brands: Sequence[Brand],
        limits: FetchLimits,
        politeness: Politeness | None = None,
        channels: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        routing: RoutingConfig | None = None,
        clock: Clock = SYSTEM,
        retention: RetentionConfig | None = None,
        sources: Sequence[Source] = (),
        parse_pool: ParsePool | None = None,
    ) -> None:
        self.store = store
        self.parse_pool = parse_pool  # large feed bodies are parsed in its worker processes (issue 16)
        self.clock = clock
        self.client = client
        self.classifier = classifier
        self.brands = tuple(brands)
        self.matcher = BrandMatcher(self.brands)
        self.limits = limits
        self.politeness = politeness
        self.channels = tuple(channels)
        self.env = dict(env or {})
        self.routing = routing or RoutingConfig()
        self.rules = Rules.from_config(self.routing, self.brands)
        self.retention = retention or RetentionConfig()
        self._unrecorded: dict[str, int] = {}  # failures the database could not record (locked, full, read-only)
        # Sources whose items are about one brand by construction, for matching stored posts (rescan).
        self.implying = {s.id: s for s in sources if s.implies_brand}

    async def poll_source(self, source: Source) -> PollResult:
        started = time.monotonic()
        with bound_contextvars(source=source.id):
            result = await self._poll(source, started)
            fields: dict[str, Any] = {"status": result.status, **result.counts, "ms": round(result.ms)}
            if result.error:
                fields["error"] = result.error
            if result.retry_after is not None:
                fields["retry_after"] = result.retry_after
            (log.warning if result.status == "error" else log.info)("source.polled", **fields)
            return result

    async def _poll(self, source: Source, started: float) -> PollResult:
        state = self.store.source_state(source.id)
        ctx = self._context(source, state)
        collector = REGISTRY[source.kind]
        try:
            poll: Poll = await collector.poll(ctx, source.options)
        except NotModified:
            try:
                self.store.save_poll(source.id, [], status="not_modified")
            except StoreError as exc:
                return self._store_failed(source, exc, started)
            self._unrecorded.pop(source.id, None)
            return PollResult(source.id, "not_modified", {"entries": 0, "new": 0}, ms=_ms(started))
        except SourceError as exc:
            retry_after = exc.retry_after if isinstance(exc, HTTPStatusError) else ctx.retry_after
            error = scrub(f"{type(exc).__name__}: {exc}")  # the feed URL may carry user:pass@ or ?token=
            try:
                count = self.store.record_error(source.id, error)
            except StoreError:
                count = self._unrecorded_failure(source.id)
            return PollResult(source.id, "error", {}, error, retry_after, count, _ms(started))
        log.debug(
            "source.fetched", entries=len(poll.mentions), ms=round(_ms(started))
        )  # parse done; match, classify, store next
        try:
            counts = self.ingest(
                source.id,
                poll.mentions,
                skipped=len(ctx.skipped) + len(poll.skipped),
                state=self._new_state(ctx, poll, state),
                source=source,
            )
        except StoreError as exc:
            return self._store_failed(source, exc, started)
        for reason, detail in [*ctx.skipped, *poll.skipped][:20]:
            log.info("mention.skipped", reason=reason, detail=detail[:300])
        # ctx.retry_after: the service asked us to slow down (a body backoff field, rate-limit headers).
        self._unrecorded.pop(source.id, None)
        return PollResult(source.id, "ok", counts, retry_after=ctx.retry_after, ms=_ms(started))

    async def dry_poll(self, source: Source) -> tuple[Poll, PollContext]:
        """Fetch and parse one source with no stored state and store nothing (``beacons doctor``)."""
        ctx = self._context(source, SourceState())
        return await REGISTRY[source.kind].poll(ctx, source.options), ctx

    def _store_failed(self, source: Source, exc: StoreError, started: float) -> PollResult:
        """A locked, full or read-only database: the poll's transaction rolled back as a whole.

        The source's ETag, Last-Modified and cursor were in that transaction, so
        they were not advanced: the next poll (after the usual error backoff)
        fetches the same entries again and nothing is lost.
        """
        log.error("store.write_failed", error=str(exc))
        error = scrub(f"StoreError: {exc}")
        try:
            count = self.store.record_error(source.id, error)
        except StoreError:  # the same fault usually blocks counting it too
            count = self._unrecorded_failure(source.id)
        return PollResult(source.id, "error", {}, error, None, count, _ms(started))

    def _unrecorded_failure(self, source_id: str) -> int:
        """Consecutive errors when the database refuses to count them: stored plus those kept here, so backoff still grows."""
        self._unrecorded[source_id] = self._unrecorded.get(source_id, 0) + 1
        return self.store.consecutive_errors(source_id) + self._unrecorded[source_id]

    def ingest(
        self,
        source_id: str,
        mentions: Sequence[Mention],
        *,
        skipped: int = 0,
        state: SourceState | None = None,
        source: Source | None = None,
    ) -> dict[str, int]:
        """Match, dedupe, classify, route and store a batch; returns the poll's counts.

        A ``source`` with ``implies_brand`` makes every item a mention of that brand (``implied_match``).
        """
        source = source or self.implying.get(source_id)
        counts = {
            "entries": len(mentions),
            "new": 0,
            "duplicate": 0,
            "dropped_no_brand": 0,
            "skipped": skipped,
            "support": 0,
            "advocacy": 0,
            "classify_errors": 0,
        }
        candidates: list[tuple[Mention, tuple[str, ...], Match]] = []
        unmatched: list[tuple[str, Mention]] = []  # kept for retention.unmatched, for `beacons rescan`
        keep_unmatched = self.retention.unmatched > 0
        with self.matcher.batch():  # one spaCy memory zone for the poll's entries (issue 16)
            for mention in mentions:
                try:
                    problem = _unusable(mention)
                    if problem is not None:
                        raise ValueError(problem)
                    match = self.match(mention, source)
                    keys = tuple(dedupe_keys(mention)) if match is not None or keep_unmatched else ()
                except Exception as exc:  # one poisoned entry costs that entry, never the poll (issue 10 §5)
                    counts["skipped"] += 1
                    error = scrub(f"{type(exc).__name__}: {exc}", 300)
                    log.info("mention.skipped", reason="bad_entry", entry=_entry_id(mention), detail=error)
                    continue
                if match is None:
                    counts["dropped_no_brand"] += 1
                    if keys:
                        unmatched.append((keys[0], mention))
                    continue
                candidates.append((mention, keys, match))
        known = self.store.known_keys(k for _, keys, _ in candidates for k in keys)
        fresh: list[tuple[Mention, tuple[str, ...], Match]] = []
        batch_keys: set[str] = set()
        for mention, keys, match in candidates:
            if known.intersection(keys) or batch_keys.intersection(keys):
                counts["duplicate"] += 1
                continue
            batch_keys.update(keys)
            fresh.append((mention, keys, match))
        items = self._classify(fresh, counts)
        saved = self.store.save_poll(
            source_id,
            items,
            state=state,
            seen=len(mentions),
            skipped=counts["skipped"],
            channels=self.channels,
            unmatched=unmatched,
        )
        if saved.beacon_ids:  # posts about the same problem become one thread, linked now (never on read)
            link_threads(self.store, self.routing.grouping, saved.beacon_ids)
        counts["new"] = saved.new
        counts["duplicate"] += saved.duplicates
        counts["support"] = saved.queued.get("support", 0)
        counts["advocacy"] = saved.queued.get("advocacy", 0)
        return counts

    def match(self, mention: Mention, source: Source | None = None) -> Match | None:
        """The brand ``mention`` is about: named in its text, or implied by its source's ``implies_brand``.

        ``source`` defaults to the mention's own source among those the pipeline was given.
        """
        found = self.matcher.match(mention)
        source = source or self.implying.get(mention.source_id)
        brand = next((b for b in self.brands if source and b.name == source.implies_brand), None)
        if source is None or brand is None:
            return found
        return implied_match(found, brand, source.implies_product, source.id)

    def retry_unclassified(self, limit: int = 200) -> int:
        """Classify mentions stored while the classifier was failing; returns how many now have a beacon."""
        try:
            pending = self.store.unclassified(limit)
        except StoreError as exc:
            log.warning("mention.reclassify_failed", error=str(exc))
            return 0
        done = 0
        for mention_id, mention, match in pending:
            try:
                result = self.classifier.classify(mention.full_text, match)
            except Exception as exc:  # still failing: it stays stored and is tried again next time
                log.warning("mention.reclassify_failed", mention_id=mention_id, error=f"{type(exc).__name__}: {exc}")
                continue
            item = Item(mention, (), match, result, route(mention, match, result, self.rules))
            try:
                self.store.save_classification(mention_id, item, channels=self.channels)
            except StoreError as exc:
                log.warning("mention.reclassify_failed", mention_id=mention_id, error=str(exc))
                break
            done += 1
        try:  # the beacons just stored, and any a stopped process left unlinked
            link_pending(self.store, self.routing.grouping)
        except StoreError as exc:
            log.warning("thread.link_failed", error=str(exc))
        if done:
            log.info("mention.reclassified", count=done, pending=len(pending) - done)
        return done

    def classify_items(
        self, fresh: Sequence[tuple[Mention, tuple[str, ...], Match]], counts: dict[str, int]
    ) -> list[Item]:
        """Classify and route matched posts (a failure costs that post a classification, never the batch)."""
        return self._classify(fresh, counts)

    def _classify(self, fresh: Sequence[tuple[Mention, tuple[str, ...], Match]], counts: dict[str, int]) -> list[Item]:
        if not fresh:
            return []
        try:
            results: list[Any] = list(self.classifier.classify_many([(m.full_text, match) for m, _, match in fresh]))
        except Exception:  # fall back to one at a time so one bad post cannot fail the batch
            results = []
            for m, _, match in fresh:
                try:
                    results.append(self.classifier.classify(m.full_text, match))
                except Exception as exc:
                    results.append(exc)
        items = []
        for (mention, keys, match), result in zip(fresh, results, strict=True):
            if not isinstance(result, Exception):
                try:
                    items.append(Item(mention, keys, match, result, route(mention, match, result, self.rules)))
                    continue
                except Exception as exc:  # stored unrouted and retried, like a classifier failure
                    result = exc
            counts["classify_errors"] += 1
            error = scrub(f"{type(result).__name__}: {result}", 2000)
            log.error("mention.classify_failed", url=mention.url, error=error)
            items.append(Item(mention, keys, match, None, None, classify_error=error))
        return items

    def _context(self, source: Source, state: SourceState) -> PollContext:
        ctx = PollContext(source=source, state=state, fetch=None, brands=self.brands, env=self.env, clock=self.clock)  # type: ignore[arg-type]
        ctx.pause_host = self.politeness.pause if self.politeness is not None else None
        ctx.parse_pool = self.parse_pool

        async def bound_fetch(
            url: str,
            *,
            params: Mapping[str, str | int] | None = None,
            headers: Mapping[str, str] | None = None,
            conditional: bool = True,
        ) -> Fetched:
            use = conditional and not ctx.conditional_used
            fetched = await fetch(
                self.client,
                url,
                limits=self.limits,
                params=params,
                headers=headers,
                etag=state.etag if use else None,
                last_modified=state.last_modified if use else None,
                politeness=self.politeness,
                source_id=source.id,
            )
            if use:
                ctx.conditional_used = True
                ctx.etag, ctx.last_modified = fetched.etag, fetched.last_modified
            return fetched

        ctx.fetch = bound_fetch
        return ctx

    @staticmethod
    def _new_state(ctx: PollContext, poll: Poll, old: SourceState) -> SourceState:
        etag, last_modified = (ctx.etag, ctx.last_modified) if ctx.conditional_used else (old.etag, old.last_modified)
        return SourceState(
            etag,
            last_modified,
            poll.cursor if poll.cursor is not None else old.cursor,
            poll.quota if poll.quota is not None else old.quota,
        )


_STORED_TEXT = ("title", "text", "author", "guid", "url", "raw", "lang")


def _unusable(mention: Mention) -> str | None:
    """Why a mention cannot be stored as it is, or None: text no database can encode, or a link urlsplit refuses."""
    for name in _STORED_TEXT:
        value = getattr(mention, name)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"{name} holds a lone surrogate (from an escape like \\ud800 or &#xD800;), which is not text"
    return link_problem(mention.url)


def _entry_id(mention: Mention) -> str:
    """The entry's name in a log line: its guid, else its link, else its content hash."""
    return scrub(mention.guid or mention.url or f"hash:{content_hash(mention)}", 200)


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def classify_texts(
    items: Sequence[tuple[str, str]], matcher: BrandMatcher, classifier: Classifier
) -> list[dict[str, Any]]:
    """Match, classify and route (title, text) pairs with no I/O: the ``beacons classify`` contract."""
    from datetime import UTC, datetime

    from beacons.text import html_to_text, one_line

    now = datetime.now(UTC)
    # Input may be raw HTML (a scraped post): clean it as a collector would.
    mentions = [
        Mention("classify", None, None, one_line(title), html_to_text(text), None, None, now, "{}")
        for title, text in items
    ]
    with matcher.batch():
        matches = [matcher.match(m) for m in mentions]
    results = classifier.classify_many([(m.full_text, match) for m, match in zip(mentions, matches, strict=True)])
    records = []
    for mention, match, c in zip(mentions, matches, results, strict=True):
        r = route(mention, match, c)
        records.append(
            {
                "brand": match.brand if match else None,
                "product": match.product if match else None,
                "queue": r.queue,
                "is_beacon": r.queue == "support",
                "sentiment": c.sentiment,
                "scores": {**c.scores, "relevance": round(c.relevance, 4), "sentiment": c.sentiment_score},
                "intents": c.intents,
                "priority": r.priority,
                "lang": c.lang,
                "urgency": c.urgency,
                "evidence": c.evidence.to_json() if c.evidence else None,
            }
        )
    return records
