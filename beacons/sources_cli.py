"""``beacons sources test ID`` and ``beacons sources add KIND key=value ...`` (issue 15).

``sources test`` polls one configured source once through the real fetch path
(politeness, byte caps, robots.txt for html_page) with no stored state and no
database written, then matches, classifies and routes what came back, and
prints what would be stored: each post's title, link, author, date, the brand
it names (or "no brand named") and the queue it would go to.

``sources add`` appends a source to config.yaml with ruamel.yaml's round-trip
mode, so the file's comments, order and quoting stay as they were. The whole
new file is validated by the same loader the daemon uses before anything is
written; on a problem nothing changes and each problem is printed with its key.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import io
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from beacons.cli import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, Subparsers, _config_arg, command, load, parser_hook
from beacons.config import Config, find_config, parse_config
from beacons.errors import ConfigError, NotModified, SourceError
from beacons.models import Source
from beacons.redact import scrub


@parser_hook
def _add_parsers(groups: dict[str, Subparsers]) -> None:
    sub = groups["sources"]
    t = sub.add_parser(
        "test",
        help="fetch one source once and print what would be stored (no database written)",
        description="Poll one configured source once through the real fetch path, with no stored cursor, and print "
        "each post it finds: title, link, author, date, the brand it names (or 'no brand named') and the queue it "
        "would go to. Nothing is written to the database. Works for every kind; check the selectors of a json_api "
        "or html_page source with it before running the daemon. A youtube_search test spends API quota (100 units).",
    )
    _config_arg(t)
    t.add_argument("id", help="the source's id, as `beacons sources` lists it")
    t.add_argument(
        "--format", choices=["text", "json"], default="text", help="text for people (the default), json for programs"
    )
    a = sub.add_parser(
        "add",
        help="add a source to config.yaml, keeping its comments",
        description="Append a source to the config file from KEY=VALUE pairs, with the file's comments and layout "
        "kept. A dotted key builds a mapping (fields.title=h2::text gives fields: {title: h2::text}); a value is "
        "read as YAML where the key takes a number, a flag or a mapping, and as text otherwise. The new file is "
        "validated like `beacons run` would load it; on any problem nothing is written.",
    )
    _config_arg(a)
    a.add_argument("kind", help="the source kind, e.g. rss, json_api, html_page, youtube_search")
    a.add_argument("keys", nargs="*", help="the source's keys as KEY=VALUE, e.g. url=https://example.com/feed")
    a.add_argument(
        "--id", dest="source_id", metavar="ID", help="the source's id (default: derived from kind and url/query)"
    )
    a.add_argument("--interval", metavar="DURATION", help="time between polls, e.g. 15m (default 5m)")
    a.add_argument("--dry-run", action="store_true", help="print the new source as YAML and change nothing")


# -- sources test --------------------------------------------------------------


@command("sources test")
def cmd_sources_test(args: argparse.Namespace) -> int:
    config = load(args)
    source = config.source(args.id)
    if source is None:
        known = ", ".join(s.id for s in config.sources) or "none"
        print(f"beacons: no source {args.id!r} in the config; configured sources: {known}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        report = asyncio.run(preview(config, source))
    except NotModified:
        report = {"source": source.id, "kind": source.kind, "status": "not_modified", "entries": 0, "mentions": []}
    except SourceError as exc:
        print(f"beacons: {source.id}: {scrub(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return EXIT_ERROR
    if args.format == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_report(report)
    return EXIT_OK


async def preview(config: Config, source: Source) -> dict[str, Any]:
    """One dry poll of ``source``, matched, classified and routed, stored nowhere."""
    from beacons.classify import load_classifier
    from beacons.fetch import FetchLimits, Politeness, make_client
    from beacons.pipeline import Pipeline
    from beacons.storage import Storage

    limits = FetchLimits.from_config(config.fetch)
    f = config.fetch
    classifier = load_classifier(
        config.classifier.model,
        support_threshold=config.routing.support_threshold_for(None),
        advocacy_threshold=config.routing.advocacy_threshold,
        relevance_threshold=config.routing.relevance_threshold,
    )
    memory = Storage(":memory:")  # the pipeline wants a store; this one is thrown away
    try:
        async with make_client(limits) as client:
            pipeline = Pipeline(
                store=memory,
                client=client,
                classifier=classifier,
                brands=config.brand_models(),
                limits=limits,
                politeness=Politeness(f.concurrency, f.per_host_concurrency, f.per_host_delay),
                env=os.environ,
                routing=config.routing,
            )
            poll, ctx = await pipeline.dry_poll(source)
            matches = [pipeline.matcher.match(m) for m in poll.mentions]
            counts: dict[str, int] = {"classify_errors": 0}
            matched = [(m, (), match) for m, match in zip(poll.mentions, matches, strict=True) if match is not None]
            items = iter(pipeline.classify_items(matched, counts))
    finally:
        memory.close()
    rows = []
    for mention, match in zip(poll.mentions, matches, strict=True):
        row: dict[str, Any] = {
            "title": mention.title,
            "url": mention.url,
            "author": mention.author,
            "published_at": mention.published_at.isoformat() if mention.published_at else None,
            "author_reach": mention.author_reach,
            "brand": match.brand if match else None,
            "product": match.product if match else None,
            "queue": None,
            "priority": None,
            "text": mention.text[:300],
        }
        if match is not None:
            item = next(items)
            if item.route is not None:
                row["queue"], row["priority"] = item.route.queue, item.route.priority
            else:
                row["queue"] = "unclassified"  # the classifier failed; the daemon would store it and retry
        rows.append(row)
    skipped = [{"reason": r, "detail": scrub(d, 300)} for r, d in [*ctx.skipped, *poll.skipped]]
    return {
        "source": source.id,
        "kind": source.kind,
        "status": "ok",
        "entries": len(rows),
        "name_a_brand": sum(r["brand"] is not None for r in rows),
        "skipped": skipped,
        "cursor": poll.cursor,
        "retry_after": ctx.retry_after,
        "mentions": rows,
    }


def _print_report(report: dict[str, Any]) -> None:
    print(
        f"{report['source']} ({report['kind']}): {report['entries']} entries, "
        f"{report.get('name_a_brand', 0)} name a brand, {len(report.get('skipped', []))} skipped; nothing stored"
    )
    for n, row in enumerate(report["mentions"], 1):
        brand = row["brand"] + (f" / {row['product']}" if row["product"] else "") if row["brand"] else "no brand named"
        if row["queue"] is None:
            queue = "not stored (no brand named)"
        elif row["priority"] is None:
            queue = str(row["queue"])
        else:
            queue = f"{row['queue']} (priority {row['priority']})"
        print(f"\n{n}. {row['title'] or row['text'][:80] or '(no title)'}")
        print(f"   url:       {row['url'] or '-'}")
        print(f"   author:    {row['author'] or '-'}")
        print(f"   published: {row['published_at'] or '-'}")
        print(f"   brand:     {brand}")
        print(f"   queue:     {queue}")
    for skip in report.get("skipped", []):
        print(f"\nskipped ({skip['reason']}): {skip['detail']}")
    if report.get("retry_after"):
        print(f"\nthe service asked to wait {report['retry_after']:.0f}s before the next poll")


# -- sources add ---------------------------------------------------------------


@command("sources add")
def cmd_sources_add(args: argparse.Namespace) -> int:
    from collectors import REGISTRY

    collector = REGISTRY.get(args.kind)
    if collector is None:
        print(
            f"beacons: unknown source kind {args.kind!r}; known kinds: {', '.join(sorted(REGISTRY))}", file=sys.stderr
        )
        return EXIT_CONFIG
    path = find_config(args.config)
    if path is None or not Path(path).is_file():
        where = path or "config.yaml"
        print(
            f"beacons: {where} does not exist; write one first (beacons prints the packaged default's location "
            f"when run with no config), or pass --config FILE",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    types = {f.name: str(f.type) for f in dataclasses.fields(collector.options)}
    try:
        entry = _entry(args, types)
    except ValueError as exc:
        print(f"beacons: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    text = Path(path).read_text(encoding="utf-8")
    try:
        new_text = append_source(text, entry)
    except (YAMLError, ValueError) as exc:
        print(f"beacons: cannot edit {path}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        config = parse_config(new_text, env=os.environ, path=path)
    except ConfigError as exc:
        print(f"beacons: not added; {path} would not load:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {scrub(str(problem))}", file=sys.stderr)
        return EXIT_CONFIG
    added = config.sources[-1]
    if args.dry_run:
        print(_dump({"sources": [dict(entry)]}), end="")
        print(f"# would add source {added.id} to {path} (--dry-run: nothing written)")
        return EXIT_OK
    _write(Path(path), new_text)
    print(f"added source {added.id} ({added.kind}) to {path}; try it with: beacons sources test {added.id}")
    return EXIT_OK


def _entry(args: argparse.Namespace, types: dict[str, str]) -> CommentedMap:
    entry = CommentedMap()
    if args.source_id:
        entry["id"] = args.source_id
    entry["kind"] = args.kind
    if args.interval:
        entry["interval"] = args.interval
    for pair in args.keys:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {pair!r} (e.g. url=https://example.com/feed)")
        path = key.strip().split(".")
        target = entry
        for part in path[:-1]:
            nested = target.get(part)
            if nested is None:
                nested = target[part] = CommentedMap()
            elif not isinstance(nested, dict):
                raise ValueError(f"{key}: {part} is already set to a value, not a mapping")
            target = nested
        target[path[-1]] = _value(raw, types.get(path[0], "str") if len(path) == 1 else "str")
    return entry


def _value(raw: str, annotation: str) -> Any:
    """Text stays text for a text key (a JMESPath or CSS expression is not YAML); other keys read YAML scalars."""
    if re.fullmatch(r"str( \| None)?", annotation) or not raw.strip():
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _yaml() -> YAML:
    rt = YAML()  # round-trip: comments, key order and quoting survive a load and dump
    rt.preserve_quotes = True
    rt.width = 4096  # never fold a long URL or expression onto a second line
    return rt


def append_source(text: str, entry: CommentedMap) -> str:
    """``text`` with ``entry`` appended under ``sources:``; everything else (comments included) as it was."""
    rt = _yaml()
    if re.search(r"^\s+- ", text, re.MULTILINE):
        rt.indent(mapping=2, sequence=4, offset=2)  # "  - kind: rss", the style of the shipped config.yaml
    else:
        rt.indent(mapping=2, sequence=2, offset=0)
    data = rt.load(text)
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise ValueError("the file is not a YAML mapping of sections")
    sources = data.get("sources")
    if sources is None:
        data["sources"] = sources = CommentedSeq()
    if not isinstance(sources, list):
        raise ValueError("sources: is not a list")
    if isinstance(sources, CommentedSeq) and sources.fa.flow_style():
        sources.fa.set_block_style()  # `sources: []` grows into a block list, one source a block
    if sources and isinstance(sources[-1], CommentedMap):
        _move_trailing(sources[-1], entry)  # the blank line or comment after the old last source stays last
    sources.append(entry)
    out = io.StringIO()
    rt.dump(data, out)
    return out.getvalue()


def _last_map(node: CommentedMap) -> tuple[CommentedMap, Any] | None:
    """The mapping and key whose trailing comment ends ``node`` (the deepest last key)."""
    if not node:
        return None
    key = list(node)[-1]
    value = node[key]
    if isinstance(value, CommentedMap) and value:
        return _last_map(value)
    return node, key


def _move_trailing(old: CommentedMap, new: CommentedMap) -> None:
    src, dst = _last_map(old), _last_map(new)
    if src is None or dst is None:
        return
    tokens = src[0].ca.items.get(src[1])
    if not tokens or len(tokens) < 3 or tokens[2] is None:
        return
    value = tokens[2].value
    eol, rest = value.split("\n", 1) if "\n" in value else (value, "")
    if not rest:
        return
    tokens[2].value = eol + "\n"  # an end-of-line comment stays on its line
    dst[0].ca.items.setdefault(dst[1], [None, None, None, None])
    new_token = copy.copy(tokens[2])
    new_token.value = "\n" + rest  # the new last key's line end, then the blank lines and comments that followed
    dst[0].ca.items[dst[1]][2] = new_token


def _dump(data: Any) -> str:
    out = io.StringIO()
    rt = _yaml()
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.dump(data, out)
    return out.getvalue()


def _write(path: Path, text: str) -> None:
    """Replace ``path`` in one step (a crash leaves the old file or the new one, never half of each)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
