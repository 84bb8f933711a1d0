"""Generic fixtures for every test: a loopback feed server, a database path, a config writer."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from helpers_pg import Cluster, fresh_database, start_cluster, stop_cluster

from beacons import redact
from beacons.feedserver import FeedServer

WriteConfig = Callable[..., Path]


@contextmanager
def running_feed_server() -> Iterator[FeedServer]:
    """A FeedServer on 127.0.0.1, served with a short poll interval so stopping it costs 50 ms, not 500."""
    server = FeedServer()
    # http.server listens with a backlog of 5: the sixth simultaneous connect is dropped
    # and retried by TCP a second later, which a test with a short fetch.timeout sees as
    # a timeout. Listening again raises the backlog.
    server.httpd.socket.listen(128)
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A running FeedServer on 127.0.0.1 (real HTTP: 304s, gzip, delays)."""
    with running_feed_server() as server:
        yield server


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file path in the test's temporary folder."""
    return tmp_path / "beacons.db"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The PostgreSQL cluster of this test run: BEACONS_TEST_PG_URL (.ci/run starts one), else one started here.

    Without PostgreSQL the tests that need it skip, loudly; with BEACONS_REQUIRE_PG=1 (set by .ci/run) a
    cluster that cannot be had fails them instead, so CI never passes on skipped PostgreSQL tests.
    """
    url = os.environ.get("BEACONS_TEST_PG_URL")
    if url:
        yield Cluster(url)
        return
    cluster, why = start_cluster()
    if cluster is None:
        if os.environ.get("BEACONS_REQUIRE_PG") == "1":
            pytest.fail(f"BEACONS_REQUIRE_PG=1 but PostgreSQL is not available: {why}")
        pytest.skip(f"PostgreSQL TESTS SKIPPED: {why}")
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty PostgreSQL database's URL (dropped after the test)."""
    with fresh_database(pg_cluster) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test's database on each backend: an SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "beacons.db")
    return str(request.getfixturevalue("pg_url"))


def config_writer(folder: Path, database: Path | str) -> WriteConfig:
    """Write a config file: a mapping (``database`` defaults to ``database``) or YAML text as is."""

    def write(config: dict[str, Any] | str, name: str = "config.yaml") -> Path:
        path = folder / name
        if isinstance(config, str):
            path.write_text(config, encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump({"database": str(database), **config}, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_config(tmp_path: Path, db_path: Path) -> WriteConfig:
    """Write a config file into tmp_path; its database defaults to ``db_path``."""
    return config_writer(tmp_path, db_path)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI commands point structlog at the test's captured stderr; reset it so a later test never logs to a closed stream.

    Secrets registered by a config one test loaded are forgotten too, so they blank nothing in the next test.
    """
    structlog.reset_defaults()
    redact.forget()
    hooks = sys.excepthook, threading.excepthook  # beacons.log.configure logs crashes; pytest keeps its own
    yield
    sys.excepthook, threading.excepthook = hooks
    structlog.reset_defaults()
    redact.forget()
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "beacons"]
