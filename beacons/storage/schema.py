"""The one declaration of beacons' tables: their columns, which of them are times, and their keys.

Each backend turns this into DDL through its own forward-only migrations
(``sqlite_migrations.py``, ``postgres_migrations.py``); ``tests/test_storage.py``
checks that a freshly migrated database of either backend has exactly these
columns, and ``beacons db copy`` moves the tables in this order (parents before
children) with these columns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[str, ...]
    times: tuple[str, ...] = ()  # timestamptz on PostgreSQL, fixed-format UTC text on SQLite
    key: tuple[str, ...] = ("id",)
    serial: bool = True  # an id the database counts up
    copied: bool = True  # False: fleet state (workers, leases) that means nothing in another database


TABLES: tuple[Table, ...] = (
    Table(
        "sources",
        (
            "id",
            "kind",
            "etag",
            "last_modified",
            "cursor",
            "quota",
            "last_poll_at",
            "last_ok_at",
            "last_new_at",
            "last_status",
            "last_error",
            "polls",
            "errors",
            "consecutive_errors",
            "not_modified",
            "items_seen",
            "items_new",
            "skipped",
            "next_poll_at",
            "host",
            "lease_owner",
            "lease_until",
            "paused_at",
            "paused_by",
            "poll_requested_at",
        ),
        ("last_poll_at", "last_ok_at", "last_new_at", "next_poll_at", "lease_until", "paused_at", "poll_requested_at"),
        serial=False,
    ),
    Table(
        "mentions",
        (
            "id",
            "source_id",
            "url",
            "guid",
            "title",
            "text",
            "author",
            "author_reach",
            "published_at",
            "fetched_at",
            "lang",
            "brand",
            "product",
            "match_json",
            "raw",
            "classify_status",
            "classify_error",
            "created_at",
            "rating",
        ),
        ("published_at", "fetched_at", "created_at"),
    ),
    Table("mention_keys", ("key", "mention_id"), key=("key",), serial=False),
    Table(
        "beacons",
        (
            "id",
            "mention_id",
            "queue",
            "status",
            "priority",
            "is_beacon",
            "sentiment",
            "sentiment_score",
            "relevance",
            "scores_json",
            "intents_json",
            "model",
            "reason",
            "team",
            "assignee",
            "created_at",
            "updated_at",
            "evidence_json",
        ),
        ("created_at", "updated_at"),
    ),
    Table(
        "outbox",
        (
            "id",
            "event_id",
            "channel",
            "beacon_id",
            "kind",
            "payload_json",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
            "sent_at",
            "parent_event_id",
            "http_status",
        ),
        ("next_attempt_at", "created_at", "sent_at"),
    ),
    Table(
        "beacon_events",
        (
            "id",
            "beacon_id",
            "at",
            "actor",
            "action",
            "from_status",
            "to_status",
            "from_queue",
            "to_queue",
            "assignee",
            "detail",
            "prior_json",
        ),
        ("at",),
    ),
    Table("beacon_notes", ("id", "beacon_id", "at", "author", "text"), ("at",)),
    Table(
        "beacon_threads",
        ("beacon_id", "thread_id", "similarity", "linked_at", "queue", "brand", "product", "at", "words"),
        ("linked_at", "at"),
        key=("beacon_id",),
        serial=False,
    ),
    Table(
        "feedback_labels",
        ("id", "beacon_id", "mention_id", "from_queue", "to_queue", "actor", "at", "sentiment", "intents_json"),
        ("at",),
    ),
    Table(
        "alert_source_health",
        ("channel", "source_id", "state", "reason", "since", "episode", "reminders", "last_alert_at", "first_seen"),
        ("since", "last_alert_at", "first_seen"),
        key=("channel", "source_id"),
        serial=False,
    ),
    Table(
        "alert_incidents",
        ("id", "channel", "brand", "product", "status", "threshold", "opened_at", "closed_at", "event_id", "grouped"),
        ("opened_at", "closed_at"),
    ),
    Table("alert_channels", ("channel", "last_digest_at"), ("last_digest_at",), key=("channel",), serial=False),
    Table(
        "fleet_workers",
        ("id", "hostname", "pid", "started_at", "heartbeat_at", "sources_polled"),
        ("started_at", "heartbeat_at"),
        serial=False,
        copied=False,
    ),
    Table("fleet_hosts", ("host", "owner", "until"), ("until",), key=("host",), serial=False, copied=False),
    Table("fleet_leaders", ("job", "owner", "until"), ("until",), key=("job",), serial=False, copied=False),
    Table(
        "fleet_channels", ("channel", "next_send_at"), ("next_send_at",), key=("channel",), serial=False, copied=False
    ),
    Table("revoked_sessions", ("id", "until"), ("until",), serial=False),
    Table(
        "users",
        ("name", "role", "password_hash", "created_at", "disabled_at"),
        ("created_at", "disabled_at"),
        key=("name",),
        serial=False,
    ),
    Table(
        "user_tokens",
        ("id", "user_name", "hash", "created_at", "revoked_at"),
        ("created_at", "revoked_at"),
        serial=False,
    ),
    Table(
        "user_sessions",
        ("id", "user_name", "hash", "address", "created_at", "expires_at", "revoked_at"),
        ("created_at", "expires_at", "revoked_at"),
        serial=False,
    ),
    Table("login_failures", ("id", "user_name", "address", "at"), ("at",), copied=False),
    Table(
        "unmatched",
        (
            "id",
            "key",
            "source_id",
            "url",
            "guid",
            "title",
            "text",
            "author",
            "author_reach",
            "published_at",
            "fetched_at",
            "lang",
            "raw",
            "created_at",
            "rating",
        ),
        ("published_at", "fetched_at", "created_at"),
    ),
)

BY_NAME = {t.name: t for t in TABLES}
