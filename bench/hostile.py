"""Seconds and peak memory of the hostile polls the tests only check for outcome (issue 10).

    python bench/hostile.py [--entries 100000] [--json]

Polls a feed of ``--entries`` minimal items (100,000 are 3.3 MB, under the
5 MiB cap) through the real pipeline in a fresh process, as
``tests/test_hostile.py`` does, and prints the poll's wall seconds and the
process's peak RSS beside the target (30 s). The test asserts what happens
(every entry read, memory bounded); how fast is this script's figure, because
a busy machine makes any time bound in a test fail at random.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_hostile import PROBE, entries_handler, many_entries  # noqa: E402

from beacons.feedserver import FeedServer  # noqa: E402

TARGET_SECONDS = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout, the table on stderr")
    args = parser.parse_args(argv)
    with FeedServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.add("/many.xml", entries_handler(args.entries, many_entries))
        done = subprocess.run(
            [sys.executable, "-c", PROBE, server.url("/many.xml"), str(Path(tmp) / "b.db")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode:
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    report = json.loads(done.stdout.strip().splitlines()[-1])
    figures = {
        "entries": report["counts"]["entries"],
        "seconds": round(report["seconds"], 2),
        "maxrss_mb": round(report["maxrss_mb"]),
        "target_seconds": TARGET_SECONDS,
    }
    out = sys.stderr if args.json else sys.stdout
    print(
        f"{figures['entries']:,} entries polled in {figures['seconds']} s (target < {TARGET_SECONDS:g} s), "
        f"peak RSS {figures['maxrss_mb']} MB",
        file=out,
    )
    if args.json:
        print(json.dumps(figures))
    return 0 if report["seconds"] < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
