"""``beacons db migrate|status|copy``: the database's schema, what it holds, and moving it to PostgreSQL."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from beacons.cli import EXIT_ERROR, EXIT_OK, Subparsers, _config_arg, command, load, parser_hook
from beacons.errors import BeaconsError
from beacons.storage import Storage, display_url, open_backend
from beacons.storage.schema import TABLES


@parser_hook
def _add_parsers(groups: dict[str, Subparsers]) -> None:
    d = groups[""].add_parser(
        "db",
        help="database: migrate, status, copy to PostgreSQL",
        description="The database named by database: in the config (an SQLite path or a postgresql:// URL).",
    )
    dsub = d.add_subparsers(dest="db_command", metavar="ACTION")
    m = dsub.add_parser(
        "migrate", help="apply the migrations this database lacks (beacons run and serve also do it on start)"
    )
    _config_arg(m)
    s = dsub.add_parser("status", help="backend, schema version and rows per table")
    _config_arg(s)
    s.add_argument("--format", choices=["table", "json"], default="table")
    c = dsub.add_parser(
        "copy",
        help="copy every table into another database (e.g. SQLite to PostgreSQL), verified by counts and checksums",
        description="Copy mentions, keys, beacons, history, notes, threads, feedback labels, outbox, sources and "
        "alert state from the configured database into --to, keeping ids. Safe to re-run: rows are upserted on "
        "their keys. Stop `beacons run` first so nothing changes during the copy. Exit 1 when a table differs.",
    )
    _config_arg(c)
    c.add_argument("--to", required=True, metavar="DATABASE", help="target: postgresql://user:password@host:port/db")
    c.add_argument("--format", choices=["table", "json"], default="table")


@command("db migrate")
def cmd_migrate(args: argparse.Namespace) -> int:
    config = load(args)
    backend = open_backend(config.database)
    try:
        done = backend.migrate()
        applied, known = backend.migrations()
    finally:
        backend.close()
    for name in done:
        print(f"applied {name}")
    print(f"beacons: {backend.display} is at schema version {len(applied)} of {len(known)}", file=sys.stderr)
    return EXIT_OK


@command("db status")
def cmd_status(args: argparse.Namespace) -> int:
    config = load(args)
    backend = open_backend(config.database)
    try:
        applied, known = backend.migrations()
        counts = {}
        if applied:
            counts = {t.name: int(backend.read(f"SELECT COUNT(*) FROM {t.name}").scalar()) for t in TABLES}
    finally:
        backend.close()
    pending = [m for m in known if m not in applied]
    if args.format == "json":
        status = {
            "backend": backend.name,
            "database": backend.display,
            "schema_version": len(applied),
            "known": len(known),
            "pending": pending,
            "rows": counts,
        }
        print(json.dumps(status, indent=2))
        return EXIT_OK
    print(f"backend   {backend.name}")
    print(f"database  {backend.display}")
    print(
        f"schema    {len(applied)} of {len(known)} migrations" + (f"; pending: {', '.join(pending)}" if pending else "")
    )
    for name, n in counts.items():
        print(f"  {name:22} {n:>10}")
    return EXIT_OK


@command("db copy")
def cmd_copy(args: argparse.Namespace) -> int:
    from beacons.storage.copy import copy_database

    config = load(args)
    if args.to == config.database:
        raise BeaconsError(f"--to is the configured database itself ({display_url(args.to)}): name another one")
    with Storage(config.database) as source, Storage(args.to) as target:
        print(f"beacons: copying {source.display} to {target.display}", file=sys.stderr)
        reports = copy_database(
            source.backend, target.backend, progress=lambda line: print(f"  {line}", file=sys.stderr)
        )
    bad = [r for r in reports if not r.ok]
    if args.format == "json":
        print(
            json.dumps(
                {
                    "ok": not bad,
                    "tables": [
                        {
                            "table": r.table,
                            "copied": r.copied,
                            "source_rows": r.source_rows,
                            "target_rows": r.target_rows,
                            "source_checksum": r.source_sum,
                            "target_checksum": r.target_sum,
                            "ok": r.ok,
                        }
                        for r in reports
                    ],
                },
                indent=2,
            )
        )
    else:
        print(f"{'table':22} {'copied':>8} {'source':>8} {'target':>8}  checksum          verified")
        for r in reports:
            print(
                f"{r.table:22} {r.copied:8} {r.source_rows:8} {r.target_rows:8}  {r.source_sum}  {'yes' if r.ok else 'NO'}"
            )
    if bad:
        names = ", ".join(r.table for r in bad)
        print(
            f"beacons: db copy: {names} differ between source and target (did something write during the copy? run it again)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    print("beacons: every table verified; point database: at the target and start beacons", file=sys.stderr)
    return EXIT_OK


@parser_hook
def _add_fleet_parser(groups: dict[str, Subparsers]) -> None:
    f = groups[""].add_parser(
        "fleet",
        help="the workers sharing this database: heartbeats, leases, leaders",
        description="Every `beacons run` worker on this PostgreSQL database, its last heartbeat, the sources and "
        "hosts it holds leases on, and which worker leads each periodic alert job.",
    )
    _config_arg(f)
    f.add_argument("--format", choices=["table", "json"], default="table")


@command("fleet")
def cmd_fleet(args: argparse.Namespace) -> int:
    from beacons.storage.base import utcnow

    config = load(args)
    now = utcnow()
    with Storage(config.database) as store:
        state = store.fleet(now=now)
    if args.format == "json":
        print(json.dumps(state, indent=2))
        return EXIT_OK
    if not state["workers"]:
        print("(no workers: `beacons run` on a PostgreSQL database joins the fleet)")
    else:
        print(f"{'worker':44} {'heartbeat':>10} {'leases':>6} {'hosts':>5} {'polled':>8}  started")
    for w in state["workers"]:
        age = (now - datetime.fromisoformat(w["heartbeat_at"])).total_seconds()
        print(
            f"{w['id'][:44]:44} {age:9.0f}s {w['leases']:6} {w['hosts']:5} {w['sources_polled']:8}  {w['started_at'][:19]}"
        )
    for leader in state["leaders"]:
        print(f"leader of {leader['job']}: {leader['owner']} (until {leader['until'][:19]})")
    print(f"sources due now: {state['sources_due']}")
    return EXIT_OK
