"""Bing News articles that mention a brand, from its RSS search.

Endpoint: ``www.bing.com/news/search?q=...&format=rss`` (RSS 2.0 with a
``News:`` namespace: ``News:Source`` names the publisher, ``News:Image`` a
thumbnail). Item links are often click-tracking redirects
(``bing.com/news/apiclick.aspx?...&url=<publisher URL>``); with
``resolve_links`` (default) the publisher URL is taken from the ``url``
parameter, so the same article from two searches dedupes. The publisher
becomes the mention's author. The feed has no paging: each poll reads it
whole (conditional GET) and keeps the items newer than the cursor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

from beacons.dedupe import canonical_url
from beacons.models import Mention
from beacons.text import one_line
from collectors import Poll, PollContext, register
from collectors._feed import parse_feed
from collectors._json import Skip, check_common, read_whole_feed, require_query


@dataclass(frozen=True, slots=True)
class Options:
    query: str | None = None  # Bing search syntax; default: brand terms OR-ed, exclusions negated
    params: dict[str, str] = field(default_factory=dict)  # extra query parameters, e.g. {setlang: en-us, cc: us}
    resolve_links: bool = True  # publisher URL instead of Bing's apiclick.aspx redirect
    base_url: str = "https://www.bing.com"

    def validate(self) -> list[tuple[str, str]]:
        problems = check_common(self)
        for key in ("q", "format"):
            if key in self.params:
                problems.append(
                    (f"params.{key}", "is set by the collector; use query instead" if key == "q" else "is always rss")
                )
        return problems


@register("bing_news", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    params = {
        **{str(k): str(v) for k, v in options.params.items()},
        "q": require_query(ctx, options.query or ctx.default_query),
        "format": "rss",
    }
    url = f"{options.base_url.rstrip('/')}/news/search"
    return await read_whole_feed(ctx, url, partial(parse, resolve_links=options.resolve_links), params=params)


def parse(
    body: bytes,
    *,
    source_id: str,
    headers: Mapping[str, str] | None = None,
    url: str | None = None,
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
    resolve_links: bool = True,
) -> list[Mention]:
    """Pure: the news feed in, mentions out (publisher as author, the publisher's link when resolvable)."""

    def adjust(entry: Mapping[str, Any], mention: Mention) -> Mention:
        publisher = one_line(_publisher(entry), limit=200)
        link = publisher_link(entry.get("link") or "") if resolve_links else None
        return replace(mention, author=publisher or mention.author, url=canonical_url(link) if link else mention.url)

    return parse_feed(
        body, source_id=source_id, headers=headers, url=url, skip=skip, fetched_at=fetched_at, finish=adjust
    )


def _publisher(entry: Mapping[str, Any]) -> str:
    # feedparser keeps unknown namespaced elements under "<prefix>_<name>", lower-cased
    for key in ("news_source", "source"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, Mapping) and isinstance(value.get("title"), str):
            return str(value["title"])
    return ""


def publisher_link(link: str) -> str | None:
    """The ``url`` parameter of a Bing ``apiclick.aspx`` redirect, or None for a direct link."""
    parts = urlsplit(link)
    if not (parts.hostname or "").endswith("bing.com") or not parts.path.lower().endswith("apiclick.aspx"):
        return None
    target = (parse_qs(parts.query).get("url") or [""])[0]
    return target if urlsplit(target).scheme in ("http", "https") else None
