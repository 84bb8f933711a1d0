"""Shared helpers of the foundation tests: the Acme brand, a feed builder, hostile bodies.

Feeds are written field for field in RSS 2.0 (https://www.rssboard.org/rss-specification);
hostile bodies are generated here so no big file is committed.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from xml.sax.saxutils import escape

import httpx

from beacons.classify import RulesClassifier
from beacons.fetch import FetchLimits
from beacons.models import Brand, Product
from beacons.pipeline import Pipeline
from beacons.store import Store

ACME = Brand(
    name="Acme",
    aliases=("Acme Corp", "acme.com"),
    handles=("@acme", "@AcmeSupport"),
    products=(Product("RouterX", ("Router X", "RX-200")), Product("Acme Cloud")),
    exclude=("acme looney tunes",),
)
BRANDS_YAML: list[dict[str, Any]] = [
    {
        "name": "Acme",
        "aliases": ["Acme Corp", "acme.com"],
        "handles": ["@acme", "@AcmeSupport"],
        "products": [{"name": "RouterX", "aliases": ["Router X", "RX-200"]}, {"name": "Acme Cloud"}],
        "exclude": ["acme looney tunes"],
    }
]
FAST_FETCH: dict[str, Any] = {"per_host_delay": "0s", "timeout": "5s"}
BASE_TIME = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

SUPPORT_TEXTS = (
    "My Acme RouterX keeps dropping wifi every night, is anyone else seeing this?",
    "Charged twice for Acme Cloud this month and support closed my ticket. I want a refund.",
    "@AcmeSupport my RouterX is not working since the update, any fix?",
)
ADVOCACY_TEXTS = (
    "Six months with the Acme RouterX: coverage is excellent, I would recommend it to anyone.",
    "Thank you to the Acme support team, you are awesome.",
)
NOISE_TEXTS = (
    "Sourdough notes: the starter finally behaves after a week of feeding.",
    "Local council approves the new cycle lane on the high street.",
)


def rss_item(
    n: int,
    text: str,
    *,
    title: str | None = None,
    link: str | None = "auto",
    guid: str | None = "auto",
    when: datetime | None = None,
    author: str | None = "reader@example.org (A Reader)",
) -> str:
    """One RSS 2.0 <item>; ``None`` leaves an element out."""
    parts = [f"<title>{escape(title if title is not None else text[:60])}</title>"]
    if link is not None:
        parts.append(f"<link>{escape(link if link != 'auto' else f'http://feeds.example.org/post/{n}')}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{escape(guid if guid != "auto" else f"post-{n}")}</guid>')
    parts.append(f"<pubDate>{format_datetime(when or BASE_TIME - timedelta(minutes=n), usegmt=True)}</pubDate>")
    if author is not None:
        parts.append(f"<author>{escape(author)}</author>")
    parts.append(f"<description>{escape(text)}</description>")
    return "<item>" + "".join(parts) + "</item>"


def rss_feed(items: Iterable[str], *, title: str = "Example feed", encoding: str = "utf-8") -> bytes:
    """An RSS 2.0 document around ``items`` (strings from ``rss_item``)."""
    head = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://feeds.example.org/</link>"
        "<description>Posts</description>"
    )
    return (head + "".join(items) + "</channel></rss>\n").encode(encoding)


def texts_feed(texts: Sequence[str], *, start: int = 0, host: str = "feeds.example.org") -> bytes:
    """A feed with one item per text, numbered from ``start``."""
    return rss_feed(rss_item(start + i, t, link=f"http://{host}/post/{start + i}") for i, t in enumerate(texts))


@functools.cache
def rules_classifier() -> RulesClassifier:
    """One shared RulesClassifier: it holds no state between calls, and VADER takes a while to load."""
    return RulesClassifier()


def make_pipeline(
    store: Store, client: httpx.AsyncClient, *, brands: Sequence[Brand] = (ACME,), limits: FetchLimits | None = None
) -> Pipeline:
    """A Pipeline with the rules classifier and no politeness delay."""
    return Pipeline(
        store=store,
        client=client,
        classifier=rules_classifier(),
        brands=brands,
        limits=limits or FetchLimits(timeout=30.0),
    )


def rss_source_config(sources: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    """A config mapping with the Acme brand and one rss source per (id, url)."""
    return {
        "brands": BRANDS_YAML,
        "sources": [{"id": sid, "kind": "rss", "url": url, "interval": "1s"} for sid, url in sources.items()],
        "classifier": {"model": "rules"},
        "fetch": dict(FAST_FETCH),
        **extra,
    }


# -- hostile bodies ----------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n'
        % (i, b"".join(b"&lol%s;" % (b"" if i == 2 else str(i - 1).encode()) for _ in range(10)))
        for i in range(2, 10)
    )
    + b']>\n<rss version="2.0"><channel><title>t</title><item><title>Acme RouterX is down &lol9;</title>'
    b"<link>http://feeds.example.org/laughs</link><description>Acme RouterX is down again &lol9;</description></item></channel></rss>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<rss version="2.0"><channel><title>t</title><item><title>Acme RouterX &xxe;</title>'
    b"<link>http://feeds.example.org/xxe</link><description>Acme RouterX is broken &xxe;</description></item></channel></rss>"
)
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Acme</title></head><body><h1>Acme RouterX</h1><p>Buy now</p></body></html>"
)
JSON_BODY = b'{"items": [{"title": "Acme RouterX is broken", "url": "http://feeds.example.org/j"}]}'


def gzip_bomb(inflated: int = 64 * 1024 * 1024) -> bytes:
    """A small gzip member that inflates to ``inflated`` zero bytes (about 1000:1)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    out = [comp.compress(block) for _ in range(inflated // len(block))]
    out.append(comp.flush())
    return b"".join(out)


def stream_handler(total: int, *, chunk: int = 64 * 1024, content_length: bool = False) -> Any:
    """A FeedServer handler that streams ``total`` bytes of XML-ish filler without holding them."""

    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "application/rss+xml")
        if content_length:
            req.send_header("Content-Length", str(total))
        else:
            req.send_header("Connection", "close")
            req.close_connection = True
        req.end_headers()
        block = b"<!-- filler -->" * (chunk // 15)
        sent = 0
        try:
            while sent < total:
                piece = block[: total - sent]
                req.wfile.write(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return handle


def raw_handler(status: int, headers: Mapping[str, str], body: bytes = b"") -> Any:
    """A FeedServer handler answering exactly ``status``, ``headers`` and ``body``."""

    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        for k, v in headers.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    return handle


def gzip_bytes(body: bytes) -> bytes:
    return gzip.compress(body)
