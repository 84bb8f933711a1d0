"""Any JSON API, configured rather than coded (issue 15).

The source names a URL template (``{query}``, ``{cursor}``, ``{since}``
placeholders), a JMESPath expression for the list of items and one JMESPath
expression per mention field, each evaluated on one item. An optional
``next_page`` expression reads the next page's token (put into ``{cursor}``)
or its whole URL from the response, so newest-first APIs page back to the
stored cursor like the built-in kinds. Headers come from the environment
(``headers_env: {Authorization: MY_TOKEN}``): their values are registered as
secrets, so no log, error or stored row shows them.

JMESPath (jmespath.org) is evaluated by the ``jmespath`` library; expressions
are compiled when the config loads, so a typo is a config error naming its key.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urljoin, urlsplit

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from beacons.errors import ParseError, SourceError
from beacons.models import Mention
from beacons.redact import public_url, register
from collectors import Poll, PollContext
from collectors import register as register_kind
from collectors._json import (
    BadItem,
    Page,
    Skip,
    cursor_time,
    finish,
    format_cursor,
    load_json,
    make_mention,
    page_back,
    parse_items,
    timestamp,
)

SERVICE = "the JSON API"
FIELDS = ("id", "title", "text", "url", "author", "published", "reach")
PLACEHOLDERS = ("query", "cursor", "since")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # an RFC 9110 token
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class Options:
    url: str  # the request, with {query}, {cursor} and {since} placeholders (percent-encoded when filled)
    items: str  # JMESPath: the list of items in a response, e.g. "data.children[].data"
    fields: dict[str, str]  # mention field -> JMESPath relative to one item
    next_page: str | None = None  # JMESPath: the next page's token (into {cursor}) or URL; none: one page
    first_cursor: str = ""  # what {cursor} is on the first page (Steam wants "*")
    query: str | None = None  # {query}; default: the brands' names, OR-ed
    headers_env: dict[str, str] = field(default_factory=dict)  # header -> NAME of the env var with its value
    max_pages: int = 5

    def validate(self) -> list[tuple[str, str]]:
        problems = _check_url(self.url)
        problems += _check_expression("items", self.items)
        for name, expression in self.fields.items():
            if name not in FIELDS:
                problems.append((f"fields.{name}", f"unknown field; known fields: {', '.join(FIELDS)}"))
            else:
                problems += _check_expression(f"fields.{name}", expression)
        if not any(k in self.fields for k in ("title", "text")):
            problems.append(
                ("fields", "map at least title or text to an expression (the words the brand matcher reads)")
            )
        if not any(k in self.fields for k in ("id", "url")):
            problems.append(("fields", "map id or url to an expression, so each item is stored once"))
        if self.next_page is not None:
            problems += _check_expression("next_page", self.next_page)
        for header, env_name in self.headers_env.items():
            if not _HEADER_NAME.fullmatch(str(header)):
                problems.append((f"headers_env.{header}", "is not a valid HTTP header name"))
            if not isinstance(env_name, str) or not _ENV_NAME.fullmatch(env_name):
                # never echo the value: it may be a token pasted by mistake
                problems.append(
                    (
                        f"headers_env.{header}",
                        "expected the NAME of an environment variable (like API_TOKEN), not a value",
                    )
                )
        if self.query is not None and not self.query.strip():
            problems.append(("query", "must not be empty; leave it out to search the brands' names"))
        if not 1 <= self.max_pages <= 50:
            problems.append(("max_pages", f"expected 1 to 50, got {self.max_pages}"))
        return problems


def _check_url(url: str) -> list[tuple[str, str]]:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(url) if name is not None]
    except ValueError as exc:
        return [("url", f"is not a valid template ({exc}); write a literal brace as {{{{ or }}}}")]
    unknown = [n for n in names if n not in PLACEHOLDERS]
    if unknown:
        return [
            ("url", f"unknown placeholder {{{unknown[0]}}}; known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
        ]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [("url", "expected an http(s) URL")]
    return []


def _check_expression(key: str, expression: str) -> list[tuple[str, str]]:
    try:
        compiled(expression)
    except JMESPathError as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__  # jmespath points at the column on a 2nd line
        return [(key, f"is not a valid JMESPath expression: {detail[:200]}")]
    return []


@cache
def compiled(expression: str) -> ParsedResult:
    return jmespath.compile(expression)


@register_kind("json_api", Options)
async def poll(ctx: PollContext, options: Options) -> Poll:
    since = cursor_time(ctx.state.cursor)
    headers = _headers(ctx, options)
    query = ""
    if "{query}" in options.url:
        query = options.query or ctx.default_query
        if not query.strip():
            raise SourceError(
                f"{ctx.source.id}: url has {{query}} but there is nothing to search for; set query: or add brands",
                source_id=ctx.source.id,
            )

    async def fetch_page(token: str | None) -> Page:
        if token is not None and token.startswith(("http://", "https://", "/")):
            url = urljoin(last_url[0], token)  # the API gave the next page's URL itself
        elif token is not None and "{cursor}" not in options.url:
            raise SourceError(
                f"{ctx.source.id}: next_page gave a token, not a URL, and url has no {{cursor}} placeholder to put "
                f"it in; add {{cursor}} to url (e.g. &page={{cursor}})",
                source_id=ctx.source.id,
            )
        else:
            url = render(options.url, query=query, cursor=options.first_cursor if token is None else token, since=since)
        fetched = await ctx.fetch(url, headers=headers, conditional=token is None)
        last_url[0] = fetched.url
        return parse_page(
            fetched.body,
            options=options,
            source_id=ctx.source.id,
            skip=ctx.skip,
            fetched_at=ctx.clock.now(),
            base=public_url(fetched.url),
        )

    last_url = [options.url]
    mentions = await page_back(ctx, fetch_page, since=since, max_pages=options.max_pages)
    return finish(ctx, mentions, since)


def render(template: str, *, query: str, cursor: str, since: datetime | None) -> str:
    """The URL template filled in, each value percent-encoded (a Steam cursor holds + / =)."""
    values = {"query": query, "cursor": cursor, "since": format_cursor(since) if since else ""}
    return template.format(**{k: url_quote(v, safe="") for k, v in values.items()})


def _headers(ctx: PollContext, options: Options) -> dict[str, str]:
    headers: dict[str, str] = {}
    for header, env_name in options.headers_env.items():
        value = ctx.env.get(env_name, "").strip()
        if not value:
            raise SourceError(
                f"{ctx.source.id}: headers_env.{header} names the environment variable {env_name}, which is not set "
                f"or empty; set it before starting beacons, or remove the header",
                source_id=ctx.source.id,
            )
        register(value)  # scrubbed from every log line and error from now on
        headers[header] = value
    return headers


def parse_page(
    body: bytes,
    *,
    options: Options,
    source_id: str,
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
    base: str | None = None,
) -> Page:
    """Pure: one response in, a page of mentions and the next page's token (or URL) out."""
    data = load_json(body, source_id=source_id, service=SERVICE)
    items = _search(options.items, data)
    if not isinstance(items, list):
        found = "nothing" if items is None else f"a JSON {type(items).__name__}"
        raise ParseError(
            f"items expression {options.items!r} found {found}, not a list; the API may have changed "
            f"(check it with `beacons sources test {source_id}`)",
            source_id=source_id,
        )
    now = fetched_at or datetime.now(UTC)
    host = (urlsplit(options.url).hostname or "").lower()
    base = base or options.url
    mentions = parse_items(
        items, lambda item: _mention(item, options, source_id, now, host, base), skip=skip, what="item"
    )
    token = _search(options.next_page, data) if options.next_page else None
    if isinstance(token, int | float) and not isinstance(token, bool):
        token = str(token)
    return Page(mentions, token if isinstance(token, str) and token.strip() else None)


def parse(
    body: bytes,
    *,
    source_id: str,
    options: Options,
    skip: Skip | None = None,
    fetched_at: datetime | None = None,
    base: str | None = None,
) -> list[Mention]:
    """Pure: JSON bytes and the source's expressions in, mentions out; an item with odd fields is skipped."""
    return parse_page(body, options=options, source_id=source_id, skip=skip, fetched_at=fetched_at, base=base).mentions


def _search(expression: str, data: Any) -> Any:
    try:
        return compiled(expression).search(data)
    except JMESPathError as exc:  # a function given the wrong type at run time, e.g. join() over a number
        raise BadItem(f"{expression!r} failed: {str(exc).splitlines()[0][:200]}") from exc


def _value(item: Any, options: Options, name: str) -> Any:
    expression = options.fields.get(name)
    return None if expression is None else _search(expression, item)


def _text(item: Any, options: Options, name: str) -> str | None:
    value = _value(item, options, name)
    if value is None:
        return None
    if isinstance(value, bool | list | dict):
        raise BadItem(f"field {name!r} ({options.fields[name]}) is a {type(value).__name__}, expected text")
    return str(value)


def _mention(item: Any, options: Options, source_id: str, now: datetime, host: str, base: str) -> Mention:
    if not isinstance(item, Mapping):
        raise BadItem(f"expected an object, got {type(item).__name__}")
    ident = _text(item, options, "id")
    link = _text(item, options, "url")
    if "id" in options.fields and not (ident and ident.strip()):
        raise BadItem(f"field 'id' ({options.fields['id']}) is missing or empty")
    if link is not None:
        link = urljoin(base, link.strip())
    published_raw = _value(item, options, "published")
    published = None if published_raw is None else timestamp(published_raw, "published")
    reach = _value(item, options, "reach")
    if isinstance(reach, str) and re.fullmatch(r"\d{1,18}", reach.strip()):
        reach = int(reach)
    return make_mention(
        item,
        source_id=source_id,
        fetched_at=now,
        url=link,
        guid=f"{host}:{ident}" if ident else f"{host}:{link}",
        title=_text(item, options, "title"),
        text=_text(item, options, "text"),
        author=_text(item, options, "author"),
        published_at=published,
        author_reach=int(reach)
        if isinstance(reach, int | float) and not isinstance(reach, bool) and abs(reach) < 2**62
        else None,
    )
