"""Examples and argument help for every ``beacons`` sub-command's ``--help`` (issue 13 §5).

Each command module defines its own arguments; this module, applied once the
parser is built, gives every sub-command an ``examples:`` epilog (unless it
wrote its own) and a help line to any argument left without one, so ``--help``
always explains each argument and shows a real command line.
``tests/test_cli_help.py`` walks every sub-command and checks both.
"""

from __future__ import annotations

import argparse

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": ("beacons demo", "beacons doctor", "beacons run --config config.yaml"),
    "run": ("beacons run", "beacons run --once --config config.yaml"),
    "rescan": ("beacons rescan", "beacons rescan --since 2d --source reddit-raspberry-pi"),
    "queue": ("beacons queue list", "beacons queue show 42", "beacons queue claim 42 --by alice"),
    "queue list": (
        "beacons queue list",
        "beacons queue list --mine --as alice",
        "beacons queue list --q refund --wide",
    ),
    "queue show": ("beacons queue show 42", "beacons queue show 42 --format json"),
    "queue claim": ("beacons queue claim 42 --by alice", "beacons queue claim 42 --by lead --assignee bob"),
    "queue resolve": ('beacons queue resolve 42 --note "fixed in 2.4.2"',),
    "queue dismiss": ('beacons queue dismiss 42 --note "a joke, not a problem"',),
    "queue reroute": ('beacons queue reroute 42 support --note "a real outage"',),
    "queue relabel": (
        "beacons queue relabel 42 --sentiment negative --intent bug_outage",
        "beacons queue relabel 42 --queue advocacy --no-intents",
    ),
    "queue note": ('beacons queue note 42 "asked for their firmware version"',),
    "queue export": (
        "beacons queue export --status open -o open.csv",
        "beacons queue export --format json --queue all",
    ),
    "queue reopen": ("beacons queue reopen 42",),
    "queue undo": ("beacons queue undo 42 --by alice",),
    "queue reassign": ("beacons queue reassign 42 bob",),
    "classify": ("""echo '{"id": 1, "text": "My Raspberry Pi 5 will not boot"}' | beacons classify""",),
    "sources": ("beacons sources", "beacons sources --format json", "beacons sources test acme-forum"),
    "sources test": ("beacons sources test acme-forum", "beacons sources test steam-reviews --format json"),
    "sources add": (
        "beacons sources add rss url=https://status.acme.example/history.rss --interval 15m",
        "beacons sources add youtube_search query=RouterX token_env=YOUTUBE_API_KEY --id acme-youtube",
        "beacons sources add html_page url=https://community.acme.example/c/routerx items=li.topic "
        "fields.title='h3 a::text' fields.url='h3 a::attr(href)' --dry-run",
    ),
    "demo": ("beacons demo", "beacons demo --database demo.db --format json"),
    "train": ("beacons train --out model/", "beacons train --with-feedback --config config.yaml --eval"),
    "eval": ("beacons eval", "beacons eval --model model/ --split dev --format json"),
    "serve": ("beacons serve", "beacons serve --host 0.0.0.0 --port 8080 --proxy-headers"),
    "route": ("beacons route --explain 42", "beacons route --explain 42 --format json"),
    "alerts": ("beacons alerts list --status dead", "beacons alerts retry --dead"),
    "alerts list": ("beacons alerts list", "beacons alerts list --status dead --channel support-slack"),
    "alerts retry": ("beacons alerts retry --dead", "beacons alerts retry 17 18"),
    "alerts test": ("beacons alerts test support-slack",),
    "doctor": ("beacons doctor", "beacons doctor --no-sources --format json"),
    "db": ("beacons db status", "beacons db migrate"),
    "db migrate": ("beacons db migrate --config config.yaml",),
    "db status": ("beacons db status", "beacons db status --format json"),
    "db copy": ("beacons db copy --to postgresql://beacons@db/beacons",),
    "fleet": ("beacons fleet", "beacons fleet --format json"),
    "users": ("beacons users add alice --role lead", "beacons users list"),
    "users add": ("beacons users add alice", "beacons users add dana --role admin"),
    "users list": ("beacons users list", "beacons users list --format json"),
    "users disable": ("beacons users disable alice",),
    "users token": ("beacons users token alice",),
    "users password": ("beacons users password alice", "printf '%s' \"$PASSWORD\" | beacons users password alice"),
    "users sessions": ("beacons users sessions alice",),
    "users revoke": ("beacons users revoke alice --tokens", "beacons users revoke alice --session 3f2a9c"),
}

# Help for arguments a command left without one, by argparse ``dest``.
ARGUMENT_HELP: dict[str, str] = {
    "format": "how to print: text or table for people (the default), json, jsonl or csv for programs",
    "id": "beacon id (from `beacons queue list`)",
    "queue": "the queue: support, advocacy or none",
    "text": "the note's text (quote it)",
    "status": "only beacons in this status (open: new or claimed)",
    "brand": "only this brand, e.g. Acme",
    "product": "only this product, e.g. RouterX",
    "team": "only this team's beacons",
    "name": "the person's user name, e.g. alice",
}


class ExampleFormatter(argparse.HelpFormatter):
    """Wraps descriptions as usual but keeps the lines of an ``examples:`` epilog as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "examples:\n" in text:
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def epilog(examples: tuple[str, ...]) -> str:
    return "examples:\n" + "\n".join(f"  {e}" for e in examples)


def has_example(parser: argparse.ArgumentParser) -> bool:
    return "example" in (parser.epilog or "").lower()


def subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """(command, parser) for the top level and every sub-command, nested ones as ``"queue list"``."""
    out = [(prefix.strip(), parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += subparsers(sub, f"{prefix}{name} ")
    return out


def apply_help(parser: argparse.ArgumentParser) -> None:
    """Give every sub-command its examples and every argument a help line (see the module docstring)."""
    for name, sub in subparsers(parser):
        if name in EXAMPLES and not has_example(sub):
            sub.epilog = "\n\n".join(filter(None, (sub.epilog, epilog(EXAMPLES[name]))))
        if has_example(sub) and sub.formatter_class is argparse.HelpFormatter:
            sub.formatter_class = ExampleFormatter
        for action in sub._actions:
            if action.help is None and action.dest in ARGUMENT_HELP:
                action.help = ARGUMENT_HELP[action.dest]
