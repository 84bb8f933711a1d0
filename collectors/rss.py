"""Any RSS 0.9x/1.0/2.0 or Atom feed: a blog, a changelog, a forum, a saved search.

Conditional GET means an unchanged feed costs one 304 and no parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from beacons.redact import public_url
from collectors import Poll, PollContext, register
from collectors._feed import parse_feed


@dataclass(frozen=True, slots=True)
class Options:
    url: str  # the feed's address

    def validate(self) -> list[tuple[str, str]]:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return [("url", f"expected an http(s) URL, got {self.url!r}")]
        return []


@register("rss", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    fetched = await ctx.fetch(options.url)
    url = public_url(fetched.url)
    if ctx.parse_pool is not None and ctx.parse_pool.wants(fetched.body):  # a large body: parsed on another core
        mentions = await ctx.parse_pool.parse(
            fetched.body, source_id=ctx.source.id, headers=fetched.headers, url=url, skip=ctx.skip
        )
    else:
        mentions = parse_feed(fetched.body, source_id=ctx.source.id, headers=fetched.headers, url=url, skip=ctx.skip)
    return Poll(mentions)
