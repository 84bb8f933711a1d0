"""The ``beacons`` command line. JSON output is a stable contract; see README "CLI"."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from beacons import __version__
from beacons.cli_help import apply_help
from beacons.config import Config, load_config
from beacons.errors import BeaconsError, ConfigError
from beacons.log import configure
from beacons.redact import redact, scrub

EXIT_OK, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2
EXIT_BUG = 70  # EX_SOFTWARE in sysexits.h
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at run time
    Subparsers = argparse._SubParsersAction
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
ParserHook = Callable[[dict[str, Subparsers]], None]
_PARSER_HOOKS: list[ParserHook] = []


def parser_hook(fn: ParserHook) -> ParserHook:
    """Register a function that adds sub-commands; it gets {"": top level, "queue": queue actions, ...}."""
    _PARSER_HOOKS.append(fn)
    return fn


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return deco


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="config file (default: $BEACONS_CONFIG, ./config.yaml, then the packaged default)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacons",
        description="Self-hosted social listening: poll feeds and search results for your brands, "
        "classify each mention (support beacon, advocacy, noise) and route it to a queue.",
        epilog="Start with `beacons demo` (offline), then edit config.yaml and `beacons run`.",
    )
    parser.add_argument("--version", action="version", version=f"beacons {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="run the daemon (same as python daemon.py)",
        description="Poll every configured source on its interval until SIGINT/SIGTERM.",
    )
    _config_arg(p)
    p.add_argument("--once", action="store_true", help="poll every source once, print a summary and exit")

    q = sub.add_parser("queue", help="read the routed queues", description="Read the support and advocacy queues.")
    qsub = q.add_subparsers(dest="queue_command", metavar="ACTION")
    ql = qsub.add_parser(
        "list",
        help="list beacons, highest priority first",
        description="List open beacons (new or claimed), highest priority first. A thread of posts about the "
        "same problem shows once, as on the page, with +N for its other posts.",
        epilog="examples:\n  beacons queue list\n  beacons queue list --mine --as alice\n"
        "  beacons queue list --queue support --status all --q refund --wide\n"
        "  BEACONS_USER=alice beacons queue list --mine --format json",
    )
    _config_arg(ql)
    ql.add_argument(
        "--queue", choices=["support", "advocacy", "none", "all"], help="one queue (default: support and advocacy)"
    )
    ql.add_argument(
        "--status",
        choices=["open", "new", "claimed", "resolved", "dismissed", "all"],
        default="open",
        help="open (new or claimed, the default), one status, or all",
    )
    ql.add_argument("--brand", help="only this brand, e.g. --brand Acme")
    ql.add_argument("--product", help="only this product, e.g. --product RouterX")
    ql.add_argument("--assignee", metavar="NAME", help="only beacons held by NAME")
    ql.add_argument(
        "--mine", action="store_true", help="only beacons held by you (who you are: --as NAME or $BEACONS_USER)"
    )
    ql.add_argument("--as", dest="as_user", metavar="NAME", help='who "me" is for --mine (default: $BEACONS_USER)')
    ql.add_argument(
        "--q",
        metavar="TEXT",
        help="full-text search, as the page's search box: every word of TEXT in the title, text, author or notes"
        " (prefixes match, any case)",
    )
    ql.add_argument("--limit", type=positive_int, default=50, help="at most this many, 1-10000 (default 50)")
    ql.add_argument("--wide", action="store_true", help="print every value whole (a cut value otherwise ends in …)")
    ql.add_argument("--format", choices=["table", "json"], default="table", help="table for people, json for programs")
    qs = qsub.add_parser("show", help="one beacon in full")
    _config_arg(qs)
    qs.add_argument("id", type=int, help="beacon id (from queue list)")
    qs.add_argument(
        "--format", choices=["text", "json"], default="text", help="text for people (the default), json for programs"
    )

    c = sub.add_parser(
        "classify",
        help="classify JSON lines from stdin",
        description='Read JSON lines {"id", "text", "title"?} on stdin; write one JSON line per input: '
        '{"id", "brand", "product", "queue", "is_beacon", "sentiment", "scores"}.',
    )
    _config_arg(c)
    c.add_argument("--format", choices=["jsonl"], default="jsonl")

    s = sub.add_parser(
        "sources",
        help="each source with its last poll, status, errors and items seen; test or add one",
        description="List every configured source with its last poll, status, errors and items seen. "
        "`beacons sources test ID` fetches one source once and prints what would be stored; "
        "`beacons sources add KIND key=value ...` adds a source to config.yaml.",
    )
    _config_arg(s)
    s.add_argument("--format", choices=["table", "json"], default="table")
    ssub = s.add_subparsers(dest="sources_command", metavar="ACTION")

    d = sub.add_parser(
        "demo",
        help="run one cycle against bundled sample feeds on loopback, offline",
        description="Serve the bundled sample feeds on 127.0.0.1, poll them once into a temporary database and print the routed queues.",
    )
    d.add_argument("--port", type=int, default=0, help="loopback port for the sample feeds (default: any free port)")
    d.add_argument("--database", metavar="FILE", help="keep the demo database here instead of a temporary file")
    d.add_argument("--format", choices=["table", "json"], default="table")

    groups = {"": sub, "queue": qsub, "sources": ssub}
    for hook in _PARSER_HOOKS:
        hook(groups)
    apply_help(parser)
    return parser


def positive_int(value: str) -> int:
    """argparse type for counts: an ASCII whole number from 1 to 10000."""
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 10_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 10000, got {value!r}")
    return int(value)


# Commands defined in this module, whose parsers need no plugin: `run` (daemon.py) and `classify` start
# without importing every other command's module (a third of a cold `run --once`'s start-up, issue 16).
_CORE_COMMANDS = frozenset({"run", "classify"})


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] not in _CORE_COMMANDS:
        _load_plugins()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        _print_where()
        return EXIT_OK
    name = args.command
    action = getattr(args, f"{name.replace('-', '_')}_command", None)
    if action is not None or hasattr(args, f"{name.replace('-', '_')}_command"):
        if action:
            name = f"{name} {action}"
        elif name not in COMMANDS:  # a group with no action of its own (`beacons sources` lists; `queue` helps)
            parser.parse_args([name, "--help"])
    handler = COMMANDS.get(name)
    if handler is None:
        parser.error(f"unknown command {name}")
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"beacons: config error: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except BeaconsError as exc:
        print(f"beacons: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `beacons queue export | head`: the reader left. Point stdout at /dev/null so the interpreter's
        # final flush does not raise again, and exit as a process killed by SIGPIPE would (128 + 13).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE
    except OSError as exc:  # a file or folder the user named: one line that says which and why
        where = f" {exc.filename}" if exc.filename else ""
        print(f"beacons: {exc.strerror or exc}:{where}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("BEACONS_DEBUG"):
            raise
        print(
            f"beacons: internal error in `{name}`: {type(exc).__name__}: {exc} "
            "(a bug: run again with BEACONS_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_BUG


def _load_plugins() -> None:
    """Import the modules that add commands (train, serve, alerts...) if they exist."""
    import importlib

    for module in (
        "beacons.nlp.cli",
        "beacons.web.cli",
        "beacons.queue_cli",
        "beacons.alerts.cli",
        "beacons.doctor",
        "beacons.storage.cli",
        "beacons.users_cli",
        "beacons.rescan_cli",
        "beacons.sources_cli",
        "beacons.report_cli",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and not module.startswith(exc.name):
                raise


def _print_where() -> None:
    """After the bare ``beacons`` help: which config a command here would load and where its database is."""
    from beacons.config import config_location, database_location

    try:
        config = load_config(None)
    except ConfigError as exc:
        print(f"\nconfig: {exc.path or 'config.yaml'} does not load: {scrub(str(exc))}")
        return
    print(f"\nconfig: {config_location(config)}\ndatabase: {scrub(database_location(config.database))}")


def load(args: argparse.Namespace) -> Config:
    from beacons.config import config_location, database_location, is_packaged

    config = load_config(getattr(args, "config", None))
    configure(config.logging.level, config.logging.format)
    if is_packaged(config):  # run from a folder with no config.yaml: say what is used, and where it writes
        print(
            f"beacons: using {config_location(config)}; database {database_location(config.database)} "
            f"(write a config.yaml here, or pass --config FILE)",
            file=sys.stderr,
        )
    return config


def _out() -> TextIO:
    return sys.stdout


# -- run -----------------------------------------------------------------


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    from beacons.daemon import run

    config = load(args)
    if not config.sources:
        print("beacons: no sources configured: add at least one under sources: in the config", file=sys.stderr)
        return EXIT_CONFIG
    results = asyncio.run(run(config, once=args.once))
    if args.once:
        _print_results(results)
        return EXIT_OK if any(r.status in ("ok", "not_modified") for r in results) or not results else EXIT_ERROR
    return EXIT_OK


def _print_results(results: Sequence[Any], out: TextIO | None = None) -> None:
    out = out or _out()
    print(f"{'source':40} {'status':13} {'entries':>7} {'new':>5} {'support':>7} {'advocacy':>8}  error", file=out)
    for r in results:
        c = r.counts
        print(
            f"{scrub(r.source_id)[:40]:40} {r.status:13} {c.get('entries', 0):7} {c.get('new', 0):5} {c.get('support', 0):7} {c.get('advocacy', 0):8}  {scrub(r.error)[:80]}",
            file=out,
        )


# -- queue ---------------------------------------------------------------

QUEUE_FIELDS = (
    "id",
    "queue",
    "status",
    "priority",
    "brand",
    "product",
    "title",
    "text",
    "url",
    "source",
    "author",
    "published_at",
    "sentiment",
    "is_beacon",
)


@command("queue list")
def cmd_queue_list(args: argparse.Namespace) -> int:
    from beacons.queue import QueueFilter
    from beacons.queue_view import dump_json, print_entries, search_entries
    from beacons.storage import Storage

    assignee = args.assignee
    if args.mine:
        me = args.as_user or os.environ.get("BEACONS_USER")
        if not me:
            print("beacons: --mine needs to know who you are: add --as NAME or set BEACONS_USER=NAME", file=sys.stderr)
            return EXIT_CONFIG
        if assignee and assignee.casefold() != me.casefold():
            print(f"beacons: --mine ({me}) and --assignee {assignee} name different people; give one", file=sys.stderr)
            return EXIT_CONFIG
        assignee = me
    config = load(args)
    status = None if args.status == "all" else args.status
    f = QueueFilter(queue=args.queue, status=status, brand=args.brand, product=args.product, limit=args.limit)
    with Storage(config.database) as store:  # the same query as the API and the page: a thread shows once
        entries = search_entries(store, f, q=args.q, assignee=assignee, limit=args.limit)
    if args.format == "json":
        dump_json([e.to_json() for e in entries], _out())
    else:
        print_entries(entries, _out(), wide=args.wide)
    return EXIT_OK


def print_queue(beacons: Sequence[Any], out: TextIO | None = None) -> None:
    out = out or _out()
    if not beacons:
        print("(no beacons)", file=out)
        return
    print(
        f"{'id':>5} {'queue':8} {'pri':>3} {'status':8} {'sentiment':9} {'brand/product':22} {'source':18} title",
        file=out,
    )
    for b in beacons:
        what = b.brand + (f"/{b.product}" if b.product else "") if b.brand else "-"
        title = (b.title or b.text).replace("\n", " ")
        print(
            f"{b.id:5} {b.queue:8} {b.priority:3} {b.status:8} {b.sentiment:9} {what[:22]:22} {b.source[:18]:18} {title[:70]}",
            file=out,
        )


# `queue show` (with notes, history and thread) lives in beacons/queue_cli.py.


# -- classify ------------------------------------------------------------


@command("classify")
def cmd_classify(args: argparse.Namespace) -> int:
    from beacons.classify import load_classifier
    from beacons.match import BrandMatcher

    config = load(args)
    matcher = BrandMatcher(config.brand_models())
    r = config.routing
    classifier = load_classifier(
        config.classifier.model,
        support_threshold=r.support_threshold_for(None),
        advocacy_threshold=r.advocacy_threshold,
        relevance_threshold=r.relevance_threshold,
    )
    return classify_stream(sys.stdin, _out(), matcher, classifier)


def classify_stream(inp: TextIO, out: TextIO, matcher: Any, classifier: Any, batch: int = 256) -> int:
    from beacons.pipeline import classify_texts

    bad = 0
    pending: list[tuple[Any, str, str]] = []

    def flush() -> None:
        items = [(title, text) for _, title, text in pending]
        for (rid, _, _), record in zip(pending, classify_texts(items, matcher, classifier), strict=True):
            out.write(json.dumps({"id": rid, **record}, ensure_ascii=False) + "\n")
        pending.clear()

    for n, line in enumerate(inp, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if (
                not isinstance(obj, dict)
                or not isinstance(obj.get("text", ""), str)
                or not isinstance(obj.get("title") or "", str)
            ):
                raise ValueError('expected an object like {"id": 1, "text": "...", "title": "..."}')
        except ValueError as exc:
            bad += 1
            flush()
            out.write(json.dumps({"id": None, "line": n, "error": f"line {n}: {exc}"}) + "\n")
            print(f"beacons: classify: line {n}: {exc}", file=sys.stderr)
            continue
        pending.append((obj.get("id"), obj.get("title") or "", obj.get("text") or ""))
        if len(pending) >= batch:
            flush()
    flush()
    out.flush()
    return EXIT_ERROR if bad else EXIT_OK


# -- sources -------------------------------------------------------------


@command("sources")
def cmd_sources(args: argparse.Namespace) -> int:
    from beacons.storage import Storage

    config = load(args)
    with Storage(config.database) as store:
        store.sync_sources(config.sources)
        configured = {s.id for s in config.sources}
        # Shown scrubbed even when stored before issue 10, when error text could still hold a feed's token.
        rows = [redact(r) for r in store.sources() if r["id"] in configured]
    if args.format == "json":
        print(json.dumps(rows, indent=2), file=_out())
        return EXIT_OK
    out = _out()
    print(
        f"{'source':40} {'kind':14} {'last poll':20} {'status':12} {'polls':>5} {'errors':>6} {'seen':>6} {'new':>5}  last error",
        file=out,
    )
    for r in rows:
        print(
            f"{r['id'][:40]:40} {r['kind'][:14]:14} {(r['last_poll_at'] or 'never')[:19]:20} {(r['last_status'] or '-'):12} "
            f"{r['polls']:5} {r['errors']:6} {r['items_seen']:6} {r['items_new']:5}  {(r['last_error'] or '')[:70]}",
            file=out,
        )
    return EXIT_OK


# -- demo ----------------------------------------------------------------


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from beacons.demo import run_demo

    return run_demo(port=args.port, database=args.database, fmt=args.format)
