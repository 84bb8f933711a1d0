"""SQLite's forward-only migrations, recorded by ``sqlite_utils.Migrations`` in ``_sqlite_migrations``.

The first three sets are the ones beacons has always applied (under the same
set and migration names, so an existing file is recognised); an applied
migration is never edited. New migrations go at the end of ``storage``.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

from beacons.storage.base import iso_text

core = Migrations("beacons")
queue = Migrations("beacons-queue")
alerts = Migrations("beacons-alerts")
storage = Migrations("beacons-storage")
SETS = (core, queue, alerts, storage)


@core(name="0001_initial")
def _core_0001(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE sources (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL,
            etag TEXT, last_modified TEXT, cursor TEXT,
            last_poll_at TEXT, last_ok_at TEXT, last_new_at TEXT, last_status TEXT, last_error TEXT,
            polls INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,
            consecutive_errors INTEGER NOT NULL DEFAULT 0, not_modified INTEGER NOT NULL DEFAULT 0,
            items_seen INTEGER NOT NULL DEFAULT 0, items_new INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0, next_poll_at TEXT
        );
        CREATE TABLE mentions (
            id INTEGER PRIMARY KEY, source_id TEXT NOT NULL, url TEXT, guid TEXT,
            title TEXT NOT NULL, text TEXT NOT NULL, author TEXT, author_reach INTEGER,
            published_at TEXT, fetched_at TEXT NOT NULL, lang TEXT,
            brand TEXT, product TEXT, match_json TEXT, raw TEXT NOT NULL,
            classify_status TEXT NOT NULL DEFAULT 'pending', classify_error TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX mentions_source ON mentions(source_id);
        CREATE INDEX mentions_classify ON mentions(classify_status);
        CREATE TABLE mention_keys (
            key TEXT PRIMARY KEY, mention_id INTEGER NOT NULL REFERENCES mentions(id)
        ) WITHOUT ROWID;
        CREATE TABLE beacons (
            id INTEGER PRIMARY KEY, mention_id INTEGER NOT NULL UNIQUE REFERENCES mentions(id),
            queue TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'new', priority INTEGER NOT NULL DEFAULT 0,
            is_beacon INTEGER NOT NULL, sentiment TEXT NOT NULL, sentiment_score REAL NOT NULL DEFAULT 0,
            relevance REAL NOT NULL DEFAULT 1, scores_json TEXT NOT NULL DEFAULT '{}',
            intents_json TEXT NOT NULL DEFAULT '{}', model TEXT, reason TEXT, team TEXT, assignee TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL
        );
        CREATE INDEX beacons_queue ON beacons(queue, status, priority DESC);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,
            beacon_id INTEGER REFERENCES beacons(id), kind TEXT NOT NULL DEFAULT 'beacon',
            payload_json TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, last_error TEXT,
            created_at TEXT NOT NULL, sent_at TEXT
        );
        CREATE INDEX outbox_pending ON outbox(status, next_attempt_at);
        """
    )


@queue(name="0001_lifecycle")
def _queue_0001(db: sqlite_utils.Database) -> None:
    for sql in (
        "CREATE TABLE beacon_events (id INTEGER PRIMARY KEY, beacon_id INTEGER NOT NULL REFERENCES beacons(id),"
        " at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, from_status TEXT, to_status TEXT,"
        " from_queue TEXT, to_queue TEXT, assignee TEXT, detail TEXT)",
        "CREATE INDEX beacon_events_beacon ON beacon_events(beacon_id, id)",
        "CREATE TABLE beacon_notes (id INTEGER PRIMARY KEY, beacon_id INTEGER NOT NULL REFERENCES beacons(id),"
        " at TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL)",
        "CREATE INDEX beacon_notes_beacon ON beacon_notes(beacon_id, id)",
        "CREATE TABLE beacon_threads (beacon_id INTEGER PRIMARY KEY REFERENCES beacons(id),"
        " thread_id INTEGER NOT NULL REFERENCES beacons(id), similarity REAL, linked_at TEXT NOT NULL,"
        " queue TEXT NOT NULL, brand TEXT, product TEXT, at TEXT, words TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX beacon_threads_thread ON beacon_threads(thread_id)",
        "CREATE INDEX beacon_threads_similar ON beacon_threads(brand, product, queue, at)",
        "CREATE TABLE feedback_labels (id INTEGER PRIMARY KEY, beacon_id INTEGER NOT NULL REFERENCES beacons(id),"
        " mention_id INTEGER NOT NULL REFERENCES mentions(id), from_queue TEXT NOT NULL, to_queue TEXT NOT NULL,"
        " actor TEXT NOT NULL, at TEXT NOT NULL)",
        "CREATE INDEX feedback_labels_mention ON feedback_labels(mention_id, id)",
    ):
        db.execute(sql)


@alerts(name="0001_alert_tables")
def _alerts_0001(db: sqlite_utils.Database) -> None:
    for sql in (
        "ALTER TABLE outbox ADD COLUMN parent_event_id TEXT",
        "ALTER TABLE outbox ADD COLUMN http_status INTEGER",
        "CREATE INDEX outbox_channel ON outbox(channel, status, next_attempt_at)",
        "CREATE INDEX outbox_parent ON outbox(parent_event_id)",
        (
            "CREATE TABLE alert_source_health (channel TEXT NOT NULL, source_id TEXT NOT NULL,"
            " state TEXT NOT NULL DEFAULT 'ok', reason TEXT, since TEXT, episode INTEGER NOT NULL DEFAULT 0,"
            " reminders INTEGER NOT NULL DEFAULT 0, last_alert_at TEXT, first_seen TEXT NOT NULL,"
            " PRIMARY KEY (channel, source_id))"
        ),
        (
            "CREATE TABLE alert_incidents (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, brand TEXT NOT NULL,"
            " product TEXT, status TEXT NOT NULL DEFAULT 'open', threshold REAL NOT NULL, opened_at TEXT NOT NULL,"
            " closed_at TEXT, event_id TEXT NOT NULL, grouped INTEGER NOT NULL DEFAULT 0)"
        ),
        "CREATE UNIQUE INDEX alert_incidents_open ON alert_incidents(channel, brand, ifnull(product, '')) WHERE status = 'open'",
        "CREATE TABLE alert_channels (channel TEXT PRIMARY KEY, last_digest_at TEXT)",
    ):
        db.execute(sql)


@storage(name="0001_fixed_precision_times")
def _storage_0001(db: sqlite_utils.Database) -> None:
    """Rewrite every stored time (seconds from the store, microseconds or none from the outbox) in one format.

    Mixed precision broke text comparisons: ``...T10:00:00+00:00`` sorts after
    ``...T10:00:00.5+00:00``. After this, every time is ``iso()``'s fixed form.
    """
    db.conn.create_function("beacons_iso", 1, iso_text, deterministic=True)
    # The time columns as they were at this migration (spelled out: a later migration adds others).
    times = {
        "sources": ("last_poll_at", "last_ok_at", "last_new_at", "next_poll_at"),
        "mentions": ("published_at", "fetched_at", "created_at"),
        "beacons": ("created_at", "updated_at"),
        "outbox": ("next_attempt_at", "created_at", "sent_at"),
        "beacon_events": ("at",),
        "beacon_notes": ("at",),
        "beacon_threads": ("linked_at", "at"),
        "feedback_labels": ("at",),
        "alert_source_health": ("since", "last_alert_at", "first_seen"),
        "alert_incidents": ("opened_at", "closed_at"),
        "alert_channels": ("last_digest_at",),
    }
    for table, columns in times.items():
        sets = ", ".join(f"{c} = beacons_iso({c})" for c in columns)
        db.execute(f"UPDATE {table} SET {sets}")


@storage(name="0002_beacons_by_priority")
def _storage_0002(db: sqlite_utils.Database) -> None:
    # The queue pages with a keyset on (priority, id); threads are linked by id, never by a watermark.
    db.execute("CREATE INDEX IF NOT EXISTS beacons_priority ON beacons(priority DESC, id DESC)")


@storage(name="0003_fleet")
def _storage_0003(db: sqlite_utils.Database) -> None:
    # Source leases, host affinity and leaders of periodic jobs (beacons.storage.fleet).
    for sql in (
        "ALTER TABLE sources ADD COLUMN host TEXT",
        "ALTER TABLE sources ADD COLUMN lease_owner TEXT",
        "ALTER TABLE sources ADD COLUMN lease_until TEXT",
        "CREATE INDEX sources_due ON sources(next_poll_at)",
        "CREATE TABLE fleet_workers (id TEXT PRIMARY KEY, hostname TEXT NOT NULL, pid INTEGER NOT NULL,"
        " started_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL, sources_polled INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE fleet_hosts (host TEXT PRIMARY KEY, owner TEXT NOT NULL, until TEXT NOT NULL)",
        "CREATE TABLE fleet_leaders (job TEXT PRIMARY KEY, owner TEXT NOT NULL, until TEXT NOT NULL)",
    ):
        db.execute(sql)


@storage(name="0004_fleet_channels")
def _storage_0004(db: sqlite_utils.Database) -> None:
    # A channel's next send slot, shared by every sender of the fleet (rate limit and Retry-After pauses).
    db.execute("CREATE TABLE fleet_channels (channel TEXT PRIMARY KEY, next_send_at TEXT NOT NULL)")


@storage(name="0005_classifier_v2")
def _storage_0005(db: sqlite_utils.Database) -> None:
    # issue 12: the passage that decided a classification ({text, start, end} as JSON), and corrections
    # of sentiment and intents kept beside the queue's.
    for sql in (
        "ALTER TABLE beacons ADD COLUMN evidence_json TEXT",
        "ALTER TABLE feedback_labels ADD COLUMN sentiment TEXT",
        "ALTER TABLE feedback_labels ADD COLUMN intents_json TEXT",
    ):
        db.execute(sql)


@storage(name="0006_revoked_sessions")
def _storage_0006(db: sqlite_utils.Database) -> None:
    # Web sessions signed out before they expire (beacons.storage.sessions).
    db.execute("CREATE TABLE revoked_sessions (id TEXT PRIMARY KEY, until TEXT NOT NULL) WITHOUT ROWID")


@storage(name="0007_users")
def _storage_0007(db: sqlite_utils.Database) -> None:
    # issue 13: people with roles, their personal API tokens and sign-in sessions (stored as SHA-256),
    # and failed sign-ins for the rate limit (beacons.storage.users).
    for sql in (
        "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT,"
        " created_at TEXT NOT NULL, disabled_at TEXT) WITHOUT ROWID",
        "CREATE TABLE user_tokens (id TEXT PRIMARY KEY, user_name TEXT NOT NULL REFERENCES users(name),"
        " hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT) WITHOUT ROWID",
        "CREATE INDEX user_tokens_user ON user_tokens(user_name)",
        "CREATE TABLE user_sessions (id TEXT PRIMARY KEY, user_name TEXT NOT NULL REFERENCES users(name),"
        " hash TEXT NOT NULL UNIQUE, address TEXT, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,"
        " revoked_at TEXT) WITHOUT ROWID",
        "CREATE INDEX user_sessions_user ON user_sessions(user_name)",
        "CREATE TABLE login_failures (id INTEGER PRIMARY KEY, user_name TEXT NOT NULL, address TEXT NOT NULL,"
        " at TEXT NOT NULL)",
        "CREATE INDEX login_failures_user ON login_failures(user_name, at)",
        "CREATE INDEX login_failures_address ON login_failures(address, at)",
    ):
        db.execute(sql)


@storage(name="0008_lease_indexes")
def _storage_0008(db: sqlite_utils.Database) -> None:
    # issue 11: a lease reads the due sources in index order instead of sorting them all, and
    # taking a host looks up that host's live leases instead of scanning every source.
    for sql in (
        "DROP INDEX sources_due",
        "CREATE INDEX sources_due ON sources(next_poll_at, id)",
        "CREATE INDEX sources_host ON sources(host, lease_until)",
    ):
        db.execute(sql)


# The document of one beacon in the full-text index: its post's title, text and author, and its notes.
_FTS_REFRESH = (
    "DELETE FROM beacon_fts WHERE rowid IN ({ids});"
    " INSERT INTO beacon_fts (rowid, title, body, author, notes)"
    " SELECT b.id, m.title, m.text, COALESCE(m.author, ''),"
    " COALESCE((SELECT group_concat(n.text, ' ') FROM beacon_notes n WHERE n.beacon_id = b.id), '')"
    " FROM beacons b JOIN mentions m ON m.id = b.mention_id WHERE b.id IN ({ids});"
)


@storage(name="0009_beacon_search")
def _storage_0009(db: sqlite_utils.Database) -> None:
    # issue 13 §2: full-text search over title, text, author and notes (beacons.storage.search). An FTS5 table
    # keyed by beacon id, kept by triggers (so every writer, `db copy` included, keeps it current); filled here.
    db.executescript(
        "CREATE VIRTUAL TABLE beacon_fts USING fts5(title, body, author, notes,"
        " tokenize = 'unicode61 remove_diacritics 2');\n"
        "CREATE TRIGGER beacon_fts_beacon AFTER INSERT ON beacons BEGIN "
        + _FTS_REFRESH.format(ids="NEW.id")
        + " END;\n"
        "CREATE TRIGGER beacon_fts_beacon_moved AFTER UPDATE OF mention_id ON beacons BEGIN "
        + _FTS_REFRESH.format(ids="NEW.id")
        + " END;\n"
        "CREATE TRIGGER beacon_fts_beacon_gone AFTER DELETE ON beacons BEGIN"
        " DELETE FROM beacon_fts WHERE rowid = OLD.id; END;\n"
        "CREATE TRIGGER beacon_fts_note AFTER INSERT ON beacon_notes BEGIN "
        + _FTS_REFRESH.format(ids="NEW.beacon_id")
        + " END;\n"
        "CREATE TRIGGER beacon_fts_note_changed AFTER UPDATE OF text ON beacon_notes BEGIN "
        + _FTS_REFRESH.format(ids="NEW.beacon_id")
        + " END;\n"
        "CREATE TRIGGER beacon_fts_mention AFTER UPDATE OF title, text, author ON mentions BEGIN "
        + _FTS_REFRESH.format(ids="SELECT id FROM beacons WHERE mention_id = NEW.id")
        + " END;\n"
        + _FTS_REFRESH.format(ids="SELECT id FROM beacons")
    )


@storage(name="0010_unmatched")
def _storage_0010(db: sqlite_utils.Database) -> None:
    # issue 13 §4: posts that named no brand, kept for retention.unmatched so `beacons rescan` finds them
    # after an alias is added (one row per post: its first dedupe key is unique).
    for sql in (
        "CREATE TABLE unmatched (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, source_id TEXT NOT NULL,"
        " url TEXT, guid TEXT, title TEXT NOT NULL, text TEXT NOT NULL, author TEXT, author_reach INTEGER,"
        " published_at TEXT, fetched_at TEXT NOT NULL, lang TEXT, raw TEXT NOT NULL, created_at TEXT NOT NULL)",
        "CREATE INDEX unmatched_fetched ON unmatched(fetched_at)",
        "CREATE INDEX unmatched_source ON unmatched(source_id, id)",
    ):
        db.execute(sql)


@storage(name="0011_source_quota")
def _storage_0011(db: sqlite_utils.Database) -> None:
    # issue 15: API units a source spent today (youtube_search's daily quota), kept across restarts.
    db.execute("ALTER TABLE sources ADD COLUMN quota TEXT")


@storage(name="0012_mention_rating")
def _storage_0012(db: sqlite_utils.Database) -> None:
    # issue 15: a review's stars (app_store_reviews), which routing weighs; kept so a retried
    # classification, a re-route and route --explain see them too.
    db.execute("ALTER TABLE mentions ADD COLUMN rating INTEGER")
    db.execute("ALTER TABLE unmatched ADD COLUMN rating INTEGER")


@storage(name="0013_undo_and_source_controls")
def _storage_0013(db: sqlite_utils.Database) -> None:
    # issue 13 §3 undo: what an event changed besides status and queue (holder, priority, team, reason), so undoing
    # it restores exactly that. §6 sources page: a pause and a "poll now" every worker reads from the database.
    for sql in (
        "ALTER TABLE beacon_events ADD COLUMN prior_json TEXT",
        "ALTER TABLE sources ADD COLUMN paused_at TEXT",
        "ALTER TABLE sources ADD COLUMN paused_by TEXT",
        "ALTER TABLE sources ADD COLUMN poll_requested_at TEXT",
    ):
        db.execute(sql)


# The rollup of posts per UTC hour and split (issue 14), kept by triggers so every writer keeps it current.
_H = "substr(COALESCE({m}.published_at, {m}.fetched_at), 1, 13)"
_BUMP = (
    "INSERT INTO insight_posts (hour, brand, product, source_id, team, queue, sentiment, posts) {select}"
    " ON CONFLICT (hour, brand, product, source_id, team, queue, sentiment)"
    " DO UPDATE SET posts = insight_posts.posts + excluded.posts;"
)


def _bump(m: str, split: str, delta: int, where: str) -> str:
    """One upsert of the rollup: mention alias or row ``m``, the beacon's (team, queue, sentiment) as SQL."""
    select = (
        f"SELECT {_H.format(m=m)}, COALESCE({m}.brand, ''), COALESCE({m}.product, ''), {m}.source_id,"
        f" {split}, {delta} {where}"
    )
    return _BUMP.format(select=select)


_NONE = "'', 'none', ''"
_SPLIT = "COALESCE({b}.team, ''), {b}.queue, COALESCE({b}.sentiment, '')"
_SPLIT_OF = (
    "COALESCE((SELECT COALESCE(team, '') FROM beacons WHERE mention_id = {m}.id), ''),"
    " COALESCE((SELECT queue FROM beacons WHERE mention_id = {m}.id), 'none'),"
    " COALESCE((SELECT COALESCE(sentiment, '') FROM beacons WHERE mention_id = {m}.id), '')"
)


@storage(name="0014_insights")
def _storage_0014(db: sqlite_utils.Database) -> None:
    """issue 14: what the insights read, without a scan per chart.

    ``insight_posts`` counts posts per UTC hour of their time (published, else fetched), brand, product,
    source, and their beacon's team, queue and sentiment ('' and 'none' for a post without a beacon);
    triggers on mentions and beacons keep it (like ``beacon_fts``, it is derived: ``db copy`` rebuilds it).
    The indexes serve the beacon figures: arrivals per queue, closes, incidents and health alerts.
    """
    m_new, m_old = "NEW", "OLD"
    on_beacon = "FROM mentions m WHERE m.id = {b}.mention_id"
    db.executescript(
        "CREATE TABLE insight_posts (hour TEXT NOT NULL, brand TEXT NOT NULL, product TEXT NOT NULL,"
        " source_id TEXT NOT NULL, team TEXT NOT NULL, queue TEXT NOT NULL, sentiment TEXT NOT NULL,"
        " posts INTEGER NOT NULL, PRIMARY KEY (hour, brand, product, source_id, team, queue, sentiment)) WITHOUT ROWID;\n"
        "CREATE TRIGGER insight_mention_added AFTER INSERT ON mentions BEGIN "
        + _bump(m_new, _NONE, 1, "WHERE true")
        + " END;\n"
        "CREATE TRIGGER insight_mention_gone AFTER DELETE ON mentions BEGIN "
        + _bump(m_old, _NONE, -1, "WHERE true")
        + " END;\n"
        "CREATE TRIGGER insight_mention_moved AFTER UPDATE OF published_at, fetched_at, brand, product, source_id"
        " ON mentions BEGIN "
        + _bump(m_old, _SPLIT_OF.format(m="OLD"), -1, "WHERE true")
        + _bump(m_new, _SPLIT_OF.format(m="NEW"), 1, "WHERE true")
        + " END;\n"
        "CREATE TRIGGER insight_beacon_added AFTER INSERT ON beacons BEGIN "
        + _bump("m", _NONE, -1, on_beacon.format(b="NEW"))
        + _bump("m", _SPLIT.format(b="NEW"), 1, on_beacon.format(b="NEW"))
        + " END;\n"
        "CREATE TRIGGER insight_beacon_changed AFTER UPDATE OF queue, sentiment, team, mention_id ON beacons BEGIN "
        + _bump("m", _SPLIT.format(b="OLD"), -1, on_beacon.format(b="OLD"))
        + _bump("m", _NONE, 1, on_beacon.format(b="OLD"))
        + _bump("m", _NONE, -1, on_beacon.format(b="NEW"))
        + _bump("m", _SPLIT.format(b="NEW"), 1, on_beacon.format(b="NEW"))
        + " END;\n"
        "CREATE TRIGGER insight_beacon_gone AFTER DELETE ON beacons BEGIN "
        + _bump("m", _SPLIT.format(b="OLD"), -1, on_beacon.format(b="OLD"))
        + _bump("m", _NONE, 1, on_beacon.format(b="OLD"))
        + " END;\n"
        "INSERT INTO insight_posts (hour, brand, product, source_id, team, queue, sentiment, posts)"
        " SELECT substr(COALESCE(m.published_at, m.fetched_at), 1, 13), COALESCE(m.brand, ''),"
        " COALESCE(m.product, ''), m.source_id, COALESCE(b.team, ''), COALESCE(b.queue, 'none'),"
        " COALESCE(b.sentiment, ''), COUNT(*) FROM mentions m LEFT JOIN beacons b ON b.mention_id = m.id"
        " GROUP BY 1, 2, 3, 4, 5, 6, 7;\n"
        "CREATE INDEX mentions_posted ON mentions(COALESCE(published_at, fetched_at));\n"
        "CREATE INDEX beacons_arrived ON beacons(queue, created_at);\n"
        "CREATE INDEX beacons_open ON beacons(queue, status, created_at);\n"
        "CREATE INDEX beacon_events_closed ON beacon_events(to_status, at);\n"
        "CREATE INDEX alert_incidents_opened ON alert_incidents(opened_at);\n"
        "CREATE INDEX outbox_kind ON outbox(kind, created_at);\n"
    )
