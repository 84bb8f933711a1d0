"""The PostgreSQL backend: psycopg 3 with a connection pool shared by every ``Storage`` on one URL.

Reads run on an autocommit connection and never open a transaction; a write is
one ``conn.transaction()``. Connections are checked when taken from the pool, so
after the server restarts the next call reconnects and the failed one raised a
``StoreError`` that the caller retries (the poll's transaction rolled back whole).
The password never reaches a message: errors and logs show ``display_url``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from beacons.errors import StoreError
from beacons.storage.base import Result, iso
from beacons.storage.postgres_migrations import MIGRATIONS

_MIGRATION_LOCK = 0x6265_6163  # "beac": one migrating process at a time
_POOLS: dict[str, tuple[Any, int]] = {}  # url -> (pool, users)
_POOLS_LOCK = threading.Lock()


def is_postgres_url(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))


def display_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for logs, errors and ``beacons db status``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


@functools.lru_cache(maxsize=512)
def _sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _in(args: Sequence[Any]) -> list[Any]:
    # PostgreSQL text cannot hold NUL: keep the post, with U+FFFD where the NUL was (SQLite keeps it as is).
    return [a.replace("\x00", "\ufffd") if isinstance(a, str) and "\x00" in a else a for a in args]


def _out(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(iso(v) if isinstance(v, datetime) else v for v in row)


_TIME_TYPES = (1114, 1184)  # the OIDs of timestamp and timestamptz, the only columns psycopg reads as datetime


def _rows(cur: Any) -> list[tuple[Any, ...]]:
    """The cursor's rows, times as the stored text form; rows without a time column go as psycopg read them
    (an insights read returns 40,000 rows of text and counts: no per-row pass for nothing)."""
    if not cur.description:
        return []
    rows: list[tuple[Any, ...]] = cur.fetchall()
    if any(d.type_code in _TIME_TYPES for d in cur.description):
        return [_out(r) for r in rows]
    return rows


class _Savepoint:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK TO SAVEPOINT beacons_sp")


class _Tx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Result:
        cur = self.conn.execute(_sql(sql), _in(args))
        rows = _rows(cur)
        return Result(rows, cur.rowcount, tuple(d.name for d in cur.description or ()))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(_sql(sql), [_in(r) for r in rows])

    @contextmanager
    def savepoint(self) -> Iterator[_Savepoint]:
        self.conn.execute("SAVEPOINT beacons_sp")
        try:
            yield _Savepoint(self.conn)
        finally:
            self.conn.execute("RELEASE SAVEPOINT beacons_sp")

    def lock(self, key: str) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


class PostgresBackend:
    name = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, *, timeout: float = 10.0, max_size: int = 8) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ModuleNotFoundError as exc:
            raise StoreError(
                "database: is a postgresql:// URL but psycopg is not installed: pip install 'beacons[postgres]'"
            ) from exc
        self.url = url
        self.display = display_url(url)
        self._psycopg = psycopg
        self._closed = False
        with _POOLS_LOCK:
            entry = _POOLS.get(url)
            if entry is None:
                self._probe(timeout)
                pool = ConnectionPool(
                    url,
                    min_size=1,
                    max_size=max_size,
                    timeout=timeout,
                    kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
                    check=ConnectionPool.check_connection,
                    name="beacons",
                    open=False,
                )
                pool.open(wait=False)
                entry = (pool, 0)
            self.pool = entry[0]
            _POOLS[url] = (self.pool, entry[1] + 1)

    def _probe(self, timeout: float) -> None:
        """Connect once without the pool, so a wrong URL or a server that is down gives its own error now."""
        try:
            conn = self._psycopg.connect(self.url, connect_timeout=max(1, int(timeout)))
            conn.close()
        except self._psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to database {self.display}: {self._clean(exc)} (check database: and that the server runs)"
            ) from None

    def _clean(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split())
        secret = _password(self.url)
        return text.replace(secret, "***") if secret else text

    def _error(self, what: str, exc: BaseException) -> StoreError:
        """``what`` names the database as ``{db}``."""
        return StoreError(f"{what.format(db=self.display)}: {self._clean(exc)}")

    def migrate(self) -> list[str]:
        done: list[str] = []
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS beacons_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                applied = {r[0] for r in conn.execute("SELECT name FROM beacons_migrations").fetchall()}
                for name, statements in MIGRATIONS:
                    if name in applied:
                        continue
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO beacons_migrations (name) VALUES (%s)", [name])
                    done.append(name)
        except self._psycopg.Error as exc:
            raise self._error("cannot migrate database {db}", exc) from None
        return done

    def migrations(self) -> tuple[list[str], list[str]]:
        known = [name for name, _ in MIGRATIONS]
        try:
            rows = self.read("SELECT name FROM beacons_migrations ORDER BY applied_at, name").rows
        except StoreError:
            rows = []
        return [r[0] for r in rows], known

    def read(self, sql: str, args: Sequence[Any] = ()) -> Result:
        try:
            with self.pool.connection() as conn:
                cur = conn.execute(_sql(sql), _in(args))
                rows = _rows(cur)
                return Result(rows, cur.rowcount, tuple(d.name for d in cur.description or ()))
        except self._psycopg.Error as exc:
            raise self._error("cannot read database {db}", exc) from None
        except Exception as exc:  # psycopg_pool.PoolTimeout: every connection busy or the server down
            if type(exc).__module__.startswith("psycopg_pool"):
                raise self._error(
                    "no connection to database {db} (the server is down or every connection is busy)", exc
                ) from None
            raise

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                yield _Tx(conn)
        except self._psycopg.Error as exc:
            raise self._error("write to database {db} failed and was rolled back", exc) from None
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg_pool"):
                raise self._error(
                    "no connection to database {db} (the server is down or every connection is busy)", exc
                ) from None
            raise

    def server_version(self) -> str:
        return f"PostgreSQL {self.read('SHOW server_version').scalar()}"

    def ping(self, timeout: float) -> None:
        """``SELECT 1`` waiting at most ``timeout`` for a connection: a lost server fails a health check in
        seconds instead of the pool's full ``timeout`` (a load balancer gives up long before that)."""
        try:
            with self.pool.connection(timeout=timeout) as conn:
                conn.execute("SELECT 1")
        except self._psycopg.Error as exc:
            raise self._error("no answer from database {db}", exc) from None
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg_pool"):
                raise self._error("no connection to database {db} within the health check's wait", exc) from None
            raise

    def check_writable(self) -> None:
        """Open a write transaction: a transaction id is only given to one that may write (read-only servers refuse)."""
        with self.transaction() as tx:
            tx.execute("SELECT txid_current()")

    def after_copy(self, table: str) -> None:
        with self.transaction() as tx:
            tx.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _POOLS_LOCK:
            pool, users = _POOLS[self.url]
            if users <= 1:
                del _POOLS[self.url]
                pool.close()
            else:
                _POOLS[self.url] = (pool, users - 1)
