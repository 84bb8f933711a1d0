"""A web page without a feed, read with CSS selectors (issue 15).

The source names the page (``url``), a CSS selector for each item on it
(``items``) and, per mention field, a CSS selector relative to one item
(``fields``): a plain selector or one ending in ``::text`` gives the text,
``::attr(href)`` or ``::attr(datetime)`` an attribute (the parsel syntax
Scrapy uses). Links are resolved against the page's ``<base href>`` or its
URL. The page is parsed by parsel over lxml, a real HTML parser that copes
with broken, huge and deeply nested markup; text inside ``<script>``,
``<style>`` and ``<template>`` is never read.

The site's robots.txt is obeyed (RFC 9309, read by ``urllib.robotparser``
for the agent ``beacons``): it is fetched through the same polite fetch path,
cached for a day, and a page it disallows is not fetched: the poll fails with
a source error saying so, and ``html_page.robots_disallowed`` is logged. A
robots.txt that answers 4xx allows everything; a 5xx or an unreachable one
stops the poll until it answers (the RFC's "complete disallow").
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

if TYPE_CHECKING:  # parsel, lxml and w3lib load when a page is first checked or parsed, not at every start
    from parsel import Selector, SelectorList

from beacons.errors import HTTPStatusError, ParseError, SourceError
from beacons.log import get_logger
from beacons.models import Mention
from beacons.redact import public_url
from collectors import Poll, PollContext
from collectors import register as register_kind
from collectors._json import BadItem, Skip, cursor_time, finish, is_newer, make_mention, parse_items, timestamp

log = get_logger("collectors")

FIELDS = ("id", "title", "text", "url", "author", "published", "reach")
ROBOTS_AGENT = "beacons"  # the product token matched against robots.txt User-agent lines
ROBOTS_TTL = 24 * 3600.0  # RFC 9309 §2.4: a cached robots.txt should not be used for more than 24 hours
MAX_ITEMS = 500  # a page with more items than this is read up to here (a hostile page cannot flood the store)
_HIDDEN = "ancestor::script or ancestor::style or ancestor::template or ancestor::noscript"
_ROBOTS: dict[str, tuple[float, RobotFileParser]] = {}  # origin -> (fetched at, rules); shared by every source


@dataclass(frozen=True, slots=True)
class Options:
    url: str  # the page
    items: str  # CSS selector: one element per post, e.g. "article.post"
    fields: dict[str, str]  # mention field -> CSS selector relative to an item (::text, ::attr(name))
    container: str | None = None  # CSS selector on the page even when it lists nothing (tells an error page)

    def validate(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.container is not None:
            problems += _check_selector("container", self.container)
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(("url", f"expected an http(s) URL, got {self.url[:200]!r}"))
        problems += _check_selector("items", self.items)
        for name, selector in self.fields.items():
            if name not in FIELDS:
                problems.append((f"fields.{name}", f"unknown field; known fields: {', '.join(FIELDS)}"))
            else:
                problems += _check_selector(f"fields.{name}", selector)
        if not any(k in self.fields for k in ("title", "text")):
            problems.append(("fields", "map at least title or text to a selector (the words the brand matcher reads)"))
        if not any(k in self.fields for k in ("id", "url")):
            problems.append(("fields", "map id or url to a selector, so each item is stored once"))
        return problems


def _check_selector(key: str, selector: str) -> list[tuple[str, str]]:
    if not selector.strip():
        return [(key, "must not be empty")]
    from cssselect import SelectorError
    from parsel.csstranslator import HTMLTranslator

    try:
        HTMLTranslator().css_to_xpath(selector)
    except SelectorError as exc:
        return [(key, f"is not a valid CSS selector: {str(exc)[:200]}")]
    return []


@register_kind("html_page", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    await _obey_robots(ctx, options.url)
    fetched = await ctx.fetch(options.url)
    mentions = parse(
        fetched.body,
        options=options,
        source_id=ctx.source.id,
        skip=ctx.skip,
        fetched_at=ctx.clock.now(),
        base=public_url(fetched.url),
        content_type=fetched.headers.get("content-type"),
    )
    return finish(ctx, [m for m in mentions if is_newer(m, since)], since)


# -- robots.txt --------------------------------------------------------------


async def _obey_robots(ctx: PollContext, url: str) -> None:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    rules = await _robots(ctx, origin)
    if not rules.can_fetch(ROBOTS_AGENT, url):
        path = parts.path or "/"
        log.warning("html_page.robots_disallowed", source=ctx.source.id, url=public_url(url), agent=ROBOTS_AGENT)
        raise SourceError(
            f"{ctx.source.id}: {origin}/robots.txt disallows {path} for {ROBOTS_AGENT} (and for every crawler it "
            f"names), so beacons does not fetch it; use a feed or API of the site, or ask its owner to allow it",
            source_id=ctx.source.id,
        )


async def _robots(ctx: PollContext, origin: str) -> RobotFileParser:
    now = ctx.clock.monotonic()
    cached = _ROBOTS.get(origin)
    if cached is not None and now - cached[0] < ROBOTS_TTL:
        return cached[1]
    rules = RobotFileParser(f"{origin}/robots.txt")
    try:
        fetched = await ctx.fetch(f"{origin}/robots.txt", conditional=False)
    except HTTPStatusError as exc:
        if exc.status == 429 or exc.status >= 500:
            # RFC 9309 §2.3.1.3-4: unreachable means "disallow everything" for now; try again next poll
            raise SourceError(
                f"{ctx.source.id}: {origin}/robots.txt answered HTTP {exc.status}; beacons does not fetch the page "
                f"until robots.txt can be read",
                source_id=ctx.source.id,
            ) from exc
        rules.parse([])  # RFC 9309 §2.3.1.3: 4xx (none there) allows every path
    else:
        text = fetched.body[:500_000].decode("utf-8", errors="replace")  # RFC 9309 §2.5: at least 500 KiB read
        rules.parse(text.splitlines())
    _ROBOTS[origin] = (now, rules)
    return rules


# -- parse -------------------------------------------------------------------


def parse(
    body: bytes,
    *,
    source_id: str,
    options: Options,
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
    base: str | None = None,
    content_type: str | None = None,
) -> list[Mention]:
    """Pure: the page's bytes and the source's selectors in, one mention per item; an odd item is skipped."""
    from parsel import Selector
    from w3lib.encoding import html_to_unicode

    _, text = html_to_unicode(content_type, body)  # charset from the header, a BOM or <meta>, like a browser
    head = text[:512].lstrip().lower()
    if head.startswith(("{", "[")):
        raise ParseError("got JSON, not an HTML page (use kind: json_api for an API)", source_id=source_id)
    page = Selector(text=text or "<html></html>", type="html")
    base_href = page.css("head base::attr(href)").get()
    page_url = urljoin(base or options.url, base_href.strip()) if base_href else (base or options.url)
    if options.container and not page.css(options.container):
        title = " ".join(page.css("title::text").getall()).strip()[:100]
        raise ParseError(
            f"got an HTML page without the container {options.container!r} (title {title!r}): an error, login or "
            f"challenge page, or the site changed (check the selectors with `beacons sources test {source_id}`)",
            source_id=source_id,
        )
    items = page.css(options.items)
    if not items and not page.css("body *"):
        raise ParseError("got an HTML page with no content (an empty body)", source_id=source_id)
    now = fetched_at or datetime.now(UTC)
    host = (urlsplit(options.url).hostname or "").lower()
    return parse_items(
        list(items[:MAX_ITEMS]), lambda item: _mention(item, options, source_id, now, host, page_url), skip=skip
    )


def _value(item: Selector, selector: str | None) -> str | None:
    """What a field's selector picks in one item: an attribute, text nodes, or an element's whole text."""
    if selector is None:
        return None
    found: SelectorList[Selector] = item.css(selector)
    if not found:
        return None
    if re.search(r"::(text|attr\([^)]*\))\s*$", selector):
        values = [v for v in (s.get() for s in found) if isinstance(v, str)]
        if "::attr(" in selector:
            return values[0].strip() if values else None
        return " ".join(v.strip() for v in values if v.strip()) or None
    # a plain selector: the first element's visible text, never the code inside <script> or <style>
    words = found[0].xpath(f".//text()[not({_HIDDEN})]").getall()
    return " ".join(w.strip() for w in words if w.strip()) or None


def _published(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return timestamp(value, "published")
    except BadItem:
        try:
            when = parsedate_to_datetime(value)  # RFC 2822, as some pages print it
        except (TypeError, ValueError, IndexError):
            raise BadItem(f"field 'published' is not an ISO 8601 or RFC 2822 time: {value[:40]!r}") from None
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _mention(item: Any, options: Options, source_id: str, now: datetime, host: str, page_url: str) -> Mention:
    fields: Mapping[str, str] = options.fields
    ident = _value(item, fields.get("id"))
    if "id" in fields and not ident:
        raise BadItem(f"field 'id' ({fields['id']}) matched nothing")
    link = _value(item, fields.get("url"))
    if "url" in fields and not link:
        raise BadItem(f"field 'url' ({fields['url']}) matched nothing")
    if link is not None:
        link = urljoin(page_url, link)
        if urlsplit(link).scheme not in ("http", "https"):
            raise BadItem(f"link is not http(s): {link[:80]!r}")  # javascript:, data:, mailto:
    reach_text = _value(item, fields.get("reach"))
    digits = re.sub(r"[^\d]", "", reach_text or "")
    title, text = _value(item, fields.get("title")), _value(item, fields.get("text"))
    return make_mention(
        {"html": item.get()[:20_000]},  # the item's markup, kept as its raw entry
        source_id=source_id,
        fetched_at=now,
        url=link,
        guid=f"{host}:{ident}" if ident else f"{host}:{link}",
        # the values are text already: escaped, so the text helpers read them as text and not as markup
        title=html.escape(title or "", quote=False),
        text=html.escape(text or "", quote=False),
        author=_value(item, fields.get("author")),
        published_at=_published(_value(item, fields.get("published"))),
        author_reach=int(digits[:15]) if digits else None,
    )
