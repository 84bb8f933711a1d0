"""``beacons doctor``: check a deployment before (or while) it runs, and say what to change.

Four groups of checks, each a ``Check(name, status, detail)`` with status
``ok``, ``warn`` or ``fail``:

- config: the file loads and validates (every problem with its key path);
- database: it opens read-only, passes ``PRAGMA integrity_check``, its schema
  is at the version this beacons expects, and a write lock can be taken;
- sources: one real poll each, as on a first run (one request for a feed,
  one per search term for a search kind), through the pipeline's fetch with
  no stored ETag or cursor; nothing is stored; status, time and entry count;
- alert channels: the URL and secret are set and the message builds (a dry
  run); ``--send-test`` also posts a test alert, as ``beacons alerts test``.

Exit status: 0 when nothing failed, 1 when a check failed, 2 when the config
itself does not load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from beacons.cli import (
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_OK,
    Subparsers,
    _config_arg,
    command,
    parser_hook,
)
from beacons.config import Config, load_config
from beacons.errors import ConfigError, NotModified, SourceError, StoreError
from beacons.log import configure
from beacons.models import Classification, Match, Source
from beacons.redact import scrub
from beacons.storage import Storage, is_postgres_url
from beacons.storage.sqlite import inspect_file, try_write_lock

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str  # "config", "database", "source:<id>", "alert:<channel>"
    status: Status
    detail: str


# -- config ----------------------------------------------------------------


def check_config(path: str | None) -> tuple[Config | None, list[Check]]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        where = exc.path or path or "config"
        return None, [Check("config", "fail", f"{where}: {p}") for p in exc.problems]
    from beacons.config import config_location, database_location

    detail = f"{len(config.sources)} source(s), {len(config.alerts)} alert channel(s), database {config.database}"
    checks = [Check("config", "ok", f"{config_location(config)}: {detail}")]
    checks.append(Check("config", "ok", f"database at {database_location(config.database)}"))
    if not config.sources:
        checks.append(Check("config", "warn", "no sources: add at least one under sources:"))
    if not config.brands:
        # Matching needs a brand: with none, every fetched post is dropped for naming no brand.
        checks.append(Check("config", "fail", "no brands: every post would be dropped; add at least one under brands:"))
    return config, checks


# -- database --------------------------------------------------------------


def check_database(path: str) -> list[Check]:
    """Read-only checks first (a broken file must not be touched), then whether a write lock can be taken."""
    if is_postgres_url(path):
        return check_postgres(path)
    if path == ":memory:":
        return [
            Check("database", "warn", "database is :memory:; nothing survives a restart (set database: to a file path)")
        ]
    file = Path(path)
    if not file.exists():
        folder = file.parent if file.parent.exists() else None
        if folder is not None and not os.access(folder, os.W_OK):
            return [
                Check(
                    "database",
                    "fail",
                    f"{path} does not exist and its folder {folder} is not writable (fix permissions)",
                )
            ]
        return [Check("database", "warn", f"{path} does not exist yet; `beacons run` creates it")]
    checks: list[Check] = []
    try:
        result, applied, known = inspect_file(path)
    except StoreError as exc:
        return [Check("database", "fail", str(exc))]
    if result != ["ok"]:
        checks.append(
            Check(
                "database",
                "fail",
                f"integrity_check: {'; '.join(result[:5])} (stop beacons and restore {path} from a backup)",
            )
        )
    else:
        checks.append(Check("database", "ok", f"{path}: integrity_check ok"))
    checks.append(_schema_verdict(applied, known))
    checks.append(_check_writable(path))
    return checks


def _schema_verdict(applied: int, expected: int) -> Check:
    if applied < expected:
        return Check(
            "database", "warn", f"schema at {applied} of {expected} migrations; `beacons run` applies the rest"
        )
    if applied > expected:
        return Check(
            "database", "fail", f"schema has {applied} migrations, this beacons knows {expected}: upgrade beacons"
        )
    return Check("database", "ok", f"schema version {applied} (current)")


def check_postgres(url: str) -> list[Check]:
    """Connect, compare the applied migrations with this beacons', and take and release a write transaction."""
    from beacons.storage import display_url, open_backend

    try:
        backend = open_backend(url, timeout=5.0)
    except StoreError as exc:
        return [Check("database", "fail", str(exc))]
    try:
        checks = [Check("database", "ok", f"{display_url(url)}: {backend.server_version()} answers")]
        applied, known = backend.migrations()
        checks.append(_schema_verdict(len(applied), len(known)))
        try:
            backend.check_writable()
            checks.append(Check("database", "ok", "writable (a write transaction was opened and committed)"))
        except StoreError as exc:
            checks.append(Check("database", "fail", f"not writable: {exc}"))
    except StoreError as exc:
        checks = [Check("database", "fail", str(exc))]
    finally:
        backend.close()
    return checks


def _check_writable(path: str) -> Check:
    problem = try_write_lock(path, timeout=2.0)
    if problem is None:
        return Check("database", "ok", "writable (a write lock was taken and released)")
    if problem.startswith("locked: "):  # the running daemon may hold it mid-write: worth a look, not a failure
        return Check(
            "database",
            "warn",
            f"write lock busy for over 2 s: {problem[8:]}; fine if beacons is running, else find the other writer",
        )
    return Check("database", "fail", f"not writable: {problem}")


# -- sources ---------------------------------------------------------------


class _NoClassifier:
    """Doctor never classifies: a source check stops after parsing."""

    name = "none"

    def classify(self, text: str, match: Match | None) -> Classification:
        raise NotImplementedError

    def classify_many(self, items: Sequence[tuple[str, Match | None]]) -> list[Classification]:
        raise NotImplementedError


async def check_sources(config: Config, sources: Sequence[Source] | None = None) -> list[Check]:
    """One request per source through the pipeline's fetch and the collector's parse; nothing is stored."""
    from beacons.fetch import FetchLimits, Politeness, make_client
    from beacons.match import BrandMatcher
    from beacons.pipeline import Pipeline

    limits = FetchLimits.from_config(config.fetch)
    f = config.fetch
    politeness = Politeness(f.concurrency, f.per_host_concurrency, f.per_host_delay)
    memory = Storage(":memory:")
    async with make_client(limits) as client:
        pipeline = Pipeline(
            store=memory,
            client=client,
            classifier=_NoClassifier(),
            brands=config.brand_models(),
            limits=limits,
            politeness=politeness,
            env=os.environ,
            routing=config.routing,
        )
        matcher = BrandMatcher(config.brand_models())
        checks = await asyncio.gather(
            *(_check_source(pipeline, matcher, s) for s in (config.sources if sources is None else sources))
        )
    memory.close()
    return list(checks)


async def _check_source(pipeline: Any, matcher: Any, source: Source) -> Check:
    name = f"source:{source.id}"
    started = time.monotonic()
    try:
        poll, ctx = await pipeline.dry_poll(source)
    except NotModified:
        return Check(name, "ok", f"HTTP 304 in {_ms(started)} ms")
    except SourceError as exc:
        return Check(name, "fail", f"{type(exc).__name__}: {exc} after {_ms(started)} ms")
    except Exception as exc:  # doctor reports a collector bug instead of dying on it
        return Check(name, "fail", f"bug in the {source.kind} collector: {type(exc).__name__}: {exc}")
    entries = len(poll.mentions)
    skipped = len(ctx.skipped) + len(poll.skipped)
    if source.implies_brand:  # every entry is a mention of it, named or not (issue 15)
        about = f"all about {source.implies_brand} (implies_brand)"
    else:
        about = f"{sum(matcher.match(m) is not None for m in poll.mentions)} mention a brand"
    detail = f"{entries} entries, {about}, {skipped} skipped, {_ms(started)} ms"
    if entries == 0 and skipped:
        return Check(
            name,
            "warn",
            f"{detail}: every entry was skipped ({ctx.skipped[0][0] if ctx.skipped else poll.skipped[0][0]})",
        )
    return Check(name, "ok", detail)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


# -- alert channels ----------------------------------------------------------


async def check_channels(config: Config, *, send_test: bool = False) -> list[Check]:
    """Build each channel's test message (a dry run); post it only with ``send_test``. URLs and secrets are never shown."""
    from beacons.alerts import slack, webhook
    from beacons.alerts.config import named
    from beacons.alerts.message import Event
    from beacons.alerts.outbox import ts

    checks = []
    for channel in named(config.alerts):
        name = f"alert:{channel.name}"
        if not channel.url.startswith(("https://", "http://")):
            checks.append(Check(name, "fail", "url is not an http(s) URL (set the environment variable it names)"))
            continue
        if channel.kind == "webhook" and len(channel.secret or "") < 16:
            checks.append(Check(name, "fail", "webhook secret is missing or shorter than 16 characters"))
            continue
        event = Event(f"doctor-{int(time.time())}-{channel.name}", "test", channel.name, ts(time.time()))
        if channel.kind == "webhook":
            body, _ = webhook.request(event, channel.secret or "")
        else:
            body = json.dumps(slack.render(event)).encode("utf-8")
        if not send_test:
            checks.append(
                Check(name, "ok", f"{channel.kind} message builds ({len(body)} bytes); not sent (use --send-test)")
            )
            continue
        checks.append(await _send_test(config, channel))
    return checks


async def _send_test(config: Config, channel: Any) -> Check:
    from beacons.alerts.outbox import Outbox
    from beacons.alerts.sender import ChannelSender, public_url

    name = f"alert:{channel.name}"
    try:
        store = Storage(config.database, timeout=2.0)
    except StoreError as exc:
        return Check(name, "fail", f"cannot record the test alert: {exc}")
    sender = ChannelSender(channel, Outbox(store), public_url=public_url(config))
    try:
        outcome = await sender.send_test()
    except StoreError as exc:
        return Check(name, "fail", f"cannot record the test alert: {exc}")
    finally:
        await sender.aclose()
        store.close()
    if outcome.status == "sent":
        return Check(name, "ok", f"test alert sent: HTTP {outcome.http_status} in {outcome.ms:.0f} ms")
    return Check(name, "fail", f"test alert failed: {outcome.error} (check the URL, the receiver and its logs)")


# -- command -----------------------------------------------------------------


def run_checks(path: str | None, *, send_test: bool = False, skip_sources: bool = False) -> tuple[list[Check], int]:
    config, checks = check_config(path)
    if config is None:
        return _scrubbed(checks), EXIT_CONFIG
    configure(config.logging.level, config.logging.format)  # log lines go to stderr, the report to stdout
    checks += check_database(config.database)
    if not skip_sources:
        checks += asyncio.run(check_sources(config))
    checks += asyncio.run(check_channels(config, send_test=send_test))
    return _scrubbed(checks), EXIT_ERROR if any(c.status == "fail" for c in checks) else EXIT_OK


def _scrubbed(checks: Sequence[Check]) -> list[Check]:
    """The report as shown: error text and names carry no secret or URL credential (issue 10)."""
    return [Check(scrub(c.name), c.status, scrub(c.detail)) for c in checks]


def render_table(checks: Sequence[Check]) -> str:
    width = max([len(c.name) for c in checks] + [5])
    lines = [f"{'check':{width}}  status  detail"]
    lines += [f"{c.name:{width}}  {c.status:6}  {c.detail}" for c in checks]
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append(f"{failed} failed, {warned} warning(s), {len(checks) - failed - warned} ok")
    return "\n".join(lines)


@parser_hook
def _add_parser(groups: dict[str, Subparsers]) -> None:
    p = groups[""].add_parser(
        "doctor",
        help="check the config, the database, each source and each alert channel",
        description="Check a deployment: the config loads, the database is sound and writable, each source answers "
        "one request, each alert channel's message builds. Exit 1 when a check fails, 2 when the config does not load.",
    )
    _config_arg(p)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--send-test", action="store_true", help="also post a test alert to each channel")
    p.add_argument("--no-sources", action="store_true", help="skip the network requests to the sources")


@command("doctor")
def cmd_doctor(args: argparse.Namespace) -> int:
    checks, code = run_checks(args.config, send_test=args.send_test, skip_sources=args.no_sources)
    if args.format == "json":
        print(json.dumps({"ok": code == EXIT_OK, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        print(render_table(checks))
    if code != EXIT_OK:
        print("beacons: doctor found problems; each failed line says what to change", file=sys.stderr)
    return code
