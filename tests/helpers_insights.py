"""A database of known content for the insights tests (issue 14): every figure below is worked out by hand.

Range: 2026-11-20 00:00Z .. 2026-11-23 00:00Z (three days); the previous period is 11-17 .. 11-20.
Posts go in through ``Storage.save_poll`` (arriving ten minutes after they were published), queue
changes through ``Storage.transition``, incidents and source outages through the alert outbox: the
same writes the daemon, the queue and the alert sender make.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from helpers_db import write

from beacons.models import Classification, Match, Mention, Route
from beacons.storage import Item, Storage
from beacons.storage.threads import ThreadSubject

SINCE = datetime(2026, 11, 20, tzinfo=UTC)
UNTIL = datetime(2026, 11, 23, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ARRIVAL = timedelta(minutes=10)


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


# name: (published, source, queue or None (not classified), sentiment, product, team, author, reach, intents, words)
POSTS: dict[str, tuple[Any, ...]] = {
    "q1": (t(18, 8), "forum", "support", "negative", "RouterX", "networking", "u1", None, {"how_to": 0.9}, "firmware"),
    "q2": (t(18, 9), "social", "advocacy", "positive", None, None, "fan3", 50, {"praise": 0.9}, ""),
    "p1": (
        t(20, 8),
        "forum",
        "support",
        "negative",
        "RouterX",
        "networking",
        "u2",
        None,
        {"bug_outage": 0.9},
        "wifi drops night",
    ),
    "p2": (
        t(20, 9),
        "forum",
        "support",
        "negative",
        "RouterX",
        "networking",
        "u3",
        None,
        {"bug_outage": 0.8, "how_to": 0.6},
        "wifi firmware",
    ),
    "p3": (t(20, 10), "social", "advocacy", "positive", None, None, "fan1", 1000, {"praise": 0.8}, ""),
    "p4": (t(20, 11), "social", "none", "neutral", None, None, "u4", None, {"news": 0.7}, ""),
    "p5": (
        t(21, 8),
        "social",
        "support",
        "neutral",
        "Acme Cloud",
        "cloud",
        "u5",
        None,
        {"account_billing": 0.7, "how_to": 0.3},
        "invoice wifi",
    ),
    "p6": (t(21, 9), "social", "advocacy", "positive", None, None, "fan1", 1500, {"praise": 0.9}, ""),
    "p7": (t(21, 15), "forum", "advocacy", "positive", None, None, "fan2", 300, {"recommendation": 0.9}, ""),
    "p8": (t(21, 16), "forum", None, None, None, None, "u6", None, {}, ""),
    "p9": (
        t(22, 10),
        "forum",
        "support",
        "negative",
        "RouterX",
        "networking",
        "u7",
        None,
        {"bug_outage": 0.95},
        "wifi drops",
    ),
    "r1": (t(23, 1), "forum", "support", "negative", "RouterX", "networking", "u8", None, {"bug_outage": 0.9}, "wifi"),
}


def _item(name: str, spec: tuple[Any, ...]) -> Item:
    published, source, queue, sentiment, product, team, author, reach, intents, _words = spec
    mention = Mention(
        source,
        f"https://{source}.example/{name}",
        name,
        f"post {name}",
        f"text of post {name} about Acme",
        author,
        published,
        published + ARRIVAL,
        json.dumps({"id": name}),
        reach,
    )
    match = Match("Acme", product, ())
    if queue is None:
        return Item(mention, (f"key-{name}",), match, None, None, classify_error="model failed")
    classification = Classification(queue, queue == "support", sentiment, 0.0, 1.0, intents=intents)
    return Item(mention, (f"key-{name}",), match, classification, Route(queue, 50, "test", team))


def seed(store: Storage) -> dict[str, int]:
    """Store the posts and their history; the beacon id of each post name."""
    for source in ("forum", "social", "quiet"):
        write(store, "INSERT INTO sources (id, kind) VALUES (?, 'rss')", [source])
    ids: dict[str, int] = {}
    for name, spec in POSTS.items():
        result = store.save_poll(spec[1], [_item(name, spec)], now=spec[0] + ARRIVAL)
        if result.beacon_ids:
            ids[name] = result.beacon_ids[0]
    words = {ids[n]: frozenset(POSTS[n][9].split()) for n in ids}

    def words_of(subject: ThreadSubject) -> frozenset[str]:
        return words[subject.beacon_id]

    store.link_many(sorted(ids.values()), words_of, None, window=3600, now=NOW)

    def act(name: str, by: str, action: str, to: str, after: timedelta) -> None:
        allowed = ("new",) if action == "claim" else ("new", "claimed")
        store.transition(
            ids[name], by, action, to, allowed, assignee=None, note=None, now=POSTS[name][0] + ARRIVAL + after
        )

    act("q1", "alice", "claim", "claimed", timedelta(minutes=5))
    act("q1", "alice", "resolve", "resolved", timedelta(minutes=50))
    act("p1", "alice", "claim", "claimed", timedelta(seconds=1800))
    act("p1", "alice", "resolve", "resolved", timedelta(seconds=10800))
    act("p2", "bob", "claim", "claimed", timedelta(seconds=10800))
    act("p3", "bob", "dismiss", "dismissed", timedelta(hours=2))
    act("p5", "alice", "claim", "claimed", timedelta(seconds=600))
    act("p5", "alice", "resolve", "resolved", timedelta(seconds=3600))
    act("p6", "bob", "claim", "claimed", timedelta(seconds=3600))
    act("p6", "bob", "resolve", "resolved", timedelta(seconds=7200))

    outbox = store.outbox
    outbox.create_incident(
        "ops",
        "Acme",
        "Acme Cloud",
        threshold=4.0,
        payload={"brand": "Acme", "product": "Acme Cloud", "beacon_ids": [ids["p5"]]},
        now=t(21, 9).timestamp(),
    )
    incident = outbox.open_incident("ops", "Acme", "Acme Cloud")
    assert incident is not None
    outbox.close_incident(incident, "ops", {"grouped": 0}, now=t(21, 12).timestamp())
    since = t(20, 12).isoformat()
    outbox.add_event(
        "ops",
        "health-quiet-1-failing",
        "source_health",
        {"source": "quiet", "state": "failing", "reason": "5 errors in a row", "since": since},
        now=t(20, 12).timestamp(),
    )
    outbox.add_event(
        "ops",
        "health-quiet-1-recovered",
        "source_health",
        {"source": "quiet", "state": "recovered", "reason": None, "since": since},
        now=t(21, 0).timestamp(),
    )
    return ids
