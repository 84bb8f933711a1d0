"""Google News articles that mention a brand, from its RSS search.

Endpoint: ``news.google.com/rss/search?q=...&hl=&gl=&ceid=`` (RSS 2.0). Each
item's title is "Headline - Publisher", its ``<source url=...>`` names the
publisher and its link points at ``news.google.com/rss/articles/<id>``. With
``resolve_links`` (default) the publisher's own URL is taken from the article
id when the id embeds it (older ids are base64 protobuf with the URL in a
field); newer opaque ids can only be resolved by calling Google, so those
links are kept as they are. The publisher becomes the mention's author and the
" - Publisher" suffix leaves the title. The feed has no paging: each poll
reads it whole (conditional GET) and keeps the items newer than the cursor.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from beacons.dedupe import canonical_url
from beacons.models import Mention
from beacons.text import one_line
from collectors import Poll, PollContext, register
from collectors._feed import parse_feed
from collectors._json import Skip, check_common, read_whole_feed, require_query


@dataclass(frozen=True, slots=True)
class Options:
    query: str | None = None  # Google search syntax; default: brand terms OR-ed, exclusions negated
    hl: str = "en-US"  # interface language
    gl: str = "US"  # country
    ceid: str | None = None  # default: "{gl}:{language of hl}", e.g. US:en
    resolve_links: bool = True  # publisher URL instead of the news.google.com link, when the link embeds it
    base_url: str = "https://news.google.com"

    def validate(self) -> list[tuple[str, str]]:
        return check_common(self)


@register("google_news", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    ceid = options.ceid or f"{options.gl}:{options.hl.split('-')[0]}"
    params = {
        "q": require_query(ctx, options.query or ctx.default_query),
        "hl": options.hl,
        "gl": options.gl,
        "ceid": ceid,
    }
    url = f"{options.base_url.rstrip('/')}/rss/search"
    return await read_whole_feed(ctx, url, partial(parse, resolve_links=options.resolve_links), params=params)


def parse(
    body: bytes,
    *,
    source_id: str,
    headers: Mapping[str, str] | None = None,
    url: str | None = None,
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
    resolve_links: bool = True,
) -> list[Mention]:
    """Pure: the search feed in, mentions out (publisher as author, its link when the item embeds it)."""

    def adjust(entry: Mapping[str, Any], mention: Mention) -> Mention:
        source = entry.get("source") or {}
        publisher = one_line(source.get("title") or "", limit=200) if isinstance(source, Mapping) else ""
        title, text = mention.title, mention.text
        if publisher and title.endswith(f" - {publisher}"):
            title = title[: -len(publisher) - 3].rstrip()
        if publisher and text.endswith(publisher):
            text = text[: -len(publisher)].rstrip()
        if text == title:  # the description is only the headline's link and the publisher
            text = ""
        link = publisher_link(entry.get("link") or "") if resolve_links else None
        url = canonical_url(link) if link else mention.url
        return replace(mention, title=title, text=text, author=publisher or mention.author, url=url)

    return parse_feed(
        body, source_id=source_id, headers=headers, url=url, skip=skip, fetched_at=fetched_at, finish=adjust
    )


def publisher_link(link: str) -> str | None:
    """The publisher URL inside a ``news.google.com/rss/articles/<id>`` link, or None when it is opaque."""
    parts = urlsplit(link)
    if not parts.path.startswith(("/rss/articles/", "/articles/")):
        return None
    article_id = parts.path.rsplit("/", 1)[1]
    try:
        raw = base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))
    except (binascii.Error, ValueError):
        return None
    for value in _length_delimited(raw):
        if value.startswith((b"http://", b"https://")):
            try:
                return value.decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


def _length_delimited(raw: bytes) -> list[bytes]:
    """The length-delimited fields of a protobuf message (enough of the wire format for article ids)."""
    out: list[bytes] = []
    i = 0
    while i < len(raw):
        key, i = _varint(raw, i)
        wire = key & 7
        if wire == 0:
            _, i = _varint(raw, i)
        elif wire == 2:
            size, i = _varint(raw, i)
            if size < 0 or i + size > len(raw):
                break
            out.append(raw[i : i + size])
            i += size
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            break
    return out


def _varint(raw: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while i < len(raw):
        byte = raw[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            break
    return -1, len(raw)
