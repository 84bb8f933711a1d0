"""The daemon's HTTP server: started when config.yaml has a ``serve:`` section, stopped with the daemon.

Registered in ``beacons.daemon.EXTRA_TASKS`` on import. uvicorn runs in the
daemon's own event loop; request handlers (SQLite) run in Starlette's thread
pool, so a slow request never delays polling. A port already in use is logged
and the daemon keeps polling without it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from beacons.daemon import EXTRA_TASKS
from beacons.errors import ConfigError
from beacons.log import get_logger

if TYPE_CHECKING:
    from beacons.daemon import Service

log = get_logger("beacons.web")


async def serve_task(service: Service, stop: asyncio.Event) -> None:
    """Serve until the stop event is set (at once in --once mode, where there is nothing to serve)."""
    if not service.config.serve.enabled or stop.is_set():
        return
    from beacons.web.server import WebServer

    try:
        server = WebServer(service.config)
    except (OSError, ConfigError) as exc:
        log.error("serve.failed", host=service.config.serve.host, port=service.config.serve.port, error=str(exc))
        return
    serving = asyncio.create_task(server.serve(), name="serve")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        server.request_stop()
        await serving


if serve_task not in EXTRA_TASKS:
    EXTRA_TASKS.append(serve_task)
