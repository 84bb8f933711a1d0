"""SQL for tests that set up or inspect rows directly, on either backend (``?`` placeholders)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from beacons.models import Beacon
from beacons.storage import Storage


def rows(store: Storage, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return store.backend.read(sql, args).rows


def one(store: Storage, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    return store.backend.read(sql, args).one()


def scalar(store: Storage, sql: str, args: Sequence[Any] = ()) -> Any:
    return store.backend.read(sql, args).scalar()


def write(store: Storage, sql: str, args: Sequence[Any] = ()) -> int:
    with store.backend.transaction() as tx:
        return tx.execute(sql, args).rowcount


def listed(store: Storage, **kw: Any) -> list[Beacon]:
    """Every beacon the filter matches, thread members included (up to 1000), highest priority first."""
    from beacons.queue import QueueFilter, list_entries

    kw.setdefault("limit", 1000)
    kw.setdefault("threads", False)
    return [e.beacon for e in list_entries(store, QueueFilter(**kw)).entries]
