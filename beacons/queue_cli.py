"""``beacons queue claim/resolve/dismiss/reroute/reopen/reassign/undo/relabel/note/export``, a fuller ``queue show``, and ``beacons route --explain``."""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO, TypeVar

from beacons.cli import EXIT_ERROR, EXIT_OK, command, load, parser_hook
from beacons.models import Beacon

T = TypeVar("T")

EXPORT_FIELDS = (
    "id",
    "queue",
    "status",
    "priority",
    "brand",
    "product",
    "team",
    "assignee",
    "source",
    "author",
    "published_at",
    "created_at",
    "updated_at",
    "sentiment",
    "sentiment_score",
    "title",
    "text",
    "url",
    "thread_id",
    "reason",
)


def _who() -> str:
    return os.environ.get("BEACONS_USER") or getpass.getuser()


def _common(p: argparse.ArgumentParser, *, by: bool = True) -> None:
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="config file (default: $BEACONS_CONFIG, ./config.yaml, then the packaged default)",
    )
    if by:
        p.add_argument(
            "--by",
            default=None,
            help="who is doing this, for the history (default: $BEACONS_USER, else your login name)",
        )
        p.add_argument("--format", choices=["text", "json"], default="text")


@parser_hook
def _add_parsers(groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]]) -> None:
    q = groups["queue"]
    p = q.add_parser("claim", help="take a new beacon (exactly one of two people claiming at once gets it)")
    _common(p)
    p.add_argument("id", type=int)
    p.add_argument("--assignee", help="claim it for someone else (default: --by)")
    for name, help_text in (("resolve", "mark a beacon handled"), ("dismiss", "mark a beacon as needing nothing")):
        p = q.add_parser(name, help=help_text)
        _common(p)
        p.add_argument("id", type=int)
        p.add_argument("--note", help="a note to keep with it")
    p = q.add_parser(
        "reroute", help="move a beacon to another queue; kept as a label for `beacons train --with-feedback`"
    )
    _common(p)
    p.add_argument("id", type=int)
    p.add_argument("queue", choices=["support", "advocacy", "none"])
    p.add_argument("--note", help="why (kept as a note)")
    p = q.add_parser(
        "reopen",
        help="take a resolved or dismissed beacon back to new (the history keeps what it was)",
        description="Reopen a resolved or dismissed beacon: it goes back to new and unassigned, so it shows in the "
        "queue again; claim it to take it. Example: beacons queue reopen 42 --note 'customer wrote back'",
    )
    _common(p)
    p.add_argument("id", type=int, help="the beacon's id, e.g. 42")
    p.add_argument("--note", help="why (kept as a note), e.g. --note 'customer wrote back'")
    p = q.add_parser(
        "undo",
        help="undo your last claim, resolve, dismiss or re-route of a beacon",
        description="Put a beacon back as it was before your last claim, resolve, dismiss or re-route of it. "
        "Refused when someone else acted on it since, or when it was undone already. Both the action and the undo "
        "stay in its history. Example: beacons queue undo 42 --by alice",
    )
    _common(p)
    p.add_argument("id", type=int, help="the beacon's id, e.g. 42")
    p = q.add_parser(
        "reassign",
        help="give a claimed beacon to someone else",
        description="Give a claimed beacon (and the rest of its thread its holder held) to NAME. When users exist "
        "(beacons users add), NAME must be an active user. Example: beacons queue reassign 42 bob",
    )
    _common(p)
    p.add_argument("id", type=int, help="the beacon's id, e.g. 42")
    p.add_argument("name", metavar="NAME", help="who takes it over, e.g. bob")
    p.add_argument("--note", help="why (kept as a note), e.g. --note 'bob knows the billing system'")
    p = q.add_parser(
        "relabel",
        help="correct a beacon's sentiment, intents and/or queue; kept as labels for `beacons train --with-feedback`",
        description="Correct what the classifier said about a beacon. Each correction is stored as a training label: "
        "`beacons train --with-feedback` learns the queue, the sentiment and the intents from them.",
    )
    _common(p)
    p.add_argument("id", type=int)
    p.add_argument("--queue", choices=["support", "advocacy", "none"], help="move it to this queue (a re-route)")
    p.add_argument("--sentiment", choices=["negative", "neutral", "positive"], help="the sentiment toward the brand")
    p.add_argument(
        "--intent",
        action="append",
        metavar="INTENT",
        help="an intent the post has (repeat for several; replaces the stored intents), e.g. bug_outage",
    )
    p.add_argument("--no-intents", action="store_true", help="the post has none of the intents")
    p = q.add_parser("note", help="add a note to a beacon")
    _common(p)
    p.add_argument("id", type=int)
    p.add_argument("text")
    p = q.add_parser("export", help="every matching beacon as CSV or JSON")
    _common(p, by=False)
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument(
        "--queue", choices=["support", "advocacy", "none", "all"], help="one queue (default: support and advocacy)"
    )
    p.add_argument("--status", choices=["new", "claimed", "resolved", "dismissed", "open"])
    p.add_argument("--brand")
    p.add_argument("--product")
    p.add_argument("--team")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    r = groups[""].add_parser(
        "route",
        help="explain how a stored beacon was routed",
        description="Re-run routing for a stored beacon with the current routing: rules and print each rule considered and the decision.",
    )
    _common(r, by=False)
    r.add_argument("--explain", type=int, metavar="ID", required=True, help="beacon id")
    r.add_argument("--format", choices=["text", "json"], default="text")


def _summary(b: Beacon, out: TextIO) -> None:
    who = f" ({b.assignee})" if b.assignee and b.status != "new" else ""
    print(f"#{b.id} {b.queue} {b.status}{who} priority {b.priority}: {(b.title or b.text)[:80]}", file=out)


def _act(args: argparse.Namespace, fn: Any, **kw: Any) -> int:
    """Run ``fn(store, id, by, **kw)`` and print the result."""
    from beacons.storage import Storage

    config = load(args)
    store = Storage(config.database)
    try:
        result = fn(store, args.id, args.by or _who(), **kw)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(result if isinstance(result, dict) else result.to_json(), ensure_ascii=False, indent=2))
    elif isinstance(result, Beacon):
        _summary(result, sys.stdout)
    else:
        print(f"note {result['id']} added to #{args.id}")
    return EXIT_OK


@command("queue claim")
def cmd_claim(args: argparse.Namespace) -> int:
    from beacons.queue import claim

    return _act(args, claim, assignee=args.assignee)


@command("queue resolve")
def cmd_resolve(args: argparse.Namespace) -> int:
    from beacons.queue import resolve

    return _act(args, resolve, note=args.note)


@command("queue dismiss")
def cmd_dismiss(args: argparse.Namespace) -> int:
    from beacons.queue import dismiss

    return _act(args, dismiss, note=args.note)


@command("queue reroute")
def cmd_reroute(args: argparse.Namespace) -> int:
    from beacons.queue import reroute, reroute_options

    routing = reroute_options(load(args))  # team, priority and alerts are recomputed for the new queue
    return _act(args, lambda store, i, by, **kw: reroute(store, i, by, args.queue, **kw, **routing), note=args.note)


@command("queue undo")
def cmd_undo(args: argparse.Namespace) -> int:
    from beacons.queue import undo

    return _act(args, undo)


@command("queue reopen")
def cmd_reopen(args: argparse.Namespace) -> int:
    from beacons.queue import reopen

    return _act(args, reopen, note=args.note)


@command("queue reassign")
def cmd_reassign(args: argparse.Namespace) -> int:
    """The CLI works on the database directly (no roles); once users exist, NAME must be an active one."""
    from beacons.errors import InvalidInput
    from beacons.queue import reassign

    def run(store: Any, beacon_id: int, by: str, **kw: Any) -> Any:
        if store.count_users():
            user = store.get_user(args.name)
            if user is None or not user.is_active:
                raise InvalidInput("assignee", f"no active user named {args.name[:100]!r} (see `beacons users list`)")
        return reassign(store, beacon_id, by, args.name, **kw)

    return _act(args, run, note=args.note)


@command("queue relabel")
def cmd_relabel(args: argparse.Namespace) -> int:
    from beacons.feedback import relabel
    from beacons.queue import reroute_options

    intents = [] if args.no_intents else args.intent
    routing = reroute_options(load(args)) if args.queue else {}
    return _act(
        args,
        lambda store, i, by: relabel(
            store, i, by, queue=args.queue, sentiment=args.sentiment, intents=intents, routing=routing
        ),
    )


@command("queue note")
def cmd_note(args: argparse.Namespace) -> int:
    from beacons.queue import add_note

    return _act(args, lambda store, i, by: add_note(store, i, by, args.text))


def _read_one(database: str, beacon_id: int, read: Callable[[Any, int], T | None]) -> T | None:
    """``read(store, id)`` on the database; a missing beacon is reported on stderr."""
    from beacons.storage import Storage

    store = Storage(database)
    try:
        found = read(store, beacon_id)
    finally:
        store.close()
    if found is None:
        print(f"beacons: no beacon with id {beacon_id} (see `beacons queue list --queue all`)", file=sys.stderr)
    return found


@command("queue show")
def cmd_show(args: argparse.Namespace) -> int:
    """The beacon in full, with its thread, notes and history (replaces the foundation's plainer show)."""
    from beacons.queue import get_detail

    detail = _read_one(load(args).database, args.id, get_detail)
    if detail is None:
        return EXIT_ERROR
    if args.format == "json":
        print(json.dumps(detail.to_json(), ensure_ascii=False, indent=2))
        return EXIT_OK
    from beacons.queue_view import show_lines

    for line in show_lines(detail.to_json()):
        print(line)
    return EXIT_OK


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in untrusted text (OWASP CSV injection): prefix with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_export(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    n = 0
    if fmt == "json":
        out.write("[")
        for n, row in enumerate(rows, 1):
            out.write(("," if n > 1 else "") + "\n  " + json.dumps(row, ensure_ascii=False))
        out.write("\n]\n" if n else "]\n")
        return n
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in EXPORT_FIELDS})
        n += 1
    return n


@command("queue export")
def cmd_export(args: argparse.Namespace) -> int:
    from beacons.queue import QueueFilter, iter_entries
    from beacons.storage import Storage

    config = load(args)
    store = Storage(config.database)
    f = QueueFilter(args.queue, args.status, args.brand, args.product, args.team, threads=False)
    try:
        rows = (e.to_json() for e in iter_entries(store, f))
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as fh:
                n = write_export(rows, args.format, fh)
            print(f"beacons: wrote {n} beacons to {args.output}", file=sys.stderr)
        else:
            write_export(rows, args.format, sys.stdout)
    finally:
        store.close()
    return EXIT_OK


@command("route")
def cmd_route(args: argparse.Namespace) -> int:
    from beacons.queue import routing_input
    from beacons.route import Rules, decide

    config = load(args)
    seen = _read_one(config.database, args.explain, routing_input)
    if seen is None:
        return EXIT_ERROR
    mention, match, classification, beacon = seen
    decision = decide(mention, match, classification, Rules.from_config(config.routing, config.brand_models()))
    r = decision.route
    if args.format == "json":
        print(
            json.dumps(
                {
                    "id": beacon.id,
                    "decision": {"queue": r.queue, "priority": r.priority, "team": r.team, "reason": r.reason},
                    "steps": [{"rule": s.rule, "outcome": s.outcome, "detail": s.detail} for s in decision.steps],
                    "stored": {
                        "queue": beacon.queue,
                        "priority": beacon.priority,
                        "team": beacon.team,
                        "reason": beacon.reason,
                        "status": beacon.status,
                    },
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return EXIT_OK
    print(
        f"beacon #{beacon.id}: {(mention.title or mention.text)[:80]!r} ({mention.source_id}, {mention.published_at or mention.fetched_at})"
    )
    width = max(len(s.rule) for s in decision.steps)
    for i, s in enumerate(decision.steps, 1):
        print(f"  {i}. {s.rule:<{width}}  {s.outcome:<8} {s.detail}")
    print(f"decision: {r.queue}, priority {r.priority}, team {r.team or '-'} ({r.reason})")
    print(
        f"stored:   {beacon.queue}, priority {beacon.priority}, team {beacon.team or '-'}, status {beacon.status} ({beacon.reason})"
    )
    return EXIT_OK
