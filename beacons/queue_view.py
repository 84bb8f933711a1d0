"""How ``beacons queue list`` and ``queue show`` print for people: aligned columns, no Python reprs.

Names that do not fit a column end in an ellipsis (``…``), never cut silently:
``--wide`` prints them whole, and ``--format json`` gives every value in full.
The search behind ``--q`` is the storage layer's full-text search (``QueueFilter.q``:
SQLite FTS5, PostgreSQL full-text), the one the page and the API use, so a search
matches notes too and a thread collapses the same way everywhere (issue 13 §5).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TextIO

from beacons.queue import Entry, QueueFilter, iter_entries
from beacons.storage import Storage

ELLIPSIS = "…"


def fit(value: str | None, width: int | None) -> str:
    """``value`` in at most ``width`` characters; a cut value ends in an ellipsis. ``None`` width: whole."""
    text = " ".join((value or "-").split())
    if width is None or len(text) <= width:
        return text
    return text[: max(0, width - 1)] + ELLIPSIS


def search_entries(store: Storage, f: QueueFilter, *, q: str | None, assignee: str | None, limit: int) -> list[Entry]:
    """The first ``limit`` entries of ``f`` held by ``assignee`` that match the full-text search ``q``.

    ``q`` goes to the storage layer (every word in the title, text, author or notes, prefixes match),
    exactly as ``GET /api/beacons?q=`` and the page's search box; ``assignee`` is compared in any case.
    """
    entries: Iterable[Entry] = iter_entries(store, replace(f, limit=min(limit, 500), q=q or None))
    if assignee:
        who = assignee.casefold()
        entries = (e for e in entries if (e.beacon.assignee or "").casefold() == who)
    return list(itertools.islice(entries, limit))


def _columns(wide: bool) -> list[tuple[str, int | None, str]]:
    """(header, width, alignment) of each column; ``None`` width on the last one (the title) or when wide."""
    widths = [
        ("id", 5, ">"),
        ("queue", 8, "<"),
        ("pri", 3, ">"),
        ("status", 9, "<"),
        ("assignee", 12, "<"),
        ("sentiment", 9, "<"),
        ("brand/product", 22, "<"),
        ("source", 18, "<"),
        ("thread", 6, "<"),
        ("title", 70, "<"),
    ]
    return [(h, None if wide else w, a) for h, w, a in widths]


def _row(entry: Entry) -> list[str]:
    b = entry.beacon
    what = (b.brand + (f"/{b.product}" if b.product else "")) if b.brand else "-"
    return [
        str(b.id),
        b.queue,
        str(b.priority),
        b.status,
        b.assignee or "-",
        b.sentiment,
        what,
        b.source,
        f"+{entry.related}" if entry.related else "",
        b.title or b.text,
    ]


def print_entries(entries: Sequence[Entry], out: TextIO, *, wide: bool = False) -> None:
    """The table of ``queue list``: a thread shows once, with ``+N`` for its other posts (as on the page)."""
    if not entries:
        print("(no beacons)", file=out)
        return
    columns = _columns(wide)
    rows = [[fit(v, w) for v, (_, w, _) in zip(_row(e), columns, strict=True)] for e in entries]
    if wide:  # every column as wide as its longest value, nothing cut
        sizes = [max(len(h), *(len(r[i]) for r in rows)) for i, (h, _, _) in enumerate(columns)]
    else:
        sizes = [w or 0 for _, w, _ in columns]
    for cells in [[h for h, _, _ in columns], *rows]:
        line = " ".join(f"{c:{a}{s}}" for c, (_, _, a), s in zip(cells[:-1], columns[:-1], sizes[:-1], strict=True))
        print(f"{line} {cells[-1]}".rstrip(), file=out)
    if any(ELLIPSIS in c for r in rows for c in r):
        print(f"({ELLIPSIS} marks a cut value: --wide prints them whole, --format json gives every field)", file=out)


def _number(value: float) -> str:
    return f"{value:.2f}"


def human(value: Any) -> str:
    """A stored value as a person reads it: ``-`` for none, ``key value, ...`` for a mapping, never a repr."""
    if value is None or value == "" or value == {} or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        if set(value) >= {"text", "start", "end"}:  # an evidence passage
            return f"“{' '.join(str(value['text']).split())}”"
        return ", ".join(f"{k} {human(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value)
    return " ".join(str(value).split())


SHOW_FIELDS = (
    ("id", "id"),
    ("queue", "queue"),
    ("status", "status"),
    ("assignee", "assignee"),
    ("priority", "priority"),
    ("team", "team"),
    ("brand", "brand"),
    ("product", "product"),
    ("title", "title"),
    ("url", "url"),
    ("source", "source"),
    ("author", "author"),
    ("author reach", "author_reach"),
    ("published", "published_at"),
    ("fetched", "fetched_at"),
    ("created", "created_at"),
    ("updated", "updated_at"),
    ("sentiment", "sentiment"),
    ("sentiment score", "sentiment_score"),
    ("scores", "scores"),
    ("intents", "intents"),
    ("evidence", "evidence"),
    ("why", "reason"),
    ("thread", "thread_id"),
    ("related", "related"),
)


def show_lines(detail: dict[str, Any]) -> Iterator[str]:
    """``queue show`` for people: one aligned ``label  value`` line per field, then text, thread, notes, history."""
    width = max(len(label) for label, _ in SHOW_FIELDS)
    for label, key in SHOW_FIELDS:
        if key in detail:
            yield f"{label:>{width}}  {human(detail[key])}"
    yield ""
    yield from (detail.get("text") or "").splitlines() or ["-"]
    thread = detail.get("thread") or []
    if thread:
        yield ""
        for t in thread:
            yield f"same problem: #{t['id']:<6} {t['status']:<9} {human(t.get('assignee')):<12} {fit(t.get('title'), 70)}"
    notes = detail.get("notes") or []
    if notes:
        yield ""
        yield "Notes:"
        for n in notes:
            yield f"  {n['at']}  {n['author']}: {n['text']}"
    history = detail.get("history") or []
    if history:
        yield ""
        yield "History:"
        for e in history:
            change = []
            if e.get("from_status") != e.get("to_status") and e.get("to_status"):
                change.append(f"{e.get('from_status') or '-'} -> {e['to_status']}")
            if e.get("from_queue") != e.get("to_queue") and e.get("to_queue"):
                change.append(f"queue {e.get('from_queue') or '-'} -> {e['to_queue']}")
            if e.get("assignee") and e.get("action") in ("claim", "reassign"):
                change.append(f"assignee {e['assignee']}")
            if e.get("detail"):
                change.append(str(e["detail"]))
            yield f"  {e['at']}  {e['actor']:<12} {e['action']:<9} {'; '.join(change)}".rstrip()


def dump_json(value: Any, out: TextIO) -> None:
    json.dump(value, out, ensure_ascii=False, indent=2)
    print(file=out)
