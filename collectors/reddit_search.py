"""Reddit posts that mention a brand, newest first.

Default: the public search feed ``/search.rss?q=...&sort=new`` (Atom; no
score). ``api: json`` reads ``/search.json`` (a Listing of ``t3`` children with
``score``, used as author reach); with ``token_env`` (an OAuth bearer token
from the environment) it calls ``https://oauth.reddit.com`` as Reddit asks API
clients to. Both page with ``after`` = the last post's fullname, back to the
stored cursor. ``X-Ratelimit-Remaining``/``X-Ratelimit-Reset`` are honoured:
when the quota is spent, paging stops and the host waits until the reset.
``subreddit`` restricts the search to one community (``restrict_sr=on``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote as urlquote

from beacons.fetch import rate_limit_wait
from beacons.models import Mention
from collectors import Poll, PollContext, register
from collectors._feed import parse_feed
from collectors._json import (
    BadItem,
    Page,
    Skip,
    auth_headers,
    brand_excludes,
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

SERVICE = "Reddit search"
DEFAULT_BASE = "https://www.reddit.com"
OAUTH_BASE = "https://oauth.reddit.com"
WEB = "https://www.reddit.com"


@dataclass(frozen=True, slots=True)
class Options:
    query: str | None = None  # Reddit search syntax; default: (brand terms OR-ed) NOT exclusions
    subreddit: str | None = None  # search only r/<subreddit>
    api: Literal["rss", "json"] = "rss"
    token_env: str | None = None  # NAME of the env var holding an OAuth bearer token (json only)
    base_url: str = DEFAULT_BASE  # with a token and the default base_url, oauth.reddit.com is used
    limit: int = 25
    max_pages: int = 5

    def validate(self) -> list[tuple[str, str]]:
        problems = check_common(self) + check_range(self, "limit", 1, 100)
        if self.token_env and self.api != "json":
            problems.append(("token_env", "needs api: json (the RSS feed takes no token)"))
        if self.subreddit is not None and not self.subreddit.replace("_", "").isalnum():
            problems.append(("subreddit", f"expected a subreddit name without r/, got {self.subreddit!r}"))
        return problems


def build_query(brands: Any) -> str:
    terms = " OR ".join(quote(t) for t in brand_terms(brands))
    excludes = " ".join(f"NOT {quote(e)}" for e in brand_excludes(brands))
    return f"({terms}) {excludes}".strip() if excludes else terms


@register("reddit_search", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    headers = auth_headers(ctx, options.token_env, scheme="bearer")
    root = OAUTH_BASE if headers and options.base_url == DEFAULT_BASE else options.base_url.rstrip("/")
    where = f"/r/{urlquote(options.subreddit)}" if options.subreddit else ""
    url = f"{root}{where}/search.{options.api}"
    params: dict[str, str | int] = {
        "q": require_query(ctx, options.query or build_query(ctx.brands)),
        "sort": "new",
        "limit": options.limit,
    }
    if options.subreddit:
        params["restrict_sr"] = "on"
    if options.api == "json":
        params["raw_json"] = 1  # text without HTML entity escaping

    async def fetch_page(token: str | None) -> Page:
        query = {**params, "after": token} if token else params
        fetched = await ctx.fetch(url, params=query, headers=headers, conditional=token is None)
        if options.api == "json":
            page = parse_page(fetched.body, source_id=ctx.source.id, skip=ctx.skip)
        else:
            mentions = parse_feed_page(fetched.body, source_id=ctx.source.id, headers=fetched.headers, skip=ctx.skip)
            last = mentions[-1].guid if mentions else None
            page = Page(mentions, last if len(mentions) >= options.limit else None)
        wait = rate_limit_wait(fetched.headers)
        if wait is not None:  # quota spent: stop paging and let the host rest until the reset
            ctx.backoff(wait, url)
        return page

    return finish(ctx, await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages), since)


# -- the Atom feed -----------------------------------------------------------


_SUBMITTED = re.compile(r"\s*submitted by\s+/?u/\S+\s*(\[link\])?\s*(\[comments\])?\s*$")


def _finish_entry(entry: Mapping[str, Any], mention: Mention) -> Mention:
    author = mention.author or ""
    if author.startswith(("/u/", "u/")):
        author = author.split("u/", 1)[1]
    if not mention.guid:
        raise BadItem("entry has no id (t3_ fullname)")
    if not (mention.title or mention.text or mention.url):
        raise BadItem("entry has no title, text or link")
    # the feed appends "submitted by /u/name [link] [comments]" to every post
    return replace(mention, author=author or None, text=_SUBMITTED.sub("", mention.text))


def parse_feed_page(
    body: bytes,
    *,
    source_id: str,
    headers: Mapping[str, str] | None = None,
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
) -> list[Mention]:
    """Pure: the search feed (Atom) in, mentions out; authors lose their ``/u/`` prefix."""
    return parse_feed(
        body, source_id=source_id, headers=headers, skip=skip, fetched_at=fetched_at, finish=_finish_entry
    )


# -- the JSON Listing -------------------------------------------------------


def parse_page(body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None) -> Page:
    """Pure: one ``search.json`` Listing in, a page of mentions and the ``after`` token out."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    listing = data.get("data") if isinstance(data, dict) else None
    children = items_of(listing, "children", source_id=source_id, service=SERVICE)
    now = fetched_at or datetime.now(UTC)
    mentions = parse_items(children, lambda child: _mention(child, source_id, now), skip=skip, what="child")
    return Page(mentions, opt(listing, "after") or None)


def parse(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: a search feed or Listing in, mentions out. A post with missing or odd fields is skipped with a logged reason."""
    if body[:512].lstrip().startswith((b"{", b"[")):
        return parse_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at).mentions
    return parse_feed_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at)


def _mention(child: Any, source_id: str, now: datetime) -> Mention:
    if opt(child, "kind") != "t3":
        raise BadItem(f"child kind is {opt(child, 'kind')!r}, expected 't3' (a post)")
    post = req(child, "data", dict)
    name = req(post, "name")
    return make_mention(
        child,
        source_id=source_id,
        fetched_at=now,
        url=WEB + req(post, "permalink"),
        guid=name,  # the same t3_ fullname the Atom feed uses as its entry id
        title=req(post, "title"),
        text=opt(post, "selftext") or opt(post, "url") or "",
        author=req(post, "author"),
        published_at=timestamp(req(post, "created_utc", (int, float)), "created_utc"),
        author_reach=opt_int(post, "score"),
    )
