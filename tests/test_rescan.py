"""Issue 13 §4: posts that named no brand are kept for retention.unmatched, and `beacons rescan` finds them after a brand change.

Real databases on both backends, posts stored through the pipeline's ingest, a
fixed ``NOW`` (never the real clock).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_db import scalar, write
from helpers_queue import BRANDS, ROUTING, config_data, mention, seed

from beacons import queue as q
from beacons.classify import RulesClassifier
from beacons.cli import EXIT_OK, main
from beacons.config import Config, parse_config
from beacons.errors import ConfigError
from beacons.rescan import pipeline_for, rescan
from beacons.store import Store

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
GIZMO = {"name": "Gizmo", "aliases": ["GizmoHub"]}
HOOK = {"name": "hook", "kind": "webhook", "url": "https://hooks.example/in", "secret": "s" * 32}
UNMATCHED_POSTS = [
    (
        "gadget-forum",
        "ana",
        "My GizmoHub will not pair",
        "My GizmoHub will not pair since the update, how do I fix this?",
    ),
    ("gadget-forum", "ben", "GizmoHub broken again", "The GizmoHub app is broken again and support is not answering."),
    ("other-forum", "cy", "Sourdough notes", "The starter finally behaves after a week of feeding."),
]


def config_for(database: str, *, brands: list[dict[str, Any]], **extra: Any) -> Config:
    data = {**config_data(database), "brands": brands, "alerts": [HOOK], **extra}
    return parse_config(yaml.safe_dump(data), env={}, path="<test>")


def posts(ago: timedelta = timedelta(minutes=5)) -> list[Any]:
    return [
        mention(src, author, title, text, f"https://forum.example/{author}", now=NOW - ago)
        for src, author, title, text in UNMATCHED_POSTS
    ]


def run_rescan(config: Config, **kw: Any) -> dict[str, int]:
    with Store(config.database) as store:
        return rescan(pipeline_for(config, store, RulesClassifier()), now=NOW, **kw)


def counts(database: str) -> tuple[int, int, int, int]:
    with Store(database) as store:
        return (
            int(scalar(store, "SELECT COUNT(*) FROM beacons")),
            int(scalar(store, "SELECT COUNT(*) FROM mentions")),
            int(scalar(store, "SELECT COUNT(*) FROM outbox")),
            int(scalar(store, "SELECT COUNT(*) FROM unmatched")),
        )


def test_rescan_finds_what_a_new_brand_names_and_adds_nothing_the_second_time(database: str) -> None:
    seed(config_for(database, brands=BRANDS), [*posts()])
    assert counts(database) == (0, 0, 0, 3)  # nothing named Acme: all three kept, none dropped for good
    config = config_for(database, brands=[*BRANDS, GIZMO])
    done = run_rescan(config)
    assert (done["new"], done["still_unmatched"], done["checked"]) == (2, 1, 3)
    beacons, mentions, outbox, unmatched = counts(database)
    assert (beacons, mentions, unmatched) == (2, 2, 1)  # the sourdough post names no brand still
    with Store(database) as store:
        listed = q.list_entries(store, q.QueueFilter(queue="all", threads=False)).entries
        assert {e.beacon.brand for e in listed} == {"Gizmo"}
        queued = [e.beacon.id for e in listed if e.beacon.queue != "none"]
        assert queued and outbox == len(queued)  # routed, with its alert through the outbox
        assert {r[0] for r in store.backend.read("SELECT channel FROM outbox").rows} == {"hook"}
    again = run_rescan(config)
    assert again["new"] == 0 and counts(database) == (beacons, mentions, outbox, unmatched)


def test_rescan_reclassifies_unworked_beacons_and_never_touches_worked_ones(database: str) -> None:
    seed(config_for(database, brands=BRANDS))
    with Store(database) as store:
        before = {
            e.beacon.id: e.beacon for e in q.list_entries(store, q.QueueFilter(queue="all", threads=False)).entries
        }
        claimed, resolved, noted, *unworked = sorted(before)
        q.claim(store, claimed, "alice")
        q.resolve(store, resolved, "bob")
        q.add_note(store, noted, "carol", "looking")
    urgent = {**ROUTING, "rules": [{"name": "all-urgent", "brands": ["Acme"], "min_priority": 99}]}
    config = config_for(database, brands=BRANDS, routing=urgent)
    done = run_rescan(config)
    assert done["updated"] == len(unworked)
    with Store(database) as store:
        after = {b: store.get_beacon(b) for b in before}
        for worked in (claimed, resolved, noted):
            b = after[worked]
            assert b is not None and b.priority == before[worked].priority and b.reason == before[worked].reason
        for beacon_id in unworked:
            b = after[beacon_id]
            assert b is not None and b.priority >= 99 and b.status == "new"
            assert [(e.actor, e.action) for e in q.history(store, beacon_id)] == [("rescan", "rescan")]
    assert run_rescan(config)["updated"] == 0  # nothing changed since: nothing to write


def test_rescan_sends_alerts_for_a_beacon_it_moves_out_of_none(database: str) -> None:
    seed(config_for(database, brands=BRANDS, routing={**ROUTING, "rules": []}))
    with Store(database) as store:
        write(store, "UPDATE beacons SET queue = 'none'")
        write(store, "DELETE FROM outbox")
    config = config_for(database, brands=BRANDS)
    run_rescan(config)
    with Store(database) as store:
        queued = int(scalar(store, "SELECT COUNT(*) FROM beacons WHERE queue != 'none'"))
        assert queued and int(scalar(store, "SELECT COUNT(*) FROM outbox")) == queued
    run_rescan(config)
    assert counts(database)[2] == queued


def test_rescan_since_and_source_limit_what_it_reads(database: str) -> None:
    seed(config_for(database, brands=BRANDS), [*posts(timedelta(days=3))[:1], *posts()[1:]])
    config = config_for(database, brands=[*BRANDS, GIZMO])
    assert run_rescan(config, since=NOW - timedelta(days=1), source="other-forum")["new"] == 0
    assert run_rescan(config, since=NOW - timedelta(days=1))["new"] == 1  # ben's, not ana's three-day-old post
    assert run_rescan(config, source="gadget-forum")["new"] == 1


def test_rescan_prunes_unmatched_posts_past_retention(database: str) -> None:
    seed(config_for(database, brands=BRANDS), [*posts(timedelta(days=3))[:2], *posts()[2:]])
    config = config_for(database, brands=[*BRANDS, GIZMO], retention={"unmatched": "2d"})
    done = run_rescan(config)
    assert (done["pruned"], done["new"]) == (2, 0)  # fetched before the window: gone, so nothing to find
    assert counts(database)[3] == 1


def test_pipeline_keeps_each_unmatched_post_once_and_none_with_retention_0(database: str) -> None:
    config = config_for(database, brands=BRANDS)
    seed(config, posts())
    seed(config, posts())  # fetched again (no 304): still one row per post
    assert counts(database)[3] == 3
    with Store(database) as store:
        write(store, "DELETE FROM unmatched")
    from helpers_queue import _pipeline

    with Store(database) as store:
        pipeline = _pipeline(config, store)
        kept = pipeline.retention
        pipeline.retention = config_for(database, brands=BRANDS, retention={"unmatched": 0}).retention
        try:
            pipeline.ingest("gadget-forum", posts())
        finally:
            pipeline.retention = kept
    assert counts(database)[3] == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", 'retention.unmatched: expected a duration like 5m, got "soon"'),
        ("100d", "retention.unmatched: must be at most 90d, got 100d"),
    ],
)
def test_config_retention_unmatched_is_validated_naming_the_key(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"retention:\n  unmatched: {value}\n", env={})
    assert message in str(info.value)


def test_config_retention_unmatched_defaults_to_7_days() -> None:
    assert parse_config("", env={}).retention.unmatched == 7 * 86400


def test_cli_rescan_reports_progress_and_counts(tmp_path: Path, capsys: Any) -> None:
    db = tmp_path / "beacons.db"
    # The command reads the system clock (how recent --since is, what retention prunes): posts fetched just now.
    seed(
        config_for(str(db), brands=BRANDS),
        [mention(s, a, t, x, f"https://forum.example/{a}") for s, a, t, x in UNMATCHED_POSTS],
    )
    path = tmp_path / "config.yaml"
    data = {**config_data(db), "brands": [*BRANDS, GIZMO], "classifier": {"model": "rules"}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    code = main(["rescan", "-c", str(path), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK
    assert json.loads(out)["new"] == 2
    assert "rescan: 3 of 3 stored posts checked: 2 new beacon(s)" in err
    code = main(["rescan", "-c", str(path), "--since", "7d", "--quiet"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK and out.startswith("rescanned ") and "0 new beacon(s)" in out and not err


@pytest.mark.parametrize("since", ["0", "soon", "-1d"])
def test_cli_rescan_refuses_a_bad_since(since: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        main(["rescan", "--since", since])
    assert info.value.code == 2
    assert "--since" in capsys.readouterr().err
