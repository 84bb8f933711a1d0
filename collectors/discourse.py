"""Posts in a Discourse community: a product forum, a vendor's support site.

With ``query``: ``/search.json?q=QUERY order:latest&page=N``, newest first.
Its ``posts`` are the matching posts (topic or reply, with a ``blurb``) and its
``topics`` the topics they belong to; ``grouped_search_result.
more_full_page_results`` says another page exists. Paging stops at the cursor.

Without ``query`` everything in the forum, or in one ``category``, is read
("everything here is about us"; set ``implies_brand``): ``/latest.json`` or
``/c/{category}.json`` lists topics by latest activity, and each topic bumped
since the cursor is read with ``/t/{id}/{highest_post_number}.json``, whose
``post_stream.posts`` are the posts around its newest one; those newer than the
cursor become mentions. At most ``max_topics`` topics are read a poll.

Each post is one mention titled with its topic's title and linked to
``/t/{slug}/{topic_id}/{post_number}``; reach is its like count. A solved topic
(the Solved plugin's ``has_accepted_answer``, ``accepted_answer``) needs no one:
its posts are not mentions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beacons.errors import HTTPStatusError, ParseError
from beacons.log import get_logger
from beacons.models import Mention
from collectors import Poll, PollContext, register
from collectors._json import (
    BadItem,
    Page,
    Skip,
    check_common,
    check_range,
    cursor_time,
    finish,
    is_newer,
    items_of,
    load_json,
    make_mention,
    opt,
    opt_int,
    page_back,
    parse_items,
    req,
    timestamp,
)

SERVICE = "Discourse"
log = get_logger("collectors.discourse")


@dataclass(frozen=True, slots=True)
class Options:
    base_url: str  # the forum's address, e.g. https://community.acme.example
    query: str | None = None  # Discourse search syntax (words, "phrase", #category, tags:); none: read everything
    category: str | None = None  # without query: only this category, as in its address: support or support/7
    max_pages: int = 5  # search pages (50 posts each) when catching up to the cursor
    max_topics: int = 20  # without query: topics read per poll
    site_url: str | None = None  # the forum's public address for links, when base_url is a proxy; default base_url

    def validate(self) -> list[tuple[str, str]]:
        problems = check_common(self) + check_range(self, "max_topics", 1, 100)
        if self.site_url is not None and not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", self.site_url):
            problems.append(("site_url", f"expected an http(s) URL without query, got {self.site_url!r}"))
        if self.query is not None and self.category is not None:
            problems.append(
                ("category", "set query or category, not both (to search one category, add #slug to query)")
            )
        if self.category is not None and not re.fullmatch(r"[\w-]+(/[\w-]+)*", self.category):
            problems.append(
                ("category", f"expected the category's path like support or support/7, got {self.category!r}")
            )
        return problems


@register("discourse", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    root = options.base_url.rstrip("/")
    site = (options.site_url or options.base_url).rstrip("/")
    if options.query:
        mentions = await _search(ctx, options, root, site, since)
    else:
        mentions = await _read_latest(ctx, options, root, site, since)
    return finish(ctx, mentions, since)


# -- search ------------------------------------------------------------------


async def _search(ctx: PollContext, options: Options, root: str, site: str, since: datetime | None) -> list[Mention]:
    assert options.query
    solved = 0

    async def fetch_page(token: str | None) -> Page:
        nonlocal solved
        number = int(token or 1)
        params: dict[str, str | int] = {"q": f"{options.query} order:latest", "page": number}
        fetched = await ctx.fetch(f"{root}/search.json", params=params, conditional=number == 1)
        page = parse_page(
            fetched.body, source_id=ctx.source.id, site_url=site, skip=ctx.skip, fetched_at=ctx.clock.now()
        )
        solved += page.meta["solved"]
        page.next = str(number + 1) if page.meta["more"] else None
        return page

    mentions = await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages)
    if solved:
        log.info("discourse.solved_passed_over", source=ctx.source.id, posts=solved)
    return mentions


def parse_page(
    body: bytes,
    *,
    source_id: str,
    site_url: str = "",
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
) -> Page:
    """Pure: one ``search.json`` in, the posts of unsolved topics out (``meta``: ``more`` pages, ``solved`` passed over)."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    grouped = data.get("grouped_search_result") if isinstance(data, dict) else None
    if isinstance(grouped, dict) and grouped.get("error"):
        raise ParseError(f"{SERVICE} search error: {str(grouped['error'])[:200]}", source_id=source_id)
    posts = (
        items_of(data, "posts", source_id=source_id, service=SERVICE)
        if isinstance(data, dict) and "posts" in data
        else []
    )
    if not isinstance(grouped, dict) and not posts:
        raise ParseError(
            f"{SERVICE} search response has no 'grouped_search_result'; the API may have changed", source_id=source_id
        )
    topics = {t.get("id"): t for t in (data.get("topics") or []) if isinstance(t, dict)}
    now = fetched_at or datetime.now(UTC)
    open_posts = [p for p in posts if not _is_solved(topics.get(opt(p, "topic_id", int)))]
    mentions = parse_items(
        open_posts, lambda post: _search_mention(post, topics, site_url, source_id, now), skip=skip, what="post"
    )
    more = bool(opt(grouped, "more_full_page_results", (bool, str)))
    return Page(mentions, None, {"more": more, "solved": len(posts) - len(open_posts)})


def parse(
    body: bytes, *, source_id: str, site_url: str = "", skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: a ``search.json`` in, mentions out (links under ``site_url``). A post with odd fields is skipped with a reason."""
    return parse_page(body, source_id=source_id, site_url=site_url, skip=skip, fetched_at=fetched_at).mentions


def _is_solved(topic: Any) -> bool:
    return isinstance(topic, Mapping) and (
        topic.get("has_accepted_answer") is True or bool(topic.get("accepted_answer"))
    )


def _link(site_url: str, slug: str | None, topic_id: int, post_number: int) -> str:
    # "topic" stands in for a missing slug: Discourse redirects any slug to the right one
    return f"{site_url.rstrip('/') or 'https://discourse.invalid'}/t/{slug or 'topic'}/{topic_id}/{post_number}"


def _search_mention(post: Any, topics: Mapping[Any, Any], site_url: str, source_id: str, now: datetime) -> Mention:
    post_id = req(post, "id", int)
    topic_id = req(post, "topic_id", int)
    topic = topics.get(topic_id)
    if not isinstance(topic, Mapping):
        raise BadItem(f"post {post_id} belongs to topic {topic_id}, which the response does not list")
    return make_mention(
        post,
        source_id=source_id,
        fetched_at=now,
        url=_link(site_url, opt(topic, "slug"), topic_id, req(post, "post_number", int)),
        guid=f"discourse:{post_id}",
        title=req(topic, "title"),
        text=req(post, "blurb"),  # HTML with the matched words in <span class="search-highlight">
        author=req(post, "username"),
        published_at=timestamp(req(post, "created_at"), "created_at"),
        author_reach=opt_int(post, "like_count"),
    )


# -- everything (latest / category) --------------------------------------------


async def _read_latest(
    ctx: PollContext, options: Options, root: str, site: str, since: datetime | None
) -> list[Mention]:
    path = f"/c/{options.category}.json" if options.category else "/latest.json"
    fetched = await ctx.fetch(f"{root}{path}")
    topics = parse_topic_list(fetched.body, source_id=ctx.source.id)
    # A first poll skips pinned topics: they top the list for being pinned, not for news.
    fresh = [t for t in topics if (not t.get("pinned") if since is None else (_bumped(t) or since) > since)]
    solved = [t for t in fresh if _is_solved(t)]
    mentions: list[Mention] = []
    for topic in [t for t in fresh if not _is_solved(t)][: options.max_topics]:
        number = opt_int(topic, "highest_post_number") or 1
        try:
            view = await ctx.fetch(f"{root}/t/{topic['id']}/{number}.json", conditional=False)
        except HTTPStatusError as exc:
            if exc.status not in (403, 404, 410):
                raise
            # deleted or made private since the list was read: that topic is lost, not the poll
            ctx.skip("bad_entry", f"topic {topic['id']}: HTTP {exc.status}")
            continue
        posts = parse_topic(
            view.body, source_id=ctx.source.id, site_url=site, skip=ctx.skip, fetched_at=ctx.clock.now()
        )
        mentions += [m for m in posts if is_newer(m, since)]
        if ctx.retry_after is not None:
            break
    if solved:
        log.info("discourse.solved_passed_over", source=ctx.source.id, topics=len(solved))
    return sorted(mentions, key=lambda m: m.published_at or datetime.min.replace(tzinfo=UTC), reverse=True)


def _bumped(topic: Mapping[str, Any]) -> datetime | None:
    for key in ("bumped_at", "last_posted_at", "created_at"):
        try:
            return timestamp(topic.get(key), key)
        except BadItem:
            continue
    return None


def parse_topic_list(body: bytes, *, source_id: str) -> list[dict[str, Any]]:
    """Pure: ``/latest.json`` or a category's ``.json`` in, its topics (with an int ``id``) out."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    topic_list = data.get("topic_list") if isinstance(data, dict) else None
    topics = items_of(topic_list, "topics", source_id=source_id, service=SERVICE)
    return [t for t in topics if isinstance(t, dict) and isinstance(t.get("id"), int) and not isinstance(t["id"], bool)]


def parse_topic(
    body: bytes,
    *,
    source_id: str,
    site_url: str = "",
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
) -> list[Mention]:
    """Pure: ``/t/{id}.json`` in, its posts as mentions titled with the topic; none when the topic is solved."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    stream = data.get("post_stream") if isinstance(data, dict) else None
    posts = items_of(stream, "posts", source_id=source_id, service=SERVICE)
    if _is_solved(data) or any(isinstance(p, dict) and p.get("accepted_answer") is True for p in posts):
        return []
    title = opt(data, "title")
    slug = opt(data, "slug")
    now = fetched_at or datetime.now(UTC)

    def build(post: Any) -> Mention:
        post_id = req(post, "id", int)
        return make_mention(
            post,
            source_id=source_id,
            fetched_at=now,
            url=_link(
                site_url, opt(post, "topic_slug") or slug, req(post, "topic_id", int), req(post, "post_number", int)
            ),
            guid=f"discourse:{post_id}",
            title=title or "",
            text=req(post, "cooked"),
            author=req(post, "username"),
            published_at=timestamp(req(post, "created_at"), "created_at"),
            author_reach=_likes(post),
        )

    # post_type 1 is a regular post; 2 a moderator action, 3 a small action ("closed this topic"), 4 a whisper
    regular = [p for p in posts if opt(p, "post_type", int) in (None, 1)]
    return parse_items(regular, build, skip=skip, what="post")


def _likes(post: Any) -> int | None:
    """A topic view's post counts likes in ``actions_summary`` (action id 2)."""
    for action in opt(post, "actions_summary", list) or []:
        if opt(action, "id", int) == 2:
            return opt_int(action, "count")
    return None
