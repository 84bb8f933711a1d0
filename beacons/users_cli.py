"""``beacons users add|list|disable|token|password|sessions|revoke`` (issue 13): people, not shared tokens.

Whoever can run these can read the database, so the CLI itself is the admin's
tool. No secret is ever printed except the one new token of ``users token``,
alone on the last line of stdout; a password is read from a terminal without
echo, or as the first line of stdin when stdin is not a terminal.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from beacons.cli import EXIT_ERROR, EXIT_OK, Subparsers, _config_arg, command, load, parser_hook
from beacons.clock import SYSTEM
from beacons.errors import InvalidInput
from beacons.log import get_logger
from beacons.storage import Storage
from beacons.storage.base import iso
from beacons.users import ROLES, check_password_text, clean_role, clean_user_name, hash_password, issue_token

log = get_logger("beacons.users")


@parser_hook
def _add_parsers(groups: dict[str, Subparsers]) -> None:
    u = groups[""].add_parser(
        "users",
        help="people who work the queue: add, list, disable, tokens, passwords, sessions",
        description="People and roles: agents work the queue, leads also act for others, admins manage users.",
    )
    usub = u.add_subparsers(dest="users_command", metavar="ACTION")
    p = usub.add_parser("add", help="add a user", description="Add a user; then give them a password or a token.")
    _config_arg(p)
    p.add_argument("name", help="the user's name, e.g. alice (letters, digits, . _ @ -)")
    p.add_argument("--role", choices=ROLES, default="agent", help="agent (default), lead or admin")
    p = usub.add_parser("list", help="every user with role, state, tokens and sessions")
    _config_arg(p)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = usub.add_parser(
        "disable", help="disable a user: their tokens and sessions stop working at once (history is kept)"
    )
    _config_arg(p)
    p.add_argument("name")
    p = usub.add_parser(
        "token",
        help="make a new personal API token (printed once, alone on the last line of stdout)",
        description="Make a new personal API token for NAME. Only its SHA-256 is stored: copy it now. "
        "Example: TOKEN=$(beacons users token alice | tail -n 1)",
    )
    _config_arg(p)
    p.add_argument("name")
    p = usub.add_parser(
        "password",
        help="set a user's sign-in password (asked twice on a terminal, else the first line of stdin)",
        description="Set NAME's password for the page's sign-in form (scrypt-hashed). "
        "Example: printf '%%s\\n' \"$PW\" | beacons users password alice",
    )
    _config_arg(p)
    p.add_argument("name")
    p = usub.add_parser("sessions", help="a user's sign-in sessions: when, from where, until when, revoked or not")
    _config_arg(p)
    p.add_argument("name")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = usub.add_parser(
        "revoke", help="sign a user out everywhere (or end one session with --session; --tokens also revokes tokens)"
    )
    _config_arg(p)
    p.add_argument("name")
    p.add_argument("--session", metavar="ID", help="only this session (an id from `beacons users sessions NAME`)")
    p.add_argument("--tokens", action="store_true", help="also revoke every personal API token of the user")


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[Storage]:
    config = load(args)
    store = Storage(config.database)
    try:
        yield store
    finally:
        store.close()


def _fail(message: str) -> int:
    print(f"beacons: {message}", file=sys.stderr)
    return EXIT_ERROR


@command("users add")
def cmd_add(args: argparse.Namespace) -> int:
    name, role = clean_user_name(args.name), clean_role(args.role)
    with _store(args) as store:
        store.add_user(name, role, now=SYSTEM.now())
    log.info("user.added", user=name, role=role)
    print(f"added {name} ({role}); next: `beacons users password {name}` or `beacons users token {name}`")
    return EXIT_OK


@command("users list")
def cmd_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        people = store.list_users()
    if args.format == "json":
        rows: list[dict[str, Any]] = [
            {
                "name": u.name,
                "role": u.role,
                "active": u.is_active,
                "created_at": u.created_at,
                "disabled_at": u.disabled_at,
                "has_password": u.has_password,
                "tokens": u.tokens,
                "sessions": u.sessions,
            }
            for u in people
        ]
        print(json.dumps({"users": rows}, indent=2))
        return EXIT_OK
    if not people:
        print("no users yet: beacons users add NAME --role admin", file=sys.stderr)
        return EXIT_OK
    width = max(4, *(len(u.name) for u in people))
    print(f"{'name':<{width}}  role   state     password  tokens  sessions")
    for u in people:
        state = "active" if u.is_active else "disabled"
        password = "yes" if u.has_password else "no"
        print(f"{u.name:<{width}}  {u.role:<5}  {state:<8}  {password:<8}  {u.tokens:>6}  {u.sessions:>8}")
    return EXIT_OK


@command("users disable")
def cmd_disable(args: argparse.Namespace) -> int:
    with _store(args) as store:
        changed = store.disable_user(args.name, now=SYSTEM.now())
    log.info("user.disabled", user=args.name)
    print(
        f"disabled {args.name}; their tokens and sessions no longer work"
        if changed
        else f"{args.name} was disabled already"
    )
    return EXIT_OK


@command("users token")
def cmd_token(args: argparse.Namespace) -> int:
    with _store(args) as store:
        user = store.get_user(args.name)
        if user is not None and not user.is_active:
            return _fail(f"{args.name} is disabled; a token would not work")
        token = issue_token(store, args.name, now=SYSTEM.now())
    log.info("user.token_added", user=args.name)
    print(f"new API token for {args.name}, shown only this once (send it as Authorization: Bearer <token>):")
    print(token)
    return EXIT_OK


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise InvalidInput("password", "the two entries differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


@command("users password")
def cmd_password(args: argparse.Namespace) -> int:
    with _store(args) as store:
        user = store.get_user(args.name)
        if user is None:
            return _fail(f"no user named {args.name!r} (see `beacons users list`)")
        store.set_password(args.name, hash_password(check_password_text(_read_password())))
    log.info("user.password_set", user=args.name)
    print(f"password set for {args.name}")
    return EXIT_OK


@command("users sessions")
def cmd_sessions(args: argparse.Namespace) -> int:
    with _store(args) as store:
        rows = store.list_user_sessions(args.name)
    now = iso(SYSTEM.now())
    listed: list[dict[str, str]] = [
        {
            "id": s.id,
            "created_at": s.created_at,
            "expires_at": s.expires_at,
            "address": s.address or "",
            "state": "revoked" if s.revoked_at else ("expired" if s.expires_at <= now else "active"),
        }
        for s in rows
    ]
    if args.format == "json":
        print(json.dumps({"user": args.name, "sessions": listed}, indent=2))
        return EXIT_OK
    if not listed:
        print(f"{args.name} has no sessions", file=sys.stderr)
        return EXIT_OK
    print(f"{'id':<16}  {'state':<7}  {'signed in (UTC)':<19}  {'until (UTC)':<19}  address")
    for s in listed:
        print(f"{s['id']:<16}  {s['state']:<7}  {s['created_at'][:19]:<19}  {s['expires_at'][:19]:<19}  {s['address']}")
    return EXIT_OK


@command("users revoke")
def cmd_revoke(args: argparse.Namespace) -> int:
    now = SYSTEM.now()
    with _store(args) as store:
        ended = store.revoke_user_sessions(args.name, now=now, session_id=args.session)
        tokens = store.revoke_tokens(args.name, now=now) if args.tokens else 0
    log.info("user.revoked", user=args.name, sessions=ended, tokens=tokens)
    what = f"{ended} session{'s' if ended != 1 else ''}"
    if args.tokens:
        what += f" and {tokens} token{'s' if tokens != 1 else ''}"
    print(f"revoked {what} of {args.name}")
    return EXIT_OK
