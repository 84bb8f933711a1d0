"""Shared by the search kinds: JSON in, mentions out, pages fetched back to a cursor.

Not a collector (the underscore keeps it out of the registry). The pieces:

- ``load_json`` and ``items_of`` turn a body into the list of results, or raise
  ``ParseError`` for what is not the documented JSON (an HTML error page, a
  changed top level), which the pipeline counts as a failed poll.
- ``req``/``opt``/``timestamp`` read one result's fields; ``parse_items``
  builds a mention per result and skips a result whose fields are missing,
  null or of the wrong type with a logged reason (``ctx.skip``), so a schema
  change costs that result, never the source.
- ``page_back`` fetches newest-first pages until one reaches the stored cursor
  (or there is no next page, or ``max_pages``); a first poll reads one page.
- ``finish`` returns the ``Poll`` with the new cursor: the newest result's
  time as ISO 8601 UTC, persisted by the pipeline in ``sources.cursor``.
- ``auth_headers`` reads a token from the environment variable *named* in the
  config; the token goes in a header and nowhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from beacons.dedupe import canonical_url, link_problem
from beacons.errors import ParseError, SourceError
from beacons.log import get_logger
from beacons.models import Brand, Mention
from beacons.redact import public_url
from beacons.text import html_to_text, one_line
from collectors import Poll, PollContext

log = get_logger("collectors")

Skip = Callable[[str, str], None]
FUTURE_SKEW = timedelta(minutes=10)  # a cursor never moves past "now" by more than this
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


class BadItem(ValueError):
    """One result lacks a documented field or has it in the wrong type; it is skipped."""


# -- bodies ----------------------------------------------------------------


def load_json(body: bytes, *, source_id: str | None, service: str) -> Any:
    """Decode a JSON body; ``ParseError`` naming what came instead."""
    head = body[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise ParseError(
            f"got an HTML page, not {service} JSON (an error or login page, or a wrong base_url?)", source_id=source_id
        )
    if head.startswith((b"<?xml", b"<rss", b"<feed")):
        raise ParseError(f"got XML, not {service} JSON (check the source kind and base_url)", source_id=source_id)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"{service} sent a body that is not JSON: {str(exc)[:200]}", source_id=source_id) from exc


def items_of(data: Any, key: str, *, source_id: str | None, service: str) -> list[Any]:
    """``data[key]`` as a list; ``ParseError`` when the top level is not what the service documents."""
    if not isinstance(data, dict):
        raise ParseError(
            f"{service} answered a JSON {_type(data)}, expected an object with {key!r}", source_id=source_id
        )
    value = data.get(key)
    if not isinstance(value, list):
        found = "missing" if value is None else f"a {_type(value)}"
        raise ParseError(
            f"{service} response has no {key!r} list ({found}); the API may have changed", source_id=source_id
        )
    return value


def error_body(exc: BaseException) -> bytes:
    """The first bytes of an HTTP error response, kept by ``beacons.fetch`` (b"" when none)."""
    body = getattr(exc, "body", b"")
    return body if isinstance(body, bytes) else b""


# -- fields ----------------------------------------------------------------


def _type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def req(obj: Any, key: str, kind: type | tuple[type, ...] = str) -> Any:
    """A required field: missing, null or the wrong type raises ``BadItem``."""
    if not isinstance(obj, Mapping):
        raise BadItem(f"expected an object, got {_type(obj)}")
    if key not in obj:
        raise BadItem(f"missing field {key!r}")
    value = obj[key]
    if value is None:
        raise BadItem(f"field {key!r} is null")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise BadItem(f"field {key!r} is {_type(value)}, expected {' or '.join(_type(k()) for k in kinds)}")
    if isinstance(value, str) and str in kinds and not value.strip():
        raise BadItem(f"field {key!r} is empty")
    return value


def opt(obj: Any, key: str, kind: type | tuple[type, ...] = str) -> Any:
    """An optional field: None when missing, null or of an unexpected type (it never costs a result)."""
    if not isinstance(obj, Mapping):
        return None
    value = obj.get(key)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if value is None or (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        return None
    return value


def opt_int(obj: Any, key: str) -> int | None:
    value = opt(obj, key, (int, float))
    return int(value) if value is not None and value == value and abs(value) < 2**62 else None


def timestamp(value: Any, key: str = "date") -> datetime:
    """An aware UTC datetime from epoch seconds or an ISO 8601 string; ``BadItem`` otherwise."""
    if isinstance(value, bool) or value is None:
        raise BadItem(f"field {key!r} is {_type(value)}, expected a time")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise BadItem(f"field {key!r} is not a valid epoch time: {value!r}") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.fromisoformat(text)
        except ValueError as exc:
            raise BadItem(f"field {key!r} is not an ISO 8601 time: {value[:40]!r}") from exc
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    raise BadItem(f"field {key!r} is {_type(value)}, expected a time")


# -- mentions --------------------------------------------------------------


def make_mention(
    item: Any,
    *,
    source_id: str,
    fetched_at: datetime,
    url: str | None,
    guid: str,
    title: str | None,
    text: str | None,
    author: str | None,
    published_at: datetime | None,
    author_reach: int | None = None,
    lang: str | None = None,
) -> Mention:
    """A ``Mention`` from one result, its raw JSON kept; title and text are untrusted HTML.

    A link that cannot be parsed (``http://[::1/evil``) makes the result a ``BadItem``.
    """
    problem = link_problem(url)
    if problem:
        raise BadItem(problem)
    return Mention(
        source_id=source_id,
        url=canonical_url(url) if url else None,
        guid=guid[:2000],
        title=one_line(title or ""),
        text=html_to_text(text or ""),
        author=one_line(author or "", limit=200) or None,
        published_at=published_at,
        fetched_at=fetched_at,
        raw=json.dumps(item, ensure_ascii=False, sort_keys=True),
        author_reach=author_reach,
        lang=lang[:35] if lang else None,
    )


def parse_items(
    items: Iterable[Any], build: Callable[[Any], Mention], *, skip: Skip | None, what: str = "result"
) -> list[Mention]:
    """``build`` each item; an item that raises is skipped with its reason, the rest are kept."""
    mentions: list[Mention] = []
    for i, item in enumerate(items):
        try:
            mention = build(item)
        except (BadItem, KeyError, TypeError, ValueError, AttributeError) as exc:
            if skip:
                skip("bad_entry", f"{what} {i}{_ident(item)}: {exc}")
            continue
        if not (mention.title or mention.text or mention.url):
            if skip:
                skip("empty_entry", f"{what} {i}{_ident(item)} has no title, text or link")
            continue
        mentions.append(mention)
    return mentions


def _ident(item: Any) -> str:
    if isinstance(item, Mapping):
        for key in ("objectID", "id", "question_id", "uri", "name"):
            value = item.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return f" ({key}={str(value)[:80]})"
    return ""


# -- cursor and paging -----------------------------------------------------


def cursor_time(cursor: str | None) -> datetime | None:
    """The stored cursor as a time (ISO 8601 or epoch seconds); None when absent or unreadable."""
    if not cursor:
        return None
    text = cursor.strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), tz=UTC)
        return timestamp(text, "cursor")
    except (BadItem, OverflowError, OSError, ValueError):
        log.warning("collector.cursor_ignored", cursor=text[:60], reason="not a time; reading from the newest page")
        return None


def format_cursor(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def is_newer(mention: Mention, since: datetime | None) -> bool:
    """Kept when newer than the cursor (a result without a date is kept; dedupe sees it)."""
    return since is None or mention.published_at is None or mention.published_at > since


@dataclass(slots=True)
class Page:
    """One page of results and the service's token for the next page (None: last page)."""

    mentions: list[Mention]
    next: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


async def page_back(
    ctx: PollContext,
    fetch_page: Callable[[str | None], Awaitable[Page]],
    *,
    since: datetime | None,
    max_pages: int,
) -> list[Mention]:
    """Newest-first pages until one reaches ``since``; only results newer than it are returned.

    Stops at a page holding a result at or older than the cursor, an empty
    page, no next page, a service backoff (``ctx.retry_after``) or
    ``max_pages``. With no cursor (a first poll) it reads one page only, so a
    new source does not read history.
    """
    limit = max(1, max_pages) if since is not None else 1
    mentions: list[Mention] = []
    token: str | None = None
    for number in range(limit):
        page = await fetch_page(token)
        mentions.extend(m for m in page.mentions if is_newer(m, since))
        reached = since is not None and any(
            m.published_at is not None and m.published_at <= since for m in page.mentions
        )
        if reached or not page.mentions or page.next is None or ctx.retry_after is not None:
            return mentions
        token = page.next
        if since is not None and number == limit - 1:
            log.warning(
                "collector.gap",
                source=ctx.source.id,
                pages=limit,
                reason=f"{limit} pages (max_pages) did not reach the cursor {format_cursor(since)}; older results in between are not read",
            )
    return mentions


async def read_whole_feed(
    ctx: PollContext,
    url: str,
    parse: Callable[..., list[Mention]],
    *,
    params: Mapping[str, str | int] | None = None,
) -> Poll:
    """A search feed with no paging, read whole each poll (conditional GET): keep what is newer than the cursor.

    ``parse(body, source_id=, headers=, url=, skip=)`` is the kind's pure parser.
    """
    since = cursor_time(ctx.state.cursor)
    fetched = await ctx.fetch(url, params=params)
    # The base for relative links is stored with each raw entry: no feed credentials in it (issue 10).
    url = public_url(fetched.url)
    mentions = parse(fetched.body, source_id=ctx.source.id, headers=fetched.headers, url=url, skip=ctx.skip)
    return finish(ctx, [m for m in mentions if is_newer(m, since)], since)


def finish(ctx: PollContext, mentions: Sequence[Mention], since: datetime | None) -> Poll:
    """The poll with duplicates (same guid) dropped and the cursor moved to the newest result."""
    seen: set[str] = set()
    unique: list[Mention] = []
    for mention in mentions:
        key = mention.guid or mention.url or mention.raw
        if key not in seen:
            seen.add(key)
            unique.append(mention)
    ceiling = datetime.now(UTC) + FUTURE_SKEW  # one post dated in the future must not hide the next ones
    times = [m.published_at for m in unique if m.published_at is not None and m.published_at <= ceiling]
    newest = max(times, default=None)
    if newest is None or (since is not None and newest <= since):
        return Poll(unique, cursor=None)  # None: the pipeline keeps the stored cursor
    return Poll(unique, cursor=format_cursor(newest))


# -- requests --------------------------------------------------------------


def auth_headers(
    ctx: PollContext, env_name: str | None, *, key: str = "token_env", scheme: str = "Bearer"
) -> dict[str, str]:
    """``Authorization`` from the env var named by ``key``; a missing variable is a clear error (no value shown)."""
    if not env_name:
        return {}
    token = ctx.env.get(env_name, "").strip()
    if not token:
        raise SourceError(
            f"{ctx.source.id}: {key} names the environment variable {env_name}, which is not set or empty; "
            f"set it before starting beacons, or remove {key}",
            source_id=ctx.source.id,
        )
    return {"Authorization": f"{scheme} {token}"}


def require_query(ctx: PollContext, query: str) -> str:
    """The query to send; a clear error when there is none (no ``query`` and no brands)."""
    if not query.strip():
        raise SourceError(
            f"{ctx.source.id}: nothing to search for; set query: on the source or add brands with names",
            source_id=ctx.source.id,
        )
    return query


def brand_terms(brands: Sequence[Brand]) -> list[str]:
    """Every brand's names, aliases and products, in order, once."""
    return list(dict.fromkeys(t for b in brands for t in b.terms() if t.strip()))


def brand_excludes(brands: Sequence[Brand]) -> list[str]:
    return list(dict.fromkeys(e for b in brands for e in b.exclude if e.strip()))


def quote(term: str) -> str:
    """A phrase in double quotes when it has a space or punctuation a search engine would split on."""
    term = term.replace('"', "")
    return f'"{term}"' if re.search(r"[^\w.]", term) else term


def check_common(options: Any) -> list[tuple[str, str]]:
    """Validation every search kind shares: base_url, query, max_pages, token_env."""
    problems: list[tuple[str, str]] = []
    base = getattr(options, "base_url", None)
    if base is not None:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(("base_url", f"expected an http(s) URL, got {base!r}"))
        elif parts.query or parts.fragment:
            problems.append(("base_url", "must not have a query or fragment; put search options in their own keys"))
    query = getattr(options, "query", None)
    if query is not None and not query.strip():
        problems.append(("query", "must not be empty; leave it out to search the brands' names"))
    max_pages = getattr(options, "max_pages", None)
    if max_pages is not None and not 1 <= max_pages <= 50:
        problems.append(("max_pages", f"expected 1 to 50, got {max_pages}"))
    env_name = getattr(options, "token_env", None)
    if env_name is not None and not _ENV_NAME.fullmatch(env_name):
        # never echo the value: it may be a token pasted by mistake
        problems.append(
            ("token_env", "expected the NAME of an environment variable (like GITHUB_TOKEN), not the token itself")
        )
    return problems


def check_range(options: Any, key: str, low: int, high: int) -> list[tuple[str, str]]:
    value = getattr(options, key)
    return [] if low <= value <= high else [(key, f"expected {low} to {high}, got {value}")]


def base(url: str) -> str:
    return url.rstrip("/")
