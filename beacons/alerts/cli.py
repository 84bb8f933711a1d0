"""``beacons alerts list|retry|test``: see the outbox, replay dead alerts, send a test message.

JSON output (``--format json``) is a stable contract: a list of outbox rows
with ``id, event_id, channel, kind, beacon_id, status, attempts, created_at,
next_attempt_at, sent_at, last_error, http_status, parent_event_id, payload``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from beacons.alerts.outbox import STATES, Outbox
from beacons.cli import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, _config_arg, command, load, parser_hook
from beacons.redact import redact, scrub


@parser_hook
def add_parsers(groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]]) -> None:
    a = groups[""].add_parser(
        "alerts",
        help="alert outbox: list, retry, test",
        description="See the alert outbox, replay failed alerts and send a test message to a channel.",
    )
    asub = a.add_subparsers(dest="alerts_command", metavar="ACTION")
    al = asub.add_parser("list", help="alerts, newest first")
    _config_arg(al)
    al.add_argument("--status", choices=STATES, help="only this status (dead: gave up; pending: waiting or retrying)")
    al.add_argument("--channel", help="only this channel")
    al.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    al.add_argument("--format", choices=["table", "json"], default="table")
    ar = asub.add_parser("retry", help="send alerts again (by id or event id, or every dead one)")
    _config_arg(ar)
    ar.add_argument("ids", nargs="*", help="outbox ids or event ids (from alerts list)")
    ar.add_argument("--dead", action="store_true", help="every dead alert (with --channel: of that channel)")
    ar.add_argument("--channel", help="with --dead: only this channel")
    at = asub.add_parser("test", help="send a test message to a channel now")
    _config_arg(at)
    at.add_argument("channel", help="channel name (alerts[].name, or kind-index such as slack-0)")


@command("alerts list")
def cmd_list(args: argparse.Namespace) -> int:
    from beacons.storage import Storage

    config = load(args)
    with Storage(config.database) as store:
        rows = Outbox(store).rows(status=args.status, channel=args.channel, limit=args.limit)
    if args.format == "json":
        print(json.dumps([redact(r.to_json()) for r in rows], ensure_ascii=False, indent=2))
        return EXIT_OK
    if not rows:
        print("(no alerts)")
        return EXIT_OK
    print(
        f"{'id':>6} {'channel':16} {'kind':13} {'status':8} {'tries':>5} {'created':20} {'next/sent':20}  event / last error"
    )
    for r in rows:
        when = (r.sent_at if r.status == "sent" else r.next_attempt_at) or "-"
        note = f"  {scrub(r.last_error)}" if r.last_error else ""
        print(
            f"{r.id:6} {r.channel[:16]:16} {r.kind[:13]:13} {r.status:8} {r.attempts:5} {r.created_at[:19]:20} {when[:19]:20}  {r.event_id}{note[:100]}"
        )
    return EXIT_OK


@command("alerts retry")
def cmd_retry(args: argparse.Namespace) -> int:
    from beacons.storage import Storage

    if not args.ids and not args.dead:
        print("beacons: alerts retry: give ids (from `beacons alerts list`) or --dead", file=sys.stderr)
        return EXIT_ERROR
    config = load(args)
    keys: list[int | str] = [int(k) if k.isdigit() else k for k in args.ids]
    with Storage(config.database) as store:
        changed = Outbox(store).retry(ids=keys, dead=args.dead, channel=args.channel, now=time.time())
    print(f"{changed} alert(s) queued again; the running daemon (or the next `beacons run --once`) sends them")
    return EXIT_OK if changed or args.dead else EXIT_ERROR


@command("alerts test")
def cmd_test(args: argparse.Namespace) -> int:
    from beacons.alerts.config import named
    from beacons.alerts.sender import ChannelSender, public_url
    from beacons.storage import Storage

    config = load(args)
    channels = {c.name: c for c in named(config.alerts)}
    channel = channels.get(args.channel)
    if channel is None:
        known = ", ".join(channels) or "none configured under alerts:"
        print(f"beacons: no alert channel {args.channel!r}; channels: {known}", file=sys.stderr)
        return EXIT_CONFIG

    async def send() -> int:
        store = Storage(config.database)
        sender = ChannelSender(channel, Outbox(store), public_url=public_url(config))
        try:
            outcome = await sender.send_test()
        finally:
            await sender.aclose()
            store.close()
        if outcome.status == "sent":
            print(f"sent a test alert to {channel.name}: HTTP {outcome.http_status} in {outcome.ms:.0f} ms")
            return EXIT_OK
        print(
            f"beacons: test alert to {channel.name} failed: {outcome.error} (see `beacons alerts list --channel {channel.name}`)",
            file=sys.stderr,
        )
        return EXIT_ERROR

    return asyncio.run(send())
