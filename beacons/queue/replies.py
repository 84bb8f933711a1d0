"""Saved replies (issue 13 §3): ``replies:`` templates filled in with a beacon's author, brand, product and link.

A template is plain text with ``{author}``, ``{brand}``, ``{product}`` and ``{link}``
placeholders (``{{`` and ``}}`` for literal braces). Filling one in never evaluates
anything: ``string.Formatter.parse`` splits the text and only those four names are
looked up, so ``{author.__class__}`` or ``{0}`` is a config error, not a surprise.
Using a reply adds the history note "replied with template NAME".
"""

from __future__ import annotations

from string import Formatter
from typing import TYPE_CHECKING

from beacons.errors import BeaconNotFound, InvalidInput
from beacons.models import Beacon
from beacons.queue.inputs import clean_name
from beacons.storage import Storage
from beacons.storage.base import utcnow

if TYPE_CHECKING:
    from beacons.config import ReplyTemplate

PLACEHOLDERS = ("author", "brand", "product", "link")
MAX_NAME = 60
MAX_TEXT = 5000


def _fields(text: str) -> list[str]:
    """The placeholder names of ``text``; ValueError for unbalanced braces."""
    return [name for _literal, name, _spec, _conv in Formatter().parse(text) if name is not None]


def template_problems(reply: ReplyTemplate) -> list[tuple[str, str]]:
    """(key, message) for each problem of a template: what ``beacons.config`` reports as ``replies[i].key``."""
    problems: list[tuple[str, str]] = []
    if not reply.name.strip() or len(reply.name) > MAX_NAME:
        problems.append(("name", f"expected a name of 1 to {MAX_NAME} characters, e.g. thanks"))
    if not reply.text.strip() or len(reply.text) > MAX_TEXT:
        problems.append(("text", f"expected 1 to {MAX_TEXT} characters of reply text"))
        return problems
    try:
        names = _fields(reply.text)
    except ValueError as exc:
        return [*problems, ("text", f"{exc}; write {{{{ and }}}} for a literal brace")]
    for name in names:
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            problems.append(("text", f"unknown placeholder {{{name[:40]}}}; known placeholders: {known}"))
    return problems


def render(template: ReplyTemplate, beacon: Beacon) -> str:
    """The template's text with the beacon's values ("" for a product the post did not name)."""
    values = {
        "author": beacon.author or "there",
        "brand": beacon.brand or "",
        "product": beacon.product or beacon.brand or "",
        "link": beacon.url or "",
    }
    out: list[str] = []
    for literal, name, _spec, _conv in Formatter().parse(template.text):
        out.append(literal)
        if name is not None:
            out.append(values.get(name, ""))
    return "".join(out)


def rendered(templates: tuple[ReplyTemplate, ...], beacon: Beacon) -> list[tuple[str, str]]:
    """(name, text) of every template filled in for ``beacon``: what each card shows."""
    return [(t.name, render(t, beacon)) for t in templates]


def reply(store: Storage, templates: tuple[ReplyTemplate, ...], beacon_id: int, by: str, name: object) -> str:
    """Fill in the template ``name`` for the beacon and record "replied with template NAME" in its history."""
    by = clean_name(by)
    chosen = next((t for t in templates if isinstance(name, str) and t.name == name), None)
    if chosen is None:
        known = ", ".join(t.name for t in templates) or "none (add replies: to config.yaml)"
        raise InvalidInput("template", f"no saved reply named {str(name)[:60]!r}; known: {known}")
    beacon = store.get_beacon(beacon_id)
    if beacon is None:
        raise BeaconNotFound(beacon_id)
    text = render(chosen, beacon)
    store.add_note(beacon_id, by, f"replied with template {chosen.name}", now=utcnow())
    return text
