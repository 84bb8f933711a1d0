"""Shared by the feed-shaped kinds (rss, google_news, bing_news, reddit_search, mastodon_tag).

``parse_feed`` turns RSS 0.9x/1.0/2.0 or Atom bytes into mentions with
feedparser. The bytes go in as a file object, never a string, because
feedparser treats a string as a URL or path it may open.

One poisoned entry costs that entry, never the feed (issue 10, section 5): a
numeric character reference to no character (``&#xD800;``, a lone surrogate,
or a number past U+10FFFF) makes feedparser's fallback parser raise for the
whole document, so the body is parsed once more with those references marked,
and the entries that held one are skipped.
"""

from __future__ import annotations

import calendar
import io
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from beacons.dedupe import canonical_url, link_problem
from beacons.errors import ParseError
from beacons.models import Mention
from beacons.text import one_line, sanitized_html_to_text

Skip = Callable[[str, str], None]

_CHARREF = re.compile(rb"&#(?:[xX]0*([0-9a-fA-F]+)|0*([0-9]+));")
# A private-use character marks where a bad reference was, so its entry can be found and
# skipped; a broken feed that already holds U+10FFFD loses those entries too.
POISON = "\U0010fffd"
_POISON_REF = b"&#x10FFFD;"


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
    parsed, poisoned = _parse_or_retry(body, response_headers, source_id)
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
        if poisoned and POISON in entry_json(entry):
            if skip:
                skip("bad_entry", f"entry {i}{_ident(entry)}: {_POISON_REASON}")
            continue
        try:
            mention = _mention(entry, source_id, now, link_of)
            if mention is not None and finish is not None:
                mention = finish(entry, mention)
        except Exception as exc:  # one odd entry must not cost the rest of the feed
            if skip:
                skip("bad_entry", f"entry {i}{_ident(entry)}: {type(exc).__name__}: {exc}")
            continue
        if mention is None:
            if skip:
                skip("empty_entry", f"entry {i}{_ident(entry)} has no title, text or link")
            continue
        mentions.append(mention)
    if skip:
        _report_bozo(parsed, skip)
    return mentions


_POISON_REASON = "a character reference to no character (a lone surrogate like &#xD800;, or past U+10FFFF)"


# feedparser's options (issue 16).
# - resolve_relative_uris=False: resolving rewrites every href and src inside an entry's HTML, which
#   beacons then strips to plain text; the entry's own link is resolved either way (against xml:base
#   and the feed URL). Title, text and URL come out identical (tests/test_perf.py, every fixture) for
#   18% less parse CPU. Only the stored raw copy keeps the feed's relative hrefs as written.
# - sanitize_html=True stays, though skipping it saves 30% of parse CPU. The stored raw entry is
#   untrusted HTML from anyone who can publish a feed; no page, API answer, CLI output or alert
#   shows it today (they show the plain text, autoescaped), but it sits in the database for
#   whatever reads it next (an export, a rescan, a future view), and a raw copy that holds
#   <script> or onerror= is one careless template away from stored XSS in the support team's
#   browser. The text fast path (text.sanitized_html_to_text) also relies on the sanitizer's
#   well-formed output; without it every entry would take the slower HTMLParser walk.
FEEDPARSER_OPTIONS: dict[str, bool] = {"sanitize_html": True, "resolve_relative_uris": False}


def _parse(body: bytes, response_headers: Mapping[str, str]) -> Any:
    return feedparser.parse(io.BytesIO(body), response_headers=response_headers, **FEEDPARSER_OPTIONS)


def _parse_or_retry(body: bytes, response_headers: Mapping[str, str], source_id: str) -> tuple[Any, bool]:
    """The parsed feed, and whether it took a second try with bad character references marked."""
    try:
        return _parse(body, response_headers), False
    except Exception as exc:  # feedparser's fallback parser raises from chr() and encode() on hostile bytes
        failure: Exception = exc
    clean = _sanitised(body)
    if clean is not None:
        try:
            return _parse(clean, response_headers), True
        except Exception as exc:
            failure = exc
    raise ParseError(
        f"not a readable feed: feedparser failed with {type(failure).__name__}: {str(failure)[:200]}",
        source_id=source_id,
    ) from failure


def _sanitised(body: bytes) -> bytes | None:
    """``body`` with each reference to a surrogate or past U+10FFFF replaced by POISON; None when there is none."""

    def mark(found: re.Match[bytes]) -> bytes:
        hex_digits, digits = found.group(1), found.group(2)
        if len(hex_digits or digits) > 16:  # far past U+10FFFF; int() of a huge number is refused or slow
            return _POISON_REF
        value = int(hex_digits, 16) if hex_digits else int(digits)
        return _POISON_REF if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF else found.group(0)

    clean = _CHARREF.sub(mark, body)
    return None if clean == body else clean


def _ident(entry: Mapping[str, Any]) -> str:
    """`` (id=...)`` naming an entry in a skip reason: its guid, else its link."""
    for key in ("id", "link"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return f" ({key}={value.strip()[:200].replace(POISON, '?')})"
    return ""


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
    problem = link_problem(link) if isinstance(link, str) else None
    if problem:
        raise ValueError(problem)
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
