"""``beacons rescan [--since 7d] [--source ID]``: match and classify stored posts again (issue 13 §4)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from beacons.cli import EXIT_CONFIG, EXIT_OK, Subparsers, command, load, parser_hook


def _duration(value: str) -> float:
    from beacons.settings import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration like 7d, 12h or 90m, got {value!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration longer than 0, got {value!r}")
    return seconds


@parser_hook
def _add_parser(groups: dict[str, Subparsers]) -> None:
    p = groups[""].add_parser(
        "rescan",
        help="match and classify stored posts again after brands, aliases, excludes or the model change",
        description="Run matching, classification and routing again on what is stored: posts that named no brand "
        "(kept for retention.unmatched) that match now become beacons, with their alerts; beacons nobody has "
        "worked yet (status new) get the new classification. A beacon a person claimed, resolved, re-routed, "
        "relabelled or noted is never changed, and running it again adds nothing.",
    )
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="config file (default: $BEACONS_CONFIG, ./config.yaml, then the packaged default)",
    )
    p.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help="only posts fetched this recently, e.g. 7d, 12h (default: everything stored)",
    )
    p.add_argument("--source", metavar="ID", help="only posts from this source id (see `beacons sources`)")
    p.add_argument(
        "--format", choices=["text", "json"], default="text", help="text for people (the default), json for programs"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")


def _progress(counts: dict[str, int]) -> None:
    print(
        f"beacons: rescan: {counts['checked']} of {counts['total']} stored posts checked: "
        f"{counts['new']} new beacon(s), {counts['updated']} updated",
        file=sys.stderr,
        flush=True,
    )


@command("rescan")
def cmd_rescan(args: argparse.Namespace) -> int:
    from beacons.clock import SYSTEM
    from beacons.rescan import pipeline_for, rescan
    from beacons.storage import Storage

    config = load(args)
    if args.source and config.source(args.source) is None:
        known = ", ".join(s.id for s in config.sources) or "none configured"
        print(
            f"beacons: --source {args.source} is not a configured source id (known: {known}); "
            "rescanning what is stored for it anyway",
            file=sys.stderr,
        )
    if not config.brands:
        print("beacons: no brands configured: add at least one under brands: before a rescan", file=sys.stderr)
        return EXIT_CONFIG
    now = SYSTEM.now()
    since = now - timedelta(seconds=args.since) if args.since else None
    with Storage(config.database) as store:
        counts = rescan(
            pipeline_for(config, store),
            now=now,
            since=since,
            source=args.source,
            progress=None if args.quiet else _progress,
        )
    if args.format == "json":
        print(json.dumps(counts, indent=2))
        return EXIT_OK
    print(
        f"rescanned {counts['checked']} stored post(s): {counts['new']} new beacon(s), "
        f"{counts['updated']} beacon(s) re-classified, {counts['unchanged']} unchanged, "
        f"{counts['still_unmatched']} still name no brand, {counts['unmatched_now']} no longer match "
        f"(left for a person), {counts['pruned']} past retention.unmatched pruned"
    )
    return EXIT_OK
