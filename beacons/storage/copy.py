"""``beacons db copy``: move every table of one database into another, then prove it by counts and checksums.

Tables go in ``schema.TABLES`` order (parents first) with their ids, in
batches of one transaction each, as upserts on the table's key: running it
again after an interruption, or after the source changed, brings the target
level with the source and copies nothing twice. Checksums hash every row with times in the one stored form, so an SQLite file and a
PostgreSQL database holding the same rows give the same digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from beacons.storage.base import Backend, iso_text
from beacons.storage.schema import TABLES, Table

BATCH = 1000


@dataclass(frozen=True, slots=True)
class TableReport:
    table: str
    copied: int
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


def _rows(backend: Backend, table: Table) -> Iterator[list[tuple[Any, ...]]]:
    """Every row in key order, a batch at a time (keyset on the key, no OFFSET)."""
    cols = ", ".join(table.columns)
    order = ", ".join(table.key)
    last: tuple[Any, ...] | None = None
    while True:
        where, args = "", []
        if last is not None:
            where = f" WHERE ({order}) > ({', '.join('?' * len(table.key))})"
            args = list(last)
        batch = backend.read(f"SELECT {cols} FROM {table.name}{where} ORDER BY {order} LIMIT ?", [*args, BATCH]).rows
        if not batch:
            return
        yield batch
        idx = [table.columns.index(k) for k in table.key]
        last = tuple(batch[-1][i] for i in idx)


def _canonical(table: Table, row: tuple[Any, ...]) -> list[Any]:
    out = []
    for name, value in zip(table.columns, row, strict=True):
        if name in table.times and isinstance(value, str):
            value = iso_text(value)
        elif isinstance(value, bool):
            value = int(value)
        out.append(value)
    return out


def checksum(backend: Backend, table: Table) -> tuple[int, str]:
    """(rows, digest): the sum of every row's SHA-256, so the digest does not depend on how text keys collate."""
    total = n = 0
    for batch in _rows(backend, table):
        for row in batch:
            line = json.dumps(_canonical(table, row), default=str, ensure_ascii=False).encode()
            total = (total + int.from_bytes(hashlib.sha256(line).digest(), "big")) % (1 << 256)
            n += 1
    return n, f"{total:064x}"[:16]


def copy_database(
    source: Backend, target: Backend, *, progress: Callable[[str], None] = lambda _: None
) -> list[TableReport]:
    """Copy every table from ``source`` into ``target`` (both migrated), then compare counts and checksums."""
    reports = []
    for table in (t for t in TABLES if t.copied):
        cols = ", ".join(table.columns)
        marks = ", ".join("?" * len(table.columns))
        keys = ", ".join(table.key)
        rest = [c for c in table.columns if c not in table.key]
        sets = ", ".join(f"{c} = excluded.{c}" for c in rest) or f"{table.key[0]} = excluded.{table.key[0]}"
        sql = f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        copied = 0
        for batch in _rows(source, table):
            with target.transaction() as tx:
                tx.executemany(sql, [_canonical(table, r) for r in batch])
            copied += len(batch)
            progress(f"{table.name}: {copied} rows")
        if table.serial:
            target.after_copy(table.name)
        source_rows, source_sum = checksum(source, table)
        target_rows, target_sum = checksum(target, table)
        reports.append(TableReport(table.name, copied, source_rows, target_rows, source_sum, target_sum))
    return reports
