"""Bluesky posts that mention a brand, newest first.

API: ``app.bsky.feed.searchPosts`` on the public AppView
(``/xrpc/app.bsky.feed.searchPosts?q=...&sort=latest``), with ``since`` = the
stored cursor and ``cursor`` paging. The response is ``{"cursor",
"hitsTotal"?, "posts": [PostView]}``; a post's web address is
``https://bsky.app/profile/{handle}/post/{rkey}``. An access token is optional
(``token_env`` names the env var; it is sent as ``Authorization: Bearer``),
for AppViews or PDS proxies that require one. Author reach is the post's likes
plus reposts (search results carry no follower counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beacons.fetch import rate_limit_wait
from beacons.models import Mention
from collectors import Poll, PollContext, register
from collectors._json import (
    BadItem,
    Page,
    Skip,
    auth_headers,
    check_common,
    check_range,
    cursor_time,
    finish,
    format_cursor,
    items_of,
    load_json,
    make_mention,
    opt,
    opt_int,
    page_back,
    parse_items,
    req,
    require_query,
    timestamp,
)

SERVICE = "Bluesky searchPosts"
WEB = "https://bsky.app/profile/"


@dataclass(frozen=True, slots=True)
class Options:
    query: str | None = None  # Lucene-style; default: brand terms OR-ed, exclusions negated
    base_url: str = "https://public.api.bsky.app"
    token_env: str | None = None  # NAME of the env var holding an access token (optional)
    lang: str | None = None  # only posts in this language, e.g. en
    limit: int = 25
    max_pages: int = 5

    def validate(self) -> list[tuple[str, str]]:
        return check_common(self) + check_range(self, "limit", 1, 100)


@register("bluesky_search", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    url = f"{options.base_url.rstrip('/')}/xrpc/app.bsky.feed.searchPosts"
    headers = auth_headers(ctx, options.token_env)
    params: dict[str, str | int] = {
        "q": require_query(ctx, options.query or ctx.default_query),
        "sort": "latest",
        "limit": options.limit,
    }
    if options.lang:
        params["lang"] = options.lang
    if since is not None:
        params["since"] = format_cursor(since)

    async def fetch_page(token: str | None) -> Page:
        query = {**params, "cursor": token} if token else params
        fetched = await ctx.fetch(url, params=query, headers=headers, conditional=token is None)
        page = parse_page(fetched.body, source_id=ctx.source.id, skip=ctx.skip)
        wait = rate_limit_wait(fetched.headers)
        if wait is not None:
            ctx.backoff(wait, url)
        return page

    return finish(ctx, await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages), since)


def parse_page(body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None) -> Page:
    """Pure: one searchPosts response in, a page of mentions and the next ``cursor`` out."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    posts = items_of(data, "posts", source_id=source_id, service=SERVICE)
    now = fetched_at or datetime.now(UTC)
    mentions = parse_items(posts, lambda post: _mention(post, source_id, now), skip=skip, what="post")
    return Page(mentions, opt(data, "cursor") or None)


def parse(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: JSON bytes in, mentions out. A post with missing or odd fields is skipped with a logged reason."""
    return parse_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at).mentions


def _mention(post: Any, source_id: str, now: datetime) -> Mention:
    uri = req(post, "uri")
    if not uri.startswith("at://") or "/app.bsky.feed.post/" not in uri:
        raise BadItem(f"field 'uri' is not a post AT-URI: {uri[:80]!r}")
    rkey = uri.rsplit("/", 1)[1]
    author = req(post, "author", dict)
    handle = req(author, "handle")
    record = req(post, "record", dict)
    created = opt(record, "createdAt") or req(post, "indexedAt")
    langs = opt(record, "langs", list) or []
    likes, reposts = opt_int(post, "likeCount"), opt_int(post, "repostCount")
    reach = None if likes is None and reposts is None else (likes or 0) + (reposts or 0)
    return make_mention(
        post,
        source_id=source_id,
        fetched_at=now,
        url=f"{WEB}{handle}/post/{rkey}",
        guid=uri,
        title="",
        text=req(record, "text"),
        author=f"@{handle}",
        published_at=timestamp(created, "record.createdAt"),
        author_reach=reach,
        lang=langs[0] if langs and isinstance(langs[0], str) else None,
    )
