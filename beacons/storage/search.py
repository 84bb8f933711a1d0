"""The inbox's filters that differ by backend: full-text search and intents (issue 13 §2), and SLA breach.

Full text covers a beacon's post (title, text, author) and its notes. SQLite keeps
it in the FTS5 table ``beacon_fts`` (rowid = beacon id), PostgreSQL in
``beacon_search`` (one ``tsvector`` per beacon, 'simple' configuration); triggers
of migration ``0009_beacon_search`` (SQLite) / ``0008_beacon_search`` (PostgreSQL) keep both current.
A search is the words of ``q``, every one required, each also matching as a
prefix (``rout`` finds "RouterX"), the same on both backends.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from beacons.errors import InvalidInput
from beacons.storage.types import Sla

MAX_QUERY_CHARS = 200
MAX_TERMS = 16
_WORD = re.compile(r"[^\W_]+")  # letters and digits: both tokenizers split on everything else


def search_terms(q: str) -> list[str]:
    """The words of a search, lower-cased; InvalidInput when there are none or too many."""
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidInput("q", f"at most {MAX_QUERY_CHARS} characters, got {len(q)}")
    terms = [w.lower() for w in _WORD.findall(q)]
    if not terms:
        raise InvalidInput("q", f"give at least one word to search for, got {q[:40]!r}")
    if len(terms) > MAX_TERMS:
        raise InvalidInput("q", f"at most {MAX_TERMS} words, got {len(terms)}")
    return terms


def search_condition(dialect: str, b: str, q: str) -> tuple[str, list[Any]]:
    """Beacon alias ``b`` is one whose post or notes hold every word of ``q``."""
    terms = search_terms(q)
    if dialect == "postgresql":
        query = " & ".join(f"{t}:*" for t in terms)
        return f"{b}.id IN (SELECT beacon_id FROM beacon_search WHERE doc @@ to_tsquery('simple', ?))", [query]
    query = " ".join(f'"{t}"*' for t in terms)
    return f"{b}.id IN (SELECT rowid FROM beacon_fts WHERE beacon_fts MATCH ?)", [query]


def intent_condition(dialect: str, b: str, intent: str) -> tuple[str, list[Any]]:
    """The classifier (or a person's label) gives ``intent`` a score of at least 0.5, as the page shows it."""
    if dialect == "postgresql":
        return f"COALESCE(({b}.intents_json::jsonb ->> ?)::float8, 0) >= 0.5", [intent]
    return f"COALESCE(CAST(json_extract({b}.intents_json, ?) AS REAL), 0) >= 0.5", [f'$."{intent}"']


def breach_expression(sla: Sla, now: datetime, b: str = "b") -> tuple[str, list[Any]]:
    """1 for an open beacon that has waited longer than its SLA at ``now``, else 0 (see ``Sla.limit_for``)."""
    parts: list[str] = []
    args: list[Any] = []
    team_names = [name for name, _ in sla.teams]
    for name, seconds in sla.teams:
        parts.append(f"({b}.queue != 'none' AND lower({b}.team) = lower(?) AND {b}.created_at < ?)")
        args += [name, now - timedelta(seconds=seconds)]
    for queue, seconds in sla.queues:
        cond = f"{b}.queue = ? AND {b}.created_at < ?"
        args += [queue, now - timedelta(seconds=seconds)]
        if team_names:
            cond += f" AND ({b}.team IS NULL OR lower({b}.team) NOT IN ({', '.join('lower(?)' for _ in team_names)}))"
            args += team_names
        parts.append(f"({cond})")
    if not parts:
        return "0", []
    return f"(CASE WHEN {b}.status IN ('new', 'claimed') AND ({' OR '.join(parts)}) THEN 1 ELSE 0 END)", args
