"""Issue 13 §5: every sub-command's --help explains each argument and option and shows an example."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from beacons import cli
from beacons.cli_help import subparsers


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    cli._load_plugins()
    return subparsers(cli.build_parser())


@pytest.mark.parametrize("command", [name for name, _ in _commands()])
def test_cli_help_explains_every_argument_with_an_example(command: str, capsys: Any) -> None:
    parser = dict(_commands())[command]
    with pytest.raises(SystemExit) as info:
        cli.main([*command.split(), "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:\n" in out, f"`beacons {command} --help` shows no example"
    examples = out.split("examples:\n", 1)[1]
    assert f"beacons {command}".strip() in examples, f"the examples of `beacons {command}` do not run it"
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help and action.help.strip(), f"`beacons {command}`: {name} has no help text"
        assert name in out


def test_cli_help_keeps_example_lines_as_written(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        cli.main(["queue", "list", "--help"])
    lines = capsys.readouterr().out.split("examples:\n", 1)[1].splitlines()
    assert "  beacons queue list --mine --as alice" in lines
