"""``beacons report``: this week's insights (issue 14) without opening the page: Markdown, HTML or JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from beacons.cli import EXIT_OK, _config_arg, command, load, parser_hook
from beacons.clock import SYSTEM
from beacons.insights import make_query
from beacons.queue import parse_when, sla_policy
from beacons.report import FORMATS, make_report, render

EPILOG = """examples:
  beacons report --since 7d
  beacons report --since 7d --brand Acme --format html --out week.html
  beacons report --since 2026-11-01 --until 2026-11-30 --format json --out november.json
"""


@parser_hook
def add_parsers(groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]]) -> None:
    p = groups[""].add_parser(
        "report",
        help="the insights as Markdown, a self-contained HTML file, or JSON",
        description="The figures of the /insights page for a date range: volume, sentiment, top problems, "
        "incidents, response times, advocates and sources.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_arg(p)
    p.add_argument(
        "--since", default="7d", help="start: back from now (24h, 7d, 30d) or an ISO date or date-time (default 7d)"
    )
    p.add_argument("--until", help="end (exclusive): as --since; a date includes that whole day (default: now)")
    p.add_argument("--brand", help="only this brand")
    p.add_argument("--product", help="only this product")
    p.add_argument("--team", help="only this team")
    p.add_argument("--source", help="only this source id")
    p.add_argument("--bucket", choices=["hour", "day"], help="hour or day (default: hour up to 2 days, else day)")
    p.add_argument("--tz", help="time zone of the days, e.g. Europe/Berlin (default UTC)")
    p.add_argument("--format", choices=FORMATS, default="md", help="md (default), html or json")
    p.add_argument("--out", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--link", help="the page's public address, for links (default: serve.public_url)")


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    from beacons.storage import Storage

    config = load(args)
    now = SYSTEM.now()
    since = parse_when(args.since, "since", now)
    until = parse_when(args.until, "until", now, end=True) if args.until else now
    q = make_query(
        since,
        until,
        bucket=args.bucket,
        tz=args.tz,
        brand=args.brand,
        product=args.product,
        team=args.team,
        source=args.source,
    )
    with Storage(config.database) as store:
        report = make_report(store, q, sla=sla_policy(config.routing.sla), now=now)
    text = render(report, args.format, link=args.link or config.serve.public_url or "")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.format} report to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK
