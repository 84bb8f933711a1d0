"""Google Alerts and Talkwalker Alerts delivered as a feed: the web pages that matched an alert.

Google Alerts with "Deliver to: RSS feed" gives an Atom feed at
``https://www.google.com/alerts/feeds/{user}/{alert}``. Each entry's title and
content are HTML with the matched words in ``<b>`` (removed here, like all
markup), and its link is Google's redirect
``https://www.google.com/url?rct=j&sa=t&url=REAL&ct=ga&...``: the real address
is taken from ``url`` (``q`` in older links), so the same article read from
another source is a duplicate, not a second mention. Talkwalker Alerts' RSS
2.0 delivery links to the article directly and is read the same way.

The feed has no paging: each poll reads it whole (conditional GET) and keeps
the entries newer than the cursor. The alert's own query decides what comes in,
so the source has no ``query``; the brand matcher still drops what names no
brand, unless the source sets ``implies_brand``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from beacons.dedupe import canonical_url, link_problem
from beacons.models import Mention
from collectors import Poll, PollContext, register
from collectors._feed import parse_feed
from collectors._json import Skip, read_whole_feed


@dataclass(frozen=True, slots=True)
class Options:
    url: (
        str  # the alert's feed address (Google: www.google.com/alerts/feeds/..., Talkwalker: alerts.talkwalker.com/...)
    )

    def validate(self) -> list[tuple[str, str]]:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return [("url", f"expected the alert's http(s) feed URL, got {self.url!r}")]
        return []


@register("google_alerts", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    return await read_whole_feed(ctx, options.url, parse)


def parse(
    body: bytes,
    *,
    source_id: str,
    headers: Mapping[str, str] | None = None,
    url: str | None = None,
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
) -> list[Mention]:
    """Pure: the alert feed (Atom or RSS) in, mentions with the real article links and no markup out."""

    def unwrap(entry: Mapping[str, Any], mention: Mention) -> Mention:
        real = real_link(entry.get("link") or "")
        if real:
            mention = replace(mention, url=canonical_url(real))
        if not (mention.title or mention.text or mention.url):  # feedparser made the tag: id its link
            raise ValueError("entry has no title, text or http(s) link")
        return mention

    return parse_feed(
        body, source_id=source_id, headers=headers, url=url, skip=skip, fetched_at=fetched_at, finish=unwrap
    )


def real_link(link: str) -> str | None:
    """The article behind a Google redirect (``google.*/url?...&url=REAL``), or None when ``link`` is not one."""
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.path != "/url" or not (host.startswith(("google.", "www.google.")) or ".google." in host):
        return None
    params = parse_qs(parts.query)
    for key in ("url", "q"):
        for value in params.get(key, []):
            if value.startswith(("http://", "https://")) and link_problem(value) is None:
                return value
    return None
