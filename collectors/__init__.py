"""Collectors: one module per source kind, found through a registry.

A collector module declares an ``Options`` dataclass (its config keys) and an
``async poll(ctx, options) -> Poll`` registered with ``@register("kind", Options)``.
``poll`` builds requests, fetches them through ``ctx.fetch`` (which does the
shared HTTP work: conditional GET, byte caps, politeness, Retry-After) and
parses the bytes with a pure ``parse`` function. Importing this package imports
every module in it, so a new file is all a new kind needs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from beacons.clock import SYSTEM, Clock
from beacons.models import Brand, Fetched, Mention, Source, SourceState

if TYPE_CHECKING:
    from beacons.parsepool import ParsePool

MAX_BACKOFF = 6 * 3600.0  # a service asking for more than this is capped (same cap as Retry-After)


class FetchFn(Protocol):
    def __call__(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        conditional: bool = True,
    ) -> Awaitable[Fetched]: ...


@dataclass(slots=True)
class PollContext:
    """What a collector gets for one poll: the source, its stored state and a fetch function."""

    source: Source
    state: SourceState
    fetch: FetchFn
    brands: tuple[Brand, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    # Set by ctx.fetch for the first conditional request; the store saves them with the poll.
    etag: str | None = None
    last_modified: str | None = None
    conditional_used: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail) of dropped entries
    # A service's own slow-down signal (a body ``backoff`` field, rate-limit headers on a 200):
    # the pipeline reports it as PollResult.retry_after and pause_host holds the host meanwhile.
    retry_after: float | None = None
    pause_host: Callable[[str, float], None] | None = None
    # Decisions by time (a quota that resets at midnight UTC) read this clock; tests pass a fake one.
    clock: Clock = SYSTEM
    # Parses large feed bodies in worker processes (beacons/parsepool.py); None: parse in place.
    parse_pool: ParsePool | None = None

    @property
    def default_query(self) -> str:
        return default_query(self.brands)

    def skip(self, reason: str, detail: str = "") -> None:
        """Record an entry the parser could not use (logged and counted by the pipeline)."""
        self.skipped.append((reason, detail))

    def backoff(self, seconds: float, url: str, *, cap: float = MAX_BACKOFF) -> None:
        """Obey a service's request to wait ``seconds`` (at most ``cap``) before calling ``url``'s host again."""
        seconds = min(max(0.0, seconds), cap)
        self.retry_after = max(self.retry_after or 0.0, seconds)
        host = urlsplit(url).hostname
        if self.pause_host is not None and host:
            self.pause_host(host, seconds)


@dataclass(frozen=True, slots=True)
class Poll:
    mentions: list[Mention]
    cursor: str | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    quota: str | None = None  # the collector's quota record to store (None: keep the stored one)


PollFn = Callable[[PollContext, Any], Awaitable[Poll]]


@dataclass(frozen=True, slots=True)
class Collector:
    kind: str
    options: type
    poll: PollFn
    module: str


REGISTRY: dict[str, Collector] = {}


def register(kind: str, options: type) -> Callable[[PollFn], PollFn]:
    """Register ``poll`` for ``kind``; a kind can be registered once only."""

    def decorate(fn: PollFn) -> PollFn:
        if kind in REGISTRY:
            raise ValueError(
                f"collector kind {kind!r} is already registered by {REGISTRY[kind].module}; "
                f"pick another kind name for {fn.__module__}"
            )
        REGISTRY[kind] = Collector(kind, options, fn, fn.__module__)
        return fn

    return decorate


def _quote(term: str) -> str:
    return f'"{term}"' if any(c.isspace() for c in term) else term


def default_query(brands: tuple[Brand, ...], *, negatives: bool = True) -> str:
    """The brands' names, aliases and products, quoted and OR-ed, exclusions negated."""
    terms: list[str] = []
    excludes: list[str] = []
    for brand in brands:
        terms.extend(brand.terms())
        excludes.extend(brand.exclude)
    query = " OR ".join(_quote(t) for t in dict.fromkeys(terms))
    if negatives and excludes:
        query += " " + " ".join(f"-{_quote(e)}" for e in excludes)
    return query


def load_all() -> dict[str, Collector]:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


load_all()
