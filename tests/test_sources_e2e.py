"""End to end (issue 15): one source of each new kind through the real daemon, twice, against a loopback server.

Each ``CASES`` entry is one kind: the source's config keys (besides ``kind``,
``id`` and ``base_url``/``url``, which come from its ``SPECS`` entry in
helpers_search.py) and, for every mention the first run must store, its title
and the queue it must be routed to (the rules classifier). ``run(config, once=True)`` polls the
source, the mentions are matched (or implied by ``implies_brand``), classified,
routed and stored with a cursor; the second run finds nothing new and adds
nothing. A new kind joins with one ``pytest.param`` entry.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_db import listed
from helpers_search import ACME_YAML, SPECS, FixtureSite, source_yaml

from beacons.classify import RulesClassifier
from beacons.config import Config, parse_config
from beacons.daemon import run
from beacons.feedserver import FeedServer
from beacons.store import Store

CASES = [
    pytest.param(
        "app_store_reviews",
        {"implies_brand": "Acme", "implies_product": "RouterX"},  # reviews rarely name the app
        [
            ("Can't add my router anymore", "support"),  # one star and a problem
            ("Finally a router app that works", "advocacy"),
            ("Ok but slow", "none"),
        ],
        id="app_store_reviews",
    ),
    pytest.param(
        "discourse",
        {"query": "RouterX", "implies_brand": "Acme"},
        [  # the port-forwarding post is left out: its topic has an accepted answer
            ("RouterX drops 5 GHz clients every night after 2.4.1", "support"),
            ("Guest network password resets on reboot", "support"),
            ("RouterX drops 5 GHz clients every night after 2.4.1", "none"),  # Acme's own "we are looking into it"
        ],
        id="discourse",
    ),
    pytest.param(
        "lemmy_search",
        {"query": "RouterX"},
        [
            ("RouterX drops all 5 GHz clients after 2.4.1 update", "support"),
            ("Re: Weekly homelab thread", "none"),
            ("Acme Cloud as an off-site backup target?", "none"),
        ],
        id="lemmy_search",
    ),
    pytest.param(
        "google_alerts",
        {},
        [
            ("RouterX firmware 2.4.1 drops 5 GHz clients, users say", "support"),
            ("Hands-on: the RouterX mesh kit in a three-floor house", "advocacy"),
            ("Forum: RouterX guest network keeps resetting", "support"),
        ],
        id="google_alerts",
    ),
]
KINDS = [case.values[0] for case in CASES]


def _config(server: FeedServer, db: Path, cases: list[tuple[str, dict[str, Any]]]) -> Config:
    sources = [source_yaml(SPECS[kind], server.base_url, id=kind) for kind, _ in cases]
    for entry, (_, keys) in zip(sources, cases, strict=True):
        for key in ("query", "implies_brand", "implies_product"):
            entry.pop(key, None)  # the case says which of these its source has
        entry.update(keys)
    text = yaml.safe_dump(
        {
            "database": str(db),
            "brands": [ACME_YAML],
            "sources": sources,
            "fetch": {"per_host_delay": "0s", "per_host_concurrency": 4, "timeout": "10s"},
            "logging": {"level": "warning"},
        }
    )
    return parse_config(text, env={})


def _run_twice(config: Config, expected: dict[str, list[tuple[str, str]]]) -> None:
    first = asyncio.run(run(config, once=True, install_signals=False, classifier=RulesClassifier()))
    assert {r.source_id: r.status for r in first} == dict.fromkeys(expected, "ok"), [r.error for r in first]
    store = Store(config.database)
    try:
        beacons = listed(store, queue="all", limit=500)
        routed: dict[str, list[tuple[str, str]]] = {kind: [] for kind in expected}
        for beacon in beacons:
            routed[beacon.source].append((beacon.title, beacon.queue))
        assert {k: sorted(v) for k, v in routed.items()} == {k: sorted(v) for k, v in expected.items()}
        assert all(b.brand == "Acme" for b in beacons)
        cursors = {row["id"]: row["cursor"] for row in store.sources()}
        assert all(cursors[kind] for kind in expected), cursors
        stored = store.mention_count()
    finally:
        store.close()

    second = asyncio.run(run(config, once=True, install_signals=False, classifier=RulesClassifier()))
    assert all(r.status in ("ok", "not_modified") and r.counts.get("new", 0) == 0 for r in second), second
    store = Store(config.database)
    try:
        assert store.mention_count() == stored, "a second run adds nothing"
        assert {row["id"]: row["cursor"] for row in store.sources()} == cursors, "the cursors stay where they were"
    finally:
        store.close()


@pytest.mark.parametrize(("kind", "keys", "expected"), CASES)
def test_sources_e2e_each_kind_twice_adds_nothing_the_second_time(
    kind: str, keys: dict[str, Any], expected: list[tuple[str, str]], feed_server: FeedServer, tmp_path: Path
) -> None:
    site = FixtureSite(feed_server, SPECS[kind])
    _run_twice(_config(feed_server, tmp_path / "e2e.db", [(kind, keys)]), {kind: expected})
    assert len(site.requests) == 2, "one page per run: the first run reads no history, the second stops at the cursor"


def test_sources_e2e_one_source_of_each_kind_in_one_daemon(feed_server: FeedServer, tmp_path: Path) -> None:
    for kind in KINDS:
        FixtureSite(feed_server, SPECS[kind])
    cases = [(case.values[0], case.values[1]) for case in CASES]
    expected = {case.values[0]: case.values[2] for case in CASES}
    _run_twice(_config(feed_server, tmp_path / "e2e.db", cases), expected)  # type: ignore[arg-type]
