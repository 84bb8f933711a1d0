"""Mastodon posts with a hashtag, from one instance's public tag timeline.

Default: the instance's tag feed ``/tags/{tag}.rss`` (RSS 2.0: link, guid,
pubDate and the post's HTML; no title, no author field, so the author comes
from the post's address ``/@user/id``). ``api: json`` reads the JSON
timeline ``/api/v1/timelines/tag/{tag}`` instead, whose Status objects carry
the account's ``followers_count`` (author reach) and the post's language;
it pages with ``max_id`` back to the stored cursor. ``base_url`` is the
instance. Some instances only serve timelines to signed-in apps: set
``token_env`` (json only) to the env var holding an access token.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote as urlquote
from urllib.parse import urlsplit

from beacons.errors import ParseError
from beacons.models import Mention
from collectors import Poll, PollContext, register
from collectors._feed import parse_feed
from collectors._json import (
    Page,
    Skip,
    auth_headers,
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
    read_whole_feed,
    req,
    timestamp,
)

SERVICE = "Mastodon tag timeline"
_PROFILE = re.compile(r"^/@([^/@]+)(?:@([^/]+))?/")
_NEXT = re.compile(r'<[^>]*[?&]max_id=([^&>]+)[^>]*>\s*;\s*rel="next"')


@dataclass(frozen=True, slots=True)
class Options:
    tag: str  # the hashtag, without #
    base_url: str = "https://mastodon.social"  # the instance
    api: Literal["rss", "json"] = "rss"
    token_env: str | None = None  # NAME of the env var holding an access token (json only)
    local: bool = False  # json only: posts from this instance only
    limit: int = 40
    max_pages: int = 5

    def validate(self) -> list[tuple[str, str]]:
        problems = check_common(self) + check_range(self, "limit", 1, 40)
        if not re.fullmatch(r"#?\w+", self.tag):
            problems.append(("tag", f"expected one hashtag (letters, digits, _), got {self.tag!r}"))
        if self.token_env and self.api != "json":
            problems.append(("token_env", "needs api: json (the RSS feed takes no token)"))
        return problems


@register("mastodon_tag", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    tag = urlquote(options.tag.lstrip("#"))
    root = options.base_url.rstrip("/")
    if options.api == "rss":
        return await read_whole_feed(ctx, f"{root}/tags/{tag}.rss", parse_feed_page)
    since = cursor_time(ctx.state.cursor)
    url = f"{root}/api/v1/timelines/tag/{tag}"
    headers = auth_headers(ctx, options.token_env)
    params: dict[str, str | int] = {"limit": options.limit}
    if options.local:
        params["local"] = "true"

    async def fetch_page(token: str | None) -> Page:
        query = {**params, "max_id": token} if token else params
        fetched = await ctx.fetch(url, params=query, headers=headers, conditional=token is None)
        page = parse_page(fetched.body, source_id=ctx.source.id, skip=ctx.skip)
        found = _NEXT.search(fetched.headers.get("link", ""))
        if found:
            page.next = found.group(1)
        elif len(page.mentions) < options.limit:
            page.next = None
        return page

    return finish(ctx, await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages), since)


# -- the RSS feed -------------------------------------------------------------


def _finish_entry(entry: Mapping[str, Any], mention: Mention) -> Mention:
    link = entry.get("link") or ""
    parts = urlsplit(link)
    found = _PROFILE.match(parts.path)
    author = f"@{found.group(1)}@{found.group(2) or parts.hostname}" if found else None
    return replace(mention, author=author)


def parse_feed_page(
    body: bytes,
    *,
    source_id: str,
    headers: Mapping[str, str] | None = None,
    url: str | None = None,
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
) -> list[Mention]:
    """Pure: the tag feed in, mentions out, each author taken from the post's ``/@user/id`` address."""
    return parse_feed(
        body, source_id=source_id, headers=headers, url=url, skip=skip, fetched_at=fetched_at, finish=_finish_entry
    )


# -- the JSON timeline -----------------------------------------------------


def parse_page(body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None) -> Page:
    """Pure: a JSON array of Status objects in, a page of mentions out (next: the oldest id, as max_id)."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    if not isinstance(data, list):
        raise ParseError(
            f"{SERVICE} answered a JSON {type(data).__name__}, expected an array of statuses", source_id=source_id
        )
    now = fetched_at or datetime.now(UTC)
    mentions = parse_items(data, lambda status: _mention(status, source_id, now), skip=skip, what="status")
    ids = [s.get("id") for s in data if isinstance(s, dict) and isinstance(s.get("id"), str)]
    return Page(mentions, ids[-1] if ids else None)


def parse(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: the tag feed or the JSON timeline in, mentions out. A bad post is skipped with a logged reason."""
    if body[:512].lstrip().startswith((b"[", b"{")):
        return parse_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at).mentions
    return parse_feed_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at)


def _text(status: Any) -> str:
    content: str = req(status, "content")
    warning = opt(status, "spoiler_text")  # the content warning, shown before the post
    return f"<p>{html.escape(warning)}</p>{content}" if warning else content


def _mention(status: Any, source_id: str, now: datetime) -> Mention:
    req(status, "id")  # paging needs it; a status without one is not a status
    account = req(status, "account", dict)
    acct = req(account, "acct")
    url = opt(status, "url") or req(status, "uri")
    host = urlsplit(url).hostname
    author = f"@{acct}" if "@" in acct or not host else f"@{acct}@{host}"
    return make_mention(
        status,
        source_id=source_id,
        fetched_at=now,
        url=url,
        guid=url,  # the RSS feed's guid is the same address, so both modes dedupe alike
        title="",
        text=_text(status),
        author=author,
        published_at=timestamp(req(status, "created_at"), "created_at"),
        author_reach=opt_int(account, "followers_count"),
        lang=opt(status, "language"),
    )
