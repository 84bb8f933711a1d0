"""A parse job for the parse pool's failure tests: it parses like the real one, except that a body
naming CRASH-WORKER kills its worker process and one naming HANG-WORKER never returns.

It lives in its own module so the pool's worker processes can import it by name.
"""

from __future__ import annotations

import os
import time

from beacons.parsepool import Outcome, parse_job


def failing_job(body: bytes, source_id: str, headers: dict[str, str], url: str | None) -> Outcome:
    if b"CRASH-WORKER" in body:
        os._exit(70)  # as a segfault or the OOM killer would end it: no exception, no answer
    if b"HANG-WORKER" in body:
        time.sleep(3600)
    return parse_job(body, source_id, headers, url)
