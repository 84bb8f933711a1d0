"""Load behaviour of one poll cycle over real loopback HTTP (issue 7): bounded concurrency, no starvation.

The feeds come from ``bench/loadserver.py`` in its own process, listening on
several loopback addresses (127.0.0.2, ...), each a distinct host to the
daemon's per-host politeness. The server counts requests in flight, overall
and per host, from the request line until its answer is written. Nothing here
is timed (issue 10): the slow hosts hold their answers until a condition the
test arms (``/hold``) is met, and the tests assert counts and the order of
answers; a hold that times out (60 s) only guards against a hang.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from beacons.classify import RulesClassifier
from beacons.config import BrandConfig, Config, FetchConfig
from beacons.daemon import run
from beacons.models import Source
from collectors.rss import Options

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = 8
PER_HOST = 2


@dataclass
class LoadServer:
    proc: subprocess.Popen[str]
    port: int
    hosts: list[str]

    def url(self, host: int, n: int) -> str:
        return f"http://{self.hosts[host]}:{self.port}/feed/{n}.xml"

    def stats(self, *, reset: bool = False) -> dict[str, Any]:
        return self._get(f"/stats{'?reset=1' if reset else ''}")

    def hold(self, **until: int) -> None:
        """Slow hosts hold their answers until ``fast=N`` other answers were written or ``in_flight=K`` at once."""
        [(what, n)] = until.items()
        assert self._get(f"/hold?{what}={n}")["hold"] == [what, n]

    def _get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=60) as r:
            return dict(json.loads(r.read()))


@pytest.fixture(scope="module")
def load_server() -> Iterator[LoadServer]:
    """Hosts 0-5 answer when the armed hold allows; hosts 6-13 at once; 10 % of feeds change on every poll."""
    cmd = [
        sys.executable,
        str(REPO / "bench" / "loadserver.py"),
        "--hosts",
        "14",
        "--slow-hosts",
        "6",
        "--hold-timeout",
        "60",
        "--changed",
        "0.1",
        "--slow",
        "0",
        "--failing",
        "0",
        "--entries",
        "3",
        "--max-seconds",
        "120",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        ready = json.loads(proc.stdout.readline())
        yield LoadServer(proc, ready["port"], ready["hosts"])
    finally:
        proc.stdin.close()  # the server exits when its stdin closes
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _config(server: LoadServer, database: Path, *, slow_feeds: int = 8) -> tuple[Config, set[str]]:
    # The slow hosts' feeds come first in the config, so a politeness that took a global
    # slot before its host slot would fill every global slot with slow requests.
    slow = [Source(f"slow-{i}", "rss", 300.0, Options(server.url(i % 2, 9000 + i))) for i in range(slow_feeds)]
    fast = [Source(f"fast-{n}", "rss", 300.0, Options(server.url(6 + n % 8, n))) for n in range(192)]
    config = Config(
        database=str(database),
        brands=(BrandConfig("Acme"),),
        sources=(*slow, *fast),
        fetch=FetchConfig(timeout=120.0, per_host_delay=0.0, concurrency=CONCURRENCY, per_host_concurrency=PER_HOST),
    )
    return config, {s.id for s in slow}


def test_load_slow_hosts_do_not_starve_fast_ones(load_server: LoadServer, tmp_path: Path) -> None:
    config, slow_ids = _config(load_server, tmp_path / "load.db")
    load_server.stats(reset=True)
    # The slow hosts answer only once all 192 fast feeds were answered. A politeness that let
    # slow requests take every global slot would leave the fast ones waiting: the hold would
    # then end by its timeout and a slow answer would come first.
    load_server.hold(fast=192)
    results = asyncio.run(run(config, once=True, install_signals=False, classifier=RulesClassifier()))
    stats = load_server.stats()

    assert {r.status for r in results} == {"ok"}
    assert len(results) == 200 and {r.source_id for r in results} >= slow_ids
    assert not stats["hold_timed_out"], "the fast feeds did not all get through while the slow hosts held"
    answers = stats["answers"]
    assert answers.count("fast") == 192 and answers.count("slow") == 8
    assert answers[:192] == ["fast"] * 192, "every fast feed is answered before the first slow answer"


def test_load_concurrency_stays_within_the_bounds(load_server: LoadServer, tmp_path: Path) -> None:
    # 12 slow feeds on 6 slow hosts: 12 host slots compete for 8 global ones. The slow hosts
    # hold every answer until 8 requests are in flight at once (the global bound, reached);
    # 8 in flight over 6 hosts means some host has 2 (its bound, reached).
    sources = tuple(Source(f"slow-{n}", "rss", 300.0, Options(load_server.url(n % 6, 8000 + n))) for n in range(12))
    config = Config(
        database=str(tmp_path / "load.db"),
        brands=(BrandConfig("Acme"),),
        sources=sources,
        fetch=FetchConfig(timeout=120.0, per_host_delay=0.0, concurrency=CONCURRENCY, per_host_concurrency=PER_HOST),
    )
    load_server.stats(reset=True)
    load_server.hold(in_flight=CONCURRENCY)
    results = asyncio.run(run(config, once=True, install_signals=False, classifier=RulesClassifier()))
    stats = load_server.stats()

    assert {r.status for r in results} == {"ok"}
    assert not stats["hold_timed_out"], "never 8 requests in flight at once"
    assert stats["max_in_flight_per_host"] == PER_HOST  # reached, never passed
    assert stats["max_in_flight"] == CONCURRENCY
    assert stats["in_flight"] == 0


def test_load_second_cycle_is_conditional(load_server: LoadServer, tmp_path: Path) -> None:
    config, _ = _config(load_server, tmp_path / "load.db", slow_feeds=0)
    asyncio.run(run(config, once=True, install_signals=False, classifier=RulesClassifier()))
    before = load_server.stats()["statuses"]
    results = asyncio.run(run(config, once=True, install_signals=False, classifier=RulesClassifier()))
    after = load_server.stats()["statuses"]

    answered = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    statuses = [r.status for r in results]
    assert len(statuses) == 192
    # Unchanged feeds cost a 304 and no parsing; the ~10 % that changed are fetched and stored again.
    assert answered.get("304", 0) == statuses.count("not_modified") >= 150
    assert answered.get("200", 0) == statuses.count("ok") >= 5
