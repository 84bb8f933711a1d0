"""Every query beacons makes, behind one ``Storage`` class; the rest of the code calls named methods.

``open_storage(database)`` picks the backend from the ``database:`` setting: a
path is an SQLite file (``sqlite.py``), a ``postgresql://`` URL is PostgreSQL
(``postgres.py``). The methods come from one mixin per concern, each written
once for both backends in their shared SQL:

- ``sources.py``: source rows, poll state and counters;
- ``mentions.py``: a poll's mentions, keys, beacons and outbox rows in one transaction;
- ``beacons.py``: the one list query (keyset paging), a beacon, notes, history, facets, feedback labels;
- ``lifecycle.py``: claim, resolve, dismiss, re-route and notes, each one guarded transaction;
- ``threads.py``: linking beacons about the same problem, at write time;
- ``outbox.py``: the alert outbox and alert state (``Storage.outbox``);
- ``fleet.py``: several workers: source leases, host affinity, leaders of periodic jobs;
- ``sessions.py``: web sessions revoked at sign-out;
- ``users.py``: people, their roles, personal tokens, sign-in sessions and failed sign-ins;
- ``unmatched.py``: posts that named no brand (kept for ``retention.unmatched``) and ``beacons rescan``'s writes;
- ``insights.py``: the grouped range reads behind ``/insights`` and ``beacons report``.

The schema is declared once in ``schema.py``; each backend has its own
forward-only migrations (``sqlite_migrations.py``, ``postgres_migrations.py``),
applied when a ``Storage`` opens (and by ``beacons db migrate``).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from beacons.storage.base import Backend
from beacons.storage.beacons import BeaconsMixin
from beacons.storage.fleet import FleetMixin
from beacons.storage.insights import InsightsMixin
from beacons.storage.lifecycle import LifecycleMixin
from beacons.storage.mentions import MentionsMixin
from beacons.storage.outbox import OutboxStore
from beacons.storage.postgres import display_url, is_postgres_url
from beacons.storage.sessions import SessionsMixin
from beacons.storage.sla import SlaMixin
from beacons.storage.source_controls import SourceControlsMixin
from beacons.storage.sources import SourcesMixin
from beacons.storage.threads import ThreadsMixin
from beacons.storage.types import Item, ListedBeacon, QueueFilter, SaveResult
from beacons.storage.undo import UndoMixin
from beacons.storage.unmatched import UnmatchedMixin
from beacons.storage.users import UsersMixin

__all__ = [
    "Item",
    "ListedBeacon",
    "QueueFilter",
    "SaveResult",
    "Storage",
    "display_url",
    "is_postgres_url",
    "open_backend",
    "open_storage",
]


def open_backend(database: str | Path, *, timeout: float = 10.0) -> Backend:
    if isinstance(database, str) and is_postgres_url(database):
        from beacons.storage.postgres import PostgresBackend

        return PostgresBackend(database, timeout=timeout)
    from beacons.storage.sqlite import SQLiteBackend

    return SQLiteBackend(database, timeout=timeout)


class Storage(
    SourcesMixin,
    MentionsMixin,
    BeaconsMixin,
    LifecycleMixin,
    ThreadsMixin,
    FleetMixin,
    SessionsMixin,
    UsersMixin,
    UnmatchedMixin,
    UndoMixin,
    SourceControlsMixin,
    SlaMixin,
    InsightsMixin,
):
    """One database. For SQLite one instance per thread; on PostgreSQL instances share a pool per URL."""

    def __init__(self, database: str | Path, *, timeout: float = 10.0, migrate: bool = True) -> None:
        self.database = str(database)
        self.backend = open_backend(database, timeout=timeout)
        try:
            if migrate:
                self.backend.migrate()
        except BaseException:
            self.backend.close()
            raise

    @property
    def kind(self) -> str:
        return self.backend.name

    @property
    def display(self) -> str:
        """The database as logs and errors show it (a URL's password as ***)."""
        return self.backend.display

    @cached_property
    def outbox(self) -> OutboxStore:
        return OutboxStore(self)

    @property
    def schema_version(self) -> int:
        return len(self.backend.migrations()[0])

    def ping(self, timeout: float = 2.0) -> None:
        """Raise ``StoreError`` unless the database answers within about ``timeout`` seconds (``/healthz``)."""
        self.backend.ping(timeout)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_storage(database: str | Path, *, timeout: float = 10.0) -> Storage:
    return Storage(database, timeout=timeout)
