"""The SQLite backend: one file, WAL mode, one connection per ``Storage`` (one per thread).

A write transaction is ``BEGIN IMMEDIATE``: SQLite has one writer at a time, so
every guarded statement of the concern modules is already serialised here;
PostgreSQL needs the row locks that ``skip_locked`` adds.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beacons.errors import StoreError
from beacons.storage.base import Result, iso

if TYPE_CHECKING:
    import sqlite_utils


def fault_hint(exc: sqlite3.Error) -> str:
    """What to change, for the SQLite failures an operator can fix (README, "Database faults")."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return " (another process holds a write lock; the poll is retried with backoff)"
    if "full" in text:
        return " (the disk or the database size limit is full: free space; the poll is retried with backoff)"
    if "readonly" in text or "read-only" in text or "query_only" in text:
        return " (the database file or its folder is read-only: check permissions of database: and its folder)"
    return ""


def create_private(path: str) -> None:
    """Create a new database file readable by its owner only (0600).

    SQLite gives the ``-wal`` and ``-shm`` files the permissions of the database file, so they are private too.
    An existing file keeps its mode: an operator who wants a group to read it runs ``chmod`` once.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _args(args: Sequence[Any]) -> list[Any]:
    return [iso(a) if isinstance(a, datetime) else a for a in args]


def _rollback(conn: sqlite3.Connection) -> None:
    # After SQLITE_FULL or an I/O error SQLite may already have rolled back itself.
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


class _Savepoint:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK TO SAVEPOINT beacons_sp")


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Result:
        cur = self.conn.execute(sql, _args(args))
        rows = cur.fetchall()
        return Result(rows, cur.rowcount, tuple(d[0] for d in cur.description or ()))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, [_args(r) for r in rows])

    @contextmanager
    def savepoint(self) -> Iterator[_Savepoint]:
        self.conn.execute("SAVEPOINT beacons_sp")
        try:
            yield _Savepoint(self.conn)
        finally:
            self.conn.execute("RELEASE SAVEPOINT beacons_sp")

    def lock(self, key: str) -> None:
        """BEGIN IMMEDIATE already holds the only write lock there is."""


class SQLiteBackend:
    name = "sqlite"
    skip_locked = ""

    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = str(path)
        self.display = self.path
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                create_private(self.path)
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db: sqlite_utils.Database | None = None
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            # Reads through a memory map instead of read() calls: each web request opens its own connection,
            # so its page cache starts empty; the insights' range reads run a third faster (issue 14, bench/insights.py).
            self.conn.execute("PRAGMA mmap_size=268435456")
        except (sqlite3.Error, OSError) as exc:  # OSError: the folder cannot be created
            raise StoreError(
                f"cannot open database {self.path}: {exc} (check the database: path and its folder's permissions)"
            ) from exc

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite_utils' view of the connection, for the migrations (imported on first use: it imports numpy)."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def migrate(self) -> list[str]:
        """Apply the migrations this file lacks; the names applied now.

        A file last migrated by this very ``sqlite_migrations.py`` (its fingerprint is in the
        header's ``user_version``) has nothing to apply: that is known without importing
        sqlite_utils and numpy, a third of a start-up's imports (issue 16).
        """
        fingerprint = migrations_fingerprint()
        try:
            if fingerprint and self.conn.execute("PRAGMA user_version").fetchone()[0] == fingerprint:
                return []
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read database {self.path}: {exc}{fault_hint(exc)}") from exc
        from beacons.storage import sqlite_migrations

        before = set(self.migrations()[0])
        try:
            for migration_set in sqlite_migrations.SETS:
                migration_set.apply(self.db)
            applied, known = self.migrations()
            # stamped only when what ran is what the file declares (a patched or partial list must not stamp it)
            if fingerprint and set(known) == _declared_migrations():
                self.conn.execute(f"PRAGMA user_version = {fingerprint}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot migrate database {self.path}: {exc}{fault_hint(exc)}") from exc
        return [m for m in applied if m not in before]

    def migrations(self) -> tuple[list[str], list[str]]:
        from beacons.storage import sqlite_migrations

        known = [f"{s.name}/{m.name}" for s in sqlite_migrations.SETS for m in s._migrations]
        try:
            applied = [f"{s.name}/{a.name}" for s in sqlite_migrations.SETS for a in s.applied(self.db)]
        except sqlite3.OperationalError:  # no migrations table: a new or foreign file
            applied = []
        return applied, known

    def read(self, sql: str, args: Sequence[Any] = ()) -> Result:
        try:
            cur = self.conn.execute(sql, _args(args))
            rows = cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read database {self.path}: {exc}{fault_hint(exc)}") from exc
        return Result(rows, cur.rowcount, tuple(d[0] for d in cur.description or ()))

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        """One write transaction; any SQLite failure inside it rolls back and becomes a ``StoreError``."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to database {self.path}: {exc}{fault_hint(exc)}") from exc
        try:
            yield _Tx(conn)
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                # A full disk, a read-only file or a lock met mid-write: nothing of it stays.
                raise StoreError(
                    f"write to database {self.path} failed and was rolled back: {exc}{fault_hint(exc)}"
                ) from exc
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise StoreError(f"could not commit to {self.path}: {exc}{fault_hint(exc)}") from exc

    def server_version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def check_writable(self) -> None:
        with self.transaction():
            pass

    def ping(self, timeout: float) -> None:
        self.read("SELECT 1")  # a local file: it answers at once or raises

    def after_copy(self, table: str) -> None:
        """An INTEGER PRIMARY KEY already counts on from the largest id."""

    def close(self) -> None:
        self.conn.close()


# -- checks for ``beacons doctor``: a file that may be broken is read without writing to it --------


@cache
def _declared_migrations() -> set[str]:
    """The migrations ``sqlite_migrations.py`` declares, read from its text: ``set/name`` each."""
    try:
        source = Path(__file__).with_name("sqlite_migrations.py").read_text(encoding="utf-8")
    except OSError:
        return set()
    sets = dict(re.findall(r'^(\w+) = Migrations\("([^"]+)"\)', source, flags=re.M))
    return {
        f"{sets.get(var, var)}/{name}" for var, name in re.findall(r'^@(\w+)\(name="([^"]+)"\)', source, flags=re.M)
    }


@cache
def migrations_fingerprint() -> int:
    """A 31-bit hash of ``sqlite_migrations.py``'s bytes (never 0); 0 when the source is not there to read."""
    try:
        source = Path(__file__).with_name("sqlite_migrations.py").read_bytes()
    except OSError:
        return 0
    return int.from_bytes(hashlib.sha256(source).digest()[:4], "big") & 0x7FFFFFFF or 1


def inspect_file(path: str) -> tuple[list[str], int, int]:
    """(integrity_check lines, migrations applied, migrations known), reading the file read-only."""
    from beacons.storage import sqlite_migrations

    file = Path(path)
    known = sum(len(s._migrations) for s in sqlite_migrations.SETS)
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            try:
                applied = int(conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0])
            except sqlite3.OperationalError:  # no migrations table: an empty or foreign file
                applied = 0
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {path}: {exc} (is it an SQLite file? restore it from a backup)") from exc
    return result, applied, known


def try_write_lock(path: str, *, timeout: float = 2.0) -> str | None:
    """Take the write lock and rewrite one header field to its own value, then roll back.

    None when that worked; else "locked: <why>" when another process holds the lock, or the error.
    """
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        prefix = "locked: " if "locked" in str(exc).lower() else ""
        return f"{prefix}{exc}{fault_hint(exc)}"
    return None
