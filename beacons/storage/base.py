"""What every backend gives the concern modules: reads, one write transaction, a few dialect words.

SQL in the concern modules is written once, with ``?`` placeholders, in the
subset SQLite (3.39+) and PostgreSQL share: ``ON CONFLICT DO NOTHING``,
``RETURNING``, row values, ``IS NOT DISTINCT FROM``, ``COALESCE``. Where the two
differ, the backend names the difference (``skip_locked``). Timestamps go in as
aware ``datetime`` values and come out as one string format on both backends
(``iso``): ``2026-11-23T10:00:00.000000+00:00``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol


def iso(value: datetime) -> str:
    """The one stored text form of a time: UTC, microseconds, offset (sorts as text on SQLite)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def iso_text(text: str | None) -> str | None:
    """Any ISO-8601 text (seconds or microseconds, any offset, ``Z``) in the stored form; None stays None."""
    if text is None or text == "":
        return None
    try:
        return iso(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return text


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_epoch(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def to_epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


@dataclass(frozen=True, slots=True)
class Result:
    rows: list[tuple[Any, ...]]
    rowcount: int
    columns: tuple[str, ...] = ()

    def one(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


class Tx(Protocol):
    """One open write transaction."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Result: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def savepoint(self) -> AbstractContextManager[Savepoint]: ...

    def lock(self, key: str) -> None:
        """Serialise writers on ``key`` until the transaction ends (PostgreSQL advisory lock; SQLite holds one lock)."""


class Savepoint(Protocol):
    def rollback(self) -> None:
        """Undo what was done since the savepoint; the transaction goes on."""


class Backend(Protocol):
    name: str  # "sqlite" | "postgresql"
    display: str  # the database as logs and errors may show it (no password)
    skip_locked: str  # " FOR UPDATE SKIP LOCKED" where rows are locked, "" where the whole file is

    def read(self, sql: str, args: Sequence[Any] = ()) -> Result: ...

    def transaction(self) -> AbstractContextManager[Tx]: ...

    def migrate(self) -> list[str]: ...

    def migrations(self) -> tuple[list[str], list[str]]:
        """(applied, known) migration names."""
        ...

    def server_version(self) -> str: ...

    def check_writable(self) -> None:
        """Raise ``StoreError`` when the database refuses a write transaction."""

    def ping(self, timeout: float) -> None:
        """Raise ``StoreError`` unless the database answers ``SELECT 1`` within about ``timeout`` seconds."""

    def after_copy(self, table: str) -> None:
        """After ``beacons db copy`` wrote ids into ``table``: make new ids start above them."""

    def close(self) -> None: ...


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def marks(n: int) -> str:
    return ",".join("?" * n)
