"""A throwaway PostgreSQL cluster for the tests: ``BEACONS_TEST_PG_URL`` when set, else one started here.

``start_cluster`` runs Debian's ``initdb`` and ``pg_ctl`` (``/usr/lib/postgresql/*/bin``) in a temporary
folder, listening only on a Unix socket there; as root it runs them as the ``postgres`` user (initdb refuses
root). Each test that asks for a PostgreSQL database gets a new database in that cluster, dropped after.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@dataclass
class Cluster:
    url: str  # a URL to the maintenance database "postgres"
    folder: Path | None = None  # set when this process started the cluster
    pg_ctl: str | None = None
    run_as: list[str] | None = None

    def database_url(self, name: str) -> str:
        base, _, query = self.url.partition("?")
        head = base.rsplit("/", 1)[0]
        return f"{head}/{name}" + (f"?{query}" if query else "")

    def ctl(self, *args: str) -> None:
        assert self.folder is not None and self.pg_ctl is not None
        cmd = [self.pg_ctl, "-D", str(self.folder / "data"), "-l", str(self.folder / "log"), *args]
        subprocess.run([*(self.run_as or []), *cmd], check=True, capture_output=True, timeout=60)

    def restart(self) -> None:
        """Stop the server the hard way (as a crash would) and start it again."""
        self.ctl("-m", "immediate", "-w", "stop")
        self.ctl("-w", "start", "-o", self._options())

    def _options(self) -> str:
        assert self.folder is not None
        return f"-k {self.folder} -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=200"


def start_cluster() -> tuple[Cluster | None, str]:
    """(cluster, "") or (None, why it could not start)."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        return None, "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    run_as: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="beacons-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if not runuser:
            return None, "running as root and runuser is missing (initdb refuses to run as root)"
        run_as = [runuser, "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    cluster = Cluster("", folder, pg_ctl, run_as)
    try:
        subprocess.run(
            [*run_as, initdb, "-D", str(folder / "data"), "-A", "trust", "-U", "beacons", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.ctl("-w", "start", "-o", cluster._options())
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        return None, f"could not start PostgreSQL: {exc} {detail.decode(errors='replace')[-300:]}"
    cluster.url = f"postgresql://beacons@/postgres?host={quote(str(folder), safe='')}"
    return cluster, ""


def stop_cluster(cluster: Cluster) -> None:
    if cluster.folder is None:
        return
    try:
        cluster.ctl("-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(cluster.folder, ignore_errors=True)


@contextmanager
def fresh_database(cluster: Cluster) -> Iterator[str]:
    """A new, empty database in the cluster; dropped (connections and all) afterwards."""
    import psycopg

    name = f"bt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield cluster.database_url(name)
    finally:
        from beacons.storage import postgres

        url = cluster.database_url(name)
        leaked = postgres._POOLS.pop(url, None)
        if leaked is not None:
            leaked[0].close()
        with psycopg.connect(cluster.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
