"""Untrusted markup to plain text, with hard size limits.

Feed and API bodies carry HTML written by strangers. We keep only the text a
person would read: tags, scripts and styles go, entities are decoded, block
elements become line breaks, whitespace is folded, and the result is capped.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

MAX_TEXT_CHARS = 100_000  # a post longer than this is cut; the raw entry keeps the rest
MAX_TITLE_CHARS = 1_000

_SKIP = {"script", "style", "noscript", "template", "head", "iframe", "object", "svg", "math"}
_BLOCK = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "section",
    "article",
    "header",
    "footer",
    "hr",
    "dd",
    "dt",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")
_LINES = re.compile(r"\n\s*\n+")


class _Stripper(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.size = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth and self.size < MAX_TEXT_CHARS * 2:
            self.parts.append(data)
            self.size += len(data)


def html_to_text(markup: str | None, *, limit: int = MAX_TEXT_CHARS) -> str:
    """Plain text from an HTML fragment (or plain text), folded and capped at ``limit`` chars."""
    if not markup:
        return ""
    markup = _CONTROL.sub(" ", markup[: limit * 4])
    if "<" in markup or "&" in markup:
        parser = _Stripper()
        try:
            parser.feed(markup)
            parser.close()
            text = "".join(parser.parts)
        except Exception:  # HTMLParser is tolerant, but never let markup kill a poll
            text = unescape(re.sub(r"<[^>]*>", " ", markup))
    else:
        text = markup
    return clean(text, limit=limit)


# Markup as feedparser's sanitizer writes it: `<tag key="value" />`, values with <, > and "
# escaped, no scripts, styles or comments. Anything else that looks like a tag sends the
# whole fragment to the HTMLParser walk.
_SANITIZED_TAG = re.compile(r'<(/?)([a-zA-Z][^\t\n\f\r />"\'<=]*)((?: [^\s="<>/]+="[^"<>]*")*)(?: /)?>')
_TAG_LIKE = re.compile(r"<[a-zA-Z/!?]")
_NEEDS_PARSER = re.compile(r"<[!?]|<(?:" + "|".join(sorted(_SKIP)) + r")\b", re.IGNORECASE)


def sanitized_html_to_text(markup: str | None, *, limit: int = MAX_TEXT_CHARS) -> str:
    """``html_to_text`` for markup feedparser has already sanitized, about twice as fast.

    A regex walk over well-formed tags gives the same text as the HTMLParser walk
    (tests/test_rss.py checks it on the sanitizer's own output); markup it was not
    written for (a comment, a skipped element, a tag it cannot read) goes to
    ``html_to_text``. Feed entries are most of what beacons reads (bench/ingest.py).
    """
    if not markup:
        return ""
    markup = _CONTROL.sub(" ", markup[: limit * 4])
    if "<" not in markup and "&" not in markup:
        return clean(markup, limit=limit)
    if _NEEDS_PARSER.search(markup):
        return html_to_text(markup, limit=limit)
    parts: list[str] = []
    pos = 0
    for m in _SANITIZED_TAG.finditer(markup):
        parts.append(markup[pos : m.start()])
        parts.append("\n" if m.group(2).lower() in _BLOCK else "")
        pos = m.end()
    parts.append(markup[pos:])
    data = parts[::2]
    if any("<" in d and _TAG_LIKE.search(d) for d in data):
        return html_to_text(markup, limit=limit)
    parts[::2] = [unescape(d) if "&" in d else d for d in data]
    return clean("".join(parts)[: MAX_TEXT_CHARS * 2], limit=limit)


def clean(text: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    text = _CONTROL.sub(" ", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = _LINES.sub("\n\n", "\n".join(lines)).strip()
    return text[:limit]


def title_and_body(title: str | None, text: str | None) -> tuple[str, int]:
    """The one text a post is matched, classified and shown as, and where its body starts in it.

    Title and body joined by a blank line; a body that already starts with the title (many feeds
    repeat it) or an empty part is not doubled. Match spans and evidence offsets index into it, so
    the collectors, the corpus, the trainer and the page all build it here (issue 12).
    """
    title, text = title or "", text or ""
    if title and not text.startswith(title):
        return (f"{title}\n\n{text}", len(title) + 2) if text else (title, len(title))
    return text or title, 0


def full_text(title: str | None, text: str | None) -> str:
    """``title_and_body`` without the offset."""
    return title_and_body(title, text)[0]


def one_line(text: str | None, *, limit: int = MAX_TITLE_CHARS) -> str:
    return " ".join(html_to_text(text, limit=limit * 2).split())[:limit]
