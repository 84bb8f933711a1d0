"""SLA breach look: how long a channel's ``on: sla_breach`` check takes over a large open queue.

Run: ``python bench/sla_breach.py [--beacons 20000] [--database postgresql://...]``. A real SQLite
file in a temporary folder (or the PostgreSQL URL given), filled through ``Store.save_poll`` as the
pipeline writes beacons; then ``beacons.alerts.sla.check`` runs three times on a fixed clock: before
anyone breached (nothing to write), when the whole queue breaches at once (one outbox row each), and
the next look (nothing new: the rows already exist). Prints each look's seconds and rows written.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beacons.alerts import sla
from beacons.alerts.config import AlertChannel
from beacons.alerts.outbox import Outbox
from beacons.log import configure
from beacons.models import Classification, Match, MatchSpan, Mention, Route
from beacons.storage.types import Sla
from beacons.store import Item, Store

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def fill(store: Store, n: int) -> None:
    """``n`` support beacons, stored at START."""
    batch: list[Item] = []
    at = START
    for i in range(n):
        text = f"My Acme RouterX number {i} drops wifi every night, support please help"
        mention = Mention("forum", f"https://forum.example/t/{i}", f"g{i}", f"RouterX {i}", text, "sam", at, at, "{}")
        start = mention.full_text.index("RouterX")
        match = Match("Acme", "RouterX", (MatchSpan(start, start + 7, "RouterX", "Acme", "RouterX", "product"),))
        cls = Classification("support", True, "negative", -0.6, 0.9, {"support": 0.9, "advocacy": 0.1})  # type: ignore[arg-type]
        batch.append(Item(mention, (f"k{i}",), match, cls, Route("support", 60, "bench")))  # type: ignore[arg-type]
        if len(batch) == 1000:
            store.save_poll("forum", batch, now=at)
            batch = []
    if batch:
        store.save_poll("forum", batch, now=at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beacons", type=int, default=20000)
    parser.add_argument("--database", help="a PostgreSQL URL (default: an SQLite file in a temporary folder)")
    args = parser.parse_args()
    configure(level="warning", fmt="console")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.database or str(Path(tmp) / "bench.db"))
        try:
            fill(store, args.beacons)
            print(f"{args.beacons} open support beacons stored at {START:%Y-%m-%d %H:%M} UTC, SLA 2h")
            newest = START
            channel = AlertChannel(
                kind="slack", url="https://hooks.example/x", name="leads", beacons=False, on=("sla_breach",)
            )
            policy = Sla(queues=(("support", 7200.0),))
            outbox = Outbox(store)
            for label, at in (
                ("before any breach", newest + timedelta(minutes=1)),
                ("all breach at once", newest + timedelta(hours=3)),
                ("next look", newest + timedelta(hours=3, minutes=1)),
            ):
                t0 = time.perf_counter()
                written = sla.check(outbox, channel, policy, now=at.timestamp())
                print(f"{label:20} {time.perf_counter() - t0:8.3f} s  {len(written):6} alerts written")
        finally:
            store.close()


if __name__ == "__main__":
    main()
