"""Customer reviews of one iOS/macOS app from Apple's public reviews feed, newest first.

Endpoint: ``/{country}/rss/customerreviews/page={n}/id={app_id}/sortby=mostrecent/json``
on ``itunes.apple.com``: the Atom feed rendered as JSON, where every value is
an object with a ``label`` (``{"im:rating": {"label": "1"}}``). ``feed.entry``
is a list of reviews, a single object when there is one, and absent when there
is none; older feeds put the app itself first on page 1 (an entry with
``im:name`` and no ``im:rating``), which is not a review and is passed over.
The feed's ``link rel="last"`` names the last page (Apple serves at most 10).

Each review becomes a mention with its stars in ``rating`` (1-5), which
routing uses: a one-star review with a problem is support. A review has no
address of its own, so the mention has no link; its guid is the review id.
The reviews are about the app whatever their words, so such a source usually
sets ``implies_brand`` (and ``implies_product``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from beacons.errors import ParseError
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
    load_json,
    make_mention,
    opt,
    page_back,
    parse_items,
    req,
    timestamp,
)

SERVICE = "App Store reviews feed"
MAX_PAGES = 10  # Apple serves reviews up to page 10


@dataclass(frozen=True, slots=True)
class Options:
    app_id: str  # the number in the app's store address (apps.apple.com/us/app/name/id<app_id>)
    country: str = "us"  # the storefront: two-letter country code
    pages: int = MAX_PAGES  # pages (50 reviews each) read when catching up to the cursor, 1 to 10
    base_url: str = "https://itunes.apple.com"  # tests and proxies override it

    def validate(self) -> list[tuple[str, str]]:
        problems = check_common(self) + check_range(self, "pages", 1, MAX_PAGES)
        if not re.fullmatch(r"\d{1,20}", str(self.app_id)):
            problems.append(
                ("app_id", f"expected the app's numeric id (the digits after id in its address), got {self.app_id!r}")
            )
        if not re.fullmatch(r"[a-zA-Z]{2}", self.country):
            problems.append(("country", f"expected a two-letter storefront code like us or gb, got {self.country!r}"))
        return problems


@register("app_store_reviews", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    root = options.base_url.rstrip("/")

    async def fetch_page(token: str | None) -> Page:
        number = int(token or 1)
        url = f"{root}/{options.country.lower()}/rss/customerreviews/page={number}/id={options.app_id}/sortby=mostrecent/json"
        fetched = await ctx.fetch(url, conditional=number == 1)
        page = parse_page(fetched.body, source_id=ctx.source.id, skip=ctx.skip, fetched_at=ctx.clock.now())
        last = page.meta.get("last_page") or number
        page.next = str(number + 1) if number < min(last, MAX_PAGES) else None  # page_back stops at `pages`
        return page

    return finish(ctx, await page_back(ctx, fetch_page, since=since, max_pages=options.pages), since)


def parse_page(body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None) -> Page:
    """Pure: one page of the reviews feed in, its reviews and the feed's last page number out."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    feed = data.get("feed") if isinstance(data, dict) else None
    if not isinstance(feed, dict):
        raise ParseError(f"{SERVICE} has no 'feed' object; the format may have changed", source_id=source_id)
    entries = feed.get("entry", [])
    if isinstance(entries, dict):  # one review: the JSON rendering drops the list
        entries = [entries]
    if not isinstance(entries, list):
        raise ParseError(f"{SERVICE} 'feed.entry' is not a list; the format may have changed", source_id=source_id)
    reviews = [e for e in entries if not (isinstance(e, dict) and "im:name" in e and "im:rating" not in e)]
    now = fetched_at or datetime.now(UTC)
    mentions = parse_items(reviews, lambda entry: _mention(entry, source_id, now), skip=skip, what="entry")
    return Page(mentions, None, {"last_page": _last_page(feed)})


def parse(
    body: bytes, *, source_id: str, skip: Skip | None = None, fetched_at: datetime | None = None
) -> list[Mention]:
    """Pure: JSON bytes in, reviews out. A review with missing or odd fields is skipped with a logged reason."""
    return parse_page(body, source_id=source_id, skip=skip, fetched_at=fetched_at).mentions


def _label(entry: Any, key: str) -> Any:
    return req(req(entry, key, dict), "label")


def _text(entry: Any) -> str:
    content = req(entry, "content", (dict, list))
    parts = content if isinstance(content, list) else [content]
    plain = [p for p in parts if isinstance(p, dict) and (opt(p.get("attributes"), "type") or "text") == "text"]
    return str(req((plain or parts)[0], "label")) if (plain or parts) else ""


def _mention(entry: Any, source_id: str, now: datetime) -> Mention:
    review_id = _label(entry, "id")
    stars = _label(entry, "im:rating")
    if not (isinstance(stars, str) and stars.strip() in {"1", "2", "3", "4", "5"}):
        raise BadItem(f"field 'im:rating' is {stars!r}, expected 1 to 5")
    author = opt(opt(entry.get("author"), "name", dict), "label")
    mention = make_mention(
        entry,
        source_id=source_id,
        fetched_at=now,
        url=None,  # a review has no address of its own; the guid identifies it
        guid=f"appstore:{review_id}",
        title=_label(entry, "title"),
        text=_text(entry),
        author=author,
        published_at=timestamp(_label(entry, "updated"), "updated"),
    )
    return replace(mention, rating=int(stars))


def _last_page(feed: dict[str, Any]) -> int | None:
    links = feed.get("link")
    for link in links if isinstance(links, list) else [links]:
        attributes = opt(link, "attributes", dict) or {}
        if attributes.get("rel") == "last":
            found = re.search(r"/page=(\d+)/", str(attributes.get("href") or ""))
            return int(found.group(1)) if found else None
    return None
