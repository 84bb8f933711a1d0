"""YouTube videos that name a brand, and comments on the brand's channel (YouTube Data API v3).

API: ``/youtube/v3/search?part=snippet&type=video&order=date&q=...&publishedAfter=...``
(newest first, paged by ``nextPageToken``) for recent videos; when ``channel_id``
is set, ``/youtube/v3/commentThreads?part=snippet&allThreadsRelatedToChannelId=...
&searchTerms=...&order=time`` for comments on that channel's videos. Each video
and each comment is its own mention; a comment links to
``https://www.youtube.com/watch?v=VIDEO&lc=COMMENT_ID``.

The API key travels in the ``X-Goog-Api-Key`` header, never in a URL, and is
registered as a secret so no log or error shows it. The API has a daily quota
of units per project (search.list costs 100, commentThreads.list 1) that
resets at midnight Pacific time. The units spent are counted on ``ctx.clock``
and stored with the source (``SourceState.quota``), so a restart does not
forget them; polls are spaced so the units left last until the reset, and when
they are gone the source waits for the reset. A ``quotaExceeded`` error from
the API waits for the reset too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from beacons.errors import HTTPStatusError, SourceError
from beacons.log import get_logger
from beacons.models import Mention
from beacons.redact import register
from beacons.text import html_to_text
from collectors import Poll, PollContext
from collectors import register as register_kind
from collectors._json import (
    BadItem,
    Page,
    Skip,
    brand_excludes,
    brand_terms,
    check_common,
    check_range,
    cursor_time,
    error_body,
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

log = get_logger("collectors")

SERVICE = "YouTube Data API"
WATCH = "https://www.youtube.com/watch?v="
SEARCH_COST, COMMENTS_COST = 100, 1  # quota units per call (developers.google.com/youtube/v3/determine_quota_cost)
PACIFIC = ZoneInfo("America/Los_Angeles")  # the daily quota resets at midnight Pacific time
RESET_MARGIN = 60.0  # a minute past the reset covers a clock a little ahead of Google's
QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded", "rateLimitExceeded", "userRateLimitExceeded"}
_CHANNEL = re.compile(r"UC[A-Za-z0-9_-]{22}")


@dataclass(frozen=True, slots=True)
class Options:
    query: str | None = None  # default: the brands' names, aliases and products, |-ed (YouTube's OR)
    channel_id: str | None = None  # the brand's channel (UC...): its videos' comments are read too
    token_env: str | None = None  # NAME of the env var holding the API key (required for googleapis.com)
    base_url: str = "https://www.googleapis.com"  # the root before /youtube/v3
    daily_quota: int = 10000  # units per day for this source's key (Google's default is 10,000)
    max_results: int = 50  # per page: search up to 50, commentThreads up to 100
    max_pages: int = 5

    def validate(self) -> list[tuple[str, str]]:
        problems = (
            check_common(self) + check_range(self, "max_results", 1, 50) + check_range(self, "daily_quota", 1, 10**9)
        )
        if self.channel_id is not None and not _CHANNEL.fullmatch(self.channel_id):
            problems.append(
                (
                    "channel_id",
                    f"expected a channel id like UCxxxxxxxxxxxxxxxxxxxxxx (24 characters), got {self.channel_id!r}",
                )
            )
        if self.token_env is None and self.base_url.rstrip("/") == "https://www.googleapis.com":
            problems.append(
                ("token_env", "is required: the YouTube Data API needs an API key (token_env: YOUTUBE_API_KEY)")
            )
        return problems


# -- quota -------------------------------------------------------------------


def quota_day(now: datetime) -> str:
    """The quota's day: the date in Pacific time."""
    return now.astimezone(PACIFIC).date().isoformat()


def next_reset(now: datetime) -> datetime:
    """The next midnight Pacific time after ``now`` (23 or 25 hours away on a DST change day)."""
    local = now.astimezone(PACIFIC)
    tomorrow = local.date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=PACIFIC).astimezone(UTC)


def spent_today(stored: str | None, now: datetime) -> int:
    """Units spent on ``now``'s quota day, from the stored record (0 for another day or an unreadable record)."""
    try:
        record = json.loads(stored or "{}")
    except ValueError:
        return 0
    if not isinstance(record, dict) or record.get("day") != quota_day(now):
        return 0
    used = record.get("used")
    return used if isinstance(used, int) and used >= 0 else 0


@dataclass(slots=True)
class Quota:
    limit: int
    used: int
    now: datetime

    def can(self, cost: int) -> bool:
        return self.used + cost <= self.limit

    def record(self) -> str:
        return json.dumps({"day": quota_day(self.now), "used": self.used}, sort_keys=True)

    def until_reset(self) -> float:
        return (next_reset(self.now) - self.now).total_seconds() + RESET_MARGIN

    def pace(self, per_poll: int) -> float:
        """Seconds to wait so the units left last until the reset at ``per_poll`` units a poll."""
        polls_left = (self.limit - self.used) // max(1, per_poll)
        return self.until_reset() if polls_left <= 0 else self.until_reset() / polls_left


# -- poll --------------------------------------------------------------------


@register_kind("youtube_search", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    now = ctx.clock.now()
    quota = Quota(options.daily_quota, spent_today(ctx.state.quota, now), now)
    headers = _key_header(ctx, options)
    query = options.query or _default_query(ctx)
    root = f"{options.base_url.rstrip('/')}/youtube/v3"
    mentions: list[Mention] = []
    if quota.can(SEARCH_COST):
        params: dict[str, str | int] = {
            "part": "snippet",
            "type": "video",
            "order": "date",
            "q": require_query(ctx, query),
            "maxResults": options.max_results,
        }
        if since is not None:
            params["publishedAfter"] = format_cursor(since)
        fetch_page = _pager(ctx, f"{root}/search", params, headers, quota, SEARCH_COST, parse_page)
        mentions += await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages)
    if options.channel_id and quota.can(COMMENTS_COST) and ctx.retry_after is None:
        params = {
            "part": "snippet",
            "allThreadsRelatedToChannelId": options.channel_id,
            "order": "time",
            "textFormat": "plainText",
            "maxResults": 100,
        }
        terms = options.query or next(iter(brand_terms(ctx.brands)), "")
        if terms:
            params["searchTerms"] = terms
        fetch_page = _pager(ctx, f"{root}/commentThreads", params, headers, quota, COMMENTS_COST, parse_comments_page)
        mentions += await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages)
    per_poll = SEARCH_COST + (COMMENTS_COST if options.channel_id else 0)
    wait = quota.pace(per_poll)
    if not quota.can(SEARCH_COST):
        log.warning(
            "youtube.quota_exhausted",
            source=ctx.source.id,
            used=quota.used,
            daily_quota=quota.limit,
            resets_at=format_cursor(next_reset(now)),
        )
    if wait > ctx.source.interval:  # the interval would spend the quota before the reset: slow down
        ctx.retry_after = max(ctx.retry_after or 0.0, wait)
        log.info(
            "youtube.quota_pacing", source=ctx.source.id, used=quota.used, daily_quota=quota.limit, wait=round(wait)
        )
    done = finish(ctx, mentions, since)
    return Poll(done.mentions, done.cursor, done.skipped, quota=quota.record())


def _default_query(ctx: PollContext) -> str:
    """The brands' terms OR-ed with ``|`` and their exclusions negated with ``-`` (YouTube's search syntax)."""
    terms = "|".join(quote(t) for t in brand_terms(ctx.brands))
    excludes = " ".join(f"-{quote(e)}" for e in brand_excludes(ctx.brands))
    return f"{terms} {excludes}" if terms and excludes else terms


def _key_header(ctx: PollContext, options: Options) -> dict[str, str]:
    if not options.token_env:
        return {}
    key = ctx.env.get(options.token_env, "").strip()
    if not key:
        raise SourceError(
            f"{ctx.source.id}: token_env names the environment variable {options.token_env}, which is not set or "
            f"empty; set it to a YouTube Data API key before starting beacons",
            source_id=ctx.source.id,
        )
    register(key)  # blanked from every log line and error from now on
    return {"X-Goog-Api-Key": key}  # a header keeps the key out of every URL (logs, redirects, errors)


def _pager(
    ctx: PollContext,
    url: str,
    params: dict[str, str | int],
    headers: dict[str, str],
    quota: Quota,
    cost: int,
    parse_fn: Callable[..., Page],
) -> Callable[[str | None], Any]:
    async def fetch_page(token: str | None) -> Page:
        if not quota.can(cost):
            return Page([], None)  # out of units: stop paging; the poll keeps what it has
        query = {**params, "pageToken": token} if token else params
        quota.used += cost  # Google counts a call that fails too
        try:
            fetched = await ctx.fetch(url, params=query, headers=headers, conditional=False)
        except HTTPStatusError as exc:
            raise _explain(ctx, exc, url, quota) from exc
        return parse_fn(fetched.body, source_id=ctx.source.id, skip=ctx.skip, fetched_at=ctx.clock.now())

    return fetch_page


def _explain(ctx: PollContext, exc: HTTPStatusError, url: str, quota: Quota) -> SourceError:
    """The API's error body (``error.errors[0].reason``) as a readable error; quota errors wait for the reset."""
    try:
        data = load_json(error_body(exc), source_id=ctx.source.id, service=SERVICE)
    except SourceError:
        return exc
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return exc
    details = error.get("errors")
    first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
    reason = str(first.get("reason") or error.get("status") or "error")
    message = html_to_text(str(error.get("message") or ""))[:300]
    retry_after = exc.retry_after
    if reason in ("quotaExceeded", "dailyLimitExceeded"):
        quota.used = max(quota.used, quota.limit)
        # this source waits (not the host: another source may use another project's key)
        retry_after = quota.until_reset()
        message += f" (beacons waits for the daily reset at {format_cursor(next_reset(quota.now))})"
    return HTTPStatusError(
        f"{SERVICE} answered HTTP {exc.status} {reason}: {message}",
        url=exc.url,
        status=exc.status,
        retry_after=retry_after,
        source_id=ctx.source.id,
    )


# -- parse -------------------------------------------------------------------


def _check_error(data: Any, source_id: str) -> None:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        error = data["error"]
        raise SourceError(
            f"{SERVICE} error {error.get('code')}: {str(error.get('message'))[:300]}", source_id=source_id
        )


def parse_page(body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None) -> Page:
    """Pure: one search.list response in, a page of video mentions and the next page token out."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    _check_error(data, source_id)
    items = items_of(data, "items", source_id=source_id, service=SERVICE)
    now = fetched_at or datetime.now(UTC)
    mentions = parse_items(items, lambda item: _video(item, source_id, now), skip=skip, what="item")
    return Page(mentions, opt(data, "nextPageToken"))


def parse(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: search.list JSON in, one mention per video; an item with missing or odd fields is skipped."""
    return parse_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at).mentions


def parse_comments_page(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> Page:
    """Pure: one commentThreads.list response in, one mention per comment (top level and replies)."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    _check_error(data, source_id)
    threads = items_of(data, "items", source_id=source_id, service=SERVICE)
    now = fetched_at or datetime.now(UTC)
    comments: list[Any] = []
    for thread in threads:
        snippet = opt(thread, "snippet", dict) or {}
        comments.append(opt(snippet, "topLevelComment", dict) or thread)
        comments.extend(c for c in opt(opt(thread, "replies", dict), "comments", list) or [] if isinstance(c, dict))
    mentions = parse_items(comments, lambda c: _comment(c, source_id, now), skip=skip, what="comment")
    # newest first, as order=time promises for threads (a reply may be newer than the next thread)
    mentions.sort(key=lambda m: m.published_at or now, reverse=True)
    return Page(mentions, opt(data, "nextPageToken"))


def _video(item: Any, source_id: str, now: datetime) -> Mention:
    ident = req(item, "id", dict)
    video_id = req(ident, "videoId")
    snippet = req(item, "snippet", dict)
    return make_mention(
        item,
        source_id=source_id,
        fetched_at=now,
        url=f"{WATCH}{video_id}",
        guid=f"youtube:video:{video_id}",
        title=req(snippet, "title"),  # HTML-escaped by the API; one_line unescapes it
        text=opt(snippet, "description") or "",
        author=opt(snippet, "channelTitle"),
        published_at=timestamp(req(snippet, "publishedAt"), "publishedAt"),
    )


def _comment(comment: Any, source_id: str, now: datetime) -> Mention:
    comment_id = req(comment, "id")
    snippet = req(comment, "snippet", dict)
    video_id = opt(snippet, "videoId")
    if video_id is None:
        raise BadItem("comment without 'videoId' (a channel discussion comment has no video to link)")
    text = opt(snippet, "textOriginal") or req(snippet, "textDisplay")
    return make_mention(
        comment,
        source_id=source_id,
        fetched_at=now,
        url=f"{WATCH}{video_id}&lc={comment_id}",
        guid=f"youtube:comment:{comment_id}",
        title="",
        text=text,
        author=opt(snippet, "authorDisplayName"),
        published_at=timestamp(req(snippet, "publishedAt"), "publishedAt"),
        author_reach=opt_int(snippet, "likeCount"),
    )
