"""``beacons demo``: the whole product, offline, in a few seconds.

Serves the bundled sample feeds (``beacons/data/demo``) on 127.0.0.1, polls
them once with the demo config into a temporary SQLite file, and prints the
support and advocacy queues. A second cycle shows that nothing is duplicated
and that unchanged feeds cost a 304.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from importlib import resources
from pathlib import Path

from beacons.config import parse_config
from beacons.feedserver import FeedServer, Resource
from beacons.log import configure
from beacons.queue import QueueFilter, list_entries
from beacons.storage import Storage

CONTENT_TYPES = {
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".rdf": "application/rdf+xml",
    ".json": "text/javascript",  # what Apple's reviews feed answers
}
# Files served where the real service has them, not at /name (the page and app id are in Apple's path).
DEMO_PATHS = {"appstore.json": "/us/rss/customerreviews/page=1/id=1234567890/sortby=mostrecent/json"}


def demo_files() -> dict[str, bytes]:
    folder = resources.files("beacons").joinpath("data/demo")
    return {
        DEMO_PATHS.get(p.name, f"/{p.name}"): p.read_bytes()
        for p in folder.iterdir()
        if Path(p.name).suffix in CONTENT_TYPES
    }


def run_demo(*, port: int = 0, database: str | None = None, fmt: str = "table") -> int:
    from beacons.cli import _print_results, print_queue
    from beacons.daemon import run

    configure("warning")
    say = (lambda msg: print(msg, file=sys.stderr)) if fmt == "json" else print
    with tempfile.TemporaryDirectory(prefix="beacons-demo-") as tmp, FeedServer(port=port) as server:
        for path, body in demo_files().items():
            suffix = ".json" if path.endswith("/json") else Path(path).suffix
            server.add(path, Resource(body, content_type=CONTENT_TYPES[suffix] + "; charset=utf-8"))
        db = database or str(Path(tmp) / "demo.db")
        text = resources.files("beacons").joinpath("data/demo/config.yaml").read_text(encoding="utf-8")
        config = parse_config(text, env={"DEMO_BASE": server.base_url, "DEMO_DATABASE": db}, path="<demo config>")
        say(f"Serving {len(server.resources)} sample feeds on {server.base_url}; database {db}")
        say(f"Classifier: {config.classifier.model}. Polling every source once...\n")
        results = asyncio.run(run(config, once=True, install_signals=False))
        if fmt == "table":
            _print_results(results)
        say("\nPolling again: unchanged feeds answer 304 and nothing is stored twice...")
        again = asyncio.run(run(config, once=True, install_signals=False))
        say(
            f"  second cycle: {sum(r.status == 'not_modified' for r in again)} not modified, {sum(r.counts.get('new', 0) for r in again)} new\n"
        )
        store = Storage(db)
        support, advocacy, none = (
            [e.beacon for e in list_entries(store, QueueFilter(queue=q, limit=1000, threads=False)).entries]
            for q in ("support", "advocacy", "none")
        )
        if fmt == "json":
            json.dump(
                {
                    "support": [b.to_json() for b in support],
                    "advocacy": [b.to_json() for b in advocacy],
                    "none": [b.to_json() for b in none],
                },
                sys.stdout,
                ensure_ascii=False,
                indent=2,
            )
            print()
        else:
            print(f"SUPPORT QUEUE ({len(support)})")
            print_queue(support)
            print(f"\nADVOCACY QUEUE ({len(advocacy)})")
            print_queue(advocacy)
            print(f"\nStored, not queued: {len(none)} (news, job ads, giveaways, pre-purchase questions)")
            print("\nNext: edit config.yaml (brands, sources) and run `beacons run`.")
        store.close()
    return 0
