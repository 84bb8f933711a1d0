"""Lemmy posts and comments that mention a brand, newest first, from one instance's search.

API: ``/api/v3/search?q=...&type_=All&sort=New&limit=&page=`` answers a
``SearchResponse``: ``posts`` (``PostView``: ``post``, ``creator``,
``community``, ``counts``) and ``comments`` (``CommentView``: ``comment``,
``post``, ``creator``, ``community``, ``counts``), each sorted newest first and
each at most ``limit`` long. An instance searches everything it has federated,
so one instance sees posts from many. A page has a next one when either list is
full; paging stops at the page that reaches the stored cursor. ``q`` is
matched as one phrase, so without a ``query`` there is one search per brand
term (name, aliases, products), merged.

The mention links to the object's ``ap_id`` (its address on its home instance,
the same whichever instance it was read from, so dedupe works across
instances); comments are titled "Re: post title"; the author is
``name@instance``; reach is the item's vote score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from beacons.errors import ParseError
from beacons.models import Mention
from collectors import Poll, PollContext, register
from collectors._json import (
    Page,
    Skip,
    auth_headers,
    brand_terms,
    check_common,
    check_range,
    cursor_time,
    finish,
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

SERVICE = "Lemmy search"


@dataclass(frozen=True, slots=True)
class Options:
    base_url: str = "https://lemmy.world"  # the instance whose search is read
    query: str | None = None  # Lemmy search text; default: one search per brand name, alias and product
    token_env: str | None = None  # NAME of the env var holding a JWT, for instances that require sign-in
    limit: int = 20  # posts and comments per page (each), 1 to 50
    max_pages: int = 5

    def validate(self) -> list[tuple[str, str]]:
        return check_common(self) + check_range(self, "limit", 1, 50)


@register("lemmy_search", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    headers = auth_headers(ctx, options.token_env)
    url = f"{options.base_url.rstrip('/')}/api/v3/search"
    queries = [options.query] if options.query else brand_terms(ctx.brands)
    single = len(queries) == 1  # conditional GET only then: a 304 for one term must not skip the others
    mentions: list[Mention] = []
    for query in queries or [require_query(ctx, "")]:
        params: dict[str, str | int] = {"q": query, "type_": "All", "sort": "New", "limit": options.limit}

        async def fetch_page(token: str | None, params: dict[str, str | int] = params) -> Page:
            number = int(token or 1)
            fetched = await ctx.fetch(
                url, params={**params, "page": number}, headers=headers, conditional=single and number == 1
            )
            page = parse_page(fetched.body, source_id=ctx.source.id, skip=ctx.skip, fetched_at=ctx.clock.now())
            full = max(page.meta["sizes"]) >= options.limit  # a full list may have more behind it
            page.next = str(number + 1) if full else None
            return page

        mentions += await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages)
        if ctx.retry_after is not None:
            break
    return finish(ctx, mentions, since)


def parse_page(body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None) -> Page:
    """Pure: one SearchResponse in, its posts and comments (newest first) out; ``meta['full']``: a list filled a page."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("posts"), list)
        or not isinstance(data.get("comments"), list)
    ):
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            raise ParseError(f"{SERVICE} answered error {data['error'][:200]!r}", source_id=source_id)
        raise ParseError(
            f"{SERVICE} response has no 'posts' and 'comments' lists; the API may have changed", source_id=source_id
        )
    now = fetched_at or datetime.now(UTC)
    posts = parse_items(data["posts"], lambda view: _post(view, source_id, now), skip=skip, what="post")
    comments = parse_items(data["comments"], lambda view: _comment(view, source_id, now), skip=skip, what="comment")
    newest_first = sorted([*posts, *comments], key=lambda m: m.published_at or now, reverse=True)
    # the caller, who knows the limit, sets next
    return Page(newest_first, None, {"sizes": (len(data["posts"]), len(data["comments"]))})


def parse(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: JSON bytes in, mentions out. A post or comment with missing or odd fields is skipped with a logged reason."""
    return parse_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at).mentions


def _author(view: Any) -> str:
    creator = req(view, "creator", dict)
    name = req(creator, "name")
    host = urlsplit(opt(creator, "actor_id") or "").hostname
    return f"{name}@{host}" if host else name


def _post(view: Any, source_id: str, now: datetime) -> Mention:
    post = req(view, "post", dict)
    req(post, "id", int)
    return make_mention(
        view,
        source_id=source_id,
        fetched_at=now,
        url=req(post, "ap_id"),
        guid=f"lemmy:{req(post, 'ap_id')}",
        title=req(post, "name"),
        text=opt(post, "body") or opt(post, "url") or "",  # body is Markdown; as plain text it reads fine
        author=_author(view),
        published_at=timestamp(req(post, "published"), "published"),
        author_reach=opt_int(opt(view, "counts", dict), "score"),
    )


def _comment(view: Any, source_id: str, now: datetime) -> Mention:
    comment = req(view, "comment", dict)
    req(comment, "id", int)
    title = opt(opt(view, "post", dict), "name")
    return make_mention(
        view,
        source_id=source_id,
        fetched_at=now,
        url=req(comment, "ap_id"),
        guid=f"lemmy:{req(comment, 'ap_id')}",
        title=f"Re: {title}" if title else "",
        text=req(comment, "content"),
        author=_author(view),
        published_at=timestamp(req(comment, "published"), "published"),
        author_reach=opt_int(opt(view, "counts", dict), "score"),
    )
