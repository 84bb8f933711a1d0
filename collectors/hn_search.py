"""Hacker News stories and comments that mention a brand, newest first.

API: hn.algolia.com ``/api/v1/search_by_date?query=...&tags=(story,comment)``,
with ``numericFilters=created_at_i>{cursor}`` so only results newer than the
stored cursor come back, and ``page``/``nbPages`` for paging. Algolia has no
OR operator, so without a ``query`` the collector runs one search per brand
term (name, aliases, products) and merges them. Author reach is the story's
points (comments have none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beacons.models import Mention
from collectors import Poll, PollContext, register
from collectors._json import (
    BadItem,
    Page,
    Skip,
    brand_terms,
    check_common,
    check_range,
    cursor_time,
    finish,
    items_of,
    load_json,
    make_mention,
    opt,
    opt_int,
    page_back,
    parse_items,
    quote,
    req,
    require_query,
    timestamp,
)

HN_ITEM = "https://news.ycombinator.com/item?id="
SERVICE = "HN Algolia"


@dataclass(frozen=True, slots=True)
class Options:
    query: str | None = None  # default: one search per brand name, alias and product
    base_url: str = "https://hn.algolia.com"  # tests and proxies override it
    tags: str = "(story,comment)"  # Algolia tags filter: story, comment, ask_hn, show_hn, ...
    hits_per_page: int = 50
    max_pages: int = 5  # per search, when catching up to the cursor

    def validate(self) -> list[tuple[str, str]]:
        return check_common(self) + check_range(self, "hits_per_page", 1, 1000)


@register("hn_search", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    queries = [options.query] if options.query else [quote(t) for t in brand_terms(ctx.brands)]
    url = f"{options.base_url.rstrip('/')}/api/v1/search_by_date"
    mentions: list[Mention] = []
    for query in queries or [require_query(ctx, "")]:
        params: dict[str, str | int] = {"query": query, "tags": options.tags, "hitsPerPage": options.hits_per_page}
        if since is not None:
            params["numericFilters"] = f"created_at_i>{int(since.timestamp())}"
        # conditional GET only when there is one search: a 304 for one term must not skip the others
        fetch_page = _pager(ctx, url, params, conditional=len(queries) == 1)
        mentions += await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages)
        if ctx.retry_after is not None:
            break
    return finish(ctx, mentions, since)


def _pager(
    ctx: PollContext, url: str, params: dict[str, str | int], *, conditional: bool
) -> Callable[[str | None], Any]:
    async def fetch_page(token: str | None) -> Page:
        number = int(token or 0)
        fetched = await ctx.fetch(url, params={**params, "page": number}, conditional=conditional and number == 0)
        return parse_page(fetched.body, source_id=ctx.source.id, skip=ctx.skip)

    return fetch_page


def parse_page(body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None) -> Page:
    """Pure: one search_by_date response in, a page of mentions and the next page number out."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    hits = items_of(data, "hits", source_id=source_id, service=SERVICE)
    now = fetched_at or datetime.now(UTC)
    mentions = parse_items(hits, lambda hit: _mention(hit, source_id, now), skip=skip, what="hit")
    page, pages = opt_int(data, "page"), opt_int(data, "nbPages")
    more = page is not None and pages is not None and page + 1 < pages
    return Page(mentions, str(page + 1) if more and page is not None else None)


def parse(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: JSON bytes in, mentions out. A hit with missing or odd fields is skipped with a logged reason."""
    return parse_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at).mentions


def _mention(hit: Any, source_id: str, now: datetime) -> Mention:
    object_id = req(hit, "objectID", (str, int))
    created = (
        hit.get("created_at_i")
        if isinstance(hit, dict) and hit.get("created_at_i") is not None
        else req(hit, "created_at")
    )
    tags = opt(hit, "_tags", list) or []
    comment_text = opt(hit, "comment_text")
    if "comment" in tags or comment_text is not None:
        if comment_text is None:
            raise BadItem("comment without 'comment_text'")
        story = opt(hit, "story_title")
        title, text = (f"Re: {story}" if story else ""), comment_text
    else:
        title = req(hit, "title")
        text = opt(hit, "story_text") or opt(hit, "url") or ""
    return make_mention(
        hit,
        source_id=source_id,
        fetched_at=now,
        url=f"{HN_ITEM}{object_id}",  # the discussion, where the person posted
        guid=f"hn:{object_id}",
        title=title,
        text=text,
        author=req(hit, "author"),
        published_at=timestamp(created, "created_at_i"),
        author_reach=opt_int(hit, "points"),
    )
