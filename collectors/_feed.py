"""Shared by the feed-shaped kinds (rss, google_news, bing_news, reddit_search, mastodon_tag).

``parse_feed`` turns RSS 0.9x/1.0/2.0 or Atom bytes into mentions with
feedparser. The bytes go in as a file object, never a string, because
feedparser treats a string as a URL or path it may open.
"""

from __future__ import annotations

import calendar
import io
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from beacons.dedupe import canonical_url
from beacons.errors import ParseError
from beacons.models import Mention
from beacons.text import one_line, sanitized_html_to_text

Skip = Callable[[str, str], None]


def _jsonable(value: Any) -> Any:
    if isinstance(value, time.struct_time):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def entry_json(entry: Mapping[str, Any]) -> str:
    # Only the top-level *_parsed dates need converting; json handles the nested
    # dicts and lists itself, which is about twice as fast as walking them (bench/ingest.py).
    data = {str(k): _jsonable(v) if isinstance(v, time.struct_time) else v for k, v in entry.items()}
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


def _when(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # `in` first: FeedParserDict.get("updated_parsed") falls back to published_parsed
        # with a DeprecationWarning (feedparser issue 310), which pytest turns into an error.
        value = entry.get(key) if key in entry else None
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _body(entry: Mapping[str, Any]) -> str:
    contents = entry.get("content") or []
    best = ""
    for content in contents:
        value = content.get("value") if isinstance(content, Mapping) else None
        if isinstance(value, str) and len(value) > len(best):
            best = value
    summary = entry.get("summary") or entry.get("description") or ""
    # parse_feed has feedparser sanitize the markup, so the faster walk applies.
    return sanitized_html_to_text(best if len(best) >= len(summary) else summary)


def parse_feed(
    body: bytes,
    *,
    source_id: str,
    headers: Mapping[str, str] | None = None,
    url: str | None = None,
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
    link_of: Callable[[Mapping[str, Any]], str | None] | None = None,
    finish: Callable[[Mapping[str, Any], Mention], Mention] | None = None,
) -> list[Mention]:
    """Pure: feed bytes in, mentions out; ``ParseError`` when the bytes are not a feed.

    ``finish(entry, mention)`` lets a feed-shaped kind fill in what only it
    knows (the publisher of a news item, an author's reach); an exception in
    it skips that entry like any other bad entry.
    """
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if url:
        response_headers.setdefault("content-location", url)
    parsed = feedparser.parse(
        io.BytesIO(body), response_headers=response_headers, sanitize_html=True, resolve_relative_uris=True
    )
    entries = parsed.get("entries") or []
    if not entries:
        # An HTML page parses without bozo as often as with it, so say what it is either way.
        head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise ParseError("got an HTML page, not a feed (check the source url)", source_id=source_id)
        if head.startswith((b"{", b"[")):
            raise ParseError("got JSON, not a feed (check the source kind and url)", source_id=source_id)
        if parsed.get("bozo"):
            exc = parsed.get("bozo_exception")
            raise ParseError(f"not a readable feed: {type(exc).__name__}: {str(exc)[:200]}", source_id=source_id)
        if not parsed.get("version"):
            raise ParseError("no RSS or Atom feed found in the body", source_id=source_id)
        return []
    now = fetched_at or datetime.now(UTC)
    mentions: list[Mention] = []
    for i, entry in enumerate(entries):
        try:
            mention = _mention(entry, source_id, now, link_of)
            if mention is not None and finish is not None:
                mention = finish(entry, mention)
        except Exception as exc:  # one odd entry must not cost the rest of the feed
            if skip:
                skip("bad_entry", f"entry {i}: {type(exc).__name__}: {exc}")
            continue
        if mention is None:
            if skip:
                skip("empty_entry", f"entry {i} has no title, text or link")
            continue
        mentions.append(mention)
    if skip:
        _report_bozo(parsed, skip)
    return mentions


def _report_bozo(parsed: Mapping[str, Any], skip: Skip) -> None:
    """A feed read in spite of bad XML or a wrong declared charset is logged and counted.

    The entries may be cut short or garbled, so the source owner should hear of
    it; a feed merely served as text/html (NonXMLContentType) is not worth a line.
    """
    exc = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if exc is None or isinstance(exc, feedparser.NonXMLContentType):
        return
    encoding = isinstance(exc, feedparser.CharacterEncodingOverride | feedparser.CharacterEncodingUnknown)
    skip("wrong_encoding" if encoding else "illformed_feed", f"{type(exc).__name__}: {str(exc)[:200]}")


def _mention(
    entry: Mapping[str, Any],
    source_id: str,
    now: datetime,
    link_of: Callable[[Mapping[str, Any]], str | None] | None,
) -> Mention | None:
    title = one_line(entry.get("title"))
    text = _body(entry)
    link = link_of(entry) if link_of else entry.get("link")
    if not (title or text or link):
        return None
    author = one_line(entry.get("author") or (entry.get("author_detail") or {}).get("name") or "", limit=200) or None
    guid = entry.get("id") or entry.get("guid") or None
    return Mention(
        source_id=source_id,
        url=canonical_url(link) if isinstance(link, str) else None,
        guid=str(guid)[:2000] if guid else None,
        title=title,
        text=text,
        author=author,
        published_at=_when(entry),
        fetched_at=now,
        raw=entry_json(entry),
    )
