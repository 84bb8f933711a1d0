"""The docs name every CLI command and every key of the default config.yaml.

The check reads README.md, the one document users get (simonw/datasette
tests/test_docs.py does the same for its options).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from beacons import cli
from beacons.config import default_config_text, parse_config

REPO = Path(__file__).resolve().parents[1]


def docs_text() -> str:
    files = [REPO / "README.md"]
    return "\n".join(f.read_text(encoding="utf-8") for f in files if f.is_file())


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = list(_subcommands(sub, f"{prefix}{name} "))
                if not nested or f"{prefix}{name}" in cli.COMMANDS:  # a group that runs on its own (`sources`)
                    yield f"{prefix}{name}"
                yield from nested


def cli_commands() -> list[str]:
    cli._load_plugins()
    return sorted(set(_subcommands(cli.build_parser())))


def config_keys(data: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, key) for every mapping key in the YAML, list items as ``[]``."""
    if isinstance(data, dict):
        for key, value in data.items():
            full = f"{path}.{key}" if path else str(key)
            yield full, str(key)
            yield from config_keys(value, full)
    elif isinstance(data, list):
        for item in data:
            yield from config_keys(item, f"{path}[]")


def test_docs_default_config_is_valid() -> None:
    config = parse_config(default_config_text(), env={})
    assert config.sources and config.brands


def test_docs_commands_are_found() -> None:
    commands = cli_commands()
    for name in ("run", "queue list", "queue show", "classify", "sources", "demo"):
        assert name in commands


def test_docs_keys_are_found() -> None:
    keys = dict(config_keys(yaml.safe_load(default_config_text())))
    for path in (
        "database",
        "brands[].aliases",
        "brands[].products[].name",
        "sources[].interval",
        "fetch.max_bytes",
        "logging.format",
    ):
        assert path in keys


@pytest.mark.parametrize("command", cli_commands())
def test_docs_mention_every_cli_command(command: str) -> None:
    documented = f"beacons {command}" in docs_text()
    assert documented, f"`beacons {command}` is not in README.md"


@pytest.mark.parametrize(("path", "key"), sorted(dict(config_keys(yaml.safe_load(default_config_text()))).items()))
def test_docs_mention_every_default_config_key(path: str, key: str) -> None:
    text = docs_text()
    dotted = re.sub(r"\[\]", "", path)
    found = f"`{key}`" in text or f"`{dotted}`" in text or re.search(rf"^\s*(- )?{re.escape(key)}:", text, re.MULTILINE)
    assert found, f"config key {path} (`{key}`) is not documented in README.md"
