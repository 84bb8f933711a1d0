"""Stack Exchange questions (Stack Overflow, Super User, ...) that mention a brand.

API: api.stackexchange.com ``/2.3/search/advanced`` with ``site``,
``sort=creation``, ``order=desc`` and ``fromdate`` = the stored cursor, paged
with ``page``/``has_more``. Responses are gzip-compressed JSON in the common
wrapper (``items``, ``has_more``, ``quota_remaining``, optional ``backoff``).

The API asks clients to obey ``backoff`` (seconds before calling the same
method again): the collector stops paging, finishes the poll with what it has
and reports the wait (``ctx.backoff``), so the host is paused and the poll's
``retry_after`` says why. A ``quota_remaining`` of 0 waits until the daily
quota resets: the next midnight UTC (read from ``ctx.clock``) plus a minute,
however far away that is (up to a day; the 6 h cap on other waits does not
apply). Errors come as HTTP 400 with ``error_name``; a
``throttle_violation`` ("more requests available in N seconds") waits N.
``q`` has no OR, so without a ``query`` there is one search per brand term.
Author reach is the asker's reputation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beacons.clock import next_utc_midnight
from beacons.errors import HTTPStatusError, SourceError
from beacons.models import Mention
from collectors import Poll, PollContext, register
from collectors._json import (
    Page,
    Skip,
    brand_terms,
    check_common,
    check_range,
    cursor_time,
    error_body,
    finish,
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

SERVICE = "Stack Exchange"
# The daily quota resets at midnight UTC; a minute more covers a clock a little ahead of the API's.
QUOTA_RESET_MARGIN = 60.0
MAX_QUOTA_WAIT = 24 * 3600.0 + QUOTA_RESET_MARGIN


@dataclass(frozen=True, slots=True)
class Options:
    query: str | None = None  # default: one search per brand name, alias and product
    site: str = "stackoverflow"  # api_site_parameter: stackoverflow, superuser, serverfault, ...
    tagged: str | None = None  # only questions with these tags, ";"-separated
    base_url: str = "https://api.stackexchange.com"
    filter: str = "withbody"  # the API's built-in filter that adds the question body
    pagesize: int = 50
    max_pages: int = 5

    def validate(self) -> list[tuple[str, str]]:
        problems = check_common(self) + check_range(self, "pagesize", 1, 100)
        if not re.fullmatch(r"[a-z0-9.\-]+", self.site):
            problems.append(("site", f"expected a site name like stackoverflow or superuser, got {self.site!r}"))
        return problems


@register("stackexchange_search", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    url = f"{options.base_url.rstrip('/')}/2.3/search/advanced"
    queries = [options.query] if options.query else brand_terms(ctx.brands)
    single = len(queries) == 1  # conditional GET only then: a 304 for one term must not skip the others
    mentions: list[Mention] = []
    for query in queries or [require_query(ctx, "")]:
        params: dict[str, str | int] = {
            "q": query,
            "site": options.site,
            "sort": "creation",
            "order": "desc",
            "pagesize": options.pagesize,
            "filter": options.filter,
        }
        if options.tagged:
            params["tagged"] = options.tagged
        if since is not None:
            params["fromdate"] = int(since.timestamp()) + 1  # fromdate is inclusive; the cursor was seen

        async def fetch_page(token: str | None, params: dict[str, str | int] = params) -> Page:
            number = int(token or 1)
            try:
                fetched = await ctx.fetch(url, params={**params, "page": number}, conditional=single and number == 1)
            except HTTPStatusError as exc:
                raise _explain(ctx, exc, url) from exc
            page = parse_page(fetched.body, source_id=ctx.source.id, skip=ctx.skip, fetched_at=ctx.clock.now())
            _obey(ctx, page, url)
            page.next = str(number + 1) if page.next else None
            return page

        mentions += await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages)
        if ctx.retry_after is not None:
            break  # the API asked for a pause: no more searches this poll
    return finish(ctx, mentions, since)


def _obey(ctx: PollContext, page: Page, url: str) -> None:
    backoff = page.meta.get("backoff")
    if backoff:
        ctx.backoff(float(backoff), url)
    if page.meta.get("quota_remaining") == 0:
        ctx.backoff(quota_wait(ctx.clock.now()), url, cap=MAX_QUOTA_WAIT)


def quota_wait(now: datetime) -> float:
    """Seconds from ``now`` until the daily quota has surely reset: the next midnight UTC plus a margin."""
    return (next_utc_midnight(now) - now).total_seconds() + QUOTA_RESET_MARGIN


def _explain(ctx: PollContext, exc: HTTPStatusError, url: str) -> SourceError:
    """Turn the API's error wrapper (HTTP 400 for every error) into a readable error that obeys throttles."""
    try:
        data = load_json(error_body(exc), source_id=ctx.source.id, service=SERVICE)
    except SourceError:
        return exc
    if not isinstance(data, dict) or not isinstance(data.get("error_name"), str):
        return exc
    name, message = data["error_name"], str(data.get("error_message") or "")[:300]
    retry_after = exc.retry_after
    wait = re.search(r"available in (\d+) seconds", message)
    if name == "throttle_violation":
        retry_after = max(retry_after or 0.0, float(wait.group(1)) if wait else 60.0)
        ctx.backoff(retry_after, url)
    return HTTPStatusError(
        f"{SERVICE} answered HTTP {exc.status} {name}: {message}",
        url=exc.url,
        status=exc.status,
        retry_after=retry_after,
        source_id=ctx.source.id,
    )


def parse_page(body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None) -> Page:
    """Pure: one response wrapper in, a page of mentions, the next page and the backoff/quota fields out."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    if isinstance(data, dict) and isinstance(data.get("error_name"), str):
        raise SourceError(
            f"{SERVICE} error {data['error_name']}: {str(data.get('error_message'))[:300]}", source_id=source_id
        )
    items = items_of(data, "items", source_id=source_id, service=SERVICE)
    now = fetched_at or datetime.now(UTC)
    mentions = parse_items(items, lambda item: _mention(item, source_id, now), skip=skip, what="item")
    meta = {"backoff": opt_int(data, "backoff"), "quota_remaining": opt_int(data, "quota_remaining")}
    # The default wrapper has no page number; the caller counts pages and asks for the next one.
    return Page(mentions, "more" if opt(data, "has_more", bool) else None, meta)


def parse(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: JSON bytes in, mentions out. An item with missing or odd fields is skipped with a logged reason."""
    return parse_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at).mentions


def _mention(item: Any, source_id: str, now: datetime) -> Mention:
    question_id = req(item, "question_id", int)
    owner = opt(item, "owner", dict) or {}
    return make_mention(
        item,
        source_id=source_id,
        fetched_at=now,
        url=req(item, "link"),
        guid=f"se:{question_id}",
        title=req(item, "title"),  # HTML-escaped by the API; one_line unescapes it
        text=opt(item, "body") or "",
        author=opt(owner, "display_name"),
        published_at=timestamp(req(item, "creation_date", int), "creation_date"),
        author_reach=opt_int(owner, "reputation"),
    )
