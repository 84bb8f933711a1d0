"""End to end (issue 4): one source of each search kind, the brand Acme, a loopback server.

``run(config, once=True)`` polls every source against the fixtures, stores the
mentions about Acme (the Looney Tunes results are dropped by the brand's
exclusion), routes them to the support and advocacy queues, and records a
cursor per source. A second run sends the cursors to the services and adds
nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from helpers_db import listed
from helpers_search import ACME_YAML, SEARCH_KINDS, SPECS, FixtureSite, source_yaml

from beacons.classify import RulesClassifier
from beacons.config import parse_config
from beacons.daemon import run
from beacons.feedserver import FeedServer
from beacons.store import Store

# The issue-4 search kinds and issue 15's configured kinds (json_api, html_page) and youtube_search; the other
# issue-15 kinds (implied brands, no query) run end to end in test_sources_e2e.py.
KINDS = [
    k
    for k in SEARCH_KINDS
    if k
    in (
        "bing_news",
        "bluesky_search",
        "github_issues",
        "google_news",
        "hn_search",
        "mastodon_tag",
        "reddit_search",
        "stackexchange_search",
        "json_api",
        "html_page",
        "youtube_search",
    )
]

# url -> queue for every mention the first run must store and route
EXPECTED = {
    # google_news: publisher links resolved from the article ids; the opaque one stays on news.google.com
    "https://www.example-tech.com/news/2026/11/23/acme-routerx-adapter-recall": "none",
    "https://news.google.com/rss/articles/CBMiIEFVX3lxTE8xeDdSazJtV3E5di1acFQ0c0I4bkUxY0hm?oc=5": "none",
    "https://gadgetwire.example.net/acme-routerx-2": "none",
    # bing_news: the same articles through apiclick.aspx resolve to the same URLs (deduped), plus one more
    "https://homenetjournal.example.org/routerx-241-drops": "none",
    # reddit_search
    "https://www.reddit.com/r/HomeNetworking/comments/1p7k3m4/routerx_drops_wi-fi_every_night_after_241/": "support",
    "https://www.reddit.com/r/selfhosted/comments/1p7idq2/acme_cloud_has_been_great_for_my_off-site_backups/": "advocacy",
    # hn_search
    "https://news.ycombinator.com/item?id=46012345": "support",
    "https://news.ycombinator.com/item?id=46011877": "advocacy",
    # mastodon_tag
    "https://mastodon.example/@ana/113544100000000001": "support",
    "https://fosstodon.example/@bob/113544000000000002": "advocacy",
    "https://mastodon.example/@chloe/113543900000000003": "none",
    "https://news.example/@gadgetwire/113540000000000004": "none",
    # bluesky_search
    "https://bsky.app/profile/netgremlin.bsky.social/post/3mabc2k7w4ts2": "support",
    "https://bsky.app/profile/studio-ops.example.com/post/3mabbz9q1lp2x": "advocacy",
    # stackexchange_search
    "https://superuser.com/questions/1891234/routerx-drops-all-5-ghz-clients-every-night-after-firmware-2": "support",
    "https://superuser.com/questions/1891201/why-doesnt-acme-cloud-sync-exclude-node_modules-folders": "support",
    # github_issues
    "https://github.com/homelab-tools/netwatch/issues/412": "support",
    "https://github.com/acme-community/routerx-exporter/pull/88": "advocacy",
    # json_api (Steam store reviews): the third review names no brand
    "https://steamcommunity.com/profiles/76561198054127723/recommended/2784470/": "support",
    "https://steamcommunity.com/profiles/76561198830016291/recommended/2784470/": "advocacy",
    # html_page (a vendor forum's topic list)
    "https://community.acme.example/t/routerx-drops-wi-fi-every-night-after-2-4-1/48213": "support",
    "https://community.acme.example/t/guest-network-on-the-rx-200/48190": "support",
    "https://community.acme.example/t/acme-cloud-restore-speed-is-great/48207": "advocacy",
    # youtube_search: the Looney Tunes video is dropped by the brand's exclusion
    "https://www.youtube.com/watch?v=q8LmX2vT0aE": "none",
    "https://www.youtube.com/watch?v=Zp3rN8kQ1bw": "none",
}


def _config(server: FeedServer, db: Path) -> Any:
    sources = []
    for kind in KINDS:
        entry = source_yaml(SPECS[kind], server.base_url, id=kind)
        entry.pop("query", None)  # every source searches the brand's default query
        sources.append(entry)
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


def test_search_e2e_one_source_of_each_kind_routes_the_expected_mentions(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    sites = {kind: FixtureSite(feed_server, SPECS[kind]) for kind in KINDS}
    config = _config(feed_server, tmp_path / "e2e.db")
    assert sorted(s.kind for s in config.sources) == KINDS

    first = asyncio.run(run(config, once=True, install_signals=False, classifier=RulesClassifier()))
    assert {r.source_id: r.status for r in first} == {kind: "ok" for kind in KINDS}, [r.error for r in first]

    store = Store(config.database)
    try:
        beacons = listed(store, queue="all", limit=500)
        routed = {b.url: b.queue for b in beacons}
        assert routed == EXPECTED
        by_url = {b.url: b for b in beacons}
        assert by_url["https://news.ycombinator.com/item?id=46012345"].author_reach == 23  # HN points kept for routing
        assert (
            by_url[
                "https://superuser.com/questions/1891201/why-doesnt-acme-cloud-sync-exclude-node_modules-folders"
            ].author_reach
            == 23811
        )
        assert all(b.brand == "Acme" for b in beacons)
        cursors = {row["id"]: row["cursor"] for row in store.sources()}
        assert cursors == {kind: "2026-11-23T16:40:00Z" for kind in KINDS}
        stored = store.mention_count()
    finally:
        store.close()

    # per-term kinds asked once per brand term; the rest once
    assert len(sites["hn_search"].requests) == 5 and len(sites["stackexchange_search"].requests) == 5
    assert all(len(sites[k].requests) == 1 for k in KINDS if k not in ("hn_search", "stackexchange_search"))
    default_query = sites["google_news"].queries()[0]["q"]
    assert default_query == 'Acme OR "Acme Corp" OR acme.com OR RouterX OR "Acme Cloud" -"acme looney tunes"'

    for site in sites.values():
        site.server.requests.clear()
    second = asyncio.run(run(config, once=True, install_signals=False, classifier=RulesClassifier()))
    assert all(r.status in ("ok", "not_modified") and r.counts.get("new", 0) == 0 for r in second), second
    store = Store(config.database)
    try:
        assert store.mention_count() == stored, "a second run adds nothing"
    finally:
        store.close()

    # the second run sends the stored cursor to the services that filter by time
    assert all(q["numericFilters"] == "created_at_i>1795452000" for q in sites["hn_search"].queries())
    assert all(q["fromdate"] == "1795452001" for q in sites["stackexchange_search"].queries())
    assert sites["github_issues"].queries()[0]["q"].endswith(" created:>2026-11-23T16:40:00Z")
    assert sites["bluesky_search"].queries()[0]["since"] == "2026-11-23T16:40:00Z"
    assert sites["youtube_search"].queries()[0]["publishedAfter"] == "2026-11-23T16:40:00Z"
