"""Issue 13 §4: run from a folder with no config.yaml, `beacons` says which config it loaded and where the database is; `doctor` names the config file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from beacons.cli import EXIT_OK


def beacons(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BEACONS_CONFIG", "BEACONS_USER")}
    return subprocess.run(
        [sys.executable, "-m", "beacons", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_without_config_yaml_says_it_uses_the_packaged_sample_and_where_the_database_is(tmp_path: Path) -> None:
    done = beacons(tmp_path, "queue", "list")
    assert done.returncode == EXIT_OK, done.stderr
    assert "packaged sample config" in done.stderr
    assert str(tmp_path.resolve() / "beacons.db") in done.stderr
    bare = beacons(tmp_path)
    assert "config: the packaged sample config" in bare.stdout
    assert f"database: {tmp_path.resolve() / 'beacons.db'}" in bare.stdout


def test_cli_with_config_yaml_says_nothing_extra(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("brands: [{name: Acme}]\ndatabase: here.db\n", encoding="utf-8")
    done = beacons(tmp_path, "queue", "list")
    assert done.returncode == EXIT_OK and "packaged" not in done.stderr
    bare = beacons(tmp_path)
    assert f"config: {tmp_path.resolve() / 'config.yaml'}" in bare.stdout
    assert f"database: {tmp_path.resolve() / 'here.db'}" in bare.stdout


def test_doctor_names_the_config_file_and_the_database(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "brands: [{name: Acme}]\ndatabase: here.db\nclassifier: {model: rules}\n", encoding="utf-8"
    )
    done = beacons(tmp_path, "doctor", "--no-sources", "--format", "json")
    details = [c["detail"] for c in json.loads(done.stdout)["checks"] if c["name"] == "config"]
    assert any(d.startswith(f"{tmp_path.resolve() / 'config.yaml'}:") for d in details), details
    assert f"database at {tmp_path.resolve() / 'here.db'}" in details
    (tmp_path / "empty").mkdir()
    packaged = beacons(tmp_path / "empty", "doctor", "--no-sources")
    assert "packaged sample config" in packaged.stdout
