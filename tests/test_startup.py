"""Start-up work that a cycle of 304s does not need (issue 16): an up-to-date SQLite file is opened without
importing sqlite_utils (and the numpy it imports); a file the current migrations have not seen is checked in full."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from beacons.storage import Storage
from beacons.storage.sqlite import migrations_fingerprint

OPEN = """
import sys
from beacons.storage import Storage
s = Storage(sys.argv[1])
applied, known = s.backend.migrations() if sys.argv[2] == "list" else ([], [])
s.close()
print("sqlite_utils" in sys.modules and "imported" or "not imported", applied == known)
"""


def _open(path: Path, list_migrations: bool = False) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", OPEN, str(path), "list" if list_migrations else "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_startup_up_to_date_file_opens_without_sqlite_utils(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    assert _open(db) == "imported True"  # a new file: every migration applied through sqlite_utils
    assert _user_version(db) == migrations_fingerprint() != 0
    assert _open(db) == "not imported True"  # the same migrations file: nothing to check
    assert _open(db, list_migrations=True) == "imported True"  # `beacons db` still lists them all


def test_startup_file_from_other_migrations_is_checked_in_full(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    Storage(db).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 12345")  # as left by a release with other migrations
    conn.close()
    store = Storage(db)
    try:
        applied, known = store.backend.migrations()
        assert applied == known and len(known) > 5
    finally:
        store.close()
    assert _user_version(db) == migrations_fingerprint()
    assert _open(db) == "not imported True"
