"""GitHub issues and pull requests that mention a brand, newest first.

API: api.github.com ``/search/issues?q=...&sort=created&order=desc``. The
stored cursor becomes a ``created:>`` qualifier, so only newer items come
back; pages follow the ``Link: rel="next"`` header. A token (optional, from
the env var named by ``token_env``) raises the search limit from 10 to 30
requests a minute. Rate limits are obeyed: a 403/429 with ``Retry-After``
(secondary limit) or ``X-RateLimit-Remaining: 0`` is turned into a wait by
``beacons.fetch``; a 200 whose ``X-RateLimit-Remaining`` is 0 stops paging
and waits until ``X-RateLimit-Reset``. GitHub allows at most five AND/OR/NOT
operators, so the default query ORs the first six brand terms. Author reach is
the item's reaction count, else its comment count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beacons.fetch import rate_limit_wait
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
    format_cursor,
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

SERVICE = "GitHub search"
MAX_TERMS = 6  # five OR operators, GitHub's limit
_NEXT = re.compile(r'<[^>]*[?&]page=(\d+)[^>]*>\s*;\s*rel="next"')


@dataclass(frozen=True, slots=True)
class Options:
    query: str | None = None  # GitHub search syntax; default: the first six brand terms OR-ed
    base_url: str = "https://api.github.com"  # GitHub Enterprise: https://HOST/api/v3
    token_env: str | None = None  # NAME of the env var holding a token, e.g. GITHUB_TOKEN
    pull_requests: bool = True  # false adds is:issue
    per_page: int = 50
    max_pages: int = 5

    def validate(self) -> list[tuple[str, str]]:
        return check_common(self) + check_range(self, "per_page", 1, 100)


def build_query(options: Options, ctx: PollContext, since: datetime | None) -> str:
    query = require_query(ctx, options.query or " OR ".join(quote(t) for t in brand_terms(ctx.brands)[:MAX_TERMS]))
    if not options.pull_requests:
        query += " is:issue"
    if since is not None:
        query += f" created:>{format_cursor(since.replace(microsecond=0))}"
    return query


@register("github_issues", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    url = f"{options.base_url.rstrip('/')}/search/issues"
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        **auth_headers(ctx, options.token_env),
    }
    params: dict[str, str | int] = {
        "q": build_query(options, ctx, since),
        "sort": "created",
        "order": "desc",
        "per_page": options.per_page,
    }

    async def fetch_page(token: str | None) -> Page:
        number = int(token or 1)
        fetched = await ctx.fetch(url, params={**params, "page": number}, headers=headers, conditional=number == 1)
        page = parse_page(fetched.body, source_id=ctx.source.id, skip=ctx.skip)
        wait = rate_limit_wait(fetched.headers)
        if wait is not None:  # this page counted; the next request would be refused
            ctx.backoff(wait, url)
        found = _NEXT.search(fetched.headers.get("link", ""))
        page.next = found.group(1) if found else None
        return page

    return finish(ctx, await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages), since)


def parse_page(body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None) -> Page:
    """Pure: one search response in, a page of mentions out (the next page comes from the Link header)."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    items = items_of(data, "items", source_id=source_id, service=SERVICE)
    now = fetched_at or datetime.now(UTC)
    return Page(parse_items(items, lambda item: _mention(item, source_id, now), skip=skip, what="item"))


def parse(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: JSON bytes in, mentions out. An item with missing or odd fields is skipped with a logged reason."""
    return parse_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at).mentions


def _mention(item: Any, source_id: str, now: datetime) -> Mention:
    item_id = req(item, "id", int)
    user = req(item, "user", dict)
    reactions = opt_int(opt(item, "reactions", dict), "total_count")
    return make_mention(
        item,
        source_id=source_id,
        fetched_at=now,
        url=req(item, "html_url"),
        guid=f"github:{item_id}",
        title=req(item, "title"),
        text=opt(item, "body") or "",  # Markdown; kept as text
        author=req(user, "login"),
        published_at=timestamp(req(item, "created_at"), "created_at"),
        author_reach=reactions if reactions else opt_int(item, "comments"),
    )
